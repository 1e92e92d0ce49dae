"""Control-plane changes made through the HTTP API reach new connections within 2 s
(issue 4, item 3): credentials created and deleted, ACL rules added, tenants suspended,
reactivated and deleted by the operator.

Each test first makes the gateway cache the *old* state (a successful login caches its
verdict for 60 s, tenants and ACLs for 30 s), so that only the change feed's invalidation can
make the new state visible in time. The polls give up after 2 s.
"""

from __future__ import annotations

import time

from mqtt_client import V5, V311
from tenants import (PROPAGATION, V5_BAD_CREDENTIALS, V5_NOT_AUTHORIZED, V311_BAD_CREDENTIALS,
                     V311_NOT_AUTHORIZED, expect_code, poll, probe)


def timed_poll(predicate, what: str):
    start = time.monotonic()
    poll(predicate, what, timeout=PROPAGATION)
    return time.monotonic() - start


def test_new_credential_usable_within_2s(server, version):
    t = server.tenant("ctl-new")
    # The negative answer is cached first (an unknown user is remembered for a while).
    assert probe(server, version, f"{t.slug}/late", "late-password-1").code == \
        expect_code(version, V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS)
    t.credential("late", "late-password-1")
    timed_poll(lambda: probe(server, version, f"{t.slug}/late", "late-password-1").code == 0,
               "the new credential accepted")


def test_deleted_credential_refused_within_2s(server, devices, version):
    t = server.tenant("ctl-del")
    cred = t.credential()
    keep = t.credential()
    devices.connected(version, cred)  # caches the successful verdict
    assert probe(server, version, cred.login, cred.password).code == 0
    server.api.delete_credential(t.api_key, cred.id)
    refused = expect_code(version, V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS)
    timed_poll(lambda: probe(server, version, cred.login, cred.password).code == refused,
               "the deleted credential refused")
    assert probe(server, version, keep.login, keep.password).code == 0


def test_acl_added_applies_to_new_connections_within_2s(server, devices):
    """`allow publish devices/${clientid}/#` for one credential: a new MQTT 5 connection gets
    PUBACK 0x87 for another topic (and the message goes nowhere) while its own subtree
    works; a 3.1.1 connection's refused publish is acknowledged and dropped
    (`MQTT-3.3.5-2`). Another credential of the tenant is not affected."""
    t = server.tenant("ctl-acl")
    cred, other = t.credential(), t.credential()
    watcher = devices.connected(V5, other)
    watcher.subscribe("#", qos=1)
    before = devices.connected(V5, cred, client_id="dev-1")
    assert before.publish("elsewhere/x", b"before", qos=1) == 0
    watcher.wait_message("elsewhere/x", b"before")
    before.disconnect()

    server.api.create_acl(t.api_key, "publish", "devices/${clientid}/#",
                          credential_id=cred.id)

    def denied_now():
        d = devices.connected(V5, cred, client_id="dev-1")
        rc = d.publish("elsewhere/x", b"denied", qos=1)
        d.close()
        return rc == V5_NOT_AUTHORIZED

    timed_poll(denied_now, "the ACL enforced on a new connection")
    d = devices.connected(V5, cred, client_id="dev-1")
    assert d.publish("devices/dev-1/temp", b"allowed", qos=1) == 0
    assert d.publish("devices/dev-2/temp", b"not-mine", qos=1) == V5_NOT_AUTHORIZED
    watcher.wait_message("devices/dev-1/temp", b"allowed")
    v3 = devices.connected(V311, cred, client_id="dev-1b")
    v3.publish("elsewhere/x", b"dropped-v3", qos=1)          # acknowledged, dropped
    v3.publish("devices/dev-1b/t", b"allowed-v3", qos=1)
    watcher.wait_message("devices/dev-1b/t", b"allowed-v3")
    # Another credential without rules still publishes anywhere.
    free = devices.connected(V5, other)
    assert free.publish("elsewhere/y", b"free", qos=1) == 0
    watcher.wait_message("elsewhere/y", b"free")
    time.sleep(0.3)
    leaked = [m.payload for m in watcher.received()
              if m.payload in (b"denied", b"not-mine", b"dropped-v3")]
    assert not leaked, f"refused publishes were delivered: {leaked}"


def test_acl_on_subscribe(server, devices, version):
    """`allow subscribe alerts/#`: other filters are refused in SUBACK (v5 0x87, 3.1.1 0x80)
    on new connections."""
    t = server.tenant("ctl-sub")
    cred = t.credential()
    devices.connected(version, cred).subscribe("anything/#")  # caches "no rules"
    server.api.create_acl(t.api_key, "subscribe", "alerts/#", credential_id=cred.id)
    refused = 0x87 if version == V5 else 0x80

    def refused_now():
        d = devices.connected(version, cred)
        codes = d.subscribe("anything/#", qos=1, check=False)
        d.close()
        return codes == [refused]

    timed_poll(refused_now, "the subscribe ACL enforced")
    d = devices.connected(version, cred)
    assert d.subscribe([("alerts/#", 1), ("other/#", 1)], check=False) == [1, refused]


def test_suspend_reactivate_and_delete_tenant(server, version):
    """Operator: suspended → new connections refused with 0x87 / 5 (the other tenant
    unaffected); active again → accepted; deleted → 0x86 / 4, like a tenant that never
    existed."""
    t, bystander = server.tenant("ctl-susp"), server.tenant("ctl-by")
    cred, by = t.credential(), bystander.credential()
    assert probe(server, version, cred.login, cred.password).code == 0

    server.api.set_status(t.id, "suspended")
    suspended = expect_code(version, V5_NOT_AUTHORIZED, V311_NOT_AUTHORIZED)
    timed_poll(lambda: probe(server, version, cred.login, cred.password).code == suspended,
               "the suspended tenant refused")
    assert probe(server, version, by.login, by.password).code == 0
    # A suspended tenant's API key still reads, but cannot write.
    status, body, _ = server.api.call("POST", "/v1/credentials",
                                      {"username": "x", "password": "password-123"},
                                      t.api_key)
    assert status == 403 and body["error"]["code"] == "tenant_suspended"

    server.api.set_status(t.id, "active")
    timed_poll(lambda: probe(server, version, cred.login, cred.password).code == 0,
               "the reactivated tenant accepted")

    server.api.delete_tenant(t.id)
    gone = expect_code(version, V5_BAD_CREDENTIALS, V311_BAD_CREDENTIALS)
    timed_poll(lambda: probe(server, version, cred.login, cred.password).code == gone,
               "the deleted tenant refused")
    assert probe(server, version, by.login, by.password).code == 0


def test_suspension_also_refuses_wss_and_sni(server, devices):
    """Suspension is a property of the tenant, not of one way in."""
    from tenants import resolve_localhost

    t = server.tenant("ctl-susp2")
    cred = t.credential()
    server.api.set_status(t.id, "suspended")
    poll(lambda: probe(server, V5, cred.login, cred.password).code == V5_NOT_AUTHORIZED,
         "suspended")
    d = devices.new(V5, cred, transport="wss")
    assert d.connect(expect_success=False).reason_code == V5_NOT_AUTHORIZED
    with resolve_localhost():
        r = probe(server, V5, cred.username, cred.password, sni=f"{t.slug}.mqtt.localhost")
    assert r.code == V5_NOT_AUTHORIZED
