//! Subscription Identifiers (MQTT 5 3.3.2.3.8, 3.8.2.1.2): a delivered PUBLISH carries the
//! identifiers of the subscriptions it matched (`MQTT-3.3.4-3`, `-4`, `-5`).

use std::collections::BTreeSet;

use rumqttc::v5::mqttbytes::v5::Filter;
use tenantmq_codec::{ProtocolVersion, QoS, ReasonCode};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS5, V5};
use tenantmq_e2e::raw::{RawClient, opts, publish_packet};

const V50: ProtocolVersion = ProtocolVersion::V5;

fn ids(p: &tenantmq_codec::Publish) -> BTreeSet<u32> {
    p.properties
        .subscription_identifiers
        .iter()
        .copied()
        .collect()
}

/// One matching subscription with an identifier: the PUBLISH carries it. Overlapping
/// subscriptions with identifiers: one PUBLISH (the engine sends one copy, see overlap.rs)
/// carrying both. A subscription without an identifier adds none. Re-subscribing the same
/// filter without an identifier replaces the subscription, and its identifier goes.
#[tokio::test]
async fn delivered_publish_carries_the_matching_identifiers_v5() {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, V50, "sub").await;
    let ok = vec![ReasonCode::GRANTED_QOS_1];
    assert_eq!(
        sub.subscribe_with(1, &[("a/+", opts(QoS::AtLeastOnce))], Some(7))
            .await,
        ok
    );
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;

    publisher.publish_qos1("a/x", b"1").await;
    assert_eq!(ids(&sub.expect_publish_acked().await), BTreeSet::from([7]));

    assert_eq!(
        sub.subscribe_with(2, &[("a/#", opts(QoS::AtLeastOnce))], Some(268_435_455))
            .await,
        ok
    );
    assert_eq!(
        sub.subscribe_with(3, &[("+/x", opts(QoS::AtLeastOnce))], None)
            .await,
        ok
    );
    publisher.publish_qos1("a/x", b"2").await;
    let p = sub.expect_publish_acked().await;
    assert_eq!(&p.payload[..], b"2");
    assert_eq!(
        ids(&p),
        BTreeSet::from([7, 268_435_455]),
        "identifiers of every matching subscription"
    );
    publisher.publish_qos1("b/x", b"3").await;
    assert_eq!(
        ids(&sub.expect_publish_acked().await),
        BTreeSet::new(),
        "subscription without identifier"
    );

    assert_eq!(
        sub.subscribe_with(4, &[("a/+", opts(QoS::AtLeastOnce))], None)
            .await,
        ok
    );
    publisher.publish_qos1("a/x", b"4").await;
    assert_eq!(
        ids(&sub.expect_publish_acked().await),
        BTreeSet::from([268_435_455]),
        "replaced subscription keeps its old identifier"
    );
}

/// Retained messages sent for a new subscription carry its identifier.
#[tokio::test]
async fn retained_messages_carry_the_subscription_identifier_v5() {
    let b = DevBroker::start().await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher
        .publish(publish_packet("r/t", QoS::AtLeastOnce, true, 1, b"kept"))
        .await;
    let mut sub = RawClient::connected(b.addr, V50, "sub").await;
    sub.subscribe_with(1, &[("r/#", opts(QoS::AtLeastOnce))], Some(42))
        .await;
    let p = sub.expect_publish_acked().await;
    assert_eq!((p.retain, ids(&p)), (true, BTreeSet::from([42])));
}

/// Shared subscriptions carry their identifier too.
#[tokio::test]
async fn shared_subscription_identifier_v5() {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, V50, "sub").await;
    sub.subscribe_with(1, &[("$share/g/s/t", opts(QoS::AtLeastOnce))], Some(9))
        .await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher.publish_qos1("s/t", b"x").await;
    assert_eq!(ids(&sub.expect_publish_acked().await), BTreeSet::from([9]));
}

/// A real client sees the identifier it subscribed with.
#[tokio::test]
async fn rumqttc_sees_its_subscription_identifier_v5() {
    let b = DevBroker::start().await;
    let mut sub = V5::connect(b.addr, "sub").await;
    sub.subscribe_filter(Filter::new("i/+", QoS5::AtLeastOnce), Some(1234))
        .await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    publisher
        .publish("i/x", QoS5::AtLeastOnce, false, "x")
        .await;
    let p = sub.recv().await;
    let props = p.properties.expect("PUBLISH properties");
    assert_eq!(props.subscription_identifiers, vec![1234]);
}

/// A Subscription Identifier of 0 is a protocol error (3.8.2.1.2): DISCONNECT 0x82.
#[tokio::test]
async fn subscription_identifier_0_is_a_protocol_error_v5() {
    let b = DevBroker::start().await;
    let mut c = RawClient::connected(b.addr, V50, "c").await;
    // SUBSCRIBE id 1, properties: Subscription Identifier (0x0B) 0, filter "t" QoS 0. Raw,
    // because the codec refuses to encode it.
    c.send_bytes(&[0x82, 0x09, 0, 1, 2, 0x0B, 0, 0, 1, b't', 0])
        .await
        .expect("socket I/O");
    assert_eq!(c.expect_closed().await, Some(ReasonCode::PROTOCOL_ERROR));
}
