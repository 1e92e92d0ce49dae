"""Rate limits on the way in (issue 4, item 3; architecture "Security"): failed device
authentications per source address, and signups per client IP.

Each test runs its own standalone: a source blocked here must not disturb the checks of any
other module, and the signup limit is tested with the default flags (5 a minute, burst 5).
"""

from __future__ import annotations

import time

import pytest

from mqtt_client import V5, V311
from tenants import (V5_BAD_CREDENTIALS, V5_RATE_EXCEEDED, V311_BAD_CREDENTIALS,
                     V311_SERVER_UNAVAILABLE, next_source, probe, start_standalone)

#: `gateway::control_auth::DEFAULT_AUTH_FAILURE_BURST`; then 30 a minute (one per 2 s).
BURST = 10


@pytest.fixture
def own_server(tmp_path):
    s = start_standalone(tmp_path / "standalone")
    yield s
    s.check_alive()
    s.stop()


@pytest.fixture
def default_limits_server(tmp_path):
    s = start_standalone(tmp_path / "standalone", generous_signups=False)
    yield s
    s.check_alive()
    s.stop()


def test_bad_passwords_from_one_source_are_rate_limited(own_server):
    """More than 10 bad passwords from one address: that address's next attempts are refused
    with "connection rate exceeded" (0x9F; 3.1.1 return code 3) even with the right password,
    before any credential is looked at. Other addresses are not affected."""
    s = own_server
    t = s.tenant("rl")
    cred = t.credential()
    attacker = next_source()
    assert probe(s, V5, cred.login, cred.password, source=attacker).code == 0, \
        "control: the right password is accepted from the attacker's address at first"

    # One wrong password, repeated: after the first argon2 check its verdict is cached, so
    # the attempts come faster than the allowance refills (one per 2 s) even in a debug build.
    codes = [probe(s, V5, cred.login, "guessed-password", source=attacker).code
             for _ in range(BURST + 2)]
    first = time.monotonic()
    # The allowance refills one attempt per 2 s, so the block is checked at once.
    right_v5 = probe(s, V5, cred.login, cred.password, source=attacker).code
    right_v311 = probe(s, V311, cred.login, cred.password, source=attacker).code
    elapsed = time.monotonic() - first
    assert codes[:BURST] == [V5_BAD_CREDENTIALS] * BURST, codes
    assert V5_RATE_EXCEEDED in codes[BURST:], f"never limited: {codes}"
    assert right_v5 == V5_RATE_EXCEEDED, (right_v5, codes, elapsed)
    assert right_v311 == V311_SERVER_UNAVAILABLE, (right_v311, codes, elapsed)

    # Per source: another address still gets in, and its own bad password is just that.
    assert probe(s, V5, cred.login, cred.password, source=next_source()).code == 0
    assert probe(s, V311, cred.login, "wrong-password", source=next_source()).code == \
        V311_BAD_CREDENTIALS


def test_unknown_tenants_count_as_failures_too(own_server):
    """Guessing slugs is failing authentication: it uses up the same allowance."""
    s = own_server
    cred = s.tenant("rl2").credential()
    attacker = next_source()
    codes = [probe(s, V5, f"guess-{i}/user", "some-password", source=attacker).code
             for i in range(BURST + 2)]
    assert codes[:BURST] == [V5_BAD_CREDENTIALS] * BURST, codes
    assert probe(s, V5, cred.login, cred.password, source=attacker).code == V5_RATE_EXCEEDED


def test_signup_is_rate_limited_per_ip_with_default_flags(default_limits_server):
    s = default_limits_server
    statuses = []
    for i in range(7):
        status, body, headers = s.api.call(
            "POST", "/v1/signup",
            {"name": f"n{i}", "slug": f"burst-{i}-{time.monotonic_ns() % 10**6}",
             "email": f"o{i}@x.example"})
        statuses.append(status)
        if status == 429:
            assert body["error"]["code"] == "rate_limited", body
            retry = {k.lower(): v for k, v in headers.items()}.get("retry-after")
            assert retry is not None and int(retry) >= 1, headers
            break
    assert statuses == [201] * 5 + [429], statuses
