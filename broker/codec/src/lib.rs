//! Leaf of the data path: the MQTT 3.1.1 and 5.0 wire codec, shared by the gateway (hop 1,
//! framing and CONNECT) and the engine (hop 4, everything else).
//!
//! Parsing is two steps, as in mini-redis: [`frame::check`] answers "is a whole packet
//! buffered?" (need-more-bytes is `Ok(None)`, never an error), then [`Packet::decode`] parses
//! one complete frame. Decoding is zero-copy over [`bytes::Bytes`]: topics, strings and payloads
//! are slices of the frame. Every malformed packet the specifications name yields a
//! [`DecodeError`] carrying the MQTT 5 reason code to answer with; nothing panics on input.
//!
//! MQTT 5 properties are optional fields of the same packet types (`*Properties` structs);
//! encoding for MQTT 3.1.1 leaves them out.
#![forbid(unsafe_code)]

pub mod error;
pub mod frame;
pub mod packet;
pub mod primitives;
pub mod properties;
pub mod reason;
pub mod topic;

pub use bytestring::ByteString;
pub use error::{DecodeError, EncodeError};
pub use frame::{FixedHeader, PacketType};
pub use packet::*;
pub use reason::ReasonCode;
pub use topic::{TopicError, TopicFilter, TopicName};

/// The protocol level a connection speaks, from its CONNECT packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT.
    pub const fn level(self) -> u8 {
        match self {
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }
}

/// Quality of service of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// At most once.
    #[default]
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a two-bit value; `None` for 3, which is malformed everywhere.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

/// An MQTT 5 user property: a UTF-8 string pair, zero-copy.
pub type UserProperty = (ByteString, ByteString);
