//! SUBACK (spec v5 3.9, v3.1.1 3.9).

use crate::{AckProperties, ReasonCode};

/// SUBACK: one reason code per filter of the SUBSCRIBE, in order. MQTT 3.1.1 encodes them with
/// [`ReasonCode::to_v311_suback`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubAck {
    /// Packet Identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// One per filter.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}
