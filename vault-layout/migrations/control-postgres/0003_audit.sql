-- The audit chain of every node sharing this control plane: one chain, the same rows,
-- hashes and checkpoints as an SQLite audit.db (vault-layout/migrations/audit and
-- vault-layout/README.md, "Audit chain"), so the same verification reads either. Every
-- append holds a transaction-scoped advisory lock from reading the newest row to its
-- last insert, so appends from several nodes at once still form one chain. Checkpoints
-- are signed with the cluster's key (cluster_secrets 'signing'), so any node verifies
-- any node's checkpoint.
CREATE TABLE events (
    seq              BIGINT PRIMARY KEY,      -- 1, 2, 3... without gaps
    at               TEXT NOT NULL,           -- RFC 3339 UTC, the appending node's clock
    tenant_id        TEXT,
    actor            TEXT NOT NULL,
    ip               TEXT,
    action           TEXT NOT NULL,
    target           TEXT,                    -- redactable: enters the hash as target_hash
    target_hash      TEXT,
    destination      TEXT,                    -- redactable: enters the hash as destination_hash
    destination_hash TEXT,
    outcome          TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    detail           TEXT,                    -- small JSON object, as hashed
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL,
    hash_version     BIGINT NOT NULL,
    event_id         TEXT
);
CREATE INDEX events_by_tenant ON events (tenant_id, seq);
CREATE INDEX events_by_actor ON events (actor, seq);
CREATE INDEX events_by_target_hash ON events (target_hash);
CREATE UNIQUE INDEX events_by_event_id ON events (event_id) WHERE event_id IS NOT NULL;
-- Where pruning must stop: the first row written on or after the cutoff.
CREATE INDEX events_by_at ON events (at, seq);

CREATE TABLE checkpoints (
    seq        BIGINT PRIMARY KEY,            -- the row checkpointed
    hash       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    prunes     BOOLEAN NOT NULL DEFAULT FALSE, -- rows up to seq were pruned behind it
    document   TEXT NOT NULL,                 -- the signed JSON text
    signature  TEXT NOT NULL,                 -- Ed25519, hex
    public_key TEXT NOT NULL                  -- hex
);
-- The delete trigger's question: the newest pruning checkpoint.
CREATE INDEX checkpoints_pruning ON checkpoints (seq) WHERE prunes;

-- Append-only, as in SQLite: a row is deleted only behind a pruning checkpoint, the only
-- update is redacting a target or destination to NULL, checkpoints never change, and
-- neither table can be truncated.
CREATE FUNCTION audit_events_no_update() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.target IS NOT NULL OR NEW.destination IS NOT NULL
       OR (NEW.seq, NEW.at, NEW.tenant_id, NEW.actor, NEW.ip, NEW.action, NEW.target_hash,
           NEW.destination_hash, NEW.outcome, NEW.detail, NEW.prev_hash, NEW.hash,
           NEW.hash_version, NEW.event_id)
          IS DISTINCT FROM
          (OLD.seq, OLD.at, OLD.tenant_id, OLD.actor, OLD.ip, OLD.action, OLD.target_hash,
           OLD.destination_hash, OLD.outcome, OLD.detail, OLD.prev_hash, OLD.hash,
           OLD.hash_version, OLD.event_id)
    THEN
        RAISE EXCEPTION 'audit log is append-only (only a target or destination may be redacted)';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION audit_events_no_update();

CREATE FUNCTION audit_events_no_delete() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF OLD.seq > (SELECT COALESCE(MAX(seq), 0) FROM checkpoints WHERE prunes) THEN
        RAISE EXCEPTION 'audit log is append-only (rows go only behind a pruning checkpoint)';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION audit_events_no_delete();

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit % is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER checkpoints_no_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
