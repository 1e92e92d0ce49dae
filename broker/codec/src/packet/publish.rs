//! PUBLISH (spec v5 3.3, v3.1.1 3.3) — the hot path.
//!
//! Decoding slices topic and payload out of the frame without copying. Encoding has a second
//! entry point, [`encode_publish`], for the engine's fan-out: the message-level parts are
//! borrowed from the received packet and only the per-delivery fields (QoS, packet id, retain,
//! topic alias, subscription identifiers, remaining expiry) change, so delivering one message
//! to many subscribers copies nothing but bytes into each subscriber's output buffer.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use smallvec::SmallVec;

use crate::primitives::{Reader, add, field_len, packet_len, put_field, put_fixed_header};
use crate::properties::{
    EncodeProperties, Property, PropertyContext, PropertyId, PropertySink, bin_bytes, block_len,
    properties_len, put_properties, read_property_block, str_bytes,
};
use crate::{DecodeError, EncodeError, FixedHeader, Packet, ProtocolVersion, QoS, UserProperty};

/// PUBLISH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS level.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic Name; empty when an MQTT 5 topic alias stands for it.
    pub topic: ByteString,
    /// Packet Identifier; 0 for QoS 0 (where it is absent on the wire).
    pub packet_id: u16,
    /// MQTT 5 properties.
    pub properties: PublishProperties,
    /// Application payload.
    pub payload: Bytes,
}

/// MQTT 5 PUBLISH properties (spec 3.3.2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct PublishProperties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<u16>,
    pub response_topic: Option<ByteString>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
    /// Subscription Identifiers (server to client only; one per matching subscription).
    pub subscription_identifiers: SmallVec<[u32; 2]>,
    pub content_type: Option<ByteString>,
}

/// The per-delivery fields of an outgoing PUBLISH, for [`encode_publish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishHeader<'a> {
    /// DUP flag.
    pub dup: bool,
    /// QoS of this delivery.
    pub qos: QoS,
    /// RETAIN flag of this delivery.
    pub retain: bool,
    /// Packet Identifier (ignored for QoS 0).
    pub packet_id: u16,
    /// The topic to write; empty when `topic_alias` alone identifies it.
    pub topic: &'a str,
    /// Topic Alias property to write (MQTT 5).
    pub topic_alias: Option<u16>,
    /// Message Expiry Interval to write (the remaining lifetime), replacing the message's.
    pub message_expiry_interval: Option<u32>,
    /// Subscription Identifiers to write, replacing the message's.
    pub subscription_identifiers: &'a [u32],
}

/// Appends one PUBLISH built from `header` plus the message-level properties of `props`
/// (payload format, response topic, correlation data, user properties, content type — its
/// topic alias, expiry and subscription identifiers are ignored) and `payload`.
///
/// # Errors
/// [`EncodeError`] when the packet cannot be represented; nothing is appended then.
pub fn encode_publish(
    out: &mut BytesMut,
    version: ProtocolVersion,
    header: &PublishHeader<'_>,
    props: &PublishProperties,
    payload: &[u8],
) -> Result<(), EncodeError> {
    publish_encode_parts(out, version, header, props, payload)
}

/// The number of bytes [`encode_publish`] would append: 0 when it would fail.
pub fn encoded_publish_len(
    version: ProtocolVersion,
    header: &PublishHeader<'_>,
    props: &PublishProperties,
    payload_len: usize,
) -> usize {
    publish_encoded_len_parts(version, header, props, payload_len)
}

impl Publish {
    /// Appends this PUBLISH for `version`, through the same code as [`encode_publish`] (its
    /// topic alias, message expiry and subscription identifiers come from `properties`).
    ///
    /// # Errors
    /// As [`encode_publish`]; nothing is appended then.
    pub fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        publish_encode_parts(
            out,
            version,
            &self.header(),
            &self.properties,
            &self.payload,
        )
    }

    /// The number of bytes [`Publish::encode`] would append (0 when it would fail).
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        publish_encoded_len_parts(
            version,
            &self.header(),
            &self.properties,
            self.payload.len(),
        )
    }

    /// The per-delivery fields of this packet as a [`PublishHeader`].
    pub fn header(&self) -> PublishHeader<'_> {
        PublishHeader {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            packet_id: self.packet_id,
            topic: &self.topic,
            topic_alias: self.properties.topic_alias,
            message_expiry_interval: self.properties.message_expiry_interval,
            subscription_identifiers: &self.properties.subscription_identifiers,
        }
    }
}

/// Decodes a PUBLISH. Topic and payload are slices of `frame`; the payload is the frame itself,
/// advanced, so a PUBLISH without properties costs one reference-count increment (the topic).
///
/// Topic Name validity beyond the wire format (wildcards, `MQTT-3.3.2-2`) is checked by the
/// engine with [`crate::TopicName`], as for SUBSCRIBE filters. Subscription Identifiers in a
/// client's PUBLISH (`MQTT-3.3.4-6`) depend on the direction, so they are the engine's too.
#[inline]
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    let flags = header.flags;
    let dup = flags & 0b1000 != 0;
    let retain = flags & 0b0001 != 0;
    let qos =
        QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::Malformed("PUBLISH with QoS 3"))?;
    if dup && qos == QoS::AtMostOnce {
        // MQTT-3.3.1-2: the DUP flag MUST be 0 for all QoS 0 messages.
        return Err(DecodeError::Malformed("DUP set on a QoS 0 PUBLISH"));
    }
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let topic = r.string()?;
    let mut packet_id = 0;
    if qos != QoS::AtMostOnce {
        packet_id = r.u16()?;
        if packet_id == 0 {
            // MQTT-2.2.1-3 (v3.1.1 MQTT-2.3.1-1): QoS > 0 needs a non-zero identifier.
            return Err(DecodeError::Malformed(
                "PUBLISH with QoS > 0 and packet identifier 0",
            ));
        }
    }
    // The packet is built in one expression straight into the caller's slot: a PUBLISH is
    // 232 bytes, and assembling it from a finished properties struct costs memcpy calls
    // worth a quarter of the decode time. Hence also the separate path for an empty
    // property block, the common case.
    let props_len = match version {
        ProtocolVersion::V5 => r.varint()?,
        ProtocolVersion::V311 => 0,
    };
    let properties = if props_len == 0 {
        PublishProperties::default()
    } else {
        read_publish_properties(&mut r, props_len)?
    };
    if topic.is_empty() {
        if version == ProtocolVersion::V311 {
            // v3.1.1 MQTT-4.7.3-1: topic names are at least one character long.
            return Err(DecodeError::Malformed("empty Topic Name"));
        }
        if properties.topic_alias.is_none() {
            // v5 3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there
            // is no Topic Alias."
            return Err(DecodeError::Protocol(
                "empty Topic Name without a Topic Alias",
            ));
        }
    }
    Ok(Packet::Publish(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload: r.into_rest(),
    }))
}

#[inline(never)]
fn read_publish_properties(r: &mut Reader, len: u32) -> Result<PublishProperties, DecodeError> {
    let mut props = PublishProperties::default();
    read_property_block(r, len, PropertyContext::Publish, |p| apply(&mut props, p))?;
    Ok(props)
}

fn apply(props: &mut PublishProperties, p: Property) -> Result<(), DecodeError> {
    match p {
        Property::PayloadFormatIndicator(v) => props.payload_format_indicator = Some(v),
        Property::MessageExpiryInterval(v) => props.message_expiry_interval = Some(v),
        Property::TopicAlias(v) => props.topic_alias = Some(v),
        Property::ResponseTopic(v) => props.response_topic = Some(v),
        Property::CorrelationData(v) => props.correlation_data = Some(v),
        Property::UserProperty(k, v) => props.user_properties.push((k, v)),
        Property::SubscriptionIdentifier(v) => props.subscription_identifiers.push(v),
        Property::ContentType(v) => props.content_type = Some(v),
        _ => return Err(crate::properties::NOT_ALLOWED),
    }
    Ok(())
}

/// The property block of an outgoing PUBLISH: per-delivery fields from the header, the rest
/// from the message. The order is the table's in spec 3.3.2.3.
struct Outgoing<'a, 'h> {
    header: &'a PublishHeader<'h>,
    props: &'a PublishProperties,
}

impl EncodeProperties for Outgoing<'_, '_> {
    #[inline]
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        let (h, p) = (self.header, self.props);
        s.opt(
            PropertyId::PayloadFormatIndicator,
            p.payload_format_indicator,
        )?;
        s.opt(PropertyId::MessageExpiryInterval, h.message_expiry_interval)?;
        s.opt(PropertyId::TopicAlias, h.topic_alias)?;
        s.opt_field(PropertyId::ResponseTopic, str_bytes(&p.response_topic))?;
        s.opt_field(PropertyId::CorrelationData, bin_bytes(&p.correlation_data))?;
        s.pairs(&p.user_properties)?;
        for &id in h.subscription_identifiers {
            s.numeric(PropertyId::SubscriptionIdentifier, id)?;
        }
        s.opt_field(PropertyId::ContentType, str_bytes(&p.content_type))
    }
}

/// Sizes of an outgoing PUBLISH: whole packet, remaining length, property content.
struct Sizes {
    total: usize,
    body: usize,
    props: usize,
}

#[inline]
fn measure(
    version: ProtocolVersion,
    header: &PublishHeader<'_>,
    props: &PublishProperties,
    payload_len: usize,
) -> Result<Sizes, EncodeError> {
    if header.qos == QoS::AtMostOnce {
        if header.dup {
            return Err(EncodeError::Invalid(
                "DUP set on a QoS 0 PUBLISH (MQTT-3.3.1-2)",
            ));
        }
    } else if header.packet_id == 0 {
        return Err(EncodeError::Invalid("packet identifier 0 with QoS > 0"));
    }
    if header.topic.is_empty() && (version == ProtocolVersion::V311 || header.topic_alias.is_none())
    {
        return Err(EncodeError::Invalid(
            "empty Topic Name without a Topic Alias",
        ));
    }
    let mut body = field_len(header.topic.as_bytes(), "Topic Name")?;
    if header.qos != QoS::AtMostOnce {
        body += 2;
    }
    let mut props_len = 0;
    if version == ProtocolVersion::V5 {
        props_len = properties_len(&Outgoing { header, props })?;
        body = add(body, block_len(props_len));
    }
    body = add(body, payload_len);
    Ok(Sizes {
        total: packet_len(body)?,
        body,
        props: props_len,
    })
}

/// [`encode_publish`]: measure (validating), reserve exactly, write.
#[inline]
pub(crate) fn publish_encode_parts(
    out: &mut BytesMut,
    version: ProtocolVersion,
    header: &PublishHeader<'_>,
    props: &PublishProperties,
    payload: &[u8],
) -> Result<(), EncodeError> {
    let sizes = measure(version, header, props, payload.len())?;
    out.reserve(sizes.total);
    let first =
        0x30 | (u8::from(header.dup) << 3) | ((header.qos as u8) << 1) | u8::from(header.retain);
    put_fixed_header(out, first, sizes.body);
    put_field(out, header.topic.as_bytes());
    if header.qos != QoS::AtMostOnce {
        out.put_u16(header.packet_id);
    }
    if version == ProtocolVersion::V5 {
        put_properties(out, &Outgoing { header, props }, sizes.props);
    }
    out.put_slice(payload);
    Ok(())
}

/// [`encoded_publish_len`]: 0 when encoding would fail, as nothing would be appended.
#[inline]
pub(crate) fn publish_encoded_len_parts(
    version: ProtocolVersion,
    header: &PublishHeader<'_>,
    props: &PublishProperties,
    payload_len: usize,
) -> usize {
    measure(version, header, props, payload_len).map_or(0, |s| s.total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProtocolVersion::*;
    use crate::frame::check;

    fn decode_bytes(bytes: &[u8], v: ProtocolVersion) -> Result<Publish, DecodeError> {
        let h = check(bytes, u32::MAX)?.ok_or(DecodeError::Malformed("incomplete"))?;
        unwrap(decode(Bytes::copy_from_slice(bytes), &h, v)?)
    }

    fn unwrap(p: Packet) -> Result<Publish, DecodeError> {
        match p {
            Packet::Publish(p) => Ok(p),
            _ => Err(DecodeError::Malformed("not a PUBLISH")),
        }
    }

    fn encode(p: &Publish, v: ProtocolVersion) -> Result<BytesMut, EncodeError> {
        let mut out = BytesMut::new();
        p.encode(v, &mut out)?;
        assert_eq!(out.len(), p.encoded_len(v));
        Ok(out)
    }

    fn qos1(topic: &'static str) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.into(),
            packet_id: 10,
            properties: PublishProperties::default(),
            payload: Bytes::from_static(b"hi"),
        }
    }

    #[test]
    fn v311_qos0_vector() {
        // PUBLISH "a/b" payload "hello", QoS 0, retain.
        let wire = b"\x31\x0A\x00\x03a/bhello";
        let p = decode_bytes(wire, V311).unwrap();
        assert_eq!(
            (&*p.topic, &p.payload[..], p.qos, p.retain, p.dup),
            ("a/b", &b"hello"[..], QoS::AtMostOnce, true, false)
        );
        assert_eq!(p.packet_id, 0);
        assert_eq!(&encode(&p, V311).unwrap()[..], wire);
    }

    #[test]
    fn payload_and_topic_are_slices_of_the_frame() {
        let frame = Bytes::copy_from_slice(b"\x30\x0A\x00\x03a/bhello");
        let h = check(&frame, 1024).unwrap().unwrap();
        let p = unwrap(decode(frame.clone(), &h, V311).unwrap()).unwrap();
        assert_eq!(p.payload.as_ptr(), frame[7..].as_ptr());
        assert_eq!(p.topic.as_bytes().as_ptr(), frame[4..].as_ptr());
    }

    #[test]
    fn v5_with_properties_vector() {
        // QoS 1, id 10, topic "t", properties: PFI 1, topic alias 5, 2 subscription ids,
        // user property ("k","v"); payload "x".
        let wire = b"\x32\x18\x00\x01t\x00\x0A\x11\x01\x01\x23\x00\x05\x0B\x01\x0B\x80\x01\x26\x00\x01k\x00\x01vx";
        let p = decode_bytes(wire, V5).unwrap();
        assert_eq!(p.properties.payload_format_indicator, Some(1));
        assert_eq!(p.properties.topic_alias, Some(5));
        assert_eq!(&p.properties.subscription_identifiers[..], &[1, 128]);
        assert_eq!(p.properties.user_properties, vec![("k".into(), "v".into())]);
        assert_eq!(&p.payload[..], b"x");
        // Re-encoding reorders nothing here: the table order is the order above except the
        // user property, which comes before the subscription identifiers.
        let again = decode_bytes(&encode(&p, V5).unwrap(), V5).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn rejects_malformed() {
        // QoS 0 with DUP (MQTT-3.3.1-2).
        assert!(matches!(
            decode_bytes(b"\x38\x04\x00\x01ab", V311),
            Err(DecodeError::Malformed(_))
        ));
        // QoS 1 with packet id 0.
        assert!(matches!(
            decode_bytes(b"\x32\x05\x00\x01a\x00\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
        // Topic runs past the packet.
        assert!(matches!(
            decode_bytes(b"\x30\x03\x00\x05a", V311),
            Err(DecodeError::Malformed(_))
        ));
        // Topic with U+0000.
        assert!(matches!(
            decode_bytes(b"\x30\x04\x00\x02a\x00", V311),
            Err(DecodeError::Malformed(_))
        ));
        // Empty topic: malformed in 3.1.1, protocol error in 5 without an alias.
        assert!(matches!(
            decode_bytes(b"\x30\x03\x00\x00x", V311),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_bytes(b"\x30\x04\x00\x00\x00x", V5),
            Err(DecodeError::Protocol(_))
        ));
        // Topic Alias 0.
        assert!(matches!(
            decode_bytes(b"\x30\x07\x00\x00\x03\x23\x00\x00x", V5),
            Err(DecodeError::Protocol(_))
        ));
        // Property length past the packet.
        assert!(matches!(
            decode_bytes(b"\x30\x05\x00\x01t\x09x", V5),
            Err(DecodeError::Malformed(_))
        ));
        // A v5 PUBLISH without the property length byte.
        assert!(matches!(
            decode_bytes(b"\x30\x03\x00\x01t", V5),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn v5_empty_topic_with_alias() {
        let wire = b"\x30\x07\x00\x00\x03\x23\x00\x02x";
        let p = decode_bytes(wire, V5).unwrap();
        assert_eq!((&*p.topic, p.properties.topic_alias), ("", Some(2)));
        assert_eq!(&encode(&p, V5).unwrap()[..], wire);
        // The alias cannot be written in 3.1.1, so neither can the empty topic.
        assert!(encode(&p, V311).is_err());
    }

    #[test]
    fn encode_publish_takes_delivery_fields_from_the_header() {
        let mut props = PublishProperties {
            topic_alias: Some(9),
            message_expiry_interval: Some(100),
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        props.subscription_identifiers.push(77);
        let header = PublishHeader {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            packet_id: 3,
            topic: "a/b",
            topic_alias: None,
            message_expiry_interval: Some(40),
            subscription_identifiers: &[1, 2],
        };
        let mut out = BytesMut::new();
        encode_publish(&mut out, V5, &header, &props, b"data").unwrap();
        assert_eq!(out.len(), encoded_publish_len(V5, &header, &props, 4));
        let h = check(&out, 1024).unwrap().unwrap();
        let Packet::Publish(p) = Packet::decode(out.freeze(), &h, V5).unwrap() else {
            panic!()
        };
        assert_eq!(p.properties.topic_alias, None);
        assert_eq!(p.properties.message_expiry_interval, Some(40));
        assert_eq!(&p.properties.subscription_identifiers[..], &[1, 2]);
        assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            (p.qos, p.packet_id, p.retain, &p.payload[..]),
            (QoS::AtLeastOnce, 3, true, &b"data"[..])
        );
    }

    #[test]
    fn encode_errors_append_nothing() {
        let mut out = BytesMut::from(&b"keep"[..]);
        let mut bad = qos1("t");
        bad.packet_id = 0;
        assert_eq!(
            bad.encode(V311, &mut out),
            Err(EncodeError::Invalid("packet identifier 0 with QoS > 0"))
        );
        assert_eq!(bad.encoded_len(V311), 0);
        let long = qos1("t");
        let mut long = Publish {
            topic: "x".repeat(70_000).into(),
            ..long
        };
        assert_eq!(
            long.encode(V311, &mut out),
            Err(EncodeError::FieldTooLong("Topic Name"))
        );
        long.topic = "t".into();
        long.properties.subscription_identifiers.push(0);
        assert!(matches!(
            long.encode(V5, &mut out),
            Err(EncodeError::Invalid(_))
        ));
        // In 3.1.1 the properties are left out, so the same value encodes.
        assert!(long.encode(V311, &mut BytesMut::new()).is_ok());
        assert_eq!(&out[..], b"keep");
    }

    #[test]
    fn v311_leaves_properties_out() {
        let mut p = qos1("t");
        p.properties.user_properties.push(("k".into(), "v".into()));
        assert_eq!(
            &encode(&p, V311).unwrap()[..],
            b"\x32\x07\x00\x01t\x00\x0Ahi"
        );
    }
}
