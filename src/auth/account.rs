//! A person's own account: logging in and out, passwords and resets, API tokens, and
//! deleting the account. Every change is one `ControlPlane` call with its audit event;
//! this file adds what needs the secret keys, the throttle and the slow password hash.

use std::time::Instant;

use super::password::{self, Verified};
use super::throttle;
use super::{Auth, AuthError, Principal, TOKEN_PREFIX, TenantAccess, random_hex, sha256_hex};
use crate::audit::{Actor, Caller};
use crate::control::{ApiToken, ControlError, Role, SessionSpec, Tenant, TokenScope, User};
use crate::names::{Email, TenantId, UserId};

/// Reset tokens work for this long.
const RESET_TTL_SECS: i64 = 3600;

/// Invitation codes work for a week (the person invited may be away).
const INVITE_TTL_SECS: i64 = 7 * 24 * 3600;

/// A new session, for the cookie.
pub struct NewSession {
    /// The signed token: goes only into the `Set-Cookie` header.
    pub token: String,
    pub csrf_token: String,
    pub user: User,
    pub max_age_secs: i64,
}

/// The longest lifetime a token may be given, in days (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// What a token is for: its role, name, lifetime and extra scopes.
pub struct TokenSpec<'a> {
    pub role: Role,
    pub name: &'a str,
    pub expires_in_days: Option<u32>,
    pub scopes: &'a [TokenScope],
}

impl Auth {
    /// Makes a session id, its signed token and its row's fields.
    fn new_session_token(&self, user: &User) -> Result<(String, String, String, i64), AuthError> {
        let sid = random_hex(16)?;
        let now = self.now_unix();
        let exp = now + self.session_ttl_secs;
        let token = self
            .keys
            .issue(&user.id.to_string(), &sid, now, exp)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok((sid, token, Self::stamp_at(exp), self.session_ttl_secs))
    }

    fn session_for(&self, user: User, sid: &str, token: String, max_age: i64) -> NewSession {
        NewSession {
            token,
            csrf_token: self.keys.csrf_token(sid),
            user,
            max_age_secs: max_age,
        }
    }

    /// Opens a session for a user whose password was just checked or set (sign-up, a
    /// password change).
    pub fn start_session(
        &self,
        caller: &Caller,
        user: User,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let (sid, token, expires_at, max_age) = self.new_session_token(&user)?;
        self.control.open_session(
            caller,
            user.id,
            &SessionSpec {
                id: &sid,
                expires_at: &expires_at,
                ip,
                user_agent,
            },
        )?;
        Ok(self.session_for(user, &sid, token, max_age))
    }

    /// Counts a sign-up from `ip`, refusing it (`Throttled`) past `SIGNUP_LIMIT` per window:
    /// each sign-up makes a tenant, so one address cannot make thousands.
    pub fn count_signup(&self, ip: Option<&str>) -> Result<(), AuthError> {
        let key = throttle::client_key("signup", ip);
        let attempt = self
            .throttle
            .begin(&[(&key, throttle::SIGNUP_LIMIT)], Instant::now())
            .map_err(AuthError::Throttled)?;
        attempt.failed(); // every sign-up counts, like a failure
        Ok(())
    }

    /// `Some(retry_after)` if a login for `email` from `ip` would be throttled now (checked
    /// before the request waits for a password-hashing slot).
    pub fn login_throttled(
        &self,
        email: &str,
        ip: Option<&str>,
        now: Instant,
    ) -> Option<std::time::Duration> {
        let (account_key, ip_key) = throttle_keys(email, ip);
        self.throttle.would_refuse(
            &[
                (&account_key, throttle::ACCOUNT_LIMIT),
                (&ip_key, throttle::IP_LIMIT),
            ],
            now,
        )
    }

    /// Checks an e-mail and password, with throttling per account and per IP, and opens a
    /// session. Unknown accounts cost the same time as known ones.
    pub fn login(
        &self,
        email: &str,
        password_text: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
        now: Instant,
    ) -> Result<NewSession, AuthError> {
        let (account_key, ip_key) = throttle_keys(email, ip);
        let attempt = match self.throttle.begin(
            &[
                (&account_key, throttle::ACCOUNT_LIMIT),
                (&ip_key, throttle::IP_LIMIT),
            ],
            now,
        ) {
            Ok(attempt) => attempt,
            Err(retry) => {
                self.control.record_failed_login(None, ip, "throttled")?;
                return Err(AuthError::Throttled(retry));
            }
        };
        let user = match Email::parse(email) {
            Ok(email) => self.control.user_by_email(&email)?,
            Err(_) => None,
        };
        let verdict = match user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref().map(|h| (u, h)))
        {
            Some((u, hash)) if u.disabled_at.is_none() => password::verify(password_text, hash),
            _ => {
                password::verify_dummy(password_text);
                Verified::Mismatch
            }
        };
        let user = match user {
            Some(u) if verdict != Verified::Mismatch => u,
            known => {
                attempt.failed();
                self.control
                    .record_failed_login(known.map(|u| u.id), ip, "bad credentials")?;
                return Err(AuthError::BadCredentials);
            }
        };
        attempt.succeeded(&account_key);
        let upgraded = match verdict {
            Verified::OkNeedsUpgrade => Some(password::hash_unchecked(password_text)?),
            _ => None,
        };
        let (sid, token, expires_at, max_age) = self.new_session_token(&user)?;
        self.control.record_login(
            &user,
            ip,
            &SessionSpec {
                id: &sid,
                expires_at: &expires_at,
                ip,
                user_agent,
            },
            upgraded.as_deref(),
        )?;
        Ok(self.session_for(user, &sid, token, max_age))
    }

    /// Ends the credential in use: the session, or for an API token, that token (a
    /// program logging itself out).
    pub fn logout(&self, principal: &Principal, ip: Option<String>) -> Result<(), AuthError> {
        let caller = principal.caller(ip);
        let user = principal.user().id;
        match (principal.session_id(), principal.api_token()) {
            (Some(sid), _) => self.control.end_session(&caller, user, sid, true)?,
            (None, Some(token)) => self.control.revoke_token(&caller, user, &token.id)?,
            (None, None) => return Err(AuthError::Unauthenticated),
        }
        Ok(())
    }

    /// Revokes another of the user's own sessions (from the list of sessions).
    pub fn revoke_session(
        &self,
        principal: &Principal,
        session_id: &str,
        ip: Option<String>,
    ) -> Result<(), AuthError> {
        principal.require_session()?;
        let caller = principal.caller(ip);
        Ok(self
            .control
            .end_session(&caller, principal.user().id, session_id, false)?)
    }

    /// Re-checks a signed-in user's password (before a password change or an account
    /// deletion), throttled like a login: a stolen session cannot guess the password.
    fn check_password(&self, user: &User, text: &str, ip: Option<&str>) -> Result<(), AuthError> {
        let account_key = format!("acct:{}", user.email);
        let ip_key = format!("ip:{}", ip.unwrap_or("unknown"));
        let attempt = self
            .throttle
            .begin(
                &[
                    (&account_key, throttle::ACCOUNT_LIMIT),
                    (&ip_key, throttle::IP_LIMIT),
                ],
                Instant::now(),
            )
            .map_err(AuthError::Throttled)?;
        let ok = user
            .password_hash
            .as_deref()
            .is_some_and(|h| password::verify(text, h) != Verified::Mismatch);
        if ok {
            attempt.succeeded(&account_key);
            Ok(())
        } else {
            attempt.failed();
            Err(AuthError::BadCredentials)
        }
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
        principal.require_session()?;
        let user = principal.user();
        self.check_password(user, current, ip)?;
        let hash = password::hash(new)?;
        let caller = principal.caller(ip.map(str::to_owned));
        self.control.change_password(&caller, user.id, &hash)?;
        self.start_session(&caller, user.clone(), ip, user_agent)
    }

    /// Starts a password reset. Says nothing about whether the account exists. Limited
    /// per client address and per account (`Throttled`): each request sends mail and
    /// writes a row, so nobody can mail-bomb an account or fill the disk with them.
    pub fn request_reset(&self, email: &str, ip: Option<&str>) -> Result<(), AuthError> {
        let (ip_key, account_key) = (
            throttle::client_key("reset-ip", ip),
            throttle::account_key("reset-acct", email),
        );
        self.throttle
            .begin(
                &[
                    (&ip_key, throttle::RESET_REQUEST_IP_LIMIT),
                    (&account_key, throttle::RESET_REQUEST_LIMIT),
                ],
                Instant::now(),
            )
            .map_err(AuthError::Throttled)?
            .failed(); // every request counts
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let Some(user) = self.control.user_by_email(&email)? else {
            return Ok(());
        };
        let token = random_hex(32)?;
        let expires = Self::stamp_at(self.now_unix() + RESET_TTL_SECS);
        self.control
            .request_reset(ip, user.id, &sha256_hex(&token), &expires)?;
        self.mailer.send(
            &email,
            "Reset your Coffer password",
            &format!(
                "Someone asked to reset the password of your Coffer account.\n\n{}\n\
                 It works once, for one hour. If this was not you, ignore this message.\n",
                self.code_instructions("reset", &token)
            ),
        )?;
        Ok(())
    }

    /// Adds `email` to `access`'s tenant as `role` (`ControlPlane::invite_member`).
    /// Someone without a password yet (a new account) is sent a one-time code to set
    /// one, valid for a week; returns whether that message was sent.
    pub fn invite(
        &self,
        access: &TenantAccess,
        email: &Email,
        role: Role,
    ) -> Result<bool, AuthError> {
        let (code, stored) = self.invitation_code()?;
        let (_, invited) = self.control.invite_member(
            &access.caller,
            access.authority,
            access.tenant.id,
            email,
            role,
            (&stored.0, &stored.1),
        )?;
        if invited {
            self.mail_invitation(email, &access.tenant, role, &code)?;
        }
        Ok(invited)
    }

    /// Invites the new owner of a tenant an operator just created for them (an account
    /// made with the tenant, without a password): a one-time code, mailed.
    pub fn invite_owner(
        &self,
        caller: &Caller,
        tenant: &Tenant,
        email: &Email,
    ) -> Result<(), AuthError> {
        let user = self
            .control
            .user_by_email(email)?
            .ok_or(AuthError::NotFound)?;
        let (code, stored) = self.invitation_code()?;
        self.control
            .store_invitation(caller, tenant.id, user.id, (&stored.0, &stored.1))?;
        self.mail_invitation(email, tenant, Role::Owner, &code)
    }

    /// A new invitation code, and what is stored of it: its hash and its expiry.
    fn invitation_code(&self) -> Result<(String, (String, String)), AuthError> {
        let code = random_hex(32)?;
        let expires = Self::stamp_at(self.now_unix() + INVITE_TTL_SECS);
        let hash = sha256_hex(&code);
        Ok((code, (hash, expires)))
    }

    fn mail_invitation(
        &self,
        email: &Email,
        tenant: &Tenant,
        role: Role,
        code: &str,
    ) -> Result<(), AuthError> {
        self.mailer.send(
            email,
            "You are invited to Coffer",
            &format!(
                "You are invited to {} on Coffer, as {}.\n\n{}\n\
                 It works once, for 7 days, and lets you choose your password.\n",
                tenant.name,
                role.as_str(),
                self.code_instructions("welcome", code)
            ),
        )?;
        Ok(())
    }

    /// How a message's one-time code is used: a link to the web UI's page for it when
    /// the public address is configured, else the code and where to enter it.
    fn code_instructions(&self, page: &str, code: &str) -> String {
        match &self.public_url {
            Some(base) => format!("Open this link:\n\n    {base}/#/{page}/{code}\n"),
            None => format!(
                "Your code:\n\n    {code}\n\nOpen Coffer in your browser, choose \"Forgot your \
                 password?\", then \"I have a code\", and enter it.\n"
            ),
        }
    }

    /// Checks a reset token before any password is hashed: `BadResetToken` for one that
    /// cannot complete a reset (counted per client address), `Throttled` past
    /// `RESET_GUESS_LIMIT` wrong tokens. A guessing client never takes a hashing slot.
    pub fn check_reset_token(&self, token: &str, ip: Option<&str>) -> Result<(), AuthError> {
        let key = throttle::client_key("reset-guess", ip);
        let attempt = self
            .throttle
            .begin(&[(&key, throttle::RESET_GUESS_LIMIT)], Instant::now())
            .map_err(AuthError::Throttled)?;
        if token.len() > 128 || !self.control.reset_token_usable(&sha256_hex(token))? {
            attempt.failed();
            return Err(AuthError::BadResetToken);
        }
        Ok(())
    }

    /// Completes a reset: sets the password and ends every session of the user.
    pub fn confirm_reset(&self, token: &str, new: &str, ip: Option<&str>) -> Result<(), AuthError> {
        self.check_reset_token(token, ip)?;
        let hash = password::hash(new)?;
        match self.control.complete_reset(ip, &sha256_hex(token), &hash) {
            Ok(_) => Ok(()),
            Err(ControlError::NotFound) => Err(AuthError::BadResetToken),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates an API token for the principal's user, scoped to one tenant, with a role no
    /// higher than theirs (checked by the control plane in the same transaction). Returns
    /// the secret (shown once) and the stored facts. Programs cannot mint tokens.
    pub fn create_token(
        &self,
        principal: &Principal,
        slug: &str,
        spec: &TokenSpec<'_>,
        ip: Option<String>,
    ) -> Result<(String, ApiToken), AuthError> {
        principal.require_session()?;
        let (tenant, _) = self.membership(principal.user(), slug)?;
        self.issue_scoped_token(
            principal.user().id,
            &tenant,
            spec.role,
            spec.name,
            spec.expires_in_days,
            spec.scopes,
            &principal.caller(ip),
        )
    }

    /// Issues a token for `user` in `tenant` (also the operator CLI's `token create`).
    pub fn issue_token(
        &self,
        user: UserId,
        tenant: &Tenant,
        role: Role,
        name: &str,
        expires_in_days: Option<u32>,
        caller: &Caller,
    ) -> Result<(String, ApiToken), AuthError> {
        self.issue_scoped_token(user, tenant, role, name, expires_in_days, &[], caller)
    }

    /// `issue_token` with extra scopes (an AI integration's `ai-usage`).
    #[allow(clippy::too_many_arguments)]
    pub fn issue_scoped_token(
        &self,
        user: UserId,
        tenant: &Tenant,
        role: Role,
        name: &str,
        expires_in_days: Option<u32>,
        scopes: &[TokenScope],
        caller: &Caller,
    ) -> Result<(String, ApiToken), AuthError> {
        if let Some(days) = expires_in_days
            && !(1..=MAX_TOKEN_DAYS).contains(&days)
        {
            return Err(AuthError::Invalid(format!(
                "a token expires in 1 to {MAX_TOKEN_DAYS} days"
            )));
        }
        let id = random_hex(16)?;
        let secret = format!("{TOKEN_PREFIX}{id}_{}", random_hex(32)?);
        let expires_at =
            expires_in_days.map(|days| Self::stamp_at(self.now_unix() + i64::from(days) * 86_400));
        let token = ApiToken {
            id,
            user_id: user,
            tenant_id: tenant.id,
            role,
            name: crate::names::display_name(name)
                .map_err(|e| AuthError::Invalid(e.to_string()))?,
            created_at: crate::clock::stamp(self.clock.as_ref()),
            last_used_at: None,
            expires_at,
            revoked_at: None,
            scopes: scopes.to_vec(),
        };
        match self
            .control
            .create_token(caller, &token, &sha256_hex(&secret))
        {
            Ok(()) => Ok((secret, token)),
            Err(ControlError::NotMember) => Err(AuthError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes one of the user's tokens. Needs a session: a program revokes only itself,
    /// by logging out.
    pub fn revoke_token(
        &self,
        principal: &Principal,
        id: &str,
        ip: Option<String>,
    ) -> Result<(), AuthError> {
        principal.require_session()?;
        let caller = principal.caller(ip);
        Ok(self
            .control
            .revoke_token(&caller, principal.user().id, id)?)
    }

    /// Deletes the principal's own account after checking the password. Needs a session
    /// (a program's token cannot delete a person's account). Returns the tenants it was
    /// the only owner of, now cancelled (see `erase_account`).
    pub fn delete_account(
        &self,
        principal: &Principal,
        password_text: &str,
        ip: Option<String>,
        grace: time::Duration,
    ) -> Result<Vec<TenantId>, AuthError> {
        principal.require_session()?;
        let user = principal.user();
        self.check_password(user, password_text, ip.as_deref())?;
        self.erase_account(&principal.caller(ip), user, grace)
    }

    /// Deletes an account (P12; `ControlPlane::delete_user`) and the messages still waiting
    /// for it in the outbox. Returns the tenants it was the only owner of, now cancelled
    /// and purged after `grace`.
    pub fn erase_account(
        &self,
        caller: &Caller,
        user: &User,
        grace: time::Duration,
    ) -> Result<Vec<TenantId>, AuthError> {
        let orphaned = self.control.delete_user(caller, user.id, grace)?;
        if let Ok(email) = Email::parse(&user.email) {
            self.mailer.forget(&email)?;
        }
        Ok(orphaned)
    }

    /// A caller acting as `user` (after sign-up).
    pub fn user_caller(user: UserId, ip: Option<&str>) -> Caller {
        Caller::new(Actor::User(user)).with_ip(ip.map(str::to_owned))
    }
}

/// The throttle's keys for a login: the account (as typed, folded) and the client address.
fn throttle_keys(email: &str, ip: Option<&str>) -> (String, String) {
    (
        throttle::account_key("acct", email),
        throttle::client_key("ip", ip),
    )
}
