"""Identity attacks on tenant selection and device authentication (issue 4, items 3 and 6).

Each refusal is checked on the wire with a hand-made CONNECT (`tenants.probe`): the MQTT 5
reason code or the 3.1.1 return code byte exactly as sent (0x86 / 4 "bad user name or
password"). Each also has its positive control — the same connection with the one thing the
attacker got wrong put right is accepted — so a refusal for an unrelated reason (a broken
listener, an exhausted rate limit) cannot pass for the check. Every probe comes from its own
loopback source address, so the per-source failure limit never interferes.

SNI names `<slug>.localhost` are resolved to 127.0.0.1 inside this process
(`tenants.resolve_localhost`); the probe sends them as SNI and checks the server certificate
against them.
"""

from __future__ import annotations

import pytest

from mqtt_client import V5
from tenants import V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS, expect_code, probe, resolve_localhost


@pytest.fixture(autouse=True)
def _names():
    with resolve_localhost():
        yield


def bad_credentials(version) -> int:
    return expect_code(version, V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS)


def test_sni_of_one_tenant_with_username_of_another(server, version):
    """SNI says A, the username says `b/<user>` with B's valid password: refused. SNI and
    username must agree, so A's name cannot be combined with B's credential (or the other way
    round)."""
    a, b = server.tenant("sni-a"), server.tenant("sni-b")
    a_cred, b_cred = a.credential(), b.credential()
    assert probe(server, version, b_cred.login, b_cred.password,
                 sni=f"{a.slug}.mqtt.localhost").code == bad_credentials(version)
    assert probe(server, version, a_cred.login, a_cred.password,
                 sni=f"{b.slug}.mqtt.localhost").code == bad_credentials(version)
    # Even when B holds a credential with exactly A's username and password (devices shipped
    # with a default password): the username's `b/` must not be overridden by A's SNI.
    b.credential(a_cred.username, a_cred.password)
    assert probe(server, version, f"{b.slug}/{a_cred.username}", a_cred.password,
                 sni=f"{a.slug}.mqtt.localhost").code == bad_credentials(version)
    assert probe(server, version, f"{a.slug}/{a_cred.username}", a_cred.password,
                 sni=f"{b.slug}.mqtt.localhost").code == bad_credentials(version)
    # Controls: each credential with its own tenant's SNI, in both username forms.
    assert probe(server, version, b_cred.login, b_cred.password,
                 sni=f"{b.slug}.mqtt.localhost").code == 0
    assert probe(server, version, b_cred.username, b_cred.password,
                 sni=f"{b.slug}.mqtt.localhost").code == 0


def test_credential_of_one_tenant_under_another_slug(server, version):
    """A's username and password presented as `b/<A's username>`: refused — also when B has
    a credential of the same name (with another password)."""
    a, b = server.tenant("cred-a"), server.tenant("cred-b")
    a_cred = a.credential()
    assert probe(server, version, f"{b.slug}/{a_cred.username}",
                 a_cred.password).code == bad_credentials(version)
    b.credential(a_cred.username)  # same username in B, another password
    assert probe(server, version, f"{b.slug}/{a_cred.username}",
                 a_cred.password).code == bad_credentials(version)
    # By SNI too: B's name, A's bare username and password.
    assert probe(server, version, a_cred.username, a_cred.password,
                 sni=f"{b.slug}.mqtt.localhost").code == bad_credentials(version)
    assert probe(server, version, a_cred.login, a_cred.password).code == 0


def test_unknown_slug_is_answered_like_a_bad_password(server, version):
    """No enumeration: an unknown slug, an unknown user and a wrong password all get the same
    code."""
    t = server.tenant("enum")
    cred = t.credential()
    wrong_password = probe(server, version, cred.login, "not-the-password").code
    unknown_user = probe(server, version, f"{t.slug}/nobody", cred.password).code
    unknown_slug = probe(server, version, f"no-such-{t.slug}/{cred.username}",
                         cred.password).code
    unknown_sni = probe(server, version, cred.username, cred.password,
                        sni=f"no-such-{t.slug}.mqtt.localhost").code
    assert wrong_password == bad_credentials(version)
    assert unknown_user == unknown_slug == unknown_sni == wrong_password
    # A slug that cannot exist (bad characters) too.
    assert probe(server, version, f"NO_SUCH!/{cred.username}",
                 cred.password).code == wrong_password
    assert probe(server, version, cred.login, cred.password).code == 0


def test_missing_or_empty_credentials_are_refused(server, version):
    t = server.tenant("empty")
    cred = t.credential()
    refused = bad_credentials(version)
    # No username, no password, no SNI, no certificate: no tenant at all.
    assert probe(server, version).code == refused
    # The tenant chosen by SNI, but nothing to authenticate with.
    assert probe(server, version, sni=f"{t.slug}.mqtt.localhost").code == refused
    # A username without its password, and with an empty one.
    assert probe(server, version, cred.login).code == refused
    assert probe(server, version, cred.login, "").code == refused
    # A bare username without SNI selects no tenant, even with the right password.
    assert probe(server, version, cred.username, cred.password).code == refused
    # An empty slug or an empty username.
    assert probe(server, version, f"/{cred.username}", cred.password).code == refused
    assert probe(server, version, f"{t.slug}/", cred.password).code == refused
    assert probe(server, version, cred.login, cred.password).code == 0


def test_sni_outside_the_base_domain_selects_no_tenant(server, version):
    """`<slug>.localhost.evil` or a name merely containing the slug is not `<slug>.<base>`:
    the bare username then selects nothing."""
    t = server.tenant("suffix")
    cred = t.credential()
    for name in (f"{t.slug}.localhost.evil.localhost", f"x{t.slug}.mqtt.localhost",
                 f"{t.slug}x.localhost"):
        r = probe(server, version, cred.username, cred.password, sni=name, check_name=False)
        assert r.code == bad_credentials(version), (name, r)


def test_paho_sees_the_same_refusal(server, devices, version):
    """The same refusal through a real client, over both transports."""
    a, b = server.tenant("paho-a"), server.tenant("paho-b")
    a_cred = a.credential()
    b.credential()
    want = 0x86  # paho reports 3.1.1's return code 4 as 0x86 too
    for transport in ("mqtts", "wss"):
        d = devices.new(version, username=f"{b.slug}/{a_cred.username}",
                        password=a_cred.password, transport=transport)
        ack = d.connect(expect_success=False)
        assert ack.reason_code == want, (transport, ack)
    if version == V5:
        devices.connected(version, a_cred, transport="wss")
