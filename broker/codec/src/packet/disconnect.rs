//! DISCONNECT (spec v5 3.14, v3.1.1 3.14).

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

/// Disconnect Reason Codes (spec v5 3.14.2.1).
const REASONS: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

/// DISCONNECT. MQTT 5 may send it in both directions with a reason code; MQTT 3.1.1 only
/// client to server, empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// Disconnect Reason Code (0x00 when absent on the wire).
    pub reason: ReasonCode,
    /// MQTT 5 properties.
    pub properties: DisconnectProperties,
}

/// MQTT 5 DISCONNECT properties (spec 3.14.2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct DisconnectProperties {
    pub session_expiry_interval: Option<u32>,
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
    pub server_reference: Option<ByteString>,
}

impl EncodeProperties for DisconnectProperties {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.opt(
            PropertyId::SessionExpiryInterval,
            self.session_expiry_interval,
        )?;
        s.opt_field(PropertyId::ReasonString, str_bytes(&self.reason_string))?;
        s.pairs(&self.user_properties)?;
        s.opt_field(
            PropertyId::ServerReference,
            str_bytes(&self.server_reference),
        )
    }
}

impl DisconnectProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => self.session_expiry_interval = Some(v),
            Property::ReasonString(v) => self.reason_string = Some(v),
            Property::UserProperty(k, v) => self.user_properties.push((k, v)),
            Property::ServerReference(v) => self.server_reference = Some(v),
            _ => return Err(NOT_ALLOWED),
        }
        Ok(())
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.session_expiry_interval.is_none()
            && self.reason_string.is_none()
            && self.user_properties.is_empty()
            && self.server_reference.is_none()
    }
}

/// Decodes a DISCONNECT.
///
/// MQTT 5 abbreviates (3.14.2.1, 3.14.2.2.1): Remaining Length 0 means reason 0x00, and
/// below 2 there is no property length. Rules that depend on the session (a non-zero Session
/// Expiry Interval after CONNECT said 0, `MQTT-3.14.2-2`'s server direction) are the engine's.
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<Disconnect, DecodeError> {
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let mut d = Disconnect::default();
    if version == ProtocolVersion::V5 && !r.is_empty() {
        d.reason = ReasonCode(r.u8()?);
        if !reason_allowed(d.reason, REASONS) {
            return Err(DecodeError::Malformed(
                "reason code not valid for DISCONNECT",
            ));
        }
        if !r.is_empty() {
            let props = &mut d.properties;
            read_properties(&mut r, PropertyContext::Disconnect, |p| props.apply(p))?;
        }
    }
    // v3.1.1 3.14.1: the Remaining Length is 0.
    r.finish("unexpected bytes in DISCONNECT")?;
    Ok(d)
}

impl Disconnect {
    fn measure(&self, version: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if version == ProtocolVersion::V311 {
            return Ok((0, 0));
        }
        if !reason_allowed(self.reason, REASONS) {
            return Err(EncodeError::Invalid("reason code not valid for DISCONNECT"));
        }
        let props = properties_len(&self.properties)?;
        Ok(match (self.reason.0, props) {
            (0, 0) => (0, 0),
            (_, 0) => (1, 0),
            _ => (1 + block_len(props), props),
        })
    }

    /// Bytes `encode` would append (0 when it would fail).
    pub(crate) fn encoded_len(&self, version: ProtocolVersion) -> usize {
        self.measure(version)
            .and_then(|(body, _)| packet_len(body))
            .unwrap_or(0)
    }

    /// Appends the DISCONNECT in its shortest form; MQTT 3.1.1's is the bare fixed header.
    pub(crate) fn encode(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let (body, props) = self.measure(version)?;
        out.reserve(packet_len(body)?);
        put_fixed_header(out, first_byte(PacketType::Disconnect), body);
        if body >= 1 {
            out.put_u8(self.reason.0);
        }
        if body > 1 {
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

    fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<Disconnect, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h, v)
    }

    fn enc(d: &Disconnect, v: ProtocolVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        d.encode(v, &mut out).unwrap();
        assert_eq!(out.len(), d.encoded_len(v));
        out.to_vec()
    }

    #[test]
    fn short_forms() {
        assert_eq!(dec(b"\xE0\x00", V311), Ok(Disconnect::default()));
        assert_eq!(dec(b"\xE0\x00", V5), Ok(Disconnect::default()));
        let d = dec(b"\xE0\x01\x04", V5).unwrap();
        assert_eq!(d.reason, ReasonCode::DISCONNECT_WITH_WILL);
        assert_eq!(enc(&d, V5), b"\xE0\x01\x04");
        assert_eq!(enc(&d, V311), b"\xE0\x00");
        assert_eq!(enc(&dec(b"\xE0\x02\x00\x00", V5).unwrap(), V5), b"\xE0\x00");
    }

    #[test]
    fn with_properties() {
        // Use another server, Server Reference "host2".
        let wire = b"\xE0\x0A\x9C\x08\x1C\x00\x05host2";
        let d = dec(wire, V5).unwrap();
        assert_eq!(d.reason, ReasonCode::USE_ANOTHER_SERVER);
        assert_eq!(d.properties.server_reference.as_deref(), Some("host2"));
        assert_eq!(enc(&d, V5), wire);
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            dec(b"\xE0\x01\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\xE0\x01\x10", V5),
            Err(DecodeError::Malformed(_))
        ));
        // Topic Alias is not a DISCONNECT property.
        assert!(matches!(
            dec(b"\xE0\x05\x00\x03\x23\x00\x01", V5),
            Err(DecodeError::Malformed(_))
        ));
    }
}
