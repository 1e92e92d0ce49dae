"""Observability and client administration with real clients over mqtts (issue 6, items 5–7):
the ops listener of the real binary (`/metrics`, `/healthz`, `/readyz`), each tenant's own
`$SYS` topics, and listing and kicking connected clients through the control API — paho sees
DISCONNECT 0x98 (MQTT 5) or a closed connection (MQTT 3.1.1), and another tenant can neither
see nor kick them.

The module's standalone publishes `$SYS` statistics every second (`--sys-interval-secs 1`).
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from mqtt_client import V5, V311, unique
from tenants import poll, start_standalone

ADMINISTRATIVE_ACTION = 0x98


@pytest.fixture(scope="module")
def _module_standalone(tmp_path_factory):
    s = start_standalone(tmp_path_factory.mktemp("standalone"), "--sys-interval-secs", "1")
    yield s
    s.stop()


def ops_url(server) -> str:
    endpoints = json.loads((server.data_dir / "endpoints.json").read_text())
    return f"http://{endpoints['ops']}"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split(" ")[1])
    return None


def test_ops_endpoints_serve_metrics_and_probes(server, devices):
    tenant = server.tenant("ops")
    cred = tenant.credential()
    topic = unique("ops")
    sub = devices.connected(V5, cred)
    sub.subscribe(f"{topic}/#", qos=1)
    pub = devices.connected(V5, cred)
    for i in range(5):
        pub.publish(f"{topic}/m", f"m{i}", qos=1)
    sub.wait_messages(5, f"{topic}/m")

    base = ops_url(server)
    assert get(base + "/healthz")[0] == 200
    status, body = get(base + "/readyz")
    assert status == 200, body

    def moved():
        _, text = get(base + "/metrics")
        received = sample(text, "tenantmq_messages_received_total") or 0
        return text if received >= 5 else None

    text = poll(moved, "messages counted in /metrics", timeout=5)
    for name in ["tenantmq_connections", "tenantmq_messages_sent_total",
                 "tenantmq_delivery_latency_seconds_count",
                 "tenantmq_gateway_connections_accepted_total",
                 'tenantmq_rejections_total{reason="message_rate"}',
                 "tenantmq_control_store_errors_total"]:
        assert sample(text, name) is not None, f"no {name} in /metrics"
    assert tenant.id not in text, "a tenant id leaked into metric labels"


def test_each_tenant_sees_only_its_own_sys_topics(server, devices):
    a, b = server.tenant("sysa"), server.tenant("sysb")
    a_cred, b_cred = a.credential(), b.credential()
    a_watch = devices.connected(V5, a_cred, client_id=unique("a-watch"))
    a_watch.subscribe("$SYS/#", qos=0)
    b_watch = devices.connected(V5, b_cred, client_id=unique("b-watch"))
    b_watch.subscribe("$SYS/#", qos=0)
    a_pub = devices.connected(V311, a_cred, client_id=unique("a-pub"))
    for i in range(7):
        a_pub.publish(unique("t"), b"x", qos=1)

    def latest(client, topic):
        msgs = client.received(topic)
        return int(msgs[-1].payload) if msgs else None

    poll(lambda: (latest(a_watch, "$SYS/broker/messages/received") or 0) >= 7,
         "A's $SYS message count", timeout=5)
    poll(lambda: latest(b_watch, "$SYS/broker/clients/connected") == 1,
         "B's $SYS connection count", timeout=5)
    assert latest(b_watch, "$SYS/broker/messages/received") == 0
    events = [json.loads(m.payload) for m in a_watch.received("$SYS/events/clients/connected")]
    assert any(e["client_id"] == a_pub.client_id and e["protocol"] == "3.1.1" for e in events)
    for m in b_watch.received():
        assert a_pub.client_id.encode() not in m.payload, f"B saw A on {m.topic}"
        assert a_watch.client_id.encode() not in m.payload, f"B saw A on {m.topic}"


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_clients_are_listed_and_kicked_only_by_their_tenant(server, devices, version):
    a, b = server.tenant("kicka"), server.tenant("kickb")
    device = devices.connected(version, a.credential(), client_id=unique("kicked"))
    _, listed, _ = a.api.call("GET", "/v1/clients", token=a.api_key, expect=200)
    assert [c["client_id"] for c in listed["items"]] == [device.client_id]
    _, other, _ = b.api.call("GET", "/v1/clients", token=b.api_key, expect=200)
    assert other["items"] == []
    b.api.call("DELETE", f"/v1/clients/{device.client_id}", token=b.api_key, expect=404)
    assert device.connected

    a.api.call("DELETE", f"/v1/clients/{device.client_id}", token=a.api_key, expect=204)
    gone = device.wait_disconnected()
    if version == V5:
        assert gone.reason_code == ADMINISTRATIVE_ACTION, gone
    time.sleep(0.1)
    _, listed, _ = a.api.call("GET", "/v1/clients", token=a.api_key, expect=200)
    assert listed["items"] == []
