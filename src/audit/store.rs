//! Where the audit chain is kept: the storage boundary under `AuditLog`.
//!
//! `AuditLog` owns every rule of the chain (how a row is hashed and linked, what makes
//! an append idempotent, what verification checks); a store only keeps rows and
//! checkpoints and runs each operation in the transaction it needs. Two stores exist:
//! SQLite (`audit.db` in the data root, the embedded default, `sqlite.rs`) and
//! PostgreSQL (beside the shared control plane, `control::pg::audit`), where every node
//! of a cluster appends to one chain.
//!
//! Each store must
//! - run `append` as one transaction that no other append (from any process or node)
//!   interleaves with, from reading the head to the last insert;
//! - refuse, in the database itself, any delete of a row not behind a pruning
//!   checkpoint and any update other than redacting a target or destination;
//! - hand `read_chain` its checkpoints and rows from one consistent snapshot.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;

use super::{AuditError, Checkpoint, EventQuery, Row, StoredEvent};
use crate::names::TenantId;

/// One row as stored: the hashed fields, the stored hash, and the redactable strings.
#[derive(Debug, Clone)]
pub struct ChainRow {
    pub row: Row,
    pub hash: String,
    pub target: Option<String>,
    pub destination: Option<String>,
}

/// A row's place and time: (seq, hash, at).
pub type RowFacts = (i64, String, String);

/// Which single row to look up.
#[derive(Debug, Clone, Copy)]
pub enum RowAt<'a> {
    /// The newest row.
    Newest,
    /// Row `seq`.
    Seq(i64),
    /// The newest row pruning may go through for this cutoff: every row up to it was
    /// written before the cutoff (rows are not in time order when their appenders'
    /// clocks differ, so one stamped early never makes younger rows before it go), and
    /// no checkpoint names it yet (a pruning checkpoint's row must be its own).
    PrunableBefore(&'a str),
}

/// What `read_chain` hands over: first every checkpoint (oldest first), then every row
/// in sequence order.
pub enum ChainItem<'a> {
    Checkpoints(Vec<Checkpoint>),
    Row(&'a ChainRow),
}

/// Builds the rows to append from the head `(seq, hash)` (none when the log is empty)
/// and the event ids of this batch already in the log.
pub type ChainBuilder<'a> =
    dyn FnMut(Option<(i64, String)>, &HashSet<String>) -> Vec<ChainRow> + 'a;

pub trait AuditStore: Send + Sync {
    /// In one exclusive transaction: reads the head and which of `event_ids` the log
    /// already holds, and inserts the rows `chain` builds from them.
    fn append(&self, event_ids: &[&str], chain: &mut ChainBuilder<'_>) -> Result<(), AuditError>;

    /// The events `q` selects, in sequence order.
    fn events(&self, q: &EventQuery<'_>) -> Result<Vec<StoredEvent>, AuditError>;

    /// One row's place and time.
    fn row(&self, at: RowAt<'_>) -> Result<Option<RowFacts>, AuditError>;

    /// The newest sequence number, of one tenant's events or of all (0 if none).
    fn last_seq(&self, tenant: Option<TenantId>) -> Result<i64, AuditError>;

    /// Sets a tenant's targets and destinations to NULL; returns the rows changed.
    fn redact(&self, tenant: TenantId) -> Result<usize, AuditError>;

    /// In one transaction: if row `checkpoint.seq` is in the log with the checkpoint's
    /// hash, stores the checkpoint (once) and, for a pruning one, deletes the rows up to
    /// it; returns the rows deleted. `None` if the row is not there with that hash.
    fn store_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        created_at: &str,
    ) -> Result<Option<u64>, AuditError>;

    /// Every checkpoint, oldest first.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError>;

    /// Walks the checkpoints and then the rows, in one snapshot, until `visit` breaks.
    fn read_chain(
        &self,
        visit: &mut dyn FnMut(ChainItem<'_>) -> ControlFlow<()>,
    ) -> Result<(), AuditError>;

    /// A consistent copy of the log as an SQLite `audit.db` at `path` (backups keep one
    /// format whichever store a node runs).
    fn snapshot_into(&self, path: &Path) -> Result<(), AuditError>;

    /// Test support: runs `sql` (one statement on `events` or `checkpoints`, without
    /// parameters) with the append-only guards lifted, as someone with the database
    /// could, to show that verification catches it.
    #[cfg(any(test, feature = "test-hooks"))]
    fn tamper_unchecked(&self, sql: &str) -> Result<(), AuditError>;

    /// Test support: makes every append fail in the database (as a full or broken audit
    /// disk would) while `failing`.
    #[cfg(any(test, feature = "test-hooks"))]
    fn simulate_outage_unchecked(&self, failing: bool) -> Result<(), AuditError>;
}
