//! UNSUBSCRIBE (spec v5 3.10, v3.1.1 3.10).

use bytestring::ByteString;

use crate::UserProperty;

/// UNSUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet Identifier (never 0).
    pub packet_id: u16,
    /// At least one topic filter (`MQTT-3.10.3-2`).
    pub filters: Vec<ByteString>,
    /// MQTT 5 properties.
    pub properties: UnsubscribeProperties,
}

/// MQTT 5 UNSUBSCRIBE properties: user properties only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct UnsubscribeProperties {
    pub user_properties: Vec<UserProperty>,
}
