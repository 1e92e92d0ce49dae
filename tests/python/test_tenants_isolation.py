"""Tenant isolation, tested the way an attacker would try to break it (issue 4, item 6).

Tenant A is the victim, tenant B the attacker; both have valid credentials. Every "nothing
arrived" is made meaningful by positive controls: A's own subscriber receives A's traffic
first (so it was routed), and B's clients then receive a marker B publishes behind it (so
their subscriptions work and their connections are live) before B's inbox is checked.
"""

from __future__ import annotations

import json
import time

import pytest

from mqtt_client import QUIET, V5, V311, unique
from tenants import (V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS, Credential, Device, expect_code,
                     poll, probe)

# What an attacker subscribes to, one client per entry: plain wildcards, shared subscriptions
# over them, the broker's `$SYS` tree, and `$SYS/#` together with `#`.
ATTACKER_FILTERS = [
    ["#"],
    ["+/#"],
    ["$share/g/#"],
    ["$share/g/+/#"],
    ["$SYS/#"],
    ["$SYS/#", "#"],
]


def attackers(devices, version, cred: Credential, marker: str) -> list[Device]:
    """One connected B client per entry of ATTACKER_FILTERS, each also subscribed to
    `marker` so that it has a positive control even when its filters match nothing of B."""
    clients = []
    for filters in ATTACKER_FILTERS:
        c = devices.connected(version, cred)
        # Exact topic first: under `#` it is delivered once more, which is harmless.
        c.subscribe([(marker, 1)] + [(f, 2) for f in filters])
        clients.append(c)
    return clients


def assert_only(client: Device, allowed_topics: set[str], what: str,
                own_sys=lambda m: False) -> None:
    leaked = [(m.topic, m.payload) for m in client.received()
              if m.topic not in allowed_topics and not own_sys(m)]
    assert not leaked, f"{what}: received another tenant's messages: {leaked}"


def own_sys(client_ids: set[str], username: str, max_received: int):
    """Whether a `$SYS` message is the subscriber's own tenant's (issue 6, item 6): events
    name only its own clients and username, and its message count leaves out everything the
    other tenant published."""
    def check(m) -> bool:
        if not m.topic.startswith("$SYS/"):
            return False
        if m.topic.startswith("$SYS/events/"):
            e = json.loads(m.payload)
            return e["client_id"] in client_ids and e["username"] == username
        if m.topic == "$SYS/broker/messages/received":
            return int(m.payload) <= max_received
        return True
    return check


def test_wildcards_shared_and_sys_see_nothing_of_another_tenant(server, devices, version):
    a, b = server.tenant("victim"), server.tenant("attacker")
    a_cred, b_cred = a.credential(), b.credential()
    marker = unique("b-marker")
    spies = attackers(devices, version, b_cred, marker)

    # A's own view of its traffic: the positive control that A's messages were routed.
    a_watch = devices.connected(version, a_cred)
    a_watch.subscribe("#", qos=2)
    a_pub = devices.connected(version, a_cred)
    secret = unique("secret")
    for qos in (0, 1, 2):
        a_pub.publish(f"{secret}/q{qos}", b"a-private", qos=qos)
    a_pub.publish(f"{secret}/retained", b"a-retained", qos=1, retain=True)
    a_dying = devices.new(version, a_cred)
    a_dying.will(f"{secret}/will", b"a-will", qos=1)
    a_dying.connect()
    a_dying.abort()
    a_watch.wait_messages(5)
    a_watch.wait_message(f"{secret}/will", b"a-will")

    # B's positive control, published behind everything above.
    b_pub = devices.connected(version, b_cred)
    b_pub.publish(marker, b"b-own", qos=1)
    for spy, filters in zip(spies, ATTACKER_FILTERS):
        spy.wait_message(marker, b"b-own")
    time.sleep(QUIET)
    # B sees its own `$SYS` statistics and events; they must show nothing of A's.
    b_own = own_sys({c.client_id for c in spies + [b_pub]}, b_cred.username, max_received=1)
    for spy, filters in zip(spies, ATTACKER_FILTERS):
        assert_only(spy, {marker}, f"B subscribed to {filters}", b_own)
    assert not [m for m in a_watch.received() if m.payload == b"b-own"], \
        "A received B's marker"

    # A late subscriber of B gets B's retained messages but none of A's.
    b_pub.publish(f"{marker}/retained", b"b-retained", qos=1, retain=True)
    late = devices.connected(version, b_cred)
    late.subscribe("#", qos=1)
    late.wait_message(f"{marker}/retained", b"b-retained")
    time.sleep(QUIET)
    assert_only(late, {f"{marker}/retained"}, "B's late `#` subscriber (retained)")


def test_same_retained_topic_in_both_tenants(server, devices, version):
    """B subscribes to exactly the topic A keeps a retained message on: B gets B's own
    retained message on that topic name, never A's; and A keeps its own."""
    a, b = server.tenant("victim"), server.tenant("attacker")
    a_cred, b_cred = a.credential(), b.credential()
    topic = "site/door/state"
    devices.connected(version, a_cred).publish(topic, b"a-secret", qos=1, retain=True)
    spy = devices.connected(version, b_cred)
    spy.subscribe(topic, qos=1)
    b_own = devices.connected(version, b_cred)
    b_own.publish(topic, b"b-value", qos=1, retain=True)
    spy.wait_message(topic, b"b-value")
    late_spy = devices.connected(version, b_cred)
    late_spy.subscribe(topic, qos=1)
    late_spy.wait_message(topic, b"b-value")
    a_late = devices.connected(version, a_cred)
    a_late.subscribe(topic, qos=1)
    a_late.wait_message(topic, b"a-secret")
    time.sleep(QUIET)
    for c, want in ((spy, b"b-value"), (late_spy, b"b-value"), (a_late, b"a-secret")):
        assert [m.payload for m in c.received()] == [want], c.received()


def test_identical_client_ids_in_two_tenants_coexist(server, devices, version):
    """`sensor-1` of A and `sensor-1` of B are connected at the same time: neither takes the
    other over, and each receives only its own tenant's messages on the same topic."""
    a, b = server.tenant("victim"), server.tenant("attacker")
    a_cred, b_cred = a.credential(), b.credential()
    a_dev = devices.connected(version, a_cred, client_id="sensor-1")
    b_dev = devices.connected(version, b_cred, client_id="sensor-1")
    for d in (a_dev, b_dev):
        d.subscribe("cmd/sensor-1", qos=1)
    devices.connected(version, a_cred).publish("cmd/sensor-1", b"for-a", qos=1)
    devices.connected(version, b_cred).publish("cmd/sensor-1", b"for-b", qos=1)
    a_dev.wait_message("cmd/sensor-1", b"for-a")
    b_dev.wait_message("cmd/sensor-1", b"for-b")
    time.sleep(QUIET)
    assert a_dev.connected and b_dev.connected, \
        f"a takeover across tenants: A {a_dev.disconnected}, B {b_dev.disconnected}"
    assert [m.payload for m in a_dev.received()] == [b"for-a"]
    assert [m.payload for m in b_dev.received()] == [b"for-b"]
    # A takeover within one tenant still works (the control that client ids are enforced).
    a_again = devices.connected(version, a_cred, client_id="sensor-1")
    a_dev.wait_disconnected()
    assert a_again.connected and b_dev.connected


def expiry(version) -> dict:
    """Keeps an MQTT 5 session after the connection (3.1.1: Clean Session 0 does)."""
    return {"session_expiry": 300} if version == V5 else {}


def persistent(devices, version, cred, client_id, clean: bool) -> Device:
    return devices.connected(version, cred, client_id=client_id, clean=clean,
                             **expiry(version))


def test_persistent_session_of_another_tenant_is_not_resumed(server, devices, version):
    """A's `sensor-1` has a persistent session with a queued QoS 1 message. B connecting as
    `sensor-1` without clean start finds no session and none of A's messages; A, resuming,
    finds both."""
    a, b = server.tenant("victim"), server.tenant("attacker")
    a_cred, b_cred = a.credential(), b.credential()
    owner = persistent(devices, version, a_cred, "sensor-1", clean=False)
    owner.subscribe("queue/#", qos=1)
    owner.disconnect()
    devices.connected(version, a_cred).publish("queue/job", b"a-queued", qos=1)

    thief = devices.new(version, b_cred, client_id="sensor-1", clean=False,
                        **expiry(version))
    ack = thief.connect()
    assert not ack.session_present, "B's CONNECT resumed A's session"
    # B's own traffic reaches the thief: it is connected and would have received a resend.
    thief.subscribe("queue/#", qos=1)
    devices.connected(version, b_cred).publish("queue/b", b"b-own", qos=1)
    thief.wait_message("queue/b", b"b-own")
    time.sleep(QUIET)
    assert [m.payload for m in thief.received()] == [b"b-own"], thief.received()
    thief.disconnect()

    resumed = devices.new(version, a_cred, client_id="sensor-1", clean=False,
                          **expiry(version))
    assert resumed.connect().session_present, "A's own session must still be there"
    resumed.wait_message("queue/job", b"a-queued")


def test_will_of_one_tenant_never_reaches_another(server, devices, version):
    """A device of A dies with a will on a topic B watches with `#` and with the exact topic:
    A's watcher gets the will, B's do not — while B's own will reaches them."""
    a, b = server.tenant("victim"), server.tenant("attacker")
    a_cred, b_cred = a.credential(), b.credential()
    topic = "alerts/offline"
    b_hash = devices.connected(version, b_cred)
    b_hash.subscribe("#", qos=1)
    b_exact = devices.connected(version, b_cred)
    b_exact.subscribe(topic, qos=1)
    a_watch = devices.connected(version, a_cred)
    a_watch.subscribe(topic, qos=1)

    a_dying = devices.new(version, a_cred).will(topic, b"a-will", qos=1)
    a_dying.connect()
    a_dying.abort()
    a_watch.wait_message(topic, b"a-will")

    b_dying = devices.new(version, b_cred).will(topic, b"b-will", qos=1)
    b_dying.connect()
    b_dying.abort()
    b_hash.wait_message(topic, b"b-will")
    b_exact.wait_message(topic, b"b-will")
    time.sleep(QUIET)
    for c in (b_hash, b_exact):
        assert [m.payload for m in c.received()] == [b"b-will"], c.received()
    assert [m.payload for m in a_watch.received()] == [b"a-will"], a_watch.received()


@pytest.mark.parametrize("transport", ["mqtts", "wss"])
def test_cross_transport_isolation(server, devices, transport):
    """The same checks do not depend on the transport: B on wss (or mqtts) with `#` sees
    nothing of A on the other transport, while seeing B's own traffic from it."""
    a, b = server.tenant("victim"), server.tenant("attacker")
    other = "mqtts" if transport == "wss" else "wss"
    spy = devices.connected(V311, b.credential(), transport=transport)
    spy.subscribe("#", qos=1)
    a_watch = devices.connected(V5, a.credential(), transport=other)
    a_watch.subscribe("#", qos=1)
    devices.connected(V5, a.credential(), transport=other).publish("t/x", b"a", qos=1)
    a_watch.wait_message("t/x", b"a")
    devices.connected(V5, b.credential(), transport=other).publish("t/x", b"b", qos=1)
    spy.wait_message("t/x", b"b")
    time.sleep(QUIET)
    assert [m.payload for m in spy.received()] == [b"b"], spy.received()


def test_reused_slug_of_a_deleted_tenant_inherits_nothing(server, devices, version):
    """The operator deletes tenant A; someone signs up with A's slug. The new tenant is a new
    identity: A's credentials do not work in it, and it finds none of A's retained messages,
    sessions or queued messages."""
    a = server.tenant("reuse")
    a_cred = a.credential()
    devices.connected(version, a_cred).publish("plant/secret", b"a-retained", qos=1,
                                               retain=True)
    owner = persistent(devices, version, a_cred, "sensor-1", clean=False)
    owner.subscribe("plant/#", qos=1)
    owner.disconnect()
    devices.connected(version, a_cred).publish("plant/queued", b"a-queued", qos=1)
    server.api.delete_tenant(a.id)
    gone = expect_code(version, V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS)
    poll(lambda: probe(server, version, a_cred.login, a_cred.password).code == gone,
         "the deleted tenant refused")

    heir = server.api.signup(a.slug)
    assert heir.id != a.id
    assert probe(server, version, a_cred.login, a_cred.password).code == gone, \
        "a deleted tenant's credential works in the tenant that took its slug"
    cred = heir.credential()
    thief = devices.new(version, cred, client_id="sensor-1", clean=False, **expiry(version))
    assert not thief.connect().session_present, "the new tenant resumed A's session"
    thief.subscribe("#", qos=1)
    devices.connected(version, cred).publish("plant/mine", b"heir-own", qos=1, retain=True)
    thief.wait_message("plant/mine", b"heir-own")
    late = devices.connected(version, cred)
    late.subscribe("#", qos=1)
    late.wait_message("plant/mine", b"heir-own")
    time.sleep(QUIET)
    for c in (thief, late):
        assert [m.payload for m in c.received()] == [b"heir-own"], c.received()
