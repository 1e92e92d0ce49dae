//! Session takeover (MQTT 5 3.1.4, `MQTT-3.1.4-3`; 3.1.1 `MQTT-3.1.4-2`): a second
//! connection with the same client id closes the first — MQTT 5 sends it DISCONNECT 0x8E
//! first — and gets the session.

use std::net::SocketAddr;

use tenantmq_codec::{Connect, ProtocolVersion, QoS, ReasonCode};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::raw::{RawClient, connect_packet, persistent_connect_packet, will};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

async fn watcher(addr: SocketAddr) -> RawClient {
    let mut w = RawClient::connected(addr, V50, "watcher").await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    w.subscribe("$end", QoS::AtMostOnce).await;
    w
}

/// The first connection is closed (MQTT 5: after DISCONNECT 0x8E), the second is accepted
/// and works; the first's will (no delay) is published, as for any close that is not a
/// normal DISCONNECT.
async fn takeover(first: ProtocolVersion, second: ProtocolVersion) {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut c = connect_packet(first, "dup");
    c.will = Some(will("will/dup", b"taken over", QoS::AtMostOnce, false));
    let (mut old, _) = RawClient::connect_with(b.addr, c).await;
    let (mut new, ack) = RawClient::connect_with(b.addr, connect_packet(second, "dup")).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);

    let expected = (first == V50).then_some(ReasonCode::SESSION_TAKEN_OVER);
    assert_eq!(old.expect_closed().await, expected);
    assert_eq!(&w.expect_publish().await.payload[..], b"taken over");

    new.subscribe("t", QoS::AtLeastOnce).await;
    new.publish_qos1("t", b"still here").await;
    assert_eq!(&new.expect_publish().await.payload[..], b"still here");
}

#[tokio::test]
async fn second_connection_takes_over_v5() {
    takeover(V50, V50).await;
}

#[tokio::test]
async fn second_connection_takes_over_v311() {
    takeover(V311, V311).await;
}

#[tokio::test]
async fn mqtt5_connection_takes_over_a_v311_one() {
    takeover(V311, V50).await;
}

#[tokio::test]
async fn v311_connection_takes_over_an_mqtt5_one() {
    takeover(V50, V311).await;
}

/// Taking over with Clean Start 0 resumes the session: Session Present 1, the subscription
/// and the unacknowledged message (resent with DUP) move to the new connection.
async fn takeover_resumes(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let (mut old, _) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "dup")).await;
    old.subscribe("t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher.publish_qos1("t", b"unacked").await;
    let first = old.expect_publish().await;

    let (mut new, ack) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "dup")).await;
    assert!(ack.session_present);
    let again = new.expect_publish_acked().await;
    assert_eq!(
        (again.packet_id, again.dup, &again.payload[..]),
        (first.packet_id, true, &b"unacked"[..])
    );
    publisher.publish_qos1("t", b"next").await;
    assert_eq!(&new.expect_publish_acked().await.payload[..], b"next");
    old.expect_closed().await;
}

#[tokio::test]
async fn takeover_with_clean_start_0_resumes_the_session_v5() {
    takeover_resumes(V50).await;
}

#[tokio::test]
async fn takeover_with_clean_session_0_resumes_the_session_v311() {
    takeover_resumes(V311).await;
}

fn with_delayed_will(client_id: &str) -> Connect {
    let mut c = persistent_connect_packet(V50, client_id);
    let mut w = will("will/dup", b"delayed", QoS::AtMostOnce, false);
    w.properties.will_delay_interval = Some(30);
    c.will = Some(w);
    c
}

/// A will with a delay is not published when the new connection resumes the session
/// (`MQTT-3.1.3-9`); with Clean Start 1 the old session ends and the will goes out at once.
#[tokio::test]
async fn delayed_will_on_takeover_depends_on_clean_start_v5() {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;

    let (mut old, _) = RawClient::connect_with(b.addr, with_delayed_will("resumed")).await;
    let (_new, ack) =
        RawClient::connect_with(b.addr, persistent_connect_packet(V50, "resumed")).await;
    assert!(ack.session_present);
    assert_eq!(
        old.expect_closed().await,
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
    let mut m = RawClient::connected(b.addr, V50, "marker").await;
    m.publish_qos1("$end", b"").await;
    assert_eq!(
        w.expect_publish().await.topic,
        "$end",
        "delayed will published on a resumed session"
    );

    let (mut old, _) = RawClient::connect_with(b.addr, with_delayed_will("restarted")).await;
    let (_new, ack) = RawClient::connect_with(b.addr, connect_packet(V50, "restarted")).await;
    assert!(!ack.session_present);
    assert_eq!(
        old.expect_closed().await,
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
    assert_eq!(&w.expect_publish().await.payload[..], b"delayed");
}
