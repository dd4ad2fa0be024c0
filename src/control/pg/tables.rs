//! The PostgreSQL statements behind `ControlTx`: the same reads and writes as the SQLite
//! store, one method each.

use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{Params, wait};
use crate::control::ControlError;
use crate::control::model::{
    ApiToken, Lifecycle, LoginEvent, Member, Membership, NewUser, Placement, Role, Session, Tenant,
    TenantState, TokenScope, User,
};
use crate::control::store::{ControlTx, NewSessionRow};
use crate::names::{Email, NameError, TenantId, TenantSlug, UserId};

/// One transaction; dropped without `finish`, it rolls back.
pub struct Tx<'a> {
    tx: tokio_postgres::Transaction<'a>,
}

impl<'a> Tx<'a> {
    pub fn new(tx: tokio_postgres::Transaction<'a>) -> Self {
        Tx { tx }
    }

    /// Commits (a read-only transaction commits nothing).
    pub fn finish(self) -> Result<(), ControlError> {
        Ok(wait(self.tx.commit())?)
    }

    pub(super) fn all<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        map: impl Fn(&Row) -> Result<T, ControlError>,
    ) -> Result<Vec<T>, ControlError> {
        let rows = wait(self.tx.query(sql, params))?;
        rows.iter().map(map).collect()
    }

    pub(super) fn one<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        map: impl FnOnce(&Row) -> Result<T, ControlError>,
    ) -> Result<Option<T>, ControlError> {
        let row = wait(self.tx.query_opt(sql, params))?;
        row.as_ref().map(map).transpose()
    }

    /// Runs a statement; returns the rows it changed.
    pub(super) fn exec(&self, sql: &str, params: &Params<'_>) -> Result<usize, ControlError> {
        Ok(wait(self.tx.execute(sql, params))? as usize)
    }

    /// `exec`, with a unique violation answered by `taken`.
    pub(super) fn exec_unique(
        &self,
        sql: &str,
        params: &Params<'_>,
        taken: ControlError,
    ) -> Result<usize, ControlError> {
        match wait(self.tx.execute(sql, params)) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(taken),
            Err(e) => Err(e.into()),
        }
    }
}

pub(super) fn parse_id<T>(
    s: &str,
    parse: fn(&str) -> Result<T, NameError>,
) -> Result<T, ControlError> {
    parse(s).map_err(|e| ControlError::Postgres(format!("a stored id does not parse: {e}")))
}

fn role_from(s: &str) -> Result<Role, ControlError> {
    Role::parse(s).ok_or_else(|| ControlError::Postgres(format!("unknown role {s:?}")))
}

fn quota(q: Option<u64>) -> Option<i64> {
    q.map(|q| q.min(i64::MAX as u64) as i64)
}

/// A tenant with its placement (`FROM tenants t LEFT JOIN placements p`).
const TENANT_SELECT: &str = "SELECT t.id, t.slug, t.name, t.state, t.plan, t.quota_bytes, \
     t.created_at, t.state_changed_at, t.cancelled_at, t.purge_after, t.legal_hold_at, \
     t.purged_at, p.node, p.epoch, p.fenced_at, p.updated_at \
     FROM tenants t LEFT JOIN placements p ON p.tenant_id = t.id";
const USER_COLUMNS: &str = "id, email, name, is_operator, created_at, disabled_at, password_hash";
const TOKEN_COLUMNS: &str = "id, user_id, tenant_id, role, name, created_at, last_used_at, \
     expires_at, revoked_at, scopes";

fn tenant_from(r: &Row) -> Result<Tenant, ControlError> {
    let state: String = r.try_get(3)?;
    Ok(Tenant {
        id: parse_id(r.try_get(0)?, TenantId::parse)?,
        slug: r.try_get(1)?,
        name: r.try_get(2)?,
        state: TenantState::parse(&state)
            .ok_or_else(|| ControlError::Postgres(format!("unknown tenant state {state:?}")))?,
        plan: r.try_get(4)?,
        quota_bytes: r.try_get::<_, Option<i64>>(5)?.map(|q| q.max(0) as u64),
        created_at: r.try_get(6)?,
        lifecycle: Lifecycle {
            state_changed_at: r.try_get(7)?,
            cancelled_at: r.try_get(8)?,
            purge_after: r.try_get(9)?,
            legal_hold_at: r.try_get(10)?,
            purged_at: r.try_get(11)?,
        },
        placement: match r.try_get::<_, Option<String>>(12)? {
            Some(node) => Some(Placement {
                node,
                epoch: r.try_get(13)?,
                fenced_at: r.try_get(14)?,
                changed_at: r.try_get(15)?,
            }),
            None => None,
        },
    })
}

fn user_from(r: &Row) -> Result<User, ControlError> {
    Ok(User {
        id: parse_id(r.try_get(0)?, UserId::parse)?,
        email: r.try_get(1)?,
        name: r.try_get(2)?,
        is_operator: r.try_get(3)?,
        created_at: r.try_get(4)?,
        disabled_at: r.try_get(5)?,
        password_hash: r.try_get(6)?,
    })
}

fn token_from(r: &Row) -> Result<ApiToken, ControlError> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        user_id: parse_id(r.try_get(1)?, UserId::parse)?,
        tenant_id: parse_id(r.try_get(2)?, TenantId::parse)?,
        role: role_from(r.try_get(3)?)?,
        name: r.try_get(4)?,
        created_at: r.try_get(5)?,
        last_used_at: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        revoked_at: r.try_get(8)?,
        scopes: r
            .try_get::<_, &str>(9)?
            .split_whitespace()
            .filter_map(TokenScope::parse)
            .collect(),
    })
}

/// A login event from `user_id, email, at, ip, success`.
pub(super) fn login_from(r: &Row) -> Result<LoginEvent, ControlError> {
    Ok(LoginEvent {
        user_id: parse_id(r.try_get(0)?, UserId::parse)?,
        email: r.try_get(1)?,
        at: r.try_get(2)?,
        ip: r.try_get(3)?,
        success: r.try_get(4)?,
    })
}

/// The session columns after a user's (`sessions_of`), or alone (`live_session`).
struct SessionRow {
    id: String,
    created_at: String,
    expires_at: String,
    last_seen_at: String,
    ip: Option<String>,
    user_agent: Option<String>,
}

fn session_at(r: &Row, at: usize) -> Result<SessionRow, ControlError> {
    Ok(SessionRow {
        id: r.try_get(at)?,
        created_at: r.try_get(at + 1)?,
        expires_at: r.try_get(at + 2)?,
        last_seen_at: r.try_get(at + 3)?,
        ip: r.try_get(at + 4)?,
        user_agent: r.try_get(at + 5)?,
    })
}

fn session(user: User, s: SessionRow) -> Session {
    Session {
        user,
        id: s.id,
        created_at: s.created_at,
        expires_at: s.expires_at,
        last_seen_at: s.last_seen_at,
        ip: s.ip,
        user_agent: s.user_agent,
    }
}

impl ControlTx for Tx<'_> {
    fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, ControlError> {
        self.one(
            &format!("{TENANT_SELECT} WHERE t.id = $1"),
            &[&id.to_string()],
            tenant_from,
        )
    }

    fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, ControlError> {
        self.one(
            &format!("{TENANT_SELECT} WHERE t.slug = $1"),
            &[&slug.as_str()],
            tenant_from,
        )
    }

    fn tenants(&self) -> Result<Vec<Tenant>, ControlError> {
        self.all(
            &format!("{TENANT_SELECT} ORDER BY t.slug COLLATE \"C\""),
            &[],
            tenant_from,
        )
    }

    fn insert_tenant(
        &self,
        id: TenantId,
        slug: &TenantSlug,
        name: &str,
        quota_bytes: Option<u64>,
        now: &str,
    ) -> Result<(), ControlError> {
        self.exec_unique(
            "INSERT INTO tenants (id, slug, name, quota_bytes, created_at, state_changed_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
            &[
                &id.to_string(),
                &slug.as_str(),
                &name,
                &quota(quota_bytes),
                &now,
            ],
            ControlError::SlugTaken,
        )?;
        Ok(())
    }

    fn update_tenant(
        &self,
        id: TenantId,
        name: Option<&str>,
        quota_bytes: Option<u64>,
    ) -> Result<bool, ControlError> {
        let changed = self.exec(
            "UPDATE tenants SET name = COALESCE($2, name), quota_bytes = COALESCE($3, quota_bytes)
             WHERE id = $1",
            &[&id.to_string(), &name, &quota(quota_bytes)],
        )?;
        Ok(changed == 1)
    }

    fn user(&self, id: UserId) -> Result<Option<User>, ControlError> {
        self.one(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            &[&id.to_string()],
            user_from,
        )
    }

    fn user_by_email(&self, email: &Email) -> Result<Option<User>, ControlError> {
        self.one(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"),
            &[&email.as_str()],
            user_from,
        )
    }

    fn users(&self) -> Result<Vec<User>, ControlError> {
        self.all(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY email COLLATE \"C\""),
            &[],
            user_from,
        )
    }

    fn insert_user(&self, id: UserId, user: &NewUser, now: &str) -> Result<(), ControlError> {
        self.exec_unique(
            "INSERT INTO users (id, email, name, password_hash, is_operator, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &id.to_string(),
                &user.email.as_str(),
                &user.name,
                &user.password_hash,
                &user.is_operator,
                &now,
            ],
            ControlError::EmailTaken,
        )?;
        Ok(())
    }

    fn set_password_hash(&self, id: UserId, hash: &str) -> Result<(), ControlError> {
        let n = self.exec(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            &[&id.to_string(), &hash],
        )?;
        if n == 0 {
            return Err(ControlError::NotFound);
        }
        Ok(())
    }

    fn anonymise_user(&self, id: UserId, now: &str) -> Result<(), ControlError> {
        let id = id.to_string();
        // The row stays as the pseudonymous id the audit log names.
        self.exec(
            "UPDATE users SET email = 'deleted-' || id || '@deleted.invalid', name = '',
                 password_hash = NULL, is_operator = FALSE, disabled_at = $2
             WHERE id = $1",
            &[&id, &now],
        )?;
        self.exec(
            "UPDATE membership_periods SET until = $2 WHERE user_id = $1 AND until IS NULL",
            &[&id, &now],
        )?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM api_tokens WHERE user_id = $1",
            "DELETE FROM password_resets WHERE user_id = $1",
            "DELETE FROM memberships WHERE user_id = $1",
            "UPDATE login_events SET ip = NULL WHERE user_id = $1",
        ] {
            self.exec(sql, &[&id])?;
        }
        Ok(())
    }

    fn membership(&self, user: UserId, tenant: TenantId) -> Result<Option<Role>, ControlError> {
        self.one(
            "SELECT role FROM memberships WHERE user_id = $1 AND tenant_id = $2",
            &[&user.to_string(), &tenant.to_string()],
            |r| role_from(r.try_get(0)?),
        )
    }

    fn members(&self, tenant: TenantId) -> Result<Vec<Member>, ControlError> {
        self.all(
            "SELECT u.id, u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.tenant_id = $1 ORDER BY u.email COLLATE \"C\"",
            &[&tenant.to_string()],
            |r| {
                Ok(Member {
                    user_id: parse_id(r.try_get(0)?, UserId::parse)?,
                    email: r.try_get(1)?,
                    name: r.try_get(2)?,
                    role: role_from(r.try_get(3)?)?,
                })
            },
        )
    }

    fn memberships(&self, user: UserId) -> Result<Vec<Membership>, ControlError> {
        self.all(
            "SELECT t.id, t.slug, t.name, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.user_id = $1 ORDER BY t.slug COLLATE \"C\"",
            &[&user.to_string()],
            |r| {
                Ok(Membership {
                    tenant_id: parse_id(r.try_get(0)?, TenantId::parse)?,
                    slug: r.try_get(1)?,
                    tenant_name: r.try_get(2)?,
                    role: role_from(r.try_get(3)?)?,
                })
            },
        )
    }

    fn owner_count(&self, tenant: TenantId) -> Result<usize, ControlError> {
        let n: i64 = self
            .one(
                "SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'",
                &[&tenant.to_string()],
                |r| Ok(r.try_get(0)?),
            )?
            .unwrap_or(0);
        Ok(n.max(0) as usize)
    }

    fn put_member(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
        now: &str,
    ) -> Result<(), ControlError> {
        let (tenant, user) = (tenant.to_string(), user.to_string());
        self.exec(
            "INSERT INTO memberships (user_id, tenant_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, tenant_id) DO UPDATE SET role = excluded.role",
            &[&user, &tenant, &role.as_str(), &now],
        )?;
        self.exec(
            "INSERT INTO membership_periods (tenant_id, user_id, since)
             SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM membership_periods
                 WHERE tenant_id = $1 AND user_id = $2 AND until IS NULL)
             ON CONFLICT DO NOTHING",
            &[&tenant, &user, &now],
        )?;
        Ok(())
    }

    fn delete_member(
        &self,
        tenant: TenantId,
        user: UserId,
        now: &str,
    ) -> Result<bool, ControlError> {
        let (tenant, user) = (tenant.to_string(), user.to_string());
        self.exec(
            "UPDATE membership_periods SET until = $3
             WHERE tenant_id = $1 AND user_id = $2 AND until IS NULL",
            &[&tenant, &user, &now],
        )?;
        Ok(self.exec(
            "DELETE FROM memberships WHERE user_id = $1 AND tenant_id = $2",
            &[&user, &tenant],
        )? > 0)
    }

    fn insert_session(&self, s: &NewSessionRow<'_>, now: &str) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, ip, user_agent)
             VALUES ($1, $2, $3, $4, $3, $5, $6)",
            &[
                &s.id,
                &s.user.to_string(),
                &now,
                &s.expires_at,
                &s.ip,
                &s.user_agent,
            ],
        )?;
        Ok(())
    }

    fn live_session(&self, id: &str, now: &str) -> Result<Option<Session>, ControlError> {
        let found = self.one(
            "SELECT user_id, id, created_at, expires_at, last_seen_at, ip, user_agent
             FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
            &[&id, &now],
            |r| Ok((parse_id(r.try_get(0)?, UserId::parse)?, session_at(r, 1)?)),
        )?;
        let Some((user, row)) = found else {
            return Ok(None);
        };
        Ok(self
            .user(user)?
            .filter(|u| u.disabled_at.is_none())
            .map(|user| session(user, row)))
    }

    fn sessions_of(&self, user: UserId, now: &str) -> Result<Vec<Session>, ControlError> {
        self.all(
            "SELECT u.id, u.email, u.name, u.is_operator, u.created_at, u.disabled_at,
                    u.password_hash, s.id, s.created_at, s.expires_at, s.last_seen_at, s.ip,
                    s.user_agent
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
             ORDER BY s.created_at",
            &[&user.to_string(), &now],
            |r| Ok(session(user_from(r)?, session_at(r, 7)?)),
        )
    }

    fn touch_session(&self, id: &str, now: &str) -> Result<(), ControlError> {
        self.exec(
            "UPDATE sessions SET last_seen_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn revoke_session(&self, user: UserId, id: &str, now: &str) -> Result<bool, ControlError> {
        Ok(self.exec(
            "UPDATE sessions SET revoked_at = $3
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            &[&id, &user.to_string(), &now],
        )? > 0)
    }

    fn revoke_user_sessions(&self, user: UserId, now: &str) -> Result<usize, ControlError> {
        self.exec(
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            &[&user.to_string(), &now],
        )
    }

    fn insert_token(&self, t: &ApiToken, token_hash: &str) -> Result<(), ControlError> {
        let scopes = t
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        self.exec(
            "INSERT INTO api_tokens (id, token_hash, user_id, tenant_id, role, name, created_at,
                 expires_at, scopes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &t.id,
                &token_hash,
                &t.user_id.to_string(),
                &t.tenant_id.to_string(),
                &t.role.as_str(),
                &t.name,
                &t.created_at,
                &t.expires_at,
                &scopes,
            ],
        )?;
        Ok(())
    }

    fn live_token(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(ApiToken, User)>, ControlError> {
        let Some(token) = self.one(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens
                 WHERE token_hash = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > $2)"
            ),
            &[&token_hash, &now],
            token_from,
        )?
        else {
            return Ok(None);
        };
        Ok(self
            .user(token.user_id)?
            .filter(|u| u.disabled_at.is_none())
            .map(|user| (token, user)))
    }

    fn tokens_of(&self, user: UserId) -> Result<Vec<ApiToken>, ControlError> {
        self.all(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at"
            ),
            &[&user.to_string()],
            token_from,
        )
    }

    fn token(&self, id: &str) -> Result<Option<ApiToken>, ControlError> {
        self.one(
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"),
            &[&id],
            token_from,
        )
    }

    fn revoke_token(&self, user: UserId, id: &str, now: &str) -> Result<bool, ControlError> {
        Ok(self.exec(
            "UPDATE api_tokens SET revoked_at = $3
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            &[&id, &user.to_string(), &now],
        )? > 0)
    }

    fn touch_token(&self, id: &str, now: &str) -> Result<(), ControlError> {
        self.exec(
            "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn insert_reset(
        &self,
        token_hash: &str,
        user: UserId,
        expires_at: &str,
        now: &str,
    ) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[&token_hash, &user.to_string(), &now, &expires_at],
        )?;
        Ok(())
    }

    fn reset_usable(&self, token_hash: &str, now: &str) -> Result<bool, ControlError> {
        let found = self.one(
            "SELECT 1 FROM password_resets
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
            &[&token_hash, &now],
            |_| Ok(()),
        )?;
        Ok(found.is_some())
    }

    fn consume_reset(&self, token_hash: &str, now: &str) -> Result<Option<UserId>, ControlError> {
        let user: Option<String> = self.one(
            "UPDATE password_resets SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
            &[&token_hash, &now],
            |r| Ok(r.try_get(0)?),
        )?;
        Ok(user.and_then(|u| UserId::parse(&u).ok()))
    }

    fn insert_login_event(
        &self,
        user: UserId,
        ip: Option<&str>,
        success: bool,
        now: &str,
    ) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO login_events (user_id, at, ip, success) VALUES ($1, $2, $3, $4)",
            &[&user.to_string(), &now, &ip, &success],
        )?;
        Ok(())
    }

    fn tenant_logins(&self, tenant: TenantId, limit: u32) -> Result<Vec<LoginEvent>, ControlError> {
        self.all(
            "SELECT l.user_id, u.email, l.at, l.ip, l.success FROM login_events l
             JOIN users u ON u.id = l.user_id
             WHERE EXISTS (SELECT 1 FROM membership_periods p
                 WHERE p.tenant_id = $1 AND p.user_id = l.user_id
                   AND l.at >= p.since AND (p.until IS NULL OR l.at < p.until))
             ORDER BY l.id DESC LIMIT $2",
            &[&tenant.to_string(), &i64::from(limit)],
            login_from,
        )
    }
}
