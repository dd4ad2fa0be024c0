//! The audit log's retention and checkpoints, where the server's key is at hand: signing
//! head checkpoints (every lifecycle pass, and `coffer audit checkpoint`), pruning events
//! older than `audit_retention_days` behind a signed checkpoint (P15), and verifying the
//! chain against this server's key.

use super::{Coffer, CofferError};
use crate::audit::{AuditAction, Caller, ChainReport, Checkpoint, CheckpointDoc};

impl Coffer {
    fn sign_checkpoint(
        &self,
        (seq, hash, at): (i64, String, String),
        prunes: bool,
    ) -> Result<Checkpoint, CofferError> {
        let doc = CheckpointDoc {
            kind: "coffer-audit-checkpoint".into(),
            version: 1,
            seq,
            hash: hash.clone(),
            at,
            created_at: crate::clock::stamp(self.clock.as_ref()),
            prunes,
            key_id: self.signing.key_id(),
        };
        let text = serde_json::to_string(&doc).map_err(std::io::Error::other)?;
        Ok(Checkpoint {
            seq,
            hash,
            prunes,
            signed: self.signing.sign(text),
        })
    }

    /// Signs and stores a checkpoint of the chain's newest row (`None`: the log is
    /// empty). A later chain must still hold that row with that hash.
    pub fn checkpoint_audit(&self) -> Result<Option<Checkpoint>, CofferError> {
        let Some(head) = self.audit.head()? else {
            return Ok(None);
        };
        let checkpoint = self.sign_checkpoint(head, false)?;
        self.audit.store_checkpoint(&checkpoint)?;
        Ok(Some(checkpoint))
    }

    /// Deletes the events older than `audit_retention_days` behind a signed pruning
    /// checkpoint of the newest of them that may go (`AuditLog::prunable_before`), and
    /// records that it did. Returns how many went.
    pub fn prune_audit(&self) -> Result<u64, CofferError> {
        let days = i64::from(self.config.audit_retention_days);
        let cutoff = crate::db::timestamp(self.clock.now() - time::Duration::days(days));
        let Some(last) = self.audit.prunable_before(&cutoff)? else {
            return Ok(0);
        };
        let through = last.0;
        let checkpoint = self.sign_checkpoint(last, true)?;
        let deleted = self.audit.store_checkpoint(&checkpoint)?;
        if deleted > 0 {
            self.audit
                .append(&Caller::system().event(AuditAction::AuditPrune).detail(
                serde_json::json!({ "through_seq": through, "events": deleted, "before": cutoff }),
            ))?;
        }
        Ok(deleted)
    }

    /// Verifies the chain and every stored checkpoint against this server's key.
    pub fn verify_audit(&self) -> Result<ChainReport, CofferError> {
        Ok(self
            .audit
            .verify_with(Some(self.signing.public_key_hex()))?)
    }

    /// Checks that the log still holds the row an auditor's saved checkpoint names, with
    /// its hash (or, if it was pruned since, that a pruning checkpoint covers it).
    pub fn holds_checkpoint(&self, saved: &Checkpoint) -> Result<Result<(), String>, CofferError> {
        if !saved.signed.verifies_with(self.signing.public_key_hex()) || saved.document().is_none()
        {
            return Ok(Err(
                "the checkpoint is not signed by this server's key".into()
            ));
        }
        let report = self.verify_audit()?;
        if let Some((seq, why)) = report.broken {
            return Ok(Err(format!("the chain is broken at {seq}: {why}")));
        }
        if saved.seq < report.first_seq {
            return Ok(Ok(())); // pruned since, behind a verified checkpoint
        }
        let kept = self
            .audit
            .checkpoints()?
            .into_iter()
            .any(|c| c.seq == saved.seq && c.hash == saved.hash);
        let row = self.audit.row_hash(saved.seq)?;
        match row {
            Some(hash) if hash == saved.hash => Ok(Ok(())),
            Some(_) => Ok(Err(format!(
                "row {} no longer has the checkpoint's hash",
                saved.seq
            ))),
            None if kept => Ok(Err(format!("row {} is missing", saved.seq))),
            None => Ok(Err(format!(
                "row {} is missing: rows were cut from the end",
                saved.seq
            ))),
        }
    }
}
