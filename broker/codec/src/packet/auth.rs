//! AUTH (spec v5 3.15), MQTT 5 only.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::{first_byte, reason_allowed};
use crate::primitives::{Reader, packet_len, put_fixed_header};
use crate::properties::{
    EncodeProperties, NOT_ALLOWED, Property, PropertyContext, PropertyId, PropertySink, bin_bytes,
    block_len, check_auth_data, properties_len, put_properties, read_properties, str_bytes,
};
use crate::{
    DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, ReasonCode, UserProperty,
};

/// Authenticate Reason Codes (spec v5 3.15.2.1).
const REASONS: &[u8] = &[0x00, 0x18, 0x19];

/// AUTH: enhanced authentication exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// Authenticate Reason Code (0x00, 0x18 or 0x19).
    pub reason: ReasonCode,
    /// Properties.
    pub properties: AuthProperties,
}

/// AUTH properties (spec 3.15.2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct AuthProperties {
    pub authentication_method: Option<ByteString>,
    pub authentication_data: Option<Bytes>,
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
}

impl EncodeProperties for AuthProperties {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.opt_field(
            PropertyId::AuthenticationMethod,
            str_bytes(&self.authentication_method),
        )?;
        s.opt_field(
            PropertyId::AuthenticationData,
            bin_bytes(&self.authentication_data),
        )?;
        s.opt_field(PropertyId::ReasonString, str_bytes(&self.reason_string))?;
        s.pairs(&self.user_properties)
    }
}

impl AuthProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::AuthenticationMethod(v) => self.authentication_method = Some(v),
            Property::AuthenticationData(v) => self.authentication_data = Some(v),
            Property::ReasonString(v) => self.reason_string = Some(v),
            Property::UserProperty(k, v) => self.user_properties.push((k, v)),
            _ => return Err(NOT_ALLOWED),
        }
        Ok(())
    }
}

/// Decodes an AUTH.
///
/// Remaining Length 0 means reason 0x00 without properties (3.15.2.1); otherwise the reason
/// code and the property length are both present (unlike DISCONNECT, AUTH has no one-byte
/// form). Whether the Authentication Method matches the CONNECT's (`MQTT-4.12.0-5`) is the
/// engine's check, which also covers a missing method.
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<Auth, DecodeError> {
    if version == ProtocolVersion::V311 {
        // Packet type 15 is reserved in MQTT 3.1.1 (3.1.1 table 2.1).
        return Err(DecodeError::Malformed("AUTH does not exist in MQTT 3.1.1"));
    }
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let mut auth = Auth::default();
    if !r.is_empty() {
        auth.reason = ReasonCode(r.u8()?);
        if !reason_allowed(auth.reason, REASONS) {
            return Err(DecodeError::Malformed("reason code not valid for AUTH"));
        }
        let props = &mut auth.properties;
        read_properties(&mut r, PropertyContext::Auth, |p| props.apply(p))?;
        check_auth_data(&props.authentication_method, &props.authentication_data)?;
    }
    r.finish("unexpected bytes after AUTH")?;
    Ok(auth)
}

impl Auth {
    fn measure(&self, version: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if version == ProtocolVersion::V311 {
            return Err(EncodeError::NotInVersion("AUTH"));
        }
        if !reason_allowed(self.reason, REASONS) {
            return Err(EncodeError::Invalid("reason code not valid for AUTH"));
        }
        let p = &self.properties;
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(EncodeError::Invalid(
                "Authentication Data without Authentication Method",
            ));
        }
        let props = properties_len(p)?;
        Ok(if self.reason.0 == 0 && props == 0 {
            (0, 0)
        } else {
            (1 + block_len(props), props)
        })
    }

    /// Bytes `encode` would append (0 when it would fail).
    pub(crate) fn encoded_len(&self, version: ProtocolVersion) -> usize {
        self.measure(version)
            .and_then(|(body, _)| packet_len(body))
            .unwrap_or(0)
    }

    /// Appends the AUTH.
    pub(crate) fn encode(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let (body, props) = self.measure(version)?;
        out.reserve(packet_len(body)?);
        put_fixed_header(out, first_byte(PacketType::Auth), body);
        if body > 0 {
            out.put_u8(self.reason.0);
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

    fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<Auth, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h, v)
    }

    fn enc(a: &Auth, v: ProtocolVersion) -> Result<Vec<u8>, EncodeError> {
        let mut out = BytesMut::new();
        a.encode(v, &mut out)?;
        assert_eq!(out.len(), a.encoded_len(v));
        Ok(out.to_vec())
    }

    #[test]
    fn vectors() {
        assert_eq!(dec(b"\xF0\x00", V5), Ok(Auth::default()));
        assert_eq!(enc(&Auth::default(), V5).unwrap(), b"\xF0\x00");
        // Continue authentication, method "SCRAM", data "abc".
        let wire = b"\xF0\x10\x18\x0E\x15\x00\x05SCRAM\x16\x00\x03abc";
        let a = dec(wire, V5).unwrap();
        assert_eq!(a.reason, ReasonCode::CONTINUE_AUTHENTICATION);
        assert_eq!(a.properties.authentication_method.as_deref(), Some("SCRAM"));
        assert_eq!(
            a.properties.authentication_data.as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(enc(&a, V5).unwrap(), wire);
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            dec(b"\xF0\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            enc(&Auth::default(), V311),
            Err(EncodeError::NotInVersion("AUTH"))
        );
        // No one-byte form.
        assert!(matches!(
            dec(b"\xF0\x01\x18", V5),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\xF0\x02\x87\x00", V5),
            Err(DecodeError::Malformed(_))
        ));
        // Data without method.
        assert!(matches!(
            dec(b"\xF0\x07\x18\x05\x16\x00\x02ab", V5),
            Err(DecodeError::Protocol(_))
        ));
    }
}
