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

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{AuditError, AuditLog, ChainReport, GENESIS_HASH, Row, sha256_hex};
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
        Ok(self
            .lock()
            .query_row(
                "SELECT seq, hash, at FROM events ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// The hash of row `seq`, if it is still in the log.
    pub fn row_hash(&self, seq: i64) -> Result<Option<String>, AuditError> {
        Ok(self
            .lock()
            .query_row("SELECT hash FROM events WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The newest row written before `cutoff`: (seq, hash, at).
    pub fn last_before(&self, cutoff: &str) -> Result<Option<(i64, String, String)>, AuditError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT seq, hash, at FROM events WHERE at < ?1 ORDER BY seq DESC LIMIT 1",
                [cutoff],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// Stores a checkpoint; a pruning one deletes the rows up to its `seq` in the same
    /// transaction. Returns how many rows were deleted. The row must still be in the
    /// chain with the checkpoint's hash.
    pub fn store_checkpoint(&self, checkpoint: &Checkpoint) -> Result<u64, AuditError> {
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
            return Err(AuditError::Checkpoint(format!(
                "row {} is not in the chain with that hash",
                checkpoint.seq
            )));
        }
        tx.execute(
            "INSERT INTO checkpoints (seq, hash, created_at, prunes, document, signature, public_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (seq) DO NOTHING",
            params![
                checkpoint.seq,
                checkpoint.hash,
                crate::clock::stamp(self.clock.as_ref()),
                checkpoint.prunes,
                checkpoint.signed.document,
                checkpoint.signed.signature,
                checkpoint.signed.public_key
            ],
        )?;
        let deleted = if checkpoint.prunes {
            tx.execute("DELETE FROM events WHERE seq <= ?1", [checkpoint.seq])? as u64
        } else {
            0
        };
        tx.commit()?;
        Ok(deleted)
    }

    /// Every stored checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
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
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Walks the chain that remains and reports the first row or checkpoint that does not
    /// match (see the module docs). `trusted_key`: the public key checkpoints must be
    /// signed with (`None`: any valid signature, for copies checked without the key).
    pub fn verify_with(&self, trusted_key: Option<&str>) -> Result<ChainReport, AuditError> {
        let checkpoints = self.checkpoints()?;
        let mut report = ChainReport {
            events: 0,
            broken: None,
            first_seq: 1,
            checkpoints: checkpoints.len(),
        };
        if let Some(seq) = first_invalid_checkpoint(&checkpoints, trusted_key) {
            report.broken = Some((seq, "checkpoint signature or document is not valid".into()));
            return Ok(report);
        }
        // The chain starts after the newest pruning checkpoint, from its hash.
        let (mut expected_seq, mut expected_prev) = checkpoints
            .iter()
            .rev()
            .find(|c| c.prunes)
            .map_or((1, GENESIS_HASH.to_owned()), |c| {
                (c.seq + 1, c.hash.clone())
            });
        report.first_seq = expected_seq;
        let pinned: HashMap<i64, &str> = checkpoints
            .iter()
            .map(|c| (c.seq, c.hash.as_str()))
            .collect();
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT seq, at, tenant_id, actor, ip, action, target, target_hash, destination,
                    destination_hash, outcome, detail, prev_hash, hash, hash_version, event_id
             FROM events ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            report.events += 1;
            let target: Option<String> = r.get(6)?;
            let destination: Option<String> = r.get(8)?;
            let stored_hash: String = r.get(13)?;
            let row = Row {
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
            };
            if let Some(problem) = row_problem(
                &row,
                &stored_hash,
                expected_seq,
                &expected_prev,
                &target,
                &destination,
                pinned.get(&row.seq).copied(),
            ) {
                report.broken = Some((row.seq, problem));
                return Ok(report);
            }
            expected_prev = stored_hash;
            expected_seq += 1;
        }
        // A checkpoint past the last row: rows were cut from the end.
        if let Some(cp) = checkpoints.iter().find(|c| c.seq >= expected_seq) {
            report.broken = Some((
                expected_seq,
                format!(
                    "rows from {expected_seq} on are missing: checkpoint {} names a row the log no longer has",
                    cp.seq
                ),
            ));
        }
        Ok(report)
    }

    /// `verify_with(None)`.
    pub fn verify(&self) -> Result<ChainReport, AuditError> {
        self.verify_with(None)
    }
}

/// What is wrong with one row, if anything.
fn row_problem(
    row: &Row,
    stored_hash: &str,
    expected_seq: i64,
    expected_prev: &str,
    target: &Option<String>,
    destination: &Option<String>,
    pinned: Option<&str>,
) -> Option<String> {
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
