"""Topic names and filters (spec 4.7): validation, `+`/`#` matching, the `$` rules, and
overlapping subscriptions (`MQTT-3.3.4-2`: one copy at the highest granted QoS)."""

import time

import pytest

from mqtt_client import V5, V311, marker_sync, unique, wait_until

OK = 0x80  # SUBACK codes below this grant a QoS


def _allow_bad_filters(client):
    # paho validates filters itself; the broker's own validation is what is tested here.
    client.paho._filter_wildcard_len_check = lambda _sub: 0


def _allow_bad_topics(client):
    client.paho._raise_for_invalid_topic = lambda _topic: None


@pytest.mark.parametrize(
    "bad",
    ["a/#/b", "a/b#", "a+/b", "#/a", "a/+b/c", "$share/g", "$share//a",
     "$share/g+/a", "$share/g#/a"],
)
def test_invalid_filters_are_refused_in_suback(clients, version, bad):
    c = clients.connected(version)
    _allow_bad_filters(c)
    good = unique("good") + "/+"
    codes = c.subscribe([(good, 1), (bad, 1)], check=False)
    assert codes[0] == 1, "the valid filter of the same SUBSCRIBE is granted"
    # v3.1.1: 0x80 Failure; v5: 0x8F Topic Filter invalid (0x80 is also a legal refusal).
    assert codes[1] >= OK, f"invalid filter {bad!r} was granted QoS {codes[1]}"
    if version == V5:
        assert codes[1] in (0x8F, 0x80)
    assert c.connected


@pytest.mark.parametrize("bad", ["+", "a/+", "a/#", "#"])
def test_publish_to_invalid_topic_name_closes_the_connection(clients, version, bad):
    prefix = unique("bad")
    watcher = clients.connected(version)
    watcher.subscribe("#" if bad in ("+", "#") else "a/#", 0)
    watcher.subscribe(prefix, 1)
    c = clients.connected(version)
    _allow_bad_topics(c)
    c.publish(bad, b"must not be routed", 0, wait=False)
    d = c.wait_disconnected()
    if version == V5:
        # `MQTT-3.3.2-2`, MQTT 5 4.13: DISCONNECT 0x90 Topic Name invalid.
        assert d.from_server and d.reason_code == 0x90, d
    other = clients.connected(version)
    marker_sync(other, watcher, prefix)
    assert not any(m.payload == b"must not be routed" for m in watcher.received())


@pytest.mark.parametrize("where", ["topic", "filter"])
def test_null_character_closes_the_connection(clients, version, where):
    # `MQTT-1.5.4-2` (v5) / `MQTT-1.5.3-2` (v3.1.1): a string with U+0000 is malformed; the
    # connection is closed, MQTT 5 with DISCONNECT 0x81.
    c = clients.connected(version)
    if where == "topic":
        c.publish(unique("nul") + "/a\u0000b", b"x", 0, wait=False)
    else:
        _allow_bad_filters(c)
        c.paho.subscribe(unique("nul") + "/\u0000/#", 0)
    d = c.wait_disconnected()
    if version == V5:
        assert d.from_server and d.reason_code == 0x81, d


def test_empty_topic_name_without_alias_closes_the_connection(clients, version):
    c = clients.connected(version)
    _allow_bad_topics(c)
    if version == V311:
        c.paho._protocol = V5  # only to get past paho's own "empty topic" check
        c.paho.publish("", b"x", 0)
        c.paho._protocol = V311
    else:
        c.publish("", b"x", 0, wait=False)
    d = c.wait_disconnected()
    if version == V5:
        assert d.from_server and d.reason_code == 0x82, d  # Protocol Error (MQTT 5 3.3.2.1)


def _topics(p):
    return [f"{p}/a", f"{p}/a/b", f"{p}/a/b/c", f"{p}/b", f"{p}/b/b", f"{p}//b", f"{p}/", p,
            f"{p}/ü/€", f"{p}/ /x"]


MATCHES = {
    # filter (with P for the test's prefix): topics it must match, all others must not
    "P/a": ["P/a"],
    "P/+": ["P/a", "P/b", "P/"],
    "P/+/b": ["P/a/b", "P/b/b", "P//b"],
    "P/#": ["P/a", "P/a/b", "P/a/b/c", "P/b", "P/b/b", "P//b", "P/", "P", "P/ü/€", "P/ /x"],
    "P/a/#": ["P/a", "P/a/b", "P/a/b/c"],
    "P/+/#": ["P/a", "P/a/b", "P/a/b/c", "P/b", "P/b/b", "P//b", "P/", "P/ü/€", "P/ /x"],
    "+/a/+": ["P/a/b"],
    "+/+/+/#": ["P/a/b", "P/a/b/c", "P/b/b", "P//b", "P/ /x", "P/ü/€"],
    "P": ["P"],
    "P/": ["P/"],
    "P//b": ["P//b"],
    "P/ü/€": ["P/ü/€"],
    "P/+/x": ["P/ /x"],
}


@pytest.mark.parametrize("pattern", list(MATCHES))
def test_wildcard_matching(clients, version, pattern):
    p = unique("m")
    flt = pattern.replace("P", p)
    expected = {t.replace("P", p) for t in MATCHES[pattern]}
    sub = clients.connected(version)
    sub.subscribe(flt, 1)
    marker = f"{p}-marker"
    sub.subscribe(marker, 1)
    pub = clients.connected(version)
    for t in _topics(p):
        pub.publish(t, t.encode(), 1)
    marker_sync(pub, sub, marker)
    got = [m.topic for m in sub.received() if m.topic in set(_topics(p))]
    assert sorted(got) == sorted(expected), f"{flt} matched {got}"
    # Each message arrives once, with its topic intact.
    assert all(m.payload == m.topic.encode() for m in sub.received() if m.topic != marker)


def test_dollar_topics_are_not_matched_by_leading_wildcards(fresh_clients, version):
    # `MQTT-4.7.2-1`: `#` and `+/...` at the first level do not match topics starting with `$`.
    app = unique("$app")
    hash_sub = fresh_clients.connected(version)
    hash_sub.subscribe("#", 1)
    plus_sub = fresh_clients.connected(version)
    plus_sub.subscribe("+/x", 1)
    plus_sub.subscribe("+/+", 1)
    dollar_sub = fresh_clients.connected(version)
    dollar_sub.subscribe(f"{app}/#", 1)
    dollar_sub.subscribe(f"{app}/+", 1)  # overlapping: still one copy
    pub = fresh_clients.connected(version)
    pub.publish(f"{app}/x", b"dollar", 1)
    got = dollar_sub.wait_message(f"{app}/x", b"dollar")
    assert len(dollar_sub.received(f"{app}/x")) == 1
    assert got.qos == 1
    pub.publish("plain/x", b"marker", 1)
    hash_sub.wait_message("plain/x", b"marker")
    plus_sub.wait_message("plain/x", b"marker")
    assert not hash_sub.received(f"{app}/x")
    assert not plus_sub.received(f"{app}/x")


def test_clients_cannot_publish_into_sys(fresh_clients, version):
    watcher = fresh_clients.connected(version)
    codes = watcher.subscribe([("$SYS/#", 1), ("marker", 1)], check=False)
    pub = fresh_clients.connected(version)
    rc = pub.publish("$SYS/broker/fake", b"spoofed", 1)
    if version == V5:
        assert rc == 0x87, "PUBACK must report Not authorized for $SYS"
    marker_sync(pub, watcher, "marker")
    if codes[0] < OK:
        assert not watcher.received("$SYS/broker/fake")


@pytest.mark.parametrize("ordering", ["narrow-first", "wide-first"])
def test_overlapping_subscriptions_deliver_one_copy_at_the_highest_qos(clients, version, ordering):
    p = unique("ov")
    sub = clients.connected(version)
    filters = [(f"{p}/a", 2), (f"{p}/+", 1), (f"{p}/#", 0)]
    if ordering == "wide-first":
        filters.reverse()
    for f, q in filters:
        sub.subscribe(f, q)
    pub = clients.connected(version)
    pub.publish(f"{p}/a", b"a", 2)
    pub.publish(f"{p}/b", b"b", 2)
    pub.publish(f"{p}/c/d", b"cd", 2)
    pub.publish(f"{p}/a", b"a1", 1)
    marker_sync(pub, sub, f"{p}/z")
    # paho hands an incoming QoS 2 message to the application only after the PUBREL round
    # trip, so "a" (QoS 2) may trail the QoS 1 marker: wait for the four, then for a second
    # marker and a moment, so that a duplicate copy would have arrived too.
    def others():
        return [m for m in sub.received() if m.topic != f"{p}/z"]
    wait_until(lambda: len(others()) >= 4, "the four messages")
    marker_sync(pub, sub, f"{p}/z")
    time.sleep(0.2)
    got = {(m.topic, m.payload): m.qos for m in others()}
    assert len(others()) == 4, "exactly one copy each"
    assert got == {(f"{p}/a", b"a"): 2, (f"{p}/b", b"b"): 1, (f"{p}/c/d", b"cd"): 0,
                   (f"{p}/a", b"a1"): 1}

    # Unsubscribing one of them leaves the others working (trie removal is exact).
    assert sub.unsubscribe(f"{p}/a") == ([0] if version == V5 else [])
    sub.clear()
    pub.publish(f"{p}/a", b"a2", 2)
    marker_sync(pub, sub, f"{p}/z")
    assert [(m.payload, m.qos) for m in sub.received(f"{p}/a")] == [(b"a2", 1)]


def test_unsubscribe_of_unknown_filter_reports_no_subscription(clients):
    c = clients.connected(V5)
    assert c.unsubscribe(unique("none")) == [0x11]  # MQTT 5 3.11.3: No subscription existed


def test_resubscribe_replaces_the_subscription(clients, version):
    # `MQTT-3.8.4-3`: the same filter again replaces the old subscription (its QoS), no
    # second copy.
    p = unique("re")
    sub = clients.connected(version)
    sub.subscribe(p, 2)
    sub.subscribe(p, 0)
    pub = clients.connected(version)
    pub.publish(p, b"x", 2)
    marker_sync(pub, sub, p)
    got = [m for m in sub.received(p) if m.payload == b"x"]
    assert [(m.payload, m.qos) for m in got] == [(b"x", 0)]
