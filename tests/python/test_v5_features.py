"""MQTT 5 only: Message Expiry Interval, Receive Maximum, topic aliases in both directions,
Subscription Identifiers, No Local, Maximum Packet Size, and message properties."""

import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from mqtt_client import QUIET, V5, marker_sync, payloads, prop, props, unique, wait_until


# ---- Message Expiry Interval (MQTT 5 3.3.2.3.3) -------------------------------------------

def test_message_expiry_while_queued_and_retained(clients):
    p = unique("mexp")
    cid = unique("c")
    sub = clients.new(V5, cid, clean=False, session_expiry=60)
    sub.connect()
    sub.subscribe(f"{p}/q", 1)
    sub.disconnect()

    pub = clients.connected(V5)
    pub.publish(f"{p}/q", b"short", 1, MessageExpiryInterval=1)
    pub.publish(f"{p}/q", b"long", 1, MessageExpiryInterval=60)
    pub.publish(f"{p}/q", b"forever", 1)
    pub.publish(f"{p}/r", b"retained short", 1, retain=True, MessageExpiryInterval=1)
    pub.publish(f"{p}/r2", b"retained long", 1, retain=True, MessageExpiryInterval=60)
    published_at = time.monotonic()
    time.sleep(max(0.0, published_at + 1.5 - time.monotonic()))

    back = clients.new(V5, cid, clean=False, session_expiry=60)
    assert back.connect().session_present
    back.wait_message(f"{p}/q", b"forever")
    # `MQTT-3.3.2-5`: an expired message is not delivered to a subscriber.
    assert payloads(back.received(f"{p}/q")) == [b"long", b"forever"]
    long_ = back.received(f"{p}/q")[0]
    # `MQTT-3.3.2-6`: the interval sent is the received one less the time spent waiting.
    assert 1 <= prop(long_, "MessageExpiryInterval") <= 59
    assert prop(back.received(f"{p}/q")[1], "MessageExpiryInterval") is None

    late = clients.connected(V5)
    late.subscribe(f"{p}/#", 1)
    marker_sync(pub, late, f"{p}/marker")
    retained = {m.topic: m for m in late.received() if m.retain}
    assert set(retained) == {f"{p}/r2"}, "an expired retained message is not sent"
    assert prop(retained[f"{p}/r2"], "MessageExpiryInterval") <= 59


def test_live_delivery_carries_the_expiry_interval(clients):
    p = unique("mexpl")
    sub = clients.connected(V5)
    sub.subscribe(p, 1)
    pub = clients.connected(V5)
    pub.publish(p, b"x", 1, MessageExpiryInterval=30)
    m = sub.wait_message(p)
    assert 0 < prop(m, "MessageExpiryInterval") <= 30


# ---- Receive Maximum (MQTT 5 3.1.2.11.3, `MQTT-3.3.4-9`) -----------------------------------

@pytest.mark.parametrize("qos", [1, 2])
def test_receive_maximum_limits_unacknowledged_deliveries(clients, qos):
    p = unique("rm")
    sub = clients.new(V5, receive_maximum=2, manual_ack=True)
    sub.connect()
    sub.subscribe(p, qos)
    pub = clients.connected(V5)
    for i in range(6):
        pub.publish(p, f"{i}".encode(), qos, wait=False)
    wait_until(lambda: len(pub._pubacks) == 6, "the publisher's flows to complete")
    if qos == 1:
        sub.wait_messages(2, p)
        time.sleep(QUIET)
        assert len(sub.received(p)) == 2, "more than Receive Maximum unacknowledged PUBLISHes"
        for i in range(2, 6):
            sub.ack(sub.received(p)[i - 2])
            sub.wait_messages(i + 1, p)
            time.sleep(0.05)
            assert len(sub.received(p)) == i + 1, "one acknowledgement frees one slot"
    else:
        # paho delivers QoS 2 at PUBREL and holds back PUBCOMP until ack(): a delivery stays
        # unacknowledged (counts against Receive Maximum) until PUBCOMP.
        sub.wait_messages(2, p)
        time.sleep(QUIET)
        assert len(sub.received(p)) == 2
        for i in range(2, 6):
            sub.ack(sub.received(p)[i - 2])
            sub.wait_messages(i + 1, p)
    assert payloads(sub.received(p)) == [f"{i}".encode() for i in range(6)]


# ---- Topic aliases (MQTT 5 3.3.2.3.4) ------------------------------------------------------

def test_client_to_server_topic_alias(clients):
    p = unique("ta")
    sub = clients.connected(V5)
    sub.subscribe(f"{p}/#", 1)
    pub = clients.connected(V5)
    maximum = prop(pub.connack, "TopicAliasMaximum")
    assert maximum and maximum >= 1
    pub.publish(f"{p}/one", b"set", 1, TopicAlias=1)
    pub.publish("", b"use", 1, TopicAlias=1)
    pub.publish(f"{p}/two", b"remap", 1, TopicAlias=1)
    pub.publish("", b"use again", 1, TopicAlias=1)
    sub.wait_messages(4)
    assert [(m.topic, m.payload) for m in sub.received()] == [
        (f"{p}/one", b"set"), (f"{p}/one", b"use"), (f"{p}/two", b"remap"),
        (f"{p}/two", b"use again"),
    ]


@pytest.mark.parametrize("alias, reasons", [(0, (0x94, 0x82)), (None, (0x82,))])
def test_bad_client_topic_alias_closes_the_connection(clients, alias, reasons):
    # Alias 0 is forbidden (`MQTT-3.3.2-8`): 0x94 Topic Alias invalid or 0x82 Protocol Error
    # both conform (the dev tenant's maximum, 65535, cannot be exceeded). An empty topic with
    # an alias never set is a Protocol Error, 0x82.
    c = clients.connected(V5)
    if alias == 0:
        bad = props(PacketTypes.PUBLISH)
        object.__setattr__(bad, "TopicAlias", 0)  # past paho's own range check
        c.paho.publish(unique("ta0"), b"x", 0, properties=bad)
    else:
        c.publish("", b"x", 0, wait=False, TopicAlias=7)
    d = c.wait_disconnected()
    assert d.from_server and d.reason_code in reasons, d


def test_server_to_client_topic_aliases(clients):
    # paho does not resolve incoming aliases, so the wire form is visible: the first PUBLISH
    # of a topic carries the topic and an alias, later ones an empty topic and the alias.
    p = unique("tas")
    sub = clients.new(V5, topic_alias_maximum=2)
    sub.connect()
    sub.subscribe(f"{p}/#", 1)
    pub = clients.connected(V5)
    sent = [f"{p}/{t}" for t in ["a", "a", "b", "a", "c", "c", "a", "b", "b"]]
    for i, t in enumerate(sent):
        pub.publish(t, f"{i}".encode(), 1)
    sub.wait_messages(len(sent))
    aliases: dict[int, str] = {}
    resolved = []
    for m in sub.received():
        alias = prop(m, "TopicAlias")
        assert alias is not None, "aliases are used when the client allows them"
        assert 1 <= alias <= 2, f"alias {alias} above the client's Topic Alias Maximum"
        if m.topic:
            aliases[alias] = m.topic
        else:
            assert alias in aliases, "an alias used before it was set"
        resolved.append(aliases[alias])
    assert resolved == sent
    assert sum(1 for m in sub.received() if not m.topic) >= 3, "aliases were never reused"


def test_no_server_aliases_without_client_topic_alias_maximum(clients):
    p = unique("tan")
    sub = clients.connected(V5)
    sub.subscribe(p, 1)
    pub = clients.connected(V5)
    for i in range(3):
        pub.publish(p, f"{i}".encode(), 1)
    sub.wait_messages(3)
    assert all(m.topic == p and prop(m, "TopicAlias") is None for m in sub.received())


# ---- Subscription Identifiers (MQTT 5 3.8.2.1.2, `MQTT-3.3.4-3`) ---------------------------

def test_subscription_identifiers(clients):
    p = unique("sid")
    sub = clients.connected(V5)
    sub.subscribe(f"{p}/a", 1, sub_id=1)
    sub.subscribe(f"{p}/+", 1, sub_id=2)
    sub.subscribe(f"{p}/b/#", 1)  # no identifier
    pub = clients.connected(V5)
    pub.publish(f"{p}/a", b"both", 1)
    pub.publish(f"{p}/b", b"one", 1)
    pub.publish(f"{p}/b/c", b"none", 1)
    sub.wait_messages(3)
    got = {m.payload: m for m in sub.received()}
    assert len(sub.received()) == 3, "overlapping subscriptions: one copy"
    assert sorted(prop(got[b"both"], "SubscriptionIdentifier")) == [1, 2]
    assert prop(got[b"one"], "SubscriptionIdentifier") == [2]
    assert prop(got[b"none"], "SubscriptionIdentifier") is None

    # Subscribing again replaces the identifier; retained messages carry it too.
    sub.subscribe(f"{p}/a", 1, sub_id=9)
    pub.publish(f"{p}/a", b"again", 1)
    m = sub.wait_message(f"{p}/a", b"again")
    assert sorted(prop(m, "SubscriptionIdentifier")) == [2, 9]
    pub.publish(f"{p}/r", b"retained", 1, retain=True)
    late = clients.connected(V5)
    late.subscribe(f"{p}/r", 1, sub_id=77)
    assert prop(late.wait_message(f"{p}/r"), "SubscriptionIdentifier") == [77]


# ---- No Local (MQTT 5 3.8.3.1, `MQTT-3.8.3-3`) ---------------------------------------------

def test_no_local(clients):
    p = unique("nl")
    me = clients.connected(V5)
    me.subscribe(f"{p}/nl", 1, no_local=True)
    me.subscribe(f"{p}/all", 1)
    other = clients.connected(V5)
    me.publish(f"{p}/nl", b"mine", 1)
    other.publish(f"{p}/nl", b"theirs", 1)
    me.wait_message(f"{p}/nl", b"theirs")
    me.publish(f"{p}/all", b"mine too", 1)  # without No Local: own messages come back
    me.wait_message(f"{p}/all", b"mine too")
    assert payloads(me.received(f"{p}/nl")) == [b"theirs"]


# ---- Maximum Packet Size (MQTT 5 3.1.2.11.4, `MQTT-3.1.2-25`) ------------------------------

@pytest.mark.parametrize("qos", [0, 1])
def test_client_maximum_packet_size(clients, qos):
    p = unique("mps")
    sub = clients.new(V5, maximum_packet_size=256)
    sub.connect()
    sub.subscribe(p, qos)
    pub = clients.connected(V5)
    pub.publish(p, b"small-1", qos)
    pub.publish(p, b"x" * 1000, qos)
    pub.publish(p, b"y" * 230, qos)  # fits: 230 + topic + header < 256
    pub.publish(p, b"small-2", qos)
    sub.wait_message(p, b"small-2")
    time.sleep(0.1)
    assert payloads(sub.received(p)) == [b"small-1", b"y" * 230, b"small-2"]
    assert sub.connected
    # The discarded QoS 1 message did not take a slot of the window for good.
    for i in range(5):
        pub.publish(p, f"after-{i}".encode(), qos)
    sub.wait_message(p, b"after-4")


def test_connack_announces_no_packet_size_limit_below_the_protocol_maximum(clients):
    # The dev tenant has no limit of its own. Maximum Packet Size absent means "the protocol's
    # limit" (MQTT 5 3.2.2.3.6); a value above 268,435,455 makes paho drop the connection.
    ack = clients.new(V5).connect()
    value = prop(ack, "MaximumPacketSize")
    assert value is None or 0 < value <= 268_435_455


# ---- Properties forwarded unchanged (`MQTT-3.3.2-15` to `-20`) -----------------------------

def test_message_properties_are_forwarded(clients):
    p = unique("props")
    sub = clients.connected(V5)
    sub.subscribe(p, 1)
    pub = clients.connected(V5)
    pub.publish(p, b"{}", 1, ResponseTopic=f"{p}/reply", CorrelationData=b"\x00\x01corr",
                UserProperty=[("a", "1"), ("a", "2"), ("b", "x")], ContentType="application/json",
                PayloadFormatIndicator=1)
    m = sub.wait_message(p)
    assert prop(m, "ResponseTopic") == f"{p}/reply"
    assert prop(m, "CorrelationData") == b"\x00\x01corr"
    assert prop(m, "UserProperty") == [("a", "1"), ("a", "2"), ("b", "x")], "order kept"
    assert prop(m, "ContentType") == "application/json"
    assert prop(m, "PayloadFormatIndicator") == 1


def test_payload_declared_utf8_but_invalid_is_refused(clients):
    p = unique("pfi")
    sub = clients.connected(V5)
    sub.subscribe(p, 1)
    pub = clients.connected(V5)
    assert pub.publish(p, b"\xff\xfe", 1, PayloadFormatIndicator=1) == 0x99
    marker_sync(pub, sub, p)
    assert b"\xff\xfe" not in payloads(sub.received(p))
