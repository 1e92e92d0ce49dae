"""Keep alive (spec 3.1.2.10, `MQTT-3.1.2-22`): a client silent for 1.5 × its keep alive is
disconnected (MQTT 5: DISCONNECT 0x8D) and its will published; PINGREQ keeps it alive; keep
alive 0 turns the check off."""

import socket
import time

from mqtt_client import V5, prop, unique


def _drain(sock: socket.socket, timeout: float) -> bytes:
    """Everything the broker still sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def test_silent_client_is_disconnected_after_one_and_a_half_keepalives(clients, version):
    p = unique("ka")
    watcher = clients.connected(version)
    watcher.subscribe(f"{p}/#", 1)
    dev = clients.new(version, keepalive=1)
    dev.will(f"{p}/will", b"timed out", 1).connect()
    connected_at = time.monotonic()
    dev.stop_network()  # the socket stays open; no PINGREQ is sent any more

    m = watcher.wait_message(f"{p}/will", timeout=4)
    waited = m.at - connected_at
    # The timer starts at the last packet received (the CONNECT, just before CONNACK).
    assert 1.3 <= waited <= 2.5, f"closed after {waited:.2f}s; keep alive 1s allows 1.5s"
    rest = _drain(dev.paho.socket(), timeout=2)
    if version == V5:
        # The DISCONNECT before the close names the reason: 0x8D Keep Alive timeout.
        assert rest[:1] == b"\xe0" and rest[2:3] == b"\x8d", rest
    else:
        assert rest == b"", "3.1.1 has no DISCONNECT from the server"


def test_pinging_client_stays_connected_and_keepalive_zero_never_times_out(clients, version):
    p = unique("kap")
    watcher = clients.connected(version)
    watcher.subscribe(f"{p}/#", 1)
    pinging = clients.new(version, keepalive=1)
    pinging.will(f"{p}/will", b"pinging died", 1).connect()
    pinging.subscribe(f"{p}/data", 1)
    silent = clients.new(version, keepalive=0)
    silent.will(f"{p}/will", b"silent died", 1).connect()
    silent.stop_network()

    time.sleep(2.6)  # well past 1.5 s twice over for the first, and past it for any default
    assert pinging.connected, pinging.disconnected
    assert not watcher.received(f"{p}/will"), [m.payload for m in watcher.received()]
    watcher.publish(f"{p}/data", b"still there", 1)
    pinging.wait_message(f"{p}/data", b"still there")
    assert silent.paho.socket().fileno() >= 0
    silent.paho.socket().setblocking(False)
    try:
        assert silent.paho.socket().recv(1) != b"", "keep alive 0: the broker closed"
    except BlockingIOError:
        pass  # open and silent, as it should be


def test_v5_connack_has_no_server_keep_alive_when_the_plan_has_no_cap(clients):
    # The dev tenant allows any keep alive, so the broker must not override the client's
    # (Server Keep Alive is only sent to impose a different value, MQTT 5 3.2.2.3.14).
    for ka in (0, 1, 60, 65535):
        c = clients.new(V5, keepalive=ka)
        assert prop(c.connect(), "ServerKeepAlive") is None
        c.disconnect()
