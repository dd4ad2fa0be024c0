//! The tenant lifecycle in the control plane: each transition of `rules::transition` is
//! one transaction with its `tenant.state_change` event; the legal hold; a purge's two
//! control-plane steps (begin: nothing is served any more; finish: the row becomes a
//! tombstone, access goes, the signed receipt is kept); the scheduler's lease; pruning of
//! expired sessions and reset tokens. The vault-side steps of a purge are
//! `crate::lifecycle`'s.

use time::Duration;

use super::model::{PurgeRecord, Tenant, TenantState};
use super::rules::{self, Transition};
use super::{ControlError, ControlPlane};
use crate::audit::{AuditAction, Caller};
use crate::names::TenantId;
use crate::signing::Signed;

/// What a purge found in the vault when it began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeFacts {
    pub files: u64,
    pub directories: u64,
    pub records: u64,
    pub bytes: u64,
}

impl ControlPlane {
    pub(super) fn stamp_in(&self, by: Duration) -> String {
        crate::db::timestamp(self.clock.now() + by)
    }

    /// Moves a tenant through `change` (restrict, unrestrict, cancel, reactivate). A
    /// cancellation sets the purge date `grace` ahead; reactivation clears it. Refused
    /// with `WrongState` (naming the current state) where the state machine has no edge.
    pub fn change_state(
        &self,
        caller: &Caller,
        tenant: TenantId,
        change: Transition,
        grace: Duration,
    ) -> Result<Tenant, ControlError> {
        if matches!(change, Transition::BeginPurge | Transition::FinishPurge) {
            return Err(ControlError::Forbidden(
                "purges run through the lifecycle".into(),
            ));
        }
        let purge_after = self.stamp_in(grace);
        self.write(|tx, now| {
            let current = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            let to = rules::transition(current.state, change)?;
            let mut lifecycle = current.lifecycle.clone();
            lifecycle.state_changed_at = now.to_owned();
            match change {
                Transition::Cancel => {
                    lifecycle.cancelled_at = Some(now.to_owned());
                    lifecycle.purge_after = Some(purge_after.clone());
                }
                Transition::Reactivate => {
                    lifecycle.cancelled_at = None;
                    lifecycle.purge_after = None;
                }
                _ => {}
            }
            tx.set_lifecycle(tenant, to, &lifecycle)?;
            let event = state_event(caller, tenant).detail(
                serde_json::json!({ "from": current.state.as_str(), "to": to.as_str(),
                    "purge_after": lifecycle.purge_after }),
            );
            let changed = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            Ok((changed, vec![event]))
        })
    }

    /// A deletion request: the tenant is cancelled (if it is not already) with its purge
    /// due now, so the next lifecycle pass (or the caller, at once) purges it. Refused
    /// under a legal hold.
    pub fn request_deletion(
        &self,
        caller: &Caller,
        tenant: TenantId,
    ) -> Result<Tenant, ControlError> {
        self.write(|tx, now| {
            let current = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            if current.lifecycle.legal_hold_at.is_some() {
                return Err(ControlError::LegalHold(current.state));
            }
            let event = self
                .cancel_for_deletion(tx, caller, &current, now, now)?
                .ok_or(ControlError::WrongState(current.state))?;
            let changed = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            Ok((changed, vec![event]))
        })
    }

    /// Inside a transaction: cancels `tenant` with its purge due at `purge_after` (now for
    /// a deletion request; after the grace period when its only owner deleted their
    /// account, so that its other members may still export it). Returns the state-change
    /// event, or `None` if its purge has already begun.
    pub(super) fn cancel_for_deletion(
        &self,
        tx: &dyn super::store::ControlTx,
        caller: &Caller,
        tenant: &Tenant,
        now: &str,
        purge_after: &str,
    ) -> Result<Option<crate::audit::AuditEvent>, ControlError> {
        let to = match tenant.state {
            TenantState::Active | TenantState::Restricted => TenantState::Cancelled,
            TenantState::Cancelled => TenantState::Cancelled,
            TenantState::Purging | TenantState::Purged => return Ok(None),
        };
        let mut lifecycle = tenant.lifecycle.clone();
        lifecycle.state_changed_at = now.to_owned();
        lifecycle.cancelled_at.get_or_insert_with(|| now.to_owned());
        lifecycle.purge_after = Some(purge_after.to_owned());
        tx.set_lifecycle(tenant.id, to, &lifecycle)?;
        Ok(Some(state_event(caller, tenant.id).detail(
            serde_json::json!({
            "from": tenant.state.as_str(), "to": to.as_str(), "purge_after": purge_after,
            "deletion_requested": true }),
        )))
    }

    /// Places or lifts a legal hold (operators only: the caller checks that).
    pub fn set_legal_hold(
        &self,
        caller: &Caller,
        tenant: TenantId,
        hold: bool,
    ) -> Result<Tenant, ControlError> {
        self.write(|tx, now| {
            let current = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            if current.state.is_gone() {
                return Err(ControlError::WrongState(current.state));
            }
            let mut lifecycle = current.lifecycle.clone();
            lifecycle.legal_hold_at = hold.then(|| now.to_owned());
            tx.set_lifecycle(tenant, current.state, &lifecycle)?;
            let event = caller
                .event(AuditAction::TenantLegalHold)
                .tenant(tenant)
                .detail(serde_json::json!({ "hold": hold }));
            let changed = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            Ok((changed, vec![event]))
        })
    }

    /// The tenants a lifecycle pass must purge at the clock's now: those whose purge began
    /// (an interrupted purge), and cancelled ones past their date without a legal hold.
    pub fn due_purges(&self) -> Result<Vec<Tenant>, ControlError> {
        let now = self.now();
        Ok(self
            .local_tenants()?
            .into_iter()
            .filter(|t| match t.state {
                TenantState::Purging => true,
                TenantState::Cancelled => {
                    t.lifecycle.legal_hold_at.is_none()
                        && t.lifecycle
                            .purge_after
                            .as_deref()
                            .is_some_and(|due| due <= now.as_str())
                }
                _ => false,
            })
            .collect())
    }

    /// Step one of a purge: a due, cancelled tenant becomes `purging` (from here on it
    /// serves nothing) and what its vault holds is written down for the receipt. A
    /// tenant already purging is returned as it is (the purge resumes).
    pub fn begin_purge(
        &self,
        caller: &Caller,
        tenant: TenantId,
        facts: PurgeFacts,
    ) -> Result<Tenant, ControlError> {
        self.write(|tx, now| {
            let current = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            if current.state == TenantState::Purging {
                return Ok((current, Vec::new()));
            }
            if current.lifecycle.legal_hold_at.is_some() {
                return Err(ControlError::LegalHold(current.state));
            }
            let due = current
                .lifecycle
                .purge_after
                .as_deref()
                .is_some_and(|d| d <= now);
            if current.state == TenantState::Cancelled && !due {
                return Err(ControlError::Forbidden(format!(
                    "the purge is due at {}",
                    current
                        .lifecycle
                        .purge_after
                        .as_deref()
                        .unwrap_or("(no date)")
                )));
            }
            let to = rules::transition(current.state, Transition::BeginPurge)?;
            let mut lifecycle = current.lifecycle.clone();
            lifecycle.state_changed_at = now.to_owned();
            tx.set_lifecycle(tenant, to, &lifecycle)?;
            tx.insert_purge(&PurgeRecord {
                tenant,
                started_at: now.to_owned(),
                files: facts.files,
                directories: facts.directories,
                records: facts.records,
                bytes: facts.bytes,
                finished_at: None,
                receipt: None,
            })?;
            let event = state_event(caller, tenant)
                .detail(serde_json::json!({ "from": current.state.as_str(), "to": to.as_str() }));
            let changed = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            Ok((changed, vec![event]))
        })
    }

    /// The last step of a purge, once the vault and its backups are gone: memberships and
    /// tokens deleted, sessions of people left without any tenant revoked, the row made a
    /// tombstone, and the signed receipt kept and appended to the audit log.
    pub fn finish_purge(
        &self,
        caller: &Caller,
        tenant: TenantId,
        receipt: &Signed,
    ) -> Result<Tenant, ControlError> {
        self.write(|tx, now| {
            let current = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            let to = rules::transition(current.state, Transition::FinishPurge)?;
            for member in tx.delete_tenant_access(tenant, now)? {
                if tx.memberships(member)?.is_empty()
                    && tx.user(member)?.is_some_and(|u| !u.is_operator)
                {
                    tx.revoke_user_sessions(member, now)?;
                }
            }
            let mut lifecycle = current.lifecycle.clone();
            lifecycle.state_changed_at = now.to_owned();
            lifecycle.purged_at = Some(now.to_owned());
            lifecycle.legal_hold_at = None;
            tx.set_lifecycle(tenant, to, &lifecycle)?;
            tx.tombstone_tenant(tenant)?;
            tx.finish_purge(tenant, receipt, now)?;
            let event = caller
                .event(AuditAction::TenantPurge)
                .tenant(tenant)
                .detail(serde_json::json!({
                    "receipt": serde_json::from_str::<serde_json::Value>(&receipt.document)
                        .unwrap_or(serde_json::Value::Null),
                    "signature": receipt.signature,
                    "public_key": receipt.public_key,
                }));
            let changed = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            Ok((changed, vec![event]))
        })
    }

    /// A tenant's purge: its counts, and its receipt once finished.
    pub fn purge_record(&self, tenant: TenantId) -> Result<Option<PurgeRecord>, ControlError> {
        self.read(|tx| tx.purge(tenant))
    }

    /// Takes the lease `name` for `holder` (from `lease_holder`) for `ttl`, if it is
    /// free, already the holder's, expired, or held by a process of this host that has
    /// died. Leases keep two processes from running the same pass or purge. Expiry is
    /// wall time, never the injected clock: a drill run with `--now` in the future must
    /// not leave a lease that blocks the real scheduler until that future, and a process
    /// killed mid-pass does not block the next one for the whole `ttl`.
    pub fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, ControlError> {
        let wall_now = crate::db::timestamp(time::OffsetDateTime::now_utc());
        let expires = crate::db::timestamp(time::OffsetDateTime::now_utc() + ttl);
        self.write_bookkeeping(|tx, _| {
            let free = match tx.lease(name)? {
                None => true,
                Some((current, expires_at)) => {
                    current == holder
                        || expires_at.as_str() <= wall_now.as_str()
                        || holder_is_dead(&current)
                }
            };
            if free {
                tx.put_lease(name, holder, &expires)?;
            }
            Ok((free, Vec::new()))
        })
    }

    /// Who holds `name` now, if anyone (for messages).
    pub fn lease_owner(&self, name: &str) -> Result<Option<String>, ControlError> {
        self.read(|tx| Ok(tx.lease(name)?.map(|(holder, _)| holder)))
    }

    pub fn release_lease(&self, name: &str, holder: &str) -> Result<(), ControlError> {
        self.write_bookkeeping(|tx, _| {
            tx.delete_lease(name, holder)?;
            Ok(((), Vec::new()))
        })
    }

    /// Deletes sessions and password-reset tokens that expired (or were revoked or used)
    /// more than a day ago, with one `maintenance.prune` event when any went.
    pub fn prune_expired(&self, caller: &Caller) -> Result<(usize, usize), ControlError> {
        let before = self.stamp_in(Duration::days(-1));
        self.write(|tx, _| {
            let sessions = tx.prune_sessions(&before)?;
            let resets = tx.prune_resets(&before)?;
            let events = if sessions + resets > 0 {
                vec![
                    caller
                        .event(AuditAction::MaintenancePrune)
                        .detail(serde_json::json!({
                    "sessions": sessions, "password_resets": resets, "before": before })),
                ]
            } else {
                Vec::new()
            };
            Ok(((sessions, resets), events))
        })
    }
}

impl ControlPlane {
    /// A consistent copy of the control plane at `path` (backups).
    /// The secret `name` every node shares (see `ControlStore::shared_secret`).
    pub fn shared_secret(
        &self,
        name: &str,
        candidate: &str,
    ) -> Result<Option<String>, ControlError> {
        self.store.shared_secret(name, candidate)
    }

    /// The shared control database's clock, if the control plane is one (PostgreSQL).
    pub fn database_time(&self) -> Result<Option<String>, ControlError> {
        self.store.database_time()
    }

    /// The control store's schema version and the newest this build knows.
    pub fn schema_version(&self) -> Result<(u32, u32), ControlError> {
        self.store.schema_version()
    }

    pub fn snapshot_into(&self, path: &std::path::Path) -> Result<(), ControlError> {
        self.store.snapshot_into(path)
    }

    /// Every directory backups were written under.
    pub fn backup_roots(&self) -> Result<Vec<String>, ControlError> {
        self.read(|tx| tx.backup_roots())
    }

    /// Remembers a backup directory (bookkeeping; the backup itself is audited).
    pub fn register_backup_root(&self, path: &str) -> Result<(), ControlError> {
        self.write_bookkeeping(|tx, now| {
            tx.add_backup_root(path, now)?;
            Ok(((), Vec::new()))
        })
    }

    /// Erases a purged tenant from a backup set's copy of the control plane (this
    /// `ControlPlane` opened on the copy): the row becomes the same tombstone as in the
    /// live one, and its memberships and tokens go. Not audited here: the live purge's
    /// receipt records the backup copies it cleared.
    pub fn erase_tenant_copy(&self, tenant: TenantId) -> Result<(), ControlError> {
        self.write(|tx, now| {
            let Some(current) = tx.tenant(tenant)? else {
                return Ok(((), Vec::new()));
            };
            let mut lifecycle = current.lifecycle.clone();
            lifecycle.state_changed_at = now.to_owned();
            lifecycle.purged_at = Some(now.to_owned());
            lifecycle.legal_hold_at = None;
            tx.set_lifecycle(tenant, TenantState::Purged, &lifecycle)?;
            tx.tombstone_tenant(tenant)?;
            tx.delete_tenant_access(tenant, now)?;
            Ok(((), Vec::new()))
        })
    }
}

/// The `tenant.state_change` event; its detail names `from` and `to`.
fn state_event(caller: &Caller, tenant: TenantId) -> crate::audit::AuditEvent {
    caller.event(AuditAction::TenantStateChange).tenant(tenant)
}

/// A lease holder's name: this host, this process, and a tag unique to the taker
/// (`host:pid:tag`), so that a lease left by a process that died can be recognised.
pub fn lease_holder() -> String {
    format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Whether `holder` names a process of this host that no longer runs. A holder of
/// another host (or in another format) is never judged dead: its lease expires instead.
fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.splitn(3, ':');
    let (Some(host), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if host != host_name() || pid == std::process::id() as i32 {
        return false;
    }
    match rustix::process::Pid::from_raw(pid) {
        // Signal 0 checks existence; ESRCH means no such process.
        Some(pid) => matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}
