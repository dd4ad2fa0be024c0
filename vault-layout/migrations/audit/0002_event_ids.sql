-- Event ids, destinations, and hash version 2.
--
-- `event_id` makes an append idempotent: an event recorded with a vault write (in the
-- vault's pending_events) may be replayed by recovery, and a replay of an event already
-- in the chain is skipped. `destination` is a second redactable string (a move's new
-- path): like `target`, it enters the chain only through `destination_hash`, so a purged
-- tenant's file names can all be redacted. Rows of version 2 hash these fields too (see
-- vault-layout/README.md, "Audit chain"); rows written before this migration keep
-- version 1 and their original hash.

ALTER TABLE events ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN event_id TEXT;
ALTER TABLE events ADD COLUMN destination TEXT;
ALTER TABLE events ADD COLUMN destination_hash TEXT;
CREATE UNIQUE INDEX events_by_event_id ON events (event_id) WHERE event_id IS NOT NULL;

DROP TRIGGER events_no_update;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
WHEN NEW.target IS NOT NULL OR NEW.destination IS NOT NULL
  OR NEW.seq IS NOT OLD.seq OR NEW.at IS NOT OLD.at OR NEW.tenant_id IS NOT OLD.tenant_id
  OR NEW.actor IS NOT OLD.actor OR NEW.ip IS NOT OLD.ip OR NEW.action IS NOT OLD.action
  OR NEW.target_hash IS NOT OLD.target_hash OR NEW.outcome IS NOT OLD.outcome
  OR NEW.detail IS NOT OLD.detail OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.hash IS NOT OLD.hash
  OR NEW.hash_version IS NOT OLD.hash_version OR NEW.event_id IS NOT OLD.event_id
  OR NEW.destination_hash IS NOT OLD.destination_hash
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only (only a target or destination may be redacted)');
END;
