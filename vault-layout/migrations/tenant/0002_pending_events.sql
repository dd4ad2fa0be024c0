-- Audit events recorded with the vault change they describe, and the trash's bytes.
--
-- A file operation writes its audit event here in the same transaction as its
-- pending_writes rows, before it touches files/. The event is appended to the audit log
-- (idempotently, by its id) before the index shows the change; if the process dies in
-- between, the next open of the vault re-reads the pending paths and appends the event
-- only if the change it describes happened (`expect`, JSON). No change becomes visible
-- without its event being durable somewhere.
CREATE TABLE pending_events (
    id     TEXT PRIMARY KEY NOT NULL,  -- the audit event's id
    event  TEXT NOT NULL,              -- the audit event (JSON)
    expect TEXT NOT NULL               -- what must be true afterwards for it to be appended
) WITHOUT ROWID;

-- Items in the trash keep counting against the quota until purged.
INSERT INTO usage_counters (name, value)
    SELECT 'trash_bytes', COALESCE(SUM(size), 0) FROM trash;
CREATE TRIGGER trash_usage_insert AFTER INSERT ON trash BEGIN
    UPDATE usage_counters SET value = value + NEW.size WHERE name = 'trash_bytes';
END;
CREATE TRIGGER trash_usage_delete AFTER DELETE ON trash BEGIN
    UPDATE usage_counters SET value = value - OLD.size WHERE name = 'trash_bytes';
END;

-- Records are counted like files, in the same transaction as the change.
INSERT INTO usage_counters (name, value)
    SELECT 'records_stored', COUNT(*) FROM records;
CREATE TRIGGER records_usage_insert AFTER INSERT ON records BEGIN
    UPDATE usage_counters SET value = value + 1 WHERE name = 'records_stored';
END;
CREATE TRIGGER records_usage_delete AFTER DELETE ON records BEGIN
    UPDATE usage_counters SET value = value - 1 WHERE name = 'records_stored';
END;
