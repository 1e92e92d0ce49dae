//! Overlapping subscriptions of one client.
//!
//! The rule (MQTT 5 3.3.4 `MQTT-3.3.4-2`, 3.1.1 3.3.5): when several subscriptions of a
//! client match a message, the server delivers it respecting the maximum QoS of all of them.
//! The engine sends **exactly one copy**, at the highest granted QoS of the matching
//! subscriptions, capped by the QoS it was published with; in MQTT 5 that copy carries the
//! identifiers of all matching subscriptions (see subscription_ids.rs). Sending one copy per
//! subscription would also be allowed; this test pins the engine's choice.

use tenantmq_codec::{ProtocolVersion, QoS};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::raw::{RawClient, publish_packet};

async fn one_copy_at_max_qos(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, version, "sub").await;
    sub.subscribe("o/+", QoS::AtMostOnce).await;
    sub.subscribe("o/#", QoS::ExactlyOnce).await;
    sub.subscribe("o/t", QoS::AtLeastOnce).await;
    sub.subscribe("+/u", QoS::AtLeastOnce).await;
    sub.subscribe("$end", QoS::AtMostOnce).await;
    let mut publisher = RawClient::connected(b.addr, version, "pub").await;
    let sent = [
        ("o/t", QoS::ExactlyOnce, "o/t q2"),
        ("o/t", QoS::AtLeastOnce, "o/t q1"),
        ("o/t", QoS::AtMostOnce, "o/t q0"),
        ("o/u", QoS::ExactlyOnce, "o/u q2"),
        ("x/u", QoS::ExactlyOnce, "x/u q2"),
    ];
    for (topic, qos, payload) in sent {
        publisher
            .publish(publish_packet(topic, qos, false, 1, payload.as_bytes()))
            .await;
    }
    publisher
        .publish(publish_packet("$end", QoS::AtMostOnce, false, 0, b""))
        .await;

    // (payload, expected QoS): o/t matches QoS 0, 2 and 1 → 2, capped by the published QoS;
    // o/u matches QoS 0, 2 and 1 (+/u) → 2; x/u matches only +/u → 1.
    let expected = [
        ("o/t q2", QoS::ExactlyOnce),
        ("o/t q1", QoS::AtLeastOnce),
        ("o/t q0", QoS::AtMostOnce),
        ("o/u q2", QoS::ExactlyOnce),
        ("x/u q2", QoS::AtLeastOnce),
    ];
    for (payload, qos) in expected {
        let p = sub.expect_publish_acked().await;
        assert_eq!(
            (String::from_utf8_lossy(&p.payload).as_ref(), p.qos),
            (payload, qos),
            "one copy at the maximum QoS"
        );
    }
    assert_eq!(
        sub.expect_publish().await.topic,
        "$end",
        "a second copy was delivered"
    );
}

#[tokio::test]
async fn overlapping_subscriptions_one_copy_at_max_qos_v311() {
    one_copy_at_max_qos(ProtocolVersion::V311).await;
}

#[tokio::test]
async fn overlapping_subscriptions_one_copy_at_max_qos_v5() {
    one_copy_at_max_qos(ProtocolVersion::V5).await;
}
