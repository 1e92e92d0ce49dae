"""QoS 0/1/2 flows end to end (spec 4.3, 4.6): every message arrives exactly once, in the
publisher's order, at the lower of published and granted QoS (`MQTT-3.8.4-8`)."""

import pytest

from mqtt_client import V5, payloads, unique

N = 40


@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_qos_flow_delivers_each_message_once_in_order(clients, version, pub_qos, sub_qos):
    topic = unique("qos") + "/x"
    sub = clients.connected(version)
    assert sub.subscribe(topic, sub_qos) == [sub_qos]
    pub = clients.connected(version)

    for i in range(N):
        # Waiting for PUBACK / PUBCOMP proves the publisher's side of the flow completes.
        pub.publish(topic, f"m{i}", pub_qos, wait=pub_qos > 0)
    got = sub.wait_messages(N, topic)
    # One more chance for a duplicate to show: a marker from the same publisher comes last.
    pub.publish(topic, b"end", 1)
    sub.wait_message(topic, b"end")

    got = [m for m in sub.received(topic) if m.payload != b"end"]
    assert payloads(got) == [f"m{i}".encode() for i in range(N)], "lost, duplicated or reordered"
    assert {m.qos for m in got} == {min(pub_qos, sub_qos)}
    assert not any(m.dup for m in got)
    if min(pub_qos, sub_qos) > 0:
        assert all(m.mid != 0 for m in got), "QoS 1/2 PUBLISH without a packet identifier"


def test_qos_flows_from_several_publishers_keep_per_publisher_order(clients, version):
    topic = unique("order")
    sub = clients.connected(version)
    sub.subscribe(topic + "/#", 2)
    pubs = [clients.connected(version) for _ in range(3)]
    # Order is promised per publisher and QoS (spec 4.6), so publisher k uses QoS k; the three
    # streams interleave in the broker.
    for i in range(20):
        for k, p in enumerate(pubs):
            p.publish(f"{topic}/{k}", f"{k}:{i}", qos=k, wait=False)
    sub.wait_messages(60)
    for k in range(3):
        got = payloads(sub.received(f"{topic}/{k}"))
        assert got == [f"{k}:{i}".encode() for i in range(20)]


def test_v5_puback_reports_no_matching_subscribers(clients):
    pub = clients.connected(V5)
    topic = unique("nobody")
    # MQTT 5 3.4.2.1: 0x10 when nothing matched; still a success, nothing is retried.
    assert pub.publish(topic, b"x", 1) == 0x10
    sub = clients.connected(V5)
    sub.subscribe(topic, 1)
    assert pub.publish(topic, b"x", 1) == 0x00
    assert pub.publish(topic, b"x", 2) == 0x00
