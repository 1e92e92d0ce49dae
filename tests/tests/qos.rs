//! QoS 0/1/2 flows in both directions, packet identifiers, Receive Maximum and redelivery
//! with DUP on session resume (MQTT 5 4.3–4.4, 4.9; 3.1.1 4.3–4.4).

use tenantmq_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS3, QoS5, V3, V5};
use tenantmq_e2e::raw::{
    QUIET, RawClient, ack, connect_packet, persistent_connect_packet, publish_packet,
};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

/// The delivered QoS is the lower of the published QoS and the granted one
/// (`MQTT-3.8.4-8`, 3.1.1 `MQTT-3.8.4-6`).
#[tokio::test]
async fn qos_levels_end_to_end_v311() {
    let b = DevBroker::start().await;
    let mut sub2 = V3::connect(b.addr, "sub2").await;
    let mut sub1 = V3::connect(b.addr, "sub1").await;
    let granted = sub2.subscribe("q/#", QoS3::ExactlyOnce).await;
    assert_eq!(
        granted,
        vec![rumqttc::SubscribeReasonCode::Success(QoS3::ExactlyOnce)]
    );
    sub1.subscribe("q/#", QoS3::AtLeastOnce).await;
    let mut publisher = V3::connect(b.addr, "pub").await;
    for qos in [QoS3::AtMostOnce, QoS3::AtLeastOnce, QoS3::ExactlyOnce] {
        publisher
            .publish(&format!("q/{}", qos as u8), qos, false, vec![qos as u8])
            .await;
    }
    for qos in [QoS3::AtMostOnce, QoS3::AtLeastOnce, QoS3::ExactlyOnce] {
        let p = sub2.recv().await;
        assert_eq!(
            (p.topic.as_str(), p.qos),
            (format!("q/{}", qos as u8).as_str(), qos)
        );
        assert_eq!(&p.payload[..], &[qos as u8]);
        let p = sub1.recv().await;
        let expected = if qos == QoS3::ExactlyOnce {
            QoS3::AtLeastOnce
        } else {
            qos
        };
        assert_eq!(p.qos, expected, "downgraded to the granted QoS");
    }
}

#[tokio::test]
async fn qos_levels_end_to_end_v5() {
    let b = DevBroker::start().await;
    let mut sub2 = V5::connect(b.addr, "sub2").await;
    let mut sub1 = V5::connect(b.addr, "sub1").await;
    sub2.subscribe("q/#", QoS5::ExactlyOnce).await;
    sub1.subscribe("q/#", QoS5::AtLeastOnce).await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    for qos in [QoS5::AtMostOnce, QoS5::AtLeastOnce, QoS5::ExactlyOnce] {
        publisher
            .publish(&format!("q/{}", qos as u8), qos, false, vec![qos as u8])
            .await;
    }
    for qos in [QoS5::AtMostOnce, QoS5::AtLeastOnce, QoS5::ExactlyOnce] {
        let p = sub2.recv().await;
        assert_eq!(p.qos, qos);
        assert_eq!(&p.payload[..], &[qos as u8]);
        let p = sub1.recv().await;
        let expected = if qos == QoS5::ExactlyOnce {
            QoS5::AtLeastOnce
        } else {
            qos
        };
        assert_eq!(p.qos, expected, "downgraded to the granted QoS");
    }
}

/// QoS 1 from a client: PUBACK carries the PUBLISH's packet id; MQTT 5 says 0x10 when nobody
/// subscribes and 0x00 otherwise. The subscriber's copy has a non-zero id of the server's.
async fn qos1_inbound(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let mut publisher = RawClient::connected(b.addr, version, "pub").await;
    let lonely = publisher
        .publish(publish_packet("t", QoS::AtLeastOnce, false, 0x1234, b"a"))
        .await;
    let expected = if version == V50 {
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    } else {
        ReasonCode::SUCCESS
    };
    assert_eq!(lonely, expected);

    let mut sub = RawClient::connected(b.addr, version, "sub").await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let reason = publisher
        .publish(publish_packet("t", QoS::AtLeastOnce, false, 0xBEEF, b"b"))
        .await;
    assert_eq!(reason, ReasonCode::SUCCESS);
    let p = sub.expect_publish().await;
    assert_eq!(
        (p.qos, &p.payload[..], p.dup),
        (QoS::AtLeastOnce, &b"b"[..], false)
    );
    assert_ne!(p.packet_id, 0);
}

#[tokio::test]
async fn qos1_inbound_v311() {
    qos1_inbound(V311).await;
}

#[tokio::test]
async fn qos1_inbound_v5() {
    qos1_inbound(V50).await;
}

/// QoS 2 from a client: a PUBLISH repeated with the same packet id before PUBREL is
/// acknowledged again but delivered once (`MQTT-4.3.3-9`); after PUBREL/PUBCOMP the id is free
/// and the next PUBLISH with it is a new message. PUBREL of an unknown id still gets PUBCOMP
/// (MQTT 5: 0x92).
async fn qos2_inbound(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, version, "sub").await;
    sub.subscribe("t", QoS::ExactlyOnce).await;
    let mut publisher = RawClient::connected(b.addr, version, "pub").await;

    let first = publish_packet("t", QoS::ExactlyOnce, false, 5, b"once");
    for dup in [false, true, true] {
        let mut p = first.clone();
        p.dup = dup;
        publisher
            .send(&Packet::Publish(p))
            .await
            .expect("socket I/O");
        match publisher.recv().await {
            Packet::PubRec(a) => assert_eq!((a.packet_id, a.reason), (5, ReasonCode::SUCCESS)),
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    publisher
        .send(&Packet::PubRel(ack(5)))
        .await
        .expect("socket I/O");
    match publisher.recv().await {
        Packet::PubComp(a) => assert_eq!((a.packet_id, a.reason), (5, ReasonCode::SUCCESS)),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    // The same id after the release is a new message.
    publisher
        .publish(publish_packet("t", QoS::ExactlyOnce, false, 5, b"again"))
        .await;

    assert_eq!(&sub.expect_publish_acked().await.payload[..], b"once");
    assert_eq!(
        &sub.expect_publish_acked().await.payload[..],
        b"again",
        "duplicate delivered"
    );
    sub.expect_silence(QUIET).await;

    publisher
        .send(&Packet::PubRel(ack(77)))
        .await
        .expect("socket I/O");
    match publisher.recv().await {
        Packet::PubComp(a) => {
            assert_eq!(a.packet_id, 77);
            if version == V50 {
                assert_eq!(a.reason, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
            }
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
}

#[tokio::test]
async fn qos2_inbound_duplicate_delivered_once_v311() {
    qos2_inbound(V311).await;
}

#[tokio::test]
async fn qos2_inbound_duplicate_delivered_once_v5() {
    qos2_inbound(V50).await;
}

/// QoS 2 to a client: PUBLISH, the client's PUBREC, the server's PUBREL, the client's
/// PUBCOMP. With Receive Maximum 1 the next QoS 2 message waits for PUBCOMP, not PUBREC
/// (MQTT 5 4.9: the quota is returned on PUBCOMP).
#[tokio::test]
async fn qos2_outbound_flow_and_window_v5() {
    let b = DevBroker::start().await;
    let mut c = connect_packet(V50, "sub");
    c.properties.receive_maximum = Some(1);
    let (mut sub, _) = RawClient::connect_with(b.addr, c).await;
    sub.subscribe("t", QoS::ExactlyOnce).await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher
        .publish(publish_packet("t", QoS::ExactlyOnce, false, 1, b"1"))
        .await;
    publisher
        .publish(publish_packet("t", QoS::ExactlyOnce, false, 2, b"2"))
        .await;

    let p = sub.expect_publish().await;
    assert_eq!((p.qos, &p.payload[..]), (QoS::ExactlyOnce, &b"1"[..]));
    sub.send(&Packet::PubRec(ack(p.packet_id)))
        .await
        .expect("socket I/O");
    match sub.recv().await {
        Packet::PubRel(a) => assert_eq!(a.packet_id, p.packet_id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    sub.expect_silence(QUIET).await;
    sub.send(&Packet::PubComp(ack(p.packet_id)))
        .await
        .expect("socket I/O");
    let p2 = sub.expect_publish_acked().await;
    assert_eq!(&p2.payload[..], b"2");
}

#[tokio::test]
async fn qos2_outbound_flow_v311() {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, V311, "sub").await;
    sub.subscribe("t", QoS::ExactlyOnce).await;
    let mut publisher = RawClient::connected(b.addr, V311, "pub").await;
    publisher
        .publish(publish_packet("t", QoS::ExactlyOnce, false, 1, b"1"))
        .await;
    let p = sub.expect_publish().await;
    assert_eq!(p.qos, QoS::ExactlyOnce);
    sub.send(&Packet::PubRec(ack(p.packet_id)))
        .await
        .expect("socket I/O");
    match sub.recv().await {
        Packet::PubRel(a) => assert_eq!(a.packet_id, p.packet_id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    sub.send(&Packet::PubComp(ack(p.packet_id)))
        .await
        .expect("socket I/O");
    // Nothing more is owed: a new message is the next thing to arrive.
    publisher
        .publish(publish_packet("t", QoS::AtMostOnce, false, 0, b"next"))
        .await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"next");
}

/// The server sends at most Receive Maximum unacknowledged QoS 1/2 PUBLISHes
/// (`MQTT-3.3.4-7`); QoS 0 is not counted (`MQTT-3.3.4-8`... 4.9) and still flows. Each
/// PUBACK lets one more through; the in-flight ids are distinct.
#[tokio::test]
async fn receive_maximum_is_respected_v5() {
    let b = DevBroker::start().await;
    let mut c = connect_packet(V50, "sub");
    c.properties.receive_maximum = Some(2);
    let (mut sub, _) = RawClient::connect_with(b.addr, c).await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    for i in 0..5u8 {
        publisher
            .publish(publish_packet("t", QoS::AtLeastOnce, false, 1, &[i]))
            .await;
    }
    let a = sub.expect_publish().await;
    let b2 = sub.expect_publish().await;
    assert_eq!((&a.payload[..], &b2.payload[..]), (&[0][..], &[1][..]));
    assert_ne!(
        a.packet_id, b2.packet_id,
        "in-flight packet ids must differ"
    );
    sub.expect_silence(QUIET).await;

    publisher
        .publish(publish_packet("t", QoS::AtMostOnce, false, 0, b"q0"))
        .await;
    assert_eq!(
        &sub.expect_publish().await.payload[..],
        b"q0",
        "QoS 0 is outside the window"
    );

    sub.send(&Packet::PubAck(ack(a.packet_id)))
        .await
        .expect("socket I/O");
    let c3 = sub.expect_publish().await;
    assert_eq!(&c3.payload[..], &[2]);
    assert_ne!(c3.packet_id, b2.packet_id);
    sub.expect_silence(QUIET).await;
    for id in [b2.packet_id, c3.packet_id] {
        sub.send(&Packet::PubAck(ack(id)))
            .await
            .expect("socket I/O");
    }
    assert_eq!(&sub.expect_publish_acked().await.payload[..], &[3]);
    assert_eq!(&sub.expect_publish_acked().await.payload[..], &[4]);
}

/// An unacknowledged QoS 1 PUBLISH is resent on session resume with the same packet id and
/// DUP set (`MQTT-4.4.0-1`, `MQTT-3.3.1-1`); once acknowledged it is not sent again.
async fn qos1_redelivery(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let (mut sub, ack0) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "sub")).await;
    assert!(!ack0.session_present);
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, version, "pub").await;
    publisher.publish_qos1("t", b"m").await;
    let first = sub.expect_publish().await;
    assert!(!first.dup);
    drop(sub);

    let (mut sub, resumed) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "sub")).await;
    assert!(resumed.session_present);
    let again = sub.expect_publish().await;
    assert_eq!(
        (again.packet_id, again.dup, &again.payload[..]),
        (first.packet_id, true, &b"m"[..])
    );
    sub.send(&Packet::PubAck(ack(again.packet_id)))
        .await
        .expect("socket I/O");
    sub.disconnect().await;

    let (mut sub, resumed) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "sub")).await;
    assert!(resumed.session_present);
    publisher.publish_qos1("t", b"fresh").await;
    let next = sub.expect_publish().await;
    assert_eq!(
        (&next.payload[..], next.dup),
        (&b"fresh"[..], false),
        "acknowledged message resent"
    );
}

#[tokio::test]
async fn qos1_redelivered_with_dup_on_resume_v311() {
    qos1_redelivery(V311).await;
}

#[tokio::test]
async fn qos1_redelivered_with_dup_on_resume_v5() {
    qos1_redelivery(V50).await;
}

/// QoS 2 on resume: a PUBLISH not yet PUBREC'd is resent with DUP; one already PUBREC'd is
/// continued with PUBREL, not resent (`MQTT-4.4.0-1`).
async fn qos2_redelivery(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let (mut sub, _) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "sub")).await;
    sub.subscribe("t", QoS::ExactlyOnce).await;
    let mut publisher = RawClient::connected(b.addr, version, "pub").await;
    publisher
        .publish(publish_packet("t", QoS::ExactlyOnce, false, 1, b"recd"))
        .await;
    publisher
        .publish(publish_packet("t", QoS::ExactlyOnce, false, 2, b"unrecd"))
        .await;
    let p1 = sub.expect_publish().await;
    let p2 = sub.expect_publish().await;
    assert_eq!(
        (&p1.payload[..], &p2.payload[..]),
        (&b"recd"[..], &b"unrecd"[..])
    );
    sub.send(&Packet::PubRec(ack(p1.packet_id)))
        .await
        .expect("socket I/O");
    match sub.recv().await {
        Packet::PubRel(a) => assert_eq!(a.packet_id, p1.packet_id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    drop(sub);

    let (mut sub, resumed) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "sub")).await;
    assert!(resumed.session_present);
    let mut saw_pubrel = false;
    let mut saw_publish = false;
    for _ in 0..2 {
        match sub.recv().await {
            Packet::PubRel(a) => {
                assert_eq!(a.packet_id, p1.packet_id);
                saw_pubrel = true;
            }
            Packet::Publish(p) => {
                assert_eq!(
                    (p.packet_id, p.dup, &p.payload[..]),
                    (p2.packet_id, true, &b"unrecd"[..])
                );
                saw_publish = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_pubrel && saw_publish);
    sub.send(&Packet::PubComp(ack(p1.packet_id)))
        .await
        .expect("socket I/O");
    sub.send(&Packet::PubRec(ack(p2.packet_id)))
        .await
        .expect("socket I/O");
    match sub.recv().await {
        Packet::PubRel(a) => assert_eq!(a.packet_id, p2.packet_id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    sub.send(&Packet::PubComp(ack(p2.packet_id)))
        .await
        .expect("socket I/O");
    sub.expect_silence(QUIET).await;
}

#[tokio::test]
async fn qos2_resume_resends_pubrel_and_unreceived_publish_v311() {
    qos2_redelivery(V311).await;
}

#[tokio::test]
async fn qos2_resume_resends_pubrel_and_unreceived_publish_v5() {
    qos2_redelivery(V50).await;
}

/// A PUBREC for a packet id that carries a QoS 1 message is not a QoS 2 exchange: the server
/// answers PUBREL 0x92 (Packet Identifier not found) and still waits for the PUBACK, so the
/// message is redelivered on resume.
#[tokio::test]
async fn pubrec_for_a_qos1_message_does_not_complete_it_v5() {
    let b = DevBroker::start().await;
    let (mut sub, _) = RawClient::connect_with(b.addr, persistent_connect_packet(V50, "sub")).await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    publisher.publish_qos1("t", b"q1").await;
    let p = sub.expect_publish().await;
    sub.send(&Packet::PubRec(ack(p.packet_id)))
        .await
        .expect("socket I/O");
    match sub.recv().await {
        Packet::PubRel(a) => {
            assert_eq!(
                (a.packet_id, a.reason),
                (p.packet_id, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
            );
        }
        other => panic!("expected PUBREL, got {other:?}"),
    }
    drop(sub);
    let (mut sub, _) = RawClient::connect_with(b.addr, persistent_connect_packet(V50, "sub")).await;
    let again = sub.expect_publish().await;
    assert_eq!(
        (again.packet_id, again.dup, again.qos),
        (p.packet_id, true, QoS::AtLeastOnce)
    );
}

/// On resume, only messages that were sent before carry DUP: a message queued while the
/// client was away is sent for the first time, with DUP 0 (`MQTT-3.3.1-2`) and its own
/// packet id, after the resent one.
async fn queued_messages_are_not_duplicates(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let (mut sub, _) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "sub")).await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, version, "pub").await;
    publisher.publish_qos1("t", b"sent").await;
    let sent = sub.expect_publish().await;
    sub.disconnect().await;
    publisher.publish_qos1("t", b"queued").await;

    let (mut sub, _) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "sub")).await;
    let again = sub.expect_publish_acked().await;
    assert_eq!(
        (&again.payload[..], again.dup, again.packet_id),
        (&b"sent"[..], true, sent.packet_id)
    );
    let queued = sub.expect_publish_acked().await;
    assert_eq!((&queued.payload[..], queued.dup), (&b"queued"[..], false));
    assert_ne!(queued.packet_id, sent.packet_id);
}

#[tokio::test]
async fn queued_messages_are_not_duplicates_v311() {
    queued_messages_are_not_duplicates(V311).await;
}

#[tokio::test]
async fn queued_messages_are_not_duplicates_v5() {
    queued_messages_are_not_duplicates(V50).await;
}

/// The receiver's QoS 2 state is part of the session: a PUBLISH resent after reconnecting,
/// before PUBREL, is acknowledged but not delivered again (`MQTT-4.3.3-9`, 4.4).
async fn qos2_inbound_state_survives_reconnect(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, V50, "sub").await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let (mut publisher, _) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "pub")).await;
    let mut p = publish_packet("t", QoS::ExactlyOnce, false, 9, b"once");
    publisher
        .send(&Packet::Publish(p.clone()))
        .await
        .expect("socket I/O");
    match publisher.recv().await {
        Packet::PubRec(a) => assert_eq!(a.packet_id, 9),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    publisher.disconnect().await;

    let (mut publisher, ack) =
        RawClient::connect_with(b.addr, persistent_connect_packet(version, "pub")).await;
    assert!(ack.session_present);
    p.dup = true;
    let reason = publisher.publish(p).await;
    assert_eq!(reason, ReasonCode::SUCCESS);
    publisher.publish_qos1("t", b"marker").await;
    assert_eq!(&sub.expect_publish_acked().await.payload[..], b"once");
    assert_eq!(
        &sub.expect_publish_acked().await.payload[..],
        b"marker",
        "QoS 2 message delivered twice"
    );
}

#[tokio::test]
async fn qos2_inbound_state_survives_reconnect_v311() {
    qos2_inbound_state_survives_reconnect(V311).await;
}

#[tokio::test]
async fn qos2_inbound_state_survives_reconnect_v5() {
    qos2_inbound_state_survives_reconnect(V50).await;
}

/// The server's Receive Maximum (CONNACK) bounds the QoS 2 messages a client may have
/// awaiting PUBREL; one more is DISCONNECT 0x93 (`MQTT-3.3.4-7`... 3.3.4, 4.9).
#[tokio::test]
async fn client_exceeding_server_receive_maximum_disconnects_0x93_v5() {
    let quotas = tenantmq_common::quota::Quotas {
        max_inflight: 2,
        ..tenantmq_common::quota::Quotas::unlimited()
    };
    let b = DevBroker::start_with(quotas, tenantmq_gateway::GatewayConfig::default()).await;
    let (mut c, ack) = RawClient::connect_with(b.addr, connect_packet(V50, "c")).await;
    assert_eq!(ack.properties.receive_maximum, Some(2));
    for id in 1..=3u16 {
        c.send(&Packet::Publish(publish_packet(
            "t",
            QoS::ExactlyOnce,
            false,
            id,
            b"x",
        )))
        .await
        .expect("socket I/O");
    }
    for id in 1..=2u16 {
        match c.recv().await {
            Packet::PubRec(a) => assert_eq!(a.packet_id, id),
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    assert_eq!(
        c.expect_closed().await,
        Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
}

/// Subscribing again to the same filter replaces the subscription (`MQTT-3.8.4-3`): the new
/// QoS applies, and there is still one subscription (one copy).
async fn resubscribe_replaces(version: ProtocolVersion) {
    let b = DevBroker::start().await;
    let mut sub = RawClient::connected(b.addr, version, "sub").await;
    sub.subscribe("t", QoS::ExactlyOnce).await;
    sub.subscribe("t", QoS::AtMostOnce).await;
    let mut publisher = RawClient::connected(b.addr, version, "pub").await;
    publisher
        .publish(publish_packet("t", QoS::ExactlyOnce, false, 1, b"1"))
        .await;
    publisher
        .publish(publish_packet("t", QoS::ExactlyOnce, false, 2, b"2"))
        .await;
    for payload in [b"1", b"2"] {
        let p = sub.expect_publish().await;
        assert_eq!((&p.payload[..], p.qos), (&payload[..], QoS::AtMostOnce));
    }
}

#[tokio::test]
async fn resubscribe_replaces_the_granted_qos_v311() {
    resubscribe_replaces(V311).await;
}

#[tokio::test]
async fn resubscribe_replaces_the_granted_qos_v5() {
    resubscribe_replaces(V50).await;
}

/// Receive Maximum holds on a resumed session too (`MQTT-3.3.4-9`): a client that had five
/// QoS 1 messages unacknowledged and comes back with Receive Maximum 2 gets two of them
/// resent (same ids, DUP, original order, `MQTT-4.6.0-1`), then one more per PUBACK.
#[tokio::test]
async fn receive_maximum_applies_to_resent_messages_v5() {
    let b = DevBroker::start().await;
    let (mut sub, _) = RawClient::connect_with(b.addr, persistent_connect_packet(V50, "sub")).await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, V50, "pub").await;
    for i in 0..5u8 {
        publisher
            .publish(publish_packet("t", QoS::AtLeastOnce, false, 1, &[i]))
            .await;
    }
    let mut ids = Vec::new();
    for i in 0..5u8 {
        let p = sub.expect_publish().await;
        assert_eq!(&p.payload[..], &[i]);
        ids.push(p.packet_id);
    }
    drop(sub);

    let mut c = persistent_connect_packet(V50, "sub");
    c.properties.receive_maximum = Some(2);
    let (mut sub, connack) = RawClient::connect_with(b.addr, c).await;
    assert!(connack.session_present);
    let mut resent = Vec::new();
    for _ in 0..2 {
        let p = sub.expect_publish().await;
        assert!(p.dup);
        resent.push((p.packet_id, p.payload[0]));
    }
    assert_eq!(resent, vec![(ids[0], 0), (ids[1], 1)]);
    sub.expect_silence(QUIET).await;
    for (i, id) in ids.iter().enumerate() {
        sub.send(&Packet::PubAck(ack(*id)))
            .await
            .expect("socket I/O");
        if i + 2 < ids.len() {
            let p = sub.expect_publish().await;
            assert_eq!(
                (p.packet_id, p.payload[0], p.dup),
                (ids[i + 2], (i + 2) as u8, true)
            );
        }
    }
    sub.expect_silence(QUIET).await;
}
