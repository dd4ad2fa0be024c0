//! Authentication and authorization: who the caller is, and what they may do.
//!
//! `Auth` turns a session cookie or an API token into a `Principal`, and a principal plus
//! a route's permission into a `TenantAccess`: the only way to obtain a tenant's `Vault`.
//! `TenantAccess` can be made only here (its fields are private), from a checked
//! membership or from the operator's own standing at the command line. Asking for a
//! tenant one is not a member of gives exactly the answer for a tenant that does not
//! exist. This module decides; it never touches tenant bytes itself, it knows nothing of
//! HTTP, and every change it makes goes through `ControlPlane`.

mod account;
mod cache;
pub mod mailer;
pub mod password;
pub mod permission;
pub mod session;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{Actor, AuditAction, AuditLog, Caller, Outcome, sha256_hex};
use crate::clock::{self, SharedClock};
use crate::control::rules::Transition;
use crate::control::{
    ApiToken, Authority, ControlError, ControlPlane, MemberChange, Role, Standing, Tenant,
    TenantState, User,
};
use crate::names::{TenantSlug, UserId};
use crate::vault::{Vault, VaultError, VaultStore};
pub use account::{NewSession, TokenSpec};
use mailer::Mailer;
use password::PasswordError;
use permission::{TenantPermission, role_allows, state_allows, token_allows};
use session::SessionKeys;
use throttle::LoginThrottle;

/// `last_seen_at` is noted at most this often per session.
const TOUCH_EVERY_SECS: i64 = 300;
/// How every API token's secret begins.
pub const TOKEN_PREFIX: &str = "cft_";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("wrong e-mail address or password")]
    BadCredentials,
    #[error("too many failed attempts; retry later")]
    Throttled(Duration),
    #[error("{0}")]
    Forbidden(String),
    #[error("this needs a signed-in session; API tokens cannot do it")]
    SessionRequired,
    #[error("not found")]
    NotFound,
    #[error("not allowed while the tenant is {}", .0.as_str())]
    TenantState(TenantState),
    /// The tenant is served by another node (named).
    #[error("this tenant is served by node {0}, not this one")]
    Misdirected(String),
    /// The tenant is being moved to another node: reads go on, writes wait.
    #[error("the tenant is being moved to another node; retry the change shortly")]
    Moving,
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("{0}")]
    Invalid(String),
    #[error("the reset token is invalid or has expired")]
    BadResetToken,
    #[error(transparent)]
    Control(ControlError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("audit log error: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<ControlError> for AuthError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound => AuthError::NotFound,
            ControlError::Forbidden(m) => AuthError::Forbidden(m),
            other => AuthError::Control(other),
        }
    }
}

/// Who is making a request: made only by `Auth` from checked credentials.
#[derive(Debug, Clone)]
pub struct Principal(Credential);

#[derive(Debug, Clone)]
enum Credential {
    /// Signed in through the session cookie.
    Session { sid: String, user: User },
    /// A program with an API token (scoped to one tenant).
    Token { token: ApiToken, user: User },
}

impl Principal {
    pub fn user(&self) -> &User {
        match &self.0 {
            Credential::Session { user, .. } | Credential::Token { user, .. } => user,
        }
    }
    pub fn actor(&self) -> Actor {
        match &self.0 {
            Credential::Session { user, .. } => Actor::User(user.id),
            Credential::Token { token, .. } => Actor::Token(token.id.clone()),
        }
    }
    pub fn caller(&self, ip: Option<String>) -> Caller {
        Caller {
            actor: self.actor(),
            ip,
        }
    }
    /// The session id when cookie-authenticated (and so in need of CSRF defence).
    pub fn session_id(&self) -> Option<&str> {
        match &self.0 {
            Credential::Session { sid, .. } => Some(sid),
            Credential::Token { .. } => None,
        }
    }
    /// The API token in use, for a program.
    pub fn api_token(&self) -> Option<&ApiToken> {
        match &self.0 {
            Credential::Token { token, .. } => Some(token),
            Credential::Session { .. } => None,
        }
    }
    /// The session id, or `SessionRequired` for an API token: account-level actions
    /// (password, account deletion, tokens) need a person, not a program.
    pub fn require_session(&self) -> Result<&str, AuthError> {
        self.session_id().ok_or(AuthError::SessionRequired)
    }
}

/// A vetted right to act on one tenant: membership and permission checked (or the
/// operator's standing at the command line). Only `Auth` makes one.
#[derive(Clone)]
pub struct TenantAccess {
    tenant: Tenant,
    standing: Standing,
    authority: Authority,
    caller: Caller,
    vault: Arc<Vault>,
}

impl TenantAccess {
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }
    /// The caller's role in the tenant (`None` for an operator).
    pub fn role(&self) -> Option<Role> {
        match self.standing {
            Standing::Member(r) => Some(r),
            Standing::Operator => None,
        }
    }
    pub fn standing(&self) -> Standing {
        self.standing
    }
    pub fn caller(&self) -> &Caller {
        &self.caller
    }
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Adds a member or changes a role on this access's authority; the control plane
    /// re-reads the actor's own role inside the transaction, so a demotion a moment ago
    /// counts.
    pub fn change_member(
        &self,
        control: &ControlPlane,
        user: UserId,
        role: Role,
        mode: MemberChange,
    ) -> Result<Option<Role>, ControlError> {
        control.put_member(
            &self.caller,
            self.authority,
            self.tenant.id,
            user,
            role,
            mode,
        )
    }

    /// Moves the tenant through a lifecycle transition on this access's authority: an
    /// operator, or a member in person (a program's token may not restrict, cancel or
    /// revive a tenant).
    pub fn change_state(
        &self,
        control: &ControlPlane,
        change: Transition,
        grace: time::Duration,
    ) -> Result<Tenant, ControlError> {
        if let Authority::Member {
            ceiling: Some(_), ..
        } = self.authority
        {
            return Err(ControlError::Forbidden(
                "a person's session is needed to change the tenant's state".into(),
            ));
        }
        control.change_state(&self.caller, self.tenant.id, change, grace)
    }

    /// Removes a member on this access's authority.
    pub fn remove_member(&self, control: &ControlPlane, user: UserId) -> Result<(), ControlError> {
        control.remove_member(&self.caller, self.authority, self.tenant.id, user)
    }
}

/// The authority a principal acts with in a tenant's member list.
fn authority_of(principal: &Principal) -> Authority {
    Authority::Member {
        user: principal.user().id,
        ceiling: principal.api_token().map(|t| t.role),
    }
}

/// What a request was authorized as: its principal (if any) and, on a tenant route, its
/// access to the tenant.
pub type Authorized = (Option<Principal>, Option<TenantAccess>);

/// What `Auth` is built from.
pub struct AuthParts {
    pub control: ControlPlane,
    pub vaults: Arc<VaultStore>,
    pub audit: AuditLog,
    pub clock: SharedClock,
    pub secret: Vec<u8>,
    pub mailer: Arc<dyn Mailer>,
    /// How long a browser session lasts, in seconds (at most `SESSION_TTL_SECS`).
    pub session_ttl_secs: i64,
    /// The service's public address, for links in messages (`Config::public_url`).
    pub public_url: Option<String>,
}

/// Authentication and authorization over one data root.
pub struct Auth {
    control: ControlPlane,
    vaults: Arc<VaultStore>,
    audit: AuditLog,
    clock: SharedClock,
    keys: SessionKeys,
    throttle: LoginThrottle,
    mailer: Arc<dyn Mailer>,
    cache: cache::AuthCache,
    session_ttl_secs: i64,
    public_url: Option<String>,
}

fn random_hex(bytes: usize) -> Result<String, AuthError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex::encode(buf))
}

impl Auth {
    pub fn new(parts: AuthParts) -> Result<Auth, AuthError> {
        let keys =
            SessionKeys::new(&parts.secret).map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok(Auth {
            control: parts.control,
            vaults: parts.vaults,
            audit: parts.audit,
            clock: parts.clock,
            keys,
            throttle: LoginThrottle::default(),
            mailer: parts.mailer,
            cache: cache::AuthCache::new(),
            session_ttl_secs: parts.session_ttl_secs.clamp(60, session::SESSION_TTL_SECS),
            public_url: parts.public_url.map(|u| u.trim_end_matches('/').to_owned()),
        })
    }

    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    fn now_unix(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn stamp_at(secs: i64) -> String {
        crate::db::timestamp(
            time::OffsetDateTime::from_unix_timestamp(secs)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        )
    }

    /// The principal of a session cookie's token: signature and claims checked, then one
    /// indexed lookup of the live session (or the cache, while nothing changed).
    pub fn authenticate_session(&self, token: &str) -> Result<Principal, AuthError> {
        let now = self.now_unix();
        let claims = self
            .keys
            .verify(token, now)
            .map_err(|_| AuthError::Unauthenticated)?;
        let stamp = self.control.change_stamp();
        let session = self
            .control
            .live_session(&claims.sid)?
            .ok_or(AuthError::Unauthenticated)?;
        if session.user.id.to_string() != claims.sub {
            return Err(AuthError::Unauthenticated);
        }
        if session.last_seen_at < Self::stamp_at(now - TOUCH_EVERY_SECS) {
            self.cache.touch(true, &session.id, Self::stamp_at(now));
        }
        if let Some(stamp) = stamp {
            let cached = cache::CachedSession {
                user: session.user.clone(),
                expires_at: session.expires_at.clone(),
            };
            self.cache.put_session(&session.id, stamp, cached);
        }
        Ok(Principal(Credential::Session {
            sid: session.id,
            user: session.user,
        }))
    }

    /// The principal of an API token (`Authorization: Bearer cft_...`).
    pub fn authenticate_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
            return Err(AuthError::Unauthenticated);
        }
        let hash = sha256_hex(token);
        let stamp = self.control.change_stamp();
        let (api_token, user) = self
            .control
            .live_token(&hash)?
            .ok_or(AuthError::Unauthenticated)?;
        self.cache
            .touch(false, &api_token.id, clock::stamp(self.clock.as_ref()));
        if let Some(stamp) = stamp {
            let cached = cache::CachedToken {
                token: api_token.clone(),
                user: user.clone(),
            };
            self.cache.put_token(&hash, stamp, cached);
        }
        Ok(Principal(Credential::Token {
            token: api_token,
            user,
        }))
    }

    /// Writes the noted session and token usage (when last seen, last used) in one
    /// transaction. The server calls it every few seconds and at shutdown.
    pub fn flush_touches(&self) -> Result<(), AuthError> {
        let touches = self.cache.take_touches();
        Ok(self.control.record_touches(&touches)?)
    }

    /// Authorizes from what is cached, without I/O or waiting: `None` when anything
    /// needed is not cached under the current change stamp (the caller then takes the
    /// full path, which fills the cache), or when the answer would be a refusal that
    /// must be audited.
    pub fn authorize_cached(
        &self,
        bearer: Option<&str>,
        cookie: Option<&str>,
        tenant: Option<(TenantPermission, &str)>,
        ip: Option<String>,
    ) -> Option<Result<Authorized, AuthError>> {
        self.authorize_from_cache(bearer, cookie, tenant, ip, false)
    }

    /// `authorize_cached` that may open the tenant's vault (I/O: on a blocking thread):
    /// the facts cached, only the vault not yet open (a tenant not served lately, one
    /// of many), the request is answered without a database read.
    pub fn authorize_cached_opening(
        &self,
        bearer: Option<&str>,
        cookie: Option<&str>,
        tenant: Option<(TenantPermission, &str)>,
        ip: Option<String>,
    ) -> Option<Result<Authorized, AuthError>> {
        self.authorize_from_cache(bearer, cookie, tenant, ip, true)
    }

    fn authorize_from_cache(
        &self,
        bearer: Option<&str>,
        cookie: Option<&str>,
        tenant: Option<(TenantPermission, &str)>,
        ip: Option<String>,
        open: bool,
    ) -> Option<Result<Authorized, AuthError>> {
        let stamp = self.control.change_stamp()?;
        let now = self.now_unix();
        let now_text = Self::stamp_at(now);
        let principal = match (bearer, cookie) {
            (Some(token), _) => {
                if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
                    return Some(Err(AuthError::Unauthenticated));
                }
                let cached = self.cache.token(&sha256_hex(token), stamp)?;
                if cached
                    .token
                    .expires_at
                    .as_deref()
                    .is_some_and(|e| e <= now_text.as_str())
                {
                    return None;
                }
                self.cache.touch(false, &cached.token.id, now_text.clone());
                Some(Principal(Credential::Token {
                    token: cached.token,
                    user: cached.user,
                }))
            }
            (None, Some(token)) => match self.keys.verify(token, now) {
                Err(_) => None,
                Ok(claims) => {
                    let cached = self.cache.session(&claims.sid, stamp)?;
                    if cached.expires_at <= now_text || cached.user.id.to_string() != claims.sub {
                        return None;
                    }
                    Some(Principal(Credential::Session {
                        sid: claims.sid,
                        user: cached.user,
                    }))
                }
            },
            (None, None) => None,
        };
        let access = match (tenant, &principal) {
            (Some((permission, slug)), Some(principal)) => {
                let (tenant, member_role) =
                    self.cache.membership(principal.user().id, slug, stamp)?;
                if self.placement_allows(&tenant, Some(permission)).is_err() {
                    return None; // the slow path refuses
                }
                let (role, allowed) = Self::allowed(principal, &tenant, member_role, permission)?;
                let program = matches!(principal.0, Credential::Token { .. });
                if !allowed || state_allows(tenant.state, permission, program).is_err() {
                    return None; // the slow path refuses, and audits the refusal
                }
                let mut vault = if open {
                    self.vaults.open(tenant.id).ok()?
                } else {
                    self.vaults.cached(tenant.id)?
                };
                // A vault a move took a copy of is answered from the database only: the
                // moment the placement flips, this node answers 421, even before its
                // cache hears of it, and never serves a read the new node has changed.
                if vault.is_sent() {
                    return None;
                }
                // Nor one not yet checked at the placement's epoch (`current_at`, which
                // does I/O: only where opening is allowed).
                if let Some(p) = &tenant.placement
                    && p.epoch != vault.checked_epoch()
                {
                    if !open {
                        return None;
                    }
                    vault = self.vaults.current_at(tenant.id, vault, p.epoch).ok()?;
                }
                self.fit_vault(&vault, &tenant);
                Some(TenantAccess {
                    tenant,
                    standing: Standing::Member(role),
                    authority: authority_of(principal),
                    caller: principal.caller(ip),
                    vault,
                })
            }
            _ => None,
        };
        Some(Ok((principal, access)))
    }

    /// The role a principal acts with in `tenant` and whether it allows `permission`;
    /// `None` for a token of another tenant.
    fn allowed(
        principal: &Principal,
        tenant: &Tenant,
        member_role: Role,
        permission: TenantPermission,
    ) -> Option<(Role, bool)> {
        match &principal.0 {
            Credential::Session { .. } => Some((member_role, role_allows(member_role, permission))),
            Credential::Token { token, .. } => (token.tenant_id == tenant.id)
                .then(|| (token.role, token_allows(token, member_role, permission))),
        }
    }

    /// Every permission `principal` holds on `slug`'s tenant now, by the same rules as
    /// each request (role, token, the tenant's state): what a client may offer. Each
    /// request is still checked on its own.
    pub fn permissions(
        &self,
        principal: &Principal,
        slug: &str,
    ) -> Result<Vec<TenantPermission>, AuthError> {
        let (tenant, member_role) = self.membership(principal.user(), slug)?;
        let program = matches!(principal.0, Credential::Token { .. });
        Ok(TenantPermission::ALL
            .into_iter()
            .filter(|&p| {
                Self::allowed(principal, &tenant, member_role, p).is_some_and(|(_, ok)| ok)
                    && state_allows(tenant.state, p, program).is_ok()
            })
            .collect())
    }

    /// The tenant named `slug` and the user's role in it; `NotFound` for a tenant that
    /// does not exist, is deleted, or of which the user is not a member.
    fn membership(&self, user: &User, raw_slug: &str) -> Result<(Tenant, Role), AuthError> {
        let slug = TenantSlug::parse(raw_slug).map_err(|_| AuthError::NotFound)?;
        let stamp = self.control.change_stamp();
        let tenant = self
            .control
            .tenant_by_slug(&slug)?
            .ok_or(AuthError::NotFound)?;
        if tenant.state.is_gone() {
            return Err(AuthError::NotFound);
        }
        let role = self
            .control
            .membership(user.id, tenant.id)?
            .ok_or(AuthError::NotFound)?;
        if let Some(stamp) = stamp {
            self.cache
                .put_membership(user.id, raw_slug, stamp, (tenant.clone(), role));
        }
        Ok((tenant, role))
    }

    fn open_vault(&self, tenant: &Tenant) -> Result<Arc<Vault>, AuthError> {
        let mut vault = self.vaults.open(tenant.id)?;
        if let Some(p) = &tenant.placement {
            vault = self.vaults.current_at(tenant.id, vault, p.epoch)?;
        }
        self.fit_vault(&vault, tenant);
        Ok(vault)
    }

    /// Authorizes `principal` for `permission` on the tenant named `slug` and hands out its
    /// vault. A refusal for lack of permission is audited.
    pub fn tenant_access(
        &self,
        principal: &Principal,
        slug: &str,
        permission: TenantPermission,
        ip: Option<String>,
    ) -> Result<TenantAccess, AuthError> {
        let (tenant, member_role) = self.membership(principal.user(), slug)?;
        self.placement_allows(&tenant, Some(permission))?;
        let (role, allowed) = Self::allowed(principal, &tenant, member_role, permission)
            .ok_or(AuthError::NotFound)?;
        let caller = principal.caller(ip);
        if !allowed {
            let why = serde_json::json!({ "permission": format!("{permission:?}"),
                "role": role.as_str() });
            self.audit_denial(&caller, tenant.id, why)?;
            return Err(AuthError::Forbidden("not allowed for your role".into()));
        }
        let program = matches!(principal.0, Credential::Token { .. });
        if let Err(state) = state_allows(tenant.state, permission, program) {
            if state.is_gone() {
                return Err(AuthError::NotFound);
            }
            let why = serde_json::json!({ "permission": format!("{permission:?}"),
                "state": state.as_str(), "program": program });
            self.audit_denial(&caller, tenant.id, why)?;
            return Err(AuthError::TenantState(state));
        }
        let vault = self.open_vault(&tenant)?;
        Ok(TenantAccess {
            tenant,
            standing: Standing::Member(role),
            authority: authority_of(principal),
            caller,
            vault,
        })
    }

    /// Whether this node serves `tenant` for `permission` now (see
    /// `permission::placement_allows`).
    fn placement_allows(
        &self,
        tenant: &Tenant,
        permission: Option<TenantPermission>,
    ) -> Result<(), AuthError> {
        use permission::PlacementRefusal;
        permission::placement_allows(tenant.placement.as_ref(), self.control.node(), permission)
            .map_err(|refusal| match refusal {
                PlacementRefusal::Elsewhere(node) => AuthError::Misdirected(node),
                PlacementRefusal::Fenced => AuthError::Moving,
            })
    }

    /// Records a refused access to `tenant` (`why`: the permission and what refused it).
    fn audit_denial(
        &self,
        caller: &Caller,
        tenant: crate::names::TenantId,
        why: serde_json::Value,
    ) -> Result<(), AuthError> {
        self.audit.append(
            &caller
                .event(AuditAction::AccessDenied)
                .tenant(tenant)
                .outcome(Outcome::Denied)
                .detail(why),
        )?;
        Ok(())
    }

    /// Access for an operator at the command line, who has the data root's files in hand
    /// anyway: every operation through it is audited with the operator as its actor.
    pub fn operator_access(
        &self,
        caller: &Caller,
        slug: &TenantSlug,
    ) -> Result<TenantAccess, AuthError> {
        if !matches!(caller.actor, Actor::Operator(_) | Actor::System) {
            return Err(AuthError::Forbidden("operator access only".into()));
        }
        let tenant = self
            .control
            .tenant_by_slug(slug)?
            .filter(|t| !t.state.is_gone())
            .ok_or(AuthError::NotFound)?;
        self.placement_allows(&tenant, None)?;
        let vault = self.open_vault(&tenant)?;
        Ok(TenantAccess {
            tenant,
            standing: Standing::Operator,
            authority: Authority::Operator,
            caller: caller.clone(),
            vault,
        })
    }
}

impl Auth {
    /// Fits a vault handed out for `tenant` to what the control plane says now: its
    /// quota; frozen (no changes at all) while the tenant is cancelled or fenced; and a
    /// vault a move took a copy of stays shut to changes until the placement says that
    /// move was rolled back (a cache that has not heard of the fence yet cannot reopen it).
    fn fit_vault(&self, vault: &Vault, tenant: &Tenant) {
        vault.set_quota(tenant.quota_bytes);
        // Fenced (a move or recovery is copying it): no change commits, whoever asks.
        let fenced = tenant
            .placement
            .as_ref()
            .is_some_and(|p| p.fenced_at.is_some());
        vault.set_frozen(tenant.state == TenantState::Cancelled, fenced);
        if let Some(p) = &tenant.placement {
            let here = self.control.node() == Some(p.node.as_str());
            self.vaults
                .fit_placement(tenant.id, vault, here, fenced, p.epoch);
        }
    }
}
