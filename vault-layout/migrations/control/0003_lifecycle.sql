-- coffer: foreign-keys-off
-- The tenant lifecycle (PROMISES P12-P14): restricted, cancelled with a purge date,
-- purging, purged (a tombstone: dates, no name); legal hold; purge progress and deletion
-- receipts; the scheduler's lease.
--
-- Widening the state CHECK needs a table rebuild, which SQLite allows only with foreign
-- keys off (a DROP TABLE would otherwise cascade to memberships and tokens): the marker on
-- the first line makes the migration runner turn them off around this transaction and
-- run `PRAGMA foreign_key_check` before committing.

CREATE TABLE tenants_new (
    id               TEXT PRIMARY KEY NOT NULL,  -- 32 hex digits; the vault directory name
    slug             TEXT NOT NULL UNIQUE,       -- 'purged-<id>' once purged (the slug is free again)
    name             TEXT NOT NULL,              -- '' once purged
    state            TEXT NOT NULL DEFAULT 'active'
                     CHECK (state IN ('active', 'restricted', 'cancelled', 'purging', 'purged')),
    plan             TEXT NOT NULL DEFAULT 'standard',
    quota_bytes      INTEGER,                    -- NULL: unlimited
    created_at       TEXT NOT NULL,
    state_changed_at TEXT NOT NULL,
    cancelled_at     TEXT,                       -- set by cancel, cleared by reactivate
    purge_after      TEXT,                       -- when a cancelled tenant is purged
    legal_hold_at    TEXT,                       -- NULL: no hold; otherwise purge and trash expiry wait
    purged_at        TEXT
) WITHOUT ROWID;

INSERT INTO tenants_new (id, slug, name, state, plan, quota_bytes, created_at, state_changed_at)
SELECT id, slug, name, CASE state WHEN 'deleted' THEN 'purged' ELSE state END,
       plan, quota_bytes, created_at, state_changed_at
FROM tenants;

DROP TABLE tenants;
ALTER TABLE tenants_new RENAME TO tenants;

-- One row per purge: what it found when it started (for the receipt), how far it got,
-- and the signed receipt once it finished.
CREATE TABLE purges (
    tenant_id   TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    started_at  TEXT NOT NULL,
    files       INTEGER NOT NULL,
    directories INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    finished_at TEXT,
    receipt     TEXT,                            -- JSON, see vault-layout/README.md
    signature   TEXT,                            -- Ed25519 over the receipt's bytes, hex
    public_key  TEXT                             -- the key that signed it, hex
) WITHOUT ROWID;

-- Leases: one holder at a time for background work (the lifecycle scheduler), across
-- processes.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
