//! UNSUBACK (spec v5 3.11, v3.1.1 3.11).

use bytes::{BufMut, Bytes, BytesMut};

use super::{first_byte, reason_allowed};
use crate::primitives::{Reader, add, packet_len, put_fixed_header};
use crate::properties::{
    PropertyContext, block_len, properties_len, put_properties, read_properties,
};
use crate::{
    AckProperties, DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, ReasonCode,
};

/// UNSUBACK reason codes (spec v5 3.11.3).
const REASONS: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];

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

/// Decodes an UNSUBACK (clients and the load tool receive it).
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<UnsubAck, DecodeError> {
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let packet_id = r.u16()?;
    if packet_id == 0 {
        return Err(DecodeError::Malformed("UNSUBACK with packet identifier 0"));
    }
    let mut ack = UnsubAck {
        packet_id,
        ..UnsubAck::default()
    };
    if version == ProtocolVersion::V5 {
        let props = &mut ack.properties;
        read_properties(&mut r, PropertyContext::UnsubAck, |p| props.apply(p))?;
        // One reason code per filter of the UNSUBSCRIBE, which has at least one (3.11.3).
        if r.is_empty() {
            return Err(DecodeError::Malformed("UNSUBACK without reason codes"));
        }
        ack.reasons.reserve_exact(r.remaining());
        while !r.is_empty() {
            let code = ReasonCode(r.u8()?);
            if !reason_allowed(code, REASONS) {
                return Err(DecodeError::Malformed("reason code not valid for UNSUBACK"));
            }
            ack.reasons.push(code);
        }
    }
    // v3.1.1 3.11.1: the Remaining Length is 2, there is no payload.
    r.finish("unexpected bytes after UNSUBACK")?;
    Ok(ack)
}

impl UnsubAck {
    fn measure(&self, version: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::Invalid("UNSUBACK with packet identifier 0"));
        }
        if version == ProtocolVersion::V311 {
            return Ok((2, 0));
        }
        if self.reasons.is_empty() {
            return Err(EncodeError::Invalid("UNSUBACK without reason codes"));
        }
        if !self.reasons.iter().all(|&c| reason_allowed(c, REASONS)) {
            return Err(EncodeError::Invalid("reason code not valid for UNSUBACK"));
        }
        let props = properties_len(&self.properties)?;
        Ok((add(2 + block_len(props), self.reasons.len()), props))
    }

    /// Bytes `encode` would append (0 when it would fail).
    pub(crate) fn encoded_len(&self, version: ProtocolVersion) -> usize {
        self.measure(version)
            .and_then(|(body, _)| packet_len(body))
            .unwrap_or(0)
    }

    /// Appends the UNSUBACK; MQTT 3.1.1 has neither properties nor reason codes.
    pub(crate) fn encode(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let (body, props) = self.measure(version)?;
        out.reserve(packet_len(body)?);
        put_fixed_header(out, first_byte(PacketType::UnsubAck), body);
        out.put_u16(self.packet_id);
        if version == ProtocolVersion::V5 {
            put_properties(out, &self.properties, props);
            for r in &self.reasons {
                out.put_u8(r.0);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProtocolVersion::*;
    use crate::frame::check;

    fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h, v)
    }

    #[test]
    fn vectors() {
        let u = dec(b"\xB0\x02\x00\x09", V311).unwrap();
        assert_eq!((u.packet_id, u.reasons.len()), (9, 0));
        let mut out = BytesMut::new();
        let with_reasons = UnsubAck {
            packet_id: 9,
            reasons: vec![ReasonCode(0x11)],
            ..Default::default()
        };
        with_reasons.encode(V311, &mut out).unwrap();
        assert_eq!(&out[..], b"\xB0\x02\x00\x09");

        let wire = b"\xB0\x05\x00\x09\x00\x00\x11";
        let u = dec(wire, V5).unwrap();
        assert_eq!(
            u.reasons,
            vec![ReasonCode(0), ReasonCode::NO_SUBSCRIPTION_EXISTED]
        );
        let mut out = BytesMut::new();
        u.encode(V5, &mut out).unwrap();
        assert_eq!(&out[..], wire);
        assert_eq!(u.encoded_len(V5), wire.len());
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            dec(b"\xB0\x03\x00\x09\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\xB0\x03\x00\x09\x00", V5),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\xB0\x04\x00\x09\x00\x01", V5),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\xB0\x02\x00\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
    }
}
