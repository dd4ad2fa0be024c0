//! Verifying the chain, signed checkpoints, and retention (P15).
//!
//! A checkpoint names one row by sequence number and hash, in a JSON document signed with
//! the server's Ed25519 key (the signing happens in `Coffer`, which holds the key; this
//! module stores and checks). Two kinds:
//! - a head checkpoint, written by every lifecycle pass and by `coffer audit checkpoint`:
//!   a later chain must still contain that row with that hash, so rows cut from the end
//!   are detected;
//! - a pruning checkpoint, written in the same transaction that deletes the rows up to it
//!   (older than `audit_retention_days`): the remaining chain verifies from its hash.
//!
//! `verify` walks the rows that remain, starting from the newest pruning checkpoint, and
//! reports the first broken link precisely; every stored checkpoint's signature and row
//! are checked too.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::store::{ChainItem, ChainRow, RowAt};
use super::{AuditError, AuditLog, ChainReport, GENESIS_HASH, sha256_hex};
use crate::signing::Signed;

/// The signed document of a checkpoint (field order is the signed text's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointDoc {
    pub kind: String,
    pub version: u32,
    /// The row checkpointed and its hash.
    pub seq: i64,
    pub hash: String,
    /// That row's time.
    pub at: String,
    pub created_at: String,
    /// True if the rows up to `seq` were pruned behind this checkpoint.
    pub prunes: bool,
    pub key_id: String,
}

/// A stored checkpoint (and the file `coffer audit checkpoint` writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub prunes: bool,
    pub signed: Signed,
}

impl Checkpoint {
    /// The document, if the signed text parses and agrees with the stored columns.
    pub fn document(&self) -> Option<CheckpointDoc> {
        let doc: CheckpointDoc = serde_json::from_str(&self.signed.document).ok()?;
        (doc.seq == self.seq && doc.hash == self.hash && doc.prunes == self.prunes).then_some(doc)
    }
}

impl AuditLog {
    /// The newest row: (seq, hash, at).
    pub fn head(&self) -> Result<Option<(i64, String, String)>, AuditError> {
        self.store.row(RowAt::Newest)
    }

    /// The hash of row `seq`, if it is still in the log.
    pub fn row_hash(&self, seq: i64) -> Result<Option<String>, AuditError> {
        Ok(self.store.row(RowAt::Seq(seq))?.map(|(_, hash, _)| hash))
    }

    /// The newest row pruning for `cutoff` may go through (see `RowAt::PrunableBefore`):
    /// (seq, hash, at).
    pub fn prunable_before(
        &self,
        cutoff: &str,
    ) -> Result<Option<(i64, String, String)>, AuditError> {
        self.store.row(RowAt::PrunableBefore(cutoff))
    }

    /// Stores a checkpoint; a pruning one deletes the rows up to its `seq` in the same
    /// transaction. Returns how many rows were deleted. The row must still be in the
    /// chain with the checkpoint's hash.
    pub fn store_checkpoint(&self, checkpoint: &Checkpoint) -> Result<u64, AuditError> {
        let created_at = crate::clock::stamp(self.clock.as_ref());
        self.store
            .store_checkpoint(checkpoint, &created_at)?
            .ok_or_else(|| {
                AuditError::Checkpoint(format!(
                    "row {} is not in the chain with that hash",
                    checkpoint.seq
                ))
            })
    }

    /// Every stored checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        self.store.checkpoints()
    }

    /// Walks the chain that remains and reports the first row or checkpoint that does not
    /// match (see the module docs). `trusted_key`: the public key checkpoints must be
    /// signed with (`None`: any valid signature, for copies checked without the key).
    pub fn verify_with(&self, trusted_key: Option<&str>) -> Result<ChainReport, AuditError> {
        let mut walk = ChainWalk {
            trusted_key,
            report: ChainReport {
                events: 0,
                broken: None,
                first_seq: 1,
                checkpoints: 0,
            },
            expected_seq: 1,
            expected_prev: GENESIS_HASH.to_owned(),
            pinned: HashMap::new(),
        };
        self.store.read_chain(&mut |item| walk.visit(item))?;
        Ok(walk.finish())
    }

    /// `verify_with(None)`.
    pub fn verify(&self) -> Result<ChainReport, AuditError> {
        self.verify_with(None)
    }
}

/// The state of one verification as the store hands over checkpoints, then rows.
struct ChainWalk<'a> {
    trusted_key: Option<&'a str>,
    report: ChainReport,
    expected_seq: i64,
    expected_prev: String,
    /// Checkpointed rows and the hashes they must have (a log that ends before one of
    /// them was cut).
    pinned: HashMap<i64, String>,
}

impl ChainWalk<'_> {
    fn visit(&mut self, item: ChainItem<'_>) -> ControlFlow<()> {
        match item {
            ChainItem::Checkpoints(checkpoints) => {
                self.report.checkpoints = checkpoints.len();
                if let Some(seq) = first_invalid_checkpoint(&checkpoints, self.trusted_key) {
                    self.report.broken =
                        Some((seq, "checkpoint signature or document is not valid".into()));
                    return ControlFlow::Break(());
                }
                // The chain starts after the newest pruning checkpoint, from its hash.
                if let Some(c) = checkpoints.iter().rev().find(|c| c.prunes) {
                    self.expected_seq = c.seq + 1;
                    self.expected_prev = c.hash.clone();
                }
                self.report.first_seq = self.expected_seq;
                self.pinned = checkpoints.into_iter().map(|c| (c.seq, c.hash)).collect();
            }
            ChainItem::Row(stored) => {
                self.report.events += 1;
                if let Some(problem) = row_problem(
                    stored,
                    self.expected_seq,
                    &self.expected_prev,
                    self.pinned.get(&stored.row.seq).map(String::as_str),
                ) {
                    self.report.broken = Some((stored.row.seq, problem));
                    return ControlFlow::Break(());
                }
                self.expected_prev = stored.hash.clone();
                self.expected_seq += 1;
            }
        }
        ControlFlow::Continue(())
    }

    fn finish(mut self) -> ChainReport {
        // A checkpoint past the last row: rows were cut from the end.
        if self.report.broken.is_none()
            && let Some(cp) = (self.pinned.keys().copied())
                .filter(|&seq| seq >= self.expected_seq)
                .min()
        {
            let from = self.expected_seq;
            self.report.broken = Some((
                from,
                format!(
                    "rows from {from} on are missing: checkpoint {cp} names a row the log no longer has"
                ),
            ));
        }
        self.report
    }
}

/// What is wrong with one row, if anything.
fn row_problem(
    stored: &ChainRow,
    expected_seq: i64,
    expected_prev: &str,
    pinned: Option<&str>,
) -> Option<String> {
    let (row, stored_hash) = (&stored.row, stored.hash.as_str());
    let (target, destination) = (&stored.target, &stored.destination);
    let redactable_ok = |value: &Option<String>, hash: &Option<String>| match value {
        Some(v) => hash.as_deref() == Some(sha256_hex(v).as_str()),
        None => true,
    };
    if row.seq != expected_seq {
        Some(format!("expected sequence number {expected_seq}"))
    } else if row.prev_hash != expected_prev {
        Some("previous-hash link does not match the previous row".to_owned())
    } else if row.hash() != stored_hash {
        Some("row content does not match its hash".to_owned())
    } else if !redactable_ok(target, &row.target_hash) {
        Some("target does not match its hash".to_owned())
    } else if !redactable_ok(destination, &row.destination_hash) {
        Some("destination does not match its hash".to_owned())
    } else if pinned.is_some_and(|h| h != stored_hash) {
        Some("the row differs from its signed checkpoint".to_owned())
    } else {
        None
    }
}

/// The first checkpoint whose signature (by `trusted_key`, or the key it names) or
/// document does not hold.
fn first_invalid_checkpoint(checkpoints: &[Checkpoint], trusted_key: Option<&str>) -> Option<i64> {
    checkpoints.iter().find_map(|cp| {
        let signed_ok = match trusted_key {
            Some(key) => cp.signed.verifies_with(key),
            None => cp.signed.verifies(),
        };
        (!signed_ok || cp.document().is_none()).then_some(cp.seq)
    })
}
