//! Authentication and authorization: who the caller is, and what they may do.
//!
//! `Auth` turns a session cookie or an API token into a `Principal`, and a principal plus
//! a route's permission into a `TenantAccess`, which is the only way to obtain a tenant's
//! `Vault` for a request. Asking for a tenant one is not a member of gives exactly the
//! answer for a tenant that does not exist. This module decides; it never touches tenant
//! bytes itself, and it knows nothing of HTTP.

pub mod mailer;
pub mod password;
pub mod permission;
pub mod session;
pub mod throttle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::audit::{Actor, AuditAction, AuditEvent, Caller, Outcome};
use crate::coffer::{Coffer, CofferError};
use crate::control::{ApiToken, ControlError, Role, Tenant, TenantState, User};
use crate::db;
use crate::vault::Vault;
use crate::vault::path::{Email, TenantSlug, UserId};
use mailer::Mailer;
use password::{PasswordError, Verified};
use permission::{TenantPermission, may_grant, role_allows, token_allows};
use session::SessionKeys;
use throttle::LoginThrottle;

/// Reset tokens work for this long.
const RESET_TTL_SECS: i64 = 3600;
/// `last_seen_at` is written at most this often per session, so a busy session does not
/// turn every request into a database write.
const TOUCH_EVERY_SECS: i64 = 300;
const TOKEN_PREFIX: &str = "cft_";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("wrong e-mail address or password")]
    BadCredentials,
    #[error("too many failed attempts; retry later")]
    Throttled(Duration),
    #[error("not allowed for your role")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("sign-up is disabled on this server")]
    SignupDisabled,
    #[error("the reset token is invalid or has expired")]
    BadResetToken,
    #[error(transparent)]
    Coffer(#[from] CofferError),
}

impl From<ControlError> for AuthError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound => AuthError::NotFound,
            ControlError::SlugTaken => AuthError::Conflict(e.to_string()),
            ControlError::EmailTaken => AuthError::Conflict(e.to_string()),
            ControlError::AlreadyMember | ControlError::NotMember | ControlError::LastOwner => {
                AuthError::Conflict(e.to_string())
            }
            other => AuthError::Coffer(CofferError::Control(other)),
        }
    }
}

impl From<crate::audit::AuditError> for AuthError {
    fn from(e: crate::audit::AuditError) -> Self {
        AuthError::Coffer(CofferError::Audit(e))
    }
}

/// Who is making a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Signed in through the session cookie.
    Session { sid: String, user: User },
    /// A program with an API token (scoped to one tenant).
    Token { token: ApiToken, user: User },
}

impl Principal {
    pub fn user(&self) -> &User {
        match self {
            Principal::Session { user, .. } | Principal::Token { user, .. } => user,
        }
    }
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Session { user, .. } => Actor::User(user.id),
            Principal::Token { token, .. } => Actor::Token(token.id.clone()),
        }
    }
    pub fn caller(&self, ip: Option<String>) -> Caller {
        Caller {
            actor: self.actor(),
            ip,
        }
    }
    /// Whether the request is cookie-authenticated (and so needs CSRF defence).
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Principal::Session { sid, .. } => Some(sid),
            Principal::Token { .. } => None,
        }
    }
}

/// A vetted right to act on one tenant: membership checked, permission checked.
#[derive(Clone)]
pub struct TenantAccess {
    pub tenant: Tenant,
    pub role: Role,
    pub caller: Caller,
    pub vault: Arc<Vault>,
}

/// A new session, for the cookie.
pub struct NewSession {
    /// The signed token: goes only into the `Set-Cookie` header.
    pub token: String,
    pub csrf_token: String,
    pub user: User,
    pub max_age_secs: i64,
}

/// Authentication and authorization over one data root.
pub struct Auth {
    coffer: Coffer,
    keys: SessionKeys,
    throttle: LoginThrottle,
    mailer: Arc<dyn Mailer>,
}

fn unix_to_timestamp(secs: i64) -> String {
    db::timestamp(
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn random_hex(bytes: usize) -> Result<String, AuthError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| AuthError::Coffer(CofferError::Io(std::io::Error::other(e.to_string()))))?;
    Ok(hex::encode(buf))
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Auth {
    pub fn new(coffer: Coffer, mailer: Arc<dyn Mailer>) -> Result<Auth, AuthError> {
        let keys =
            SessionKeys::new(&coffer.secret()?).map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok(Auth {
            coffer,
            keys,
            throttle: LoginThrottle::default(),
            mailer,
        })
    }

    pub fn coffer(&self) -> &Coffer {
        &self.coffer
    }

    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    fn audit(&self, event: AuditEvent) -> Result<(), AuthError> {
        self.coffer.audit.append(&event)?;
        Ok(())
    }

    fn start_session(
        &self,
        user: User,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let sid = random_hex(16)?;
        let now = now_unix();
        let exp = now + session::SESSION_TTL_SECS;
        self.coffer.control.store().insert_session(
            &sid,
            user.id,
            &unix_to_timestamp(exp),
            ip,
            user_agent,
        )?;
        let token = self
            .keys
            .issue(&user.id.to_string(), &sid, now, exp)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok(NewSession {
            token,
            csrf_token: self.keys.csrf_token(&sid),
            user,
            max_age_secs: session::SESSION_TTL_SECS,
        })
    }

    /// Checks an e-mail and password, with throttling per account and per IP, and opens a
    /// session. Unknown accounts cost the same time as known ones.
    pub fn login(
        &self,
        email: &str,
        password: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
        now: Instant,
    ) -> Result<NewSession, AuthError> {
        let account_key = format!("acct:{}", email.trim().to_lowercase());
        let ip_key = format!("ip:{}", ip.unwrap_or("unknown"));
        if let Err(retry) = self.throttle.check(
            &[
                (&account_key, throttle::ACCOUNT_LIMIT),
                (&ip_key, throttle::IP_LIMIT),
            ],
            now,
        ) {
            self.audit(
                AuditEvent::new(AuditAction::LoginFailed, Actor::Anonymous)
                    .ip(ip.map(str::to_owned))
                    .outcome(Outcome::Denied)
                    .detail(serde_json::json!({ "reason": "throttled" })),
            )?;
            return Err(AuthError::Throttled(retry));
        }
        let user = match Email::parse(email) {
            Ok(email) => self.coffer.control.store().user_by_email(&email)?,
            Err(_) => None,
        };
        let verdict = match user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref().map(|h| (u, h)))
        {
            Some((u, hash)) if u.disabled_at.is_none() => password::verify(password, hash),
            _ => {
                password::verify_dummy(password);
                Verified::Mismatch
            }
        };
        let user = match user {
            Some(u) if verdict != Verified::Mismatch => u,
            known => {
                self.throttle.record_failure(&[&account_key, &ip_key], now);
                if let Some(u) = known {
                    self.coffer
                        .control
                        .store()
                        .insert_login_event(u.id, ip, false)?;
                }
                self.audit(
                    AuditEvent::new(AuditAction::LoginFailed, Actor::Anonymous)
                        .ip(ip.map(str::to_owned))
                        .outcome(Outcome::Denied),
                )?;
                return Err(AuthError::BadCredentials);
            }
        };
        self.throttle.record_success(&account_key);
        if verdict == Verified::OkNeedsUpgrade {
            self.coffer
                .control
                .store()
                .set_password_hash(user.id, &password::hash_unchecked(password)?)?;
            self.audit(
                Caller::new(Actor::User(user.id))
                    .event(AuditAction::PasswordUpgrade)
                    .ip(ip.map(str::to_owned))
                    .target(user.id.to_string()),
            )?;
        }
        self.coffer
            .control
            .store()
            .insert_login_event(user.id, ip, true)?;
        let session = self.start_session(user, ip, user_agent)?;
        self.audit(
            Caller::new(Actor::User(session.user.id))
                .event(AuditAction::Login)
                .ip(ip.map(str::to_owned))
                .target(session.user.id.to_string()),
        )?;
        Ok(session)
    }

    /// The principal of a session cookie's token: signature and claims checked, then one
    /// indexed lookup of the live session.
    pub fn authenticate_session(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self
            .keys
            .verify(token)
            .map_err(|_| AuthError::Unauthenticated)?;
        let now = now_unix();
        let store = self.coffer.control.store();
        let session = store
            .live_session(&claims.sid, &unix_to_timestamp(now))?
            .ok_or(AuthError::Unauthenticated)?;
        if session.user.id.to_string() != claims.sub {
            return Err(AuthError::Unauthenticated);
        }
        if session.last_seen_at < unix_to_timestamp(now - TOUCH_EVERY_SECS) {
            store.touch_session(&session.id, &unix_to_timestamp(now))?;
        }
        Ok(Principal::Session {
            sid: session.id,
            user: session.user,
        })
    }

    /// The principal of an API token (`Authorization: Bearer cft_...`).
    pub fn authenticate_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
            return Err(AuthError::Unauthenticated);
        }
        let now = db::now();
        let store = self.coffer.control.store();
        let api_token = store
            .live_token(&sha256_hex(token), &now)?
            .ok_or(AuthError::Unauthenticated)?;
        let user = store
            .user(api_token.user_id)?
            .ok_or(AuthError::Unauthenticated)?;
        if api_token
            .last_used_at
            .as_deref()
            .is_none_or(|t| t < now.as_str())
        {
            // At most one write per token per second of use.
            if api_token.last_used_at.as_deref().map(|t| &t[..19]) != Some(&now[..19]) {
                store.touch_token(&api_token.id, &now)?;
            }
        }
        Ok(Principal::Token {
            token: api_token,
            user,
        })
    }

    pub fn logout(&self, principal: &Principal, ip: Option<String>) -> Result<(), AuthError> {
        if let Principal::Session { sid, user } = principal {
            self.coffer
                .control
                .store()
                .revoke_session(sid, &db::now())?;
            self.audit(
                Caller::new(Actor::User(user.id))
                    .event(AuditAction::Logout)
                    .ip(ip)
                    .target(user.id.to_string()),
            )?;
        }
        Ok(())
    }

    /// Changes the password after checking the current one; every session of the user
    /// ends, and a fresh one is returned for the caller.
    pub fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let user = principal.user();
        let ok = user
            .password_hash
            .as_deref()
            .is_some_and(|h| password::verify(current, h) != Verified::Mismatch);
        if !ok {
            return Err(AuthError::BadCredentials);
        }
        let hash = password::hash(new)?;
        let store = self.coffer.control.store();
        store.set_password_hash(user.id, &hash)?;
        store.revoke_user_sessions(user.id, &db::now())?;
        self.audit(
            principal
                .caller(ip.map(str::to_owned))
                .event(AuditAction::PasswordChange)
                .target(user.id.to_string()),
        )?;
        self.start_session(user.clone(), ip, user_agent)
    }

    /// Starts a password reset. Says nothing about whether the account exists.
    pub fn request_reset(&self, email: &str, ip: Option<&str>) -> Result<(), AuthError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let Some(user) = self.coffer.control.store().user_by_email(&email)? else {
            return Ok(());
        };
        let token = random_hex(32)?;
        let expires = unix_to_timestamp(now_unix() + RESET_TTL_SECS);
        self.coffer
            .control
            .store()
            .insert_reset(&sha256_hex(&token), user.id, &expires)?;
        self.mailer
            .send(
                &email,
                "Reset your Coffer password",
                &format!(
                    "Someone asked to reset the password of your Coffer account.\n\n\
                     Your reset token (valid for one hour, once):\n\n    {token}\n\n\
                     If this was not you, ignore this message.\n"
                ),
            )
            .map_err(|e| AuthError::Coffer(CofferError::Io(e)))?;
        self.audit(
            AuditEvent::new(AuditAction::PasswordChange, Actor::Anonymous)
                .ip(ip.map(str::to_owned))
                .target(user.id.to_string())
                .detail(serde_json::json!({ "step": "reset_requested" })),
        )?;
        Ok(())
    }

    /// Completes a reset: sets the password and ends every session of the user.
    pub fn confirm_reset(&self, token: &str, new: &str, ip: Option<&str>) -> Result<(), AuthError> {
        let hash = password::hash(new)?;
        let store = self.coffer.control.store();
        let user = store
            .consume_reset(&sha256_hex(token), &db::now())?
            .ok_or(AuthError::BadResetToken)?;
        store.set_password_hash(user, &hash)?;
        store.revoke_user_sessions(user, &db::now())?;
        self.audit(
            AuditEvent::new(AuditAction::PasswordChange, Actor::User(user))
                .ip(ip.map(str::to_owned))
                .target(user.to_string())
                .detail(serde_json::json!({ "step": "reset_completed" })),
        )?;
        Ok(())
    }

    /// Sign-up: a user and a tenant they own, then a session.
    #[allow(clippy::too_many_arguments)]
    pub fn signup(
        &self,
        email: &str,
        name: &str,
        password_text: &str,
        slug: &str,
        tenant_name: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(NewSession, Tenant), AuthError> {
        if !self.coffer.config.signup_enabled {
            return Err(AuthError::SignupDisabled);
        }
        let email = Email::parse(email).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let slug = TenantSlug::parse(slug).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let hash = password::hash(password_text)?;
        if self.coffer.control.store().tenant_by_slug(&slug)?.is_some() {
            return Err(AuthError::Conflict(
                "a tenant with this slug already exists".into(),
            ));
        }
        let anonymous = Caller {
            actor: Actor::Anonymous,
            ip: ip.map(str::to_owned),
        };
        let user = self
            .coffer
            .control
            .create_user(&anonymous, &email, name, Some(&hash), false)?;
        let as_user = Caller {
            actor: Actor::User(user.id),
            ip: ip.map(str::to_owned),
        };
        let tenant = match self
            .coffer
            .create_tenant(&as_user, &slug, tenant_name, None)
        {
            Ok(t) => t,
            Err(e) => {
                self.coffer.control.store().delete_user(user.id)?;
                return Err(match e {
                    CofferError::Control(c) => c.into(),
                    other => other.into(),
                });
            }
        };
        self.coffer
            .control
            .set_member(&as_user, tenant.id, user.id, Role::Owner)?;
        Ok((self.start_session(user, ip, user_agent)?, tenant))
    }

    /// Creates an API token for the principal's user, scoped to one tenant, with a role no
    /// higher than theirs. Returns the secret (shown once) and the stored facts.
    pub fn create_token(
        &self,
        principal: &Principal,
        slug: &str,
        role: Role,
        name: &str,
        ip: Option<String>,
    ) -> Result<(String, ApiToken), AuthError> {
        if let Principal::Token { .. } = principal {
            return Err(AuthError::Forbidden);
        }
        let user = principal.user();
        let (tenant, member_role) = self.membership(user.id, slug)?;
        if !may_grant(member_role, role) {
            return Err(AuthError::Forbidden);
        }
        self.issue_token(user.id, &tenant, role, name, principal.caller(ip))
    }

    /// Issues a token without a session (the operator CLI's `coffer token create`).
    pub fn issue_token(
        &self,
        user: UserId,
        tenant: &Tenant,
        role: Role,
        name: &str,
        caller: Caller,
    ) -> Result<(String, ApiToken), AuthError> {
        let id = random_hex(16)?;
        let secret = format!("{TOKEN_PREFIX}{id}_{}", random_hex(32)?);
        let token = ApiToken {
            id: id.clone(),
            user_id: user,
            tenant_id: tenant.id,
            role,
            name: name.chars().take(100).collect(),
            created_at: db::now(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        };
        self.coffer
            .control
            .store()
            .insert_token(&token, &sha256_hex(&secret))?;
        self.audit(
            caller
                .event(AuditAction::TokenCreate)
                .tenant(tenant.id)
                .target(id)
                .detail(serde_json::json!({ "role": role.as_str() })),
        )?;
        Ok((secret, token))
    }

    pub fn revoke_token(
        &self,
        principal: &Principal,
        id: &str,
        ip: Option<String>,
    ) -> Result<(), AuthError> {
        let user = principal.user();
        let tokens = self.coffer.control.store().tokens_of(user.id)?;
        let token = tokens
            .iter()
            .find(|t| t.id == id)
            .ok_or(AuthError::NotFound)?;
        if !self
            .coffer
            .control
            .store()
            .revoke_token(user.id, id, &db::now())?
        {
            return Err(AuthError::NotFound);
        }
        self.audit(
            principal
                .caller(ip)
                .event(AuditAction::TokenRevoke)
                .tenant(token.tenant_id)
                .target(id),
        )?;
        Ok(())
    }

    /// Deletes the principal's own account after checking the password. Refused while the
    /// user is the last owner of a tenant (that tenant must be handed over or deleted).
    pub fn delete_account(
        &self,
        principal: &Principal,
        password_text: &str,
        ip: Option<String>,
    ) -> Result<(), AuthError> {
        let user = principal.user();
        let ok = user
            .password_hash
            .as_deref()
            .is_some_and(|h| password::verify(password_text, h) != Verified::Mismatch);
        if !ok {
            return Err(AuthError::BadCredentials);
        }
        let store = self.coffer.control.store();
        for m in store.memberships(user.id)? {
            if m.role == Role::Owner
                && store
                    .members(m.tenant_id)?
                    .iter()
                    .filter(|x| x.role == Role::Owner)
                    .count()
                    <= 1
            {
                return Err(AuthError::Conflict(format!(
                    "you are the last owner of tenant {}: add another owner or delete the tenant first",
                    m.slug
                )));
            }
        }
        store.revoke_user_sessions(user.id, &db::now())?;
        store.delete_user(user.id)?;
        self.audit(
            principal
                .caller(ip)
                .event(AuditAction::UserDelete)
                .target(user.id.to_string()),
        )?;
        Ok(())
    }

    /// The tenant named `slug` and the user's role in it; `NotFound` for a tenant that
    /// does not exist, is deleted, or of which the user is not a member.
    fn membership(&self, user: UserId, slug: &str) -> Result<(Tenant, Role), AuthError> {
        let slug = TenantSlug::parse(slug).map_err(|_| AuthError::NotFound)?;
        let store = self.coffer.control.store();
        let tenant = store.tenant_by_slug(&slug)?.ok_or(AuthError::NotFound)?;
        if tenant.state == TenantState::Deleted {
            return Err(AuthError::NotFound);
        }
        let role = store
            .membership(user, tenant.id)?
            .ok_or(AuthError::NotFound)?;
        Ok((tenant, role))
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
        let (tenant, member_role) = self.membership(principal.user().id, slug)?;
        let (role, allowed) = match principal {
            Principal::Session { .. } => (member_role, role_allows(member_role, permission)),
            Principal::Token { token, .. } => {
                if token.tenant_id != tenant.id {
                    return Err(AuthError::NotFound);
                }
                (
                    token.role,
                    token_allows(token.role, member_role, permission),
                )
            }
        };
        let caller = principal.caller(ip);
        if !allowed {
            self.audit(
                caller
                    .event(AuditAction::AccessDenied)
                    .tenant(tenant.id)
                    .outcome(Outcome::Denied)
                    .detail(serde_json::json!({ "permission": format!("{permission:?}"), "role": role.as_str() })),
            )?;
            return Err(AuthError::Forbidden);
        }
        let vault = self.coffer.vault(&tenant)?;
        Ok(TenantAccess {
            tenant,
            role,
            caller,
            vault,
        })
    }
}
