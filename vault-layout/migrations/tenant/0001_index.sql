-- The per-tenant index: <data-root>/tenants/<tenant-id>/index.db
-- File metadata (derived: `coffer reindex` rebuilds it from files/), records
-- (authoritative: they live only here), trash, full-text search and usage counters.

-- One row per file or directory under files/. `path` is the NFC vault path relative to
-- files/, components joined by '/'; `parent` is '' for top-level entries.
CREATE TABLE entries (
    path         TEXT PRIMARY KEY NOT NULL,
    parent       TEXT NOT NULL,
    name         TEXT NOT NULL,
    name_fold    TEXT NOT NULL,              -- lower-cased name: the case-collision key
    kind         TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    size         INTEGER NOT NULL DEFAULT 0, -- bytes; 0 for directories
    sha256       TEXT,                       -- lowercase hex; NULL for directories
    content_type TEXT,
    created_at   TEXT NOT NULL,              -- RFC 3339 UTC
    modified_at  TEXT NOT NULL,              -- RFC 3339 UTC, the file's mtime
    modified_by  TEXT                        -- actor that last wrote it (audit-style string)
) WITHOUT ROWID;
CREATE INDEX entries_by_parent ON entries (parent, name);
CREATE INDEX entries_by_fold ON entries (parent, name_fold);

-- Writes between "file renamed into place" and "index updated": a row here after a
-- crash tells the next open which paths to re-read from disk.
CREATE TABLE pending_writes (
    path       TEXT PRIMARY KEY NOT NULL,
    started_at TEXT NOT NULL
) WITHOUT ROWID;

-- Items moved to .trash/<id>. The item keeps its bytes until purged.
CREATE TABLE trash (
    id            TEXT PRIMARY KEY NOT NULL, -- also its name under .trash/
    original_path TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    size          INTEGER NOT NULL,          -- total bytes, directories included
    deleted_at    TEXT NOT NULL,
    deleted_by    TEXT
) WITHOUT ROWID;

-- Structured records: collections of JSON documents (clients, jobs, invoices...).
CREATE TABLE records (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1), -- optimistic concurrency
    body       TEXT NOT NULL CHECK (json_valid(body)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
CREATE INDEX records_newest ON records (collection, updated_at DESC);

-- Full-text search over file paths and record text. `search_docs` names each document
-- (`kind` 'file' with the vault path as `ref`, or 'record' with '<collection>/<id>');
-- the FTS row has the same rowid, so updates and deletes never scan the FTS table.
CREATE TABLE search_docs (
    rowid INTEGER PRIMARY KEY,
    kind  TEXT NOT NULL CHECK (kind IN ('file', 'record')),
    ref   TEXT NOT NULL,
    UNIQUE (kind, ref)
);
CREATE VIRTUAL TABLE search USING fts5(
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER entries_search_insert AFTER INSERT ON entries BEGIN
    INSERT INTO search_docs (kind, ref) VALUES ('file', NEW.path);
    INSERT INTO search (rowid, body) VALUES (last_insert_rowid(), NEW.path);
END;
CREATE TRIGGER entries_search_delete AFTER DELETE ON entries BEGIN
    DELETE FROM search WHERE rowid = (SELECT rowid FROM search_docs WHERE kind = 'file' AND ref = OLD.path);
    DELETE FROM search_docs WHERE kind = 'file' AND ref = OLD.path;
END;

-- A record's searchable text is every string value in its JSON body.
CREATE TRIGGER records_search_insert AFTER INSERT ON records BEGIN
    INSERT INTO search_docs (kind, ref) VALUES ('record', NEW.collection || '/' || NEW.id);
    INSERT INTO search (rowid, body) VALUES (
        last_insert_rowid(),
        (SELECT group_concat(value, ' ') FROM json_tree(NEW.body) WHERE type = 'text'));
END;
CREATE TRIGGER records_search_update AFTER UPDATE OF body ON records BEGIN
    DELETE FROM search WHERE rowid = (SELECT rowid FROM search_docs WHERE kind = 'record' AND ref = OLD.collection || '/' || OLD.id);
    INSERT INTO search (rowid, body) VALUES (
        (SELECT rowid FROM search_docs WHERE kind = 'record' AND ref = NEW.collection || '/' || NEW.id),
        (SELECT group_concat(value, ' ') FROM json_tree(NEW.body) WHERE type = 'text'));
END;
CREATE TRIGGER records_search_delete AFTER DELETE ON records BEGIN
    DELETE FROM search WHERE rowid = (SELECT rowid FROM search_docs WHERE kind = 'record' AND ref = OLD.collection || '/' || OLD.id);
    DELETE FROM search_docs WHERE kind = 'record' AND ref = OLD.collection || '/' || OLD.id;
END;

-- Usage counters (bytes stored, files, feature counts, AI tokens).
CREATE TABLE usage_counters (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO usage_counters (name, value) VALUES ('bytes_stored', 0), ('files_stored', 0);

-- bytes_stored and files_stored follow `entries` in the same transaction, so the quota
-- check never needs a scan and never drifts from the index.
CREATE TRIGGER entries_usage_insert AFTER INSERT ON entries WHEN NEW.kind = 'file' BEGIN
    UPDATE usage_counters SET value = value + NEW.size WHERE name = 'bytes_stored';
    UPDATE usage_counters SET value = value + 1 WHERE name = 'files_stored';
END;
CREATE TRIGGER entries_usage_delete AFTER DELETE ON entries WHEN OLD.kind = 'file' BEGIN
    UPDATE usage_counters SET value = value - OLD.size WHERE name = 'bytes_stored';
    UPDATE usage_counters SET value = value - 1 WHERE name = 'files_stored';
END;
CREATE TRIGGER entries_usage_update AFTER UPDATE OF size ON entries WHEN NEW.kind = 'file' BEGIN
    UPDATE usage_counters SET value = value - OLD.size + NEW.size WHERE name = 'bytes_stored';
END;
