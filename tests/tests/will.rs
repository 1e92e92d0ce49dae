//! Will messages (MQTT 5 3.1.2.5, 3.1.3.2; 3.1.1 3.1.2.5): published when the connection
//! ends without a normal DISCONNECT, not after one, after the Will Delay Interval unless the
//! session resumes first, and retained when Will Retain is set.

use std::net::SocketAddr;
use std::time::Duration;

use tenantmq_codec::{Connect, ProtocolVersion, QoS, ReasonCode};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS3, QoS5, V3, V5, v3_options, v5_options};
use tenantmq_e2e::raw::{QUIET, RawClient, connect_packet, will};
use tokio::time::Instant;

const V50: ProtocolVersion = ProtocolVersion::V5;

/// A raw MQTT 5 client subscribed to `will/#` and to the marker topic `$end`.
async fn watcher(addr: SocketAddr) -> RawClient {
    let mut w = RawClient::connected(addr, V50, "watcher").await;
    w.subscribe("will/#", QoS::AtLeastOnce).await;
    w.subscribe("$end", QoS::AtLeastOnce).await;
    w
}

/// Publishes the marker from a fresh client and asserts it is the watcher's next message:
/// nothing (no will) was delivered before it.
async fn assert_no_will_before_marker(addr: SocketAddr, w: &mut RawClient) {
    let mut m = RawClient::connected(addr, V50, "marker").await;
    m.publish_qos1("$end", b"").await;
    let p = w.expect_publish_acked().await;
    assert_eq!(
        p.topic, "$end",
        "unexpected message before the marker: {p:?}"
    );
}

/// A client whose connection drops without DISCONNECT has its will published
/// (`MQTT-3.1.2-8`), with its topic, payload and QoS.
#[tokio::test]
async fn will_published_on_abrupt_close_v311() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut o = v3_options(b.addr, "dying");
    o.set_last_will(rumqttc::LastWill::new(
        "will/dying",
        "gone",
        QoS3::AtLeastOnce,
        false,
    ));
    V3::connect_with(o).await.kill();
    let p = w.expect_publish_acked().await;
    assert_eq!(
        (p.topic.as_ref(), &p.payload[..], p.qos, p.retain),
        ("will/dying", &b"gone"[..], QoS::AtLeastOnce, false)
    );
}

#[tokio::test]
async fn will_published_on_abrupt_close_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut o = v5_options(b.addr, "dying");
    o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
        "will/dying",
        "gone",
        QoS5::ExactlyOnce,
        false,
        None,
    ));
    V5::connect_with(o).await.kill();
    let p = w.expect_publish_acked().await;
    assert_eq!(
        (p.topic.as_ref(), &p.payload[..], p.qos),
        ("will/dying", &b"gone"[..], QoS::AtLeastOnce)
    );
}

/// A normal DISCONNECT discards the will (`MQTT-3.1.2-10`, v5 `MQTT-3.14.4-3`).
#[tokio::test]
async fn no_will_after_normal_disconnect_v311() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut o = v3_options(b.addr, "leaving");
    o.set_last_will(rumqttc::LastWill::new(
        "will/leaving",
        "gone",
        QoS3::AtLeastOnce,
        false,
    ));
    V3::connect_with(o).await.disconnect().await;
    assert_no_will_before_marker(b.addr, &mut w).await;
}

#[tokio::test]
async fn no_will_after_normal_disconnect_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut o = v5_options(b.addr, "leaving");
    o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
        "will/leaving",
        "gone",
        QoS5::AtLeastOnce,
        false,
        None,
    ));
    V5::connect_with(o).await.disconnect().await;
    assert_no_will_before_marker(b.addr, &mut w).await;
}

/// MQTT 5 DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes the will.
#[tokio::test]
async fn disconnect_with_will_message_0x04_publishes_it_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut c = connect_packet(V50, "c");
    c.will = Some(will("will/c", b"asked for", QoS::AtMostOnce, false));
    let (mut c, _) = RawClient::connect_with(b.addr, c).await;
    c.disconnect_with(ReasonCode::DISCONNECT_WITH_WILL, None)
        .await;
    let p = w.expect_publish().await;
    assert_eq!(
        (p.topic.as_ref(), &p.payload[..]),
        ("will/c", &b"asked for"[..])
    );
}

/// A CONNECT with a will delay and a session that outlives the connection.
fn delayed(client_id: &str, delay: u32, expiry: u32) -> Connect {
    let mut c = connect_packet(V50, client_id);
    c.properties.session_expiry_interval = Some(expiry);
    let mut w = will("will/delayed", b"late", QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(delay);
    c.will = Some(w);
    c
}

/// With a Will Delay Interval the will waits (`MQTT-3.1.3-9`): not published at the close,
/// published once the delay has passed.
#[tokio::test]
async fn will_published_after_its_delay_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let (c, _) = RawClient::connect_with(b.addr, delayed("c", 1, 60)).await;
    let closed = Instant::now();
    drop(c);
    w.expect_silence(Duration::from_millis(700)).await;
    let p = w.expect_publish_acked().await;
    assert_eq!(p.topic, "will/delayed");
    let waited = closed.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "will published after {waited:?}, delay is 1 s"
    );
}

/// If the session resumes (Clean Start 0) before the delay has passed, the will is not
/// published (`MQTT-3.1.3-9`), not even later.
#[tokio::test]
async fn will_cancelled_when_session_resumes_within_delay_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let (c, _) = RawClient::connect_with(b.addr, delayed("c", 1, 60)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_packet(V50, "c");
    again.clean_start = false;
    again.properties.session_expiry_interval = Some(60);
    let (_c, ack) = RawClient::connect_with(b.addr, again).await;
    assert!(ack.session_present);
    w.expect_silence(Duration::from_millis(1300)).await;
}

/// The will goes out when the session ends, if that comes before the delay: a delay of 30 s
/// with a session expiry of 1 s publishes it after about 1 s (3.1.3.2.2).
#[tokio::test]
async fn will_published_when_session_expires_before_delay_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let (c, _) = RawClient::connect_with(b.addr, delayed("c", 30, 1)).await;
    let closed = Instant::now();
    drop(c);
    let p = w.expect_publish_acked().await;
    assert_eq!(p.topic, "will/delayed");
    let waited = closed.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "will published after {waited:?}; the session expires after 1 s"
    );
}

/// A new connection with Clean Start 1 during the delay ends the old session, and with it
/// the wait: the will is published then (3.1.3.2.2, "or the Session ends").
#[tokio::test]
async fn clean_start_within_delay_publishes_the_will_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let (c, _) = RawClient::connect_with(b.addr, delayed("c", 30, 60)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_c, ack) = RawClient::connect_with(b.addr, connect_packet(V50, "c")).await;
    assert!(!ack.session_present);
    let p = w.expect_publish_acked().await;
    assert_eq!(p.topic, "will/delayed");
}

/// Will Retain (`MQTT-3.1.2-17`): the published will is also stored as the retained
/// message of its topic.
async fn will_retain(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let mut c = connect_packet(version, "c");
    c.will = Some(will("will/retained", b"last words", QoS::AtLeastOnce, true));
    let (c, _) = RawClient::connect_with(b.addr, c).await;
    let mut w = watcher(b.addr).await;
    drop(c);
    let live = w.expect_publish_acked().await;
    assert_eq!((live.topic.as_ref(), live.retain), ("will/retained", false));

    let mut late = RawClient::connected(b.addr, version, "late").await;
    late.subscribe("will/#", QoS::AtLeastOnce).await;
    let p = late.expect_publish().await;
    assert_eq!(
        (p.topic.as_ref(), &p.payload[..], p.retain),
        ("will/retained", &b"last words"[..], true)
    );
}

#[tokio::test]
async fn will_retain_v311() {
    will_retain(ProtocolVersion::V311).await;
}

#[tokio::test]
async fn will_retain_v5() {
    will_retain(V50).await;
}

/// A will without a delay is published at once, before a quiet period could pass.
#[tokio::test]
async fn will_without_delay_is_immediate_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut c = connect_packet(V50, "c");
    c.properties.session_expiry_interval = Some(60);
    c.will = Some(will("will/now", b"x", QoS::AtMostOnce, false));
    let (c, _) = RawClient::connect_with(b.addr, c).await;
    drop(c);
    match w.recv_timeout(QUIET).await {
        tenantmq_e2e::raw::Received::Packet(tenantmq_codec::Packet::Publish(p)) => {
            assert_eq!(p.topic, "will/now")
        }
        other => panic!("expected the will at once, got {other:?}"),
    }
}

/// A will delay armed at one close does not fire after the session resumed; the next close
/// starts a new delay.
#[tokio::test]
async fn will_delay_counts_from_the_last_close_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let (c, _) = RawClient::connect_with(b.addr, delayed("c", 1, 60)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut again = delayed("c", 1, 60);
    again.clean_start = false;
    let (c, ack) = RawClient::connect_with(b.addr, again).await;
    assert!(ack.session_present);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closed = Instant::now();
    drop(c);
    w.expect_silence(Duration::from_millis(700)).await;
    assert_eq!(w.expect_publish_acked().await.topic, "will/delayed");
    let waited = closed.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "will published {waited:?} after the last close"
    );
}

/// The will carries its MQTT 5 properties into the PUBLISH (3.1.3.2): payload format,
/// content type, response topic, correlation data, user properties, message expiry.
#[tokio::test]
async fn will_properties_are_forwarded_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut c = connect_packet(V50, "c");
    let mut wl = will("will/props", b"{}", QoS::AtLeastOnce, false);
    wl.properties.payload_format_indicator = Some(1);
    wl.properties.content_type = Some("application/json".into());
    wl.properties.response_topic = Some("reply/here".into());
    wl.properties.correlation_data = Some(bytes::Bytes::from_static(b"corr"));
    wl.properties.user_properties = vec![("k".into(), "v1".into()), ("k".into(), "v2".into())];
    wl.properties.message_expiry_interval = Some(60);
    c.will = Some(wl);
    let (c, _) = RawClient::connect_with(b.addr, c).await;
    drop(c);
    let p = w.expect_publish_acked().await;
    let props = &p.properties;
    assert_eq!(props.payload_format_indicator, Some(1));
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(props.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"corr"[..]));
    let users: Vec<(&str, &str)> = props
        .user_properties
        .iter()
        .map(|(k, v)| (&**k, &**v))
        .collect();
    assert_eq!(
        users,
        vec![("k", "v1"), ("k", "v2")],
        "user properties in order (MQTT-3.3.2-18)"
    );
    assert_eq!(props.message_expiry_interval, Some(60));
}
