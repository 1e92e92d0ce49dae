//! Limits the tenant's engine enforces (issue 6, items 1 and 2), on both protocol versions:
//! topic levels, retained count and bytes, subscriptions per client, the offline queue,
//! inflight, maximum QoS, retain / wildcard / shared-subscription availability, and what the
//! MQTT 5 CONNACK announces. Each refusal is counted for the tenant and reason.
//!
//! MQTT 3.1.1 cannot carry a reason: a refused QoS 1/2 PUBLISH is acknowledged positively and
//! dropped (`MQTT-3.3.5-2`), a refused filter gets SUBACK 0x80, and what MQTT 5 answers with
//! DISCONNECT closes the connection.

use tenantmq_codec::{
    Packet, ProtocolVersion, QoS, ReasonCode, Subscribe, SubscribeFilter, SubscriptionOptions,
};
use tenantmq_common::quota::Quotas;
use tenantmq_common::usage::RejectReason;
use tenantmq_e2e::raw::{QUIET, RawClient, opts, publish_packet, will};
use tenantmq_e2e::tenants::{TenantsBroker, tenant_connect};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

/// A marker published after the messages under test: a subscriber that sees it has seen
/// everything delivered before it.
const END: &str = "end";

/// Connects `id` of tenant `t` and asserts success.
async fn client(b: &TenantsBroker, version: ProtocolVersion, id: &str) -> RawClient {
    let (c, ack) = RawClient::connect_with(b.addr, tenant_connect(version, "t", id)).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK of {id}");
    c
}

/// What a refusal of `v5` looks like to a client of `version` in PUBACK/PUBREC.
fn puback(version: ProtocolVersion, v5: ReasonCode) -> ReasonCode {
    match version {
        ProtocolVersion::V5 => v5,
        ProtocolVersion::V311 => ReasonCode::SUCCESS,
    }
}

/// What a refusal of `v5` looks like to a client of `version` in SUBACK.
fn suback(version: ProtocolVersion, v5: ReasonCode) -> ReasonCode {
    match version {
        ProtocolVersion::V5 => v5,
        ProtocolVersion::V311 => ReasonCode::UNSPECIFIED_ERROR,
    }
}

/// Payloads `watcher` receives until the [`END`] marker.
async fn received_until_end(watcher: &mut RawClient) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let p = watcher.expect_publish_acked().await;
        if p.topic == END {
            return got;
        }
        got.push(format!(
            "{}={}",
            p.topic,
            String::from_utf8_lossy(&p.payload)
        ));
    }
}

async fn end(publisher: &mut RawClient) {
    publisher.publish_qos1(END, b"").await;
}

/// A topic name with more levels than `max_topic_levels` is refused: PUBACK/PUBREC 0x97
/// (3.1.1: acknowledged, dropped), QoS 0 dropped, never delivered; a filter with too many
/// levels gets SUBACK 0x97 (3.1.1: 0x80).
async fn topic_levels(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        max_topic_levels: 3,
        ..Quotas::unlimited()
    })
    .await;
    let mut watcher = client(&b, V50, "watcher").await;
    watcher.subscribe("#", QoS::AtLeastOnce).await;
    let mut c = client(&b, version, "c").await;
    let deep = "a/b/c/d";
    for (qos, id) in [(QoS::AtLeastOnce, 1), (QoS::ExactlyOnce, 2)] {
        let reason = c
            .publish(publish_packet(deep, qos, false, id, b"deep"))
            .await;
        assert_eq!(
            reason,
            puback(version, ReasonCode::QUOTA_EXCEEDED),
            "{qos:?}"
        );
    }
    c.publish(publish_packet(deep, QoS::AtMostOnce, false, 0, b"deep"))
        .await;
    c.publish_qos1("a/b/c", b"three").await;
    end(&mut c).await;
    assert_eq!(received_until_end(&mut watcher).await, vec!["a/b/c=three"]);

    let filters = [
        ("a/b/c/d", opts(QoS::AtMostOnce)),
        ("a/+/c/#", opts(QoS::AtMostOnce)),
        ("a/+/#", opts(QoS::AtMostOnce)),
        ("$share/g/a/b/c/d", opts(QoS::AtMostOnce)),
    ];
    let reasons = c.subscribe_with(7, &filters, None).await;
    let refused = suback(version, ReasonCode::QUOTA_EXCEEDED);
    assert_eq!(
        reasons,
        vec![refused, refused, ReasonCode::GRANTED_QOS_0, refused]
    );
    // Three PUBLISH and three filters.
    b.wait_rejections("t", RejectReason::TopicLevels, 6).await;
}

#[tokio::test]
async fn topic_levels_0x97_v5() {
    topic_levels(V50).await;
}

#[tokio::test]
async fn topic_levels_dropped_and_0x80_v311() {
    topic_levels(V311).await;
}

/// The retained messages a new subscriber of `r/#` gets, sorted.
async fn retained_now(b: &TenantsBroker) -> Vec<String> {
    let mut probe = client(b, V50, "probe").await;
    // One SUBSCRIBE: the retained messages follow its SUBACK.
    let o = opts(QoS::AtLeastOnce);
    probe.subscribe_with(1, &[("r/#", o), (END, o)], None).await;
    let mut publisher = client(b, V50, "probe-end").await;
    end(&mut publisher).await;
    let mut got = received_until_end(&mut probe).await;
    got.sort();
    probe.disconnect().await;
    got
}

/// A retained PUBLISH beyond `max_retained_messages` is refused entirely — 0x97 (3.1.1:
/// acknowledged), not stored and not delivered. Replacing a stored topic fits; deleting with an
/// empty payload always works and makes room.
async fn retained_count(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        max_retained_messages: 2,
        ..Quotas::unlimited()
    })
    .await;
    let mut live = client(&b, V50, "live").await;
    live.subscribe("r/#", QoS::AtLeastOnce).await;
    live.subscribe(END, QoS::AtLeastOnce).await;
    let mut c = client(&b, version, "c").await;
    let retain =
        |topic, payload: &'static [u8]| publish_packet(topic, QoS::AtLeastOnce, true, 1, payload);
    assert!(!c.publish(retain("r/1", b"one")).await.is_error());
    assert!(!c.publish(retain("r/2", b"two")).await.is_error());
    assert_eq!(
        c.publish(retain("r/3", b"three")).await,
        puback(version, ReasonCode::QUOTA_EXCEEDED)
    );
    assert!(
        !c.publish(retain("r/1", b"uno")).await.is_error(),
        "replacing fits"
    );
    end(&mut c).await;
    assert_eq!(
        received_until_end(&mut live).await,
        vec!["r/1=one", "r/2=two", "r/1=uno"],
        "the refused message was delivered"
    );
    assert_eq!(retained_now(&b).await, vec!["r/1=uno", "r/2=two"]);

    assert_ne!(
        c.publish(retain("r/1", b"")).await,
        ReasonCode::QUOTA_EXCEEDED
    );
    assert!(!c.publish(retain("r/3", b"three")).await.is_error());
    assert_eq!(retained_now(&b).await, vec!["r/2=two", "r/3=three"]);
    b.wait_rejections("t", RejectReason::RetainedQuota, 1).await;
}

#[tokio::test]
async fn retained_count_0x97_v5() {
    retained_count(V50).await;
}

#[tokio::test]
async fn retained_count_dropped_v311() {
    retained_count(V311).await;
}

/// `max_retained_bytes` counts topic and payload of every retained message; a message that
/// would go beyond it is refused entirely, a smaller replacement fits.
async fn retained_bytes(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        max_retained_bytes: 20,
        ..Quotas::unlimited()
    })
    .await;
    let mut c = client(&b, version, "c").await;
    let retain =
        |topic, payload: &'static [u8]| publish_packet(topic, QoS::AtLeastOnce, true, 1, payload);
    // 3 + 10 bytes.
    assert!(!c.publish(retain("r/1", b"0123456789")).await.is_error());
    assert_eq!(
        c.publish(retain("r/2", b"0123456789")).await,
        puback(version, ReasonCode::QUOTA_EXCEEDED)
    );
    assert!(!c.publish(retain("r/1", b"01")).await.is_error());
    assert!(!c.publish(retain("r/2", b"0123456789")).await.is_error());
    assert_eq!(retained_now(&b).await, vec!["r/1=01", "r/2=0123456789"]);
    b.wait_rejections("t", RejectReason::RetainedQuota, 1).await;
}

#[tokio::test]
async fn retained_bytes_0x97_v5() {
    retained_bytes(V50).await;
}

#[tokio::test]
async fn retained_bytes_dropped_v311() {
    retained_bytes(V311).await;
}

/// A retained will beyond the retained quota is not published at all, like a retained
/// PUBLISH (nobody is left to tell).
#[tokio::test]
async fn retained_will_beyond_quota_is_refused_v5() {
    let b = TenantsBroker::one(Quotas {
        max_retained_messages: 1,
        ..Quotas::unlimited()
    })
    .await;
    let mut watcher = client(&b, V50, "watcher").await;
    watcher.subscribe("r/#", QoS::AtLeastOnce).await;
    watcher.subscribe(END, QoS::AtLeastOnce).await;
    let mut c = client(&b, V50, "c").await;
    c.publish(publish_packet("r/1", QoS::AtLeastOnce, true, 1, b"one"))
        .await;
    let mut connect = tenant_connect(V50, "t", "dying");
    connect.will = Some(will("r/will", b"gone", QoS::AtLeastOnce, true));
    let (mut dying, _) = RawClient::connect_with(b.addr, connect).await;
    dying
        .send_bytes(&[0xE0, 0x01, 0x04])
        .await
        .expect("DISCONNECT with will");
    drop(dying);
    tokio::time::sleep(QUIET).await;
    end(&mut c).await;
    assert_eq!(received_until_end(&mut watcher).await, vec!["r/1=one"]);
    b.wait_rejections("t", RejectReason::RetainedQuota, 1).await;
}

/// `max_subscriptions_per_client`: filters beyond it get SUBACK 0x97 (3.1.1: 0x80); a repeated
/// filter replaces its subscription and never counts.
async fn subscriptions_per_client(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        max_subscriptions_per_client: 2,
        ..Quotas::unlimited()
    })
    .await;
    let mut c = client(&b, version, "c").await;
    let o = opts(QoS::AtLeastOnce);
    let reasons = c
        .subscribe_with(1, &[("a", o), ("b", o), ("c", o)], None)
        .await;
    let refused = suback(version, ReasonCode::QUOTA_EXCEEDED);
    assert_eq!(reasons, vec![ReasonCode(1), ReasonCode(1), refused]);
    assert_eq!(
        c.subscribe_with(2, &[("a", opts(QoS::AtMostOnce))], None)
            .await,
        vec![ReasonCode(0)]
    );
    c.unsubscribe(3, "b").await;
    assert_eq!(
        c.subscribe_with(4, &[("c", o)], None).await,
        vec![ReasonCode(1)]
    );
    b.wait_rejections("t", RejectReason::SubscriptionQuota, 1)
        .await;
}

#[tokio::test]
async fn subscriptions_per_client_0x97_v5() {
    subscriptions_per_client(V50).await;
}

#[tokio::test]
async fn subscriptions_per_client_0x80_v311() {
    subscriptions_per_client(V311).await;
}

/// `max_offline_queue_len` and `max_offline_queue_bytes`: an offline persistent session keeps
/// QoS 1/2 messages up to the limit (here three either way); newer ones are dropped (and
/// counted), so the device finds the oldest, in order.
async fn offline_queue(version: ProtocolVersion, quotas: Quotas) {
    let b = TenantsBroker::one(quotas).await;
    let mut persistent = tenant_connect(version, "t", "sub");
    persistent.clean_start = false;
    if version == V50 {
        persistent.properties.session_expiry_interval = Some(60);
    }
    let (mut sub, _) = RawClient::connect_with(b.addr, persistent.clone()).await;
    sub.subscribe("q", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let mut publisher = client(&b, V50, "pub").await;
    for i in 0..5u8 {
        publisher.publish_qos1("q", &[b'0' + i]).await;
    }
    let (mut sub, ack) = RawClient::connect_with(b.addr, persistent).await;
    assert!(ack.session_present);
    for expected in [b"0", b"1", b"2"] {
        assert_eq!(&sub.expect_publish_acked().await.payload[..], expected);
    }
    sub.expect_silence(QUIET).await;
    b.wait_rejections("t", RejectReason::QueueFull, 2).await;
}

/// Three messages by count.
fn three_messages() -> Quotas {
    Quotas {
        max_offline_queue_len: 3,
        ..Quotas::unlimited()
    }
}

/// Three messages by size: each is 2 bytes of topic (`q`) and payload.
fn six_bytes() -> Quotas {
    Quotas {
        max_offline_queue_bytes: 6,
        ..Quotas::unlimited()
    }
}

#[tokio::test]
async fn offline_queue_keeps_the_oldest_v5() {
    offline_queue(V50, three_messages()).await;
}

#[tokio::test]
async fn offline_queue_keeps_the_oldest_v311() {
    offline_queue(V311, three_messages()).await;
}

#[tokio::test]
async fn offline_queue_bytes_keep_the_oldest_v5() {
    offline_queue(V50, six_bytes()).await;
}

#[tokio::test]
async fn offline_queue_bytes_keep_the_oldest_v311() {
    offline_queue(V311, six_bytes()).await;
}

/// `max_inflight` is the Receive Maximum: incoming QoS 2 messages awaiting PUBREL beyond it
/// end the connection (MQTT 5: DISCONNECT 0x93, `MQTT-3.3.4-8`; 3.1.1, which has no Receive
/// Maximum to announce, is closed), counted.
async fn inflight(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        max_inflight: 2,
        ..Quotas::unlimited()
    })
    .await;
    let mut c = client(&b, version, "c").await;
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
    let expected = (version == V50).then_some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
    assert_eq!(c.expect_closed().await, expected);
    b.wait_rejections("t", RejectReason::Inflight, 1).await;
}

#[tokio::test]
async fn inflight_beyond_receive_maximum_0x93_v5() {
    inflight(V50).await;
}

#[tokio::test]
async fn inflight_beyond_receive_maximum_closed_v311() {
    inflight(V311).await;
}

/// `maximum_qos` 1: subscriptions are granted at most QoS 1; a PUBLISH at QoS 2 ends the
/// connection (MQTT 5: DISCONNECT 0x9B, `MQTT-3.2.2-11`; 3.1.1: closed), and so does a will at
/// QoS 2 at CONNECT (CONNACK 0x9B; 3.1.1: return code 3).
async fn maximum_qos(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        maximum_qos: 1,
        ..Quotas::unlimited()
    })
    .await;
    let mut c = client(&b, version, "c").await;
    assert_eq!(
        c.subscribe_with(1, &[("t", opts(QoS::ExactlyOnce))], None)
            .await,
        vec![ReasonCode::GRANTED_QOS_1]
    );
    c.publish_qos1("t", b"fine").await;
    assert_eq!(c.expect_publish_acked().await.qos, QoS::AtLeastOnce);
    c.send(&Packet::Publish(publish_packet(
        "t",
        QoS::ExactlyOnce,
        false,
        2,
        b"x",
    )))
    .await
    .expect("socket I/O");
    let expected = (version == V50).then_some(ReasonCode::QOS_NOT_SUPPORTED);
    assert_eq!(c.expect_closed().await, expected);

    let mut connect = tenant_connect(version, "t", "w");
    connect.will = Some(will("w", b"x", QoS::ExactlyOnce, false));
    let (_, ack) = RawClient::connect_with(b.addr, connect).await;
    let expected = match version {
        ProtocolVersion::V5 => ReasonCode::QOS_NOT_SUPPORTED,
        ProtocolVersion::V311 => ReasonCode::SERVER_UNAVAILABLE,
    };
    assert_eq!(ack.reason, expected);
    b.wait_rejections("t", RejectReason::QosNotSupported, 2)
        .await;
}

#[tokio::test]
async fn maximum_qos_0x9b_v5() {
    maximum_qos(V50).await;
}

#[tokio::test]
async fn maximum_qos_closed_v311() {
    maximum_qos(V311).await;
}

/// `retain_available` false: a retained PUBLISH ends the connection (MQTT 5: DISCONNECT 0x9A,
/// `MQTT-3.2.2-14`; 3.1.1: closed).
async fn retain_unavailable(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        retain_available: false,
        ..Quotas::unlimited()
    })
    .await;
    let mut c = client(&b, version, "c").await;
    c.publish_qos1("t", b"not retained").await;
    c.send(&Packet::Publish(publish_packet(
        "t",
        QoS::AtLeastOnce,
        true,
        2,
        b"x",
    )))
    .await
    .expect("socket I/O");
    let expected = (version == V50).then_some(ReasonCode::RETAIN_NOT_SUPPORTED);
    assert_eq!(c.expect_closed().await, expected);
    b.wait_rejections("t", RejectReason::RetainNotSupported, 1)
        .await;
}

#[tokio::test]
async fn retain_unavailable_0x9a_v5() {
    retain_unavailable(V50).await;
}

#[tokio::test]
async fn retain_unavailable_closed_v311() {
    retain_unavailable(V311).await;
}

/// `max_subscriptions_per_tenant` counts every session's subscriptions together: the one
/// beyond it gets SUBACK 0x97 (3.1.1: 0x80) whichever client asks; a repeated filter replaces
/// its subscription and does not count; UNSUBSCRIBE and a session's end give room back.
async fn tenant_subscription_quota(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        max_subscriptions_per_tenant: 3,
        ..Quotas::unlimited()
    })
    .await;
    let over = suback(version, ReasonCode::QUOTA_EXCEEDED);
    let o = SubscriptionOptions::default();
    let mut c1 = client(&b, version, "c1").await;
    let mut c2 = client(&b, version, "c2").await;
    let granted = c1.subscribe_with(1, &[("a", o), ("b", o)], None).await;
    assert_eq!(granted, vec![ReasonCode::GRANTED_QOS_0; 2]);
    let reasons = c2.subscribe_with(1, &[("c", o), ("d", o)], None).await;
    assert_eq!(reasons, vec![ReasonCode::GRANTED_QOS_0, over]);
    b.wait_rejections("t", RejectReason::SubscriptionQuota, 1)
        .await;
    // Subscribing to a filter again replaces the subscription: granted, nothing added.
    let again = c1.subscribe_with(2, &[("a", o)], None).await;
    assert_eq!(again, vec![ReasonCode::GRANTED_QOS_0]);
    assert_eq!(c2.subscribe_with(2, &[("d", o)], None).await, vec![over]);
    // UNSUBSCRIBE gives one back.
    c1.unsubscribe(3, "a").await;
    assert_eq!(
        c2.subscribe_with(3, &[("d", o), ("e", o)], None).await,
        vec![ReasonCode::GRANTED_QOS_0, over]
    );
    // So does the end of a session (clean start, no expiry): c1's "b" goes with it.
    c1.disconnect().await;
    let mut c3 = client(&b, version, "c3").await;
    let granted = c3.subscribe_with(1, &[("e", o)], None).await;
    assert_eq!(granted, vec![ReasonCode::GRANTED_QOS_0]);
    b.wait_rejections("t", RejectReason::SubscriptionQuota, 3)
        .await;
}

#[tokio::test]
async fn tenant_subscription_quota_0x97_v5() {
    tenant_subscription_quota(V50).await;
}

#[tokio::test]
async fn tenant_subscription_quota_0x80_v311() {
    tenant_subscription_quota(V311).await;
}

/// Wildcard and shared subscriptions unavailable: those filters get SUBACK 0xA2 and 0x9E
/// (3.1.1: 0x80); plain filters are granted in the same SUBSCRIBE.
async fn subscription_features_unavailable(version: ProtocolVersion) {
    let b = TenantsBroker::one(Quotas {
        wildcard_subscriptions_available: false,
        shared_subscriptions_available: false,
        ..Quotas::unlimited()
    })
    .await;
    let mut c = client(&b, version, "c").await;
    let o = SubscriptionOptions::default();
    let reasons = c
        .subscribe_with(
            1,
            &[("a/+", o), ("a/#", o), ("$share/g/a", o), ("a/b", o)],
            None,
        )
        .await;
    let wild = suback(version, ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
    let shared = suback(version, ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
    assert_eq!(reasons, vec![wild, wild, shared, ReasonCode::GRANTED_QOS_0]);
    b.wait_rejections("t", RejectReason::WildcardNotSupported, 2)
        .await;
    b.wait_rejections("t", RejectReason::SharedNotSupported, 1)
        .await;
}

#[tokio::test]
async fn wildcard_0xa2_and_shared_0x9e_unavailable_v5() {
    subscription_features_unavailable(V50).await;
}

#[tokio::test]
async fn wildcard_and_shared_unavailable_0x80_v311() {
    subscription_features_unavailable(V311).await;
}

/// Subscription identifiers unavailable (an MQTT 5 feature: 3.1.1 has no properties): CONNACK
/// says so, a SUBSCRIBE without one is still granted, and one carrying an identifier ends the
/// connection with DISCONNECT 0xA1 (3.2.2.3.12). Counted per tenant.
#[tokio::test]
async fn subscription_identifiers_unavailable_0xa1_v5() {
    let b = TenantsBroker::one(Quotas {
        subscription_identifiers_available: false,
        ..Quotas::unlimited()
    })
    .await;
    let (mut c, ack) = RawClient::connect_with(b.addr, tenant_connect(V50, "t", "c")).await;
    assert_eq!(
        ack.properties.subscription_identifiers_available,
        Some(false)
    );
    let o = SubscriptionOptions::default();
    let granted = c.subscribe_with(1, &[("a/b", o)], None).await;
    assert_eq!(granted, vec![ReasonCode::GRANTED_QOS_0]);
    let mut subscribe = Subscribe {
        packet_id: 2,
        filters: vec![SubscribeFilter {
            filter: "a/c".into(),
            options: o,
        }],
        properties: Default::default(),
    };
    subscribe.properties.subscription_identifier = Some(7);
    c.send(&Packet::Subscribe(subscribe))
        .await
        .expect("socket I/O");
    assert_eq!(
        c.expect_closed().await,
        Some(ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED)
    );
    b.wait_rejections("t", RejectReason::SubscriptionIdsNotSupported, 1)
        .await;
}

/// The MQTT 5 CONNACK announces every limit a client must respect: Receive Maximum, Maximum
/// QoS, Retain Available, Maximum Packet Size, Topic Alias Maximum, the availability of
/// wildcard, shared subscriptions and subscription identifiers, and — when the client asked for
/// more than the plan allows — the capped Session Expiry Interval and Server Keep Alive
/// (`MQTT-3.2.2-21`). Capping is counted as a session limit.
#[tokio::test]
async fn connack_announces_the_plan_v5() {
    let b = TenantsBroker::one(Quotas {
        max_inflight: 7,
        maximum_qos: 1,
        retain_available: false,
        max_message_bytes: 4096,
        max_topic_alias: 3,
        wildcard_subscriptions_available: false,
        shared_subscriptions_available: false,
        subscription_identifiers_available: false,
        max_session_expiry_secs: 60,
        max_keepalive_secs: 30,
        ..Quotas::unlimited()
    })
    .await;
    let mut connect = tenant_connect(V50, "t", "c");
    connect.keep_alive = 600;
    connect.properties.session_expiry_interval = Some(3600);
    let (_c, ack) = RawClient::connect_with(b.addr, connect).await;
    let p = &ack.properties;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert_eq!(p.receive_maximum, Some(7));
    assert_eq!(p.maximum_qos, Some(QoS::AtLeastOnce));
    assert_eq!(p.retain_available, Some(false));
    assert_eq!(p.maximum_packet_size, Some(4096));
    assert_eq!(p.topic_alias_maximum, Some(3));
    assert_eq!(p.wildcard_subscription_available, Some(false));
    assert_eq!(p.shared_subscription_available, Some(false));
    assert_eq!(p.subscription_identifiers_available, Some(false));
    assert_eq!(p.session_expiry_interval, Some(60));
    assert_eq!(p.server_keep_alive, Some(30));
    b.wait_rejections("t", RejectReason::SessionLimit, 2).await;

    // Within the plan: nothing capped, nothing announced for it.
    let mut connect = tenant_connect(V50, "t", "d");
    connect.keep_alive = 20;
    connect.properties.session_expiry_interval = Some(30);
    let (_d, ack) = RawClient::connect_with(b.addr, connect).await;
    assert_eq!(ack.properties.session_expiry_interval, None);
    assert_eq!(ack.properties.server_keep_alive, None);
}
