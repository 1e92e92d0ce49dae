//! The fifteen MQTT control packets, one file each (the four publish acknowledgements share
//! one form and one file). Each file holds the packet's type, its encode and decode, and its
//! tests.

mod auth;
mod connack;
mod connect;
mod disconnect;
mod ping;
mod puback;
mod publish;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

pub use auth::{Auth, AuthProperties};
pub use connack::{ConnAck, ConnAckProperties};
pub use connect::{Connect, ConnectProperties, Will, WillProperties};
pub use disconnect::{Disconnect, DisconnectProperties};
pub use puback::{AckProperties, PubAck};
pub use publish::{PublishHeader, Publish, PublishProperties, encode_publish};
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, SubscribeFilter, SubscribeProperties, SubscriptionOptions};
pub use unsuback::UnsubAck;
pub use unsubscribe::{Unsubscribe, UnsubscribeProperties};

use bytes::{Bytes, BytesMut};

use crate::{DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion};

/// Any MQTT control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (boxed: large, and once per connection).
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(PubAck),
    /// PUBREC.
    PubRec(PubAck),
    /// PUBREL.
    PubRel(PubAck),
    /// PUBCOMP.
    PubComp(PubAck),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5 only).
    Auth(Auth),
}

impl Packet {
    /// Parses one complete packet. `frame` holds exactly the packet (fixed header included) as
    /// found by [`crate::frame::check`], whose result is `header`. CONNECT is decoded whatever
    /// `version` says (it is what tells the version); every other packet follows `version`.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the MQTT 5 reason code (malformed 0x81, protocol error 0x82,
    /// unsupported protocol version 0x84, …).
    pub fn decode(
        frame: Bytes,
        header: &FixedHeader,
        version: ProtocolVersion,
    ) -> Result<Packet, DecodeError> {
        packet_decode(frame, header, version)
    }

    /// Appends the packet's wire encoding for `version` to `out`. MQTT 3.1.1 encodings leave
    /// out properties and map reason codes to the 3.1.1 return codes.
    ///
    /// # Errors
    /// [`EncodeError`] when a field cannot be represented (a string over 65,535 bytes, a packet
    /// over 268,435,455 bytes of remaining length, AUTH for MQTT 3.1.1, …); nothing is appended
    /// then.
    pub fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        packet_encode(self, version, out)
    }

    /// The number of bytes [`Packet::encode`] would append.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        packet_encoded_len(self, version)
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}
