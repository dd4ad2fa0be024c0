//! The append-only, hash-chained audit log (`<data-root>/audit.db`).
//!
//! Every mutation and security event becomes one `AuditEvent` with a closed `AuditAction`.
//! Each row carries the SHA-256 of the previous row, so a deleted, inserted or edited row
//! breaks the chain and `verify` finds it. The log outlives vaults, so it must never hold
//! vault content: the strings a tenant chose (a path, a record id, a move's destination)
//! enter the hash only through their own SHA-256 and can be redacted when the tenant is
//! purged without breaking the chain. Appends are idempotent by event id. This module
//! depends only on `names`, `db` and `clock`; it never decides whether an action is
//! allowed.

mod event;
mod query;
mod retention;
pub mod sqlite;
pub mod store;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::clock::{self, SharedClock};
use crate::db::{DbError, Migration, migration};
use crate::names::TenantId;
pub use event::{Actor, AuditAction, AuditEvent, Caller, Outcome};
pub use query::{Arg, EventQuery, Scope};
pub use retention::{Checkpoint, CheckpointDoc};
use sqlite::SqliteAudit;
use store::{AuditStore, ChainRow, RowAt};

pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "audit", "0001_audit.sql"),
    migration!(2, "audit", "0002_event_ids.sql"),
    migration!(3, "audit", "0003_checkpoints.sql"),
    migration!(4, "audit", "0004_prune_indexes.sql"),
];

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The hash formula of rows written by this build (see `Row::hash`).
const HASH_VERSION: i64 = 2;

/// A stored event, as read back (for `audit.jsonl` and the auditor role).
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: String,
    pub tenant_id: Option<String>,
    pub actor: String,
    pub ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub destination: Option<String>,
    pub outcome: String,
    pub detail: Option<serde_json::Value>,
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("audit database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL store's error; `full` when the database's disk is full.
    #[error("audit database error: {message}")]
    Postgres { message: String, full: bool },
    /// The audit database cannot be reached now: worth a retry.
    #[error("the audit database is unavailable: {0}")]
    Unavailable(String),
    #[error("audit checkpoint: {0}")]
    Checkpoint(String),
}

impl AuditError {
    /// Whether the audit log could not be written because the disk is full.
    pub fn is_storage_full(&self) -> bool {
        match self {
            AuditError::Sqlite(e) | AuditError::Db(DbError::Sqlite(e)) => crate::db::is_full(e),
            AuditError::Postgres { full, .. } => *full,
            _ => false,
        }
    }

    /// Whether the log could not be reached or its lock not taken in time: worth a retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuditError::Unavailable(_))
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub events: u64,
    /// The first broken row and why, or `None` if the chain is intact.
    pub broken: Option<(i64, String)>,
    /// The first row still kept (rows before it were pruned behind a checkpoint).
    pub first_seq: i64,
    /// Signed checkpoints checked against the chain.
    pub checkpoints: usize,
}

/// Handle to the audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    clock: SharedClock,
}

/// The columns a `StoredEvent` is read from, in order.
pub const EVENT_COLUMNS: &str =
    "seq, at, tenant_id, actor, ip, action, target, destination, outcome, detail, hash";
/// The columns a `ChainRow` is read from, in order.
pub const CHAIN_COLUMNS: &str = "seq, at, tenant_id, actor, ip, action, target, target_hash, \
     destination, destination_hash, outcome, detail, prev_hash, hash, hash_version, event_id";

impl AuditLog {
    /// The log in an SQLite file (a data root's `audit.db`, or a backup's).
    pub fn open(path: &Path, clock: SharedClock) -> Result<AuditLog, AuditError> {
        Ok(Self::with_store(Arc::new(SqliteAudit::open(path)?), clock))
    }

    /// Opens a copy read-only, as it is (a backup's), to verify it; appends fail.
    pub fn open_read_only(path: &Path) -> Result<AuditLog, AuditError> {
        Ok(Self::with_store(
            Arc::new(SqliteAudit::open_read_only(path)?),
            clock::system(),
        ))
    }

    pub fn open_in_memory() -> Result<AuditLog, AuditError> {
        Ok(Self::with_store(
            Arc::new(SqliteAudit::open_in_memory()?),
            clock::system(),
        ))
    }

    /// The log in `store` (the PostgreSQL one comes from the control plane).
    pub fn with_store(store: Arc<dyn AuditStore>, clock: SharedClock) -> AuditLog {
        AuditLog { store, clock }
    }

    /// Appends one event and returns its sequence number (see `append_all`).
    pub fn append(&self, event: &AuditEvent) -> Result<i64, AuditError> {
        self.append_all(std::slice::from_ref(event))
    }

    /// Appends events in order in one transaction and returns the newest sequence number.
    /// An event whose id is already in the chain is skipped (a replay after a crash).
    /// The store reads the head and inserts in one exclusive transaction, so processes
    /// (and, with PostgreSQL, nodes) appending at once still form one chain.
    pub fn append_all(&self, events: &[AuditEvent]) -> Result<i64, AuditError> {
        let at = clock::stamp(self.clock.as_ref());
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let mut newest = 0;
        self.store.append(&ids, &mut |head, known| {
            let (rows, seq) = chain(head, known, events, &at);
            newest = seq;
            rows
        })?;
        Ok(newest)
    }

    /// The events `q` selects.
    pub fn query(&self, q: &EventQuery<'_>) -> Result<Vec<StoredEvent>, AuditError> {
        self.store.events(q)
    }

    /// A tenant's events in order, starting after `after_seq`, at most `limit`.
    pub fn events_for_tenant(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AuditError> {
        self.query(&EventQuery {
            scope: Scope::Tenant(tenant),
            after_seq,
            limit,
            ..Default::default()
        })
    }

    /// The sequence number of the tenant's newest event (0 if none).
    pub fn last_seq_for_tenant(&self, tenant: TenantId) -> Result<i64, AuditError> {
        self.store.last_seq(Some(tenant))
    }

    /// The newest sequence number of the whole log (0 if empty).
    pub fn last_seq(&self) -> Result<i64, AuditError> {
        self.store.last_seq(None)
    }

    /// Events after `after_seq` in order (all tenants), at most `limit`.
    pub fn events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, AuditError> {
        self.query(&EventQuery {
            after_seq,
            limit,
            ..Default::default()
        })
    }

    /// The time of event `seq`, if it exists.
    pub fn event_time(&self, seq: i64) -> Result<Option<String>, AuditError> {
        Ok(self.store.row(RowAt::Seq(seq))?.map(|(_, _, at)| at))
    }

    /// Removes the targets and destinations (paths, record ids, slugs) of a purged
    /// tenant's events; the chain still verifies because only their hashes are chained.
    /// Returns the number of rows redacted.
    pub fn redact_tenant_targets(&self, tenant: TenantId) -> Result<usize, AuditError> {
        self.store.redact(tenant)
    }

    /// A consistent copy of the whole log at `path`, as an SQLite `audit.db` (backups).
    pub fn snapshot_into(&self, path: &Path) -> Result<(), AuditError> {
        self.store.snapshot_into(path)
    }

    /// Test support: runs one statement with the append-only guards lifted (see
    /// `AuditStore::tamper_unchecked`). Not in a release build.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn tamper_unchecked(&self, sql: &str) -> Result<(), AuditError> {
        self.store.tamper_unchecked(sql)
    }

    /// Test support: makes appends fail in the database while `failing`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn simulate_outage_unchecked(&self, failing: bool) -> Result<(), AuditError> {
        self.store.simulate_outage_unchecked(failing)
    }
}

/// The rows that append `events` after `head`, skipping ids already `known` (and
/// repeats within the batch), and the newest sequence number after them.
fn chain(
    head: Option<(i64, String)>,
    known: &HashSet<String>,
    events: &[AuditEvent],
    at: &str,
) -> (Vec<ChainRow>, i64) {
    let (mut seq, mut prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    let mut seen: HashSet<&str> = HashSet::new();
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        if known.contains(&event.id) || !seen.insert(&event.id) {
            continue;
        }
        seq += 1;
        let row = Row {
            version: HASH_VERSION,
            seq,
            at: at.to_owned(),
            tenant_id: event.tenant.map(|t| t.to_string()),
            actor: event.actor.to_string(),
            ip: event.ip.clone(),
            action: event.action.as_str().to_owned(),
            target_hash: event.target.as_deref().map(sha256_hex),
            destination_hash: event.destination.as_deref().map(sha256_hex),
            outcome: event.outcome.as_str().to_owned(),
            detail: event.detail.as_ref().map(|d| d.to_string()),
            prev_hash,
            event_id: Some(event.id.clone()),
        };
        let hash = row.hash();
        prev_hash = hash.clone();
        rows.push(ChainRow {
            row,
            hash,
            target: event.target.clone(),
            destination: event.destination.clone(),
        });
    }
    (rows, seq)
}

/// The fields that enter a row's hash.
#[derive(Debug, Clone)]
pub struct Row {
    pub version: i64,
    pub seq: i64,
    pub at: String,
    pub tenant_id: Option<String>,
    pub actor: String,
    pub ip: Option<String>,
    pub action: String,
    pub target_hash: Option<String>,
    pub destination_hash: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub event_id: Option<String>,
}

impl Row {
    /// SHA-256 over the JSON array of the fields in a fixed order: unambiguous (JSON quotes
    /// and escapes every string) and reproducible by an auditor without Coffer. Version 1
    /// rows (before event ids and destinations existed) keep their original formula.
    pub fn hash(&self) -> String {
        let canonical = if self.version == 1 {
            serde_json::json!([
                self.seq,
                self.at,
                self.tenant_id,
                self.actor,
                self.ip,
                self.action,
                self.target_hash,
                self.outcome,
                self.detail,
                self.prev_hash
            ])
        } else {
            serde_json::json!([
                self.version,
                self.seq,
                self.at,
                self.tenant_id,
                self.actor,
                self.ip,
                self.action,
                self.target_hash,
                self.destination_hash,
                self.outcome,
                self.detail,
                self.prev_hash,
                self.event_id
            ])
        };
        sha256_hex(&canonical.to_string())
    }
}

pub use crate::digest::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(n: usize) -> AuditLog {
        let log = AuditLog::open_in_memory().unwrap();
        let tenant = TenantId::generate();
        for i in 0..n {
            log.append(
                &AuditEvent::new(AuditAction::FileWrite, Actor::System)
                    .tenant(tenant)
                    .target(format!("docs/{i}.txt")),
            )
            .unwrap();
        }
        log
    }

    #[test]
    fn intact_chain_verifies() {
        let log = log_with(5);
        assert_eq!(
            log.verify().unwrap(),
            ChainReport {
                events: 5,
                broken: None,
                first_seq: 1,
                checkpoints: 0,
            }
        );
    }

    #[test]
    fn appends_are_idempotent_by_event_id() {
        let log = AuditLog::open_in_memory().unwrap();
        let e = AuditEvent::new(AuditAction::FileWrite, Actor::System).target("x");
        let first = log.append(&e).unwrap();
        let again = log.append_all(&[e.clone(), e]).unwrap();
        assert_eq!((first, again), (1, 1));
        assert_eq!(log.verify().unwrap().events, 1);
    }

    #[test]
    fn update_and_delete_are_refused_by_the_database() {
        let store = SqliteAudit::open_in_memory().unwrap();
        let conn = store.connection_for_tests();
        let log = AuditLog::with_store(Arc::new(store.clone()), clock::system());
        log.append(&AuditEvent::new(AuditAction::FileWrite, Actor::System).target("a"))
            .unwrap();
        log.append(&AuditEvent::new(AuditAction::FileWrite, Actor::System).target("b"))
            .unwrap();
        let conn = crate::db::lock(&conn);
        assert!(
            conn.execute("DELETE FROM events WHERE seq = 2", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE events SET actor = 'x' WHERE seq = 2", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE events SET target = 'other' WHERE seq = 2", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE events SET destination = 'other' WHERE seq = 2", [])
                .is_err()
        );
    }

    #[test]
    fn tampering_is_detected() {
        let log = log_with(4);
        log.tamper_unchecked("UPDATE events SET outcome = 'denied' WHERE seq = 3")
            .unwrap();
        let report = log.verify().unwrap();
        assert_eq!(report.broken.as_ref().map(|b| b.0), Some(3));

        let log = log_with(4);
        log.tamper_unchecked("DELETE FROM events WHERE seq = 2")
            .unwrap();
        assert_eq!(log.verify().unwrap().broken.map(|b| b.0), Some(3));
    }

    #[test]
    fn redaction_keeps_the_chain() {
        let log = AuditLog::open_in_memory().unwrap();
        let a = TenantId::generate();
        let b = TenantId::generate();
        for t in [a, b, a] {
            log.append(
                &AuditEvent::new(AuditAction::FileMove, Actor::System)
                    .tenant(t)
                    .target("secret-plans.pdf")
                    .destination("archive/secret-plans.pdf"),
            )
            .unwrap();
        }
        assert_eq!(log.redact_tenant_targets(a).unwrap(), 2);
        assert!(log.verify().unwrap().broken.is_none());
        let b_events = log.events_for_tenant(b, 0, 10).unwrap();
        assert_eq!(b_events.len(), 1);
        assert_eq!(b_events[0].target.as_deref(), Some("secret-plans.pdf"));
        assert!(
            log.events_for_tenant(a, 0, 10)
                .unwrap()
                .iter()
                .all(|e| e.target.is_none()
                    && e.destination.is_none()
                    && !e.detail.iter().any(|d| d.to_string().contains("secret")))
        );
    }

    #[test]
    fn version_one_rows_still_verify() {
        // A row written by the first schema's formula (no version, no destination).
        let log = AuditLog::open_in_memory().unwrap();
        let old = Row {
            version: 1,
            seq: 1,
            at: "2026-01-01T00:00:00.000Z".into(),
            tenant_id: None,
            actor: "system".into(),
            ip: None,
            action: "data_root.init".into(),
            target_hash: None,
            destination_hash: None,
            outcome: "success".into(),
            detail: None,
            prev_hash: GENESIS_HASH.into(),
            event_id: None,
        };
        log.tamper_unchecked(&format!(
            "INSERT INTO events (seq, at, actor, action, outcome, prev_hash, hash)
             VALUES (1, '{}', 'system', 'data_root.init', 'success', '{}', '{}')",
            old.at,
            old.prev_hash,
            old.hash()
        ))
        .unwrap();
        log.append(&AuditEvent::new(AuditAction::TenantCreate, Actor::System))
            .unwrap();
        assert_eq!(
            log.verify().unwrap(),
            ChainReport {
                events: 2,
                broken: None,
                first_seq: 1,
                checkpoints: 0,
            }
        );
    }
}
