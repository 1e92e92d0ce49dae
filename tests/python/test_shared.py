"""Shared subscriptions, `$share/<group>/<filter>` (MQTT 5 4.8.2; the engine accepts them from
MQTT 3.1.1 clients too, as most brokers do): each message goes to one member of each group."""

import time

from paho.mqtt.subscribeoptions import SubscribeOptions

from mqtt_client import QUIET, V5, marker_sync, payloads, unique, wait_until


def _total(members):
    return sum(len(m.received()) for m in members)


def test_one_delivery_per_group(clients, version):
    p = unique("sh")
    g1 = [clients.connected(version) for _ in range(3)]
    g2 = [clients.connected(version) for _ in range(2)]
    for m in g1:
        m.subscribe(f"$share/g1/{p}/#", 1)
    for m in g2:
        m.subscribe(f"$share/g2/{p}/+", 1)
    direct = clients.connected(version)
    direct.subscribe(f"{p}/#", 1)
    pub = clients.connected(version)

    n = 30
    sent = [f"{i}".encode() for i in range(n)]
    for i, body in enumerate(sent):
        pub.publish(f"{p}/{i % 3}", body, 1)
    direct.wait_messages(n)
    wait_until(lambda: _total(g1) >= n and _total(g2) >= n, "every group to get every message")
    time.sleep(QUIET)  # a duplicate to another member would land by now

    assert sorted(payloads(direct.received())) == sorted(sent)
    for group in (g1, g2):
        got = [body for m in group for body in payloads(m.received())]
        assert sorted(got) == sorted(sent), "each message exactly once per group"
        # Round robin spreads the load; a group that always picks one member is broken.
        assert sum(1 for m in group if m.received()) >= 2


def test_members_that_leave_get_nothing_and_the_rest_get_everything(clients, version):
    p = unique("shl")
    unsubscribed, disconnected, staying = (clients.connected(version) for _ in range(3))
    for m in (unsubscribed, disconnected, staying):
        m.subscribe(f"$share/g/{p}", 1)
    assert unsubscribed.unsubscribe(f"$share/g/{p}") == ([0] if version == V5 else [])
    disconnected.disconnect()
    pub = clients.connected(version)
    for i in range(10):
        pub.publish(p, f"{i}".encode(), 1)
    staying.wait_messages(10)
    time.sleep(QUIET)
    assert not unsubscribed.received()
    assert sorted(payloads(staying.received())) == sorted(f"{i}".encode() for i in range(10))


def test_group_member_with_a_direct_subscription_still_gets_every_message(clients, version):
    # MQTT 5 4.8.2: the direct subscription delivers every message; the group's copy goes to
    # one member, and when that member is the same client the engine merges the two into one
    # delivery (3.3.4 allows one copy for overlapping subscriptions).
    p = unique("shd")
    a = clients.connected(version)
    a.subscribe(f"$share/g/{p}", 1)
    a.subscribe(p, 1)
    b = clients.connected(version)
    b.subscribe(f"$share/g/{p}", 1)
    pub = clients.connected(version)
    for i in range(6):
        pub.publish(p, f"{i}".encode(), 1)
    sent = {f"{i}".encode() for i in range(6)}
    wait_until(lambda: set(payloads(a.received())) == sent, "a's direct copies")
    time.sleep(QUIET)
    got_b = payloads(b.received())
    assert len(got_b) == len(set(got_b)), "the group sent a message twice"
    assert got_b, "the group never picked the other member"
    assert len(a.received()) + len(got_b) <= 12


def test_no_local_on_shared_subscription_is_a_protocol_error(clients):
    c = clients.connected(V5)
    c.paho.subscribe(f"$share/g/{unique('nl')}", options=SubscribeOptions(qos=1, noLocal=True))
    d = c.wait_disconnected()
    assert d.from_server and d.reason_code == 0x82, d  # `MQTT-3.8.3-4`


def test_shared_subscription_granted_qos_caps_delivery(clients, version):
    p = unique("shq")
    m = clients.connected(version)
    assert m.subscribe(f"$share/g/{p}", 1) == [1]
    pub = clients.connected(version)
    pub.publish(p, b"x", 2)
    marker_sync(pub, m, p)
    assert [(x.payload, x.qos) for x in m.received(p)][0] == (b"x", 1)
