//! CONNECT (spec v5 3.1, v3.1.1 3.1).

use bytes::Bytes;
use bytestring::ByteString;

use crate::{ProtocolVersion, QoS, UserProperty};

/// CONNECT: the first packet of every connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// Protocol level: 4 (3.1.1) or 5 (5.0).
    pub protocol: ProtocolVersion,
    /// Clean Start (v5) / Clean Session (v3.1.1).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier; may be empty.
    pub client_id: ByteString,
    /// The will message, when the Will Flag is set.
    pub will: Option<Will>,
    /// User name, when the User Name Flag is set.
    pub username: Option<ByteString>,
    /// Password, when the Password Flag is set.
    pub password: Option<Bytes>,
    /// MQTT 5 properties (left default for 3.1.1).
    pub properties: ConnectProperties,
}

/// MQTT 5 CONNECT properties (spec 3.1.2.11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct ConnectProperties {
    pub session_expiry_interval: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub topic_alias_maximum: Option<u16>,
    pub request_response_information: Option<bool>,
    pub request_problem_information: Option<bool>,
    pub authentication_method: Option<ByteString>,
    pub authentication_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
}

/// The will message carried by CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Will Topic.
    pub topic: ByteString,
    /// Will Payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// MQTT 5 will properties.
    pub properties: WillProperties,
}

/// MQTT 5 will properties (spec 3.1.3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct WillProperties {
    pub will_delay_interval: Option<u32>,
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<ByteString>,
    pub response_topic: Option<ByteString>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
}
