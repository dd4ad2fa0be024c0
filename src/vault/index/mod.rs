//! The per-tenant index: `<vault>/index.db`, one SQLite database per tenant.
//!
//! It holds file metadata (derived from `files/`, rebuilt by `reindex`), structured
//! records (authoritative: they live only here), the trash list, full-text search and
//! usage counters, and the pending rows that make file operations crash-safe. It knows
//! nothing of the filesystem: the `Vault` above it orders every write (file durable,
//! audit event durable, then index). Search documents and usage counters are kept in
//! step by triggers in the schema, so no code path can forget them. Entries are never
//! renamed in place: a move deletes and re-inserts, so the triggers see it.

pub mod properties;
pub mod records;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::audit::AuditError;
use crate::db::{self, DbError, Migration, migration};

use super::path::VaultPath;
pub use records::fts_phrase_query;

pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "tenant", "0001_index.sql"),
    migration!(2, "tenant", "0002_pending_events.sql"),
    migration!(3, "tenant", "0003_vault_identity.sql"),
    migration!(4, "tenant", "0004_dav_properties.sql"),
];

/// Runs inside a write transaction just before it commits (the `Vault` appends the
/// change's audit event there); an error rolls the transaction back.
pub type BeforeCommit<'a> = &'a mut dyn FnMut() -> Result<(), AuditError>;

/// A hook that does nothing.
pub fn no_hook() -> Result<(), AuditError> {
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("index database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("record not found")]
    RecordNotFound,
    #[error("record already exists")]
    RecordExists,
    #[error("record version is {current}, not the one given")]
    VersionMismatch { current: i64 },
    #[error("audit log error: {0}")]
    Audit(#[from] AuditError),
    #[error("at most {limit} properties per file or folder")]
    TooManyProperties { limit: usize },
    #[error("the properties would take the vault over its quota")]
    PropertiesOverQuota,
}

impl From<IndexError> for std::io::Error {
    fn from(e: IndexError) -> Self {
        std::io::Error::other(e)
    }
}

/// Whether an entry is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
}

impl EntryKind {
    fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
        }
    }
    fn parse(s: &str) -> EntryKind {
        if s == "dir" {
            EntryKind::Dir
        } else {
            EntryKind::File
        }
    }
}

/// Metadata of one file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    pub sha256: Option<String>,
    pub content_type: Option<String>,
    pub created_at: String,
    pub modified_at: String,
    pub modified_by: Option<String>,
}

/// An item in the trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashItem {
    pub id: String,
    pub original_path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub deleted_at: String,
    pub deleted_by: Option<String>,
}

/// One structured record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub collection: String,
    pub id: String,
    pub version: i64,
    pub body: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub kind: String,
    pub reference: String,
    pub snippet: String,
}

/// The tenant's index database. Not `Sync`: the `Vault` holds it behind a mutex.
pub struct Index {
    conn: Connection,
}

const ENTRY_COLUMNS: &str =
    "path, name, kind, size, sha256, content_type, created_at, modified_at, modified_by";

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let kind: String = r.get(2)?;
    Ok(Entry {
        path: r.get(0)?,
        name: r.get(1)?,
        kind: EntryKind::parse(&kind),
        size: r.get::<_, i64>(3)? as u64,
        sha256: r.get(4)?,
        content_type: r.get(5)?,
        created_at: r.get(6)?,
        modified_at: r.get(7)?,
        modified_by: r.get(8)?,
    })
}

/// The half-open key range `[prefix/, prefix0)` holds exactly the descendants of
/// `prefix` ('0' is the byte after '/'), so subtree queries use the primary key and no
/// LIKE pattern (whose `%` and `_` could appear in names).
fn subtree_bounds(path: &str) -> (String, String) {
    (format!("{path}/"), format!("{path}0"))
}

/// Page cache per open index, as SQLite spells it (negative: KiB).
const INDEX_CACHE_KIB: i64 = -512;

impl Index {
    /// Opens the database at `path` (the caller has checked, through the vault's directory
    /// handle, that it is a regular file or absent).
    pub fn open(path: &Path) -> Result<Index, IndexError> {
        let conn = db::open(path, MIGRATIONS)?;
        // Up to the vault cache's capacity of indexes stay open at once, each with its own
        // page cache: SQLite's default of 2 MiB each would let 1,000 open vaults hold 2 GiB.
        // The OS page cache keeps what falls out of it close.
        conn.pragma_update(None, "cache_size", INDEX_CACHE_KIB)?;
        Ok(Index { conn })
    }

    /// Opens a copy read-only, as it is (a backup's), without migrating it.
    pub fn open_read_only(path: &Path) -> Result<Index, IndexError> {
        Ok(Index {
            conn: db::open_read_only(path)?,
        })
    }

    pub fn open_in_memory() -> Result<Index, IndexError> {
        Ok(Index {
            conn: db::open_in_memory(MIGRATIONS)?,
        })
    }

    /// The tenant id this index records, written on first use: `Ok(false)` if it names
    /// another tenant.
    pub fn claim_identity(&self, tenant: &str) -> Result<bool, IndexError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO vault_identity (singleton, tenant_id) VALUES (1, ?1)",
            [tenant],
        )?;
        let recorded: String =
            self.conn
                .query_row("SELECT tenant_id FROM vault_identity", [], |r| r.get(0))?;
        Ok(recorded == tenant)
    }

    fn write_tx(&mut self) -> Result<Transaction<'_>, IndexError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    // ---- files -------------------------------------------------------------------------

    pub fn entry(&self, path: &VaultPath) -> Result<Option<Entry>, IndexError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE path = ?1"
            ))?
            .query_row([path.as_str()], entry_from_row)
            .optional()?)
    }

    /// Up to `limit` children of `dir` (the root when `None`) in name order, after the
    /// name `after` (keyset pagination: stable while entries come and go).
    pub fn list(
        &self,
        dir: Option<&VaultPath>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Entry>, IndexError> {
        let parent = dir.map_or("", |d| d.as_str());
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE parent = ?1 AND name > ?2
             ORDER BY name LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![parent, after.unwrap_or(""), limit], entry_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every entry in path order (for exports and audits).
    pub fn all_entries(&self) -> Result<Vec<Entry>, IndexError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries ORDER BY path"
        ))?;
        let rows = stmt.query_map([], entry_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The name of an existing entry in `parent` that differs from `name` but collides
    /// with it under the case policy.
    pub fn case_collision(
        &self,
        parent: &str,
        name: &str,
        name_fold: &str,
    ) -> Result<Option<String>, IndexError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT name FROM entries WHERE parent = ?1 AND name_fold = ?2 AND name != ?3 LIMIT 1",
            )?
            .query_row(params![parent, name_fold, name], |r| r.get(0))
            .optional()?)
    }

    /// Bytes currently stored in `files/` (maintained by triggers).
    pub fn bytes_stored(&self) -> Result<u64, IndexError> {
        self.counter("bytes_stored").map(|v| v.max(0) as u64)
    }

    /// Bytes that count against the quota: `files/`, the trash, which keeps its bytes
    /// until purged, and WebDAV properties.
    pub fn bytes_charged(&self) -> Result<u64, IndexError> {
        Ok(self.bytes_stored()?
            + self.counter("trash_bytes")?.max(0) as u64
            + self.counter("property_bytes")?.max(0) as u64)
    }

    pub fn counter(&self, name: &str) -> Result<i64, IndexError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM usage_counters WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// All usage counters.
    pub fn counters(&self) -> Result<Vec<(String, i64)>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, value FROM usage_counters ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The usage counters recounted from the tables they summarise.
    pub fn recount(&self) -> Result<Vec<(String, i64)>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT 'bytes_stored', COALESCE(SUM(size), 0) FROM entries WHERE kind = 'file'
             UNION ALL SELECT 'files_stored', COUNT(*) FROM entries WHERE kind = 'file'
             UNION ALL SELECT 'trash_bytes', COALESCE(SUM(size), 0) FROM trash
             UNION ALL SELECT 'property_bytes', COALESCE(SUM(length(xml)), 0) FROM dav_properties
             UNION ALL SELECT 'records_stored', COUNT(*) FROM records",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets counters to the given values, in one transaction.
    pub fn set_counters(&mut self, values: &[(String, i64)]) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        for (name, value) in values {
            tx.execute(
                "INSERT INTO usage_counters (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                rusqlite::params![name, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records that an operation is about to change `files/` at these paths, with the
    /// audit events that describe it, so that a crash before `apply` is repaired (and its
    /// events appended) on the next open. Committed with a full fsync.
    pub fn begin_pending(
        &mut self,
        paths: &[&VaultPath],
        events: &[PendingEvent],
        now: &str,
    ) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        for p in paths {
            tx.execute(
                "INSERT OR REPLACE INTO pending_writes (path, started_at) VALUES (?1, ?2)",
                params![p.as_str(), now],
            )?;
        }
        for e in events {
            tx.execute(
                "INSERT OR REPLACE INTO pending_events (id, event, expect) VALUES (?1, ?2, ?3)",
                params![e.id, e.event, e.expect],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn pending(&self) -> Result<Vec<String>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path FROM pending_writes ORDER BY path")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pending events (all of them, or those with the given ids), in id order.
    pub fn pending_events(&self, only: Option<&[&str]>) -> Result<Vec<PendingEvent>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, event, expect FROM pending_events ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(PendingEvent {
                id: r.get(0)?,
                event: r.get(1)?,
                expect: r.get(2)?,
            })
        })?;
        let all: Vec<PendingEvent> = rows.collect::<Result<_, _>>()?;
        Ok(match only {
            Some(ids) => all
                .into_iter()
                .filter(|e| ids.contains(&e.id.as_str()))
                .collect(),
            None => all,
        })
    }

    /// Replaces the entries of the subtrees rooted at `clear` with `upserts`, inserts
    /// records, changes the trash and clears the pending rows of the change, in one
    /// transaction; `before_commit` runs last inside it.
    pub fn apply(
        &mut self,
        change: IndexChange<'_>,
        before_commit: BeforeCommit<'_>,
    ) -> Result<(), IndexError> {
        if change.covered_by_pending {
            // WAL keeps the transaction atomic; only its fsync is skipped. See
            // `IndexChange::covered_by_pending` for why that is safe.
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let result = self.apply_in_tx(&change, before_commit);
        if change.covered_by_pending {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        result
    }

    fn apply_in_tx(
        &mut self,
        change: &IndexChange<'_>,
        before_commit: BeforeCommit<'_>,
    ) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        if let Some((from, to)) = change.move_properties {
            properties::move_subtree(&tx, from, to)?;
        }
        for root in change.clear_subtrees.iter() {
            properties::drop_subtree(&tx, root)?;
            let (lo, hi) = subtree_bounds(root);
            tx.execute(
                "DELETE FROM entries WHERE path = ?1 OR (path >= ?2 AND path < ?3)",
                params![root, lo, hi],
            )?;
        }
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO entries (path, parent, name, name_fold, kind, size, sha256,
                                      content_type, created_at, modified_at, modified_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (path) DO UPDATE SET
                    kind = excluded.kind, size = excluded.size, sha256 = excluded.sha256,
                    content_type = excluded.content_type, modified_at = excluded.modified_at,
                    modified_by = excluded.modified_by",
            )?;
            for e in change.upserts.iter() {
                let (parent, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
                upsert.execute(params![
                    e.path,
                    parent,
                    name,
                    super::path::fold_name(name),
                    e.kind.as_str(),
                    e.size as i64,
                    e.sha256,
                    e.content_type,
                    e.created_at,
                    e.modified_at,
                    e.modified_by
                ])?;
            }
        }
        if !change.records.is_empty() {
            records::insert_verbatim(&tx, change.records, change.skip_existing_records)?;
        }
        if let Some(item) = change.trash_insert {
            tx.execute(
                "INSERT INTO trash (id, original_path, kind, size, deleted_at, deleted_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    item.id,
                    item.original_path,
                    item.kind.as_str(),
                    item.size as i64,
                    item.deleted_at,
                    item.deleted_by
                ],
            )?;
        }
        if let Some(id) = change.trash_remove {
            tx.execute("DELETE FROM trash WHERE id = ?1", [id])?;
        }
        for p in change.pending_done.iter() {
            tx.execute("DELETE FROM pending_writes WHERE path = ?1", [p])?;
        }
        for id in change.events_done.iter() {
            tx.execute("DELETE FROM pending_events WHERE id = ?1", [id])?;
        }
        before_commit()?;
        tx.commit()?;
        Ok(())
    }

    /// Entries of a subtree (the entry itself first), in path order.
    pub fn subtree(&self, root: &VaultPath) -> Result<Vec<Entry>, IndexError> {
        let (lo, hi) = subtree_bounds(root.as_str());
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE path = ?1 OR (path >= ?2 AND path < ?3)
             ORDER BY path"
        ))?;
        let rows = stmt.query_map(params![root.as_str(), lo, hi], entry_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces every file entry with `entries` in one transaction (for `reindex`), keeping
    /// the creation time and author of entries whose content did not change.
    /// `before_commit` runs last inside the transaction.
    pub fn rebuild(
        &mut self,
        entries: &[Entry],
        before_commit: BeforeCommit<'_>,
    ) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS old_entries AS SELECT * FROM entries WHERE 0;
             DELETE FROM temp.old_entries;
             INSERT INTO temp.old_entries SELECT * FROM entries;
             DELETE FROM entries;
             DELETE FROM pending_writes;",
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO entries (path, parent, name, name_fold, kind, size, sha256,
                                      content_type, created_at, modified_at, modified_by)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
                        COALESCE((SELECT created_at FROM temp.old_entries WHERE path = ?1), ?9),
                        ?10,
                        (SELECT modified_by FROM temp.old_entries
                          WHERE path = ?1 AND sha256 IS ?7 AND kind = ?5)",
            )?;
            for e in entries {
                let (parent, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
                insert.execute(params![
                    e.path,
                    parent,
                    name,
                    super::path::fold_name(name),
                    e.kind.as_str(),
                    e.size as i64,
                    e.sha256,
                    e.content_type,
                    e.created_at,
                    e.modified_at
                ])?;
            }
        }
        tx.execute_batch("DELETE FROM temp.old_entries;")?;
        before_commit()?;
        tx.commit()?;
        Ok(())
    }

    // ---- trash -------------------------------------------------------------------------

    pub fn trash_item(&self, id: &str) -> Result<Option<TrashItem>, IndexError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, original_path, kind, size, deleted_at, deleted_by FROM trash WHERE id = ?1",
            )?
            .query_row([id], trash_from_row)
            .optional()?)
    }

    pub fn trash_list(&self) -> Result<Vec<TrashItem>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, original_path, kind, size, deleted_at, deleted_by FROM trash
             ORDER BY deleted_at DESC, id",
        )?;
        let rows = stmt.query_map([], trash_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A consistent copy of the index at `path` (backups).
    pub fn snapshot_into(&self, path: &Path) -> Result<(), IndexError> {
        Ok(db::snapshot_into(&self.conn, path)?)
    }

    /// `PRAGMA integrity_check` result ("ok" when healthy), for audits.
    pub fn integrity_check(&self) -> Result<String, IndexError> {
        Ok(self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?)
    }
}

/// A set of index changes applied atomically by `Index::apply`.
#[derive(Default, Clone, Copy)]
pub struct IndexChange<'a> {
    /// Subtrees whose entries (and WebDAV properties) are removed first.
    pub clear_subtrees: &'a [&'a str],
    /// A move: the WebDAV properties of the first subtree follow it to the second
    /// (before `clear_subtrees` drops what is left).
    pub move_properties: Option<(&'a str, &'a str)>,
    pub upserts: &'a [Entry],
    pub trash_insert: Option<&'a TrashItem>,
    pub trash_remove: Option<&'a str>,
    /// Records inserted as given (an import); `skip_existing_records` keeps existing ones,
    /// otherwise an existing one fails the whole change.
    pub records: &'a [Record],
    pub skip_existing_records: bool,
    pub pending_done: &'a [&'a str],
    /// Pending events (by id) whose audit event is appended in `before_commit`.
    pub events_done: &'a [&'a str],
    /// The change only records what is already durable on disk for paths whose
    /// `pending_writes` rows were committed (fsynced) before the disk change. Such a change
    /// may skip its own fsync: if power loss drops it, the pending rows survive and the
    /// next open re-reads those paths from disk. Never set for records or trash rows.
    pub covered_by_pending: bool,
}

/// An audit event recorded with a pending file operation (see `begin_pending`).
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: String,
    /// The audit event, as JSON.
    pub event: String,
    /// What must be true after the operation for the event to be appended (JSON).
    pub expect: String,
}

fn trash_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TrashItem> {
    let kind: String = r.get(2)?;
    Ok(TrashItem {
        id: r.get(0)?,
        original_path: r.get(1)?,
        kind: EntryKind::parse(&kind),
        size: r.get::<_, i64>(3)? as u64,
        deleted_at: r.get(4)?,
        deleted_by: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64) -> Entry {
        Entry {
            path: path.into(),
            name: path.rsplit('/').next().unwrap().into(),
            kind: EntryKind::File,
            size,
            sha256: Some("00".into()),
            content_type: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            modified_at: "2026-01-01T00:00:00.000Z".into(),
            modified_by: Some("system".into()),
        }
    }

    #[test]
    fn usage_counters_follow_entries() {
        let mut idx = Index::open_in_memory().unwrap();
        let upserts = [file("a.txt", 10), file("b.txt", 5)];
        idx.apply(
            IndexChange {
                upserts: &upserts,
                ..Default::default()
            },
            &mut no_hook,
        )
        .unwrap();
        assert_eq!(idx.bytes_stored().unwrap(), 15);
        let upserts = [file("a.txt", 3)];
        idx.apply(
            IndexChange {
                upserts: &upserts,
                ..Default::default()
            },
            &mut no_hook,
        )
        .unwrap();
        assert_eq!(idx.bytes_stored().unwrap(), 8);
        idx.apply(
            IndexChange {
                clear_subtrees: &["b.txt"],
                ..Default::default()
            },
            &mut no_hook,
        )
        .unwrap();
        assert_eq!(idx.bytes_stored().unwrap(), 3);
        assert_eq!(idx.counter("files_stored").unwrap(), 1);
    }

    #[test]
    fn subtree_bounds_do_not_catch_siblings_with_similar_names() {
        let mut idx = Index::open_in_memory().unwrap();
        let upserts = [
            file("a/x", 1),
            file("a/y/z", 1),
            file("a0", 1),
            file("a-b", 1),
            file("a%", 1),
        ];
        idx.apply(
            IndexChange {
                upserts: &upserts,
                ..Default::default()
            },
            &mut no_hook,
        )
        .unwrap();
        idx.apply(
            IndexChange {
                clear_subtrees: &["a"],
                ..Default::default()
            },
            &mut no_hook,
        )
        .unwrap();
        let left: Vec<String> = idx
            .all_entries()
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(left, ["a%", "a-b", "a0"]);
    }
}
