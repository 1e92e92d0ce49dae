"""Will messages (spec 3.1.2.5, 3.1.3.2–3.1.3.3): published when the connection ends other
than by DISCONNECT, suppressed by a normal DISCONNECT (`MQTT-3.1.2-10`, `MQTT-3.14.4-3`), and
in MQTT 5 delayed by the Will Delay Interval (`MQTT-3.1.3-9`)."""

import time

import pytest

from mqtt_client import QUIET, V5, marker_sync, prop, unique


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_will_is_published_when_the_connection_drops(clients, version, qos):
    p = unique("will")
    watcher = clients.connected(version)
    watcher.subscribe(f"{p}/#", 2)
    dev = clients.new(version)
    extra = {"ContentType": "text/plain", "UserProperty": [("k", "v")]} if version == V5 else {}
    dev.will(f"{p}/status", b"offline", qos, **extra).connect()
    dev.abort()
    m = watcher.wait_message(f"{p}/status")
    assert (m.payload, m.qos, m.retain) == (b"offline", qos, False)
    if version == V5:
        # Message properties of the will travel with it (MQTT 5 3.1.3.2).
        assert prop(m, "ContentType") == "text/plain"
        assert prop(m, "UserProperty") == [("k", "v")]
    pub = clients.connected(version)
    marker_sync(pub, watcher, f"{p}/marker")
    assert len(watcher.received(f"{p}/status")) == 1


def test_retained_will_is_stored(clients, version):
    p = unique("willr")
    dev = clients.new(version)
    dev.will(f"{p}/status", b"offline", 1, retain=True).connect()
    dev.abort()
    late = clients.connected(version)
    late.subscribe(f"{p}/#", 1)
    m = late.wait_message(f"{p}/status")
    assert (m.payload, m.retain) == (b"offline", True)


def test_normal_disconnect_discards_the_will(clients, version):
    p = unique("willn")
    watcher = clients.connected(version)
    watcher.subscribe(f"{p}/#", 1)
    dev = clients.new(version)
    dev.will(f"{p}/status", b"offline", 1).connect()
    dev.disconnect()
    # Anything the broker did on that DISCONNECT is routed before the later marker.
    time.sleep(0.1)
    pub = clients.connected(version)
    marker_sync(pub, watcher, f"{p}/marker")
    time.sleep(QUIET)
    assert not watcher.received(f"{p}/status")


def test_v5_disconnect_with_will_message_publishes_it(clients):
    p = unique("will4")
    watcher = clients.connected(V5)
    watcher.subscribe(f"{p}/#", 1)
    dev = clients.new(V5)
    dev.will(f"{p}/status", b"asked", 1).connect()
    dev.disconnect(reason=0x04)  # Disconnect with Will Message
    assert watcher.wait_message(f"{p}/status").payload == b"asked"


def test_v5_will_delay_interval_delays_the_will(clients):
    p = unique("willd")
    watcher = clients.connected(V5)
    watcher.subscribe(f"{p}/#", 1)
    dev = clients.new(V5, session_expiry=30)
    dev.will(f"{p}/status", b"late", 1, WillDelayInterval=2).connect()
    dev.abort()
    closed_at = time.monotonic()
    m = watcher.wait_message(f"{p}/status", timeout=5)
    waited = m.at - closed_at
    assert 1.8 <= waited <= 3.5, f"will after {waited:.2f}s, delay was 2s"


def test_v5_will_is_dropped_when_the_session_resumes_within_the_delay(clients):
    p = unique("willres")
    watcher = clients.connected(V5)
    watcher.subscribe(f"{p}/#", 1)
    cid = unique("dev")
    dev = clients.new(V5, cid, session_expiry=30)
    dev.will(f"{p}/status", b"must not appear", 1, WillDelayInterval=1).connect()
    dev.abort()
    closed_at = time.monotonic()
    back = clients.new(V5, cid, clean=False, session_expiry=30)
    assert back.connect().session_present
    # Past the delay: the will would have gone out by now.
    time.sleep(max(0.0, closed_at + 1.6 - time.monotonic()))
    pub = clients.connected(V5)
    marker_sync(pub, watcher, f"{p}/marker")
    assert not watcher.received(f"{p}/status")


def test_v5_will_goes_out_when_a_clean_start_ends_the_session_first(clients):
    # The delay had not run out, but a Clean Start connection ends the old session, and the
    # will is published when the session ends (MQTT 5 3.1.3.2).
    p = unique("willcs")
    watcher = clients.connected(V5)
    watcher.subscribe(f"{p}/#", 1)
    cid = unique("dev")
    dev = clients.new(V5, cid, session_expiry=30)
    dev.will(f"{p}/status", b"session ended", 1, WillDelayInterval=30).connect()
    dev.abort()
    time.sleep(0.1)
    assert not watcher.received(f"{p}/status")
    clients.connected(V5, cid, clean=True)
    watcher.wait_message(f"{p}/status", b"session ended", timeout=1.5)


def test_v5_will_goes_out_when_the_session_expires_before_the_delay(clients):
    p = unique("willse")
    watcher = clients.connected(V5)
    watcher.subscribe(f"{p}/#", 1)
    dev = clients.new(V5, session_expiry=1)
    dev.will(f"{p}/status", b"expired", 1, WillDelayInterval=30).connect()
    dev.abort()
    closed_at = time.monotonic()
    m = watcher.wait_message(f"{p}/status", b"expired", timeout=4)
    assert 0.8 <= m.at - closed_at <= 2.5, f"will after {m.at - closed_at:.2f}s, expiry was 1s"
