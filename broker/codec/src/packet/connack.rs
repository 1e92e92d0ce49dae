//! CONNACK (spec v5 3.2, v3.1.1 3.2).

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::{first_byte, reason_allowed};
use crate::primitives::{Reader, packet_len, put_fixed_header};
use crate::properties::{
    EncodeProperties, NOT_ALLOWED, Property, PropertyContext, PropertyId, PropertySink, bin_bytes,
    block_len, check_auth_data, properties_len, put_properties, read_properties, str_bytes,
};
use crate::{
    DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, QoS, ReasonCode,
    UserProperty,
};

/// CONNACK. For MQTT 3.1.1 the reason code is mapped to the return code 0–5 on encode
/// ([`ReasonCode::to_v311_connack`]) and back on decode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present.
    pub session_present: bool,
    /// Connect Reason Code.
    pub reason: ReasonCode,
    /// MQTT 5 properties.
    pub properties: ConnAckProperties,
}

/// MQTT 5 CONNACK properties (spec 3.2.2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct ConnAckProperties {
    pub session_expiry_interval: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_qos: Option<QoS>,
    pub retain_available: Option<bool>,
    pub maximum_packet_size: Option<u32>,
    pub assigned_client_identifier: Option<ByteString>,
    pub topic_alias_maximum: Option<u16>,
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifiers_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
    pub server_keep_alive: Option<u16>,
    pub response_information: Option<ByteString>,
    pub server_reference: Option<ByteString>,
    pub authentication_method: Option<ByteString>,
    pub authentication_data: Option<Bytes>,
}

/// The Connect Reason Codes of spec v5 3.2.2.2.
const REASONS: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];

impl EncodeProperties for ConnAckProperties {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        use PropertyId as I;
        s.opt(I::SessionExpiryInterval, self.session_expiry_interval)?;
        s.opt(I::ReceiveMaximum, self.receive_maximum)?;
        s.opt(I::MaximumQos, self.maximum_qos.map(|q| q as u8))?;
        s.opt(I::RetainAvailable, self.retain_available)?;
        s.opt(I::MaximumPacketSize, self.maximum_packet_size)?;
        s.opt_field(
            I::AssignedClientIdentifier,
            str_bytes(&self.assigned_client_identifier),
        )?;
        s.opt(I::TopicAliasMaximum, self.topic_alias_maximum)?;
        s.opt_field(I::ReasonString, str_bytes(&self.reason_string))?;
        s.pairs(&self.user_properties)?;
        s.opt(
            I::WildcardSubscriptionAvailable,
            self.wildcard_subscription_available,
        )?;
        s.opt(
            I::SubscriptionIdentifierAvailable,
            self.subscription_identifiers_available,
        )?;
        s.opt(
            I::SharedSubscriptionAvailable,
            self.shared_subscription_available,
        )?;
        s.opt(I::ServerKeepAlive, self.server_keep_alive)?;
        s.opt_field(
            I::ResponseInformation,
            str_bytes(&self.response_information),
        )?;
        s.opt_field(I::ServerReference, str_bytes(&self.server_reference))?;
        s.opt_field(
            I::AuthenticationMethod,
            str_bytes(&self.authentication_method),
        )?;
        s.opt_field(I::AuthenticationData, bin_bytes(&self.authentication_data))
    }
}

impl ConnAckProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => self.session_expiry_interval = Some(v),
            Property::ReceiveMaximum(v) => self.receive_maximum = Some(v),
            Property::MaximumQos(v) => self.maximum_qos = Some(v),
            Property::RetainAvailable(v) => self.retain_available = Some(v),
            Property::MaximumPacketSize(v) => self.maximum_packet_size = Some(v),
            Property::AssignedClientIdentifier(v) => self.assigned_client_identifier = Some(v),
            Property::TopicAliasMaximum(v) => self.topic_alias_maximum = Some(v),
            Property::ReasonString(v) => self.reason_string = Some(v),
            Property::UserProperty(k, v) => self.user_properties.push((k, v)),
            Property::WildcardSubscriptionAvailable(v) => {
                self.wildcard_subscription_available = Some(v);
            }
            Property::SubscriptionIdentifierAvailable(v) => {
                self.subscription_identifiers_available = Some(v);
            }
            Property::SharedSubscriptionAvailable(v) => {
                self.shared_subscription_available = Some(v)
            }
            Property::ServerKeepAlive(v) => self.server_keep_alive = Some(v),
            Property::ResponseInformation(v) => self.response_information = Some(v),
            Property::ServerReference(v) => self.server_reference = Some(v),
            Property::AuthenticationMethod(v) => self.authentication_method = Some(v),
            Property::AuthenticationData(v) => self.authentication_data = Some(v),
            _ => return Err(NOT_ALLOWED),
        }
        Ok(())
    }
}

/// Decodes a CONNACK (clients and the load tool receive it).
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<ConnAck, DecodeError> {
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        // MQTT-3.2.2-1 (v3.1.1 3.2.2.1): bits 7–1 of the acknowledge flags are reserved.
        return Err(DecodeError::Malformed("reserved CONNACK flags set"));
    }
    let mut ack = ConnAck {
        session_present: flags & 1 != 0,
        ..ConnAck::default()
    };
    let code = r.u8()?;
    match version {
        ProtocolVersion::V311 => {
            // 3.1.1 table 3.1: return codes 6–255 are reserved.
            ack.reason = ReasonCode::from_v311_connack(code)
                .ok_or(DecodeError::Malformed("reserved CONNACK return code"))?;
            if ack.session_present && code != 0 {
                // v3.1.1 MQTT-3.2.2-4.
                return Err(DecodeError::Malformed(
                    "session present with a refused connection",
                ));
            }
        }
        ProtocolVersion::V5 => {
            ack.reason = ReasonCode(code);
            if !reason_allowed(ack.reason, REASONS) {
                return Err(DecodeError::Malformed("reason code not valid for CONNACK"));
            }
            if ack.session_present && code != 0 {
                // MQTT-3.2.2-6.
                return Err(DecodeError::Protocol(
                    "session present with a refused connection",
                ));
            }
            let props = &mut ack.properties;
            read_properties(&mut r, PropertyContext::ConnAck, |p| props.apply(p))?;
            check_auth_data(&props.authentication_method, &props.authentication_data)?;
        }
    }
    r.finish("unexpected bytes after CONNACK")?;
    Ok(ack)
}

impl ConnAck {
    fn measure(&self, version: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        let refused = match version {
            ProtocolVersion::V311 => self.reason.to_v311_connack() != 0,
            ProtocolVersion::V5 => self.reason.0 != 0,
        };
        if self.session_present && refused {
            return Err(EncodeError::Invalid(
                "session present with a refused connection",
            ));
        }
        if version == ProtocolVersion::V311 {
            return Ok((2, 0));
        }
        if !reason_allowed(self.reason, REASONS) {
            return Err(EncodeError::Invalid("reason code not valid for CONNACK"));
        }
        let p = &self.properties;
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(EncodeError::Invalid(
                "Authentication Data without Authentication Method",
            ));
        }
        let props = properties_len(p)?;
        Ok((2 + block_len(props), props))
    }

    /// Bytes `encode` would append (0 when it would fail).
    pub(crate) fn encoded_len(&self, version: ProtocolVersion) -> usize {
        self.measure(version)
            .and_then(|(body, _)| packet_len(body))
            .unwrap_or(0)
    }

    /// Appends the CONNACK; MQTT 3.1.1 maps the reason to its return code.
    pub(crate) fn encode(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let (body, props) = self.measure(version)?;
        out.reserve(packet_len(body)?);
        put_fixed_header(out, first_byte(PacketType::ConnAck), body);
        out.put_u8(u8::from(self.session_present));
        match version {
            ProtocolVersion::V311 => out.put_u8(self.reason.to_v311_connack()),
            ProtocolVersion::V5 => {
                out.put_u8(self.reason.0);
                put_properties(out, &self.properties, props);
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

    fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<ConnAck, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h, v)
    }

    fn enc(a: &ConnAck, v: ProtocolVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        a.encode(v, &mut out).unwrap();
        assert_eq!(out.len(), a.encoded_len(v));
        out.to_vec()
    }

    #[test]
    fn v311_return_codes_map_both_ways() {
        let a = dec(b"\x20\x02\x01\x00", V311).unwrap();
        assert_eq!((a.session_present, a.reason), (true, ReasonCode::SUCCESS));
        let a = dec(b"\x20\x02\x00\x05", V311).unwrap();
        assert_eq!(a.reason, ReasonCode::NOT_AUTHORIZED);
        let quota = ConnAck {
            reason: ReasonCode::QUOTA_EXCEEDED,
            ..Default::default()
        };
        assert_eq!(enc(&quota, V311), b"\x20\x02\x00\x03");
        let banned = ConnAck {
            reason: ReasonCode::BANNED,
            ..Default::default()
        };
        assert_eq!(enc(&banned, V311), b"\x20\x02\x00\x05");
        // No properties in 3.1.1.
        let mut with_props = ConnAck::default();
        with_props.properties.receive_maximum = Some(10);
        assert_eq!(enc(&with_props, V311), b"\x20\x02\x00\x00");
    }

    #[test]
    fn v311_rejects() {
        assert!(matches!(
            dec(b"\x20\x02\x00\x06", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\x20\x02\x02\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\x20\x02\x01\x04", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec(b"\x20\x03\x00\x00\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn v5_vector() {
        // Success, properties: Receive Maximum 20, Maximum QoS 1, Retain Available 0,
        // Assigned Client Identifier "auto-1", Topic Alias Maximum 10.
        let wire =
            b"\x20\x16\x00\x00\x13\x21\x00\x14\x24\x01\x25\x00\x12\x00\x06auto-1\x22\x00\x0A";
        let a = dec(wire, V5).unwrap();
        let p = &a.properties;
        assert_eq!(p.receive_maximum, Some(20));
        assert_eq!(p.maximum_qos, Some(QoS::AtLeastOnce));
        assert_eq!(p.retain_available, Some(false));
        assert_eq!(p.assigned_client_identifier.as_deref(), Some("auto-1"));
        assert_eq!(p.topic_alias_maximum, Some(10));
        assert_eq!(enc(&a, V5), wire);
    }

    #[test]
    fn v5_rejects() {
        // 0x10 is not a CONNACK reason code.
        assert!(matches!(
            dec(b"\x20\x03\x00\x10\x00", V5),
            Err(DecodeError::Malformed(_))
        ));
        // Session present with an error.
        assert!(matches!(
            dec(b"\x20\x03\x01\x87\x00", V5),
            Err(DecodeError::Protocol(_))
        ));
        // Missing property length.
        assert!(matches!(
            dec(b"\x20\x02\x00\x00", V5),
            Err(DecodeError::Malformed(_))
        ));
        // Authentication Data without Authentication Method.
        assert!(matches!(
            dec(b"\x20\x06\x00\x00\x03\x16\x00\x00", V5),
            Err(DecodeError::Protocol(_))
        ));
        // Will Delay Interval is not a CONNACK property.
        assert!(matches!(
            dec(b"\x20\x08\x00\x00\x05\x18\x00\x00\x00\x01", V5),
            Err(DecodeError::Malformed(_))
        ));
        let qos2 = ConnAck {
            properties: ConnAckProperties {
                maximum_qos: Some(QoS::ExactlyOnce),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(
            qos2.encode(V5, &mut BytesMut::new()),
            Err(EncodeError::Invalid(_))
        ));
    }
}
