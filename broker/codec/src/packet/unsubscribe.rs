//! UNSUBSCRIBE (spec v5 3.10, v3.1.1 3.10).

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::first_byte;
use crate::primitives::{Reader, add, field_len, packet_len, put_field, put_fixed_header};
use crate::properties::{
    EncodeProperties, NOT_ALLOWED, Property, PropertyContext, PropertySink, block_len,
    properties_len, put_properties, read_properties,
};
use crate::{DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, UserProperty};

/// UNSUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet Identifier (never 0).
    pub packet_id: u16,
    /// At least one topic filter (`MQTT-3.10.3-2`).
    pub filters: Vec<ByteString>,
    /// MQTT 5 properties.
    pub properties: UnsubscribeProperties,
}

/// MQTT 5 UNSUBSCRIBE properties: user properties only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct UnsubscribeProperties {
    pub user_properties: Vec<UserProperty>,
}

impl EncodeProperties for UnsubscribeProperties {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.pairs(&self.user_properties)
    }
}

/// Decodes an UNSUBSCRIBE.
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<Unsubscribe, DecodeError> {
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let packet_id = r.u16()?;
    if packet_id == 0 {
        // MQTT-2.2.1-3 / v3.1.1 MQTT-2.3.1-1.
        return Err(DecodeError::Malformed(
            "UNSUBSCRIBE with packet identifier 0",
        ));
    }
    let mut properties = UnsubscribeProperties::default();
    if version == ProtocolVersion::V5 {
        read_properties(&mut r, PropertyContext::Unsubscribe, |p| match p {
            Property::UserProperty(k, v) => {
                properties.user_properties.push((k, v));
                Ok(())
            }
            _ => Err(NOT_ALLOWED),
        })?;
    }
    if r.is_empty() {
        // v5 3.10.3: "An UNSUBSCRIBE packet with no Payload is a Protocol Error"; v3.1.1
        // MQTT-3.10.3-2 a protocol violation.
        return Err(match version {
            ProtocolVersion::V5 => DecodeError::Protocol("UNSUBSCRIBE without topic filters"),
            ProtocolVersion::V311 => DecodeError::Malformed("UNSUBSCRIBE without topic filters"),
        });
    }
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?);
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

impl Unsubscribe {
    fn measure(&self, version: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::Invalid("UNSUBSCRIBE with packet identifier 0"));
        }
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid(
                "UNSUBSCRIBE without topic filters (MQTT-3.10.3-2)",
            ));
        }
        let mut body = 2;
        let mut props = 0;
        if version == ProtocolVersion::V5 {
            props = properties_len(&self.properties)?;
            body += block_len(props);
        }
        for f in &self.filters {
            body = add(body, field_len(f.as_bytes(), "Topic Filter")?);
        }
        Ok((body, props))
    }

    /// Bytes `encode` would append (0 when it would fail).
    pub(crate) fn encoded_len(&self, version: ProtocolVersion) -> usize {
        self.measure(version)
            .and_then(|(body, _)| packet_len(body))
            .unwrap_or(0)
    }

    /// Appends the UNSUBSCRIBE.
    pub(crate) fn encode(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let (body, props) = self.measure(version)?;
        out.reserve(packet_len(body)?);
        put_fixed_header(out, first_byte(PacketType::Unsubscribe), body);
        out.put_u16(self.packet_id);
        if version == ProtocolVersion::V5 {
            put_properties(out, &self.properties, props);
        }
        for f in &self.filters {
            put_field(out, f.as_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProtocolVersion::*;
    use crate::frame::check;

    fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<Unsubscribe, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h, v)
    }

    #[test]
    fn vectors() {
        for (wire, v) in [
            (&b"\xA2\x0C\x00\x05\x00\x03a/b\x00\x03c/d"[..], V311),
            (&b"\xA2\x0D\x00\x05\x00\x00\x03a/b\x00\x03c/d"[..], V5),
        ] {
            let u = dec(wire, v).unwrap();
            assert_eq!(u.packet_id, 5);
            assert_eq!(
                u.filters,
                vec![ByteString::from("a/b"), ByteString::from("c/d")]
            );
            let mut out = BytesMut::new();
            u.encode(v, &mut out).unwrap();
            assert_eq!(&out[..], wire);
            assert_eq!(u.encoded_len(v), wire.len());
        }
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            dec(b"\xA2\x02\x00\x05", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\xA2\x03\x00\x05\x00", V5),
            Err(DecodeError::Protocol(_))
        ));
        assert!(matches!(
            dec(b"\xA2\x05\x00\x00\x00\x01a", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\xA2\x05\x00\x05\x00\x02a", V311),
            Err(DecodeError::Malformed(_))
        ));
        // Subscription Identifier is not an UNSUBSCRIBE property.
        assert!(matches!(
            dec(b"\xA2\x08\x00\x05\x02\x0B\x01\x00\x01a", V5),
            Err(DecodeError::Malformed(_))
        ));
    }
}
