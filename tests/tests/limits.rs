//! Maximum Packet Size in both directions (MQTT 5 3.1.2.11.4, 3.2.2.3.6): the server closes
//! a client that sends more than the CONNACK allowed, and never sends a client more than its
//! CONNECT allowed.

use std::time::Duration;

use tenantmq_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use tenantmq_common::quota::Quotas;
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS5, V5, topic5, v5_options};
use tenantmq_e2e::raw::{RawClient, connect_packet, publish_packet};
use tenantmq_gateway::GatewayConfig;

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

/// The server's limit in these tests.
const SERVER_MAX: u32 = 1024;

async fn small_server() -> DevBroker {
    let quotas = Quotas {
        max_message_bytes: SERVER_MAX,
        ..Quotas::unlimited()
    };
    DevBroker::start_with(quotas, GatewayConfig::default()).await
}

/// A QoS 0 PUBLISH to "t" whose whole encoding is `total` bytes (for 3 < total - 6 < 16384).
fn publish_of_size(version: ProtocolVersion, total: usize) -> tenantmq_codec::Publish {
    // Fixed header 3 bytes (remaining length ≥ 128), topic 2 + 1, MQTT 5 property length 1.
    let overhead = 3 + 3 + usize::from(version == V50);
    let p = publish_packet(
        "t",
        QoS::AtMostOnce,
        false,
        0,
        &vec![b'x'; total - overhead],
    );
    assert_eq!(Packet::Publish(p.clone()).encoded_len(version), total);
    p
}

/// A packet of exactly the server's Maximum Packet Size is accepted; one byte more and the
/// server answers DISCONNECT 0x95 (MQTT 5) or closes (3.1.1), without delivering it (MQTT 5
/// 3.2.2.3.6, 4.13). The limit is announced in CONNACK (MQTT 5).
async fn client_packet_above_server_maximum(version: ProtocolVersion) {
    let b = small_server().await;
    let mut watcher = RawClient::connected(b.addr, V50, "watcher").await;
    watcher.subscribe("t", QoS::AtMostOnce).await;
    let (mut c, ack) = RawClient::connect_with(b.addr, connect_packet(version, "c")).await;
    if version == V50 {
        assert_eq!(ack.properties.maximum_packet_size, Some(SERVER_MAX));
    }
    c.send(&Packet::Publish(publish_of_size(
        version,
        SERVER_MAX as usize,
    )))
    .await
    .expect("socket I/O");
    assert_eq!(
        watcher.expect_publish().await.payload.len(),
        SERVER_MAX as usize - 6 - usize::from(version == V50)
    );
    c.send(&Packet::Publish(publish_of_size(
        version,
        SERVER_MAX as usize + 1,
    )))
    .await
    .expect("socket I/O");
    let expected = (version == V50).then_some(ReasonCode::PACKET_TOO_LARGE);
    assert_eq!(c.expect_closed().await, expected);

    let mut other = RawClient::connected(b.addr, version, "other").await;
    other
        .publish(publish_packet("t", QoS::AtMostOnce, false, 0, b"after"))
        .await;
    assert_eq!(
        &watcher.expect_publish().await.payload[..],
        b"after",
        "the oversized packet was delivered"
    );
}

#[tokio::test]
async fn packet_above_server_maximum_disconnects_0x95_v5() {
    client_packet_above_server_maximum(V50).await;
}

#[tokio::test]
async fn packet_above_server_maximum_is_closed_v311() {
    client_packet_above_server_maximum(V311).await;
}

/// The limit applies as soon as the fixed header announces the size: the server does not
/// wait for (or buffer) a body it will refuse.
#[tokio::test]
async fn oversized_packet_refused_from_its_fixed_header_v5() {
    let b = small_server().await;
    let mut c = RawClient::connected(b.addr, V50, "c").await;
    // PUBLISH QoS 0 announcing a remaining length of 2,097,152 bytes; no body follows.
    c.send_bytes(&[0x30, 0x80, 0x80, 0x80, 0x01])
        .await
        .expect("socket I/O");
    assert_eq!(
        c.expect_closed_within(Duration::from_secs(2)).await,
        Some(ReasonCode::PACKET_TOO_LARGE)
    );
}

/// QoS 1 PUBLISH to "m/t" without properties, as the subscriber receives it, is 10 bytes
/// plus the payload (fixed header 2, topic 5, packet id 2, property length 1).
const OVERHEAD_TO_SUBSCRIBER: usize = 10;

/// The server never sends a packet above the client's Maximum Packet Size
/// (`MQTT-3.1.2-24`): such a message is skipped for that client (`MQTT-3.1.2-25`) while
/// messages that fit, before and after it, arrive; one of exactly the client's maximum
/// arrives. Applies to QoS 0, QoS 1 and retained messages alike.
#[tokio::test]
async fn server_never_sends_above_client_maximum_v5() {
    let b = DevBroker::start().await;
    let max = 100usize;
    let mut c = connect_packet(V50, "sub");
    c.properties.maximum_packet_size = Some(max as u32);
    let (mut sub, _) = RawClient::connect_with(b.addr, c).await;
    sub.subscribe("m/t", QoS::AtLeastOnce).await;

    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    let fits = max - OVERHEAD_TO_SUBSCRIBER;
    let sent: [(usize, QoS); 6] = [
        (10, QoS::AtLeastOnce),
        (fits + 1, QoS::AtLeastOnce),
        (fits, QoS::AtLeastOnce),
        (500, QoS::AtMostOnce),
        (5, QoS::AtMostOnce),
        (5000, QoS::ExactlyOnce),
    ];
    for (i, (len, qos)) in sent.iter().enumerate() {
        let mut payload = vec![b'.'; *len];
        payload[0] = b'0' + i as u8;
        publisher
            .publish(publish_packet("m/t", *qos, false, 1, &payload))
            .await;
    }
    publisher
        .publish(publish_packet(
            "m/t",
            QoS::AtLeastOnce,
            true,
            1,
            &vec![b'r'; 1000],
        ))
        .await;
    publisher.publish_qos1("m/t", b"end").await;

    let mut got = Vec::new();
    loop {
        let p = sub.expect_publish_acked().await;
        assert!(Packet::Publish(p.clone()).encoded_len(V50) <= max);
        if &p.payload[..] == b"end" {
            break;
        }
        got.push((p.payload[0] - b'0', p.payload.len()));
    }
    assert_eq!(
        got,
        vec![(0, 10), (2, fits), (4, 5)],
        "(message index, size) received"
    );

    // A retained message above the limit is not sent for a new subscription either.
    sub.subscribe("$end", QoS::AtLeastOnce).await;
    sub.subscribe("m/#", QoS::AtLeastOnce).await;
    publisher.publish_qos1("$end", b"").await;
    assert_eq!(
        sub.expect_publish_acked().await.topic,
        "$end",
        "oversized retained message sent"
    );
}

/// A real client announcing a Maximum Packet Size gets the messages that fit and stays
/// connected.
#[tokio::test]
async fn rumqttc_with_maximum_packet_size_v5() {
    let b = DevBroker::start().await;
    let mut o = v5_options(b.addr, "sub");
    o.set_max_packet_size(Some(200));
    let mut sub = V5::connect_with(o).await;
    sub.subscribe("m/#", QoS5::AtLeastOnce).await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    publisher
        .publish("m/small", QoS5::AtLeastOnce, false, "a")
        .await;
    publisher
        .publish("m/big", QoS5::AtLeastOnce, false, vec![0u8; 1000])
        .await;
    publisher
        .publish("m/small", QoS5::AtLeastOnce, false, "b")
        .await;
    for expected in ["a", "b"] {
        let p = sub.recv().await;
        assert_eq!(
            (topic5(&p).as_str(), &p.payload[..]),
            ("m/small", expected.as_bytes())
        );
    }
}
