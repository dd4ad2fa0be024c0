//! Structured records (authoritative: they live only in the index) and full-text search.
//!
//! Every write takes a `before_commit` hook that the `Vault` uses to append the change's
//! audit event inside the record's own transaction: a record change is never visible
//! without its event.

use rusqlite::{Connection, OptionalExtension, params};

use super::{BeforeCommit, Index, IndexError, Record, SearchHit};
use crate::vault::path::{CollectionName, RecordId};

impl Index {
    // ---- records -----------------------------------------------------------------------

    pub fn record(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<Record>, IndexError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE collection = ?1 AND id = ?2"
            ))?
            .query_row(params![collection.as_str(), id.as_str()], record_from_row)
            .optional()?)
    }

    pub fn insert_record(
        &mut self,
        change: RecordWrite<'_>,
        body: &serde_json::Value,
        before_commit: BeforeCommit<'_>,
    ) -> Result<Record, IndexError> {
        let tx = self.write_tx()?;
        let inserted = tx.execute(
            "INSERT INTO records (collection, id, version, body, created_at, updated_at, created_by, updated_by)
             VALUES (?1, ?2, 1, ?3, ?4, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
            params![
                change.collection.as_str(),
                change.id.as_str(),
                body.to_string(),
                change.now,
                change.actor
            ],
        )?;
        if inserted == 0 {
            return Err(IndexError::RecordExists);
        }
        let record = read_record(&tx, change.collection, change.id)?;
        before_commit()?;
        tx.commit()?;
        Ok(record)
    }

    /// Replaces a record's body if its version is still `expected_version` (when given),
    /// bumping the version.
    pub fn replace_record(
        &mut self,
        change: RecordWrite<'_>,
        body: &serde_json::Value,
        expected_version: Option<i64>,
        before_commit: BeforeCommit<'_>,
    ) -> Result<Record, IndexError> {
        let tx = self.write_tx()?;
        check_version(&tx, change.collection, change.id, expected_version)?;
        tx.execute(
            "UPDATE records SET body = ?3, version = version + 1, updated_at = ?4, updated_by = ?5
             WHERE collection = ?1 AND id = ?2",
            params![
                change.collection.as_str(),
                change.id.as_str(),
                body.to_string(),
                change.now,
                change.actor
            ],
        )?;
        let record = read_record(&tx, change.collection, change.id)?;
        before_commit()?;
        tx.commit()?;
        Ok(record)
    }

    pub fn delete_record(
        &mut self,
        collection: &CollectionName,
        id: &RecordId,
        expected_version: Option<i64>,
        before_commit: BeforeCommit<'_>,
    ) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        check_version(&tx, collection, id, expected_version)?;
        tx.execute(
            "DELETE FROM records WHERE collection = ?1 AND id = ?2",
            params![collection.as_str(), id.as_str()],
        )?;
        before_commit()?;
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

    /// Full-text search. User text is turned into a conjunction of quoted prefix phrases, so it
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
}

/// Who writes a record, where, and when.
pub struct RecordWrite<'a> {
    pub collection: &'a CollectionName,
    pub id: &'a RecordId,
    pub actor: &'a str,
    pub now: &'a str,
}

const RECORD_COLUMNS: &str =
    "collection, id, version, body, created_at, updated_at, created_by, updated_by";

fn read_record(
    conn: &Connection,
    collection: &CollectionName,
    id: &RecordId,
) -> Result<Record, IndexError> {
    conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE collection = ?1 AND id = ?2"
    ))?
    .query_row(params![collection.as_str(), id.as_str()], record_from_row)
    .optional()?
    .ok_or(IndexError::RecordNotFound)
}

/// Fails unless the record exists and (when given) has `expected` as its version.
fn check_version(
    conn: &Connection,
    collection: &CollectionName,
    id: &RecordId,
    expected: Option<i64>,
) -> Result<(), IndexError> {
    let current: i64 = conn
        .query_row(
            "SELECT version FROM records WHERE collection = ?1 AND id = ?2",
            params![collection.as_str(), id.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(IndexError::RecordNotFound)?;
    if expected.is_some_and(|v| v != current) {
        return Err(IndexError::VersionMismatch { current });
    }
    Ok(())
}

/// Inserts records exactly as given (version, times, authors) inside `conn`'s open
/// transaction: the import of an export. `skip_existing` leaves records that already
/// exist untouched; otherwise an existing one fails the whole change. Returns how many
/// were inserted.
pub(super) fn insert_verbatim(
    conn: &Connection,
    records: &[Record],
    skip_existing: bool,
) -> Result<usize, IndexError> {
    let mut inserted = 0;
    let mut stmt = conn.prepare_cached(
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
    Ok(inserted)
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

/// `hello "world` becomes `"hello"* """world"*`: each whitespace-separated term a quoted
/// prefix phrase (inner quotes doubled), implicitly AND-ed, so `oak` finds `Oakridge` as
/// the user types. `None` when there is no term.
pub fn fts_phrase_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .take(32)
        .map(|t| format!("\"{}\"*", t.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::index::{Entry, EntryKind, IndexChange, no_hook};

    const NOW: &str = "2026-01-01T00:00:00.000Z";

    fn file(path: &str, size: u64) -> Entry {
        Entry {
            path: path.into(),
            name: path.rsplit('/').next().unwrap().into(),
            kind: EntryKind::File,
            size,
            sha256: Some("00".into()),
            content_type: None,
            created_at: NOW.into(),
            modified_at: NOW.into(),
            modified_by: Some("system".into()),
        }
    }

    fn at<'a>(collection: &'a CollectionName, id: &'a RecordId) -> RecordWrite<'a> {
        RecordWrite {
            collection,
            id,
            actor: "u",
            now: NOW,
        }
    }

    #[test]
    fn search_text_is_never_syntax() {
        let mut idx = Index::open_in_memory().unwrap();
        let clients = CollectionName::parse("clients").unwrap();
        let c1 = RecordId::parse("c1").unwrap();
        idx.insert_record(
            at(&clients, &c1),
            &serde_json::json!({"name": "Greenleaf Gardens", "city": "Springfield"}),
            &mut no_hook,
        )
        .unwrap();
        let upserts = [file("jobs/greenleaf-invoice.pdf", 1)];
        idx.apply(
            IndexChange {
                upserts: &upserts,
                ..Default::default()
            },
            &mut no_hook,
        )
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
        // Each word matches as a prefix, so a search box finds while the user types.
        assert_eq!(idx.search("greenl", 10).unwrap().len(), 2);
        assert_eq!(idx.search("spring green", 10).unwrap().len(), 1);
        assert!(idx.search("reenleaf", 10).unwrap().is_empty());
    }

    #[test]
    fn records_have_optimistic_versions() {
        let mut idx = Index::open_in_memory().unwrap();
        let jobs = CollectionName::parse("jobs").unwrap();
        let id = RecordId::parse("j1").unwrap();
        let r = idx
            .insert_record(
                at(&jobs, &id),
                &serde_json::json!({"status": "open"}),
                &mut no_hook,
            )
            .unwrap();
        assert_eq!(r.version, 1);
        assert_eq!(idx.counter("records_stored").unwrap(), 1);
        assert!(matches!(
            idx.insert_record(at(&jobs, &id), &serde_json::json!({}), &mut no_hook),
            Err(IndexError::RecordExists)
        ));
        let r = idx
            .replace_record(
                at(&jobs, &id),
                &serde_json::json!({"status": "done"}),
                Some(1),
                &mut no_hook,
            )
            .unwrap();
        assert_eq!(r.version, 2);
        assert!(matches!(
            idx.replace_record(
                at(&jobs, &id),
                &serde_json::json!({}),
                Some(1),
                &mut no_hook
            ),
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
        idx.delete_record(&jobs, &id, Some(2), &mut no_hook)
            .unwrap();
        assert!(idx.search("done", 5).unwrap().is_empty());
        assert_eq!(idx.counter("records_stored").unwrap(), 0);
    }

    #[test]
    fn a_failing_hook_rolls_the_change_back() {
        let mut idx = Index::open_in_memory().unwrap();
        let jobs = CollectionName::parse("jobs").unwrap();
        let id = RecordId::parse("j1").unwrap();
        let refused = idx.insert_record(at(&jobs, &id), &serde_json::json!({}), &mut || {
            Err(crate::audit::AuditError::Sqlite(
                rusqlite::Error::InvalidQuery,
            ))
        });
        assert!(matches!(refused, Err(IndexError::Audit(_))));
        assert!(idx.record(&jobs, &id).unwrap().is_none());
        assert_eq!(idx.counter("records_stored").unwrap(), 0);
    }
}
