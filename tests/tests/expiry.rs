//! Message Expiry Interval (MQTT 5 3.3.2.3.3): a message whose interval has passed before
//! delivery started is not delivered (`MQTT-3.3.2-5`); a delivered one carries the time
//! left (`MQTT-3.3.2-6`).

use std::time::Duration;

use tenantmq_codec::{ProtocolVersion, Publish, QoS};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::raw::{RawClient, persistent_connect_packet, publish_packet};

const V50: ProtocolVersion = ProtocolVersion::V5;

fn expiring(topic: &str, retain: bool, payload: &[u8], expiry: Option<u32>) -> Publish {
    let mut p = publish_packet(topic, QoS::AtLeastOnce, retain, 1, payload);
    p.properties.message_expiry_interval = expiry;
    p
}

/// Messages queued for an offline session: the one with 1 s expiry is gone after 1.3 s; the
/// one with 10 s arrives with the interval decremented by the time spent queued; the one
/// without an interval arrives without one. Applies to 3.1.1 subscribers too (they just do
/// not see the property).
async fn queued_expiry(sub_version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let (mut sub, _) =
        RawClient::connect_with(b.addr, persistent_connect_packet(sub_version, "sub")).await;
    sub.subscribe("e/t", QoS::AtLeastOnce).await;
    sub.disconnect().await;

    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher
        .publish(expiring("e/t", false, b"short", Some(1)))
        .await;
    publisher
        .publish(expiring("e/t", false, b"long", Some(10)))
        .await;
    publisher
        .publish(expiring("e/t", false, b"forever", None))
        .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let (mut sub, ack) =
        RawClient::connect_with(b.addr, persistent_connect_packet(sub_version, "sub")).await;
    assert!(ack.session_present);
    let long = sub.expect_publish_acked().await;
    assert_eq!(&long.payload[..], b"long", "expired message delivered");
    if sub_version == V50 {
        let left = long
            .properties
            .message_expiry_interval
            .expect("Message Expiry Interval");
        assert!(
            (8..=9).contains(&left),
            "interval after 1.3 s queued: {left}, published with 10"
        );
    } else {
        assert_eq!(long.properties.message_expiry_interval, None);
    }
    let forever = sub.expect_publish_acked().await;
    assert_eq!(
        (
            &forever.payload[..],
            forever.properties.message_expiry_interval
        ),
        (&b"forever"[..], None)
    );
}

#[tokio::test]
async fn queued_message_expires_and_interval_is_decremented_v5() {
    queued_expiry(V50).await;
}

#[tokio::test]
async fn queued_message_expires_for_v311_subscriber() {
    queued_expiry(ProtocolVersion::V311).await;
}

/// A live delivery forwards the interval (nothing has elapsed, so it is unchanged).
#[tokio::test]
async fn live_delivery_carries_the_interval_v5() {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, V50, "sub").await;
    sub.subscribe("e/t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher
        .publish(expiring("e/t", false, b"x", Some(30)))
        .await;
    assert_eq!(
        sub.expect_publish()
            .await
            .properties
            .message_expiry_interval,
        Some(30)
    );
}

/// A retained message expires like any other: not sent to a subscriber after its interval,
/// sent with the time left before it.
#[tokio::test]
async fn retained_message_expires_v5() {
    let b = DevBroker::start().await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher
        .publish(expiring("r/short", true, b"short", Some(1)))
        .await;
    publisher
        .publish(expiring("r/long", true, b"long", Some(20)))
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut sub = RawClient::connected(b.addr, V50, "sub").await;
    sub.subscribe("$end", QoS::AtLeastOnce).await;
    sub.subscribe("r/#", QoS::AtLeastOnce).await;
    let p = sub.expect_publish_acked().await;
    assert_eq!(
        &p.payload[..],
        b"long",
        "expired retained message delivered"
    );
    let left = p.properties.message_expiry_interval;
    assert!(
        matches!(left, Some(18..=19)),
        "published with 20 s, 1.2 s ago: {left:?}"
    );
    sub.publish_qos1("$end", b"").await;
    assert_eq!(sub.expect_publish_acked().await.topic, "$end");
}
