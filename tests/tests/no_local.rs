//! No Local (MQTT 5 3.8.3.1, `MQTT-3.8.3-3`): with the option, a client's own messages are
//! not sent back to it; without it (and always in 3.1.1) they are.

use rumqttc::v5::mqttbytes::v5::Filter;
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS3, QoS5, V3, V5};

fn no_local(filter: &str) -> Filter {
    let mut f = Filter::new(filter, QoS5::AtLeastOnce);
    f.nolocal = true;
    f
}

/// The client's own message is not echoed; another client's is delivered. The other
/// client's message is published after the own one was acknowledged, so had the own one
/// been delivered it would have arrived first.
#[tokio::test]
async fn own_messages_not_echoed_with_no_local_v5() {
    let b = DevBroker::start().await;
    let mut me = V5::connect(b.addr, "me").await;
    me.subscribe_filter(no_local("n/t"), None).await;
    let mut other = V5::connect(b.addr, "other").await;
    other.subscribe("n/t", QoS5::AtLeastOnce).await;

    me.publish("n/t", QoS5::AtLeastOnce, false, "mine").await;
    assert_eq!(
        &other.recv().await.payload[..],
        b"mine",
        "other subscribers still get it"
    );
    other
        .publish("n/t", QoS5::AtLeastOnce, false, "theirs")
        .await;
    assert_eq!(
        &me.recv().await.payload[..],
        b"theirs",
        "own message echoed despite No Local"
    );
}

/// Without No Local the publisher receives its own message.
#[tokio::test]
async fn own_messages_echoed_without_no_local_v5() {
    let b = DevBroker::start().await;
    let mut me = V5::connect(b.addr, "me").await;
    me.subscribe("n/t", QoS5::AtLeastOnce).await;
    me.publish("n/t", QoS5::AtLeastOnce, false, "mine").await;
    assert_eq!(&me.recv().await.payload[..], b"mine");
}

/// MQTT 3.1.1 has no No Local: own messages always come back.
#[tokio::test]
async fn own_messages_echoed_v311() {
    let b = DevBroker::start().await;
    let mut me = V3::connect(b.addr, "me").await;
    me.subscribe("n/t", QoS3::AtLeastOnce).await;
    me.publish("n/t", QoS3::AtLeastOnce, false, "mine").await;
    assert_eq!(&me.recv().await.payload[..], b"mine");
}

/// No Local is an option of one subscription: an overlapping subscription of the same
/// client without it still matches, so the message is delivered (once).
#[tokio::test]
async fn overlapping_subscription_without_no_local_still_delivers_v5() {
    let b = DevBroker::start().await;
    let mut me = V5::connect(b.addr, "me").await;
    me.subscribe_filter(no_local("n/t"), None).await;
    me.subscribe("n/+", QoS5::AtLeastOnce).await;
    me.publish("n/t", QoS5::AtLeastOnce, false, "mine").await;
    assert_eq!(&me.recv().await.payload[..], b"mine");
    me.publish("n/t", QoS5::AtLeastOnce, false, "next").await;
    assert_eq!(
        &me.recv().await.payload[..],
        b"next",
        "a second copy was delivered"
    );
}
