//! The SQLite audit store: `<data-root>/audit.db`, the embedded default, and the format a
//! backup set keeps the log in whichever store a node runs. One connection behind a
//! mutex; appends run in `BEGIN IMMEDIATE` transactions, so two processes appending to
//! one file still form one chain. The append-only guards are triggers
//! (vault-layout/migrations/audit).

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use super::query::Arg;
use super::store::{AuditStore, ChainBuilder, ChainItem, ChainRow, RowAt, RowFacts};
use super::{AuditError, CHAIN_COLUMNS, Checkpoint, EventQuery, MIGRATIONS, Row, StoredEvent};
use crate::db;
use crate::names::TenantId;
use crate::signing::Signed;

#[derive(Clone)]
pub struct SqliteAudit {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteAudit {
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        Ok(Self::with(db::open(path, MIGRATIONS)?))
    }

    /// A copy opened as it is (a backup's), to verify it; appends fail.
    pub fn open_read_only(path: &Path) -> Result<Self, AuditError> {
        Ok(Self::with(db::open_read_only(path)?))
    }

    pub fn open_in_memory() -> Result<Self, AuditError> {
        Ok(Self::with(db::open_in_memory(MIGRATIONS)?))
    }

    fn with(conn: Connection) -> Self {
        SqliteAudit {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Unit tests: the connection itself, to show the guards refuse changes.
    #[cfg(test)]
    pub fn connection_for_tests(&self) -> Arc<Mutex<Connection>> {
        self.conn.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-written row (SQLite rolls back an
        // unfinished transaction), so the connection is still usable.
        db::lock(&self.conn)
    }
}

/// Inserts one chained row (also used to copy a PostgreSQL log into a backup's file).
pub(crate) fn insert_row(conn: &Connection, r: &ChainRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (seq, at, tenant_id, actor, ip, action, target, target_hash,
                             destination, destination_hash, outcome, detail, prev_hash,
                             hash, hash_version, event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        r.row.seq,
        r.row.at,
        r.row.tenant_id,
        r.row.actor,
        r.row.ip,
        r.row.action,
        r.target,
        r.row.target_hash,
        r.destination,
        r.row.destination_hash,
        r.row.outcome,
        r.row.detail,
        r.row.prev_hash,
        r.hash,
        r.row.version,
        r.row.event_id,
    ])?;
    Ok(())
}

/// Inserts one checkpoint as stored (the copy into a backup's file).
pub(crate) fn insert_checkpoint(
    conn: &Connection,
    checkpoint: &Checkpoint,
    created_at: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO checkpoints (seq, hash, created_at, prunes, document, signature, public_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (seq) DO NOTHING",
        params![
            checkpoint.seq,
            checkpoint.hash,
            created_at,
            checkpoint.prunes,
            checkpoint.signed.document,
            checkpoint.signed.signature,
            checkpoint.signed.public_key
        ],
    )?;
    Ok(())
}

fn stored_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let detail: Option<String> = r.get(9)?;
    Ok(StoredEvent {
        seq: r.get(0)?,
        at: r.get(1)?,
        tenant_id: r.get(2)?,
        actor: r.get(3)?,
        ip: r.get(4)?,
        action: r.get(5)?,
        target: r.get(6)?,
        destination: r.get(7)?,
        outcome: r.get(8)?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        hash: r.get(10)?,
    })
}

fn chain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChainRow> {
    Ok(ChainRow {
        row: Row {
            seq: r.get(0)?,
            at: r.get(1)?,
            tenant_id: r.get(2)?,
            actor: r.get(3)?,
            ip: r.get(4)?,
            action: r.get(5)?,
            target_hash: r.get(7)?,
            destination_hash: r.get(9)?,
            outcome: r.get(10)?,
            detail: r.get(11)?,
            prev_hash: r.get(12)?,
            version: r.get(14)?,
            event_id: r.get(15)?,
        },
        target: r.get(6)?,
        destination: r.get(8)?,
        hash: r.get(13)?,
    })
}

fn checkpoints(conn: &Connection) -> rusqlite::Result<Vec<Checkpoint>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, hash, prunes, document, signature, public_key FROM checkpoints ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Checkpoint {
            seq: r.get(0)?,
            hash: r.get(1)?,
            prunes: r.get(2)?,
            signed: Signed {
                document: r.get(3)?,
                signature: r.get(4)?,
                public_key: r.get(5)?,
            },
        })
    })?;
    rows.collect()
}

impl AuditStore for SqliteAudit {
    fn append(&self, event_ids: &[&str], chain: &mut ChainBuilder<'_>) -> Result<(), AuditError> {
        let conn = self.lock();
        let tx =
            rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
        let head: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut known = HashSet::new();
        for id in event_ids {
            let found = tx
                .prepare_cached("SELECT 1 FROM events WHERE event_id = ?1")?
                .exists([id])?;
            if found {
                known.insert((*id).to_owned());
            }
        }
        for row in chain(head, &known) {
            insert_row(&tx, &row)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn events(&self, q: &EventQuery<'_>) -> Result<Vec<StoredEvent>, AuditError> {
        let (sql, args) = q.to_sql(|n| format!("?{n}"));
        let values: Vec<rusqlite::types::Value> = args
            .into_iter()
            .map(|a| match a {
                Arg::Int(n) => n.into(),
                Arg::Text(s) => s.into(),
            })
            .collect();
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn row(&self, at: RowAt<'_>) -> Result<Option<RowFacts>, AuditError> {
        let conn = self.lock();
        let facts = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
        let found = match at {
            RowAt::Newest => conn
                .prepare_cached("SELECT seq, hash, at FROM events ORDER BY seq DESC LIMIT 1")?
                .query_row([], facts),
            RowAt::Seq(seq) => conn
                .prepare_cached("SELECT seq, hash, at FROM events WHERE seq = ?1")?
                .query_row([seq], facts),
            RowAt::PrunableBefore(cutoff) => conn
                .prepare_cached(
                    "SELECT seq, hash, at FROM events
                     WHERE seq < COALESCE((SELECT MIN(seq) FROM events WHERE at >= ?1),
                                          (SELECT MAX(seq) FROM events) + 1)
                       AND seq NOT IN (SELECT seq FROM checkpoints)
                     ORDER BY seq DESC LIMIT 1",
                )?
                .query_row([cutoff], facts),
        };
        Ok(found.optional()?)
    }

    fn last_seq(&self, tenant: Option<TenantId>) -> Result<i64, AuditError> {
        let conn = self.lock();
        Ok(match tenant {
            Some(t) => conn
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = ?1")?
                .query_row([t.to_string()], |r| r.get(0))?,
            None => conn
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events")?
                .query_row([], |r| r.get(0))?,
        })
    }

    fn redact(&self, tenant: TenantId) -> Result<usize, AuditError> {
        Ok(self.lock().execute(
            "UPDATE events SET target = NULL, destination = NULL
             WHERE tenant_id = ?1 AND (target IS NOT NULL OR destination IS NOT NULL)",
            [tenant.to_string()],
        )?)
    }

    fn store_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        created_at: &str,
    ) -> Result<Option<u64>, AuditError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let hash: Option<String> = tx
            .query_row(
                "SELECT hash FROM events WHERE seq = ?1",
                [checkpoint.seq],
                |r| r.get(0),
            )
            .optional()?;
        if hash.as_deref() != Some(checkpoint.hash.as_str()) {
            return Ok(None);
        }
        insert_checkpoint(&tx, checkpoint, created_at)?;
        let deleted = if checkpoint.prunes {
            tx.execute("DELETE FROM events WHERE seq <= ?1", [checkpoint.seq])? as u64
        } else {
            0
        };
        tx.commit()?;
        Ok(Some(deleted))
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        Ok(checkpoints(&self.lock())?)
    }

    fn read_chain(
        &self,
        visit: &mut dyn FnMut(ChainItem<'_>) -> ControlFlow<()>,
    ) -> Result<(), AuditError> {
        let mut conn = self.lock();
        // A read transaction: checkpoints and rows from one snapshot.
        let tx = conn.transaction()?;
        if visit(ChainItem::Checkpoints(checkpoints(&tx)?)).is_break() {
            return Ok(());
        }
        let mut stmt = tx.prepare(&format!("SELECT {CHAIN_COLUMNS} FROM events ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if visit(ChainItem::Row(&chain_row(r)?)).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn snapshot_into(&self, path: &Path) -> Result<(), AuditError> {
        Ok(db::snapshot_into(&self.lock(), path)?)
    }

    #[cfg(any(test, feature = "test-hooks"))]
    fn tamper_unchecked(&self, sql: &str) -> Result<(), AuditError> {
        // SQLite cannot switch triggers off: drop the guards, run, put them back.
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let guards: Vec<(String, String)> = tx
            .prepare(
                "SELECT name, sql FROM sqlite_master
                 WHERE type = 'trigger' AND tbl_name IN ('events', 'checkpoints')",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (name, _) in &guards {
            tx.execute_batch(&format!("DROP TRIGGER {name}"))?;
        }
        tx.execute_batch(sql)?;
        for (_, create) in &guards {
            tx.execute_batch(create)?;
        }
        tx.commit()?;
        Ok(())
    }

    #[cfg(any(test, feature = "test-hooks"))]
    fn simulate_outage_unchecked(&self, failing: bool) -> Result<(), AuditError> {
        self.lock().execute_batch(if failing {
            "CREATE TRIGGER outage BEFORE INSERT ON events
             BEGIN SELECT RAISE(ABORT, 'audit disk failed'); END;"
        } else {
            "DROP TRIGGER outage;"
        })?;
        Ok(())
    }
}
