//! Topic names and filters: validation (MQTT 5 4.7.1, 4.7.3; 3.1.1 4.7) and matching with
//! `+`, `#` and the `$`-topic rule (`MQTT-4.7.2-1`).

use std::collections::BTreeSet;

use tenantmq_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS3, QoS5, V3, V5, topic5};
use tenantmq_e2e::raw::{RawClient, opts, publish_packet};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

/// Topics published, in order.
const TOPICS: &[&str] = &[
    "sport",
    "sport/tennis",
    "sport/tennis/player1",
    "sport/tennis/player1/ranking",
    "/finance",
    "a/monitor/Clients",
    "$foo",
    "$foo/bar",
    "x",
];

/// Each filter and the topics of [`TOPICS`] it must receive, per §4.7: `#` matches the parent
/// level too ("sport/#" gets "sport"), `+` matches exactly one level (possibly empty), and
/// filters starting with a wildcard never match topics starting with `$`.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "sport/#",
        &[
            "sport",
            "sport/tennis",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
        ],
    ),
    ("sport/tennis/+", &["sport/tennis/player1"]),
    ("sport/+/player1", &["sport/tennis/player1"]),
    ("+/+", &["sport/tennis", "/finance"]),
    ("+", &["sport", "x"]),
    (
        "#",
        &[
            "sport",
            "sport/tennis",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "/finance",
            "a/monitor/Clients",
            "x",
        ],
    ),
    ("/+", &["/finance"]),
    ("+/monitor/Clients", &["a/monitor/Clients"]),
    ("$foo/#", &["$foo", "$foo/bar"]),
    ("$foo/+", &["$foo/bar"]),
    ("+/bar", &[]),
    ("+/+/+/+", &["sport/tennis/player1/ranking"]),
];

/// Published last; only the exact filter "$end" matches it (no wildcard filter matches a
/// `$` topic), so once a subscriber sees it, everything published before has arrived.
const END: &str = "$end";

fn set(topics: &[&str]) -> BTreeSet<String> {
    topics.iter().map(|t| t.to_string()).collect()
}

#[tokio::test]
async fn wildcards_and_dollar_topics_match_per_spec_v311() {
    let b = DevBroker::start().await;
    let mut subs = Vec::new();
    for (i, (filter, _)) in EXPECTED.iter().enumerate() {
        let mut c = V3::connect(b.addr, &format!("sub{i}")).await;
        c.subscribe(filter, QoS3::AtLeastOnce).await;
        c.subscribe(END, QoS3::AtLeastOnce).await;
        subs.push(c);
    }
    let mut publisher = V3::connect(b.addr, "pub").await;
    for t in TOPICS.iter().chain([&END]) {
        publisher
            .publish(t, QoS3::AtLeastOnce, false, t.as_bytes().to_vec())
            .await;
    }
    for ((filter, expected), sub) in EXPECTED.iter().zip(&mut subs) {
        let mut got = BTreeSet::new();
        loop {
            let p = sub.recv().await;
            if p.topic == END {
                break;
            }
            assert!(
                got.insert(p.topic.clone()),
                "{filter}: {} delivered twice",
                p.topic
            );
        }
        assert_eq!(got, set(expected), "topics received by {filter}");
    }
}

#[tokio::test]
async fn wildcards_and_dollar_topics_match_per_spec_v5() {
    let b = DevBroker::start().await;
    let mut subs = Vec::new();
    for (i, (filter, _)) in EXPECTED.iter().enumerate() {
        let mut c = V5::connect(b.addr, &format!("sub{i}")).await;
        c.subscribe(filter, QoS5::AtLeastOnce).await;
        c.subscribe(END, QoS5::AtLeastOnce).await;
        subs.push(c);
    }
    let mut publisher = V5::connect(b.addr, "pub").await;
    for t in TOPICS.iter().chain([&END]) {
        publisher
            .publish(t, QoS5::AtLeastOnce, false, t.as_bytes().to_vec())
            .await;
    }
    for ((filter, expected), sub) in EXPECTED.iter().zip(&mut subs) {
        let mut got = BTreeSet::new();
        loop {
            let topic = topic5(&sub.recv().await);
            if topic == END {
                break;
            }
            assert!(
                got.insert(topic.clone()),
                "{filter}: {topic} delivered twice"
            );
        }
        assert_eq!(got, set(expected), "topics received by {filter}");
    }
}

/// Filters breaking the wildcard rules (`MQTT-4.7.1-1`, `-2`, `-3`) or, in MQTT 5, the
/// shared-subscription syntax (`MQTT-4.8.2-1`, `-2`) are refused one by one in SUBACK —
/// 0x8F (MQTT 5) / 0x80 (3.1.1) — while the valid filter of the same SUBSCRIBE is granted
/// and the connection stays up.
async fn invalid_filters_refused(version: ProtocolVersion, invalid: &[&str], failure: ReasonCode) {
    let b = DevBroker::start().await;
    let mut c = RawClient::connected(b.addr, version, "c").await;
    let mut filters: Vec<_> = invalid
        .iter()
        .map(|f| (*f, opts(QoS::AtLeastOnce)))
        .collect();
    filters.push(("ok/+", opts(QoS::AtLeastOnce)));
    let reasons = c.subscribe_with(7, &filters, None).await;
    let mut expected = vec![failure; invalid.len()];
    expected.push(ReasonCode::GRANTED_QOS_1);
    assert_eq!(reasons, expected, "SUBACK for {filters:?}");
    // Still connected, and the valid filter works.
    c.publish_qos1("ok/yes", b"1").await;
    assert_eq!(c.expect_publish().await.topic, "ok/yes");
}

const BAD_FILTERS: &[&str] = &["a/#/b", "a/b#", "a+/b", "+a", "#/", "sport/ten#nis"];

#[tokio::test]
async fn invalid_filters_get_suback_failure_v311() {
    invalid_filters_refused(V311, BAD_FILTERS, ReasonCode(0x80)).await;
}

#[tokio::test]
async fn invalid_filters_get_suback_0x8f_v5() {
    let mut bad = BAD_FILTERS.to_vec();
    bad.extend(["$share/g", "$share/g+/t", "$share//t"]);
    invalid_filters_refused(V50, &bad, ReasonCode::TOPIC_FILTER_INVALID).await;
}

/// A PUBLISH whose topic name has a wildcard (`MQTT-3.3.2-2`): MQTT 5 gets DISCONNECT 0x90
/// (Topic Name invalid) and is closed; 3.1.1 is closed. Nothing is delivered, and other
/// clients carry on.
async fn wildcard_in_topic_name(version: ProtocolVersion, topic: &str) {
    let b = DevBroker::start().await;
    let mut watcher = RawClient::connected(b.addr, V50, "watcher").await;
    watcher.subscribe("#", QoS::AtMostOnce).await;
    let mut bad = RawClient::connected(b.addr, version, "bad").await;
    bad.send(&Packet::Publish(publish_packet(
        topic,
        QoS::AtMostOnce,
        false,
        0,
        b"x",
    )))
    .await
    .expect("socket I/O");
    let reason = bad.expect_closed().await;
    let expected = (version == V50).then_some(ReasonCode::TOPIC_NAME_INVALID);
    assert_eq!(reason, expected, "close of a PUBLISH to {topic}");

    let mut good = RawClient::connected(b.addr, version, "good").await;
    good.publish_qos1("fine", b"ok").await;
    assert_eq!(
        watcher.expect_publish().await.topic,
        "fine",
        "nothing else may arrive before"
    );
}

#[tokio::test]
async fn publish_with_plus_in_topic_disconnects_0x90_v5() {
    wildcard_in_topic_name(V50, "a/+/c").await;
}

#[tokio::test]
async fn publish_with_hash_in_topic_disconnects_0x90_v5() {
    wildcard_in_topic_name(V50, "a/#").await;
}

#[tokio::test]
async fn publish_with_plus_in_topic_is_closed_v311() {
    wildcard_in_topic_name(V311, "+").await;
}

#[tokio::test]
async fn publish_with_hash_in_topic_is_closed_v311() {
    wildcard_in_topic_name(V311, "a/#").await;
}

/// Clients may not publish into the server's `$SYS` tree (the engine's choice, allowed by
/// 4.7.2): MQTT 5 is told 0x87 in PUBACK, nothing is delivered even to `$SYS/#`.
#[tokio::test]
async fn clients_cannot_publish_to_sys_v5() {
    let b = DevBroker::start().await;
    let mut watcher = RawClient::connected(b.addr, V50, "watcher").await;
    watcher.subscribe("$SYS/#", QoS::AtMostOnce).await;
    watcher.subscribe("$end", QoS::AtMostOnce).await;
    let mut c = RawClient::connected(b.addr, V50, "c").await;
    let reason = c
        .publish(publish_packet(
            "$SYS/broker/x",
            QoS::AtLeastOnce,
            false,
            1,
            b"x",
        ))
        .await;
    assert_eq!(reason, ReasonCode::NOT_AUTHORIZED);
    c.publish_qos1("$end", b"").await;
    assert_eq!(watcher.expect_publish().await.topic, "$end");
}
