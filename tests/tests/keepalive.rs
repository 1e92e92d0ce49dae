//! Keep alive (MQTT 5 3.1.2.10, 3.2.2.3.14; 3.1.1 3.1.2.10): a client silent for 1.5 × its
//! keep alive is closed (`MQTT-3.1.2-22`) and its will published; the plan's maximum is
//! imposed with Server Keep Alive (`MQTT-3.2.2-21`).

use std::net::SocketAddr;
use std::time::Duration;

use tenantmq_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use tenantmq_common::quota::Quotas;
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::raw::{RawClient, connect_packet, will};
use tenantmq_gateway::GatewayConfig;
use tokio::time::Instant;

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

async fn watcher(addr: SocketAddr) -> RawClient {
    let mut w = RawClient::connected(addr, V50, "watcher").await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    w
}

/// Asserts `c` is closed between 1.3 s and 2.5 s after `since` (1.5 × 1 s keep alive, with
/// slack for scheduling), with DISCONNECT 0x8D for MQTT 5.
async fn assert_closed_for_silence(c: &mut RawClient, since: Instant) {
    let reason = c.expect_closed_within(Duration::from_secs(4)).await;
    let after = since.elapsed();
    assert!(
        after >= Duration::from_millis(1300) && after < Duration::from_millis(2500),
        "closed after {after:?}; keep alive 1 s allows 1.5 s"
    );
    let expected = (c.version == V50).then_some(ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert_eq!(reason, expected);
}

/// A client with keep alive 1 s that sends nothing is closed after about 1.5 s, and its
/// will is published.
async fn silent_client_closed(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let mut w = watcher(b.addr).await;
    let mut c = connect_packet(version, "silent");
    c.keep_alive = 1;
    c.will = Some(will("will/silent", b"timed out", QoS::AtMostOnce, false));
    let (mut c, _) = RawClient::connect_with(b.addr, c).await;
    let since = Instant::now();
    assert_closed_for_silence(&mut c, since).await;
    assert_eq!(&w.expect_publish().await.payload[..], b"timed out");
    assert_eq!(
        b.stats
            .keepalive_timeouts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn silent_client_closed_after_1_5_keepalive_v311() {
    silent_client_closed(V311).await;
}

#[tokio::test]
async fn silent_client_closed_after_1_5_keepalive_v5() {
    silent_client_closed(V50).await;
}

/// A client that pings within its keep alive stays connected, each PINGREQ answered.
#[tokio::test]
async fn pinging_client_stays_connected_v5() {
    let b = DevBroker::start().await;
    let mut c = connect_packet(V50, "pinger");
    c.keep_alive = 1;
    let (mut c, _) = RawClient::connect_with(b.addr, c).await;
    // 4 × 0.45 s: well past the 1.5 s a silent client would get.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(450)).await;
        c.send(&Packet::PingReq).await.expect("socket I/O");
        assert_eq!(c.recv().await, Packet::PingResp);
    }
}

/// A requested keep alive above the plan's maximum is replaced, and MQTT 5 clients are told
/// with Server Keep Alive (`MQTT-3.2.2-21`, `-22`), which is then enforced. A keep alive of 0
/// (none) is replaced too where the plan has a maximum; one within it is left alone (no
/// Server Keep Alive).
#[tokio::test]
async fn server_keep_alive_imposes_the_plan_maximum_v5() {
    let quotas = Quotas {
        max_keepalive_secs: 1,
        ..Quotas::unlimited()
    };
    let b = DevBroker::start_with(quotas, GatewayConfig::default()).await;
    for (requested, told) in [(60, Some(1)), (0, Some(1)), (1, None)] {
        let mut c = connect_packet(V50, "c");
        c.keep_alive = requested;
        let (_c, ack) = RawClient::connect_with(b.addr, c).await;
        assert_eq!(
            ack.properties.server_keep_alive, told,
            "keep alive {requested} requested"
        );
    }
    let mut c = connect_packet(V50, "c");
    c.keep_alive = 60;
    let (mut c, _) = RawClient::connect_with(b.addr, c).await;
    let since = Instant::now();
    assert_closed_for_silence(&mut c, since).await;
}

/// MQTT 3.1.1 has no Server Keep Alive; the engine still enforces the plan's maximum (its
/// choice, documented in handlers/connect.rs): a 3.1.1 client asking for 60 s under a 1 s
/// plan is closed after 1.5 s of silence.
#[tokio::test]
async fn plan_maximum_keep_alive_enforced_v311() {
    let quotas = Quotas {
        max_keepalive_secs: 1,
        ..Quotas::unlimited()
    };
    let b = DevBroker::start_with(quotas, GatewayConfig::default()).await;
    let mut c = connect_packet(V311, "c");
    c.keep_alive = 60;
    let (mut c, _) = RawClient::connect_with(b.addr, c).await;
    let since = Instant::now();
    assert_closed_for_silence(&mut c, since).await;
}
