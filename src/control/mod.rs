//! The control plane: tenants, users, memberships, sessions and API tokens
//! (`<data-root>/control.db`).
//!
//! `ControlPlane` is the only way to change any of them. Each write is one method that
//! runs in one store transaction: it reads what its rules need, checks them
//! (`rules`), writes, and appends its audit events before the transaction commits, so a
//! change is never visible without its event and no interleaving of two requests can
//! break a rule (two owners demoting each other cannot leave a tenant ownerless). The
//! store itself (`store`, with its SQLite implementation) is private to this module.
//! The control plane never holds vault content and never opens a vault.

mod lifecycle;
mod model;
mod pg;
mod placement;
mod rights;
pub mod rules;
mod sessions;
mod sqlite;
mod store;
mod usage;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::audit::{AuditAction, AuditError, AuditEvent, AuditLog, Caller, Outcome};
use crate::clock::{self, SharedClock};
use crate::db::DbError;
use crate::names::{Email, TenantId, TenantSlug, UserId};
pub use lifecycle::{PurgeFacts, lease_holder};
pub use model::{
    ApiToken, Authority, Lifecycle, LoginEvent, Member, MemberChange, Membership, NewTenant,
    NewUser, Placement, PurgeRecord, Role, Session, Standing, Tenant, TenantOwner, TenantState,
    TokenScope, UsageRow, User,
};
pub use sessions::SessionSpec;
pub use sqlite::MIGRATIONS;
use sqlite::SqliteControl;
use store::{ControlStore, ControlTx};
pub use usage::UsageIncrement;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("not found")]
    NotFound,
    #[error("a tenant with this slug already exists")]
    SlugTaken,
    #[error("a user with this e-mail address already exists")]
    EmailTaken,
    #[error("the user is already a member of this tenant")]
    AlreadyMember,
    #[error("the user is not a member of this tenant")]
    NotMember,
    #[error("a tenant must keep at least one owner")]
    LastOwner,
    #[error("the account is the last owner of tenant {0}: add another owner first")]
    SoleOwner(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not possible while the tenant is {}", .0.as_str())]
    WrongState(TenantState),
    /// Carries the tenant's current state, which the refusal shows.
    #[error("a legal hold is in place: purge and trash expiry wait until it is released")]
    LegalHold(TenantState),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("control database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("control database error: {0}")]
    Postgres(String),
    /// The control database cannot be reached now (its connections are all busy or it
    /// is down): worth a retry.
    #[error("the control database is unavailable: {0}")]
    Unavailable(String),
    #[error("audit log error: {0}")]
    Audit(#[from] AuditError),
}

impl From<tokio_postgres::Error> for ControlError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        // A NUL in a looked-up value (a hostile token id): PostgreSQL refuses text with
        // NUL outright, and nothing stored holds one (the edge refuses them in names), so
        // nothing matches, as with SQLite.
        if e.code() == Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE) {
            return ControlError::NotFound;
        }
        if e.is_closed() {
            ControlError::Unavailable(e.to_string())
        } else {
            ControlError::Postgres(e.to_string())
        }
    }
}

impl From<rusqlite::Error> for ControlError {
    fn from(e: rusqlite::Error) -> Self {
        ControlError::Sqlite(e)
    }
}

/// The control plane's operations with their rules and their audit events.
#[derive(Clone)]
pub struct ControlPlane {
    store: Arc<dyn ControlStore>,
    audit: AuditLog,
    clock: SharedClock,
    /// Bumped by every committed change (not by bookkeeping): caches of authorization
    /// facts compare it (with the store's external version) to know they are current.
    generation: Arc<AtomicU64>,
    /// This node's name in placements (PostgreSQL control plane only).
    node: Option<String>,
}

/// The state of the control plane as caches see it: equal stamps mean no change was
/// committed in between, by this process or another.
pub type ChangeStamp = (u64, i64);

/// A usage fact to record: a session seen, a token used, at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    Session { id: String, at: String },
    Token { id: String, at: String },
}

impl ControlPlane {
    pub fn open(path: &Path, audit: AuditLog, clock: SharedClock) -> Result<Self, ControlError> {
        Ok(ControlPlane {
            store: Arc::new(SqliteControl::open(path)?),
            audit,
            clock,
            generation: Arc::default(),
            node: None,
        })
    }

    /// A control plane in PostgreSQL (`url`: a libpq URL), shared by every node that
    /// connects to it.
    /// The tenants this node creates are placed on `node` (`None`: a tool that creates
    /// none, such as the HAProxy map sync).
    pub fn open_postgres(
        url: &str,
        ca_file: Option<&Path>,
        node: Option<&str>,
        clock: SharedClock,
    ) -> Result<(Self, AuditLog), ControlError> {
        let store = pg::PostgresControl::open(url, ca_file)?;
        // The cluster's audit chain lives beside its control plane, shared by every node.
        let audit = AuditLog::with_store(store.audit_store(), clock.clone());
        let control = ControlPlane {
            store: Arc::new(store),
            audit: audit.clone(),
            clock,
            generation: Arc::default(),
            node: node.map(str::to_owned),
        };
        Ok((control, audit))
    }

    /// An in-memory control plane (tests of pure logic).
    pub fn open_in_memory(audit: AuditLog, clock: SharedClock) -> Result<Self, ControlError> {
        Ok(ControlPlane {
            store: Arc::new(SqliteControl::open_in_memory()?),
            audit,
            clock,
            generation: Arc::default(),
            node: None,
        })
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The current change stamp, read without waiting (`None` when it cannot be).
    pub fn change_stamp(&self) -> Option<ChangeStamp> {
        let external = self.store.peek_external_version()?;
        Some((self.generation.load(Ordering::SeqCst), external))
    }

    fn now(&self) -> String {
        clock::stamp(self.clock.as_ref())
    }

    /// Runs `f` against the current state.
    fn read<T>(
        &self,
        f: impl FnOnce(&dyn ControlTx) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut f = Some(f);
        let mut out = None;
        self.store.read(&mut |tx| {
            if let Some(f) = f.take() {
                out = Some(f(tx)?);
            }
            Ok(())
        })?;
        out.ok_or(ControlError::NotFound)
    }

    /// Runs `f` in one write transaction; the audit events it returns are appended before
    /// the transaction commits, so a failed append leaves nothing changed. If the commit
    /// itself fails after the append, a compensating event (outcome `failure`) says so.
    fn write<T>(
        &self,
        f: impl FnOnce(&dyn ControlTx, &str) -> Result<(T, Vec<AuditEvent>), ControlError>,
    ) -> Result<T, ControlError> {
        self.write_with(true, f)
    }

    /// `write` for bookkeeping that changes no authorization fact (failed logins, usage,
    /// leases): caches stay valid, so a flood of such writes cannot push every request off
    /// the cache onto the database.
    fn write_bookkeeping<T>(
        &self,
        f: impl FnOnce(&dyn ControlTx, &str) -> Result<(T, Vec<AuditEvent>), ControlError>,
    ) -> Result<T, ControlError> {
        self.write_with(false, f)
    }

    fn write_with<T>(
        &self,
        changes_facts: bool,
        f: impl FnOnce(&dyn ControlTx, &str) -> Result<(T, Vec<AuditEvent>), ControlError>,
    ) -> Result<T, ControlError> {
        let now = self.now();
        let mut f = Some(f);
        let mut out = None;
        let mut appended: Vec<AuditEvent> = Vec::new();
        let result = self.store.write(changes_facts, &mut |tx| {
            let Some(f) = f.take() else { return Ok(()) };
            let (value, events) = f(tx, &now)?;
            self.audit.append_all(&events)?;
            appended = events;
            out = Some(value);
            Ok(())
        });
        // Whatever happened, caches must look again (a failed commit changes nothing, but
        // bumping costs only a cache refill).
        if changes_facts {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        if let Err(e) = result {
            if !appended.is_empty() {
                let compensation: Vec<AuditEvent> = appended
                    .iter()
                    .map(|ev| {
                        AuditEvent::new(ev.action, ev.actor.clone())
                            .ip(ev.ip.clone())
                            .outcome(Outcome::Failure)
                            .detail(serde_json::json!({ "compensates": ev.id,
                                "reason": "the change was not committed" }))
                    })
                    .collect();
                let _ = self.audit.append_all(&compensation);
            }
            return Err(e);
        }
        out.ok_or(ControlError::NotFound)
    }

    // ---- reads ----------------------------------------------------------------------

    pub fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, ControlError> {
        self.read(|tx| tx.tenant(id))
    }

    pub fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, ControlError> {
        self.read(|tx| tx.tenant_by_slug(slug))
    }

    pub fn tenants(&self) -> Result<Vec<Tenant>, ControlError> {
        self.read(|tx| tx.tenants())
    }

    pub fn user(&self, id: UserId) -> Result<Option<User>, ControlError> {
        self.read(|tx| tx.user(id))
    }

    pub fn user_by_email(&self, email: &Email) -> Result<Option<User>, ControlError> {
        self.read(|tx| tx.user_by_email(email))
    }

    pub fn users(&self) -> Result<Vec<User>, ControlError> {
        self.read(|tx| tx.users())
    }

    pub fn membership(&self, user: UserId, tenant: TenantId) -> Result<Option<Role>, ControlError> {
        self.read(|tx| tx.membership(user, tenant))
    }

    pub fn members(&self, tenant: TenantId) -> Result<Vec<Member>, ControlError> {
        self.read(|tx| tx.members(tenant))
    }

    pub fn memberships(&self, user: UserId) -> Result<Vec<Membership>, ControlError> {
        self.read(|tx| tx.memberships(user))
    }

    /// A live session: not revoked, not expired now, its user not disabled.
    pub fn live_session(&self, id: &str) -> Result<Option<Session>, ControlError> {
        let now = self.now();
        self.read(|tx| tx.live_session(id, &now))
    }

    /// The user's live sessions.
    pub fn sessions_of(&self, user: UserId) -> Result<Vec<Session>, ControlError> {
        let now = self.now();
        self.read(|tx| tx.sessions_of(user, &now))
    }

    /// A live API token by the hash of its secret, with its user.
    pub fn live_token(&self, token_hash: &str) -> Result<Option<(ApiToken, User)>, ControlError> {
        let now = self.now();
        self.read(|tx| tx.live_token(token_hash, &now))
    }

    pub fn tokens_of(&self, user: UserId) -> Result<Vec<ApiToken>, ControlError> {
        self.read(|tx| tx.tokens_of(user))
    }

    /// One token by its id (never its secret), revoked or not.
    pub fn token(&self, id: &str) -> Result<Option<ApiToken>, ControlError> {
        self.read(|tx| tx.token(id))
    }

    pub fn tenant_logins(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> Result<Vec<LoginEvent>, ControlError> {
        self.read(|tx| tx.tenant_logins(tenant, limit))
    }

    // ---- bookkeeping (not audited: usage facts, not changes) --------------------------

    /// Records when sessions were last seen and tokens last used, all in one
    /// transaction (the `Auth` touch book flushes here).
    pub fn record_touches(&self, touches: &[Touch]) -> Result<(), ControlError> {
        if touches.is_empty() {
            return Ok(());
        }
        self.store.write(false, &mut |tx| {
            for t in touches {
                match t {
                    Touch::Session { id, at } => tx.touch_session(id, at)?,
                    Touch::Token { id, at } => tx.touch_token(id, at)?,
                }
            }
            Ok(())
        })
    }

    // ---- tenants and users ------------------------------------------------------------

    /// Renames a tenant and/or sets its quota (the vault applies a quota on its next
    /// access: `auth` fits every vault it hands out to the tenant row).
    pub fn update_tenant(
        &self,
        caller: &Caller,
        id: TenantId,
        name: Option<&str>,
        quota_bytes: Option<u64>,
    ) -> Result<Tenant, ControlError> {
        self.write(|tx, _| {
            if !tx.update_tenant(id, name, quota_bytes)? {
                return Err(ControlError::NotFound);
            }
            let tenant = tx.tenant(id)?.ok_or(ControlError::NotFound)?;
            let event = caller
                .event(AuditAction::TenantUpdate)
                .tenant(id)
                .target(tenant.slug.as_str())
                .detail(serde_json::json!({
                    "name_changed": name.is_some(),
                    "quota_bytes": quota_bytes,
                }));
            Ok((tenant, vec![event]))
        })
    }

    /// Registers a tenant row under `id` (whose vault the caller has just created), with
    /// its owner, in one transaction: the tenant, a new owner account if asked for, and
    /// the owner's membership all exist, or none of them.
    pub fn create_tenant(
        &self,
        caller: &Caller,
        id: TenantId,
        new: &NewTenant,
    ) -> Result<(Tenant, Option<User>), ControlError> {
        self.write(|tx, now| {
            tx.insert_tenant(id, &new.slug, &new.name, new.quota_bytes, now)?;
            if let Some(node) = &self.node {
                tx.place_tenant(id, node, now)?;
            }
            let mut events = vec![
                caller
                    .event(AuditAction::TenantCreate)
                    .tenant(id)
                    .target(new.slug.as_str()),
            ];
            let owner = match &new.owner {
                None => None,
                Some(TenantOwner::Existing(user)) => {
                    Some(tx.user(*user)?.ok_or(ControlError::NotFound)?)
                }
                Some(TenantOwner::New(user)) => {
                    Some(insert_new_user(tx, caller, user, now, &mut events)?)
                }
            };
            if let Some(owner) = &owner {
                tx.put_member(id, owner.id, Role::Owner, now)?;
                events.push(member_event(caller, id, owner.id, Role::Owner, None));
            }
            let tenant = tx.tenant(id)?.ok_or(ControlError::NotFound)?;
            Ok(((tenant, owner), events))
        })
    }

    pub fn create_user(&self, caller: &Caller, new: &NewUser) -> Result<User, ControlError> {
        self.write(|tx, now| {
            let id = UserId::generate();
            tx.insert_user(id, new, now)?;
            let user = tx.user(id)?.ok_or(ControlError::NotFound)?;
            Ok((user, vec![user_created(caller, id, new.is_operator)]))
        })
    }

    /// Deletes an account (P12): its name, e-mail and password hash are anonymised at
    /// once (the row stays as the pseudonymous id the audit log names), its sessions,
    /// tokens and memberships go (each removal an event of its tenant), and every tenant
    /// it was the only owner of is cancelled, its purge due after `grace` (its other
    /// members may export it meanwhile; a legal hold still keeps it). Returns those
    /// tenants.
    pub fn delete_user(
        &self,
        caller: &Caller,
        user: UserId,
        grace: time::Duration,
    ) -> Result<Vec<TenantId>, ControlError> {
        let purge_after = self.stamp_in(grace);
        self.write(|tx, now| {
            tx.user(user)?.ok_or(ControlError::NotFound)?;
            let memberships = tx.memberships(user)?;
            let mut events = Vec::new();
            let mut orphaned = Vec::new();
            for m in &memberships {
                events.push(
                    caller
                        .event(AuditAction::MemberRemove)
                        .tenant(m.tenant_id)
                        .target(user.to_string())
                        .detail(serde_json::json!({ "role": m.role.as_str(),
                            "reason": "account deleted" })),
                );
                let sole_owner = m.role == Role::Owner && tx.owner_count(m.tenant_id)? <= 1;
                if sole_owner && let Some(tenant) = tx.tenant(m.tenant_id)? {
                    if let Some(event) =
                        self.cancel_for_deletion(tx, caller, &tenant, now, &purge_after)?
                    {
                        events.push(event);
                    }
                    orphaned.push(tenant.id);
                }
            }
            tx.anonymise_user(user, now)?;
            events.push(
                caller
                    .event(AuditAction::UserDelete)
                    .target(user.to_string()),
            );
            Ok((orphaned, events))
        })
    }

    // ---- members ----------------------------------------------------------------------

    /// Adds a member or changes a role, on `by`'s authority. The rules
    /// (`rules::may_change_member`) are checked against the state inside the transaction,
    /// the actor's own role included. Returns the previous role. Callers reach it through
    /// `TenantAccess::change_member`.
    pub(crate) fn put_member(
        &self,
        caller: &Caller,
        by: Authority,
        tenant: TenantId,
        user: UserId,
        role: Role,
        mode: MemberChange,
    ) -> Result<Option<Role>, ControlError> {
        self.write(|tx, now| {
            let by = resolve(tx, by, tenant)?;
            tx.user(user)?.ok_or(ControlError::NotFound)?;
            let current = tx.membership(user, tenant)?;
            match (mode, current) {
                (MemberChange::Add, Some(_)) => return Err(ControlError::AlreadyMember),
                (MemberChange::Change, None) => return Err(ControlError::NotMember),
                _ => {}
            }
            rules::may_change_member(by, current, Some(role), tx.owner_count(tenant)?)?;
            tx.put_member(tenant, user, role, now)?;
            Ok((
                current,
                vec![member_event(caller, tenant, user, role, current)],
            ))
        })
    }

    /// Invites `email` into `tenant` as `role`, on `by`'s authority, in one transaction:
    /// someone without an account gets one with no password; the membership is added by
    /// the same rules as `put_member`; and an account that has no password yet gets
    /// `invitation` (the hash of a one-time code and its expiry) to set one. Inviting a
    /// member who never set a password again renews their code instead of failing.
    /// Returns the user and whether a code was stored (so a message is due).
    pub(crate) fn invite_member(
        &self,
        caller: &Caller,
        by: Authority,
        tenant: TenantId,
        email: &Email,
        role: Role,
        invitation: (&str, &str),
    ) -> Result<(UserId, bool), ControlError> {
        self.write(|tx, now| {
            let by = resolve(tx, by, tenant)?;
            let mut events = Vec::new();
            let user = match tx.user_by_email(email)? {
                Some(user) => user,
                None => insert_new_user(tx, caller, &NewUser::invited(email), now, &mut events)?,
            };
            let awaiting_password = user.awaits_password();
            match tx.membership(user.id, tenant)? {
                Some(_) if !awaiting_password => return Err(ControlError::AlreadyMember),
                Some(current) => rules::may_change_member(
                    by,
                    Some(current),
                    Some(current),
                    tx.owner_count(tenant)?,
                )?,
                None => {
                    rules::may_change_member(by, None, Some(role), tx.owner_count(tenant)?)?;
                    tx.put_member(tenant, user.id, role, now)?;
                    events.push(member_event(caller, tenant, user.id, role, None));
                }
            }
            if awaiting_password {
                let (code_hash, expires_at) = invitation;
                tx.insert_reset(code_hash, user.id, expires_at, now)?;
                events.push(invitation_event(caller, tenant, user.id));
            }
            Ok(((user.id, awaiting_password), events))
        })
    }

    /// Stores an invitation's one-time code for `user`, who has no password yet (the
    /// new owner of a tenant an operator just created): `NotFound` for anyone else.
    pub(crate) fn store_invitation(
        &self,
        caller: &Caller,
        tenant: TenantId,
        user: UserId,
        invitation: (&str, &str),
    ) -> Result<(), ControlError> {
        self.write(|tx, now| {
            let found = tx.user(user)?.ok_or(ControlError::NotFound)?;
            if !found.awaits_password() {
                return Err(ControlError::NotFound);
            }
            let (code_hash, expires_at) = invitation;
            tx.insert_reset(code_hash, user, expires_at, now)?;
            Ok(((), vec![invitation_event(caller, tenant, user)]))
        })
    }

    /// Removes a member on `by`'s authority; the last owner cannot be removed. Callers
    /// reach it through `TenantAccess::remove_member`.
    pub(crate) fn remove_member(
        &self,
        caller: &Caller,
        by: Authority,
        tenant: TenantId,
        user: UserId,
    ) -> Result<(), ControlError> {
        self.write(|tx, now| {
            let by = resolve(tx, by, tenant)?;
            let current = tx
                .membership(user, tenant)?
                .ok_or(ControlError::NotMember)?;
            rules::may_change_member(by, Some(current), None, tx.owner_count(tenant)?)?;
            tx.delete_member(tenant, user, now)?;
            let event = caller
                .event(AuditAction::MemberRemove)
                .tenant(tenant)
                .target(user.to_string())
                .detail(serde_json::json!({ "role": current.as_str() }));
            Ok(((), vec![event]))
        })
    }
}

/// The standing `by` has in `tenant` right now, read inside the caller's transaction.
fn resolve(tx: &dyn ControlTx, by: Authority, tenant: TenantId) -> Result<Standing, ControlError> {
    match by {
        Authority::Operator => Ok(Standing::Operator),
        Authority::Member { user, ceiling } => {
            let role = tx.membership(user, tenant)?.ok_or_else(|| {
                ControlError::Forbidden("you are no longer a member of this tenant".into())
            })?;
            Ok(Standing::Member(ceiling.map_or(role, |c| role.weaker(c))))
        }
    }
}

/// Makes an account inside the caller's transaction, with its event.
fn insert_new_user(
    tx: &dyn ControlTx,
    caller: &Caller,
    new: &NewUser,
    now: &str,
    events: &mut Vec<AuditEvent>,
) -> Result<User, ControlError> {
    let id = UserId::generate();
    tx.insert_user(id, new, now)?;
    events.push(user_created(caller, id, new.is_operator));
    tx.user(id)?.ok_or(ControlError::NotFound)
}

/// A membership granted (`previous` is `None`) or a role changed.
fn member_event(
    caller: &Caller,
    tenant: TenantId,
    user: UserId,
    role: Role,
    previous: Option<Role>,
) -> AuditEvent {
    let action = if previous.is_some() {
        AuditAction::MemberRoleChange
    } else {
        AuditAction::MemberAdd
    };
    caller
        .event(action)
        .tenant(tenant)
        .target(user.to_string())
        .detail(serde_json::json!({ "role": role.as_str(),
            "previous": previous.map(|r| r.as_str()) }))
}

/// A one-time code to set a first password was issued to `user`, invited into `tenant`.
fn invitation_event(caller: &Caller, tenant: TenantId, user: UserId) -> AuditEvent {
    caller
        .event(AuditAction::PasswordChange)
        .tenant(tenant)
        .target(user.to_string())
        .detail(serde_json::json!({ "step": "invitation_sent" }))
}

fn user_created(caller: &Caller, id: UserId, is_operator: bool) -> AuditEvent {
    caller
        .event(AuditAction::UserCreate)
        .target(id.to_string())
        .detail(serde_json::json!({ "operator": is_operator }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;

    fn plane() -> (ControlPlane, AuditLog) {
        let audit = AuditLog::open_in_memory().unwrap();
        (
            ControlPlane::open_in_memory(audit.clone(), clock::system()).unwrap(),
            audit,
        )
    }

    fn new_user(email: &str) -> NewUser {
        NewUser {
            email: Email::parse(email).unwrap(),
            name: email.into(),
            password_hash: None,
            is_operator: false,
        }
    }

    #[test]
    fn last_owner_cannot_leave_or_be_demoted() {
        let (cp, audit) = plane();
        let op = Caller::new(Actor::Operator(None));
        let slug = TenantSlug::parse("acme").unwrap();
        let ann = cp.create_user(&op, &new_user("ann@x.com")).unwrap();
        let bob = cp.create_user(&op, &new_user("bob@x.com")).unwrap();
        let new = NewTenant {
            slug: slug.clone(),
            name: "Acme".into(),
            quota_bytes: None,
            owner: Some(TenantOwner::Existing(ann.id)),
        };
        let (t, _) = cp.create_tenant(&op, TenantId::generate(), &new).unwrap();
        let by = Authority::Operator;
        assert!(matches!(
            cp.remove_member(&op, by, t.id, ann.id),
            Err(ControlError::LastOwner)
        ));
        assert!(matches!(
            cp.put_member(&op, by, t.id, ann.id, Role::Admin, MemberChange::Change),
            Err(ControlError::LastOwner)
        ));
        cp.put_member(&op, by, t.id, bob.id, Role::Owner, MemberChange::Add)
            .unwrap();
        cp.remove_member(&op, by, t.id, ann.id).unwrap();
        assert_eq!(cp.membership(ann.id, t.id).unwrap(), None);
        // 2 users, tenant + owner membership, 1 add, 1 removal: one event per change.
        assert_eq!(audit.verify().unwrap().events, 6);
        assert!(matches!(
            cp.create_tenant(&op, TenantId::generate(), &new),
            Err(ControlError::SlugTaken)
        ));
        assert!(matches!(
            cp.create_user(&op, &new_user("ANN@x.com")),
            Err(ControlError::EmailTaken)
        ));
    }

    #[test]
    fn a_failed_step_leaves_nothing_behind() {
        let (cp, audit) = plane();
        let op = Caller::new(Actor::Operator(None));
        cp.create_user(&op, &new_user("taken@x.com")).unwrap();
        let before = audit.verify().unwrap().events;
        // The tenant row goes in, then the new owner's e-mail is taken: all rolled back.
        let new = NewTenant {
            slug: TenantSlug::parse("acme").unwrap(),
            name: "Acme".into(),
            quota_bytes: None,
            owner: Some(TenantOwner::New(new_user("taken@x.com"))),
        };
        assert!(matches!(
            cp.create_tenant(&op, TenantId::generate(), &new),
            Err(ControlError::EmailTaken)
        ));
        assert!(cp.tenants().unwrap().is_empty());
        assert_eq!(audit.verify().unwrap().events, before);
    }
}
