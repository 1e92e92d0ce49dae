//! Shared subscriptions `$share/<group>/<filter>` (MQTT 5 4.8.2): each message goes to one
//! member of each group; non-shared subscribers get their own copy.

use std::collections::BTreeSet;

use tenantmq_codec::{ProtocolVersion, QoS, ReasonCode};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS3, QoS5, V3, V5, topic5, v5_options};
use tenantmq_e2e::raw::{RawClient, publish_packet};

/// Published last to a plain (non-shared) filter every member also has: when a member sees
/// it, every shared delivery made to it before has arrived (deliveries to one client keep
/// their order).
const END: &str = "$end";

/// Reads payloads (one byte each) until [`END`].
async fn drain(c: &mut V5) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        let p = c.recv().await;
        if topic5(&p) == END {
            return got;
        }
        got.push(p.payload[0]);
    }
}

async fn member(addr: std::net::SocketAddr, id: &str, filter: &str) -> V5 {
    let mut c = V5::connect(addr, id).await;
    c.subscribe(filter, QoS5::AtLeastOnce).await;
    c.subscribe(END, QoS5::AtLeastOnce).await;
    c
}

async fn publish_n(publisher: &mut V5, topic: &str, range: std::ops::Range<u8>) {
    for i in range {
        publisher
            .publish(topic, QoS5::AtLeastOnce, false, vec![i])
            .await;
    }
    publisher
        .publish(END, QoS5::AtLeastOnce, false, vec![0])
        .await;
}

/// Asserts the members' deliveries partition `all`: each message exactly once in the group.
fn assert_partition(group: &str, members: &[Vec<u8>], all: std::ops::Range<u8>) {
    let mut seen = BTreeSet::new();
    for m in members {
        for &i in m {
            assert!(seen.insert(i), "group {group}: message {i} delivered twice");
        }
    }
    assert_eq!(
        seen,
        all.collect::<BTreeSet<_>>(),
        "group {group}: every message once"
    );
}

/// Two groups on the same filter each get every message once, split among their members;
/// a plain subscriber gets all of them. Members of a group are served round robin (the
/// engine's choice; the specification only asks for one delivery per group), so with eight
/// messages each member gets some.
#[tokio::test]
async fn each_group_gets_each_message_once_and_plain_subscribers_all_v5() {
    let b = DevBroker::start().await;
    let mut a1 = member(b.addr, "a1", "$share/A/s/+").await;
    let mut a2 = member(b.addr, "a2", "$share/A/s/+").await;
    let mut b1 = member(b.addr, "b1", "$share/B/s/#").await;
    let mut b2 = member(b.addr, "b2", "$share/B/s/#").await;
    let mut plain = member(b.addr, "plain", "s/+").await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    publish_n(&mut publisher, "s/x", 0..8).await;

    let (ga1, ga2) = (drain(&mut a1).await, drain(&mut a2).await);
    let (gb1, gb2) = (drain(&mut b1).await, drain(&mut b2).await);
    assert_partition("A", &[ga1.clone(), ga2.clone()], 0..8);
    assert_partition("B", &[gb1.clone(), gb2.clone()], 0..8);
    for m in [&ga1, &ga2, &gb1, &gb2] {
        assert!(
            !m.is_empty(),
            "round robin leaves no member idle: A {ga1:?}/{ga2:?}, B {gb1:?}/{gb2:?}"
        );
    }
    assert_eq!(drain(&mut plain).await, (0..8).collect::<Vec<_>>());
}

/// A member that unsubscribes, and one whose session ends, get nothing more; the remaining
/// member gets every message.
#[tokio::test]
async fn members_leaving_the_group_v5() {
    let b = DevBroker::start().await;
    let mut a1 = member(b.addr, "a1", "$share/g/t").await;
    let mut a2 = member(b.addr, "a2", "$share/g/t").await;
    let a3 = member(b.addr, "a3", "$share/g/t").await;
    let mut publisher = V5::connect(b.addr, "pub").await;

    a1.client
        .unsubscribe("$share/g/t")
        .await
        .expect("socket I/O");
    // The UNSUBACK has arrived once a publish of the client's own is acknowledged after it.
    a1.publish("other", QoS5::AtLeastOnce, false, vec![0]).await;
    a3.disconnect().await; // Clean start, expiry 0: the session and its subscription end.

    publish_n(&mut publisher, "t", 0..6).await;
    assert_eq!(
        drain(&mut a1).await,
        Vec::<u8>::new(),
        "unsubscribed member"
    );
    assert_eq!(drain(&mut a2).await, (0..6).collect::<Vec<_>>());
}

/// A member whose persistent session is offline is passed over while another member is
/// connected (the engine's choice: the specification allows either queueing for it or
/// delivering to another member).
#[tokio::test]
async fn connected_members_are_preferred_over_offline_sessions_v5() {
    let b = DevBroker::start().await;
    let mut o = v5_options(b.addr, "offline");
    o.set_clean_start(false);
    o.set_connect_properties(rumqttc::v5::mqttbytes::v5::ConnectProperties {
        session_expiry_interval: Some(60),
        ..rumqttc::v5::mqttbytes::v5::ConnectProperties::new()
    });
    let mut offline = V5::connect_with(o.clone()).await;
    offline.subscribe("$share/g/t", QoS5::AtLeastOnce).await;
    offline.disconnect().await;
    let mut online = member(b.addr, "online", "$share/g/t").await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    publish_n(&mut publisher, "t", 0..4).await;
    assert_eq!(drain(&mut online).await, (0..4).collect::<Vec<_>>());

    let mut back = V5::connect_with(o).await;
    assert!(back.connack.session_present);
    back.expect_no_publish().await;
}

/// Retained messages are not sent for a new shared subscription (MQTT 5 4.8.2:
/// "retained messages are not sent to the Session when it establishes a new Shared
/// Subscription").
#[tokio::test]
async fn no_retained_messages_for_shared_subscriptions_v5() {
    let b = DevBroker::start().await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    publisher
        .publish("r", QoS5::AtLeastOnce, true, "kept")
        .await;
    let mut m = member(b.addr, "m", "$share/g/r").await;
    publisher
        .publish(END, QoS5::AtLeastOnce, false, vec![0])
        .await;
    assert_eq!(
        drain(&mut m).await,
        Vec::<u8>::new(),
        "retained message sent to a shared subscription"
    );
    // A plain subscription does get it.
    m.subscribe("r", QoS5::AtLeastOnce).await;
    let p = m.recv().await;
    assert_eq!((&p.payload[..], p.retain), (&b"kept"[..], true));
}

/// No Local on a shared subscription is a protocol error (`MQTT-3.8.3-4`): DISCONNECT 0x82.
#[tokio::test]
async fn no_local_on_shared_subscription_is_a_protocol_error_v5() {
    let b = DevBroker::start().await;
    let mut c = RawClient::connected(b.addr, ProtocolVersion::V5, "c").await;
    // Raw bytes: the codec refuses to encode this. SUBSCRIBE, packet id 1, no properties,
    // "$share/g/t" with options QoS 1 | No Local.
    let mut bytes = vec![0x82, 16, 0, 1, 0, 0, 10];
    bytes.extend_from_slice(b"$share/g/t");
    bytes.push(0x05);
    c.send_bytes(&bytes).await.expect("socket I/O");
    assert_eq!(c.expect_closed().await, Some(ReasonCode::PROTOCOL_ERROR));
}

/// MQTT 3.1.1 does not define shared subscriptions; the engine accepts the same syntax from
/// 3.1.1 clients (its choice, as most brokers do), with the same one-per-group delivery.
#[tokio::test]
async fn shared_subscriptions_also_work_for_v311_clients() {
    let b = DevBroker::start().await;
    let mut m1 = V3::connect(b.addr, "m1").await;
    let mut m2 = V3::connect(b.addr, "m2").await;
    for m in [&mut m1, &mut m2] {
        m.subscribe("$share/g/t", QoS3::AtLeastOnce).await;
        m.subscribe(END, QoS3::AtLeastOnce).await;
    }
    let mut publisher = RawClient::connected(b.addr, ProtocolVersion::V311, "pub").await;
    for i in 0..6u8 {
        publisher
            .publish(publish_packet("t", QoS::AtLeastOnce, false, 1, &[i]))
            .await;
    }
    publisher.publish_qos1(END, b"").await;
    let mut all = Vec::new();
    for m in [&mut m1, &mut m2] {
        let mut got = Vec::new();
        loop {
            let p = m.recv().await;
            if p.topic == END {
                break;
            }
            got.push(p.payload[0]);
        }
        assert!(!got.is_empty(), "round robin leaves no member idle");
        all.push(got);
    }
    assert_partition("g", &all, 0..6);
}
