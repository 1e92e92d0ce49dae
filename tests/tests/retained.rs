//! Retained messages (MQTT 5 3.3.1.3, 3.8.3.1; 3.1.1 3.3.1.3): stored per topic, sent with
//! RETAIN=1 to new subscriptions as Retain Handling says, replaced by newer ones, deleted by
//! an empty payload; RETAIN on live delivery follows Retain As Published.

use std::collections::BTreeMap;

use rumqttc::v5::mqttbytes::v5::{Filter, RetainForwardRule};
use tenantmq_codec::{ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionOptions};
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::client::{QoS3, QoS5, V3, V5, topic5};
use tenantmq_e2e::raw::{RawClient, publish_packet};

/// Published (not retained) after the retained messages a subscription gets: a subscriber of
/// it that sees it has seen every retained message sent before.
const END: &str = "$end";

/// The lifecycle with 3.1.1 clients: retained messages arrive on subscribe with RETAIN=1 at
/// the lower of their QoS and the granted one (`MQTT-3.3.1-6`, `-8`); live deliveries to an
/// established subscription have RETAIN=0 (`MQTT-3.3.1-9`); a new retained message replaces
/// the old; an empty one deletes it (`MQTT-3.3.1-10`, `-11`) and is itself delivered live.
#[tokio::test]
async fn retained_lifecycle_v311() {
    let b = DevBroker::start().await;
    let mut publisher = V3::connect(b.addr, "pub").await;
    publisher
        .publish("r/1", QoS3::AtLeastOnce, true, "one")
        .await;
    publisher
        .publish("r/2", QoS3::AtMostOnce, true, "two")
        .await;
    publisher
        .publish("r/3", QoS3::ExactlyOnce, true, "three")
        .await;
    publisher
        .publish("r/4", QoS3::AtLeastOnce, false, "not retained")
        .await;

    let mut sub = V3::connect(b.addr, "sub").await;
    sub.subscribe("r/+", QoS3::AtLeastOnce).await;
    let mut got = BTreeMap::new();
    for _ in 0..3 {
        let p = sub.recv().await;
        assert!(p.retain, "retained message without RETAIN=1: {p:?}");
        got.insert(
            p.topic.clone(),
            (String::from_utf8_lossy(&p.payload).into_owned(), p.qos),
        );
    }
    let expected: BTreeMap<_, _> = [
        ("r/1".to_string(), ("one".to_string(), QoS3::AtLeastOnce)),
        ("r/2".to_string(), ("two".to_string(), QoS3::AtMostOnce)),
        ("r/3".to_string(), ("three".to_string(), QoS3::AtLeastOnce)),
    ]
    .into();
    assert_eq!(got, expected);

    publisher
        .publish("r/1", QoS3::AtLeastOnce, true, "uno")
        .await;
    let live = sub.recv().await;
    assert_eq!(
        (live.topic.as_str(), &live.payload[..], live.retain),
        ("r/1", &b"uno"[..], false)
    );

    publisher.publish("r/2", QoS3::AtLeastOnce, true, "").await;
    let deletion = sub.recv().await;
    assert_eq!(
        (deletion.topic.as_str(), deletion.payload.len()),
        ("r/2", 0),
        "deletion delivered live"
    );

    let mut late = V3::connect(b.addr, "late").await;
    late.subscribe("r/#", QoS3::AtLeastOnce).await;
    late.subscribe(END, QoS3::AtLeastOnce).await;
    publisher.publish(END, QoS3::AtLeastOnce, false, "").await;
    let mut topics = BTreeMap::new();
    loop {
        let p = late.recv().await;
        if p.topic == END {
            break;
        }
        topics.insert(
            p.topic.clone(),
            String::from_utf8_lossy(&p.payload).into_owned(),
        );
    }
    let expected: BTreeMap<_, _> = [
        ("r/1".to_string(), "uno".to_string()),
        ("r/3".to_string(), "three".to_string()),
    ]
    .into();
    assert_eq!(
        topics, expected,
        "r/1 replaced, r/2 deleted, r/4 never retained"
    );
}

#[tokio::test]
async fn retained_lifecycle_v5() {
    let b = DevBroker::start().await;
    let mut publisher = V5::connect(b.addr, "pub").await;
    publisher
        .publish("r/1", QoS5::AtLeastOnce, true, "one")
        .await;
    publisher
        .publish("r/2", QoS5::ExactlyOnce, true, "two")
        .await;
    publisher
        .publish("r/4", QoS5::AtLeastOnce, false, "not retained")
        .await;

    let mut sub = V5::connect(b.addr, "sub").await;
    sub.subscribe("r/+", QoS5::AtLeastOnce).await;
    let mut got = BTreeMap::new();
    for _ in 0..2 {
        let p = sub.recv().await;
        assert!(p.retain, "retained message without RETAIN=1: {p:?}");
        got.insert(
            topic5(&p),
            (String::from_utf8_lossy(&p.payload).into_owned(), p.qos),
        );
    }
    let expected: BTreeMap<_, _> = [
        ("r/1".to_string(), ("one".to_string(), QoS5::AtLeastOnce)),
        ("r/2".to_string(), ("two".to_string(), QoS5::AtLeastOnce)),
    ]
    .into();
    assert_eq!(got, expected);

    publisher
        .publish("r/1", QoS5::AtLeastOnce, true, "uno")
        .await;
    let live = sub.recv().await;
    assert_eq!(
        (&live.payload[..], live.retain),
        (&b"uno"[..], false),
        "Retain As Published is 0"
    );
    publisher.publish("r/2", QoS5::AtLeastOnce, true, "").await;
    assert_eq!(sub.recv().await.payload.len(), 0, "deletion delivered live");

    let mut late = V5::connect(b.addr, "late").await;
    late.subscribe("r/#", QoS5::AtLeastOnce).await;
    late.subscribe(END, QoS5::AtLeastOnce).await;
    publisher.publish(END, QoS5::AtLeastOnce, false, "").await;
    let first = late.recv().await;
    assert_eq!(
        (topic5(&first).as_str(), &first.payload[..], first.retain),
        ("r/1", &b"uno"[..], true)
    );
    assert_eq!(
        topic5(&late.recv().await),
        END,
        "r/2 deleted, r/4 never retained"
    );
}

fn rh(qos: QoS, retain_handling: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        retain_handling,
        ..Default::default()
    }
}

/// Subscribes `c` with `options` and returns the retained payloads sent for it: `c` then
/// publishes to [`END`] (which it subscribes to) and collects until that arrives.
async fn retained_for(c: &mut RawClient, options: SubscriptionOptions) -> Vec<Vec<u8>> {
    let reasons = c.subscribe_with(1, &[("rh/t", options)], None).await;
    assert_eq!(reasons, vec![ReasonCode::GRANTED_QOS_1]);
    c.publish_qos1(END, b"").await;
    let mut got = Vec::new();
    loop {
        let p = c.expect_publish_acked().await;
        if p.topic == END {
            return got;
        }
        assert!(p.retain);
        got.push(p.payload.to_vec());
    }
}

/// Retain Handling (`MQTT-3.3.1-9`, `-10`, `-11`): 0 sends the retained message at every
/// subscribe, 1 only when the subscription did not exist, 2 never.
#[tokio::test]
async fn retain_handling_0_1_2_v5() {
    let b = DevBroker::start().await;
    let mut publisher = RawClient::connected(b.addr, ProtocolVersion::V5, "pub").await;
    publisher
        .publish(publish_packet("rh/t", QoS::AtLeastOnce, true, 1, b"v"))
        .await;
    let v = vec![b"v".to_vec()];

    for (name, handling, first, again) in [
        ("0", RetainHandling::SendOnSubscribe, v.clone(), v.clone()),
        ("1", RetainHandling::SendIfNew, v.clone(), vec![]),
        ("2", RetainHandling::DoNotSend, vec![], vec![]),
    ] {
        let mut c = RawClient::connected(b.addr, ProtocolVersion::V5, name).await;
        c.subscribe(END, QoS::AtLeastOnce).await;
        let options = rh(QoS::AtLeastOnce, handling);
        assert_eq!(
            retained_for(&mut c, options).await,
            first,
            "retain handling {name}, new subscription"
        );
        assert_eq!(
            retained_for(&mut c, options).await,
            again,
            "retain handling {name}, re-subscribed"
        );
    }
}

/// Retain As Published (`MQTT-3.3.1-12`, `-13`): a live message published with RETAIN=1
/// keeps the flag for a subscription with the option and loses it for one without; a
/// message published with RETAIN=0 never gains it.
#[tokio::test]
async fn retain_as_published_v5() {
    let b = DevBroker::start().await;
    let mut keep = V5::connect(b.addr, "keep").await;
    let mut filter = Filter::new("rap/t", QoS5::AtLeastOnce);
    filter.preserve_retain = true;
    filter.retain_forward_rule = RetainForwardRule::Never;
    keep.subscribe_filter(filter, None).await;
    let mut clear = V5::connect(b.addr, "clear").await;
    let mut filter = Filter::new("rap/t", QoS5::AtLeastOnce);
    filter.retain_forward_rule = RetainForwardRule::Never;
    clear.subscribe_filter(filter, None).await;

    let mut publisher = V5::connect(b.addr, "pub").await;
    publisher
        .publish("rap/t", QoS5::AtLeastOnce, true, "retained")
        .await;
    publisher
        .publish("rap/t", QoS5::AtLeastOnce, false, "plain")
        .await;
    let (k1, k2) = (keep.recv().await, keep.recv().await);
    assert_eq!((&k1.payload[..], k1.retain), (&b"retained"[..], true));
    assert_eq!((&k2.payload[..], k2.retain), (&b"plain"[..], false));
    let (c1, c2) = (clear.recv().await, clear.recv().await);
    assert_eq!((&c1.payload[..], c1.retain), (&b"retained"[..], false));
    assert_eq!((&c2.payload[..], c2.retain), (&b"plain"[..], false));
}

/// Retained messages are found with the same matching rules as live ones, including the
/// `$` rule (`MQTT-4.7.2-1`) and "sport/#" matching "sport".
#[tokio::test]
async fn retained_matching_follows_wildcard_and_dollar_rules_v5() {
    let b = DevBroker::start().await;
    let mut publisher = RawClient::connected(b.addr, ProtocolVersion::V5, "pub").await;
    for t in [
        "sport",
        "sport/tennis",
        "sport/tennis/player1",
        "$foo",
        "$foo/bar",
        "/x",
    ] {
        publisher
            .publish(publish_packet(t, QoS::AtLeastOnce, true, 1, t.as_bytes()))
            .await;
    }
    let cases: [(&str, &[&str]); 7] = [
        (
            "#",
            &["/x", "sport", "sport/tennis", "sport/tennis/player1"],
        ),
        (
            "sport/#",
            &["sport", "sport/tennis", "sport/tennis/player1"],
        ),
        ("+", &["sport"]),
        ("+/+", &["/x", "sport/tennis"]),
        ("+/bar", &[]),
        ("$foo/#", &["$foo", "$foo/bar"]),
        ("sport/+/player1", &["sport/tennis/player1"]),
    ];
    for (i, (filter, expected)) in cases.iter().enumerate() {
        let mut c = RawClient::connected(b.addr, ProtocolVersion::V5, &format!("c{i}")).await;
        c.subscribe(END, QoS::AtLeastOnce).await;
        c.subscribe(filter, QoS::AtLeastOnce).await;
        c.publish_qos1(END, b"").await;
        let mut got = Vec::new();
        loop {
            let p = c.expect_publish_acked().await;
            if p.topic == END {
                break;
            }
            assert!(p.retain);
            got.push(p.topic.to_string());
        }
        got.sort();
        assert_eq!(got, *expected, "retained messages for {filter}");
    }
}
