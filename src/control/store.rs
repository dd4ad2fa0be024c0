//! The control plane's storage boundary: plain reads and writes inside a transaction, no
//! rules and no auditing (those are `ControlPlane`'s). It is private to `control`, so
//! nothing else in Coffer can write a session, a membership or a password hash without
//! going through the rules. The SQLite store (`sqlite`) and the PostgreSQL store (`pg`)
//! implement the same traits.

use super::ControlError;
use super::model::{
    ApiToken, Lifecycle, LoginEvent, Member, Membership, NewUser, Placement, PurgeRecord, Role,
    Session, Tenant, TenantState, UsageRow, User,
};
use crate::names::{Email, TenantId, TenantSlug, UserId};
use crate::signing::Signed;

/// A transaction's view of the store. Timestamps are passed in (from the injected clock).
pub trait ControlTx: LifecycleTx + PlacementTx + RightsTx + UsageTx {
    fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, ControlError>;
    fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, ControlError>;
    fn tenants(&self) -> Result<Vec<Tenant>, ControlError>;
    fn insert_tenant(
        &self,
        id: TenantId,
        slug: &TenantSlug,
        name: &str,
        quota_bytes: Option<u64>,
        now: &str,
    ) -> Result<(), ControlError>;
    /// Sets the name and/or the quota of a tenant; false if there is no such tenant.
    fn update_tenant(
        &self,
        id: TenantId,
        name: Option<&str>,
        quota_bytes: Option<u64>,
    ) -> Result<bool, ControlError>;

    fn user(&self, id: UserId) -> Result<Option<User>, ControlError>;
    fn user_by_email(&self, email: &Email) -> Result<Option<User>, ControlError>;
    fn users(&self) -> Result<Vec<User>, ControlError>;
    fn insert_user(&self, id: UserId, user: &NewUser, now: &str) -> Result<(), ControlError>;
    fn set_password_hash(&self, id: UserId, hash: &str) -> Result<(), ControlError>;
    /// Erases a person from an account (P12): e-mail, name and password hash replaced,
    /// sessions, tokens, reset tokens and memberships deleted, login IPs erased. The row
    /// stays as a pseudonymous id.
    fn anonymise_user(&self, id: UserId, now: &str) -> Result<(), ControlError>;

    fn membership(&self, user: UserId, tenant: TenantId) -> Result<Option<Role>, ControlError>;
    fn members(&self, tenant: TenantId) -> Result<Vec<Member>, ControlError>;
    fn memberships(&self, user: UserId) -> Result<Vec<Membership>, ControlError>;
    fn owner_count(&self, tenant: TenantId) -> Result<usize, ControlError>;
    /// Inserts or changes a membership.
    fn put_member(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
        now: &str,
    ) -> Result<(), ControlError>;
    fn delete_member(
        &self,
        tenant: TenantId,
        user: UserId,
        now: &str,
    ) -> Result<bool, ControlError>;

    fn insert_session(&self, session: &NewSessionRow<'_>, now: &str) -> Result<(), ControlError>;
    /// A live session (not revoked, not expired at `now`, user not disabled) with its
    /// user, in one indexed lookup.
    fn live_session(&self, id: &str, now: &str) -> Result<Option<Session>, ControlError>;
    fn sessions_of(&self, user: UserId, now: &str) -> Result<Vec<Session>, ControlError>;
    fn touch_session(&self, id: &str, now: &str) -> Result<(), ControlError>;
    fn revoke_session(&self, user: UserId, id: &str, now: &str) -> Result<bool, ControlError>;
    fn revoke_user_sessions(&self, user: UserId, now: &str) -> Result<usize, ControlError>;

    fn insert_token(&self, token: &ApiToken, token_hash: &str) -> Result<(), ControlError>;
    /// A live token by the hash of its secret, with its user, in one indexed lookup.
    fn live_token(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(ApiToken, User)>, ControlError>;
    fn tokens_of(&self, user: UserId) -> Result<Vec<ApiToken>, ControlError>;
    fn token(&self, id: &str) -> Result<Option<ApiToken>, ControlError>;
    fn revoke_token(&self, user: UserId, id: &str, now: &str) -> Result<bool, ControlError>;
    fn touch_token(&self, id: &str, now: &str) -> Result<(), ControlError>;

    fn insert_reset(
        &self,
        token_hash: &str,
        user: UserId,
        expires_at: &str,
        now: &str,
    ) -> Result<(), ControlError>;
    /// Whether a reset token is unused and unexpired (nothing changes).
    fn reset_usable(&self, token_hash: &str, now: &str) -> Result<bool, ControlError>;
    /// Marks a reset token used and returns its user, if it is unused and unexpired.
    fn consume_reset(&self, token_hash: &str, now: &str) -> Result<Option<UserId>, ControlError>;

    fn insert_login_event(
        &self,
        user: UserId,
        ip: Option<&str>,
        success: bool,
        now: &str,
    ) -> Result<(), ControlError>;
    /// Logins of the members of a tenant, newest first.
    fn tenant_logins(&self, tenant: TenantId, limit: u32) -> Result<Vec<LoginEvent>, ControlError>;
}

/// The lifecycle part of a transaction: tenant states and dates, purges, leases, pruning.
pub trait LifecycleTx {
    /// Writes a tenant's state and lifecycle dates.
    fn set_lifecycle(
        &self,
        id: TenantId,
        state: TenantState,
        lifecycle: &Lifecycle,
    ) -> Result<(), ControlError>;
    /// Makes the row a tombstone: slug `purged-<id>` (free for reuse), no name.
    fn tombstone_tenant(&self, id: TenantId) -> Result<(), ControlError>;
    /// Deletes the tenant's memberships and API tokens; returns the former members.
    fn delete_tenant_access(&self, id: TenantId, now: &str) -> Result<Vec<UserId>, ControlError>;
    fn insert_purge(&self, purge: &PurgeRecord) -> Result<(), ControlError>;
    fn purge(&self, id: TenantId) -> Result<Option<PurgeRecord>, ControlError>;
    fn finish_purge(&self, id: TenantId, receipt: &Signed, now: &str) -> Result<(), ControlError>;
    /// The lease `name`: its holder and expiry.
    fn lease(&self, name: &str) -> Result<Option<(String, String)>, ControlError>;
    fn put_lease(&self, name: &str, holder: &str, expires_at: &str) -> Result<(), ControlError>;
    fn delete_lease(&self, name: &str, holder: &str) -> Result<(), ControlError>;
    /// Deletes sessions that expired or were revoked before `before`; returns how many.
    fn prune_sessions(&self, before: &str) -> Result<usize, ControlError>;
    /// Deletes password-reset tokens that expired or were used before `before`.
    fn prune_resets(&self, before: &str) -> Result<usize, ControlError>;
    /// Every directory backups have been written under (purges reach them all).
    fn backup_roots(&self) -> Result<Vec<String>, ControlError>;
    fn add_backup_root(&self, path: &str, now: &str) -> Result<(), ControlError>;
}

/// Placements: which node serves each tenant (nodes sharing a PostgreSQL control plane).
/// The embedded store has none: its one node serves every tenant.
pub trait PlacementTx {
    /// Places a new tenant on `node` (epoch 1).
    fn place_tenant(&self, id: TenantId, node: &str, now: &str) -> Result<(), ControlError>;
    /// Fences a tenant's placement (no writes while it is copied), if it is still `from`,
    /// at the next epoch (already fenced: unchanged); false if it is not `from`.
    fn fence_placement(
        &self,
        id: TenantId,
        from: &Placement,
        now: &str,
    ) -> Result<bool, ControlError>;
    /// Moves a tenant's placement from `from` at `epoch` to `to` at the next epoch, with
    /// no fence; false (nothing changed) if the placement is no longer `from` at `epoch`,
    /// or the tenant is being purged (its copy must not outlive the purge on `to`).
    fn replace_placement(
        &self,
        id: TenantId,
        from: &Placement,
        to: &str,
        now: &str,
    ) -> Result<bool, ControlError>;
    /// Lifts the fence of a placement still `from` (a move rolled back), at the next
    /// epoch; false if it is no longer `from` or not fenced.
    fn unfence_placement(
        &self,
        id: TenantId,
        from: &Placement,
        now: &str,
    ) -> Result<bool, ControlError>;
    /// Records the address other nodes reach node `name` at.
    fn register_node(&self, name: &str, url: &str, now: &str) -> Result<(), ControlError>;
    /// The address node `name` registered, if it did.
    fn node_url(&self, name: &str) -> Result<Option<String>, ControlError>;
}

/// The customer's rights (P9, P11): correcting one's profile, one's login history.
pub trait RightsTx {
    /// Changes a user's name and/or e-mail (`EmailTaken` if the address is in use).
    fn update_profile(
        &self,
        id: UserId,
        name: Option<&str>,
        email: Option<&Email>,
    ) -> Result<(), ControlError>;
    /// The user's own logins, newest first.
    fn user_logins(&self, id: UserId, limit: u32) -> Result<Vec<LoginEvent>, ControlError>;
}

/// Usage metering (P16): per tenant, day and metric.
pub trait UsageTx {
    fn add_usage(
        &self,
        tenant: TenantId,
        day: &str,
        metric: &str,
        n: u64,
    ) -> Result<(), ControlError>;
    /// A tenant's usage rows from `from_day` on, by day then metric.
    fn usage(&self, tenant: TenantId, from_day: &str) -> Result<Vec<UsageRow>, ControlError>;
    /// Deletes usage rows, closed membership periods and login events older than
    /// `before` (a timestamp; its day for usage rows). Returns how many rows went.
    fn prune_usage(&self, before: &str) -> Result<usize, ControlError>;
}

/// A session row to insert.
pub struct NewSessionRow<'a> {
    pub id: &'a str,
    pub user: UserId,
    pub expires_at: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A closure run inside a transaction.
pub type TxWork<'a> = dyn FnMut(&dyn ControlTx) -> Result<(), ControlError> + 'a;

/// A control-plane store: runs work in transactions.
pub trait ControlStore: Send + Sync {
    /// Runs `work` against the current state (reads only).
    fn read(&self, work: &mut TxWork<'_>) -> Result<(), ControlError>;
    /// Runs `work` in one write transaction that takes the write lock at its start, and
    /// commits only if `work` succeeds; otherwise nothing of it is kept. `announce`: the
    /// work changes an authorization fact, which other processes' caches must hear of
    /// (see `peek_external_version`).
    fn write(&self, announce: bool, work: &mut TxWork<'_>) -> Result<(), ControlError>;
    /// The secret `name` shared by every node using this store: the stored one, or
    /// `candidate` stored by whichever node asks first. `None`: the store is one node's
    /// own (SQLite), whose secrets are files in its data root.
    fn shared_secret(&self, name: &str, candidate: &str) -> Result<Option<String>, ControlError>;
    /// The schema version the store has and the newest this build knows.
    fn schema_version(&self) -> Result<(u32, u32), ControlError>;
    /// The database server's clock (RFC 3339), when the database is a server of its own
    /// that several nodes share; `None` for the embedded one.
    fn database_time(&self) -> Result<Option<String>, ControlError>;
    /// Writes a consistent copy of the store to `path` (backups).
    fn snapshot_into(&self, path: &std::path::Path) -> Result<(), ControlError>;
    /// A number that changes whenever another connection (another process) commits a
    /// change, read without waiting and without I/O; `None` if it cannot be read now.
    fn peek_external_version(&self) -> Option<i64>;
}
