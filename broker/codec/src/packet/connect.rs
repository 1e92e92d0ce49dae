//! CONNECT (spec v5 3.1, v3.1.1 3.1).

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::first_byte;
use crate::primitives::{Reader, add, field_len, packet_len, put_field, put_fixed_header};
use crate::properties::{
    EncodeProperties, NOT_ALLOWED, Property, PropertyContext, PropertyId, PropertySink, bin_bytes,
    block_len, check_auth_data, properties_len, put_properties, read_properties, str_bytes,
};
use crate::{
    DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, QoS, UserProperty,
};

/// CONNECT: the first packet of every connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// Protocol level: 4 (3.1.1) or 5 (5.0).
    pub protocol: ProtocolVersion,
    /// Clean Start (v5) / Clean Session (v3.1.1).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier; may be empty.
    pub client_id: ByteString,
    /// The will message, when the Will Flag is set.
    pub will: Option<Will>,
    /// User name, when the User Name Flag is set.
    pub username: Option<ByteString>,
    /// Password, when the Password Flag is set.
    pub password: Option<Bytes>,
    /// MQTT 5 properties (left default for 3.1.1).
    pub properties: ConnectProperties,
}

/// MQTT 5 CONNECT properties (spec 3.1.2.11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct ConnectProperties {
    pub session_expiry_interval: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub topic_alias_maximum: Option<u16>,
    pub request_response_information: Option<bool>,
    pub request_problem_information: Option<bool>,
    pub authentication_method: Option<ByteString>,
    pub authentication_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
}

/// The will message carried by CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Will Topic.
    pub topic: ByteString,
    /// Will Payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// MQTT 5 will properties.
    pub properties: WillProperties,
}

/// MQTT 5 will properties (spec 3.1.3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct WillProperties {
    pub will_delay_interval: Option<u32>,
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<ByteString>,
    pub response_topic: Option<ByteString>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
}

/// Connect Flags bits (spec 3.1.2.3).
mod flag {
    pub const RESERVED: u8 = 0x01;
    pub const CLEAN_START: u8 = 0x02;
    pub const WILL: u8 = 0x04;
    pub const WILL_QOS_SHIFT: u8 = 3;
    pub const WILL_RETAIN: u8 = 0x20;
    pub const PASSWORD: u8 = 0x40;
    pub const USERNAME: u8 = 0x80;
}

impl EncodeProperties for ConnectProperties {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        use PropertyId as I;
        s.opt(I::SessionExpiryInterval, self.session_expiry_interval)?;
        s.opt(I::ReceiveMaximum, self.receive_maximum)?;
        s.opt(I::MaximumPacketSize, self.maximum_packet_size)?;
        s.opt(I::TopicAliasMaximum, self.topic_alias_maximum)?;
        s.opt(
            I::RequestResponseInformation,
            self.request_response_information,
        )?;
        s.opt(
            I::RequestProblemInformation,
            self.request_problem_information,
        )?;
        s.pairs(&self.user_properties)?;
        s.opt_field(
            I::AuthenticationMethod,
            str_bytes(&self.authentication_method),
        )?;
        s.opt_field(I::AuthenticationData, bin_bytes(&self.authentication_data))
    }
}

impl ConnectProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => self.session_expiry_interval = Some(v),
            Property::ReceiveMaximum(v) => self.receive_maximum = Some(v),
            Property::MaximumPacketSize(v) => self.maximum_packet_size = Some(v),
            Property::TopicAliasMaximum(v) => self.topic_alias_maximum = Some(v),
            Property::RequestResponseInformation(v) => self.request_response_information = Some(v),
            Property::RequestProblemInformation(v) => self.request_problem_information = Some(v),
            Property::UserProperty(k, v) => self.user_properties.push((k, v)),
            Property::AuthenticationMethod(v) => self.authentication_method = Some(v),
            Property::AuthenticationData(v) => self.authentication_data = Some(v),
            _ => return Err(NOT_ALLOWED),
        }
        Ok(())
    }
}

impl EncodeProperties for WillProperties {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        use PropertyId as I;
        s.opt(I::WillDelayInterval, self.will_delay_interval)?;
        s.opt(I::PayloadFormatIndicator, self.payload_format_indicator)?;
        s.opt(I::MessageExpiryInterval, self.message_expiry_interval)?;
        s.opt_field(I::ContentType, str_bytes(&self.content_type))?;
        s.opt_field(I::ResponseTopic, str_bytes(&self.response_topic))?;
        s.opt_field(I::CorrelationData, bin_bytes(&self.correlation_data))?;
        s.pairs(&self.user_properties)
    }
}

impl WillProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::WillDelayInterval(v) => self.will_delay_interval = Some(v),
            Property::PayloadFormatIndicator(v) => self.payload_format_indicator = Some(v),
            Property::MessageExpiryInterval(v) => self.message_expiry_interval = Some(v),
            Property::ContentType(v) => self.content_type = Some(v),
            Property::ResponseTopic(v) => self.response_topic = Some(v),
            Property::CorrelationData(v) => self.correlation_data = Some(v),
            Property::UserProperty(k, v) => self.user_properties.push((k, v)),
            _ => return Err(NOT_ALLOWED),
        }
        Ok(())
    }
}

/// Decodes a CONNECT; its protocol level decides the version of the rest.
///
/// Client identifier rules that need the server's policy (an empty identifier with Clean
/// Session 0 in 3.1.1, `MQTT-3.1.3-8`) are the engine's, answered with CONNACK.
pub(crate) fn decode(frame: Bytes, header: &FixedHeader) -> Result<Connect, DecodeError> {
    let mut r = Reader::new(frame, usize::from(header.header_len));
    // MQTT-3.1.2-1: a server MUST NOT go on processing a CONNECT whose protocol name is not
    // "MQTT" in line with this specification; MQTT 3.1's "MQIsdp" lands here too, and the
    // server answers "unsupported protocol version" (3.1.1 MQTT-3.1.2-2 for the level).
    if !r.string_eq(b"MQTT")? {
        return Err(DecodeError::UnsupportedProtocolVersion);
    }
    let protocol = match r.u8()? {
        4 => ProtocolVersion::V311,
        5 => ProtocolVersion::V5,
        _ => return Err(DecodeError::UnsupportedProtocolVersion),
    };
    let flags = r.u8()?;
    if flags & flag::RESERVED != 0 {
        // MQTT-3.1.2-3.
        return Err(DecodeError::Malformed("reserved CONNECT flag set"));
    }
    let has_will = flags & flag::WILL != 0;
    let will_retain = flags & flag::WILL_RETAIN != 0;
    let will_qos = (flags >> flag::WILL_QOS_SHIFT) & 0b11;
    if !has_will && (will_qos != 0 || will_retain) {
        // v5 MQTT-3.1.2-11 and MQTT-3.1.2-13 (v3.1.1 MQTT-3.1.2-13 and -15).
        return Err(DecodeError::Malformed(
            "will QoS or retain set without a will",
        ));
    }
    // v5 MQTT-3.1.2-12 (v3.1.1 MQTT-3.1.2-14): will QoS 3 is malformed.
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("will QoS 3"))?;
    let has_username = flags & flag::USERNAME != 0;
    let has_password = flags & flag::PASSWORD != 0;
    if protocol == ProtocolVersion::V311 && has_password && !has_username {
        // v3.1.1 MQTT-3.1.2-22; MQTT 5 allows a password alone (3.1.2.9).
        return Err(DecodeError::Malformed("password without user name"));
    }
    let keep_alive = r.u16()?;

    let mut properties = ConnectProperties::default();
    if protocol == ProtocolVersion::V5 {
        read_properties(&mut r, PropertyContext::Connect, |p| properties.apply(p))?;
        check_auth_data(
            &properties.authentication_method,
            &properties.authentication_data,
        )?;
    }
    let client_id = r.string()?;
    let mut will = None;
    if has_will {
        let mut will_props = WillProperties::default();
        if protocol == ProtocolVersion::V5 {
            read_properties(&mut r, PropertyContext::Will, |p| will_props.apply(p))?;
        }
        let topic = r.string()?;
        let payload = r.binary()?;
        will = Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties: will_props,
        });
    }
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    r.finish("unexpected bytes after the CONNECT payload")?;
    Ok(Connect {
        protocol,
        clean_start: flags & flag::CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

/// Sizes of an outgoing CONNECT: remaining length, and the content lengths of the CONNECT
/// and will property blocks.
struct Sizes {
    body: usize,
    props: usize,
    will_props: usize,
}

impl Connect {
    fn measure(&self) -> Result<Sizes, EncodeError> {
        let v5 = self.protocol == ProtocolVersion::V5;
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::Invalid(
                "password without user name (MQTT-3.1.2-22)",
            ));
        }
        // Protocol name, level, flags, keep alive.
        let mut body = 6 + 1 + 1 + 2;
        let mut sizes = Sizes {
            body: 0,
            props: 0,
            will_props: 0,
        };
        if v5 {
            let p = &self.properties;
            if p.authentication_data.is_some() && p.authentication_method.is_none() {
                return Err(EncodeError::Invalid(
                    "Authentication Data without Authentication Method",
                ));
            }
            sizes.props = properties_len(p)?;
            body = add(body, block_len(sizes.props));
        }
        body = add(
            body,
            field_len(self.client_id.as_bytes(), "Client Identifier")?,
        );
        if let Some(will) = &self.will {
            if v5 {
                sizes.will_props = properties_len(&will.properties)?;
                body = add(body, block_len(sizes.will_props));
            }
            body = add(body, field_len(will.topic.as_bytes(), "Will Topic")?);
            body = add(body, field_len(&will.payload, "Will Payload")?);
        }
        if let Some(u) = &self.username {
            body = add(body, field_len(u.as_bytes(), "User Name")?);
        }
        if let Some(p) = &self.password {
            body = add(body, field_len(p, "Password")?);
        }
        sizes.body = body;
        Ok(sizes)
    }

    fn flags(&self) -> u8 {
        let mut f = 0;
        if self.clean_start {
            f |= flag::CLEAN_START;
        }
        if let Some(w) = &self.will {
            f |= flag::WILL | ((w.qos as u8) << flag::WILL_QOS_SHIFT);
            if w.retain {
                f |= flag::WILL_RETAIN;
            }
        }
        if self.password.is_some() {
            f |= flag::PASSWORD;
        }
        if self.username.is_some() {
            f |= flag::USERNAME;
        }
        f
    }

    /// Bytes `encode` would append (0 when it would fail).
    pub(crate) fn encoded_len(&self) -> usize {
        self.measure().and_then(|s| packet_len(s.body)).unwrap_or(0)
    }

    /// Appends the CONNECT in its own protocol version.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let sizes = self.measure()?;
        out.reserve(packet_len(sizes.body)?);
        let v5 = self.protocol == ProtocolVersion::V5;
        put_fixed_header(out, first_byte(PacketType::Connect), sizes.body);
        put_field(out, b"MQTT");
        out.put_u8(self.protocol.level());
        out.put_u8(self.flags());
        out.put_u16(self.keep_alive);
        if v5 {
            put_properties(out, &self.properties, sizes.props);
        }
        put_field(out, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                put_properties(out, &will.properties, sizes.will_props);
            }
            put_field(out, will.topic.as_bytes());
            put_field(out, &will.payload);
        }
        if let Some(u) = &self.username {
            put_field(out, u.as_bytes());
        }
        if let Some(p) = &self.password {
            put_field(out, p);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::check;

    fn dec(bytes: &[u8]) -> Result<Connect, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h)
    }

    fn enc(c: &Connect) -> Vec<u8> {
        let mut out = BytesMut::new();
        c.encode(&mut out).unwrap();
        assert_eq!(out.len(), c.encoded_len());
        out.to_vec()
    }

    /// What `mosquitto_pub -V mqttv311 -i client1 -t t -m x` sends: clean session, keep
    /// alive 60.
    const MOSQUITTO_311: &[u8] = b"\x10\x13\x00\x04MQTT\x04\x02\x00\x3C\x00\x07client1";

    #[test]
    fn v311_mosquitto_vector() {
        let c = dec(MOSQUITTO_311).unwrap();
        assert_eq!(c.protocol, ProtocolVersion::V311);
        assert!(c.clean_start);
        assert_eq!((c.keep_alive, &*c.client_id), (60, "client1"));
        assert_eq!(
            (c.will.is_none(), c.username.is_none(), c.password.is_none()),
            (true, true, true)
        );
        assert_eq!(enc(&c), MOSQUITTO_311);
    }

    #[test]
    fn v5_with_properties_vector() {
        // Clean start, user name "u", password "pw", keep alive 30, properties: Session
        // Expiry Interval 120, Receive Maximum 10, Topic Alias Maximum 5; client id "c1".
        let wire = b"\x10\x21\x00\x04MQTT\x05\xC2\x00\x1E\x0B\x11\x00\x00\x00\x78\x21\x00\x0A\x22\x00\x05\x00\x02c1\x00\x01u\x00\x02pw";
        let c = dec(wire).unwrap();
        assert_eq!(c.protocol, ProtocolVersion::V5);
        assert_eq!(c.properties.session_expiry_interval, Some(120));
        assert_eq!(c.properties.receive_maximum, Some(10));
        assert_eq!(c.properties.topic_alias_maximum, Some(5));
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(enc(&c), wire);
    }

    #[test]
    fn v5_will_and_password_alone() {
        // Password without user name (allowed in MQTT 5), will QoS 1 retained with a Will
        // Delay Interval of 5.
        let wire = b"\x10\x1F\x00\x04MQTT\x05\x6C\x00\x00\x00\x00\x01c\x05\x18\x00\x00\x00\x05\x00\x03w/t\x00\x01x\x00\x01p";
        let c = dec(wire).unwrap();
        let w = c.will.as_ref().unwrap();
        assert_eq!(
            (&*w.topic, &w.payload[..], w.qos, w.retain),
            ("w/t", &b"x"[..], QoS::AtLeastOnce, true)
        );
        assert_eq!(w.properties.will_delay_interval, Some(5));
        assert_eq!(
            (c.username.is_none(), c.password.as_deref()),
            (true, Some(&b"p"[..]))
        );
        assert_eq!(enc(&c), wire);
    }

    #[test]
    fn unsupported_protocols() {
        // MQTT 3.1: "MQIsdp", level 3.
        let v31 = b"\x10\x0F\x00\x06MQIsdp\x03\x02\x00\x3C\x00\x01c";
        assert_eq!(
            dec(v31).unwrap_err(),
            DecodeError::UnsupportedProtocolVersion
        );
        let level6 = b"\x10\x0D\x00\x04MQTT\x06\x02\x00\x3C\x00\x01c";
        assert_eq!(
            dec(level6).unwrap_err(),
            DecodeError::UnsupportedProtocolVersion
        );
        let other = b"\x10\x0D\x00\x04MQTX\x04\x02\x00\x3C\x00\x01c";
        assert_eq!(
            dec(other).unwrap_err(),
            DecodeError::UnsupportedProtocolVersion
        );
    }

    #[test]
    fn malformed_flags_and_lengths() {
        let with_flags = |f: u8| {
            let mut w = MOSQUITTO_311.to_vec();
            w[9] = f;
            dec(&w)
        };
        let malformed =
            |r: Result<Connect, DecodeError>| matches!(r, Err(DecodeError::Malformed(_)));
        assert!(malformed(with_flags(0x03)), "reserved bit");
        assert!(malformed(with_flags(0x0A)), "will QoS without will");
        assert!(malformed(with_flags(0x22)), "will retain without will");
        assert!(malformed(with_flags(0x1E)), "will QoS 3");
        assert!(
            malformed(with_flags(0x42)),
            "password without user name in 3.1.1"
        );
        // Trailing byte after the payload.
        assert!(malformed(dec(
            b"\x10\x14\x00\x04MQTT\x04\x02\x00\x3C\x00\x07client1\x00"
        )));
        // Client id running past the packet.
        assert!(malformed(dec(
            b"\x10\x0D\x00\x04MQTT\x04\x02\x00\x3C\x00\x07c"
        )));
        // v5 without its property length.
        assert!(malformed(dec(b"\x10\x0A\x00\x04MQTT\x05\x02\x00\x3C")));
    }

    #[test]
    fn encode_rejects_password_alone_in_311() {
        let mut c = dec(MOSQUITTO_311).unwrap();
        c.password = Some(Bytes::from_static(b"pw"));
        assert!(matches!(
            c.encode(&mut BytesMut::new()),
            Err(EncodeError::Invalid(_))
        ));
        assert_eq!(c.encoded_len(), 0);
    }
}
