"""Sessions (spec 4.1, 3.1.2.4, 3.1.3.1, 3.1.4): Clean Session / Clean Start, Session Present,
offline queueing and redelivery on resume (with DUP for messages that were in flight,
`MQTT-4.4.0-1`), MQTT 5 Session Expiry Interval, assigned client identifiers, and session
takeover (`MQTT-3.1.4-3`, MQTT 5 DISCONNECT 0x8E)."""

import time

from paho.mqtt.packettypes import PacketTypes

from mqtt_client import V5, V311, marker_sync, payloads, prop, props, unique


def persistent(clients, version, cid, **kw):
    """A client whose session outlives its connection (3.1.1: Clean Session 0; MQTT 5: Clean
    Start 0 with a Session Expiry Interval)."""
    if version == V5:
        kw.setdefault("session_expiry", 60)
    return clients.new(version, cid, clean=False, **kw)


def test_first_connection_without_clean_start_has_no_session(clients, version):
    ack = persistent(clients, version, unique("c")).connect()
    assert ack.session_present is False


def test_messages_published_while_offline_arrive_on_resume(clients, version):
    p = unique("off")
    cid = unique("c")
    sub = persistent(clients, version, cid)
    sub.connect()
    sub.subscribe([(f"{p}/q1", 1), (f"{p}/q2", 2)])
    sub.disconnect()

    pub = clients.connected(version)
    for i in range(10):
        pub.publish(f"{p}/q1", f"a{i}", 1)
        pub.publish(f"{p}/q2", f"b{i}", 2)

    back = persistent(clients, version, cid)
    assert back.connect().session_present is True
    back.wait_messages(10, f"{p}/q1")
    back.wait_messages(10, f"{p}/q2")
    marker_sync(pub, back, f"{p}/q1")
    assert payloads(back.received(f"{p}/q1"))[:10] == [f"a{i}".encode() for i in range(10)]
    assert payloads(back.received(f"{p}/q2")) == [f"b{i}".encode() for i in range(10)]
    assert {m.qos for m in back.received(f"{p}/q2")} == {2}
    assert not any(m.dup for m in back.received()), "queued messages were never sent: no DUP"
    # The subscriptions survived too: new messages keep flowing.
    pub.publish(f"{p}/q2", b"after", 2)
    back.wait_message(f"{p}/q2", b"after")


def test_unacknowledged_message_is_resent_with_dup_on_resume(clients, version):
    p = unique("dup")
    cid = unique("c")
    sub = persistent(clients, version, cid, manual_ack=True)
    sub.connect()
    sub.subscribe(p, 1)
    pub = clients.connected(version)
    pub.publish(p, b"first", 1)
    m = sub.wait_message(p, b"first")
    assert not m.dup
    sub.abort()  # never acknowledged

    back = persistent(clients, version, cid)
    assert back.connect().session_present is True
    again = back.wait_message(p, b"first")
    assert again.dup and again.qos == 1, "`MQTT-4.4.0-1`: resent with DUP"
    assert again.mid == m.mid, "resent with the same packet identifier"
    # Acknowledged now (paho acks on receipt): the next message is new, and "first" is not
    # sent a third time.
    pub.publish(p, b"second", 1)
    back.wait_message(p, b"second")
    marker_sync(pub, back, p)
    assert payloads(back.received(p)).count(b"first") == 1
    assert not back.received(p)[1].dup


def test_clean_session_discards_the_old_session(clients, version):
    p = unique("clean")
    cid = unique("c")
    sub = persistent(clients, version, cid)
    sub.connect()
    sub.subscribe(p, 1)
    sub.disconnect()
    pub = clients.connected(version)
    pub.publish(p, b"queued", 1)

    fresh = clients.new(version, cid, clean=True)
    assert fresh.connect().session_present is False
    fresh.subscribe(f"{p}/marker", 1)
    pub.publish(p, b"live", 1)  # the old subscription must be gone
    marker_sync(pub, fresh, f"{p}/marker")
    time.sleep(0.1)
    assert not fresh.received(p)
    fresh.disconnect()

    # 3.1.1 Clean Session 1 / MQTT 5 expiry 0: nothing is kept after this connection either.
    again = persistent(clients, version, cid)
    assert again.connect().session_present is False


def test_v5_session_expiry_interval_ends_the_session(clients):
    p = unique("exp")
    cid = unique("c")
    sub = clients.new(V5, cid, clean=False, session_expiry=1)
    sub.connect()
    sub.subscribe(p, 1)
    sub.disconnect()
    gone_at = time.monotonic()
    pub = clients.connected(V5)
    pub.publish(p, b"dropped with the session", 1)
    time.sleep(max(0.0, gone_at + 1.6 - time.monotonic()))
    back = clients.new(V5, cid, clean=False, session_expiry=1)
    assert back.connect().session_present is False
    back.subscribe(f"{p}/marker", 1)
    marker_sync(pub, back, f"{p}/marker")
    assert not back.received(p)


def test_v5_session_expiry_zero_ends_the_session_at_disconnect(clients):
    cid = unique("c")
    c = clients.new(V5, cid, clean=False)  # no Session Expiry Interval: 0
    c.connect()
    c.subscribe(unique("x"), 1)
    c.disconnect()
    assert clients.new(V5, cid, clean=False).connect().session_present is False


def test_v5_disconnect_can_shorten_the_session_expiry(clients):
    # MQTT 5 3.14.2.2.2: DISCONNECT may change the Session Expiry Interval (not from 0).
    cid = unique("c")
    c = clients.new(V5, cid, clean=False, session_expiry=60)
    c.connect()
    c.disconnect(SessionExpiryInterval=0)
    assert clients.new(V5, cid, clean=False, session_expiry=60).connect().session_present is False


def test_v5_disconnect_may_not_raise_expiry_from_zero(clients):
    # `MQTT-3.14.2-2`: 0 at CONNECT, non-zero at DISCONNECT is a Protocol Error; the broker
    # answers with DISCONNECT 0x82 and the session does not survive.
    cid = unique("c")
    c = clients.new(V5, cid, clean=False)
    c.connect()
    c.paho.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=60))
    c.wait_disconnected()
    assert clients.new(V5, cid, clean=False).connect().session_present is False


def test_v5_session_survives_within_its_expiry(clients):
    p = unique("keep")
    cid = unique("c")
    sub = clients.new(V5, cid, clean=False, session_expiry=2)
    sub.connect()
    sub.subscribe(p, 1)
    sub.abort()
    pub = clients.connected(V5)
    pub.publish(p, b"kept", 1)
    back = clients.new(V5, cid, clean=False, session_expiry=2)
    assert back.connect().session_present is True
    assert back.wait_message(p, b"kept").qos == 1


def test_v5_empty_client_id_gets_an_assigned_identifier(clients):
    p = unique("asg")
    a = clients.new(V5, "", clean=False, session_expiry=60)
    ack = a.connect()
    assigned = prop(ack, "AssignedClientIdentifier")
    assert assigned, "`MQTT-3.2.2-16`: CONNACK must carry the Assigned Client Identifier"
    b = clients.new(V5, "")
    other = prop(b.connect(), "AssignedClientIdentifier")
    assert other and other != assigned, "identifiers are unique"
    # The assigned identifier names a real session: it can be resumed.
    a.subscribe(p, 1)
    a.disconnect()
    pub = clients.connected(V5)
    pub.publish(p, b"for the assigned id", 1)
    back = clients.new(V5, assigned, clean=False, session_expiry=60)
    assert back.connect().session_present is True
    back.wait_message(p, b"for the assigned id")


def test_v5_client_with_an_id_gets_no_assigned_identifier(clients):
    ack = clients.new(V5, unique("c")).connect()
    assert prop(ack, "AssignedClientIdentifier") is None


def test_v311_empty_client_id_rules(clients):
    # `MQTT-3.1.3-7`/`-8`: an empty id is accepted with Clean Session 1, and refused with
    # return code 0x02 (Identifier rejected) with Clean Session 0.
    ok = clients.new(V311, "", clean=True)
    assert ok.connect().reason_code == 0

    # paho handles exactly that refusal itself: it logs the CONNACK and retries with an id of
    # its own (which is then accepted). Its log is how the return code is observed.
    refused = clients.new(V311, "", clean=False)
    log = []
    refused.paho.on_log = lambda _c, _u, _level, text: log.append(text)
    refused.paho._reconnect_on_failure = True
    assert refused.connect().reason_code == 0
    assert any("Received CONNACK (0, 2)" in line for line in log), log


def test_session_takeover(clients, version):
    p = unique("take")
    cid = unique("c")
    watcher = clients.connected(version)
    watcher.subscribe(f"{p}/#", 1)
    first = persistent(clients, version, cid)
    first.will(f"{p}/will", b"first gone", 1).connect()
    first.subscribe(f"{p}/data", 1)

    second = persistent(clients, version, cid)
    ack = second.connect()
    assert ack.session_present is True, "the session moves to the new connection"
    d = first.wait_disconnected()
    if version == V5:
        assert d.from_server and d.reason_code == 0x8E, f"expected DISCONNECT 0x8E, got {d}"
    # The old connection ended without DISCONNECT from its client: its will goes out.
    watcher.wait_message(f"{p}/will", b"first gone")

    pub = clients.connected(version)
    pub.publish(f"{p}/data", b"to the new connection", 1)
    second.wait_message(f"{p}/data", b"to the new connection")
    marker_sync(pub, watcher, f"{p}/marker")
    assert not first.received(f"{p}/data")
    assert second.connected


def test_session_takeover_with_clean_start_starts_empty(clients, version):
    p = unique("takec")
    cid = unique("c")
    first = persistent(clients, version, cid)
    first.connect()
    first.subscribe(p, 1)
    second = clients.new(version, cid, clean=True)
    assert second.connect().session_present is False
    first.wait_disconnected()
    second.subscribe(f"{p}/marker", 1)
    pub = clients.connected(version)
    pub.publish(p, b"old subscription", 1)
    marker_sync(pub, second, f"{p}/marker")
    assert not second.received(p)


def test_repeated_takeovers_leave_only_the_newest_connection(clients, version):
    cid = unique("c")
    conns = [persistent(clients, version, cid) for _ in range(3)]
    for c in conns:
        c.connect()
    for c in conns[:-1]:
        c.wait_disconnected()
    assert conns[-1].connected
    p = unique("take3")
    conns[-1].subscribe(p, 1)
    pub = clients.connected(version)
    pub.publish(p, b"to the newest", 1)
    conns[-1].wait_message(p, b"to the newest")
