//! DISCONNECT (spec v5 3.14, v3.1.1 3.14).

use bytestring::ByteString;

use crate::{ReasonCode, UserProperty};

/// DISCONNECT. MQTT 5 may send it in both directions with a reason code; MQTT 3.1.1 only
/// client to server, empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// Disconnect Reason Code (0x00 when absent on the wire).
    pub reason: ReasonCode,
    /// MQTT 5 properties.
    pub properties: DisconnectProperties,
}

/// MQTT 5 DISCONNECT properties (spec 3.14.2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct DisconnectProperties {
    pub session_expiry_interval: Option<u32>,
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
    pub server_reference: Option<ByteString>,
}
