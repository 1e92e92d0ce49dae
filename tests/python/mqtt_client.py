"""A thin, test-friendly wrapper around a paho-mqtt (v2 callback API) client.

Every wait is bounded. Received messages, acknowledgement reason codes and disconnects are
recorded so that tests assert on them after the fact. The network loop is a thread we own
(paho's ``loop_forever`` with a short select timeout) rather than ``loop_start``: stopping it is
then quick, and there are no automatic reconnects that would hide what the broker did.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5

#: Upper bound of every positive wait ("this must happen").
WAIT = 5.0
#: How long an absence is watched after a positive control proved the path works.
QUIET = 0.5


def unique(prefix: str = "t") -> str:
    """A topic prefix or client id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def props(packet_type: int, **values: Any) -> Properties:
    """A paho ``Properties`` of ``packet_type`` with the given MQTT 5 properties set."""
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def prop(message_or_props: Any, name: str, default: Any = None) -> Any:
    """A property of a received message (or a ``Properties``), ``default`` when absent."""
    p = getattr(message_or_props, "properties", message_or_props)
    if p is None:
        return default
    return getattr(p, name, default)


@dataclass(frozen=True)
class Received:
    """One PUBLISH as the client received it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    mid: int
    properties: Properties | None
    at: float


@dataclass
class ConnAck:
    """The broker's answer to CONNECT."""

    reason_code: int
    session_present: bool
    properties: Properties | None


@dataclass
class Disconnected:
    """How the connection ended, as paho reported it."""

    reason_code: int
    from_server: bool
    properties: Properties | None
    at: float = field(default_factory=time.monotonic)


class MqttClient:
    """One MQTT connection to the broker under test."""

    def __init__(
        self,
        broker: Any,
        version: int,
        client_id: str | None = None,
        *,
        clean: bool = True,
        keepalive: int = 60,
        session_expiry: int | None = None,
        receive_maximum: int | None = None,
        maximum_packet_size: int | None = None,
        topic_alias_maximum: int | None = None,
        manual_ack: bool = False,
    ) -> None:
        self.broker = broker
        self.version = version
        self.client_id = unique("c") if client_id is None else client_id
        self.clean = clean
        self.keepalive = keepalive
        self.connect_properties: Properties | None = None
        if version == V5:
            values = {
                "SessionExpiryInterval": session_expiry,
                "ReceiveMaximum": receive_maximum,
                "MaximumPacketSize": maximum_packet_size,
                "TopicAliasMaximum": topic_alias_maximum,
            }
            values = {k: v for k, v in values.items() if v is not None}
            if values:
                self.connect_properties = props(PacketTypes.CONNECT, **values)
        else:
            assert session_expiry is None and receive_maximum is None, "MQTT 5 only"
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id or "placeholder",
            protocol=version,
            clean_session=clean if version == V311 else None,
            manual_ack=manual_ack,
            reconnect_on_failure=False,
        )
        if not self.client_id:
            # paho refuses an empty id with Clean Session 0 on its own; the tests need the
            # broker's answer to exactly that CONNECT, so the id is emptied after the check.
            self.paho._client_id = b""
        self.cond = threading.Condition()
        self.messages: list[Received] = []
        self.connack: ConnAck | None = None
        self.disconnected: Disconnected | None = None
        self._subacks: dict[int, list[int]] = {}
        self._unsubacks: dict[int, list[int]] = {}
        self._pubacks: dict[int, int] = {}
        self._thread: threading.Thread | None = None
        self.loop_error: BaseException | None = None
        self.paho.on_connect = self._on_connect
        self.paho.on_disconnect = self._on_disconnect
        self.paho.on_message = self._on_message
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_unsubscribe = self._on_unsubscribe
        self.paho.on_publish = self._on_publish

    # ---- callbacks (paho's network thread) -------------------------------------------

    def _on_connect(self, _c, _u, flags, reason_code, properties) -> None:
        with self.cond:
            self.connack = ConnAck(int(_rc(reason_code)), bool(flags.session_present), properties)
            self.cond.notify_all()

    def _on_disconnect(self, _c, _u, flags, reason_code, properties) -> None:
        with self.cond:
            self.disconnected = Disconnected(
                int(_rc(reason_code)), bool(flags.is_disconnect_packet_from_server), properties
            )
            self.cond.notify_all()

    def _on_message(self, _c, _u, m) -> None:
        r = Received(
            m.topic, bytes(m.payload), m.qos, bool(m.retain), bool(m.dup), m.mid,
            getattr(m, "properties", None), time.monotonic(),
        )
        with self.cond:
            self.messages.append(r)
            self.cond.notify_all()

    def _on_subscribe(self, _c, _u, mid, reason_codes, _p) -> None:
        with self.cond:
            self._subacks[mid] = [int(_rc(r)) for r in reason_codes]
            self.cond.notify_all()

    def _on_unsubscribe(self, _c, _u, mid, reason_codes, _p) -> None:
        with self.cond:
            self._unsubacks[mid] = [int(_rc(r)) for r in reason_codes]
            self.cond.notify_all()

    def _on_publish(self, _c, _u, mid, reason_code, _p) -> None:
        with self.cond:
            self._pubacks[mid] = int(_rc(reason_code))
            self.cond.notify_all()

    # ---- connection ------------------------------------------------------------------

    def will(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False,
             **will_props: Any) -> MqttClient:
        """Sets the will (before ``connect``); keyword arguments are MQTT 5 will properties."""
        p = props(PacketTypes.WILLMESSAGE, **will_props) if will_props else None
        self.paho.will_set(topic, payload, qos, retain, properties=p)
        return self

    def connect(self, *, expect_success: bool = True) -> ConnAck:
        """Connects and waits for CONNACK. Fails the test on refusal unless told otherwise."""
        kwargs: dict[str, Any] = {"keepalive": self.keepalive}
        if self.version == V5:
            kwargs["clean_start"] = self.clean
            kwargs["properties"] = self.connect_properties
        self.paho.connect(self.broker.host, self.broker.port, **kwargs)
        self._start_loop()
        ack = self.wait_for(lambda: self.connack or self.disconnected,
                            "CONNACK")
        if not isinstance(ack, ConnAck):
            raise AssertionError(f"{self.client_id}: connection closed before CONNACK: {ack}")
        if expect_success:
            assert ack.reason_code == 0, f"{self.client_id}: CONNACK refused: {ack}"
        return ack

    def _start_loop(self) -> None:
        t = threading.Thread(target=self._run, name=f"paho-{self.client_id}", daemon=True)
        # What paho's loop_start() sets up: with a network thread set, paho queues packets for
        # it instead of writing from the calling thread, and wakes it through the socket pair.
        self.paho._sockpairR, self.paho._sockpairW = mqtt._socketpair_compat()
        self.paho._thread = t
        self.paho._thread_terminate = False
        self._thread = t
        t.start()

    def _run(self) -> None:
        try:
            self.paho.loop_forever(timeout=0.05)
        except BaseException as e:  # surfaced by stop()
            self.loop_error = e

    def stop_network(self) -> None:
        """Stops the network loop without closing the socket: nothing is sent any more (no
        PINGREQ, no acknowledgements) while the broker still sees an open connection."""
        t = self._thread
        if t is None:
            return
        self.paho._thread_terminate = True
        self._wake()
        t.join(timeout=0.5)
        if t.is_alive():
            # Still has unacknowledged outgoing messages: closing the socket ends the loop.
            self._close_socket()
            t.join(timeout=WAIT)
        self._thread = None
        self.paho._thread = None

    def _wake(self) -> None:
        try:
            self.paho._sockpairW.send(b"0")
        except (OSError, AttributeError):
            pass

    def abort(self) -> None:
        """Closes the TCP connection without DISCONNECT, like a device losing power."""
        self.stop_network()
        self._close_socket()

    def _close_socket(self) -> None:
        sock = self.paho.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def disconnect(self, reason: int | None = None, **disconnect_props: Any) -> None:
        """Sends DISCONNECT (MQTT 5: with ``reason`` and properties) and waits for the close."""
        kwargs: dict[str, Any] = {}
        if self.version == V5:
            if reason is not None:
                kwargs["reasoncode"] = ReasonCode(PacketTypes.DISCONNECT, identifier=reason)
            if disconnect_props:
                kwargs["properties"] = props(PacketTypes.DISCONNECT, **disconnect_props)
        self.paho.disconnect(**kwargs)
        self.wait_for(lambda: self.disconnected, "the connection to close after DISCONNECT")
        self.stop_network()

    def close(self) -> None:
        """Teardown: ends the connection whatever its state."""
        if self._thread is not None and self.disconnected is None and self.connack is not None:
            try:
                self.paho.disconnect()
                self.wait_for(lambda: self.disconnected, "close", timeout=1.0)
            except (AssertionError, OSError):
                pass
        self.stop_network()
        self._close_socket()
        for s in (self.paho._sockpairR, self.paho._sockpairW):
            if s is not None:
                s.close()
        self.paho._sockpairR = self.paho._sockpairW = None

    @property
    def connected(self) -> bool:
        return self.connack is not None and self.disconnected is None

    # ---- operations ------------------------------------------------------------------

    def subscribe(self, topic: str | list, qos: int = 0, *, no_local: bool = False,
                  retain_as_published: bool = False, retain_handling: int = 0,
                  sub_id: int | None = None, check: bool = True) -> list[int]:
        """Subscribes and waits for SUBACK; returns its reason codes. ``topic`` may be a list
        of ``(filter, qos)``. With ``check``, every filter must be granted."""
        filters = topic if isinstance(topic, list) else [(topic, qos)]
        p = None
        if self.version == V5:
            filters = [
                (f, SubscribeOptions(qos=q, noLocal=no_local,
                                     retainAsPublished=retain_as_published,
                                     retainHandling=retain_handling))
                for f, q in filters
            ]
            if sub_id is not None:
                p = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id)
        else:
            assert not (no_local or retain_as_published or retain_handling or sub_id), "MQTT 5"
        rc, mid = self.paho.subscribe(filters, properties=p)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe not sent: {rc}"
        self.wait_for(lambda: mid in self._subacks, f"SUBACK {mid}")
        codes = self._subacks[mid]
        if check:
            assert all(c < 0x80 for c in codes), f"subscription refused: {codes}"
        return codes

    def unsubscribe(self, topic: str) -> list[int]:
        rc, mid = self.paho.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        self.wait_for(lambda: mid in self._unsubacks, f"UNSUBACK {mid}")
        return self._unsubacks[mid]  # MQTT 3.1.1 UNSUBACK has no reason codes: []

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False,
                *, wait: bool = True, **publish_props: Any) -> int | None:
        """Publishes; with ``wait``, waits for the end of the QoS flow (PUBACK / PUBCOMP, or
        for QoS 0 the write) and returns the MQTT 5 reason code of the acknowledgement."""
        p = props(PacketTypes.PUBLISH, **publish_props) if publish_props else None
        info = self.paho.publish(topic, payload, qos, retain, properties=p)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish not queued: {info.rc}"
        if not wait:
            return None
        if qos == 0:
            info.wait_for_publish(WAIT)
            assert info.is_published(), "QoS 0 PUBLISH not written"
            return None
        self.wait_for(lambda: info.mid in self._pubacks, f"ack of PUBLISH {info.mid}")
        return self._pubacks[info.mid]

    def ack(self, message: Received) -> None:
        """Acknowledges a message received with ``manual_ack``."""
        self.paho.ack(message.mid, message.qos)

    # ---- waiting ---------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """Waits until ``predicate()`` is truthy and returns its value; fails after
        ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.client_id}: timed out after {timeout}s waiting for {what}; "
                        f"received {[(m.topic, m.payload) for m in self.messages]}, "
                        f"disconnected={self.disconnected}"
                    )
                self.cond.wait(left)

    def received(self, topic: str | None = None) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if topic is None or m.topic == topic]

    def wait_messages(self, n: int, topic: str | None = None,
                      timeout: float = WAIT) -> list[Received]:
        """Waits for at least ``n`` messages (on ``topic``) and returns them all."""
        self.wait_for(lambda: len(self.received(topic)) >= n, f"{n} message(s) on {topic}",
                      timeout)
        return self.received(topic)

    def wait_message(self, topic: str, payload: bytes | None = None,
                     timeout: float = WAIT) -> Received:
        """Waits for a message on ``topic`` (with ``payload``) and returns the first such."""
        def find():
            return next((m for m in self.received(topic)
                         if payload is None or m.payload == payload), None)
        return self.wait_for(find, f"{payload!r} on {topic}", timeout)

    def wait_disconnected(self, timeout: float = WAIT) -> Disconnected:
        return self.wait_for(lambda: self.disconnected, "the connection to close", timeout)

    def clear(self) -> None:
        with self.cond:
            self.messages.clear()


def _rc(reason_code: Any) -> int:
    """A paho ReasonCode, int or None as an int (paho gives ints for some v3 paths)."""
    if reason_code is None:
        return 0
    if isinstance(reason_code, ReasonCode):
        return reason_code.value
    return int(reason_code)


class Clients:
    """Creates clients for one test and closes them all at its end."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.all: list[MqttClient] = []

    def new(self, version: int, client_id: str | None = None, **kwargs: Any) -> MqttClient:
        c = MqttClient(self.broker, version, client_id, **kwargs)
        self.all.append(c)
        return c

    def connected(self, version: int, client_id: str | None = None, **kwargs: Any) -> MqttClient:
        c = self.new(version, client_id, **kwargs)
        c.connect()
        return c

    def close_all(self) -> None:
        for c in self.all:
            c.close()


def payloads(messages: Iterable[Received]) -> list[bytes]:
    return [m.payload for m in messages]


def marker_sync(publisher: MqttClient, subscriber: MqttClient, topic: str) -> Received:
    """Publishes a unique marker on ``topic`` (which ``subscriber`` must receive) and waits for
    it: everything the publisher sent before it has been routed by then (one connection's
    packets are handled in order), so an absence checked afterwards is meaningful."""
    token = uuid.uuid4().hex.encode()
    publisher.publish(topic, token, qos=1)
    return subscriber.wait_message(topic, token)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Polls ``predicate`` (for conditions spanning several clients) until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
