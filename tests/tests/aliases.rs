//! Topic aliases in both directions (MQTT 5 3.3.2.3.4). MQTT 3.1.1 has none.

use std::collections::HashMap;

use tenantmq_codec::{ProtocolVersion, Publish, QoS, ReasonCode};
use tenantmq_common::quota::Quotas;
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS5, V5, topic5, v5_options};
use tenantmq_e2e::raw::{RawClient, connect_packet, persistent_connect_packet, publish_packet};
use tenantmq_gateway::GatewayConfig;

const V50: ProtocolVersion = ProtocolVersion::V5;

fn aliased(topic: &str, alias: u16, payload: &[u8]) -> Publish {
    let mut p = publish_packet(topic, QoS::AtLeastOnce, false, 1, payload);
    p.properties.topic_alias = Some(alias);
    p
}

/// Client to server: a PUBLISH with topic and alias sets the alias; one with an empty topic
/// and the alias uses it; a later topic re-maps it. Subscribers see the full topic names.
#[tokio::test]
async fn client_sets_then_uses_aliases_v5() {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, V50, "sub").await;
    sub.subscribe("#", QoS::AtLeastOnce).await;
    let (mut publisher, ack) = RawClient::connect_with(b.addr, connect_packet(V50, "pub")).await;
    assert!(ack.properties.topic_alias_maximum.is_some_and(|m| m >= 2));
    for (topic, alias, payload) in [
        ("a/b", 1, "1"),
        ("", 1, "2"),
        ("c/d", 1, "3"),
        ("", 1, "4"),
        ("e", 2, "5"),
        ("", 1, "6"),
        ("", 2, "7"),
    ] {
        let reason = publisher
            .publish(aliased(topic, alias, payload.as_bytes()))
            .await;
        assert_eq!(
            reason,
            ReasonCode::SUCCESS,
            "PUBLISH {topic:?} alias {alias}"
        );
    }
    let mut got = Vec::new();
    for _ in 0..7 {
        let p = sub.expect_publish_acked().await;
        assert_eq!(
            p.properties.topic_alias, None,
            "the subscriber announced no Topic Alias Maximum"
        );
        got.push((
            p.topic.to_string(),
            String::from_utf8_lossy(&p.payload).into_owned(),
        ));
    }
    let expected: Vec<(String, String)> = [
        ("a/b", "1"),
        ("a/b", "2"),
        ("c/d", "3"),
        ("c/d", "4"),
        ("e", "5"),
        ("c/d", "6"),
        ("e", "7"),
    ]
    .iter()
    .map(|(t, p)| (t.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, expected);
}

/// A QoS 0 MQTT 5 PUBLISH as raw bytes, for values the codec refuses to encode.
fn raw_publish(topic: &str, properties: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.push(properties.len() as u8);
    body.extend_from_slice(properties);
    body.extend_from_slice(payload);
    assert!(body.len() < 128);
    let mut packet = vec![0x30, body.len() as u8];
    packet.extend(body);
    packet
}

/// Topic Alias property (0x23) with `alias`.
fn alias_property(alias: u16) -> Vec<u8> {
    let [hi, lo] = alias.to_be_bytes();
    vec![0x23, hi, lo]
}

async fn alias_violation(quotas: Quotas, publish: Vec<u8>, expected: ReasonCode) {
    let b = DevBroker::start_with(quotas, GatewayConfig::default()).await;
    let mut c = RawClient::connected(b.addr, V50, "c").await;
    c.send_bytes(&publish).await.expect("socket I/O");
    assert_eq!(c.expect_closed().await, Some(expected));
    // The broker carries on.
    let mut other = RawClient::connected(b.addr, V50, "other").await;
    other.subscribe("t", QoS::AtLeastOnce).await;
    other.publish_qos1("t", b"ok").await;
    assert_eq!(&other.expect_publish().await.payload[..], b"ok");
}

/// Alias 0 is not allowed (`MQTT-3.3.2-8`). The specification describes 0x94 (Topic Alias
/// invalid) as "a Topic Alias which is greater than the Maximum Topic Alias"; an alias of 0
/// breaks a MUST of the packet format instead, which the codec reports as a Protocol Error:
/// DISCONNECT 0x82. (Some brokers answer 0x94 here; as the specification's description of
/// 0x94 covers only aliases above the maximum, the codec's Protocol Error is kept.)
#[tokio::test]
async fn alias_0_disconnects_0x82_v5() {
    alias_violation(
        Quotas::unlimited(),
        raw_publish("t", &alias_property(0), b"x"),
        ReasonCode::PROTOCOL_ERROR,
    )
    .await;
}

/// An alias above the Topic Alias Maximum of CONNACK (`MQTT-3.3.2-9`): DISCONNECT 0x94.
#[tokio::test]
async fn alias_above_maximum_disconnects_0x94_v5() {
    let quotas = Quotas {
        max_topic_alias: 5,
        ..Quotas::unlimited()
    };
    let b = DevBroker::start_with(quotas.clone(), GatewayConfig::default()).await;
    let (_c, ack) = RawClient::connect_with(b.addr, connect_packet(V50, "c")).await;
    assert_eq!(ack.properties.topic_alias_maximum, Some(5));
    drop(b);
    alias_violation(
        quotas,
        raw_publish("t", &alias_property(6), b"x"),
        ReasonCode::TOPIC_ALIAS_INVALID,
    )
    .await;
}

/// A server that announces no Topic Alias Maximum accepts no alias at all.
#[tokio::test]
async fn alias_when_server_allows_none_disconnects_0x94_v5() {
    let quotas = Quotas {
        max_topic_alias: 0,
        ..Quotas::unlimited()
    };
    alias_violation(
        quotas,
        raw_publish("t", &alias_property(1), b"x"),
        ReasonCode::TOPIC_ALIAS_INVALID,
    )
    .await;
}

/// An empty topic with an alias never set is a protocol error (3.3.2.3.4): DISCONNECT 0x82.
#[tokio::test]
async fn unknown_alias_with_empty_topic_disconnects_0x82_v5() {
    alias_violation(
        Quotas::unlimited(),
        raw_publish("", &alias_property(3), b"x"),
        ReasonCode::PROTOCOL_ERROR,
    )
    .await;
}

/// An empty topic without any alias is a protocol error too (3.3.2.1).
#[tokio::test]
async fn empty_topic_without_alias_disconnects_0x82_v5() {
    alias_violation(
        Quotas::unlimited(),
        raw_publish("", &[], b"x"),
        ReasonCode::PROTOCOL_ERROR,
    )
    .await;
}

/// Server to client, on the wire: with the client's Topic Alias Maximum 2, the first
/// delivery on a topic carries topic and alias, the second an empty topic and the alias;
/// aliases stay within 1..=2 (`MQTT-3.3.2-10`... 3.3.2.3.4) and every empty-topic delivery
/// resolves, through the mappings the client has been sent, to the topic published.
#[tokio::test]
async fn server_sends_aliases_within_client_maximum_v5() {
    let b = DevBroker::start().await;
    let mut c = connect_packet(V50, "sub");
    c.properties.topic_alias_maximum = Some(2);
    let (mut sub, _) = RawClient::connect_with(b.addr, c).await;
    sub.subscribe("x/#", QoS::AtMostOnce).await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    let sequence = [
        "x/1", "x/1", "x/2", "x/2", "x/1", "x/3", "x/3", "x/1", "x/2", "x/2",
    ];
    for t in sequence {
        publisher
            .publish(publish_packet(t, QoS::AtLeastOnce, false, 1, t.as_bytes()))
            .await;
    }

    let mut map: HashMap<u16, String> = HashMap::new();
    let mut wire = Vec::new();
    for expected in sequence {
        let p = sub.expect_publish().await;
        let resolved = match p.properties.topic_alias {
            Some(alias) => {
                assert!(
                    (1..=2).contains(&alias),
                    "alias {alias} outside the client's maximum 2"
                );
                if !p.topic.is_empty() {
                    map.insert(alias, p.topic.to_string());
                }
                map.get(&alias)
                    .cloned()
                    .expect("empty topic with an alias never sent")
            }
            None => {
                assert!(!p.topic.is_empty(), "empty topic without alias");
                p.topic.to_string()
            }
        };
        assert_eq!(resolved, expected);
        assert_eq!(&p.payload[..], expected.as_bytes());
        wire.push((p.topic.to_string(), p.properties.topic_alias));
    }
    let (first, second) = (&wire[0], &wire[1]);
    assert!(
        first.0 == "x/1" && first.1.is_some(),
        "first delivery sets an alias: {first:?}"
    );
    assert_eq!(
        second,
        &(String::new(), first.1),
        "second delivery on x/1 uses the alias alone"
    );
    assert_eq!(wire[3].0, "", "second delivery on x/2 uses the alias alone");
}

/// Aliases live only as long as their connection (3.3.2.3.4): after the session resumes on
/// a new connection, the first delivery on a topic names it again.
#[tokio::test]
async fn aliases_do_not_survive_the_connection_v5() {
    let b = DevBroker::start().await;
    let connect = || {
        let mut c = persistent_connect_packet(V50, "sub");
        c.properties.topic_alias_maximum = Some(4);
        c
    };
    let (mut sub, _) = RawClient::connect_with(b.addr, connect()).await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher.publish_qos1("t", b"1").await;
    let p = sub.expect_publish_acked().await;
    assert_eq!(
        (p.topic.as_ref(), p.properties.topic_alias.is_some()),
        ("t", true)
    );
    sub.disconnect().await;

    let (mut sub, ack) = RawClient::connect_with(b.addr, connect()).await;
    assert!(ack.session_present);
    publisher.publish_qos1("t", b"2").await;
    let p = sub.expect_publish_acked().await;
    assert_eq!(
        p.topic, "t",
        "alias of the previous connection used without its topic"
    );
}

/// A real client announcing a Topic Alias Maximum gets every message under the right topic,
/// and can publish with aliases itself.
#[tokio::test]
async fn rumqttc_with_topic_aliases_both_ways_v5() {
    let b = DevBroker::start().await;
    let mut o = v5_options(b.addr, "sub");
    o.set_topic_alias_max(Some(3));
    let mut sub = V5::connect_with(o).await;
    sub.subscribe("al/#", QoS5::AtLeastOnce).await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    let topics = ["al/a", "al/b", "al/a", "al/c", "al/d", "al/a", "al/b"];
    for t in topics {
        publisher
            .publish(t, QoS5::AtLeastOnce, false, t.to_string())
            .await;
    }
    let props = |alias| rumqttc::v5::mqttbytes::v5::PublishProperties {
        topic_alias: Some(alias),
        ..Default::default()
    };
    publisher
        .publish_with("al/aliased", QoS5::AtLeastOnce, false, "x", Some(props(1)))
        .await;
    publisher
        .publish_with("", QoS5::AtLeastOnce, false, "al/aliased", Some(props(1)))
        .await;
    for t in topics.iter().chain(&["al/aliased", "al/aliased"]) {
        let p = sub.recv().await;
        assert_eq!(topic5(&p), *t);
    }
}
