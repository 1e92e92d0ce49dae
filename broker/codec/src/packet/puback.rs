//! PUBACK, PUBREC, PUBREL and PUBCOMP (spec v5 3.4–3.7): four packets of one form.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::{first_byte, reason_allowed};
use crate::primitives::{Reader, packet_len, put_fixed_header};
use crate::properties::{
    EncodeProperties, NOT_ALLOWED, Property, PropertyContext, PropertyId, PropertySink, block_len,
    properties_len, put_properties, read_properties, str_bytes,
};
use crate::{
    DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, ReasonCode, UserProperty,
};

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

impl EncodeProperties for AckProperties {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.opt_field(PropertyId::ReasonString, str_bytes(&self.reason_string))?;
        s.pairs(&self.user_properties)
    }
}

impl AckProperties {
    /// Stores one property of a PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK or UNSUBACK block.
    pub(crate) fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::ReasonString(v) => self.reason_string = Some(v),
            Property::UserProperty(k, v) => self.user_properties.push((k, v)),
            _ => return Err(NOT_ALLOWED),
        }
        Ok(())
    }
}

/// The reason codes each acknowledgement may carry (spec v5 3.4.2.1, 3.5.2.1, 3.6.2.1,
/// 3.7.2.1); any other value is malformed (`MQTT-3.4.2-1` and siblings: the sender "MUST use
/// one of the … Reason Codes").
fn reasons(kind: PacketType) -> &'static [u8] {
    match kind {
        PacketType::PubRel | PacketType::PubComp => &[0x00, 0x92],
        _ => &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
    }
}

/// Decodes PUBACK, PUBREC, PUBREL or PUBCOMP (`header.packet_type` says which).
///
/// MQTT 5 allows two abbreviations (3.4.2.1, 3.4.2.2.1): Remaining Length 2 means reason 0x00
/// and no properties, Remaining Length 3 a reason code and no properties.
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<PubAck, DecodeError> {
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let packet_id = r.u16()?;
    if packet_id == 0 {
        // MQTT-2.2.1-3 / v3.1.1 MQTT-2.3.1-1: identifiers are non-zero.
        return Err(DecodeError::Malformed(
            "acknowledgement with packet identifier 0",
        ));
    }
    let mut ack = PubAck {
        packet_id,
        ..PubAck::default()
    };
    if version == ProtocolVersion::V5 && !r.is_empty() {
        ack.reason = ReasonCode(r.u8()?);
        if !reason_allowed(ack.reason, reasons(header.packet_type)) {
            return Err(DecodeError::Malformed(
                "reason code not valid for this acknowledgement",
            ));
        }
        if !r.is_empty() {
            let props = &mut ack.properties;
            read_properties(&mut r, PropertyContext::Ack, |p| props.apply(p))?;
        }
    }
    // v3.1.1: the Remaining Length is exactly 2 (3.4.1 and siblings).
    r.finish("unexpected bytes after an acknowledgement")?;
    Ok(ack)
}

impl PubAck {
    /// Remaining length and property content length for `version`.
    fn measure(
        &self,
        kind: PacketType,
        version: ProtocolVersion,
    ) -> Result<(usize, usize), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::Invalid(
                "acknowledgement with packet identifier 0",
            ));
        }
        if version == ProtocolVersion::V311 {
            return Ok((2, 0));
        }
        if !reason_allowed(self.reason, reasons(kind)) {
            return Err(EncodeError::Invalid(
                "reason code not valid for this acknowledgement",
            ));
        }
        let props = properties_len(&self.properties)?;
        // The shortest form: omit the reason when it is 0x00 and there are no properties,
        // and the property length when there are none.
        Ok(match (self.reason.0, props) {
            (0, 0) => (2, 0),
            (_, 0) => (3, 0),
            _ => (3 + block_len(props), props),
        })
    }

    /// Bytes [`PubAck::encode`] would append (0 when it would fail).
    pub(crate) fn encoded_len(&self, kind: PacketType, version: ProtocolVersion) -> usize {
        self.measure(kind, version)
            .and_then(|(body, _)| packet_len(body))
            .unwrap_or(0)
    }

    /// Appends the acknowledgement as packet type `kind`.
    pub(crate) fn encode(
        &self,
        kind: PacketType,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let (body, props) = self.measure(kind, version)?;
        out.reserve(packet_len(body)?);
        put_fixed_header(out, first_byte(kind), body);
        out.put_u16(self.packet_id);
        if body >= 3 {
            out.put_u8(self.reason.0);
        }
        if body > 3 {
            put_properties(out, &self.properties, props);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProtocolVersion::*;
    use crate::frame::check;

    fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<PubAck, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h, v)
    }

    fn enc(a: &PubAck, kind: PacketType, v: ProtocolVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        a.encode(kind, v, &mut out).unwrap();
        assert_eq!(out.len(), a.encoded_len(kind, v));
        out.to_vec()
    }

    #[test]
    fn v311_vectors() {
        let a = dec(b"\x40\x02\x00\x07", V311).unwrap();
        assert_eq!(
            a,
            PubAck {
                packet_id: 7,
                ..Default::default()
            }
        );
        assert_eq!(enc(&a, PacketType::PubAck, V311), b"\x40\x02\x00\x07");
        assert_eq!(enc(&a, PacketType::PubRel, V311), b"\x62\x02\x00\x07");
        // Extra bytes after a 3.1.1 PUBACK are malformed.
        assert!(matches!(
            dec(b"\x40\x03\x00\x07\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\x40\x01\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\x40\x02\x00\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn v5_short_forms() {
        // Remaining length 2: success, no properties.
        let a = dec(b"\x40\x02\x00\x07", V5).unwrap();
        assert_eq!(
            (a.reason, a.properties.is_empty()),
            (ReasonCode::SUCCESS, true)
        );
        assert_eq!(enc(&a, PacketType::PubAck, V5), b"\x40\x02\x00\x07");
        // Remaining length 3: a reason code, no properties.
        let a = dec(b"\x40\x03\x00\x07\x10", V5).unwrap();
        assert_eq!(a.reason, ReasonCode::NO_MATCHING_SUBSCRIBERS);
        assert_eq!(enc(&a, PacketType::PubAck, V5), b"\x40\x03\x00\x07\x10");
        // Remaining length 4 with an empty property block decodes to the same as length 3.
        assert_eq!(dec(b"\x40\x04\x00\x07\x10\x00", V5).unwrap(), a);
        // Success with empty properties re-encodes in the shortest form.
        let a = dec(b"\x40\x04\x00\x07\x00\x00", V5).unwrap();
        assert_eq!(enc(&a, PacketType::PubAck, V5), b"\x40\x02\x00\x07");
    }

    #[test]
    fn v5_with_properties() {
        let wire = b"\x50\x0A\x00\x07\x80\x06\x1F\x00\x03bad";
        let a = dec(wire, V5).unwrap();
        assert_eq!(a.reason, ReasonCode::UNSPECIFIED_ERROR);
        assert_eq!(a.properties.reason_string.as_deref(), Some("bad"));
        assert_eq!(enc(&a, PacketType::PubRec, V5), wire);
    }

    #[test]
    fn v5_rejects() {
        // 0x10 is a PUBACK code, not a PUBREL one.
        assert!(matches!(
            dec(b"\x62\x03\x00\x07\x10", V5),
            Err(DecodeError::Malformed(_))
        ));
        assert!(dec(b"\x62\x03\x00\x07\x92", V5).is_ok());
        // Topic Alias is not an acknowledgement property.
        assert!(matches!(
            dec(b"\x40\x07\x00\x07\x00\x03\x23\x00\x01", V5),
            Err(DecodeError::Malformed(_))
        ));
        // Trailing byte after the property block.
        assert!(matches!(
            dec(b"\x40\x05\x00\x07\x00\x00\x00", V5),
            Err(DecodeError::Malformed(_))
        ));
        let bad = PubAck {
            packet_id: 1,
            reason: ReasonCode(0x10),
            ..Default::default()
        };
        assert!(
            bad.encode(PacketType::PubComp, V5, &mut BytesMut::new())
                .is_err()
        );
        assert_eq!(bad.encoded_len(PacketType::PubComp, V5), 0);
    }
}
