//! PUBLISH (spec v5 3.3, v3.1.1 3.3) — the hot path.
//!
//! Decoding slices topic and payload out of the frame without copying. Encoding has a second
//! entry point, [`encode_publish`], for the engine's fan-out: the message-level parts are
//! borrowed from the received packet and only the per-delivery fields (QoS, packet id, retain,
//! topic alias, subscription identifiers, remaining expiry) change, so delivering one message
//! to many subscribers copies nothing but bytes into each subscriber's output buffer.

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use smallvec::SmallVec;

use crate::{EncodeError, ProtocolVersion, QoS, UserProperty};

/// PUBLISH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS level.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic Name; empty when an MQTT 5 topic alias stands for it.
    pub topic: ByteString,
    /// Packet Identifier; 0 for QoS 0 (where it is absent on the wire).
    pub packet_id: u16,
    /// MQTT 5 properties.
    pub properties: PublishProperties,
    /// Application payload.
    pub payload: Bytes,
}

/// MQTT 5 PUBLISH properties (spec 3.3.2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct PublishProperties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<u16>,
    pub response_topic: Option<ByteString>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
    /// Subscription Identifiers (server to client only; one per matching subscription).
    pub subscription_identifiers: SmallVec<[u32; 2]>,
    pub content_type: Option<ByteString>,
}

/// The per-delivery fields of an outgoing PUBLISH, for [`encode_publish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishHeader<'a> {
    /// DUP flag.
    pub dup: bool,
    /// QoS of this delivery.
    pub qos: QoS,
    /// RETAIN flag of this delivery.
    pub retain: bool,
    /// Packet Identifier (ignored for QoS 0).
    pub packet_id: u16,
    /// The topic to write; empty when `topic_alias` alone identifies it.
    pub topic: &'a str,
    /// Topic Alias property to write (MQTT 5).
    pub topic_alias: Option<u16>,
    /// Message Expiry Interval to write (the remaining lifetime), replacing the message's.
    pub message_expiry_interval: Option<u32>,
    /// Subscription Identifiers to write, replacing the message's.
    pub subscription_identifiers: &'a [u32],
}

/// Appends one PUBLISH built from `header` plus the message-level properties of `props`
/// (payload format, response topic, correlation data, user properties, content type — its
/// topic alias, expiry and subscription identifiers are ignored) and `payload`.
///
/// # Errors
/// [`EncodeError`] when the packet cannot be represented; nothing is appended then.
pub fn encode_publish(
    out: &mut BytesMut,
    version: ProtocolVersion,
    header: &PublishHeader<'_>,
    props: &PublishProperties,
    payload: &[u8],
) -> Result<(), EncodeError> {
    publish_encode_parts(out, version, header, props, payload)
}

/// The number of bytes [`encode_publish`] would append.
pub fn encoded_publish_len(
    version: ProtocolVersion,
    header: &PublishHeader<'_>,
    props: &PublishProperties,
    payload_len: usize,
) -> usize {
    publish_encoded_len_parts(version, header, props, payload_len)
}
