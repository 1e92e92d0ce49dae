"""Mutual TLS end to end (issue 4, items 2 and 6): a tenant registers its CA through
`POST /v1/ca-certificates`, and its devices authenticate with client certificates — no
password; the certificate's CN becomes the device's username.

The CAs and client certificates are made here with `cryptography` (ECDSA P-256). A
certificate from A's CA must never get into B; one from an unregistered CA fails the TLS
handshake; and deleting the CA through the API locks its devices out of new connections
within 2 s.
"""

from __future__ import annotations

import time

import pytest

from mqtt_client import V5, unique
from tenants import (PROPAGATION, V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS, expect_code,
                     make_ca, poll, probe, resolve_localhost)


@pytest.fixture(autouse=True)
def _names():
    with resolve_localhost():
        yield


@pytest.fixture
def ca_dir(tmp_path):
    return tmp_path / "pki"


def bad_credentials(version) -> int:
    return expect_code(version, V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS)


def registered(server, tenant, ca) -> dict:
    """Registers `ca` for `tenant` through the API. The gateway reloads its CA list on the
    change feed; the tests poll (at most 2 s) for the first login that needs it."""
    return server.api.upload_ca(tenant.api_key, ca.pem)


def test_certificate_authenticates_the_device_as_its_cn(server, devices, version, ca_dir):
    a = server.tenant("mtls-a")
    ca = make_ca(ca_dir, f"{a.slug} devices")
    body = registered(server, a, ca)
    assert body["subject"] and body["fingerprint_sha256"]
    meter = ca.issue("meter-7")
    # SNI, `<slug>/<anything>` and the certificate alone all select A; no password anywhere.
    for kwargs in ({"sni": f"{a.slug}.mqtt.localhost"}, {"username": f"{a.slug}/ignored"}, {}):
        r = poll(lambda: probe(server, version, cert=meter, **kwargs).code == 0 or None,
                 f"certificate login with {kwargs}")
        assert r
    # The CN is the username: an ACL on `${username}` lets the device publish only below it.
    # (Once a tenant has rules, every action needs an `allow`: the watcher gets one too.)
    server.api.create_acl(a.api_key, "publish", "meters/${username}/#")
    server.api.create_acl(a.api_key, "subscribe", "meters/#")
    cred = a.credential()
    topic = unique("meters")
    watcher = devices.connected(version, cred)
    watcher.subscribe("meters/#", qos=1)
    device = devices.connected(V5, cert=meter, sni=f"{a.slug}.mqtt.localhost")
    assert device.publish("meters/meter-7/kwh", b"42", qos=1) in (0, 0x10)
    assert device.publish(f"meters/other/{topic}", b"no", qos=1) == 0x87
    watcher.wait_message("meters/meter-7/kwh", b"42")
    time.sleep(0.3)
    assert [m.topic for m in watcher.received()] == ["meters/meter-7/kwh"]


def test_certificate_of_one_tenant_presented_to_another(server, version, ca_dir):
    a, b = server.tenant("mtls-a"), server.tenant("mtls-b")
    ca = make_ca(ca_dir, "a-ca")
    registered(server, a, ca)
    b_ca = make_ca(ca_dir, "b-ca")
    registered(server, b, b_ca)
    cert = ca.issue("dev-1")
    poll(lambda: probe(server, version, cert=cert, sni=f"{a.slug}.mqtt.localhost").code == 0,
         "A's device accepted by A")
    refused = bad_credentials(version)
    assert probe(server, version, cert=cert, sni=f"{b.slug}.mqtt.localhost").code == refused
    assert probe(server, version, f"{b.slug}/x", cert=cert).code == refused
    # Not with one of B's passwords either: the certificate's tenant must match.
    b_cred = b.credential()
    assert probe(server, version, b_cred.login, b_cred.password, cert=cert).code == refused
    assert probe(server, version, b_cred.login, b_cred.password).code == 0


def test_certificate_from_an_unregistered_ca_fails_the_handshake(server, version, ca_dir):
    a = server.tenant("mtls-u")
    registered(server, a, make_ca(ca_dir, "registered"))
    stranger = make_ca(ca_dir, "stranger").issue("dev-x")
    r = probe(server, version, cert=stranger, sni=f"{a.slug}.mqtt.localhost")
    assert r.code is None, f"an unknown CA's certificate got a CONNACK: {r}"
    # Even with a valid password: the handshake itself is refused.
    cred = a.credential()
    r = probe(server, version, cred.login, cred.password, cert=stranger)
    assert r.code is None, r
    assert probe(server, version, cred.login, cred.password).code == 0


def test_deleting_the_ca_locks_its_devices_out_within_2s(server, version, ca_dir):
    a = server.tenant("mtls-d")
    ca = make_ca(ca_dir, "short-lived")
    body = registered(server, a, ca)
    cert = ca.issue("dev-2")
    poll(lambda: probe(server, version, cert=cert, sni=f"{a.slug}.mqtt.localhost").code == 0,
         "accepted before the delete")
    server.api.delete_ca(a.api_key, body["id"])
    start = time.monotonic()
    poll(lambda: probe(server, version, cert=cert, sni=f"{a.slug}.mqtt.localhost").code != 0,
         "refused after the CA was deleted", timeout=PROPAGATION)
    elapsed = time.monotonic() - start
    assert elapsed <= PROPAGATION
    # Stays refused (not a fluke of one connection).
    assert probe(server, version, cert=cert, sni=f"{a.slug}.mqtt.localhost").code != 0


def test_ca_registered_by_two_tenants_selects_neither_on_its_own(server, version, ca_dir):
    """A CA certificate is public: B may register A's. The certificate alone then selects no
    tenant (refused), A's devices naming A still get into A, and nothing lets them into B
    without naming B."""
    a, b = server.tenant("mtls-a"), server.tenant("mtls-b")
    ca = make_ca(ca_dir, "shared")
    registered(server, a, ca)
    cert = ca.issue("dev-3")
    poll(lambda: probe(server, version, cert=cert).code == 0, "certificate alone selects A")
    registered(server, b, ca)
    poll(lambda: probe(server, version, cert=cert).code == bad_credentials(version),
         "certificate alone refused once two tenants registered the CA")
    assert probe(server, version, cert=cert, sni=f"{a.slug}.mqtt.localhost").code == 0
