//! Client identifiers (MQTT 5 3.1.3.1, 3.2.2.3.7; 3.1.1 3.1.3.1): an empty one gets a
//! server-assigned identifier in MQTT 5; MQTT 3.1.1 accepts it only with Clean Session 1.

use tenantmq_codec::{ProtocolVersion, QoS, ReasonCode};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS3, V3, v3_options};
use tenantmq_e2e::raw::{RawClient, connect_packet, persistent_connect_packet};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

/// MQTT 5, empty client id: CONNACK carries an Assigned Client Identifier (`MQTT-3.1.3-7`,
/// `MQTT-3.2.2-16`), unique per connection, and it names a real session: reconnecting with
/// it and Clean Start 0 resumes that session.
#[tokio::test]
async fn empty_client_id_gets_an_assigned_identifier_v5() {
    let b = DevBroker::start().await;
    let (mut c, ack) = RawClient::connect_with(b.addr, persistent_connect_packet(V50, "")).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    let assigned = ack
        .properties
        .assigned_client_identifier
        .expect("Assigned Client Identifier");
    assert!(!assigned.is_empty());
    c.subscribe("t", QoS::AtLeastOnce).await;
    c.disconnect().await;

    let (_other, ack2) = RawClient::connect_with(b.addr, connect_packet(V50, "")).await;
    let other_id = ack2
        .properties
        .assigned_client_identifier
        .expect("Assigned Client Identifier");
    assert_ne!(other_id, assigned, "assigned identifiers must be unique");

    let (mut c, ack) =
        RawClient::connect_with(b.addr, persistent_connect_packet(V50, &assigned)).await;
    assert!(
        ack.session_present,
        "the assigned identifier's session resumes"
    );
    assert_eq!(
        ack.properties.assigned_client_identifier, None,
        "only for an empty id"
    );
    c.publish_qos1("t", b"kept subscription").await;
    assert_eq!(&c.expect_publish().await.payload[..], b"kept subscription");
}

/// A client id that is not empty is used as given: no Assigned Client Identifier.
#[tokio::test]
async fn given_client_id_is_not_replaced_v5() {
    let b = DevBroker::start().await;
    let (_c, ack) = RawClient::connect_with(b.addr, connect_packet(V50, "mine")).await;
    assert_eq!(ack.properties.assigned_client_identifier, None);
}

/// MQTT 3.1.1, empty client id with Clean Session 0: CONNACK return code 2 (identifier
/// rejected) and close (`MQTT-3.1.3-8`).
#[tokio::test]
async fn empty_client_id_without_clean_session_is_rejected_v311() {
    let b = DevBroker::start().await;
    let (mut c, ack) = RawClient::connect_with(b.addr, persistent_connect_packet(V311, "")).await;
    // The codec maps 3.1.1 return code 2 to 0x85.
    assert_eq!(ack.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(!ack.session_present);
    assert_eq!(c.expect_closed().await, None);
}

/// MQTT 3.1.1, empty client id with Clean Session 1: accepted (`MQTT-3.1.3-6`), and works.
#[tokio::test]
async fn empty_client_id_with_clean_session_is_accepted_v311() {
    let b = DevBroker::start().await;
    let (mut c, ack) = RawClient::connect_with(b.addr, connect_packet(V311, "")).await;
    assert_eq!(
        (ack.reason, ack.session_present),
        (ReasonCode::SUCCESS, false)
    );
    c.subscribe("t", QoS::AtLeastOnce).await;
    c.publish_qos1("t", b"x").await;
    assert_eq!(&c.expect_publish().await.payload[..], b"x");

    // Two such clients do not take each other over.
    let mut rumqttc_client = V3::connect_with(v3_options(b.addr, "")).await;
    rumqttc_client.subscribe("t", QoS3::AtLeastOnce).await;
    c.publish_qos1("t", b"both").await;
    assert_eq!(&c.expect_publish().await.payload[..], b"both");
    assert_eq!(&rumqttc_client.recv().await.payload[..], b"both");
}

/// An identifier longer than the engine accepts (256 bytes; the specification requires only
/// 23) is refused with 0x85 (MQTT 5) / return code 2 (3.1.1) (`MQTT-3.1.3-4`... 3.1.3.1).
#[tokio::test]
async fn overlong_client_id_is_rejected() {
    let b = DevBroker::start().await;
    let long = "x".repeat(300);
    for version in [V50, V311] {
        let (mut c, ack) = RawClient::connect_with(b.addr, connect_packet(version, &long)).await;
        assert_eq!(
            ack.reason,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            "{version:?}"
        );
        assert_eq!(c.expect_closed().await, None);
    }
}
