-- Audit access and retention (P15).
--
-- Indexes for reading one actor's or one account's events. `checkpoints` holds signed
-- checkpoints of the chain: (seq, hash) of one row, signed with the server's Ed25519 key
-- (see vault-layout/README.md, "Audit retention"). Rows older than the retention period
-- may be deleted only through a checkpoint at or after them: the delete trigger allows
-- exactly that, so the remaining chain still verifies from the checkpoint's hash, and a
-- checkpoint past the newest row shows that rows were cut from the end.

CREATE INDEX events_by_actor ON events (actor, seq);
CREATE INDEX events_by_target_hash ON events (target_hash);

CREATE TABLE checkpoints (
    seq        INTEGER PRIMARY KEY NOT NULL,  -- the row checkpointed
    hash       TEXT NOT NULL,                 -- that row's hash
    created_at TEXT NOT NULL,
    prunes     INTEGER NOT NULL DEFAULT 0,    -- 1: rows up to seq were pruned behind it
    document   TEXT NOT NULL,                 -- the signed JSON text
    signature  TEXT NOT NULL,                 -- Ed25519, hex
    public_key TEXT NOT NULL                  -- hex
) WITHOUT ROWID;

-- Checkpoints are append-only too.
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN OLD.seq > (SELECT COALESCE(MAX(seq), 0) FROM checkpoints WHERE prunes = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only (rows go only behind a pruning checkpoint)');
END;
