//! Purging a tenant (P12, P14): the steps that cross the control plane, the vault store,
//! the backups and the audit log, in an order that makes every interruption safe.
//!
//! 1. `begin`: the control plane marks the tenant `purging` (from then on it serves
//!    nothing, to anyone) and writes down what its vault holds, for the receipt.
//! 2. `retire`: the vault directory is renamed to `<id>.purging`.
//! 3. `remove`: the renamed directory is removed through the capability layer.
//! 4. `backups`: the tenant's directory is removed from every backup set.
//! 5. `redact`: every audit target and destination of the tenant is redacted (the hashes
//!    stay, so the chain still verifies).
//! 6. `finish`: memberships and tokens go, the row becomes a tombstone, and the receipt,
//!    signed with the server's key, is kept and appended to the audit log.
//!
//! Each step is idempotent and the state says where a purge stands, so a purge stopped
//! anywhere is finished by the next lifecycle pass.

use serde::Serialize;

use super::{Coffer, CofferError};
use crate::audit::Caller;
use crate::control::{ControlError, PurgeFacts, PurgeRecord, Tenant, TenantState};
use crate::names::TenantId;
use crate::signing::Signed;
use crate::vault::index::EntryKind;

/// A step boundary of a purge, where tests stop one to prove it resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeStep {
    Begun,
    Retired,
    Removed,
    BackupsCleared,
    Redacted,
}

/// The deletion receipt's document (field order is the signed text's).
#[derive(Serialize)]
struct Receipt<'a> {
    kind: &'static str,
    version: u32,
    tenant_id: String,
    /// SHA-256 of the tenant's slug: the customer can match it; the receipt names no one.
    slug_sha256: String,
    tenant_created_at: &'a str,
    cancelled_at: Option<&'a str>,
    purge_started_at: &'a str,
    purged_at: String,
    destroyed: Destroyed,
    /// The last audit event before this receipt's own.
    audit_last_seq: i64,
    key_id: String,
}

#[derive(Serialize)]
struct Destroyed {
    files: u64,
    directories: u64,
    records: u64,
    bytes: u64,
    backup_copies: usize,
}

impl Coffer {
    /// Purges a tenant whose purge is due, or finishes one that was interrupted, and
    /// returns its signed deletion receipt (a purged tenant's existing receipt too).
    pub fn purge_tenant(&self, caller: &Caller, tenant: TenantId) -> Result<Signed, CofferError> {
        let receipt = self.purge_until(caller, tenant, None)?;
        receipt.ok_or_else(|| ControlError::NotFound.into())
    }

    /// `purge_tenant`, stopped right after `step` (tests of resumption).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn purge_stopping_after(
        &self,
        caller: &Caller,
        tenant: TenantId,
        step: PurgeStep,
    ) -> Result<Option<Signed>, CofferError> {
        self.purge_until(caller, tenant, Some(step))
    }

    /// One purge of a tenant at a time, across processes: a lease per tenant.
    fn purge_until(
        &self,
        caller: &Caller,
        tenant: TenantId,
        stop: Option<PurgeStep>,
    ) -> Result<Option<Signed>, CofferError> {
        let (lease, holder) = (format!("purge:{tenant}"), crate::control::lease_holder());
        if !self
            .control
            .take_lease(&lease, &holder, time::Duration::hours(1))?
        {
            return Err(CofferError::Busy(format!(
                "a purge of {tenant} is already running"
            )));
        }
        let result = self.purge_steps(caller, tenant, stop);
        let released = self.control.release_lease(&lease, &holder);
        let receipt = result?;
        released?;
        Ok(receipt)
    }

    fn purge_steps(
        &self,
        caller: &Caller,
        tenant: TenantId,
        stop: Option<PurgeStep>,
    ) -> Result<Option<Signed>, CofferError> {
        let current = self.control.tenant(tenant)?.ok_or(ControlError::NotFound)?;
        match current.state {
            TenantState::Purged => {
                let record = self.control.purge_record(tenant)?;
                return Ok(record.and_then(|r| r.receipt));
            }
            // Only the node serving the tenant purges it (another may hold a stale copy,
            // whose removal would prove nothing).
            _ if !self.control.serves(&current) => {
                let node = current.placement.map(|p| p.node).unwrap_or_default();
                return Err(crate::auth::AuthError::Misdirected(node).into());
            }
            TenantState::Cancelled => {
                let facts = self.vault_facts(tenant)?;
                self.control.begin_purge(caller, tenant, facts)?;
            }
            TenantState::Purging => {}
            state => return Err(ControlError::WrongState(state).into()),
        }
        let stopped = |step| stop == Some(step);
        if stopped(PurgeStep::Begun) {
            return Ok(None);
        }
        self.vaults.retire(tenant)?;
        if stopped(PurgeStep::Retired) {
            return Ok(None);
        }
        self.vaults.remove_retired(tenant)?;
        if stopped(PurgeStep::Removed) {
            return Ok(None);
        }
        let backup_copies = self.forget_tenant_in_backups(tenant)?;
        if stopped(PurgeStep::BackupsCleared) {
            return Ok(None);
        }
        self.audit.redact_tenant_targets(tenant)?;
        if stopped(PurgeStep::Redacted) {
            return Ok(None);
        }
        let record = self
            .control
            .purge_record(tenant)?
            .ok_or(ControlError::NotFound)?;
        let receipt = self.sign_receipt(&current, &record, backup_copies)?;
        self.control.finish_purge(caller, tenant, &receipt)?;
        tracing::info!(tenant = %tenant, "tenant purged");
        Ok(Some(receipt))
    }

    /// What the vault holds now: files, directories, records and bytes (trash included).
    fn vault_facts(&self, tenant: TenantId) -> Result<PurgeFacts, CofferError> {
        let vault = self.vaults.open(tenant)?;
        let mut facts = PurgeFacts::default();
        for entry in vault.all_entries()? {
            match entry.kind {
                EntryKind::File => {
                    facts.files += 1;
                    facts.bytes += entry.size;
                }
                EntryKind::Dir => facts.directories += 1,
            }
        }
        for (name, value) in vault.usage()? {
            match name.as_str() {
                "records_stored" => facts.records = value.max(0) as u64,
                "trash_bytes" => facts.bytes += value.max(0) as u64,
                _ => {}
            }
        }
        Ok(facts)
    }

    fn sign_receipt(
        &self,
        tenant: &Tenant,
        record: &PurgeRecord,
        backup_copies: usize,
    ) -> Result<Signed, CofferError> {
        let receipt = Receipt {
            kind: "coffer-deletion-receipt",
            version: 1,
            tenant_id: tenant.id.to_string(),
            slug_sha256: crate::audit::sha256_hex(&tenant.slug),
            tenant_created_at: &tenant.created_at,
            cancelled_at: tenant.lifecycle.cancelled_at.as_deref(),
            purge_started_at: &record.started_at,
            purged_at: crate::clock::stamp(self.clock.as_ref()),
            destroyed: Destroyed {
                files: record.files,
                directories: record.directories,
                records: record.records,
                bytes: record.bytes,
                backup_copies,
            },
            audit_last_seq: self.audit.last_seq()?,
            key_id: self.signing.key_id(),
        };
        let document = serde_json::to_string(&receipt).map_err(std::io::Error::other)?;
        Ok(self.signing.sign(document))
    }
}
