//! The PostgreSQL audit store: one chain for every node sharing the control plane
//! (vault-layout/migrations/control-postgres/0003_audit.sql). An append takes the audit
//! advisory lock for its transaction, so appends from several nodes at once are
//! serialized from reading the newest row to the last insert, exactly as one SQLite
//! file's `BEGIN IMMEDIATE` serializes processes. The append-only guards are triggers,
//! as in SQLite, plus a refusal of `TRUNCATE`. The rules of the chain live in
//! `audit`; this file only stores.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;

use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row as PgRow, Transaction};

use super::pool::Pool;
use super::{AUDIT_LOCK, Params, TAKE_LOCK, wait};
use crate::audit::store::{AuditStore, ChainBuilder, ChainItem, ChainRow, RowAt, RowFacts};
use crate::audit::{
    Arg, AuditError, CHAIN_COLUMNS, Checkpoint, EventQuery, MIGRATIONS, Row, StoredEvent, sqlite,
};
use crate::names::TenantId;
use crate::signing::Signed;

/// Rows fetched per round trip while walking the chain.
const WALK_BATCH: i32 = 2_000;

pub struct PostgresAudit {
    pool: Pool,
}

impl PostgresAudit {
    pub fn new(pool: Pool) -> Self {
        PostgresAudit { pool }
    }

    fn client(&self) -> Result<super::pool::Pooled<'_>, AuditError> {
        self.pool
            .get()
            .map_err(|e| AuditError::Unavailable(e.to_string()))
    }
}

impl From<tokio_postgres::Error> for AuditError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        // The connection gone, or the appends' lock or a statement over its time limit
        // (another node holding the lock too long): worth a retry, not an error.
        let busy = [SqlState::LOCK_NOT_AVAILABLE, SqlState::QUERY_CANCELED];
        if e.is_closed() || e.code().is_some_and(|c| busy.contains(c)) {
            return AuditError::Unavailable(e.to_string());
        }
        AuditError::Postgres {
            full: e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL),
            message: match e.as_db_error() {
                Some(db) => db.message().to_owned(),
                None => e.to_string(),
            },
        }
    }
}

/// A read-only transaction that sees one moment of the log throughout.
async fn snapshot(
    client: &mut tokio_postgres::Client,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

fn chain_row(r: &PgRow) -> Result<ChainRow, tokio_postgres::Error> {
    Ok(ChainRow {
        row: Row {
            seq: r.try_get(0)?,
            at: r.try_get(1)?,
            tenant_id: r.try_get(2)?,
            actor: r.try_get(3)?,
            ip: r.try_get(4)?,
            action: r.try_get(5)?,
            target_hash: r.try_get(7)?,
            destination_hash: r.try_get(9)?,
            outcome: r.try_get(10)?,
            detail: r.try_get(11)?,
            prev_hash: r.try_get(12)?,
            version: r.try_get(14)?,
            event_id: r.try_get(15)?,
        },
        target: r.try_get(6)?,
        destination: r.try_get(8)?,
        hash: r.try_get(13)?,
    })
}

fn stored_event(r: &PgRow) -> Result<StoredEvent, tokio_postgres::Error> {
    let detail: Option<String> = r.try_get(9)?;
    Ok(StoredEvent {
        seq: r.try_get(0)?,
        at: r.try_get(1)?,
        tenant_id: r.try_get(2)?,
        actor: r.try_get(3)?,
        ip: r.try_get(4)?,
        action: r.try_get(5)?,
        target: r.try_get(6)?,
        destination: r.try_get(7)?,
        outcome: r.try_get(8)?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        hash: r.try_get(10)?,
    })
}

/// Every checkpoint, oldest first, with the time each was stored.
async fn checkpoints(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Vec<(Checkpoint, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT seq, hash, prunes, document, signature, public_key, created_at
             FROM checkpoints ORDER BY seq",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                Checkpoint {
                    seq: r.try_get(0)?,
                    hash: r.try_get(1)?,
                    prunes: r.try_get(2)?,
                    signed: Signed {
                        document: r.try_get(3)?,
                        signature: r.try_get(4)?,
                        public_key: r.try_get(5)?,
                    },
                },
                r.try_get(6)?,
            ))
        })
        .collect()
}

/// Inserts `rows` in one statement (one round trip): each column as an array.
async fn insert_rows(tx: &Transaction<'_>, rows: &[ChainRow]) -> Result<(), tokio_postgres::Error> {
    let text = |f: &dyn Fn(&ChainRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let seq: Vec<i64> = rows.iter().map(|r| r.row.seq).collect();
    let version: Vec<i64> = rows.iter().map(|r| r.row.version).collect();
    // In the order of the statement's columns after `seq` and `hash_version`.
    let columns = [
        text(&|r| Some(r.row.at.clone())),
        text(&|r| r.row.tenant_id.clone()),
        text(&|r| Some(r.row.actor.clone())),
        text(&|r| r.row.ip.clone()),
        text(&|r| Some(r.row.action.clone())),
        text(&|r| r.target.clone()),
        text(&|r| r.row.target_hash.clone()),
        text(&|r| r.destination.clone()),
        text(&|r| r.row.destination_hash.clone()),
        text(&|r| Some(r.row.outcome.clone())),
        text(&|r| r.row.detail.clone()),
        text(&|r| Some(r.row.prev_hash.clone())),
        text(&|r| Some(r.hash.clone())),
        text(&|r| r.row.event_id.clone()),
    ];
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&seq, &version];
    params.extend(columns.iter().map(|c| c as &(dyn ToSql + Sync)));
    tx.execute(
        "INSERT INTO events (seq, hash_version, at, tenant_id, actor, ip, action, target,
             target_hash, destination, destination_hash, outcome, detail, prev_hash, hash,
             event_id)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
             $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])",
        &params,
    )
    .await?;
    Ok(())
}

/// Walks every row in order within `tx`, a batch at a time.
async fn walk_rows(
    tx: &Transaction<'_>,
    visit: &mut dyn FnMut(ChainRow) -> Result<ControlFlow<()>, AuditError>,
) -> Result<(), AuditError> {
    let statement = tx
        .prepare(&format!("SELECT {CHAIN_COLUMNS} FROM events ORDER BY seq"))
        .await?;
    let portal = tx.bind(&statement, &[]).await?;
    loop {
        let rows = tx.query_portal(&portal, WALK_BATCH).await?;
        for r in &rows {
            if visit(chain_row(r)?)?.is_break() {
                return Ok(());
            }
        }
        if rows.len() < WALK_BATCH as usize {
            return Ok(());
        }
    }
}

impl AuditStore for PostgresAudit {
    fn append(&self, event_ids: &[&str], chain: &mut ChainBuilder<'_>) -> Result<(), AuditError> {
        let mut client = self.client()?;
        wait(async {
            let tx = client.transaction().await?;
            // Every node's appends wait here one at a time, so the round trips held under
            // the lock are few: the head and the known ids in one pipeline, and the rows
            // in one statement, however many. (The lock is taken on its own first: a
            // statement given as text is prepared before it runs, so pipelined ones do
            // not run in the order given.)
            tx.execute(TAKE_LOCK, &[&AUDIT_LOCK]).await?;
            let (head, known) = futures_util::future::try_join(
                tx.query_opt(
                    "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
                    &[],
                ),
                tx.query(
                    "SELECT event_id FROM events WHERE event_id = ANY($1)",
                    &[&event_ids],
                ),
            )
            .await?;
            let head = head
                .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
                .transpose()?;
            let known: HashSet<String> = known
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let rows = chain(head, &known);
            if !rows.is_empty() {
                insert_rows(&tx, &rows).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn events(&self, q: &EventQuery<'_>) -> Result<Vec<StoredEvent>, AuditError> {
        let (sql, args) = q.to_sql(|n| format!("${n}"));
        let values: Vec<Box<dyn ToSql + Sync>> = args
            .into_iter()
            .map(|a| -> Box<dyn ToSql + Sync> {
                match a {
                    Arg::Int(n) => Box::new(n),
                    Arg::Text(s) => Box::new(s),
                }
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        let client = self.client()?;
        let rows = match wait(client.query(&sql, &params)) {
            // A NUL in a filter (PostgreSQL refuses such text outright): nothing stored
            // holds one, so nothing matches, as with SQLite.
            Err(e)
                if e.code()
                    == Some(&tokio_postgres::error::SqlState::CHARACTER_NOT_IN_REPERTOIRE) =>
            {
                return Ok(vec![]);
            }
            other => other?,
        };
        Ok(rows.iter().map(stored_event).collect::<Result<_, _>>()?)
    }

    fn row(&self, at: RowAt<'_>) -> Result<Option<RowFacts>, AuditError> {
        let client = self.client()?;
        let (sql, params): (&str, &Params<'_>) = match &at {
            RowAt::Newest => (
                "SELECT seq, hash, at FROM events ORDER BY seq DESC LIMIT 1",
                &[],
            ),
            RowAt::Seq(seq) => ("SELECT seq, hash, at FROM events WHERE seq = $1", &[seq]),
            RowAt::PrunableBefore(cutoff) => (
                "SELECT seq, hash, at FROM events
                 WHERE seq < COALESCE((SELECT MIN(seq) FROM events WHERE at >= $1),
                                      (SELECT MAX(seq) FROM events) + 1)
                   AND seq NOT IN (SELECT seq FROM checkpoints)
                 ORDER BY seq DESC LIMIT 1",
                &[cutoff],
            ),
        };
        let found = wait(client.query_opt(sql, params))?;
        Ok(found
            .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()?)
    }

    fn last_seq(&self, tenant: Option<TenantId>) -> Result<i64, AuditError> {
        let client = self.client()?;
        let row = match tenant {
            Some(t) => wait(client.query_one(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = $1",
                &[&t.to_string()],
            ))?,
            None => wait(client.query_one("SELECT COALESCE(MAX(seq), 0) FROM events", &[]))?,
        };
        Ok(row.try_get(0)?)
    }

    fn redact(&self, tenant: TenantId) -> Result<usize, AuditError> {
        let client = self.client()?;
        Ok(wait(client.execute(
            "UPDATE events SET target = NULL, destination = NULL
             WHERE tenant_id = $1 AND (target IS NOT NULL OR destination IS NOT NULL)",
            &[&tenant.to_string()],
        ))? as usize)
    }

    fn store_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        created_at: &str,
    ) -> Result<Option<u64>, AuditError> {
        let mut client = self.client()?;
        wait(async {
            let tx = client.transaction().await?;
            // Behind the appends' lock: a pruning checkpoint's delete and an append do
            // not interleave.
            tx.execute(TAKE_LOCK, &[&AUDIT_LOCK]).await?;
            let hash: Option<String> = tx
                .query_opt("SELECT hash FROM events WHERE seq = $1", &[&checkpoint.seq])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            if hash.as_deref() != Some(checkpoint.hash.as_str()) {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO checkpoints (seq, hash, created_at, prunes, document, signature,
                                          public_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (seq) DO NOTHING",
                &[
                    &checkpoint.seq,
                    &checkpoint.hash,
                    &created_at,
                    &checkpoint.prunes,
                    &checkpoint.signed.document,
                    &checkpoint.signed.signature,
                    &checkpoint.signed.public_key,
                ],
            )
            .await?;
            let deleted = if checkpoint.prunes {
                tx.execute("DELETE FROM events WHERE seq <= $1", &[&checkpoint.seq])
                    .await?
            } else {
                0
            };
            tx.commit().await?;
            Ok(Some(deleted))
        })
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let client = self.client()?;
        Ok(wait(checkpoints(&*client))?
            .into_iter()
            .map(|(c, _)| c)
            .collect())
    }

    fn read_chain(
        &self,
        visit: &mut dyn FnMut(ChainItem<'_>) -> ControlFlow<()>,
    ) -> Result<(), AuditError> {
        let mut client = self.client()?;
        wait(async {
            let tx = snapshot(&mut client).await?;
            let found = checkpoints(&tx)
                .await?
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            if visit(ChainItem::Checkpoints(found)).is_break() {
                return Ok(());
            }
            walk_rows(&tx, &mut |row| Ok(visit(ChainItem::Row(&row)))).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn snapshot_into(&self, path: &Path) -> Result<(), AuditError> {
        let mut out = crate::db::open(path, MIGRATIONS)?;
        let copy = out.transaction()?;
        let mut client = self.client()?;
        wait(async {
            let tx = snapshot(&mut client).await?;
            for (checkpoint, created_at) in checkpoints(&tx).await? {
                sqlite::insert_checkpoint(&copy, &checkpoint, &created_at)?;
            }
            walk_rows(&tx, &mut |row| {
                sqlite::insert_row(&copy, &row)?;
                Ok(ControlFlow::Continue(()))
            })
            .await?;
            tx.commit().await?;
            Ok::<_, AuditError>(())
        })?;
        copy.commit()?;
        Ok(())
    }

    #[cfg(any(test, feature = "test-hooks"))]
    fn tamper_unchecked(&self, sql: &str) -> Result<(), AuditError> {
        let mut client = self.client()?;
        wait(async {
            let tx = client.transaction().await?;
            tx.batch_execute(
                "ALTER TABLE events DISABLE TRIGGER USER;
                 ALTER TABLE checkpoints DISABLE TRIGGER USER",
            )
            .await?;
            tx.batch_execute(sql).await?;
            tx.batch_execute(
                "ALTER TABLE events ENABLE TRIGGER USER;
                 ALTER TABLE checkpoints ENABLE TRIGGER USER",
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    #[cfg(any(test, feature = "test-hooks"))]
    fn simulate_outage_unchecked(&self, failing: bool) -> Result<(), AuditError> {
        let client = self.client()?;
        wait(client.batch_execute(if failing {
            "CREATE FUNCTION audit_outage() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'audit disk failed'; END $$;
             CREATE TRIGGER outage BEFORE INSERT ON events
                 FOR EACH ROW EXECUTE FUNCTION audit_outage()"
        } else {
            "DROP TRIGGER outage ON events; DROP FUNCTION audit_outage()"
        }))?;
        Ok(())
    }
}
