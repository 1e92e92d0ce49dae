//! Property tests over the public API: every packet type round-trips in both versions,
//! `encoded_len` is exact, arbitrary input never panics, and a stream split anywhere
//! reassembles through `frame::check`.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use smallvec::SmallVec;
use tenantmq_codec::frame::{self, MAX_REMAINING_LENGTH};
use tenantmq_codec::{
    AckProperties, Auth, AuthProperties, ByteString, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, Disconnect, DisconnectProperties, Packet, ProtocolVersion, PubAck, Publish,
    PublishProperties, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeFilter,
    SubscribeProperties, SubscriptionOptions, UnsubAck, Unsubscribe, UnsubscribeProperties, Will,
    WillProperties,
};

use ProtocolVersion::{V5, V311};

const MAX: u32 = 1 << 24;

fn string() -> impl Strategy<Value = ByteString> {
    // Any UTF-8 without U+0000 (MQTT-1.5.4-2).
    "[^\u{0}]{0,12}".prop_map(ByteString::from)
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn user_props() -> impl Strategy<Value = Vec<(ByteString, ByteString)>> {
    vec((string(), string()), 0..3)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(codes).prop_map(ReasonCode)
}

fn nonzero_u16() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn auth_pair() -> impl Strategy<Value = (Option<ByteString>, Option<Bytes>)> {
    // Authentication Data only with an Authentication Method (3.1.2.11.10).
    of((string(), of(binary()))).prop_map(|m| match m {
        Some((method, data)) => (Some(method), data),
        None => (None, None),
    })
}

fn connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = v == V5;
    let will = of((
        string(),
        binary(),
        qos(),
        any::<bool>(),
        (
            of(any::<u32>()),
            of(0..=1u8),
            of(any::<u32>()),
            of(string()),
        ),
        (of(string()), of(binary()), user_props()),
    )
        .prop_map(
            move |(topic, payload, qos, retain, (delay, pfi, expiry, ct), (rt, cd, up))| {
                let properties = if v5 {
                    WillProperties {
                        will_delay_interval: delay,
                        payload_format_indicator: pfi,
                        message_expiry_interval: expiry,
                        content_type: ct,
                        response_topic: rt,
                        correlation_data: cd,
                        user_properties: up,
                    }
                } else {
                    WillProperties::default()
                };
                Will {
                    topic,
                    payload,
                    qos,
                    retain,
                    properties,
                }
            },
        ));
    let props = (
        (
            of(any::<u32>()),
            of(1..=u16::MAX),
            of(1..=u32::MAX),
            of(any::<u16>()),
        ),
        (
            of(any::<bool>()),
            of(any::<bool>()),
            auth_pair(),
            user_props(),
        ),
    )
        .prop_map(
            |((sei, rm, mps, tam), (rri, rpi, (am, ad), up))| ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                authentication_method: am,
                authentication_data: ad,
                user_properties: up,
            },
        );
    (
        any::<bool>(),
        any::<u16>(),
        string(),
        will,
        of(string()),
        of(binary()),
        props,
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // MQTT-3.1.2-22: no password without a user name in 3.1.1.
                let password = if v5 || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties: if v5 {
                        properties
                    } else {
                        ConnectProperties::default()
                    },
                }))
            },
        )
}

const CONNACK_V5: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const CONNACK_V311: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];

fn connack(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if v == V5 { CONNACK_V5 } else { CONNACK_V311 };
    let props = (
        (
            of(any::<u32>()),
            of(1..=u16::MAX),
            of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
        ),
        (
            of(any::<bool>()),
            of(1..=u32::MAX),
            of(string()),
            of(any::<u16>()),
            of(string()),
        ),
        (
            user_props(),
            of(any::<bool>()),
            of(any::<bool>()),
            of(any::<bool>()),
            of(any::<u16>()),
        ),
        (of(string()), of(string()), auth_pair()),
    )
        .prop_map(
            |(
                (sei, rm, mq),
                (ra, mps, aci, tam, rs),
                (up, wsa, sia, ssa, ska),
                (ri, sr, (am, ad)),
            )| {
                ConnAckProperties {
                    session_expiry_interval: sei,
                    receive_maximum: rm,
                    maximum_qos: mq,
                    retain_available: ra,
                    maximum_packet_size: mps,
                    assigned_client_identifier: aci,
                    topic_alias_maximum: tam,
                    reason_string: rs,
                    user_properties: up,
                    wildcard_subscription_available: wsa,
                    subscription_identifiers_available: sia,
                    shared_subscription_available: ssa,
                    server_keep_alive: ska,
                    response_information: ri,
                    server_reference: sr,
                    authentication_method: am,
                    authentication_data: ad,
                }
            },
        );
    (any::<bool>(), reason(codes), props).prop_map(move |(sp, reason, properties)| {
        Packet::ConnAck(ConnAck {
            // MQTT-3.2.2-6: Session Present only with success.
            session_present: sp && reason == ReasonCode::SUCCESS,
            reason,
            properties: if v == V5 {
                properties
            } else {
                ConnAckProperties::default()
            },
        })
    })
}

fn publish(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = v == V5;
    let props = (
        (
            of(0..=1u8),
            of(any::<u32>()),
            of(1..=u16::MAX),
            of(string()),
        ),
        (
            of(binary()),
            user_props(),
            vec(1..=MAX_REMAINING_LENGTH, 0..3),
            of(string()),
        ),
    )
        .prop_map(
            |((pfi, mei, ta, rt), (cd, up, sids, ct))| PublishProperties {
                payload_format_indicator: pfi,
                message_expiry_interval: mei,
                topic_alias: ta,
                response_topic: rt,
                correlation_data: cd,
                user_properties: up,
                subscription_identifiers: SmallVec::from_vec(sids),
                content_type: ct,
            },
        );
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        string(),
        nonzero_u16(),
        props,
        binary(),
    )
        .prop_map(move |(qos, dup, retain, topic, id, props, payload)| {
            let properties = if v5 {
                props
            } else {
                PublishProperties::default()
            };
            // An empty topic needs a Topic Alias, which only MQTT 5 has.
            let needs_topic = !v5 || properties.topic_alias.is_none();
            let topic = if topic.is_empty() && needs_topic {
                ByteString::from("t")
            } else {
                topic
            };
            let qos0 = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !qos0,
                qos,
                retain,
                topic,
                packet_id: if qos0 { 0 } else { id },
                properties,
                payload,
            })
        })
}

fn ack_props(v: ProtocolVersion) -> impl Strategy<Value = AckProperties> {
    (of(string()), user_props()).prop_map(move |(reason_string, user_properties)| {
        if v == V5 {
            AckProperties {
                reason_string,
                user_properties,
            }
        } else {
            AckProperties::default()
        }
    })
}

const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];

fn puback(v: ProtocolVersion, codes: &'static [u8]) -> impl Strategy<Value = PubAck> {
    (nonzero_u16(), reason(codes), ack_props(v)).prop_map(move |(packet_id, reason, properties)| {
        PubAck {
            packet_id,
            reason: if v == V5 { reason } else { ReasonCode::SUCCESS },
            properties,
        }
    })
}

fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let options =
        (qos(), any::<bool>(), any::<bool>(), 0..3u8).prop_map(move |(qos, nl, rap, rh)| {
            if v == V5 {
                let retain_handling = match rh {
                    0 => RetainHandling::SendOnSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                };
                SubscriptionOptions {
                    qos,
                    no_local: nl,
                    retain_as_published: rap,
                    retain_handling,
                }
            } else {
                SubscriptionOptions {
                    qos,
                    ..Default::default()
                }
            }
        });
    let filter = (string(), options).prop_map(|(filter, mut options)| {
        // MQTT-3.8.3-4: no No Local on shared subscriptions.
        options.no_local &= !filter.starts_with("$share/");
        SubscribeFilter { filter, options }
    });
    let props =
        (of(1..=MAX_REMAINING_LENGTH), user_props()).prop_map(|(s, u)| SubscribeProperties {
            subscription_identifier: s,
            user_properties: u,
        });
    (nonzero_u16(), vec(filter, 1..4), props).prop_map(move |(packet_id, filters, properties)| {
        Packet::Subscribe(Subscribe {
            packet_id,
            filters,
            properties: if v == V5 {
                properties
            } else {
                SubscribeProperties::default()
            },
        })
    })
}

const SUBACK_V5: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const SUBACK_V311: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const UNSUBACK_V5: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];

fn suback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if v == V5 { SUBACK_V5 } else { SUBACK_V311 };
    (nonzero_u16(), vec(reason(codes), 1..5), ack_props(v)).prop_map(
        |(packet_id, reasons, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties,
            })
        },
    )
}

fn unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (nonzero_u16(), vec(string(), 1..4), user_props()).prop_map(move |(packet_id, filters, up)| {
        let user_properties = if v == V5 { up } else { Vec::new() };
        Packet::Unsubscribe(Unsubscribe {
            packet_id,
            filters,
            properties: UnsubscribeProperties { user_properties },
        })
    })
}

fn unsuback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (nonzero_u16(), vec(reason(UNSUBACK_V5), 1..5), ack_props(v)).prop_map(
        move |(packet_id, reasons, properties)| {
            // MQTT 3.1.1's UNSUBACK has no payload.
            let reasons = if v == V5 { reasons } else { Vec::new() };
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties,
            })
        },
    )
}

const DISCONNECT_V5: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

fn disconnect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let props = (of(any::<u32>()), of(string()), user_props(), of(string())).prop_map(
        |(sei, rs, up, sr)| DisconnectProperties {
            session_expiry_interval: sei,
            reason_string: rs,
            user_properties: up,
            server_reference: sr,
        },
    );
    (reason(DISCONNECT_V5), props).prop_map(move |(reason, properties)| {
        Packet::Disconnect(if v == V5 {
            Disconnect { reason, properties }
        } else {
            Disconnect::default()
        })
    })
}

fn auth() -> impl Strategy<Value = Packet> {
    let props =
        (auth_pair(), of(string()), user_props()).prop_map(|((am, ad), rs, up)| AuthProperties {
            authentication_method: am,
            authentication_data: ad,
            reason_string: rs,
            user_properties: up,
        });
    (reason(&[0x00, 0x18, 0x19]), props)
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
}

fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(v),
        connack(v),
        publish(v),
        puback(v, PUBACK_CODES).prop_map(Packet::PubAck),
        puback(v, PUBACK_CODES).prop_map(Packet::PubRec),
        puback(v, PUBREL_CODES).prop_map(Packet::PubRel),
        puback(v, PUBREL_CODES).prop_map(Packet::PubComp),
        subscribe(v),
        suback(v),
        unsubscribe(v),
        unsuback(v),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(v),
    ];
    if v == V5 {
        prop_oneof![common, auth()].boxed()
    } else {
        common.boxed()
    }
}

fn encode(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    let r = p.encode(v, &mut out);
    assert_eq!(r, Ok(()), "{p:?}");
    assert_eq!(out.len(), p.encoded_len(v), "encoded_len of {p:?}");
    out
}

/// Splits complete packets off `buf` and decodes them; stops at the first incomplete one.
fn drain(buf: &mut BytesMut, v: ProtocolVersion, into: &mut Vec<Packet>) {
    while let Some(h) = frame::check(buf, MAX).expect("valid stream") {
        let frame = buf.split_to(h.total_len()).freeze();
        into.push(Packet::decode(frame, &h, v).expect("valid packet"));
    }
}

/// Feeds arbitrary bytes through check + decode until an error or need-more-bytes. Whatever
/// decodes must encode to `encoded_len` bytes and decode back to itself.
fn feed(bytes: &[u8], v: ProtocolVersion) {
    let mut buf = Bytes::copy_from_slice(bytes);
    while let Ok(Some(h)) = frame::check(&buf, MAX) {
        let frame = buf.split_to(h.total_len());
        if let Ok(p) = Packet::decode(frame, &h, v) {
            let out = encode(&p, v);
            let h = frame::check(&out, u32::MAX)
                .expect("frames")
                .expect("complete");
            assert_eq!(Packet::decode(out.freeze(), &h, v), Ok(p));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_v311(p in packet(V311)) {
        let bytes = encode(&p, V311);
        let h = frame::check(&bytes, MAX).unwrap().unwrap();
        prop_assert_eq!(h.total_len(), bytes.len());
        prop_assert_eq!(Packet::decode(bytes.freeze(), &h, V311), Ok(p));
    }

    #[test]
    fn round_trip_v5(p in packet(V5)) {
        let bytes = encode(&p, V5);
        let h = frame::check(&bytes, MAX).unwrap().unwrap();
        prop_assert_eq!(h.total_len(), bytes.len());
        prop_assert_eq!(Packet::decode(bytes.freeze(), &h, V5), Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        feed(&bytes, V311);
        feed(&bytes, V5);
    }

    /// Mutating one byte of a valid packet reaches far deeper than random bytes do.
    #[test]
    fn mutated_packets_never_panic(p in packet(V5), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        for v in [V311, V5] {
            let mut bytes = encode(&p, V5).to_vec();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            feed(&bytes, v);
            // Truncated and extended forms too.
            feed(&bytes[..i], v);
            bytes.push(byte);
            feed(&bytes, v);
        }
    }
}

proptest! {
    // Each case decodes the stream once per split point: fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn stream_split_anywhere_reassembles(ps in vec(packet(V5), 1..5)) {
        let mut stream = BytesMut::new();
        for p in &ps {
            stream.extend_from_slice(&encode(p, V5));
        }
        for split in 0..=stream.len() {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            buf.extend_from_slice(&stream[..split]);
            drain(&mut buf, V5, &mut got);
            buf.extend_from_slice(&stream[split..]);
            drain(&mut buf, V5, &mut got);
            prop_assert!(buf.is_empty());
            prop_assert_eq!(&got, &ps);
        }
    }
}

#[test]
fn byte_at_a_time_reassembles() {
    let packets = vec![
        Packet::PingReq,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "sensors/device-0042/temperature".into(),
            packet_id: 7,
            properties: PublishProperties::default(),
            payload: Bytes::from(vec![0xAB; 300]),
        }),
        Packet::PubAck(PubAck {
            packet_id: 7,
            ..Default::default()
        }),
        Packet::Disconnect(Disconnect::default()),
    ];
    for v in [V311, V5] {
        let mut stream = Vec::new();
        for p in &packets {
            stream.extend_from_slice(&encode(p, v));
        }
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in stream {
            buf.extend_from_slice(&[b]);
            drain(&mut buf, v, &mut got);
        }
        assert_eq!(got, packets);
    }
}

#[test]
fn encode_errors_append_nothing() {
    let mut out = BytesMut::from(&b"prefix"[..]);
    let bad = [
        Packet::Auth(Auth::default()),
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![],
            properties: Default::default(),
        }),
        Packet::PubAck(PubAck::default()),
    ];
    for p in &bad {
        assert!(p.encode(V311, &mut out).is_err(), "{p:?}");
        assert_eq!(p.encoded_len(V311), 0);
    }
    assert_eq!(&out[..], b"prefix");
}
