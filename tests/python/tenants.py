"""Helpers of the multi-tenant end-to-end tests (`test_tenants_*.py`): the full
`tenantmq standalone` (mqtts, wss, control API), its HTTP API, TLS devices and raw probes.

* :func:`start_standalone` runs the binary with every listener on port 0 and reads
  `<data-dir>/endpoints.json` (keys `mqtts`, `wss`, `api`, `ca_file`, `operator_token_file`).
* :class:`Api` speaks the control API with `urllib` (tenant calls with an API key, operator
  calls with the token of `operator_token_file`).
* :class:`Device` is the suite's paho wrapper (`mqtt_client.MqttClient`) over mqtts or wss,
  with username/password, an optional SNI name and an optional client certificate.
* :func:`probe` sends one hand-made CONNECT over TLS and returns the CONNACK's code byte as
  the wire carries it (3.1.1 return code or MQTT 5 reason code) — paho maps 3.1.1 codes to
  MQTT 5 ones, and the tests want the exact byte.

**Source addresses.** The gateway rate-limits failed authentications per source IP (10 in a
burst, then 30 a minute). Linux routes all of 127.0.0.0/8 to loopback, so every connection
here binds a source address of its own (:func:`next_source`) unless a test picks one: tests
that are refused on purpose never use up each other's allowance, and the rate-limit test can
show that the limit is per source.

**SNI names.** `<slug>.mqtt.localhost` (the default base domain is `mqtt.localhost`) does
not resolve on every machine. :func:`resolve_localhost` patches `socket.getaddrinfo` in this
process so that `*.localhost` maps to 127.0.0.1: paho then connects to 127.0.0.1 while sending
the SNI name. OpenSSL-based clients refuse a wildcard directly above a single-label name (as
for `*.com`, RFC 6125 section 7.2), so for names of two labels (:func:`hostname_checkable`,
used by attack probes like `<slug>.localhost`) only the chain is verified; names under the
base domain are checked fully.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import itertools
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from mqtt_client import V5, V311, WAIT, ConnAck, MqttClient

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0

#: How long a control-plane change may take to reach new connections (issue 4, item 3).
PROPAGATION = 2.0

# CONNACK codes as they are on the wire.
V5_SUCCESS = 0x00
V5_BAD_CREDENTIALS = 0x86
V5_NOT_AUTHORIZED = 0x87
V5_RATE_EXCEEDED = 0x9F
V5_PACKET_TOO_LARGE = 0x95
V311_ACCEPTED = 0
V311_SERVER_UNAVAILABLE = 3
V311_BAD_CREDENTIALS = 4
V311_NOT_AUTHORIZED = 5

#: paho reports 3.1.1 return codes as MQTT 5 reason codes (3 → 0x88, 4 → 0x86, 5 → 0x87).
PAHO_V311 = {V311_SERVER_UNAVAILABLE: 0x88, V311_BAD_CREDENTIALS: 0x86,
             V311_NOT_AUTHORIZED: 0x87}


def binary() -> Path:
    path = Path(os.environ.get("TENANTMQ_BIN", REPO_ROOT / "target" / "debug" / "tenantmq"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        pytest.exit(f"broker binary not found at {path}: build it or set TENANTMQ_BIN", 2)
    return path


# ---- source addresses and name resolution ---------------------------------------------

_sources = itertools.count(1)
_sources_lock = threading.Lock()


def next_source() -> str:
    """A loopback address no other connection of this process used (127.0.1.1, 127.0.1.2, …):
    its own failed-authentication allowance."""
    with _sources_lock:
        n = next(_sources)
    return str(ipaddress.IPv4Address("127.0.1.0") + n)


_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if isinstance(host, str) and host.lower().endswith(".localhost"):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


def hostname_checkable(name: str) -> bool:
    """Whether an OpenSSL client can match `name` against the generated certificate: any
    name of three labels or more under a wildcard, and `localhost` itself (exact SAN)."""
    return name.count(".") >= 2 or name.lower() == "localhost"


@contextlib.contextmanager
def resolve_localhost() -> Iterator[None]:
    """`*.localhost` resolves to 127.0.0.1 in this process while the context is open (the
    network threads of paho clients included). The SNI name a client sends is still the name
    it was given."""
    socket.getaddrinfo = _getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = _real_getaddrinfo


# ---- the standalone process -----------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """Where a client connects (what `MqttClient` reads as its `broker`)."""

    host: str
    port: int


def _endpoint(address: str) -> Endpoint:
    host, port = address.rsplit(":", 1)
    return Endpoint(host, int(port))


@dataclass
class Standalone:
    """A running `tenantmq standalone` with mqtts, wss and the control API."""

    proc: subprocess.Popen
    data_dir: Path
    log_path: Path
    mqtts: Endpoint
    wss: Endpoint
    api_url: str
    ca_file: Path
    operator_token: str
    api: Api = field(init=False)

    def __post_init__(self) -> None:
        self.api = Api(self.api_url, self.operator_token)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        """Fails when the process died or one of its tasks panicked."""
        if self.proc.poll() is not None:
            pytest.fail(f"standalone exited unexpectedly (code {self.proc.returncode}):\n"
                        f"{self.log()[-20000:]}")
        if "panicked" in self.log():
            pytest.fail(f"standalone panicked:\n{self.log()[-20000:]}")

    def stop(self) -> None:
        """SIGTERM to our own child, then SIGKILL after a timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
                pytest.fail(f"standalone ignored SIGTERM for {STOP_TIMEOUT}s")
        if self.proc.returncode != 0:
            pytest.fail(f"standalone exited with {self.proc.returncode} on SIGTERM:\n"
                        f"{self.log()[-20000:]}")

    # -- shortcuts --

    def tenant(self, prefix: str = "t") -> Tenant:
        """A new tenant signed up through the API, with a unique slug."""
        return self.api.signup(f"{prefix}-{uuid.uuid4().hex[:10]}")

    def device(self, version: int, cred: Credential | None = None, **kwargs: Any) -> Device:
        """A device (not yet connected) using `cred` as `<slug>/<username>`."""
        if cred is not None:
            kwargs.setdefault("username", f"{cred.tenant.slug}/{cred.username}")
            kwargs.setdefault("password", cred.password)
        return Device(self, version, **kwargs)


def start_standalone(data_dir: Path, *extra: str, generous_signups: bool = True) -> Standalone:
    """Starts `tenantmq standalone` on ephemeral ports. `generous_signups` lifts the signup
    limit per client IP (5 a minute by default), which every test would otherwise hit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "standalone.log"
    endpoints = data_dir / "endpoints.json"
    args = [str(binary()), "standalone",
            "--mqtts-listen", "127.0.0.1:0", "--wss-listen", "127.0.0.1:0",
            "--api-listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0",
            "--data-dir", str(data_dir)]
    if generous_signups:
        args += ["--signup-per-minute", "1000", "--signup-burst", "1000"]
    args += list(extra)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT,
                                env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"})
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"standalone exited during startup:\n{log_path.read_text()}")
        try:
            # Renamed into place by the binary, so never read half-written.
            e = json.loads(endpoints.read_text())
            break
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"no endpoints.json after {STARTUP_TIMEOUT}s:\n"
                               f"{log_path.read_text()}")
        time.sleep(0.02)
    token = Path(e["operator_token_file"]).read_text().strip()
    return Standalone(proc, data_dir, log_path, _endpoint(e["mqtts"]), _endpoint(e["wss"]),
                      f"http://{e['api']}", Path(e["ca_file"]), token)


# ---- the control API ------------------------------------------------------------------

class ApiError(AssertionError):
    def __init__(self, status: int, body: Any, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {body}")
        self.status = status
        self.body = body


@dataclass
class Tenant:
    id: str
    slug: str
    api_key: str
    api: Api

    def credential(self, username: str | None = None, password: str | None = None) -> Credential:
        """A new device credential (random username and password unless given)."""
        username = username or f"dev-{uuid.uuid4().hex[:8]}"
        password = password or f"pw-{uuid.uuid4().hex}"
        body = self.api.create_credential(self.api_key, username, password)
        return Credential(self, body["id"], username, password)


@dataclass
class Credential:
    tenant: Tenant
    id: str
    username: str
    password: str

    @property
    def login(self) -> str:
        """The username form `<slug>/<username>`."""
        return f"{self.tenant.slug}/{self.username}"


class Api:
    """The control API over HTTP (`docs/control-api.md`)."""

    def __init__(self, base: str, operator_token: str) -> None:
        self.base = base
        self.operator_token = operator_token

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             expect: int | tuple[int, ...] | None = None) -> tuple[int, Any, dict]:
        """One request; returns (status, decoded JSON or None, headers). With `expect`, any
        other status fails the test."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if token is not None:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, raw, headers = r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, raw, headers = e.code, e.read(), dict(e.headers)
        decoded = json.loads(raw) if raw else None
        if expect is not None:
            allowed = (expect,) if isinstance(expect, int) else expect
            if status not in allowed:
                raise ApiError(status, decoded, f"{method} {path}")
        return status, decoded, headers

    def signup(self, slug: str) -> Tenant:
        _, body, _ = self.call("POST", "/v1/signup",
                               {"name": slug, "slug": slug, "email": f"ops@{slug}.example"},
                               expect=201)
        return Tenant(body["tenant"]["id"], body["tenant"]["slug"], body["api_key"], self)

    def create_credential(self, key: str, username: str, password: str) -> dict:
        return self.call("POST", "/v1/credentials", {"username": username, "password": password},
                         key, expect=201)[1]

    def delete_credential(self, key: str, credential_id: str) -> None:
        self.call("DELETE", f"/v1/credentials/{credential_id}", token=key, expect=204)

    def create_acl(self, key: str, action: str, topic_filter: str, permission: str = "allow",
                   credential_id: str | None = None) -> dict:
        body = {"action": action, "topic_filter": topic_filter, "permission": permission}
        if credential_id is not None:
            body["credential_id"] = credential_id
        return self.call("POST", "/v1/acls", body, key, expect=201)[1]

    def upload_ca(self, key: str, pem: str) -> dict:
        return self.call("POST", "/v1/ca-certificates", {"pem": pem}, key, expect=201)[1]

    def delete_ca(self, key: str, ca_id: str) -> None:
        self.call("DELETE", f"/v1/ca-certificates/{ca_id}", token=key, expect=204)

    def set_status(self, tenant_id: str, status: str) -> dict:
        """Operator: `PATCH /v1/admin/tenants/{id}` with `{"status": …}`."""
        return self.call("PATCH", f"/v1/admin/tenants/{tenant_id}", {"status": status},
                         self.operator_token, expect=200)[1]

    def delete_tenant(self, tenant_id: str) -> None:
        """Operator: `DELETE /v1/admin/tenants/{id}`."""
        self.call("DELETE", f"/v1/admin/tenants/{tenant_id}", token=self.operator_token,
                  expect=204)


# ---- devices --------------------------------------------------------------------------

@dataclass(frozen=True)
class CertFiles:
    """A client certificate and its key, as PEM files."""

    cert: Path
    key: Path


class Device(MqttClient):
    """A paho client over mqtts (default) or wss (`transport="wss"`), from its own source
    address. `sni` is the host name connected to — and so the SNI name sent and the name the
    server certificate is checked against (use it inside :func:`resolve_localhost`); without
    it the client connects to 127.0.0.1, for which no SNI is sent."""

    def __init__(self, server: Standalone, version: int, client_id: str | None = None, *,
                 username: str | None = None, password: str | None = None,
                 transport: str = "mqtts", sni: str | None = None,
                 cert: CertFiles | None = None, source: str | None = None,
                 **kwargs: Any) -> None:
        endpoint = server.wss if transport == "wss" else server.mqtts
        super().__init__(Endpoint(sni or endpoint.host, endpoint.port), version, client_id,
                         **kwargs)
        self.source = source or next_source()
        self.paho.tls_set(ca_certs=str(server.ca_file),
                          certfile=str(cert.cert) if cert else None,
                          keyfile=str(cert.key) if cert else None)
        if transport == "wss":
            self.paho.transport = "websockets"
            self.paho.ws_set_options(path="/mqtt")
        if sni is not None and not hostname_checkable(sni):
            self.paho.tls_insecure_set(True)  # the chain is still verified (see above)
        if username is not None or password is not None:
            self.paho.username_pw_set(username or "", password)

    def connect(self, *, expect_success: bool = True) -> ConnAck:
        """As `MqttClient.connect`, from `self.source`. A refused TLS handshake raises
        `ssl.SSLError`/`OSError` from here; a close before CONNACK is an AssertionError."""
        kwargs: dict[str, Any] = {"keepalive": self.keepalive, "bind_address": self.source}
        if self.version == V5:
            kwargs["clean_start"] = self.clean
            kwargs["properties"] = self.connect_properties
        self.paho.connect(self.broker.host, self.broker.port, **kwargs)
        self._start_loop()
        ack = self.wait_for(lambda: self.connack or self.disconnected, "CONNACK")
        if not isinstance(ack, ConnAck):
            raise AssertionError(f"{self.client_id}: connection closed before CONNACK: {ack}")
        if expect_success:
            assert ack.reason_code == 0, f"{self.client_id}: CONNACK refused: {ack}"
        return ack

    def _close_socket(self) -> None:
        # Over wss paho's socket is a WebSocket wrapper without `shutdown`: drop the TCP
        # connection under it (no Close frame, no DISCONNECT — a device losing power).
        sock = self.paho.socket()
        if sock is None:
            return
        inner = getattr(sock, "_socket", sock)
        try:
            inner.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


class Devices:
    """Creates devices for one test and closes them all at its end."""

    def __init__(self, server: Standalone) -> None:
        self.server = server
        self.all: list[Device] = []

    def new(self, version: int, cred: Credential | None = None, **kwargs: Any) -> Device:
        d = self.server.device(version, cred, **kwargs)
        self.all.append(d)
        return d

    def connected(self, version: int, cred: Credential | None = None, **kwargs: Any) -> Device:
        d = self.new(version, cred, **kwargs)
        d.connect()
        return d

    def close_all(self) -> None:
        for d in self.all:
            d.close()


def paho_code(version: int, v5: int, v311: int) -> int:
    """The code paho reports for a refusal that is `v5` in MQTT 5 and `v311` in 3.1.1."""
    return v5 if version == V5 else PAHO_V311.get(v311, v311)


# ---- raw probes -----------------------------------------------------------------------

def _utf8(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(version: int, client_id: str, username: str | None = None,
                   password: str | None = None, *, keepalive: int = 30,
                   padding: int = 0) -> bytes:
    """A CONNECT (clean start, no will). `padding` bytes are added to the client id and the
    password (each field holds at most 65535) to make an oversized packet."""
    flags = 0x02
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    level = 5 if version == V5 else 4
    variable = _utf8("MQTT") + bytes([level, flags]) + struct.pack("!H", keepalive)
    if version == V5:
        variable += _varint(0)  # no properties
    in_id = min(padding, 60_000)
    payload = _utf8(client_id + "x" * in_id)
    if username is not None:
        payload += _utf8(username)
    if password is not None:
        payload += _utf8(password + "p" * (padding - in_id))
    body = variable + payload
    return bytes([0x10]) + _varint(len(body)) + body


@dataclass
class ProbeResult:
    """What a raw CONNECT got: the CONNACK code byte, or how the connection ended without
    one."""

    code: int | None
    closed: str | None = None


def tls_socket(server: Standalone, *, sni: str | None = None, source: str | None = None,
               cert: CertFiles | None = None, alpn: list[str] | None = None,
               endpoint: Endpoint | None = None, timeout: float = WAIT,
               check_name: bool = True) -> ssl.SSLSocket:
    """A TLS connection to the mqtts listener (or `endpoint`), server certificate verified
    against the standalone CA, and against `sni` when given, `check_name` and
    :func:`hostname_checkable` allow (an attacker's client need not check anything)."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    if sni is None or not check_name or not hostname_checkable(sni):
        ctx.check_hostname = False  # the chain is still verified against the CA
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    ep = endpoint or server.mqtts
    raw = socket.create_connection((ep.host, ep.port), timeout=timeout,
                                   source_address=(source or next_source(), 0))
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def read_connack(sock: socket.socket) -> ProbeResult:
    """Reads one CONNACK; a close or TLS alert before it is reported in `closed`."""
    buf = b""
    try:
        while len(buf) < 4:
            chunk = sock.recv(4096)
            if not chunk:
                return ProbeResult(None, f"closed after {buf!r}")
            buf += chunk
    except (ssl.SSLError, OSError) as e:
        return ProbeResult(None, f"{type(e).__name__}: {e}")
    assert buf[0] == 0x20, f"not a CONNACK: {buf!r}"
    return ProbeResult(buf[3])


def probe(server: Standalone, version: int, username: str | None = None,
          password: str | None = None, *, sni: str | None = None, source: str | None = None,
          cert: CertFiles | None = None, client_id: str | None = None,
          check_name: bool = True) -> ProbeResult:
    """Connects over TLS, sends one CONNECT and returns the CONNACK's code byte (3.1.1
    return code or MQTT 5 reason code). A refused handshake is a `closed` result."""
    try:
        sock = tls_socket(server, sni=sni, source=source, cert=cert, check_name=check_name)
    except (ssl.SSLError, OSError) as e:
        return ProbeResult(None, f"handshake: {type(e).__name__}: {e}")
    with sock:
        try:
            sock.sendall(connect_packet(version, client_id or f"probe-{uuid.uuid4().hex[:8]}",
                                        username, password))
        except (ssl.SSLError, OSError) as e:
            return ProbeResult(None, f"send: {type(e).__name__}: {e}")
        return read_connack(sock)


def expect_code(version: int, v5: int, v311: int) -> int:
    """The wire code expected for a refusal: `v5` under MQTT 5, `v311` under 3.1.1."""
    return v5 if version == V5 else v311


def poll(predicate, what: str, timeout: float = PROPAGATION, interval: float = 0.05) -> Any:
    """Polls until `predicate()` is truthy (returns it); fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what} (last: {last!r})")
        time.sleep(interval)


# ---- certificates (mutual TLS) --------------------------------------------------------

@dataclass
class DeviceCa:
    """A CA made by the test, able to issue client certificates."""

    pem: str
    key: Any
    cert: Any
    directory: Path

    def issue(self, common_name: str) -> CertFiles:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        stem = self.directory / f"{common_name}-{uuid.uuid4().hex[:6]}"
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return CertFiles(cert_path, key_path)


def make_ca(directory: Path, common_name: str) -> DeviceCa:
    """A new self-signed CA (ECDSA P-256, `CA:TRUE`, keyCertSign)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return DeviceCa(pem, key, cert, directory)


__all__ = [
    "V5", "V311", "Api", "ApiError", "CertFiles", "Credential", "Device", "Devices",
    "Endpoint", "ProbeResult", "Standalone", "Tenant", "DeviceCa", "connect_packet",
    "expect_code", "hostname_checkable", "make_ca", "next_source", "paho_code", "poll", "probe", "read_connack",
    "resolve_localhost", "start_standalone", "tls_socket",
]
