//! SUBACK (spec v5 3.9, v3.1.1 3.9).

use bytes::{BufMut, Bytes, BytesMut};

use super::{first_byte, reason_allowed};
use crate::primitives::{Reader, add, packet_len, put_fixed_header};
use crate::properties::{
    PropertyContext, block_len, properties_len, put_properties, read_properties,
};
use crate::{
    AckProperties, DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, ReasonCode,
};

/// SUBACK reason codes (spec v5 3.9.3).
const REASONS: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];

/// SUBACK return codes of MQTT 3.1.1 (MQTT-3.9.3-2: the others are reserved).
const V311_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];

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

/// Decodes a SUBACK (clients and the load tool receive it).
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<SubAck, DecodeError> {
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let packet_id = r.u16()?;
    if packet_id == 0 {
        return Err(DecodeError::Malformed("SUBACK with packet identifier 0"));
    }
    let mut ack = SubAck {
        packet_id,
        ..SubAck::default()
    };
    let allowed = match version {
        ProtocolVersion::V311 => V311_CODES,
        ProtocolVersion::V5 => {
            let props = &mut ack.properties;
            read_properties(&mut r, PropertyContext::SubAck, |p| props.apply(p))?;
            REASONS
        }
    };
    // A SUBSCRIBE has at least one filter and SUBACK one code per filter (3.9.3).
    if r.is_empty() {
        return Err(DecodeError::Malformed("SUBACK without reason codes"));
    }
    ack.reasons.reserve_exact(r.remaining());
    while !r.is_empty() {
        let code = ReasonCode(r.u8()?);
        if !reason_allowed(code, allowed) {
            return Err(DecodeError::Malformed("reason code not valid for SUBACK"));
        }
        ack.reasons.push(code);
    }
    Ok(ack)
}

impl SubAck {
    fn measure(&self, version: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::Invalid("SUBACK with packet identifier 0"));
        }
        if self.reasons.is_empty() {
            return Err(EncodeError::Invalid("SUBACK without reason codes"));
        }
        let mut body = 2;
        let mut props = 0;
        if version == ProtocolVersion::V5 {
            if !self.reasons.iter().all(|&c| reason_allowed(c, REASONS)) {
                return Err(EncodeError::Invalid("reason code not valid for SUBACK"));
            }
            props = properties_len(&self.properties)?;
            body += block_len(props);
        }
        Ok((add(body, self.reasons.len()), props))
    }

    /// Bytes `encode` would append (0 when it would fail).
    pub(crate) fn encoded_len(&self, version: ProtocolVersion) -> usize {
        self.measure(version)
            .and_then(|(body, _)| packet_len(body))
            .unwrap_or(0)
    }

    /// Appends the SUBACK; MQTT 3.1.1 maps each reason with [`ReasonCode::to_v311_suback`].
    pub(crate) fn encode(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let (body, props) = self.measure(version)?;
        out.reserve(packet_len(body)?);
        put_fixed_header(out, first_byte(PacketType::SubAck), body);
        out.put_u16(self.packet_id);
        match version {
            ProtocolVersion::V311 => {
                for r in &self.reasons {
                    out.put_u8(r.to_v311_suback());
                }
            }
            ProtocolVersion::V5 => {
                put_properties(out, &self.properties, props);
                for r in &self.reasons {
                    out.put_u8(r.0);
                }
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

    fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<SubAck, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h, v)
    }

    fn enc(s: &SubAck, v: ProtocolVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        s.encode(v, &mut out).unwrap();
        assert_eq!(out.len(), s.encoded_len(v));
        out.to_vec()
    }

    #[test]
    fn v311() {
        let wire = b"\x90\x05\x00\x01\x00\x02\x80";
        let s = dec(wire, V311).unwrap();
        assert_eq!(
            s.reasons,
            vec![ReasonCode(0), ReasonCode(2), ReasonCode::UNSPECIFIED_ERROR]
        );
        assert_eq!(enc(&s, V311), wire);
        // MQTT 5 failure codes become 0x80.
        let s = SubAck {
            packet_id: 1,
            reasons: vec![ReasonCode::NOT_AUTHORIZED],
            ..Default::default()
        };
        assert_eq!(enc(&s, V311), b"\x90\x03\x00\x01\x80");
        assert!(matches!(
            dec(b"\x90\x03\x00\x01\x03", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\x90\x02\x00\x01", V311),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn v5() {
        let wire = b"\x90\x09\x00\x01\x04\x1F\x00\x01x\x01\x87";
        let s = dec(wire, V5).unwrap();
        assert_eq!(s.reasons, vec![ReasonCode(1), ReasonCode::NOT_AUTHORIZED]);
        assert_eq!(s.properties.reason_string.as_deref(), Some("x"));
        assert_eq!(enc(&s, V5), wire);
        // 0x11 is an UNSUBACK code.
        assert!(matches!(
            dec(b"\x90\x04\x00\x01\x00\x11", V5),
            Err(DecodeError::Malformed(_))
        ));
    }
}
