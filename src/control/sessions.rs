//! Sessions, logins and API tokens in the control plane: a login and its session (and a
//! password-hash upgrade) in one audited transaction, session revocation, password
//! resets, and creating and revoking tokens.

use super::model::{ApiToken, User};
use super::store::NewSessionRow;
use super::{ControlError, ControlPlane, rules};
use crate::audit::{Actor, AuditAction, AuditEvent, Caller, Outcome};
use crate::names::UserId;

/// The fields of a new session row.
pub struct SessionSpec<'a> {
    pub id: &'a str,
    pub expires_at: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl ControlPlane {
    /// A successful login: the login record, the session, and (for a legacy or weak hash)
    /// the upgraded password hash, with their events.
    pub fn record_login(
        &self,
        user: &User,
        ip: Option<&str>,
        session: &SessionSpec<'_>,
        upgraded_hash: Option<&str>,
    ) -> Result<(), ControlError> {
        let caller = Caller::new(Actor::User(user.id)).with_ip(ip.map(str::to_owned));
        self.write(|tx, now| {
            let mut events = Vec::new();
            if let Some(hash) = upgraded_hash {
                tx.set_password_hash(user.id, hash)?;
                events.push(
                    caller
                        .event(AuditAction::PasswordUpgrade)
                        .target(user.id.to_string()),
                );
            }
            tx.insert_login_event(user.id, ip, true, now)?;
            tx.insert_session(&session_row(user.id, session), now)?;
            events.push(caller.event(AuditAction::Login).target(user.id.to_string()));
            Ok(((), events))
        })
    }

    /// A refused login: its record (for a known account) and its event.
    pub fn record_failed_login(
        &self,
        user: Option<UserId>,
        ip: Option<&str>,
        reason: &str,
    ) -> Result<(), ControlError> {
        self.write_bookkeeping(|tx, now| {
            if let Some(user) = user {
                tx.insert_login_event(user, ip, false, now)?;
            }
            let event = AuditEvent::new(AuditAction::LoginFailed, Actor::Anonymous)
                .ip(ip.map(str::to_owned))
                .outcome(Outcome::Denied)
                .detail(serde_json::json!({ "reason": reason }));
            Ok(((), vec![event]))
        })
    }

    /// Opens a session without a password check of its own (right after sign-up or a
    /// password change, which checked it).
    pub fn open_session(
        &self,
        caller: &Caller,
        user: UserId,
        session: &SessionSpec<'_>,
    ) -> Result<(), ControlError> {
        self.write(|tx, now| {
            tx.insert_session(&session_row(user, session), now)?;
            let event = caller.event(AuditAction::Login).target(user.to_string());
            Ok(((), vec![event]))
        })
    }

    /// Ends one of `user`'s sessions: `logout` for the session in use, otherwise a
    /// revocation (from the list of one's sessions).
    pub fn end_session(
        &self,
        caller: &Caller,
        user: UserId,
        session_id: &str,
        logout: bool,
    ) -> Result<(), ControlError> {
        self.write(|tx, now| {
            if !tx.revoke_session(user, session_id, now)? {
                return Err(ControlError::NotFound);
            }
            let action = if logout {
                AuditAction::Logout
            } else {
                AuditAction::SessionRevoke
            };
            Ok(((), vec![caller.event(action).target(user.to_string())]))
        })
    }

    /// Sets a new password hash and ends every session of the user. API tokens are the
    /// credentials of programs and stay valid; they are revoked one by one.
    pub fn change_password(
        &self,
        caller: &Caller,
        user: UserId,
        new_hash: &str,
    ) -> Result<(), ControlError> {
        self.write(|tx, now| {
            tx.set_password_hash(user, new_hash)?;
            tx.revoke_user_sessions(user, now)?;
            let event = caller
                .event(AuditAction::PasswordChange)
                .target(user.to_string());
            Ok(((), vec![event]))
        })
    }

    /// Stores a password-reset token (its hash) for `user`.
    pub fn request_reset(
        &self,
        ip: Option<&str>,
        user: UserId,
        token_hash: &str,
        expires_at: &str,
    ) -> Result<(), ControlError> {
        self.write(|tx, now| {
            tx.insert_reset(token_hash, user, expires_at, now)?;
            let event = AuditEvent::new(AuditAction::PasswordChange, Actor::Anonymous)
                .ip(ip.map(str::to_owned))
                .target(user.to_string())
                .detail(serde_json::json!({ "step": "reset_requested" }));
            Ok(((), vec![event]))
        })
    }

    /// Uses a reset token: sets the password and ends every session of its user, or
    /// `NotFound` if the token is unknown, used or expired.
    /// Whether a reset token could complete a reset now (checked before a new password
    /// is hashed, so a guessed token costs no hashing).
    pub fn reset_token_usable(&self, token_hash: &str) -> Result<bool, ControlError> {
        let now = crate::db::timestamp(self.clock.now());
        self.read(|tx| tx.reset_usable(token_hash, &now))
    }

    pub fn complete_reset(
        &self,
        ip: Option<&str>,
        token_hash: &str,
        new_hash: &str,
    ) -> Result<UserId, ControlError> {
        self.write(|tx, now| {
            let user = tx
                .consume_reset(token_hash, now)?
                .ok_or(ControlError::NotFound)?;
            tx.set_password_hash(user, new_hash)?;
            tx.revoke_user_sessions(user, now)?;
            let event = AuditEvent::new(AuditAction::PasswordChange, Actor::User(user))
                .ip(ip.map(str::to_owned))
                .target(user.to_string())
                .detail(serde_json::json!({ "step": "reset_completed" }));
            Ok((user, vec![event]))
        })
    }

    /// Stores a new token (the hash of its secret) after checking, in the transaction,
    /// that its user is still a member whose role may grant the token's.
    pub fn create_token(
        &self,
        caller: &Caller,
        token: &ApiToken,
        token_hash: &str,
    ) -> Result<(), ControlError> {
        self.write(|tx, _now| {
            let member = tx
                .membership(token.user_id, token.tenant_id)?
                .ok_or(ControlError::NotMember)?;
            if !rules::may_grant(member, token.role) {
                return Err(ControlError::Forbidden(format!(
                    "a {} cannot hold a {} token",
                    member.as_str(),
                    token.role.as_str()
                )));
            }
            tx.insert_token(token, token_hash)?;
            let event = caller
                .event(AuditAction::TokenCreate)
                .tenant(token.tenant_id)
                .target(token.id.clone())
                .detail(serde_json::json!({ "role": token.role.as_str(),
                    "expires_at": token.expires_at,
                    "scopes": token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>() }));
            Ok(((), vec![event]))
        })
    }

    /// Revokes one of `user`'s tokens.
    pub fn revoke_token(
        &self,
        caller: &Caller,
        user: UserId,
        id: &str,
    ) -> Result<(), ControlError> {
        self.write(|tx, now| {
            let token = tx
                .token(id)?
                .filter(|t| t.user_id == user)
                .ok_or(ControlError::NotFound)?;
            if !tx.revoke_token(user, id, now)? {
                return Err(ControlError::NotFound);
            }
            let event = caller
                .event(AuditAction::TokenRevoke)
                .tenant(token.tenant_id)
                .target(id.to_owned());
            Ok(((), vec![event]))
        })
    }
}

fn session_row<'a>(user: UserId, s: &'a SessionSpec<'a>) -> NewSessionRow<'a> {
    NewSessionRow {
        id: s.id,
        user,
        expires_at: s.expires_at,
        ip: s.ip,
        user_agent: s.user_agent,
    }
}
