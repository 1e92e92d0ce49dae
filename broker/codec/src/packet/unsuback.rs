//! UNSUBACK (spec v5 3.11, v3.1.1 3.11).

use crate::{AckProperties, ReasonCode};

/// UNSUBACK. MQTT 3.1.1 has no payload: `reasons` is empty on decode and ignored on encode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet Identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// One per filter (MQTT 5).
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}
