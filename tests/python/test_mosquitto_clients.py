"""The Eclipse Mosquitto command-line clients, `mosquitto_pub` and `mosquitto_sub`, against the
real listener, in both protocol versions. Every process runs under a timeout and is ended by
its PID."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest

from mqtt_client import unique

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("mosquitto_sub", "mosquitto_pub", "stdbuf")),
    reason="mosquitto-clients is not installed",
)

VERSIONS = pytest.mark.parametrize("proto", ["mqttv311", "mqttv5"])
TIMEOUT = 10.0
# Payload last: it may contain the separator.
FORMAT = "MSG|%t|%q|%r|%S|%E|%A|%P|%p"


@dataclass
class Msg:
    topic: str
    qos: int
    retain: bool
    sub_ids: str
    expiry: str
    alias: str
    user_props: str
    payload: str


class Sub:
    """A running `mosquitto_sub -d`: its debug lines tell when it is subscribed."""

    def __init__(self, broker, *args: str, proto: str = "mqttv311") -> None:
        # stdbuf: line-buffered output through the pipe, so lines are seen as they happen.
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", proto, "-d",
               "-F", FORMAT, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pred, what: str, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hit = next((line for line in self.lines if pred(line)), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(f"no {what}; output:\n" + "\n".join(self.lines))
                self.cond.wait(min(left, 0.1))

    def wait_subscribed(self) -> str:
        return self.wait_line(lambda line: line.startswith("Subscribed (mid"), "SUBACK")

    def messages(self) -> list[Msg]:
        with self.cond:
            out = []
            for line in self.lines:
                if line.startswith("MSG|"):
                    f = line.split("|", 8)
                    out.append(Msg(f[1], int(f[2]), f[3] == "1", f[4], f[5], f[6], f[7], f[8]))
            return out

    def wait_messages(self, n: int, timeout: float = TIMEOUT) -> list[Msg]:
        self.wait_line(lambda _l: len(self.messages()) >= n, f"{n} messages", timeout)
        return self.messages()

    def wait_payload(self, payload: str, timeout: float = TIMEOUT) -> Msg:
        self.wait_line(lambda _l: any(m.payload == payload for m in self.messages()),
                       f"message {payload!r}", timeout)
        return next(m for m in self.messages() if m.payload == payload)

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        rc = self.proc.wait(timeout)
        self.reader.join(timeout)
        return rc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        self.reader.join(TIMEOUT)


@pytest.fixture
def subs():
    started: list[Sub] = []

    def start(broker, *args: str, proto: str = "mqttv311") -> Sub:
        s = Sub(broker, *args, proto=proto)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def pub(broker, *args: str, proto: str = "mqttv311", stdin: str | None = None) -> str:
    r = subprocess.run(
        ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", proto, *args],
        input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert r.returncode == 0, f"mosquitto_pub {args} failed: {r.stdout}{r.stderr}"
    return r.stdout


@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pub_sub_each_qos(broker, subs, proto, qos):
    p = unique("mq")
    s = subs(broker, "-t", f"{p}/#", "-q", str(qos), "-C", "5", proto=proto)
    assert s.wait_subscribed().endswith(f": {qos}"), "granted QoS"
    lines = [f"line {i}" for i in range(5)]
    pub(broker, "-t", f"{p}/x", "-q", str(qos), "-l", stdin="\n".join(lines) + "\n", proto=proto)
    assert s.wait_exit() == 0
    got = s.messages()
    assert [m.payload for m in got] == lines
    assert {(m.topic, m.qos, m.retain) for m in got} == {(f"{p}/x", qos, False)}


@VERSIONS
def test_retained_message_for_a_late_subscriber(broker, subs, proto):
    p = unique("mqr")
    pub(broker, "-t", f"{p}/r", "-m", "stored", "-r", "-q", "1", proto=proto)
    r = subprocess.run(
        ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", proto,
         "-t", f"{p}/#", "-q", "2", "-C", "1", "-W", "5", "-F", "%t|%r|%q|%p"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{p}/r|1|1|stored"

    # An empty retained message (-n) deletes it; another topic's stays.
    pub(broker, "-t", f"{p}/keep", "-m", "kept", "-r", "-q", "1", proto=proto)
    pub(broker, "-t", f"{p}/r", "-n", "-r", "-q", "1", proto=proto)
    s = subs(broker, "-t", f"{p}/#", "-q", "1", proto=proto)
    s.wait_subscribed()
    pub(broker, "-t", f"{p}/marker", "-m", "marker", "-q", "1", proto=proto)
    s.wait_payload("marker")
    assert [(m.topic, m.payload) for m in s.messages() if m.retain] == [(f"{p}/keep", "kept")]


@VERSIONS
def test_wildcard_subscriptions(broker, subs, proto):
    p = unique("mqw")
    s = subs(broker, "-t", f"{p}/+/temp", "-t", f"{p}/alarm/#", "-q", "1", proto=proto)
    s.wait_subscribed()
    for t in ["a/temp", "b/temp", "a/hum", "a/b/temp", "alarm", "alarm/x/y"]:
        pub(broker, "-t", f"{p}/{t}", "-m", t, "-q", "1", proto=proto)
    pub(broker, "-t", f"{p}/m/temp", "-m", "marker", "-q", "1", proto=proto)
    s.wait_payload("marker")
    assert [m.payload for m in s.messages()] == ["a/temp", "b/temp", "alarm", "alarm/x/y", "marker"]


@VERSIONS
def test_will_of_a_killed_client(broker, subs, proto):
    p = unique("mqwill")
    watcher = subs(broker, "-t", f"{p}/will", "-q", "1", proto=proto)
    watcher.wait_subscribed()

    def client_with_will(name: str, *args: str) -> Sub:
        c = subs(broker, "-t", f"{p}/x", "--will-topic", f"{p}/will", "--will-payload",
                 f"{name} died", "--will-qos", "1", *args, proto=proto)
        c.wait_subscribed()
        return c

    # Done after one message: a normal DISCONNECT, no will.
    polite = client_with_will("polite", "-C", "1")
    pub(broker, "-t", f"{p}/x", "-m", "bye", proto=proto)
    assert polite.wait_exit() == 0
    # SIGINT: 3.1.1 disconnects normally (no will); MQTT 5 mosquitto_sub sends DISCONNECT
    # 0x04 "Disconnect with Will Message", and the will goes out.
    interrupted = client_with_will("interrupted")
    interrupted.proc.send_signal(signal.SIGINT)
    interrupted.wait_exit()
    if proto == "mqttv5":
        watcher.wait_payload("interrupted died")
    # SIGKILL: the socket closes without DISCONNECT, and the will goes out.
    victim = client_with_will("victim")
    victim.proc.kill()
    victim.proc.wait(TIMEOUT)
    assert watcher.wait_payload("victim died").qos == 1
    expected = (["interrupted died"] if proto == "mqttv5" else []) + ["victim died"]
    assert [x.payload for x in watcher.messages()] == expected


@VERSIONS
def test_persistent_session_gets_messages_sent_while_away(broker, subs, proto):
    p = unique("mqs")
    cid = unique("mosq")
    extra = ["-x", "60"] if proto == "mqttv5" else []
    # -E: connect, subscribe, disconnect; the session (with its subscription) stays.
    first = subs(broker, "-c", "-i", cid, "-q", "1", "-t", p, "-E", *extra, proto=proto)
    assert first.wait_exit() == 0
    for i in range(3):
        pub(broker, "-t", p, "-m", f"away {i}", "-q", "1", proto=proto)
    back = subs(broker, "-c", "-i", cid, "-q", "1", "-t", p, "-C", "3", *extra, proto=proto)
    assert back.wait_exit() == 0
    assert [m.payload for m in back.messages()] == [f"away {i}" for i in range(3)]
    assert any("received CONNACK (0)" in line for line in back.lines)


def test_v5_subscription_identifier_and_properties(broker, subs):
    p = unique("mq5")
    s = subs(broker, "-t", f"{p}/#", "-q", "1", "-D", "subscribe", "subscription-identifier",
             "7", proto="mqttv5")
    s.wait_subscribed()
    pub(broker, "-t", f"{p}/a", "-m", "props", "-q", "1",
        "-D", "publish", "message-expiry-interval", "60",
        "-D", "publish", "user-property", "k", "v", proto="mqttv5")
    m = s.wait_payload("props")
    assert m.sub_ids == "7"
    assert 0 < int(m.expiry) <= 60
    assert m.user_props == "k:v"


def test_v5_client_topic_alias(broker, subs):
    # mosquitto_pub -l sends the topic once, then the alias alone. (Aliases towards the
    # client are left to the paho tests: libmosquitto 2.0 refuses a PUBLISH with an empty
    # topic even after announcing a Topic Alias Maximum.)
    p = unique("mqa")
    s = subs(broker, "-t", f"{p}/#", "-q", "1", proto="mqttv5")
    s.wait_subscribed()
    pub(broker, "-t", f"{p}/aliased", "-q", "1", "-l", "-D", "publish", "topic-alias", "1",
        stdin="one\ntwo\nthree\n", proto="mqttv5")
    got = s.wait_messages(3)
    assert [(m.topic, m.payload) for m in got] == [(f"{p}/aliased", x) for x in ("one", "two", "three")]


def test_v5_empty_client_id_gets_assigned(broker, subs):
    # Without -i, mosquitto_sub's MQTT 5 CONNECT has an empty client id.
    s = subs(broker, "-t", unique("mqid"), proto="mqttv5")
    s.wait_subscribed()
    line = s.wait_line(lambda line: "received CONNACK" in line, "CONNACK")
    assert "Client (null)" not in line, "the assigned identifier replaces the empty one"
