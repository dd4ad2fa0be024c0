-- The audit log: <data-root>/audit.db
-- Append-only and hash-chained. Each row's `hash` is the SHA-256 of the previous row's
-- hash and this row's fields (see vault-layout/README.md, "Audit chain"); `target` enters
-- the hash only through `target_hash`, so a target may later be redacted (set to NULL)
-- without breaking the chain. Holds no vault content.

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY NOT NULL,  -- 1, 2, 3... without gaps
    at          TEXT NOT NULL,                 -- RFC 3339 UTC
    tenant_id   TEXT,                          -- NULL for platform events
    actor       TEXT NOT NULL,                 -- 'user:<id>', 'token:<id>', 'operator:cli', 'system', 'anonymous'
    ip          TEXT,
    action      TEXT NOT NULL,                 -- a closed set of names, e.g. 'file.write'
    target      TEXT,                          -- what was acted on (path, record, user id)
    target_hash TEXT,                          -- SHA-256 hex of target, or NULL
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    detail      TEXT,                          -- small JSON object, never content
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant_id, seq);

-- Append-only: rows cannot be deleted, and the only update allowed is redacting a target.
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
WHEN NEW.target IS NOT NULL
  OR NEW.seq IS NOT OLD.seq OR NEW.at IS NOT OLD.at OR NEW.tenant_id IS NOT OLD.tenant_id
  OR NEW.actor IS NOT OLD.actor OR NEW.ip IS NOT OLD.ip OR NEW.action IS NOT OLD.action
  OR NEW.target_hash IS NOT OLD.target_hash OR NEW.outcome IS NOT OLD.outcome
  OR NEW.detail IS NOT OLD.detail OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.hash IS NOT OLD.hash
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only (only a target may be redacted)');
END;
