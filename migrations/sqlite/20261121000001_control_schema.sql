-- SQLite twin of migrations/postgres: ids are hyphenated UUID text, timestamps RFC 3339
-- text in UTC with microseconds (fixed width, so text order is time order).
-- The control plane's schema. Every tenant-owned table references tenants(id) with
-- ON DELETE CASCADE, so deleting a tenant removes all of its data in one statement.

-- The seeded plans. Their numbers live in code (tenantmq_common::quota), the single source of
-- truth; this table only makes an unknown plan name impossible to store.
CREATE TABLE plans (
    name TEXT PRIMARY KEY
);
INSERT INTO plans (name) VALUES ('free'), ('pro'), ('enterprise');

CREATE TABLE tenants (
    id              TEXT PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    email           TEXT NOT NULL,
    plan            TEXT NOT NULL REFERENCES plans (name),
    status          TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    quota_overrides TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT,
    prefix     TEXT NOT NULL,
    -- SHA-256 of the whole key, hex. Authentication looks keys up by this index.
    key_hash   TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE credentials (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (tenant_id, username)
);

CREATE TABLE ca_certificates (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name               TEXT,
    pem                TEXT NOT NULL,
    der                BLOB NOT NULL,
    fingerprint_sha256 TEXT NOT NULL,
    subject            TEXT NOT NULL,
    not_after          TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    UNIQUE (tenant_id, fingerprint_sha256)
);

CREATE TABLE acl_rules (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- NULL: the rule applies to every device of the tenant.
    credential_id TEXT REFERENCES credentials (id) ON DELETE CASCADE,
    action        TEXT NOT NULL CHECK (action IN ('publish', 'subscribe', 'all')),
    topic_filter  TEXT NOT NULL,
    permission    TEXT NOT NULL CHECK (permission IN ('allow', 'deny')),
    created_at    TEXT NOT NULL
);
CREATE INDEX acl_rules_tenant ON acl_rules (tenant_id, credential_id);

-- Filled in batches by the data plane; one row per tenant and hour.
CREATE TABLE usage_hourly (
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hour               TEXT NOT NULL,
    connection_seconds INTEGER NOT NULL DEFAULT 0,
    peak_connections   INTEGER NOT NULL DEFAULT 0,
    messages_in        INTEGER NOT NULL DEFAULT 0,
    messages_out       INTEGER NOT NULL DEFAULT 0,
    bytes_in           INTEGER NOT NULL DEFAULT 0,
    bytes_out          INTEGER NOT NULL DEFAULT 0,
    rejections         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, hour)
);
