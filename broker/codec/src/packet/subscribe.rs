//! SUBSCRIBE (spec v5 3.8, v3.1.1 3.8).

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::first_byte;
use crate::primitives::{Reader, add, field_len, packet_len, put_field, put_fixed_header};
use crate::properties::{
    EncodeProperties, NOT_ALLOWED, Property, PropertyContext, PropertyId, PropertySink, block_len,
    properties_len, put_properties, read_properties,
};
use crate::{
    DecodeError, EncodeError, FixedHeader, PacketType, ProtocolVersion, QoS, UserProperty,
};

/// SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet Identifier (never 0).
    pub packet_id: u16,
    /// At least one topic filter with its options (`MQTT-3.8.3-2`).
    pub filters: Vec<SubscribeFilter>,
    /// MQTT 5 properties.
    pub properties: SubscribeProperties,
}

/// One topic filter of a SUBSCRIBE, as sent (validation is the engine's job, so that an invalid
/// filter can be answered per filter in SUBACK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// The topic filter text (may start with `$share/`).
    pub filter: ByteString,
    /// Subscription options.
    pub options: SubscriptionOptions,
}

/// Subscription options byte (spec 3.8.3.1). MQTT 3.1.1 only has the QoS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: RetainHandling,
}

/// When retained messages are sent for a new subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetainHandling {
    /// 0: at subscribe time.
    #[default]
    SendOnSubscribe,
    /// 1: at subscribe time, only if the subscription did not exist.
    SendIfNew,
    /// 2: never.
    DoNotSend,
}

/// MQTT 5 SUBSCRIBE properties (spec 3.8.2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct SubscribeProperties {
    /// 1 to 268,435,455; 0 is a protocol error.
    pub subscription_identifier: Option<u32>,
    pub user_properties: Vec<UserProperty>,
}

impl RetainHandling {
    /// The two-bit value; `None` for the reserved 3.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::SendOnSubscribe),
            1 => Some(Self::SendIfNew),
            2 => Some(Self::DoNotSend),
            _ => None,
        }
    }

    /// The two-bit value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::SendOnSubscribe => 0,
            Self::SendIfNew => 1,
            Self::DoNotSend => 2,
        }
    }
}

impl SubscriptionOptions {
    /// The options byte for `version`; MQTT 3.1.1 carries only the QoS.
    pub const fn to_byte(self, version: ProtocolVersion) -> u8 {
        let qos = self.qos as u8;
        match version {
            ProtocolVersion::V311 => qos,
            ProtocolVersion::V5 => {
                qos | ((self.no_local as u8) << 2)
                    | ((self.retain_as_published as u8) << 3)
                    | (self.retain_handling.to_u8() << 4)
            }
        }
    }

    /// Parses an options byte.
    ///
    /// # Errors
    /// MQTT 3.1.1: reserved bits 7–2 set (`MQTT-3.8.3-4`) or QoS 3 are malformed. MQTT 5:
    /// reserved bits 7–6 set are malformed (`MQTT-3.8.3-5`); QoS 3 and Retain Handling 3 are
    /// protocol errors (3.8.3.1).
    pub const fn from_byte(b: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let qos = match QoS::from_u8(b & 0b11) {
            Some(q) => q,
            None if matches!(version, ProtocolVersion::V5) => {
                return Err(DecodeError::Protocol("subscription with Maximum QoS 3"));
            }
            None => return Err(DecodeError::Malformed("subscription with QoS 3")),
        };
        match version {
            ProtocolVersion::V311 => {
                if b & 0xFC != 0 {
                    return Err(DecodeError::Malformed(
                        "reserved subscription option bits set",
                    ));
                }
                Ok(Self {
                    qos,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendOnSubscribe,
                })
            }
            ProtocolVersion::V5 => {
                if b & 0xC0 != 0 {
                    return Err(DecodeError::Malformed(
                        "reserved subscription option bits set",
                    ));
                }
                let Some(retain_handling) = RetainHandling::from_u8((b >> 4) & 0b11) else {
                    return Err(DecodeError::Protocol("Retain Handling 3"));
                };
                Ok(Self {
                    qos,
                    no_local: b & 0x04 != 0,
                    retain_as_published: b & 0x08 != 0,
                    retain_handling,
                })
            }
        }
    }
}

impl EncodeProperties for SubscribeProperties {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.opt(
            PropertyId::SubscriptionIdentifier,
            self.subscription_identifier,
        )?;
        s.pairs(&self.user_properties)
    }
}

impl SubscribeProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::SubscriptionIdentifier(v) => self.subscription_identifier = Some(v),
            Property::UserProperty(k, v) => self.user_properties.push((k, v)),
            _ => return Err(NOT_ALLOWED),
        }
        Ok(())
    }
}

/// `MQTT-3.8.3-4` (v5): "It is a Protocol Error to set the No Local bit to 1 on a Shared
/// Subscription".
fn no_local_on_shared(f: &SubscribeFilter) -> bool {
    f.options.no_local && f.filter.starts_with("$share/")
}

/// Decodes a SUBSCRIBE.
pub(crate) fn decode(
    frame: Bytes,
    header: &FixedHeader,
    version: ProtocolVersion,
) -> Result<Subscribe, DecodeError> {
    let mut r = Reader::new(frame, usize::from(header.header_len));
    let packet_id = r.u16()?;
    if packet_id == 0 {
        // MQTT-2.2.1-3 / v3.1.1 MQTT-2.3.1-1.
        return Err(DecodeError::Malformed("SUBSCRIBE with packet identifier 0"));
    }
    let mut properties = SubscribeProperties::default();
    if version == ProtocolVersion::V5 {
        read_properties(&mut r, PropertyContext::Subscribe, |p| properties.apply(p))?;
    }
    if r.is_empty() {
        // v5 3.8.3: "A SUBSCRIBE packet with no Payload is a Protocol Error"; v3.1.1
        // MQTT-3.8.3-3 calls it a protocol violation, and 3.1.1 closes on those.
        return Err(match version {
            ProtocolVersion::V5 => DecodeError::Protocol("SUBSCRIBE without topic filters"),
            ProtocolVersion::V311 => DecodeError::Malformed("SUBSCRIBE without topic filters"),
        });
    }
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        let options = SubscriptionOptions::from_byte(r.u8()?, version)?;
        let f = SubscribeFilter { filter, options };
        if no_local_on_shared(&f) {
            return Err(DecodeError::Protocol("No Local on a shared subscription"));
        }
        filters.push(f);
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

impl Subscribe {
    fn measure(&self, version: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::Invalid("SUBSCRIBE with packet identifier 0"));
        }
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid(
                "SUBSCRIBE without topic filters (MQTT-3.8.3-3)",
            ));
        }
        let mut body = 2;
        let mut props = 0;
        if version == ProtocolVersion::V5 {
            props = properties_len(&self.properties)?;
            body += block_len(props);
        }
        for f in &self.filters {
            if version == ProtocolVersion::V5 && no_local_on_shared(f) {
                return Err(EncodeError::Invalid("No Local on a shared subscription"));
            }
            body = add(
                body,
                add(field_len(f.filter.as_bytes(), "Topic Filter")?, 1),
            );
        }
        Ok((body, props))
    }

    /// Bytes `encode` would append (0 when it would fail).
    pub(crate) fn encoded_len(&self, version: ProtocolVersion) -> usize {
        self.measure(version)
            .and_then(|(body, _)| packet_len(body))
            .unwrap_or(0)
    }

    /// Appends the SUBSCRIBE; MQTT 3.1.1 writes only the QoS of each option byte.
    pub(crate) fn encode(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let (body, props) = self.measure(version)?;
        out.reserve(packet_len(body)?);
        put_fixed_header(out, first_byte(PacketType::Subscribe), body);
        out.put_u16(self.packet_id);
        if version == ProtocolVersion::V5 {
            put_properties(out, &self.properties, props);
        }
        for f in &self.filters {
            put_field(out, f.filter.as_bytes());
            out.put_u8(f.options.to_byte(version));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProtocolVersion::*;
    use crate::frame::check;

    #[derive(Clone, Copy)]
    enum Expect {
        Malformed,
        Protocol,
    }

    impl Expect {
        fn matches(self, e: &DecodeError) -> bool {
            match self {
                Expect::Malformed => matches!(e, DecodeError::Malformed(_)),
                Expect::Protocol => matches!(e, DecodeError::Protocol(_)),
            }
        }
    }

    fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<Subscribe, DecodeError> {
        let h = check(bytes, 1 << 20)?.ok_or(DecodeError::Malformed("incomplete"))?;
        decode(Bytes::copy_from_slice(bytes), &h, v)
    }

    fn enc(s: &Subscribe, v: ProtocolVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        s.encode(v, &mut out).unwrap();
        assert_eq!(out.len(), s.encoded_len(v));
        out.to_vec()
    }

    #[test]
    fn v311_vector() {
        // Packet id 1, "a/b" QoS 1, "c/#" QoS 2.
        let wire = b"\x82\x0E\x00\x01\x00\x03a/b\x01\x00\x03c/#\x02";
        let s = dec(wire, V311).unwrap();
        assert_eq!(s.packet_id, 1);
        assert_eq!(s.filters.len(), 2);
        assert_eq!(
            (&*s.filters[1].filter, s.filters[1].options.qos),
            ("c/#", QoS::ExactlyOnce)
        );
        assert_eq!(enc(&s, V311), wire);
    }

    #[test]
    fn v5_vector() {
        // Packet id 2, Subscription Identifier 7, "a" with QoS 1, No Local, Retain As
        // Published, Retain Handling 2.
        let wire = b"\x82\x09\x00\x02\x02\x0B\x07\x00\x01a\x2D";
        let s = dec(wire, V5).unwrap();
        assert_eq!(s.properties.subscription_identifier, Some(7));
        let o = s.filters[0].options;
        assert_eq!(
            (o.qos, o.no_local, o.retain_as_published),
            (QoS::AtLeastOnce, true, true)
        );
        assert_eq!(o.retain_handling, RetainHandling::DoNotSend);
        assert_eq!(enc(&s, V5), wire);
    }

    #[test]
    fn rejects() {
        let cases: &[(&[u8], ProtocolVersion, Expect)] = &[
            // No filters.
            (b"\x82\x02\x00\x01", V311, Expect::Malformed),
            (b"\x82\x03\x00\x01\x00", V5, Expect::Protocol),
            // Packet id 0.
            (b"\x82\x06\x00\x00\x00\x01a\x00", V311, Expect::Malformed),
            // 3.1.1 reserved bits of the requested QoS byte; QoS 3.
            (b"\x82\x06\x00\x01\x00\x01a\x04", V311, Expect::Malformed),
            (b"\x82\x06\x00\x01\x00\x01a\x03", V311, Expect::Malformed),
            // v5 reserved bits 7-6 (MQTT-3.8.3-5); Retain Handling 3; QoS 3.
            (b"\x82\x07\x00\x01\x00\x00\x01a\x40", V5, Expect::Malformed),
            (b"\x82\x07\x00\x01\x00\x00\x01a\x30", V5, Expect::Protocol),
            (b"\x82\x07\x00\x01\x00\x00\x01a\x03", V5, Expect::Protocol),
            // Subscription Identifier 0.
            (
                b"\x82\x09\x00\x01\x02\x0B\x00\x00\x01a\x00",
                V5,
                Expect::Protocol,
            ),
            // Filter without its options byte.
            (b"\x82\x05\x00\x01\x00\x01a", V311, Expect::Malformed),
            // No Local on a shared subscription.
            (
                b"\x82\x10\x00\x01\x00\x00\x0A$share/g/t\x04",
                V5,
                Expect::Protocol,
            ),
        ];
        for (wire, v, ok) in cases {
            let got = dec(wire, *v);
            assert!(
                got.as_ref().is_err_and(|e| ok.matches(e)),
                "{wire:02X?}: {got:?}"
            );
        }
    }
}
