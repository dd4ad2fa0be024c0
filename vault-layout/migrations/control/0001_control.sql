-- The control plane: <data-root>/control.db
-- Tenants, users, memberships, sessions and API tokens. Never holds vault content.

CREATE TABLE tenants (
    id               TEXT PRIMARY KEY NOT NULL,  -- 32 hex digits; the vault directory name
    slug             TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'active'
                     CHECK (state IN ('active', 'restricted', 'cancelled', 'deleted')),
    plan             TEXT NOT NULL DEFAULT 'standard',
    quota_bytes      INTEGER,                    -- NULL: unlimited
    created_at       TEXT NOT NULL,
    state_changed_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,          -- lower-cased
    name          TEXT NOT NULL,
    password_hash TEXT,                          -- PHC argon2id, or an imported bcrypt hash
    is_operator   INTEGER NOT NULL DEFAULT 0,    -- platform role: manages tenants and users
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
) WITHOUT ROWID;

CREATE TABLE memberships (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer', 'auditor')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, tenant_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_tenant ON memberships (tenant_id);

-- Server-side sessions named by the cookie's token: revoking the row ends the session.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    revoked_at   TEXT
) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions (user_id);

-- API tokens for programs: only the SHA-256 of the secret is stored.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer', 'auditor')),
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT,
    revoked_at   TEXT
) WITHOUT ROWID;
