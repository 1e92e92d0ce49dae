//! Publish rate and inbound bandwidth, per client (gateway) and per tenant (engine), on both
//! protocol versions (issue 6, items 1 and 2): a client beyond its allowance is first slowed —
//! the server stops reading its socket — and loses nothing while slowing is enough; only what
//! is still beyond the allowance after the maximum pause is refused: MQTT 5 QoS 1/2 get
//! PUBACK/PUBREC 0x97 Quota exceeded with the Reason String "message rate too high" (0x96
//! exists only in DISCONNECT, MQTT 5 3.14.2.1), QoS 0 and MQTT 3.1.1 are dropped (3.1.1
//! QoS 1/2 acknowledged positively, `MQTT-3.3.5-2`). Every refusal is counted.
//!
//! Timing bounds are generous on purpose (the tests share a loaded machine); what is exact is
//! the accounting: every message is either delivered or counted as refused.

use std::time::Duration;

use bytes::Bytes;
use tenantmq_codec::{Packet, ProtocolVersion, PubAck, QoS, ReasonCode};
use tenantmq_common::quota::Quotas;
use tenantmq_common::usage::RejectReason;
use tenantmq_e2e::raw::{RawClient, Received, publish_packet};
use tenantmq_e2e::tenants::{TenantsBroker, tenant_connect};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

/// The topic of the messages under test.
const TOPIC: &str = "m";

async fn client(b: &TenantsBroker, version: ProtocolVersion, id: &str) -> RawClient {
    let (c, ack) = RawClient::connect_with(b.addr, tenant_connect(version, "t", id)).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK of {id}");
    c
}

/// What a subscriber saw: how many messages, and when the first and the last arrived.
#[derive(Debug, Clone, Copy)]
struct Seen {
    count: usize,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// A QoS 0 subscriber of [`TOPIC`] that counts what arrives until nothing has come for
/// `quiet`.
async fn counting_subscriber(b: &TenantsBroker, quiet: Duration) -> JoinHandle<Seen> {
    let mut sub = client(b, V50, "counter").await;
    sub.subscribe(TOPIC, QoS::AtMostOnce).await;
    tokio::spawn(async move {
        let mut seen = Seen {
            count: 0,
            first: None,
            last: None,
        };
        loop {
            // Generous before the first message: the publishers may still be connecting.
            let wait = if seen.count == 0 { quiet * 10 } else { quiet };
            match sub.recv_timeout(wait).await {
                Received::Packet(Packet::Publish(_)) => {
                    let now = Instant::now();
                    seen.count += 1;
                    seen.first.get_or_insert(now);
                    seen.last = Some(now);
                }
                Received::Packet(other) => panic!("unexpected {other:?}"),
                Received::Closed | Received::Timeout => return seen,
            }
        }
    })
}

/// Publishes `n` QoS 1 messages of `len` bytes, at most `window` unacknowledged at a time (as
/// a client with a Receive Maximum of the server would), and returns the PUBACK reasons.
async fn publish_windowed(c: &mut RawClient, n: u16, window: u16, len: usize) -> Vec<ReasonCode> {
    let payload = vec![b'x'; len];
    let mut reasons = Vec::new();
    let mut sent = 0u16;
    while reasons.len() < usize::from(n) {
        while sent < n && usize::from(sent) - reasons.len() < usize::from(window) {
            sent += 1;
            c.send(&Packet::Publish(publish_packet(
                TOPIC,
                QoS::AtLeastOnce,
                false,
                sent,
                &payload,
            )))
            .await
            .expect("socket I/O");
        }
        match c.recv().await {
            Packet::PubAck(a) => reasons.push(a.reason),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    reasons
}

/// Sends `n` PUBLISH packets at `qos` in one write, as fast as a flooding client can, and
/// returns the PUBACKs (none for QoS 0).
async fn flood(c: &mut RawClient, n: u16, qos: QoS, len: usize) -> Vec<PubAck> {
    let payload = vec![b'x'; len];
    let mut bytes = bytes::BytesMut::new();
    for id in 1..=n {
        Packet::Publish(publish_packet(TOPIC, qos, false, id, &payload))
            .encode(c.version, &mut bytes)
            .expect("encode");
    }
    c.send_bytes(&bytes).await.expect("socket I/O");
    let mut acks = Vec::new();
    if qos == QoS::AtMostOnce {
        return acks;
    }
    while acks.len() < usize::from(n) {
        match c.recv_timeout(Duration::from_secs(10)).await {
            Received::Packet(Packet::PubAck(a)) => acks.push(a),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    acks
}

fn reasons(acks: &[PubAck]) -> Vec<ReasonCode> {
    acks.iter().map(|a| a.reason).collect()
}

/// Publishes QoS 0 messages at `per_sec` for `secs`, paced, and returns how many were sent.
async fn paced_qos0(c: &mut RawClient, per_sec: u32, secs: f64, len: usize) -> usize {
    let payload = Bytes::from(vec![b'x'; len]);
    let mut packet = publish_packet(TOPIC, QoS::AtMostOnce, false, 0, b"");
    packet.payload = payload;
    let mut wire = bytes::BytesMut::new();
    Packet::Publish(packet)
        .encode(c.version, &mut wire)
        .expect("encode");
    let interval = Duration::from_secs_f64(1.0 / f64::from(per_sec));
    let start = Instant::now();
    let total = (f64::from(per_sec) * secs) as usize;
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        c.send_bytes(&wire).await.expect("socket I/O");
    }
    total
}

fn ok(version: ProtocolVersion, reasons: &[ReasonCode]) -> usize {
    reasons
        .iter()
        .filter(|r| !r.is_error() || (version == V311 && **r == ReasonCode::SUCCESS))
        .count()
}

/// A client trying to publish far above `publish_rate_per_client` with a window of 10 QoS 1
/// messages is slowed to its rate and loses nothing: each read waits for tokens, never longer
/// than the maximum pause.
async fn client_rate_slows_without_loss(version: ProtocolVersion) {
    let rate = 20;
    let b = TenantsBroker::one(Quotas {
        publish_rate_per_client: rate,
        ..Quotas::unlimited()
    })
    .await;
    let sub = counting_subscriber(&b, Duration::from_millis(800)).await;
    let mut c = client(&b, version, "c").await;
    let reasons = publish_windowed(&mut c, 60, 10, 10).await;
    assert!(reasons.iter().all(|r| !r.is_error()), "{reasons:?}");
    let seen = sub.await.expect("subscriber");
    assert_eq!(seen.count, 60, "every message delivered");
    // A burst of 20, then 40 at 20 per second: about 2 s.
    let took = seen
        .last
        .zip(seen.first)
        .map(|(l, f)| l - f)
        .unwrap_or_default();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(4500),
        "60 messages at 20/s (burst 20) took {took:?}"
    );
    assert_eq!(b.rejections("t").total(), 0, "slowing is not a rejection");
}

#[tokio::test]
async fn client_publish_rate_slows_without_loss_v5() {
    client_rate_slows_without_loss(V50).await;
}

#[tokio::test]
async fn client_publish_rate_slows_without_loss_v311() {
    client_rate_slows_without_loss(V311).await;
}

/// A paced QoS 0 flood at ten times `publish_rate_per_client` is delivered at about the rate;
/// the rest is dropped and counted: delivered + refused = sent, exactly.
async fn client_rate_flood_qos0(version: ProtocolVersion) {
    let rate = 50;
    let b = TenantsBroker::one(Quotas {
        publish_rate_per_client: rate,
        ..Quotas::unlimited()
    })
    .await;
    let sub = counting_subscriber(&b, Duration::from_millis(1500)).await;
    let mut c = client(&b, version, "c").await;
    let start = Instant::now();
    let sent = paced_qos0(&mut c, rate * 10, 2.0, 20).await;
    let seen = sub.await.expect("subscriber");
    let elapsed = seen
        .last
        .map_or(Duration::ZERO, |l| l - start)
        .as_secs_f64();
    let refused = b
        .wait_rejections("t", RejectReason::MessageRate, (sent - seen.count) as u64)
        .await;
    assert_eq!(
        seen.count + refused as usize,
        sent,
        "delivered + refused = sent"
    );
    // At most the burst plus the rate over the flood and its last pause; at least half the
    // rate over the flood.
    let most = f64::from(rate) * (1.0 + elapsed) + 10.0;
    assert!(
        (seen.count as f64) <= most && seen.count as f64 >= f64::from(rate) * 2.0 * 0.5,
        "{} of {sent} delivered in {elapsed:.2} s at a rate of {rate}/s",
        seen.count
    );
}

#[tokio::test]
async fn client_publish_rate_flood_qos0_v5() {
    client_rate_flood_qos0(V50).await;
}

#[tokio::test]
async fn client_publish_rate_flood_qos0_v311() {
    client_rate_flood_qos0(V311).await;
}

/// A burst of QoS 1 far beyond `publish_rate_per_client` in one write: after the maximum
/// pause the excess is refused — PUBACK 0x97 for MQTT 5, a positive PUBACK and a dropped
/// message for 3.1.1. What was acknowledged as accepted (MQTT 5) is what was delivered.
async fn client_rate_flood_qos1(version: ProtocolVersion) {
    let rate = 10;
    let b = TenantsBroker::one(Quotas {
        publish_rate_per_client: rate,
        ..Quotas::unlimited()
    })
    .await;
    let sub = counting_subscriber(&b, Duration::from_millis(1500)).await;
    let mut c = client(&b, version, "c").await;
    let acks = flood(&mut c, 100, QoS::AtLeastOnce, 10).await;
    let reasons = reasons(&acks);
    let seen = sub.await.expect("subscriber");
    let refused = b.wait_rejections("t", RejectReason::MessageRate, 1).await;
    assert_eq!(
        seen.count + refused as usize,
        100,
        "delivered + refused = sent"
    );
    // The burst and about one second's worth while paused.
    assert!((10..=30).contains(&seen.count), "{} delivered", seen.count);
    match version {
        ProtocolVersion::V5 => {
            let rate_refused = reasons
                .iter()
                .filter(|r| **r == ReasonCode::QUOTA_EXCEEDED)
                .count();
            assert_eq!(rate_refused as u64, refused);
            let why = acks
                .iter()
                .find(|a| a.reason.is_error())
                .and_then(|a| a.properties.reason_string.clone());
            assert_eq!(why.as_deref(), Some("message rate too high"));
            assert_eq!(ok(version, &reasons), seen.count);
            // The refused ones are the last: the allowance went to the first.
            assert!(reasons[..seen.count].iter().all(|r| !r.is_error()));
        }
        ProtocolVersion::V311 => assert!(reasons.iter().all(|r| *r == ReasonCode::SUCCESS)),
    }
}

#[tokio::test]
async fn client_publish_rate_flood_qos1_0x97_v5() {
    client_rate_flood_qos1(V50).await;
}

#[tokio::test]
async fn client_publish_rate_flood_qos1_acked_and_dropped_v311() {
    client_rate_flood_qos1(V311).await;
}

/// `bandwidth_bytes_per_client`: a client within its window is slowed to the byte rate and
/// loses nothing; a burst of which one read holds more than the maximum pause can absorb has
/// its excess refused (0x97 / dropped) and counted as bandwidth.
async fn client_bandwidth(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        bandwidth_bytes_per_client: 1000,
        max_message_bytes: 200,
        ..Quotas::unlimited()
    })
    .await;
    let sub = counting_subscriber(&b, Duration::from_millis(800)).await;
    let mut c = client(&b, version, "c").await;
    // 30 packets of about 100 bytes: 3,000 bytes at 1,000/s with a 1,000-byte burst.
    let slowed = publish_windowed(&mut c, 30, 4, 90).await;
    assert!(slowed.iter().all(|r| !r.is_error()), "{slowed:?}");
    let seen = sub.await.expect("subscriber");
    assert_eq!(seen.count, 30);
    let took = seen
        .last
        .zip(seen.first)
        .map(|(l, f)| l - f)
        .unwrap_or_default();
    assert!(
        took >= Duration::from_millis(1300) && took < Duration::from_millis(4500),
        "took {took:?}"
    );
    assert_eq!(b.rejections("t").total(), 0);

    let sub = counting_subscriber(&b, Duration::from_millis(1500)).await;
    let acks = flood(&mut c, 80, QoS::AtLeastOnce, 90).await;
    let seen = sub.await.expect("subscriber");
    let refused = b.wait_rejections("t", RejectReason::Bandwidth, 1).await;
    assert_eq!(seen.count + refused as usize, 80);
    assert!(seen.count <= 60, "{} delivered", seen.count);
    if version == V50 {
        assert_eq!(ok(version, &reasons(&acks)), seen.count);
    }
}

#[tokio::test]
async fn client_bandwidth_slows_then_0x97_v5() {
    client_bandwidth(V50).await;
}

#[tokio::test]
async fn client_bandwidth_slows_then_drops_v311() {
    client_bandwidth(V311).await;
}

/// The tenant-wide `publish_rate_per_sec` applies across clients that are each within their
/// own rate: together they are slowed to the tenant's rate (the engine holds their frames)
/// and lose nothing while that is enough; a flood beyond it is refused (0x97 / dropped).
async fn tenant_rate(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        publish_rate_per_sec: 30,
        ..Quotas::unlimited()
    })
    .await;
    let sub = counting_subscriber(&b, Duration::from_millis(800)).await;
    let (mut x, mut y) = (
        client(&b, version, "x").await,
        client(&b, version, "y").await,
    );
    let (rx, ry) = tokio::join!(
        publish_windowed(&mut x, 45, 5, 10),
        publish_windowed(&mut y, 45, 5, 10)
    );
    assert!(rx.iter().chain(&ry).all(|r| !r.is_error()));
    let seen = sub.await.expect("subscriber");
    assert_eq!(seen.count, 90);
    // A burst of 30, then 60 at 30 per second.
    let took = seen
        .last
        .zip(seen.first)
        .map(|(l, f)| l - f)
        .unwrap_or_default();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(5000),
        "took {took:?}"
    );
    assert_eq!(b.rejections("t").total(), 0);

    let sub = counting_subscriber(&b, Duration::from_millis(1500)).await;
    let (rx, ry) = tokio::join!(
        flood(&mut x, 100, QoS::AtLeastOnce, 10),
        flood(&mut y, 100, QoS::AtLeastOnce, 10)
    );
    let (rx, ry) = (reasons(&rx), reasons(&ry));
    let seen = sub.await.expect("subscriber");
    let refused = b.wait_rejections("t", RejectReason::MessageRate, 1).await;
    assert_eq!(
        seen.count + refused as usize,
        200,
        "delivered + refused = sent"
    );
    assert!(seen.count <= 100, "{} delivered", seen.count);
    if version == V50 {
        let refused_acks = rx
            .iter()
            .chain(&ry)
            .filter(|r| **r == ReasonCode::QUOTA_EXCEEDED)
            .count();
        assert_eq!(refused_acks as u64, refused);
    }
}

#[tokio::test]
async fn tenant_publish_rate_slows_then_0x97_v5() {
    tenant_rate(V50).await;
}

#[tokio::test]
async fn tenant_publish_rate_slows_then_drops_v311() {
    tenant_rate(V311).await;
}

/// The tenant-wide `bandwidth_bytes_per_sec`, as above in bytes.
async fn tenant_bandwidth(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        bandwidth_bytes_per_sec: 5000,
        max_message_bytes: 1000,
        ..Quotas::unlimited()
    })
    .await;
    let sub = counting_subscriber(&b, Duration::from_millis(1500)).await;
    let (mut x, mut y) = (
        client(&b, version, "x").await,
        client(&b, version, "y").await,
    );
    let (rx, ry) = tokio::join!(
        flood(&mut x, 40, QoS::AtLeastOnce, 490),
        flood(&mut y, 40, QoS::AtLeastOnce, 490)
    );
    let (rx, ry) = (reasons(&rx), reasons(&ry));
    let seen = sub.await.expect("subscriber");
    let refused = b.wait_rejections("t", RejectReason::Bandwidth, 1).await;
    assert_eq!(
        seen.count + refused as usize,
        80,
        "delivered + refused = sent"
    );
    // 5,000 bytes of burst and about one second more: some 20 packets of 500 bytes.
    assert!((10..=40).contains(&seen.count), "{} delivered", seen.count);
    if version == V50 {
        assert_eq!(ok(version, &rx) + ok(version, &ry), seen.count);
    }
}

#[tokio::test]
async fn tenant_bandwidth_0x97_v5() {
    tenant_bandwidth(V50).await;
}

#[tokio::test]
async fn tenant_bandwidth_dropped_v311() {
    tenant_bandwidth(V311).await;
}

/// Quota changes reach live connections without reconnecting (issue 6: within 2 s): the
/// client's rate in the gateway, the tenant's limits in the engine, and the maximum packet
/// size of the gateway's framing.
async fn quota_change_applies_live(version: ProtocolVersion) {
    let slow = Quotas {
        publish_rate_per_client: 2,
        max_message_bytes: 1024,
        ..Quotas::unlimited()
    };
    let b = TenantsBroker::one(slow.clone()).await;
    let mut c = client(&b, version, "c").await;
    let start = Instant::now();
    publish_windowed(&mut c, 4, 4, 10).await;
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "not slowed at first"
    );

    b.set_quotas(
        "t",
        Quotas {
            publish_rate_per_client: 1000,
            max_message_bytes: 4096,
            max_topic_levels: 2,
            ..slow
        },
    )
    .await;
    let changed = Instant::now();
    let reasons = publish_windowed(&mut c, 50, 10, 10).await;
    assert!(reasons.iter().all(|r| !r.is_error()));
    assert!(
        changed.elapsed() < Duration::from_secs(2),
        "new rate not applied"
    );
    // Larger packets are allowed now, deeper topics are not.
    let big = publish_packet(TOPIC, QoS::AtLeastOnce, false, 1, &[b'x'; 2000]);
    assert!(!c.publish(big).await.is_error());
    let deep = publish_packet("a/b/c", QoS::AtLeastOnce, false, 2, b"x");
    let expected = match version {
        ProtocolVersion::V5 => ReasonCode::QUOTA_EXCEEDED,
        ProtocolVersion::V311 => ReasonCode::SUCCESS,
    };
    assert_eq!(c.publish(deep).await, expected);

    // Smaller again: the same connection's next large packet is too large.
    b.set_quotas(
        "t",
        Quotas {
            max_message_bytes: 1024,
            ..Quotas::unlimited()
        },
    )
    .await;
    c.send(&Packet::Publish(publish_packet(
        TOPIC,
        QoS::AtMostOnce,
        false,
        0,
        &[b'x'; 2000],
    )))
    .await
    .expect("socket I/O");
    let expected = (version == V50).then_some(ReasonCode::PACKET_TOO_LARGE);
    assert_eq!(c.expect_closed().await, expected);
    b.wait_rejections("t", RejectReason::PacketTooLarge, 1)
        .await;
    b.wait_rejections("t", RejectReason::TopicLevels, 1).await;
}

#[tokio::test]
async fn quota_change_applies_to_live_connections_v5() {
    quota_change_applies_live(V50).await;
}

#[tokio::test]
async fn quota_change_applies_to_live_connections_v311() {
    quota_change_applies_live(V311).await;
}
