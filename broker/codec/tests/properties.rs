//! The MQTT 5 property block (spec 2.2.2): reading with its shared rules, and the
//! measure-then-write encoding.

use bytes::{Bytes, BytesMut};
use tenantmq_codec::primitives::Reader;
use tenantmq_codec::properties::*;
use tenantmq_codec::{DecodeError, EncodeError};

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

fn read(ctx: PropertyContext, block: &'static [u8]) -> Result<Vec<Property>, DecodeError> {
    let mut r = Reader::new(Bytes::from_static(block), 0);
    let mut out = Vec::new();
    read_properties(&mut r, ctx, |p| {
        out.push(p);
        Ok(())
    })?;
    r.finish("trailing")?;
    Ok(out)
}

#[test]
fn every_identifier_round_trips_through_from_u32() {
    for v in 0..=0xFFu32 {
        if let Some(id) = PropertyId::from_u32(v) {
            assert_eq!(id as u32, v);
            let contexts = [
                PropertyContext::Connect,
                PropertyContext::ConnAck,
                PropertyContext::Publish,
                PropertyContext::Will,
                PropertyContext::Ack,
                PropertyContext::Subscribe,
                PropertyContext::SubAck,
                PropertyContext::Unsubscribe,
                PropertyContext::UnsubAck,
                PropertyContext::Disconnect,
                PropertyContext::Auth,
            ];
            assert!(contexts.iter().any(|&c| id.allowed_in(c)), "{id:?}");
        }
    }
}

#[test]
fn reads_typed_properties() {
    let props = read(
        PropertyContext::Connect,
        b"\x0E\x11\x00\x00\x00\x3C\x21\x00\x0A\x26\x00\x01k\x00\x00",
    );
    assert_eq!(
        props,
        Ok(vec![
            Property::SessionExpiryInterval(60),
            Property::ReceiveMaximum(10),
            Property::UserProperty("k".into(), "".into()),
        ])
    );
}

#[test]
fn rejects_bad_blocks() {
    let cases: &[(PropertyContext, &[u8], Expect)] = &[
        // Unknown identifier 0x04.
        (PropertyContext::Publish, b"\x02\x04\x00", Expect::Malformed),
        // Topic Alias is not valid in CONNECT.
        (
            PropertyContext::Connect,
            b"\x03\x23\x00\x01",
            Expect::Malformed,
        ),
        // Session Expiry Interval twice.
        (
            PropertyContext::Connect,
            b"\x0A\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02",
            Expect::Protocol,
        ),
        // Receive Maximum 0, Maximum Packet Size 0.
        (
            PropertyContext::Connect,
            b"\x03\x21\x00\x00",
            Expect::Protocol,
        ),
        (
            PropertyContext::ConnAck,
            b"\x05\x27\x00\x00\x00\x00",
            Expect::Protocol,
        ),
        // Subscription Identifier 0 in SUBSCRIBE; twice in SUBSCRIBE.
        (
            PropertyContext::Subscribe,
            b"\x02\x0B\x00",
            Expect::Protocol,
        ),
        (
            PropertyContext::Subscribe,
            b"\x04\x0B\x01\x0B\x02",
            Expect::Protocol,
        ),
        // Payload Format Indicator 2, Request Problem Information 2, Topic Alias 0.
        (PropertyContext::Publish, b"\x02\x01\x02", Expect::Protocol),
        (PropertyContext::Connect, b"\x02\x17\x02", Expect::Protocol),
        (
            PropertyContext::Publish,
            b"\x03\x23\x00\x00",
            Expect::Protocol,
        ),
        // Maximum QoS 2.
        (PropertyContext::ConnAck, b"\x02\x24\x02", Expect::Protocol),
        // Length runs past the packet; value runs past the block.
        (PropertyContext::Publish, b"\x05\x01\x00", Expect::Malformed),
        (
            PropertyContext::Publish,
            b"\x02\x02\x00\x00\x00\x00",
            Expect::Malformed,
        ),
    ];
    for (ctx, block, ok) in cases {
        let mut r = Reader::new(Bytes::from_static(block), 0);
        let got = read_properties(&mut r, *ctx, |_| Ok(()));
        assert!(
            got.as_ref().is_err_and(|e| ok.matches(e)),
            "{block:02X?}: {got:?}"
        );
    }
}

#[test]
fn subscription_identifiers_repeat_in_publish() {
    assert_eq!(
        read(PropertyContext::Publish, b"\x05\x0B\x01\x0B\x80\x01"),
        Ok(vec![
            Property::SubscriptionIdentifier(1),
            Property::SubscriptionIdentifier(128)
        ])
    );
}

struct Sample;
impl EncodeProperties for Sample {
    fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.opt(PropertyId::PayloadFormatIndicator, Some(1u8))?;
        s.opt(PropertyId::SubscriptionIdentifier, Some(300u32))?;
        s.opt(PropertyId::TopicAlias, Some(7u16))?;
        s.opt_field(PropertyId::ContentType, Some(b"text".as_slice()))?;
        s.pair("a", "b")
    }
}

#[test]
fn measure_equals_write() {
    let len = properties_len(&Sample).unwrap();
    let mut out = BytesMut::new();
    put_properties(&mut out, &Sample, len);
    assert_eq!(out.len(), block_len(len));
    assert_eq!(
        &out[..],
        b"\x16\x01\x01\x0B\xAC\x02\x23\x00\x07\x03\x00\x04text\x26\x00\x01a\x00\x01b"
    );
}

#[test]
fn encoder_rejects_forbidden_values() {
    struct Bad;
    impl EncodeProperties for Bad {
        fn visit<S: PropertySink>(&self, s: &mut S) -> Result<(), EncodeError> {
            s.opt(PropertyId::ReceiveMaximum, Some(0u16))
        }
    }
    assert!(matches!(properties_len(&Bad), Err(EncodeError::Invalid(_))));
}
