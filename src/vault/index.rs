//! The per-tenant index: `<vault>/index.db`, one SQLite database per tenant.
//!
//! It holds file metadata (derived from `files/`, rebuilt by `reindex`), structured
//! records (authoritative: they live only here), the trash list, full-text search and
//! usage counters. It knows nothing of the filesystem: the `Vault` above it orders every
//! write (file durable, then index, then audit). Search documents and usage counters are
//! kept in step by triggers in the schema, so no code path can forget them. Entries are
//! never renamed in place: a move deletes and re-inserts, so the triggers see it.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::db::{self, DbError, Migration, migration};

use super::path::{CollectionName, RecordId, VaultPath};

pub const MIGRATIONS: &[Migration] = &[migration!(1, "tenant", "0001_index.sql")];

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
}

impl From<IndexError> for std::io::Error {
    fn from(e: IndexError) -> Self {
        std::io::Error::other(e)
    }
}

/// Whether an entry is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrashItem {
    pub id: String,
    pub original_path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub deleted_at: String,
    pub deleted_by: Option<String>,
}

/// One structured record.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    pub kind: String,
    #[serde(rename = "ref")]
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

impl Index {
    /// Opens the database at `path` (the caller has checked, through the vault's directory
    /// handle, that it is a regular file or absent).
    pub fn open(path: &Path) -> Result<Index, IndexError> {
        Ok(Index {
            conn: db::open(path, MIGRATIONS)?,
        })
    }

    pub fn open_in_memory() -> Result<Index, IndexError> {
        Ok(Index {
            conn: db::open_in_memory(MIGRATIONS)?,
        })
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

    /// Bytes currently stored (maintained by triggers).
    pub fn bytes_stored(&self) -> Result<u64, IndexError> {
        self.counter("bytes_stored").map(|v| v.max(0) as u64)
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

    /// Records that a write to these paths is about to change `files/`, so that a crash
    /// before `finish` is repaired on the next open.
    pub fn begin_pending(&mut self, paths: &[&VaultPath]) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        let now = db::now();
        for p in paths {
            tx.execute(
                "INSERT OR REPLACE INTO pending_writes (path, started_at) VALUES (?1, ?2)",
                params![p.as_str(), now],
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

    /// Replaces the entries of the subtrees rooted at `clear` with `upserts` and clears the
    /// pending rows of `pending`, in one transaction.
    pub fn apply(&mut self, change: IndexChange<'_>) -> Result<(), IndexError> {
        if change.covered_by_pending {
            // WAL keeps the transaction atomic; only its fsync is skipped. See
            // `IndexChange::covered_by_pending` for why that is safe.
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let result = self.apply_in_tx(&change);
        if change.covered_by_pending {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        result
    }

    fn apply_in_tx(&mut self, change: &IndexChange<'_>) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        for root in change.clear_subtrees.iter() {
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
    pub fn rebuild(&mut self, entries: &[Entry]) -> Result<(), IndexError> {
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

    // ---- records -----------------------------------------------------------------------

    pub fn record(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<Record>, IndexError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT collection, id, version, body, created_at, updated_at, created_by, updated_by
                 FROM records WHERE collection = ?1 AND id = ?2",
            )?
            .query_row(params![collection.as_str(), id.as_str()], record_from_row)
            .optional()?)
    }

    pub fn insert_record(
        &mut self,
        collection: &CollectionName,
        id: &RecordId,
        body: &serde_json::Value,
        actor: &str,
    ) -> Result<Record, IndexError> {
        let now = db::now();
        let inserted = self.conn.execute(
            "INSERT INTO records (collection, id, version, body, created_at, updated_at, created_by, updated_by)
             VALUES (?1, ?2, 1, ?3, ?4, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
            params![collection.as_str(), id.as_str(), body.to_string(), now, actor],
        )?;
        if inserted == 0 {
            return Err(IndexError::RecordExists);
        }
        self.record(collection, id)?
            .ok_or(IndexError::RecordNotFound)
    }

    /// Inserts records exactly as given (version, times, authors), in one transaction: the
    /// import of an export. `skip_existing` leaves records that already exist untouched;
    /// otherwise an existing one fails the whole batch. Returns how many were inserted.
    pub fn insert_records_verbatim(
        &mut self,
        records: &[Record],
        skip_existing: bool,
    ) -> Result<usize, IndexError> {
        let tx = self.write_tx()?;
        let mut inserted = 0;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO records (collection, id, version, body, created_at, updated_at, created_by, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
            )?;
            for r in records {
                let n = stmt.execute(params![
                    r.collection,
                    r.id,
                    r.version,
                    r.body.to_string(),
                    r.created_at,
                    r.updated_at,
                    r.created_by,
                    r.updated_by
                ])?;
                if n == 0 && !skip_existing {
                    return Err(IndexError::RecordExists);
                }
                inserted += n;
            }
        }
        tx.commit()?;
        Ok(inserted)
    }

    /// Replaces a record's body if its version is still `expected_version` (when given),
    /// bumping the version.
    pub fn replace_record(
        &mut self,
        collection: &CollectionName,
        id: &RecordId,
        body: &serde_json::Value,
        expected_version: Option<i64>,
        actor: &str,
    ) -> Result<Record, IndexError> {
        let tx = self.write_tx()?;
        let current: Option<i64> = tx
            .query_row(
                "SELECT version FROM records WHERE collection = ?1 AND id = ?2",
                params![collection.as_str(), id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let current = current.ok_or(IndexError::RecordNotFound)?;
        if expected_version.is_some_and(|v| v != current) {
            return Err(IndexError::VersionMismatch { current });
        }
        tx.execute(
            "UPDATE records SET body = ?3, version = version + 1, updated_at = ?4, updated_by = ?5
             WHERE collection = ?1 AND id = ?2",
            params![
                collection.as_str(),
                id.as_str(),
                body.to_string(),
                db::now(),
                actor
            ],
        )?;
        tx.commit()?;
        self.record(collection, id)?
            .ok_or(IndexError::RecordNotFound)
    }

    pub fn delete_record(
        &mut self,
        collection: &CollectionName,
        id: &RecordId,
        expected_version: Option<i64>,
    ) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        let current: Option<i64> = tx
            .query_row(
                "SELECT version FROM records WHERE collection = ?1 AND id = ?2",
                params![collection.as_str(), id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let current = current.ok_or(IndexError::RecordNotFound)?;
        if expected_version.is_some_and(|v| v != current) {
            return Err(IndexError::VersionMismatch { current });
        }
        tx.execute(
            "DELETE FROM records WHERE collection = ?1 AND id = ?2",
            params![collection.as_str(), id.as_str()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Newest first. `filters` are equality tests on top-level JSON fields; `before` is
    /// the keyset cursor `(updated_at, id)` of the last record of the previous page.
    pub fn list_records(
        &self,
        collection: &CollectionName,
        filters: &[(String, serde_json::Value)],
        before: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<Record>, IndexError> {
        let mut sql = String::from(
            "SELECT collection, id, version, body, created_at, updated_at, created_by, updated_by
             FROM records WHERE collection = ?1",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![collection.as_str().to_owned().into()];
        if let Some((updated_at, id)) = before {
            args.push(updated_at.to_owned().into());
            args.push(id.to_owned().into());
            sql.push_str(&format!(
                " AND (updated_at < ?{} OR (updated_at = ?{} AND id < ?{}))",
                args.len() - 1,
                args.len() - 1,
                args.len()
            ));
        }
        for (field, value) in filters {
            // The field name is bound as a JSON path argument, never spliced into SQL.
            args.push(format!("$.\"{}\"", field.replace('"', "")).into());
            let path_arg = args.len();
            args.push(json_to_sql(value));
            sql.push_str(&format!(
                " AND json_extract(body, ?{path_arg}) IS ?{}",
                args.len()
            ));
        }
        args.push(i64::from(limit).into());
        sql.push_str(&format!(
            " ORDER BY updated_at DESC, id DESC LIMIT ?{}",
            args.len()
        ));
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), record_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every record of every collection, in collection and id order (for export).
    pub fn all_records(&self) -> Result<Vec<Record>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT collection, id, version, body, created_at, updated_at, created_by, updated_by
             FROM records ORDER BY collection, id",
        )?;
        let rows = stmt.query_map([], record_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Collections with their record counts.
    pub fn collections(&self) -> Result<Vec<(String, u64)>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT collection, COUNT(*) FROM records GROUP BY collection ORDER BY collection",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- search ------------------------------------------------------------------------

    /// Full-text search. User text is turned into a conjunction of quoted phrases, so it
    /// is never FTS5 query syntax (no column filters, no operators, no syntax errors).
    pub fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>, IndexError> {
        let Some(query) = fts_phrase_query(text) else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.kind, d.ref, snippet(search, 0, '[', ']', '…', 12)
             FROM search JOIN search_docs d ON d.rowid = search.rowid
             WHERE search MATCH ?1 ORDER BY rank LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![query, limit], |r| {
            Ok(SearchHit {
                kind: r.get(0)?,
                reference: r.get(1)?,
                snippet: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// `PRAGMA integrity_check` result ("ok" when healthy), for audits.
    pub fn integrity_check(&self) -> Result<String, IndexError> {
        Ok(self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?)
    }
}

/// A set of index changes applied atomically by `Index::apply`.
#[derive(Default)]
pub struct IndexChange<'a> {
    pub clear_subtrees: &'a [&'a str],
    pub upserts: &'a [Entry],
    pub trash_insert: Option<&'a TrashItem>,
    pub trash_remove: Option<&'a str>,
    pub pending_done: &'a [&'a str],
    /// The change only records what is already durable on disk for paths whose
    /// `pending_writes` rows were committed (fsynced) before the disk change. Such a change
    /// may skip its own fsync: if power loss drops it, the pending rows survive and the
    /// next open re-reads those paths from disk. Never set for records or trash rows.
    pub covered_by_pending: bool,
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

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let body: String = r.get(3)?;
    Ok(Record {
        collection: r.get(0)?,
        id: r.get(1)?,
        version: r.get(2)?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
        created_by: r.get(6)?,
        updated_by: r.get(7)?,
    })
}

fn json_to_sql(value: &serde_json::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Integer)
            .or_else(|| n.as_f64().map(Value::Real))
            .unwrap_or(Value::Null),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// `hello "world` becomes `"hello" """world"`: each whitespace-separated term a quoted
/// phrase (inner quotes doubled), implicitly AND-ed. `None` when there is no term.
pub fn fts_phrase_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .take(32)
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
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
            created_at: db::now(),
            modified_at: db::now(),
            modified_by: Some("system".into()),
        }
    }

    #[test]
    fn usage_counters_follow_entries() {
        let mut idx = Index::open_in_memory().unwrap();
        let upserts = [file("a.txt", 10), file("b.txt", 5)];
        idx.apply(IndexChange {
            upserts: &upserts,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(idx.bytes_stored().unwrap(), 15);
        let upserts = [file("a.txt", 3)];
        idx.apply(IndexChange {
            upserts: &upserts,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(idx.bytes_stored().unwrap(), 8);
        idx.apply(IndexChange {
            clear_subtrees: &["b.txt"],
            ..Default::default()
        })
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
        idx.apply(IndexChange {
            upserts: &upserts,
            ..Default::default()
        })
        .unwrap();
        idx.apply(IndexChange {
            clear_subtrees: &["a"],
            ..Default::default()
        })
        .unwrap();
        let left: Vec<String> = idx
            .all_entries()
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(left, ["a%", "a-b", "a0"]);
    }

    #[test]
    fn search_text_is_never_syntax() {
        let mut idx = Index::open_in_memory().unwrap();
        let clients = CollectionName::parse("clients").unwrap();
        idx.insert_record(
            &clients,
            &RecordId::parse("c1").unwrap(),
            &serde_json::json!({"name": "Greenleaf Gardens", "city": "Springfield"}),
            "system",
        )
        .unwrap();
        let upserts = [file("jobs/greenleaf-invoice.pdf", 1)];
        idx.apply(IndexChange {
            upserts: &upserts,
            ..Default::default()
        })
        .unwrap();
        let hits = idx.search("greenleaf", 10).unwrap();
        assert_eq!(hits.len(), 2);
        for hostile in [
            "\"",
            "body:x",
            "a OR b NOT c",
            "NEAR(a b)",
            "*",
            "^x",
            "(",
            "x\"y",
            "",
        ] {
            assert!(idx.search(hostile, 10).is_ok(), "{hostile}");
        }
        assert!(idx.search("springfield greenleaf", 10).unwrap().len() == 1);
    }

    #[test]
    fn records_have_optimistic_versions() {
        let mut idx = Index::open_in_memory().unwrap();
        let jobs = CollectionName::parse("jobs").unwrap();
        let id = RecordId::parse("j1").unwrap();
        let r = idx
            .insert_record(&jobs, &id, &serde_json::json!({"status": "open"}), "u")
            .unwrap();
        assert_eq!(r.version, 1);
        assert!(matches!(
            idx.insert_record(&jobs, &id, &serde_json::json!({}), "u"),
            Err(IndexError::RecordExists)
        ));
        let r = idx
            .replace_record(
                &jobs,
                &id,
                &serde_json::json!({"status": "done"}),
                Some(1),
                "u",
            )
            .unwrap();
        assert_eq!(r.version, 2);
        assert!(matches!(
            idx.replace_record(&jobs, &id, &serde_json::json!({}), Some(1), "u"),
            Err(IndexError::VersionMismatch { current: 2 })
        ));
        let found = idx
            .list_records(&jobs, &[("status".into(), "done".into())], None, 10)
            .unwrap();
        assert_eq!(found.len(), 1);
        let none = idx
            .list_records(&jobs, &[("status".into(), "open".into())], None, 10)
            .unwrap();
        assert!(none.is_empty());
        // The search index follows the update.
        assert_eq!(idx.search("done", 5).unwrap().len(), 1);
        assert!(idx.search("open", 5).unwrap().is_empty());
        idx.delete_record(&jobs, &id, Some(2)).unwrap();
        assert!(idx.search("done", 5).unwrap().is_empty());
    }
}
