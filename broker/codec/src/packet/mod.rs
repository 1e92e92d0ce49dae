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
pub use publish::{Publish, PublishHeader, PublishProperties, encode_publish, encoded_publish_len};
pub use suback::SubAck;
pub use subscribe::{
    RetainHandling, Subscribe, SubscribeFilter, SubscribeProperties, SubscriptionOptions,
};
pub use unsuback::UnsubAck;
pub use unsubscribe::{Unsubscribe, UnsubscribeProperties};

use bytes::{Bytes, BytesMut};

use crate::{DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, ReasonCode};

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
    #[inline]
    pub fn decode(
        frame: Bytes,
        header: &FixedHeader,
        version: ProtocolVersion,
    ) -> Result<Packet, DecodeError> {
        packet_decode(frame, header, version)
    }

    /// Appends the packet's wire encoding for `version` to `out`. MQTT 3.1.1 encodings leave
    /// out properties and map reason codes to the 3.1.1 return codes. CONNECT is written in
    /// its own [`Connect::protocol`], which is what it announces (as decoding ignores
    /// `version` for it). Acknowledgements, DISCONNECT and AUTH use their shortest MQTT 5
    /// form. The whole packet is reserved in `out` up front.
    ///
    /// # Errors
    /// [`EncodeError`] when a field cannot be represented (a string over 65,535 bytes, a packet
    /// over 268,435,455 bytes of remaining length, AUTH for MQTT 3.1.1, …); nothing is appended
    /// then.
    pub fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        packet_encode(self, version, out)
    }

    /// The number of bytes [`Packet::encode`] would append: 0 when it would fail.
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

/// [`Packet::decode`]: checks that `frame` and `header` agree, then hands the frame to the
/// packet type's decoder.
#[inline]
fn packet_decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    if frame.len() != header.total_len() {
        return Err(DecodeError::Malformed(
            "frame length does not match its fixed header",
        ));
    }
    // `frame::check` validated these; a header built by hand gets the same rule
    // (MQTT-2.1.3-1).
    if header
        .packet_type
        .required_flags()
        .is_some_and(|f| f != header.flags)
    {
        return Err(DecodeError::Malformed(
            "reserved flags of the fixed header are wrong",
        ));
    }
    Ok(match header.packet_type {
        PacketType::Connect => Packet::Connect(Box::new(connect::decode(frame, header)?)),
        PacketType::ConnAck => Packet::ConnAck(connack::decode(frame, header, version)?),
        PacketType::Publish => publish::decode(frame, header, version)?,
        PacketType::PubAck => Packet::PubAck(puback::decode(frame, header, version)?),
        PacketType::PubRec => Packet::PubRec(puback::decode(frame, header, version)?),
        PacketType::PubRel => Packet::PubRel(puback::decode(frame, header, version)?),
        PacketType::PubComp => Packet::PubComp(puback::decode(frame, header, version)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode(frame, header, version)?),
        PacketType::SubAck => Packet::SubAck(suback::decode(frame, header, version)?),
        PacketType::Unsubscribe => {
            Packet::Unsubscribe(unsubscribe::decode(frame, header, version)?)
        }
        PacketType::UnsubAck => Packet::UnsubAck(unsuback::decode(frame, header, version)?),
        PacketType::PingReq => {
            ping::decode(header)?;
            Packet::PingReq
        }
        PacketType::PingResp => {
            ping::decode(header)?;
            Packet::PingResp
        }
        PacketType::Disconnect => Packet::Disconnect(disconnect::decode(frame, header, version)?),
        PacketType::Auth => Packet::Auth(auth::decode(frame, header, version)?),
    })
}

/// [`Packet::encode`]. CONNECT is written in its own `protocol` version, which is what it
/// announces, whatever `version` says (mirroring decode).
fn packet_encode(
    p: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match p {
        Packet::Connect(c) => c.encode(out),
        Packet::ConnAck(c) => c.encode(version, out),
        Packet::Publish(p) => p.encode(version, out),
        Packet::PubAck(a) => a.encode(PacketType::PubAck, version, out),
        Packet::PubRec(a) => a.encode(PacketType::PubRec, version, out),
        Packet::PubRel(a) => a.encode(PacketType::PubRel, version, out),
        Packet::PubComp(a) => a.encode(PacketType::PubComp, version, out),
        Packet::Subscribe(s) => s.encode(version, out),
        Packet::SubAck(s) => s.encode(version, out),
        Packet::Unsubscribe(u) => u.encode(version, out),
        Packet::UnsubAck(u) => u.encode(version, out),
        Packet::PingReq => {
            ping::encode(PacketType::PingReq, out);
            Ok(())
        }
        Packet::PingResp => {
            ping::encode(PacketType::PingResp, out);
            Ok(())
        }
        Packet::Disconnect(d) => d.encode(version, out),
        Packet::Auth(a) => a.encode(version, out),
    }
}

/// [`Packet::encoded_len`]: 0 when encoding would fail, as nothing would be appended.
fn packet_encoded_len(p: &Packet, version: ProtocolVersion) -> usize {
    match p {
        Packet::Connect(c) => c.encoded_len(),
        Packet::ConnAck(c) => c.encoded_len(version),
        Packet::Publish(p) => p.encoded_len(version),
        Packet::PubAck(a) => a.encoded_len(PacketType::PubAck, version),
        Packet::PubRec(a) => a.encoded_len(PacketType::PubRec, version),
        Packet::PubRel(a) => a.encoded_len(PacketType::PubRel, version),
        Packet::PubComp(a) => a.encoded_len(PacketType::PubComp, version),
        Packet::Subscribe(s) => s.encoded_len(version),
        Packet::SubAck(s) => s.encoded_len(version),
        Packet::Unsubscribe(u) => u.encoded_len(version),
        Packet::UnsubAck(u) => u.encoded_len(version),
        Packet::PingReq | Packet::PingResp => 2,
        Packet::Disconnect(d) => d.encoded_len(version),
        Packet::Auth(a) => a.encoded_len(version),
    }
}

/// True when `code` is one of the reason codes `list` allows for a packet.
pub(crate) fn reason_allowed(code: ReasonCode, list: &[u8]) -> bool {
    list.contains(&code.0)
}

/// The first byte of a packet of type `kind` with its required flags (spec 2.1.3).
pub(crate) const fn first_byte(kind: PacketType) -> u8 {
    let flags = match kind.required_flags() {
        Some(f) => f,
        None => 0,
    };
    ((kind as u8) << 4) | flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::check;

    #[test]
    fn frame_must_match_its_header() {
        let wire = Bytes::from_static(b"\x40\x02\x00\x01");
        let h = check(&wire, 64).unwrap().unwrap();
        // Frame with a trailing byte of the next packet.
        let longer = Bytes::from_static(b"\x40\x02\x00\x01\xC0");
        assert!(matches!(
            Packet::decode(longer, &h, ProtocolVersion::V5),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Packet::decode(wire.slice(..3), &h, ProtocolVersion::V5),
            Err(DecodeError::Malformed(_))
        ));
        // A hand-built header with wrong flags gets the fixed header rule too.
        let bad = FixedHeader { flags: 1, ..h };
        assert!(matches!(
            Packet::decode(wire.clone(), &bad, ProtocolVersion::V5),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            Packet::decode(wire, &h, ProtocolVersion::V5),
            Ok(Packet::PubAck(PubAck {
                packet_id: 1,
                ..Default::default()
            }))
        );
    }

    #[test]
    fn auth_is_malformed_in_v311() {
        let wire = Bytes::from_static(b"\xF0\x00");
        let h = check(&wire, 64).unwrap().unwrap();
        assert!(matches!(
            Packet::decode(wire, &h, ProtocolVersion::V311),
            Err(DecodeError::Malformed(_))
        ));
        let mut out = BytesMut::new();
        let auth = Packet::Auth(Auth::default());
        assert_eq!(
            auth.encode(ProtocolVersion::V311, &mut out),
            Err(EncodeError::NotInVersion("AUTH"))
        );
        assert!(out.is_empty());
        assert_eq!(auth.encoded_len(ProtocolVersion::V311), 0);
    }

    #[test]
    fn connect_decodes_whatever_the_version_says() {
        let wire = Bytes::from_static(b"\x10\x0D\x00\x04MQTT\x05\x02\x00\x3C\x00\x00\x00");
        let h = check(&wire, 64).unwrap().unwrap();
        let Ok(Packet::Connect(c)) = Packet::decode(wire, &h, ProtocolVersion::V311) else {
            panic!("CONNECT decodes");
        };
        assert_eq!(c.protocol, ProtocolVersion::V5);
        // And encodes in its own version whatever `version` says.
        let p = Packet::Connect(c);
        let mut out = BytesMut::new();
        p.encode(ProtocolVersion::V311, &mut out).unwrap();
        assert_eq!(
            &out[..],
            b"\x10\x0D\x00\x04MQTT\x05\x02\x00\x3C\x00\x00\x00"
        );
        assert_eq!(p.encoded_len(ProtocolVersion::V311), out.len());
    }
}
