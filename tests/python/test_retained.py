"""Retained messages (spec 3.3.1.3, `MQTT-3.3.1-5` to `-13`): stored per topic, replaced,
deleted by an empty payload, sent to new subscriptions with RETAIN set, and the MQTT 5
subscription options Retain Handling and Retain As Published."""

import pytest

from mqtt_client import V5, marker_sync, payloads, unique


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_late_subscriber_gets_the_retained_message(clients, version, qos):
    p = unique("ret")
    live = clients.connected(version)
    live.subscribe(f"{p}/#", 2)
    pub = clients.connected(version)
    pub.publish(f"{p}/r", b"retained", qos, retain=True)
    # A subscription that existed when the message was published gets it with RETAIN 0
    # (`MQTT-3.3.1-9`; MQTT 5 without Retain As Published, `MQTT-3.3.1-12`).
    got = live.wait_message(f"{p}/r")
    assert not got.retain

    late = clients.connected(version)
    late.subscribe(f"{p}/#", 2)
    m = late.wait_message(f"{p}/r")
    # Sent because of a new subscription: RETAIN 1 (`MQTT-3.3.1-8`), at the message's QoS
    # (the granted one is higher).
    assert (m.payload, m.retain, m.qos) == (b"retained", True, qos)
    marker_sync(pub, late, f"{p}/marker")
    assert len(late.received(f"{p}/r")) == 1


def test_retained_qos_is_capped_by_the_granted_qos(clients, version):
    p = unique("retq")
    pub = clients.connected(version)
    pub.publish(p, b"q2", 2, retain=True)
    late = clients.connected(version)
    late.subscribe(p, 1)
    m = late.wait_message(p)
    assert (m.qos, m.retain) == (1, True)


def test_newer_retained_message_replaces_and_empty_payload_deletes(clients, version):
    p = unique("retd")
    pub = clients.connected(version)
    pub.publish(f"{p}/a", b"v1", 1, retain=True)
    pub.publish(f"{p}/a", b"v2", 1, retain=True)
    pub.publish(f"{p}/keep", b"kept", 1, retain=True)
    pub.publish(f"{p}/gone", b"old", 1, retain=True)

    live = clients.connected(version)
    live.subscribe(f"{p}/gone", 1)
    live.wait_message(f"{p}/gone", b"old")
    # An empty retained message deletes the retained one (`MQTT-3.3.1-10`) and is itself
    # delivered to current subscribers like any message.
    pub.publish(f"{p}/gone", b"", 1, retain=True)
    assert live.wait_message(f"{p}/gone", b"").retain is False
    # A non-retained message leaves the retained one alone (`MQTT-3.3.1-12` in 3.1.1).
    pub.publish(f"{p}/keep", b"not retained", 1)

    late = clients.connected(version)
    late.subscribe(f"{p}/#", 1)
    marker_sync(pub, late, f"{p}/zz")
    got = {m.topic: m.payload for m in late.received() if m.retain}
    assert got == {f"{p}/a": b"v2", f"{p}/keep": b"kept"}


def test_wildcard_subscription_gets_every_matching_retained_message(clients, version):
    p = unique("retw")
    pub = clients.connected(version)
    topics = [f"{p}/a/x", f"{p}/b/x", f"{p}/b/y", f"{p}/c/x/deeper", p]
    for t in topics:
        pub.publish(t, t.encode(), 1, retain=True)
    late = clients.connected(version)
    late.subscribe(f"{p}/+/x", 1)
    marker_sync(pub, late, f"{p}/m/x")
    assert sorted(m.topic for m in late.received() if m.retain) == [f"{p}/a/x", f"{p}/b/x"]
    hash_sub = clients.connected(version)
    hash_sub.subscribe(f"{p}/#", 1)
    marker_sync(pub, hash_sub, f"{p}/m/x")
    assert sorted(m.topic for m in hash_sub.received() if m.retain) == sorted(topics)


def test_shared_subscriptions_get_no_retained_messages(clients, version):
    # MQTT 5 4.8.2: retained messages are not sent when a shared subscription is made.
    p = unique("rets")
    pub = clients.connected(version)
    pub.publish(f"{p}/a", b"r", 1, retain=True)
    member = clients.connected(version)
    member.subscribe(f"$share/g/{p}/#", 1)
    marker_sync(pub, member, f"{p}/marker")
    assert not member.received(f"{p}/a")


@pytest.mark.parametrize("handling, first, again", [(0, 1, 1), (1, 1, 0), (2, 0, 0)])
def test_v5_retain_handling(clients, handling, first, again):
    # 0: send on every subscribe; 1: only if the subscription did not exist; 2: never
    # (`MQTT-3.3.1-9`, `-10`, `-11`).
    p = unique("rh")
    pub = clients.connected(V5)
    pub.publish(f"{p}/r", b"r", 1, retain=True)
    sub = clients.connected(V5)
    sub.subscribe(f"{p}/#", 1, retain_handling=handling)
    marker_sync(pub, sub, f"{p}/marker")
    assert len(sub.received(f"{p}/r")) == first
    sub.subscribe(f"{p}/#", 1, retain_handling=handling)
    marker_sync(pub, sub, f"{p}/marker")
    assert len(sub.received(f"{p}/r")) == first + again
    assert all(m.retain for m in sub.received(f"{p}/r"))


def test_v5_retain_handling_1_sends_again_after_unsubscribe(clients):
    p = unique("rh1")
    pub = clients.connected(V5)
    pub.publish(p, b"r", 1, retain=True)
    sub = clients.connected(V5)
    sub.subscribe(p, 1, retain_handling=1)
    sub.wait_message(p, b"r")
    sub.unsubscribe(p)
    sub.subscribe(p, 1, retain_handling=1)
    sub.wait_messages(2, p)


def test_v5_retain_as_published(clients):
    p = unique("rap")
    rap = clients.connected(V5)
    rap.subscribe(f"{p}/#", 1, retain_as_published=True)
    plain = clients.connected(V5)
    plain.subscribe(f"{p}/#", 1)
    pub = clients.connected(V5)
    pub.publish(f"{p}/r", b"retained", 1, retain=True)
    pub.publish(f"{p}/n", b"normal", 1)
    for c in (rap, plain):
        c.wait_message(f"{p}/n")
    # Retain As Published keeps the publisher's flag on live deliveries (`MQTT-3.3.1-13`);
    # without it RETAIN is 0 (`MQTT-3.3.1-12`).
    assert [(m.topic, m.retain) for m in rap.received()] == [(f"{p}/r", True), (f"{p}/n", False)]
    assert [(m.topic, m.retain) for m in plain.received()] == [(f"{p}/r", False), (f"{p}/n", False)]
    # Sent because of a new subscription: RETAIN 1 either way.
    late = clients.connected(V5)
    late.subscribe(f"{p}/#", 1)
    assert late.wait_message(f"{p}/r").retain
    assert payloads(late.received(f"{p}/r")) == [b"retained"]
