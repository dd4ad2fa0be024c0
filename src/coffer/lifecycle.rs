//! The lifecycle pass: the work that keeps the service's retention promises by itself.
//! `coffer serve` runs it every `lifecycle_interval_secs`; `coffer lifecycle run` runs it
//! once (for cron, or with `--now` for drills). One lease in the control plane lets only
//! one pass run at a time across processes; every step is idempotent, so a pass that
//! dies is simply done again by the next.
//!
//! A pass: purges that are due (or were interrupted), trash expiry after
//! `trash_retention_days` (active tenants only, not under a legal hold), pruning of expired sessions and
//! reset tokens, rotation of backup sets older than `backup_retention_days`, pruning of
//! audit events older than `audit_retention_days`, and a signed checkpoint of the chain's
//! head (so rows cut from its end later are detected).

use std::time::Duration as StdDuration;

use serde::Serialize;
use time::Duration;

use super::{Coffer, CofferError};
use crate::audit::Caller;
use crate::control::rules::Transition;
use crate::control::{ControlError, Tenant, TenantState};
use crate::names::TenantId;
use crate::signing::Signed;

/// A lifecycle step an operator asks for on one tenant (the CLI and the operator API
/// both run it through `Coffer::operator_step`).
#[derive(Debug, Clone, Copy)]
pub enum OperatorStep {
    Change(Transition),
    /// Delete at once: the deletion is requested and the purge runs now.
    Delete,
    Hold,
    Release,
}

/// The lease's name in the control plane.
const LEASE: &str = "lifecycle";
/// How long a pass may hold the lease before another process may take it over.
const LEASE_TTL: Duration = Duration::hours(1);

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct LifecycleReport {
    /// The clock's time when the pass ran.
    pub now: String,
    /// False when another pass held the lease (nothing was done).
    pub ran: bool,
    /// Tenants purged (ids), with their receipts in the audit log.
    pub purged: Vec<String>,
    /// Tenants whose purge, or trash expiry, failed this time (id and reason); the next
    /// pass tries again.
    pub failures: Vec<(String, String)>,
    pub trash_items_expired: usize,
    pub sessions_pruned: usize,
    pub password_resets_pruned: usize,
    /// Backup sets removed after `backup_retention_days`.
    pub backups_rotated: usize,
    /// Audit events pruned after `audit_retention_days` (behind a signed checkpoint).
    pub audit_events_pruned: u64,
    /// The row of the signed head checkpoint this pass wrote.
    pub audit_checkpoint_seq: Option<i64>,
    /// Usage rows, closed membership periods and login events past the same retention.
    pub usage_rows_pruned: usize,
    /// Tenants (ids) whose copy this node kept when they moved away, removed after
    /// `move_grace_hours` (at once for a purged tenant).
    pub moved_copies_removed: Vec<String>,
}

impl Coffer {
    /// The lease a lifecycle pass holds: one pass at a time per node (nodes sharing a
    /// control plane each pass over their own tenants, so one node's pass never makes
    /// another skip its own).
    pub fn lifecycle_lease(&self) -> String {
        match self.control.node() {
            Some(node) => format!("{LEASE}@{node}"),
            None => LEASE.to_owned(),
        }
    }

    /// Runs one lifecycle pass at the clock's now.
    pub fn run_lifecycle(&self) -> Result<LifecycleReport, CofferError> {
        let mut report = LifecycleReport {
            now: crate::clock::stamp(self.clock.as_ref()),
            ..Default::default()
        };
        let holder = crate::control::lease_holder();
        let lease = self.lifecycle_lease();
        if !self.control.take_lease(&lease, &holder, LEASE_TTL)? {
            let owner = self.control.lease_owner(&lease)?.unwrap_or_default();
            tracing::warn!(held_by = %owner, "another lifecycle pass is running; skipped");
            return Ok(report);
        }
        report.ran = true;
        let result = self.lifecycle_pass(&Caller::system(), &mut report);
        let released = self.control.release_lease(&lease, &holder);
        result?;
        released?;
        Ok(report)
    }

    fn lifecycle_pass(
        &self,
        caller: &Caller,
        report: &mut LifecycleReport,
    ) -> Result<(), CofferError> {
        for tenant in self.control.due_purges()? {
            match self.purge_tenant(caller, tenant.id) {
                Ok(_) => report.purged.push(tenant.id.to_string()),
                Err(e) => {
                    tracing::warn!(tenant = %tenant.id, error = %e, "purge failed; the next pass retries");
                    report.failures.push((tenant.id.to_string(), e.to_string()));
                }
            }
        }
        let cutoff = crate::db::timestamp(
            self.clock.now() - Duration::days(i64::from(self.config.trash_retention_days)),
        );
        for tenant in self.control.local_tenants()? {
            // Only an active tenant's trash expires: a restricted tenant's data is kept
            // as it is (deleting it is processing, GDPR Art. 18), a cancelled one is
            // frozen until its purge, and a legal hold keeps everything.
            // Nor a fenced one's: a move or recovery is copying it.
            let fenced = tenant
                .placement
                .as_ref()
                .is_some_and(|p| p.fenced_at.is_some());
            if tenant.state != TenantState::Active
                || tenant.lifecycle.legal_hold_at.is_some()
                || fenced
            {
                continue;
            }
            let expired = self
                .vaults
                .open_transient(tenant.id)
                .and_then(|vault| vault.expire_trash(caller, &cutoff));
            match expired {
                Ok(n) => report.trash_items_expired += n,
                Err(e) => report.failures.push((tenant.id.to_string(), e.to_string())),
            }
        }
        report.moved_copies_removed = self.remove_moved_copies(caller)?;
        let (sessions, resets) = self.control.prune_expired(caller)?;
        report.sessions_pruned = sessions;
        report.password_resets_pruned = resets;
        report.backups_rotated = self.rotate_backups()?.len();
        report.audit_events_pruned = self.prune_audit()?;
        let retention = time::Duration::days(i64::from(self.config.audit_retention_days));
        let billing_cutoff = crate::db::timestamp(self.clock.now() - retention);
        report.usage_rows_pruned = self.control.prune_usage(caller, &billing_cutoff)?;
        report.audit_checkpoint_seq = self.checkpoint_audit()?.map(|c| c.seq);
        Ok(())
    }

    /// Runs the lifecycle pass every `lifecycle_interval_secs` in the background (the
    /// first one right away), off the async threads. Returns at once; 0 disables it.
    pub fn spawn_lifecycle_scheduler(&self) {
        let interval = self.config.lifecycle_interval_secs;
        if interval == 0 {
            return;
        }
        let coffer = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(StdDuration::from_secs(interval));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let coffer = coffer.clone();
                match tokio::task::spawn_blocking(move || coffer.run_lifecycle()).await {
                    Ok(Ok(report)) if report.ran => tracing::info!(
                        purged = report.purged.len(),
                        trash_expired = report.trash_items_expired,
                        failures = report.failures.len(),
                        "lifecycle pass"
                    ),
                    // Skipped: `run_lifecycle` has said who holds the lease.
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "lifecycle pass failed"),
                    Err(e) => tracing::error!(error = %e, "lifecycle pass panicked"),
                }
            }
        });
    }
}

impl Coffer {
    /// Runs an operator's lifecycle step on `tenant`: a state change, a legal hold or its
    /// release, or an immediate deletion, which returns the signed deletion receipt. A
    /// deletion is requested (cancelled, purge due now) and then purged; if a purge of the
    /// tenant is already running, the request stands, that purge finishes it, and the
    /// error says so.
    pub fn operator_step(
        &self,
        caller: &Caller,
        tenant: TenantId,
        step: OperatorStep,
    ) -> Result<(Tenant, Option<Signed>), CofferError> {
        let control = self.control();
        Ok(match step {
            OperatorStep::Change(change) => (
                control.change_state(caller, tenant, change, self.purge_grace())?,
                None,
            ),
            OperatorStep::Hold => (control.set_legal_hold(caller, tenant, true)?, None),
            OperatorStep::Release => (control.set_legal_hold(caller, tenant, false)?, None),
            OperatorStep::Delete => {
                // Asked of the node serving the tenant, which purges its vault: another
                // node refuses before anything is changed.
                let current = control.tenant(tenant)?.ok_or(ControlError::NotFound)?;
                if !control.serves(&current) {
                    let node = current.placement.map(|p| p.node).unwrap_or_default();
                    return Err(crate::auth::AuthError::Misdirected(node).into());
                }
                control.request_deletion(caller, tenant)?;
                let receipt = self.purge_tenant(caller, tenant)?;
                let gone = control
                    .tenant(tenant)?
                    .ok_or(CofferError::Control(ControlError::NotFound))?;
                (gone, Some(receipt))
            }
        })
    }
}
