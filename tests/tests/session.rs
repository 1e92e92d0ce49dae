//! Sessions: Clean Session (3.1.1) / Clean Start (5), Session Present, Session Expiry
//! Interval, and QoS 1/2 messages queued for a disconnected session (MQTT 5 3.1.2.4, 3.1.2.11.2,
//! 4.1; 3.1.1 3.1.2.4, 3.2.2.2).

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::ConnectProperties;
use tenantmq_codec::{ProtocolVersion, QoS, ReasonCode};
use tenantmq_common::quota::Quotas;
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS3, QoS5, V3, V5, topic5, v3_options, v5_options};
use tenantmq_e2e::raw::{RawClient, connect_packet, persistent_connect_packet, will};
use tenantmq_gateway::GatewayConfig;

const V50: ProtocolVersion = ProtocolVersion::V5;

fn v3_persistent(addr: SocketAddr, id: &str) -> rumqttc::MqttOptions {
    let mut o = v3_options(addr, id);
    o.set_clean_session(false);
    o
}

fn v5_session(
    addr: SocketAddr,
    id: &str,
    clean_start: bool,
    expiry: Option<u32>,
) -> rumqttc::v5::MqttOptions {
    let mut o = v5_options(addr, id);
    o.set_clean_start(clean_start);
    let mut props = ConnectProperties::new();
    props.session_expiry_interval = expiry;
    o.set_connect_properties(props);
    o
}

/// Clean Session 0 keeps the session (`MQTT-3.1.2-4`): Session Present is 0 the first time
/// (`MQTT-3.2.2-3`) and 1 after; the subscription survives; QoS 1/2 messages published while
/// disconnected are delivered on reconnect in order, QoS 0 ones are not kept (engine choice,
/// allowed by `MQTT-3.1.2-5`). Clean Session 1 discards it all (`MQTT-3.1.2-6`) and always
/// answers Session Present 0 (`MQTT-3.2.2-1`).
#[tokio::test]
async fn clean_session_0_keeps_subscriptions_and_queues_v311() {
    let b = DevBroker::start().await;
    let mut c = V3::connect_with(v3_persistent(b.addr, "c")).await;
    assert!(!c.connack.session_present, "new session");
    c.subscribe("s/t", QoS3::ExactlyOnce).await;
    c.disconnect().await;

    let mut publisher = V3::connect(b.addr, "pub").await;
    publisher
        .publish("s/t", QoS3::AtLeastOnce, false, "1")
        .await;
    publisher
        .publish("s/t", QoS3::AtMostOnce, false, "qos0")
        .await;
    publisher
        .publish("s/t", QoS3::ExactlyOnce, false, "2")
        .await;

    let mut c = V3::connect_with(v3_persistent(b.addr, "c")).await;
    assert!(c.connack.session_present);
    assert_eq!(&c.recv().await.payload[..], b"1");
    assert_eq!(&c.recv().await.payload[..], b"2");
    publisher
        .publish("s/t", QoS3::AtLeastOnce, false, "live")
        .await;
    assert_eq!(
        &c.recv().await.payload[..],
        b"live",
        "QoS 0 message kept for an offline session"
    );
    c.disconnect().await;

    let mut c = V3::connect(b.addr, "c").await;
    assert!(
        !c.connack.session_present,
        "Clean Session 1 always starts a new session"
    );
    c.subscribe("$end", QoS3::AtLeastOnce).await;
    publisher
        .publish("s/t", QoS3::AtLeastOnce, false, "old subscription")
        .await;
    publisher
        .publish("$end", QoS3::AtLeastOnce, false, "")
        .await;
    assert_eq!(
        c.recv().await.topic,
        "$end",
        "subscription of the discarded session"
    );
    c.disconnect().await;

    // The clean session ended with its connection: nothing is left to resume.
    let c = V3::connect_with(v3_persistent(b.addr, "c")).await;
    assert!(!c.connack.session_present);
}

/// The same with MQTT 5: Clean Start 0 and a Session Expiry Interval keep the session.
#[tokio::test]
async fn clean_start_0_with_expiry_keeps_subscriptions_and_queues_v5() {
    let b = DevBroker::start().await;
    let mut c = V5::connect_with(v5_session(b.addr, "c", false, Some(60))).await;
    assert!(!c.connack.session_present);
    c.subscribe("s/t", QoS5::AtLeastOnce).await;
    c.disconnect().await;

    let mut publisher = V5::connect(b.addr, "pub").await;
    for i in 0..3u8 {
        publisher
            .publish("s/t", QoS5::AtLeastOnce, false, vec![i])
            .await;
    }
    let mut c = V5::connect_with(v5_session(b.addr, "c", false, Some(60))).await;
    assert!(c.connack.session_present);
    for i in 0..3u8 {
        assert_eq!(
            &c.recv().await.payload[..],
            &[i],
            "queued messages in order"
        );
    }
    c.disconnect().await;

    let mut c = V5::connect_with(v5_session(b.addr, "c", true, Some(60))).await;
    assert!(
        !c.connack.session_present,
        "Clean Start 1 discards the session (MQTT-3.1.2-4)"
    );
    c.subscribe("$end", QoS5::AtLeastOnce).await;
    publisher
        .publish("s/t", QoS5::AtLeastOnce, false, "old subscription")
        .await;
    publisher
        .publish("$end", QoS5::AtLeastOnce, false, "")
        .await;
    assert_eq!(topic5(&c.recv().await), "$end");
}

/// MQTT 5 without a Session Expiry Interval (0): the session ends with the connection
/// (`MQTT-3.1.2-23`), even with Clean Start 0.
#[tokio::test]
async fn session_expiry_0_ends_the_session_at_disconnect_v5() {
    let b = DevBroker::start().await;
    let mut c = V5::connect_with(v5_session(b.addr, "c", false, None)).await;
    c.subscribe("s/t", QoS5::AtLeastOnce).await;
    c.disconnect().await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    publisher
        .publish("s/t", QoS5::AtLeastOnce, false, "while away")
        .await;
    let mut c = V5::connect_with(v5_session(b.addr, "c", false, None)).await;
    assert!(!c.connack.session_present);
    c.expect_no_publish().await;
}

/// A session with Session Expiry Interval 1 s resumes within the second and is gone after
/// it: Session Present 0 and no subscription.
#[tokio::test]
async fn session_expires_after_its_interval_v5() {
    let b = DevBroker::start().await;
    let (mut c, _) = RawClient::connect_with(b.addr, session_with_expiry("c", 1)).await;
    c.subscribe("s/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut c, ack) = RawClient::connect_with(b.addr, session_with_expiry("c", 1)).await;
    assert!(ack.session_present, "resumed within the expiry interval");
    c.disconnect().await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut c, ack) = RawClient::connect_with(b.addr, session_with_expiry("c", 1)).await;
    assert!(!ack.session_present, "session outlived its expiry interval");
    c.subscribe("$end", QoS::AtLeastOnce).await;
    c.publish_qos1("s/t", b"x").await;
    c.publish_qos1("$end", b"").await;
    assert_eq!(
        c.expect_publish().await.topic,
        "$end",
        "subscription outlived its session"
    );
}

fn session_with_expiry(id: &str, expiry: u32) -> tenantmq_codec::Connect {
    let mut c = connect_packet(V50, id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(expiry);
    c
}

/// A DISCONNECT may not set a non-zero Session Expiry Interval when CONNECT had 0
/// (`MQTT-3.14.2-2`): the server answers DISCONNECT 0x82, and since that DISCONNECT was not a
/// valid one the will is published.
#[tokio::test]
async fn disconnect_setting_expiry_after_zero_is_a_protocol_error_v5() {
    let b = DevBroker::start().await;
    let mut w = RawClient::connected(b.addr, V50, "watcher").await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    let mut c = connect_packet(V50, "c");
    c.will = Some(will("will/c", b"w", QoS::AtMostOnce, false));
    let (mut c, _) = RawClient::connect_with(b.addr, c).await;
    let mut d = tenantmq_codec::Disconnect::default();
    d.properties.session_expiry_interval = Some(30);
    c.send(&tenantmq_codec::Packet::Disconnect(d))
        .await
        .expect("socket I/O");
    assert_eq!(c.expect_closed().await, Some(ReasonCode::PROTOCOL_ERROR));
    assert_eq!(w.expect_publish().await.topic, "will/c");
}

/// A DISCONNECT may shorten the Session Expiry Interval to 0, which ends the session now.
#[tokio::test]
async fn disconnect_with_expiry_0_ends_a_persistent_session_v5() {
    let b = DevBroker::start().await;
    let (mut c, _) = RawClient::connect_with(b.addr, persistent_connect_packet(V50, "c")).await;
    c.subscribe("s/t", QoS::AtLeastOnce).await;
    c.disconnect_with(ReasonCode::NORMAL_DISCONNECTION, Some(0))
        .await;
    let (_c, ack) = RawClient::connect_with(b.addr, persistent_connect_packet(V50, "c")).await;
    assert!(!ack.session_present);
}

/// The plan caps the Session Expiry Interval; CONNACK tells the client the value used
/// (MQTT 5 3.2.2.3.2) and the session ends after it.
#[tokio::test]
async fn session_expiry_is_capped_by_the_plan_v5() {
    let quotas = Quotas {
        max_session_expiry_secs: 1,
        ..Quotas::unlimited()
    };
    let b = DevBroker::start_with(quotas, GatewayConfig::default()).await;
    let (mut c, ack) = RawClient::connect_with(b.addr, session_with_expiry("c", 3600)).await;
    assert_eq!(ack.properties.session_expiry_interval, Some(1));
    c.disconnect().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_c, ack) = RawClient::connect_with(b.addr, session_with_expiry("c", 3600)).await;
    assert!(!ack.session_present, "the plan's 1 s cap was not enforced");
}

/// An expiry timer armed at one disconnect does not end a session that was resumed and
/// disconnected again since: the interval counts from the last disconnect.
#[tokio::test]
async fn session_expiry_counts_from_the_last_disconnect_v5() {
    let b = DevBroker::start().await;
    let (mut c, _) = RawClient::connect_with(b.addr, session_with_expiry("c", 1)).await;
    c.disconnect().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (mut c, ack) = RawClient::connect_with(b.addr, session_with_expiry("c", 1)).await;
    assert!(ack.session_present);
    c.disconnect().await;
    // 1.2 s after the first disconnect, 0.6 s after the second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_c, ack) = RawClient::connect_with(b.addr, session_with_expiry("c", 1)).await;
    assert!(
        ack.session_present,
        "ended by the timer of an earlier disconnect"
    );
}
