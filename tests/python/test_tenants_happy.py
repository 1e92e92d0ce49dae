"""The product path (issue 4, item 6): tenants sign up through the HTTP API, create device
credentials, and their devices exchange messages over mqtts and wss — paho-mqtt in both
protocol versions, the mosquitto command-line clients with `--cafile`, and a hand-made
WebSocket upgrade for what paho does not check (the echoed subprotocol).

Tenant selection is exercised in both forms: the username `<slug>/<username>` (every test
here), and the SNI name `<slug>.<base domain>` with a bare username (`test_sni_*`). For the
SNI tests `*.localhost` is resolved to 127.0.0.1 inside this process
(`tenants.resolve_localhost`): the machine's resolver may not know those names, and the client
must still send the name as SNI. The default base domain is `mqtt.localhost`, so the
certificate's `*.mqtt.localhost` is checked fully by OpenSSL clients.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
import time

import pytest

from mqtt_client import V5, unique
from tenants import (V5_BAD_CREDENTIALS, V311, V311_BAD_CREDENTIALS, Device, Tenant,
                     expect_code, probe, resolve_localhost, start_standalone, tls_socket)

TRANSPORTS = pytest.mark.parametrize("transport", ["mqtts", "wss"])


def two_tenants(server) -> tuple[Tenant, Tenant]:
    return server.tenant("alpha"), server.tenant("beta")


@TRANSPORTS
def test_qos_retained_and_will_within_each_tenant(server, devices, version, transport):
    """Both tenants, each on its own: QoS 0/1/2 round trips, a retained message for a late
    subscriber, and a will on an abrupt close."""
    for tenant in two_tenants(server):
        sub_cred, pub_cred = tenant.credential(), tenant.credential()
        topic = unique("room")
        sub = devices.connected(version, sub_cred, transport=transport)
        sub.subscribe(f"{topic}/#", qos=2)
        pub = devices.connected(version, pub_cred, transport=transport)

        for qos in (0, 1, 2):
            rc = pub.publish(f"{topic}/q{qos}", f"{tenant.slug}-{qos}", qos=qos)
            if version == V5 and qos:
                assert rc == 0, f"QoS {qos} acknowledged with {rc:#x}"
            m = sub.wait_message(f"{topic}/q{qos}", f"{tenant.slug}-{qos}".encode())
            assert m.qos == qos and not m.retain

        pub.publish(f"{topic}/state", b"on", qos=1, retain=True)
        late = devices.connected(version, sub_cred, transport=transport)
        late.subscribe(f"{topic}/state", qos=1)
        m = late.wait_message(f"{topic}/state", b"on")
        assert m.retain, "a retained message to a new subscriber carries RETAIN"

        dying = devices.new(version, pub_cred, transport=transport)
        dying.will(f"{topic}/will", f"gone-{tenant.slug}", qos=1)
        dying.connect()
        dying.abort()
        sub.wait_message(f"{topic}/will", f"gone-{tenant.slug}".encode())


def test_wss_echoes_the_mqtt_subprotocol(server):
    """`MQTT-6.0.0-3/4`: the upgrade on /mqtt offering `mqtt` is accepted and echoes it; one
    offering no subprotocol is refused. (paho does not check the echo, so this is by hand.)"""

    def upgrade(protocols: str | None) -> str:
        sock = tls_socket(server, endpoint=server.wss, alpn=["http/1.1"])
        with sock:
            key = base64.b64encode(os.urandom(16)).decode()
            lines = [f"GET /mqtt HTTP/1.1", f"Host: localhost:{server.wss.port}",
                     "Upgrade: websocket", "Connection: Upgrade",
                     f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
            if protocols:
                lines.append(f"Sec-WebSocket-Protocol: {protocols}")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            return head.decode(errors="replace")

    accepted = upgrade("mqtt")
    assert accepted.startswith("HTTP/1.1 101"), accepted
    headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
               for line in accepted.split("\r\n")[1:] if ":" in line}
    assert headers.get("sec-websocket-protocol") == "mqtt", accepted
    refused = upgrade(None)
    assert refused.startswith("HTTP/1.1 400"), refused


# ---- SNI --------------------------------------------------------------------------------

def test_sni_selects_the_tenant(server, devices, version):
    """SNI `<slug>.localhost` with a bare username: the device is in that tenant (it shares
    topics with a `<slug>/<user>` device of the same tenant, and the server certificate
    verified for that name)."""
    acme = server.tenant("acme")
    cred = acme.credential()
    topic = unique("sni")
    listener = devices.connected(version, cred)          # `<slug>/<user>`, no SNI
    listener.subscribe(f"{topic}/#", qos=1)
    with resolve_localhost():
        by_sni = devices.connected(version, username=cred.username, password=cred.password,
                                   sni=f"{acme.slug}.mqtt.localhost")
        over_wss = devices.connected(version, username=cred.username, password=cred.password,
                                     sni=f"{acme.slug}.mqtt.localhost", transport="wss")
        # Both forms at once, agreeing, are fine too.
        both = devices.connected(version, cred, sni=f"{acme.slug}.mqtt.localhost")
    by_sni.publish(f"{topic}/a", b"via-sni", qos=1)
    over_wss.publish(f"{topic}/w", b"via-sni-wss", qos=1)
    both.publish(f"{topic}/b", b"via-both", qos=1)
    listener.wait_message(f"{topic}/a", b"via-sni")
    listener.wait_message(f"{topic}/w", b"via-sni-wss")
    listener.wait_message(f"{topic}/b", b"via-both")


def test_sni_name_is_matched_case_insensitively(server, version):
    """DNS names are case-insensitive (RFC 4343): `ACME.LocalHost` selects `acme`."""
    t = server.tenant("case")
    cred = t.credential()
    with resolve_localhost():
        r = probe(server, version, cred.username, cred.password,
                  sni=f"{t.slug.upper()}.MQTT.LocalHost")
    assert r.code == 0, r


def test_sni_under_an_explicit_base_domain(tmp_path):
    """`--base-domain sensors.localhost`: the certificate names `*.sensors.localhost`, so a
    client checks `<slug>.sensors.localhost` fully; that name selects the tenant, and
    `<slug>.localhost` (outside the base domain) selects nothing."""
    s = start_standalone(tmp_path / "standalone", "--base-domain", "sensors.localhost")
    clients = []
    try:
        t = s.tenant("acme")
        cred = t.credential()
        with resolve_localhost():
            for version in (V311, V5):
                name = f"{t.slug}.sensors.localhost"
                d = Device(s, version, username=cred.username, password=cred.password, sni=name)
                clients.append(d)
                d.connect()
                topic = unique("sni2")
                d.subscribe(topic, qos=1)
                d.publish(topic, b"checked", qos=1)
                d.wait_message(topic, b"checked")
                assert d.paho._ssl_context.check_hostname, "the host name must be checked"
                r = probe(s, version, cred.username, cred.password, sni=f"{t.slug}.localhost")
                assert r.code == expect_code(version, V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS)
        s.check_alive()
    finally:
        for d in clients:
            d.close()
        s.stop()


# ---- mosquitto_pub / mosquitto_sub --------------------------------------------------------

MOSQUITTO = pytest.mark.skipif(
    not (shutil.which("mosquitto_sub") and shutil.which("mosquitto_pub")),
    reason="mosquitto-clients is not installed",
)


class MosquittoSub:
    """`mosquitto_sub -d` in the background; debug lines tell when it is subscribed."""

    def __init__(self, server, cred, *args: str) -> None:
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(server.mqtts.port),
               "--cafile", str(server.ca_file), "-u", cred.login, "-P", cred.password,
               "-d", "-v", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, pred, what: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hit = next((line for line in self.lines if pred(line)), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what}; output:\n" + "\n".join(self.lines))
                self.cond.wait(min(left, 0.1))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def mosquitto_pub(server, cred, *args: str, proto: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.mqtts.port),
         "--cafile", str(server.ca_file), "-u", cred.login, "-P", cred.password,
         "-V", proto, *args],
        capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)


@MOSQUITTO
@pytest.mark.parametrize("proto", ["mqttv311", "mqttv5"])
def test_mosquitto_clients_round_trip_and_retained(server, proto):
    """The quickstart's commands: `mosquitto_sub`/`mosquitto_pub --cafile <ca> -u
    <slug>/<user> -P <pass>` over mqtts, a live message and a retained one. A wrong password
    makes mosquitto_pub fail (so the successes above are the gateway's doing)."""
    t = server.tenant("mosq")
    cred = t.credential()
    topic = unique("demo")
    pub = mosquitto_pub(server, cred, "-t", f"{topic}/retained", "-m", "kept", "-r", "-q", "1",
                        proto=proto)
    assert pub.returncode == 0, pub.stderr
    sub = MosquittoSub(server, cred, "-V", proto, "-t", f"{topic}/#", "-q", "1")
    try:
        sub.wait_line(lambda line: line.startswith("Subscribed (mid"), "SUBACK")
        sub.wait_line(lambda line: line == f"{topic}/retained kept", "the retained message")
        pub = mosquitto_pub(server, cred, "-t", f"{topic}/hello", "-m", "hi", "-q", "1",
                            proto=proto)
        assert pub.returncode == 0, pub.stderr
        sub.wait_line(lambda line: line == f"{topic}/hello hi", "the live message")
    finally:
        sub.stop()
    bad = cred.__class__(cred.tenant, cred.id, cred.username, "wrong-password")
    refused = mosquitto_pub(server, bad, "-t", f"{topic}/x", "-m", "no", proto=proto)
    assert refused.returncode != 0, "a wrong password must make mosquitto_pub fail"

