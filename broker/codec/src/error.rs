//! Codec errors. Each [`DecodeError`] names the MQTT 5 reason code the receiver answers with
//! (DISCONNECT for MQTT 5, a plain close for MQTT 3.1.1, CONNACK for a bad CONNECT).
//!
//! These are on the hot path, so they are small `Copy` values with static messages.

use crate::ReasonCode;

/// Why a byte sequence is not a valid packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet violates the wire format (reason code 0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The packet is well-formed but breaks a protocol rule (reason code 0x82).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The packet exceeds the maximum packet size in force (reason code 0x95).
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// Size of the whole packet (fixed header included) in bytes.
        size: usize,
        /// The limit in force.
        max: u32,
    },
    /// CONNECT names a protocol or level this server does not speak (CONNACK 0x84 / 0x01).
    #[error("unsupported protocol name or level")]
    UnsupportedProtocolVersion,
}

impl DecodeError {
    /// The MQTT 5 reason code to report this error with.
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) => ReasonCode::MALFORMED_PACKET,
            DecodeError::Protocol(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        }
    }
}

/// Why a packet value cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or binary field is longer than 65,535 bytes.
    #[error("field {0} is longer than 65535 bytes")]
    FieldTooLong(&'static str),
    /// The remaining length exceeds 268,435,455 bytes.
    #[error("packet exceeds the maximum remaining length")]
    PacketTooLarge,
    /// The value is not representable in the requested protocol version (e.g. AUTH in 3.1.1).
    #[error("not representable in this protocol version: {0}")]
    NotInVersion(&'static str),
    /// The value breaks a wire-format rule (e.g. a packet identifier of 0 with QoS > 0).
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}
