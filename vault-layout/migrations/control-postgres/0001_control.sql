-- The control plane on PostgreSQL (`control = "postgres://..."`): the same tables as the
-- embedded SQLite control plane after its migration 0005 (see ../control/), written
-- once for PostgreSQL. Timestamps stay RFC 3339 text in UTC with milliseconds, as in
-- SQLite, so that both backends compare and return them alike.

CREATE TABLE tenants (
    id               TEXT PRIMARY KEY,           -- 32 hex digits; the vault directory name
    slug             TEXT NOT NULL UNIQUE,       -- 'purged-<id>' once purged
    name             TEXT NOT NULL,              -- '' once purged
    state            TEXT NOT NULL DEFAULT 'active'
                     CHECK (state IN ('active', 'restricted', 'cancelled', 'purging', 'purged')),
    plan             TEXT NOT NULL DEFAULT 'standard',
    quota_bytes      BIGINT,                     -- NULL: unlimited
    created_at       TEXT NOT NULL,
    state_changed_at TEXT NOT NULL,
    cancelled_at     TEXT,
    purge_after      TEXT,
    legal_hold_at    TEXT,
    purged_at        TEXT
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,          -- lower-cased
    name          TEXT NOT NULL,
    password_hash TEXT,
    is_operator   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
);

CREATE TABLE memberships (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer', 'auditor')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX memberships_by_tenant ON memberships (tenant_id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    revoked_at   TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,           -- SHA-256 of the secret
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer', 'auditor')),
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT,
    revoked_at   TEXT,
    scopes       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

CREATE TABLE login_events (
    id      BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at      TEXT NOT NULL,
    ip      TEXT,
    success BOOLEAN NOT NULL
);
CREATE INDEX login_events_by_user ON login_events (user_id, at);

CREATE TABLE purges (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id),
    started_at  TEXT NOT NULL,
    files       BIGINT NOT NULL,
    directories BIGINT NOT NULL,
    records     BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    finished_at TEXT,
    receipt     TEXT,
    signature   TEXT,
    public_key  TEXT
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE backup_roots (
    path          TEXT PRIMARY KEY,
    registered_at TEXT NOT NULL
);

CREATE TABLE usage (
    tenant_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    metric    TEXT NOT NULL,
    value     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, metric)
);

CREATE TABLE membership_periods (
    tenant_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    since     TEXT NOT NULL,
    until     TEXT,
    PRIMARY KEY (tenant_id, user_id, since)
);

-- Secrets every node must share, made once by the first node that needs one: the key
-- that signs session cookies ('session'), so a session begun on one node is valid on
-- every node. (With the embedded SQLite control plane it is <data-root>/secret.key.)
CREATE TABLE cluster_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,                 -- hex
    created_at TEXT NOT NULL
);

-- Where each tenant is served: one node at a time (README, "Scaling out"). `epoch` grows
-- by one on every move; while `fenced_at` is set the tenant takes no writes (a move is
-- copying its vault).
CREATE TABLE placements (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    node       TEXT NOT NULL,
    epoch      BIGINT NOT NULL DEFAULT 1,
    fenced_at  TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX placements_by_node ON placements (node);
