//! PUBACK, PUBREC, PUBREL and PUBCOMP (spec v5 3.4–3.7): four packets of one form.

use bytestring::ByteString;

use crate::{ReasonCode, UserProperty};

/// A publish acknowledgement: PUBACK, PUBREC, PUBREL or PUBCOMP (the [`crate::Packet`] variant
/// says which). MQTT 5 omits the reason code when it is 0x00 and there are no properties
/// (remaining length 2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PubAck {
    /// Packet Identifier (never 0).
    pub packet_id: u16,
    /// Reason code (MQTT 5; always success for 3.1.1).
    pub reason: ReasonCode,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}

/// The properties every acknowledgement may carry: reason string and user properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct AckProperties {
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}
