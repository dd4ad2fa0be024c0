//! The SQLite implementation of the control-plane store (`<data-root>/control.db`).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::ControlError;
use super::model::{
    ApiToken, Lifecycle, LoginEvent, Member, Membership, NewUser, Role, Session, Tenant,
    TenantState, TokenScope, User,
};
use super::store::{ControlStore, ControlTx, NewSessionRow, TxWork};
use crate::db::{self, Migration, migration};
use crate::names::{Email, NameError, TenantId, TenantSlug, UserId};

mod lifecycle;
mod placement;
mod rights;
mod usage;

pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "control", "0001_control.sql"),
    migration!(2, "control", "0002_auth.sql"),
    migration!(3, "control", "0003_lifecycle.sql"),
    migration!(4, "control", "0004_backups.sql"),
    migration!(5, "control", "0005_usage.sql"),
];

pub struct SqliteControl {
    conn: Mutex<Connection>,
}

impl SqliteControl {
    pub fn open(path: &Path) -> Result<Self, ControlError> {
        Ok(SqliteControl {
            conn: Mutex::new(db::open(path, MIGRATIONS)?),
        })
    }

    pub fn open_in_memory() -> Result<Self, ControlError> {
        Ok(SqliteControl {
            conn: Mutex::new(db::open_in_memory(MIGRATIONS)?),
        })
    }
}

impl ControlStore for SqliteControl {
    fn read(&self, work: &mut TxWork<'_>) -> Result<(), ControlError> {
        let conn = db::lock(&self.conn);
        work(&Tx { conn: &conn })
    }

    fn write(&self, _announce: bool, work: &mut TxWork<'_>) -> Result<(), ControlError> {
        // Every commit changes `data_version` for the other connections: nothing to send.
        let conn = db::lock(&self.conn);
        let tx =
            rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
        work(&Tx { conn: &tx })?;
        tx.commit()?;
        Ok(())
    }

    fn shared_secret(&self, _name: &str, _candidate: &str) -> Result<Option<String>, ControlError> {
        Ok(None)
    }

    fn database_time(&self) -> Result<Option<String>, ControlError> {
        Ok(None)
    }

    fn schema_version(&self) -> Result<(u32, u32), ControlError> {
        let found = db::lock(&self.conn).pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok((found, MIGRATIONS.last().map_or(0, |m| m.version)))
    }

    fn snapshot_into(&self, path: &Path) -> Result<(), ControlError> {
        Ok(db::snapshot_into(&db::lock(&self.conn), path)?)
    }

    fn peek_external_version(&self) -> Option<i64> {
        // `data_version` changes when another connection commits; reading it touches only
        // the WAL index in shared memory. A busy connection is not waited for.
        // A cached statement: compiling the pragma was most of its cost on every request.
        let conn = self.conn.try_lock().ok()?;
        conn.prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .ok()
    }
}

struct Tx<'a> {
    conn: &'a Connection,
}

const TENANT_COLUMNS: &str = "id, slug, name, state, plan, quota_bytes, created_at, \
     state_changed_at, cancelled_at, purge_after, legal_hold_at, purged_at";
const USER_COLUMNS: &str = "id, email, name, is_operator, created_at, disabled_at, password_hash";
const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.tenant_id, t.role, t.name, t.created_at, t.last_used_at, t.expires_at, t.revoked_at, t.scopes";
const SESSION_COLUMNS: &str = "u.id, u.email, u.name, u.is_operator, u.created_at, u.disabled_at,
     u.password_hash, s.id, s.created_at, s.expires_at, s.last_seen_at, s.ip, s.user_agent";

/// The per-request lookups (a session by id, a token by hash) are single-table queries
/// followed by the user by id, never a join: SQLite re-prepares a cached joined
/// statement every time a bound value changes (measured on this build: 999 re-prepares
/// in 1,000 lookups of different tokens through the join, none through single-table
/// statements; `a_session_or_token_lookup_is_never_re_prepared`), and a re-prepare is a
/// full compile on each request that misses the auth cache.
const LIVE_SESSION: &str =
    "SELECT user_id, id, created_at, expires_at, last_seen_at, ip, user_agent
     FROM sessions WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?2";

/// A live token by its hash (see `LIVE_SESSION`).
fn live_token_sql() -> String {
    format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t
         WHERE t.token_hash = ?1 AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > ?2)"
    )
}

fn user_by_id_sql() -> String {
    format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1")
}

fn conversion(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

pub(super) fn parse_id<T>(s: &str, parse: fn(&str) -> Result<T, NameError>) -> rusqlite::Result<T> {
    parse(s).map_err(conversion)
}

fn role_from(s: String) -> rusqlite::Result<Role> {
    Role::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown role {s:?}").into(),
        )
    })
}

fn tenant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    let id: String = r.get(0)?;
    let state: String = r.get(3)?;
    Ok(Tenant {
        id: parse_id(&id, TenantId::parse)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        state: TenantState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown tenant state {state:?}").into(),
            )
        })?,
        plan: r.get(4)?,
        quota_bytes: r.get::<_, Option<i64>>(5)?.map(|q| q.max(0) as u64),
        created_at: r.get(6)?,
        lifecycle: Lifecycle {
            state_changed_at: r.get(7)?,
            cancelled_at: r.get(8)?,
            purge_after: r.get(9)?,
            legal_hold_at: r.get(10)?,
            purged_at: r.get(11)?,
        },
        placement: None,
    })
}

/// A user from columns `at..at+7` (the order of `USER_COLUMNS`).
fn user_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<User> {
    let id: String = r.get(at)?;
    Ok(User {
        id: parse_id(&id, UserId::parse)?,
        email: r.get(at + 1)?,
        name: r.get(at + 2)?,
        is_operator: r.get(at + 3)?,
        created_at: r.get(at + 4)?,
        disabled_at: r.get(at + 5)?,
        password_hash: r.get(at + 6)?,
    })
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    user_at(r, 0)
}

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiToken> {
    let user: String = r.get(1)?;
    let tenant: String = r.get(2)?;
    Ok(ApiToken {
        id: r.get(0)?,
        user_id: parse_id(&user, UserId::parse)?,
        tenant_id: parse_id(&tenant, TenantId::parse)?,
        role: role_from(r.get(3)?)?,
        name: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        expires_at: r.get(7)?,
        revoked_at: r.get(8)?,
        scopes: r
            .get::<_, String>(9)?
            .split_whitespace()
            .filter_map(TokenScope::parse)
            .collect(),
    })
}

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        user: user_at(r, 0)?,
        id: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
        last_seen_at: r.get(10)?,
        ip: r.get(11)?,
        user_agent: r.get(12)?,
    })
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

impl Tx<'_> {
    pub(super) fn all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, ControlError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, map)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, ControlError> {
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params, map)
            .optional()?)
    }
}

impl ControlTx for Tx<'_> {
    fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, ControlError> {
        self.one(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"),
            [id.to_string()],
            tenant_from_row,
        )
    }

    fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, ControlError> {
        self.one(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = ?1"),
            [slug.as_str()],
            tenant_from_row,
        )
    }

    fn tenants(&self) -> Result<Vec<Tenant>, ControlError> {
        self.all(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY slug"),
            [],
            tenant_from_row,
        )
    }

    fn update_tenant(
        &self,
        id: TenantId,
        name: Option<&str>,
        quota_bytes: Option<u64>,
    ) -> Result<bool, ControlError> {
        let changed = self.conn.execute(
            "UPDATE tenants SET name = COALESCE(?2, name), quota_bytes = COALESCE(?3, quota_bytes)
             WHERE id = ?1",
            params![
                id.to_string(),
                name,
                quota_bytes.map(|q| q.min(i64::MAX as u64) as i64)
            ],
        )?;
        Ok(changed == 1)
    }

    fn insert_tenant(
        &self,
        id: TenantId,
        slug: &TenantSlug,
        name: &str,
        quota_bytes: Option<u64>,
        now: &str,
    ) -> Result<(), ControlError> {
        self.conn
            .execute(
                "INSERT INTO tenants (id, slug, name, quota_bytes, created_at, state_changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![
                    id.to_string(),
                    slug.as_str(),
                    name,
                    quota_bytes.map(|q| q.min(i64::MAX as u64) as i64),
                    now
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    ControlError::SlugTaken
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    fn user(&self, id: UserId) -> Result<Option<User>, ControlError> {
        self.one(&user_by_id_sql(), [id.to_string()], user_from_row)
    }

    fn user_by_email(&self, email: &Email) -> Result<Option<User>, ControlError> {
        self.one(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
            [email.as_str()],
            user_from_row,
        )
    }

    fn users(&self) -> Result<Vec<User>, ControlError> {
        self.all(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY email"),
            [],
            user_from_row,
        )
    }

    fn insert_user(&self, id: UserId, user: &NewUser, now: &str) -> Result<(), ControlError> {
        self.conn
            .execute(
                "INSERT INTO users (id, email, name, password_hash, is_operator, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id.to_string(),
                    user.email.as_str(),
                    user.name,
                    user.password_hash,
                    user.is_operator,
                    now
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    ControlError::EmailTaken
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    fn set_password_hash(&self, id: UserId, hash: &str) -> Result<(), ControlError> {
        let n = self.conn.execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![id.to_string(), hash],
        )?;
        if n == 0 {
            return Err(ControlError::NotFound);
        }
        Ok(())
    }

    fn anonymise_user(&self, id: UserId, now: &str) -> Result<(), ControlError> {
        let id = id.to_string();
        // The row stays as the pseudonymous id the audit log names; nothing in it or
        // next to it identifies the person any more.
        self.conn.execute(
            "UPDATE users SET email = 'deleted-' || id || '@deleted.invalid', name = '',
                 password_hash = NULL, is_operator = 0, disabled_at = ?2
             WHERE id = ?1",
            params![id, now],
        )?;
        self.conn.execute(
            "UPDATE membership_periods SET until = ?2 WHERE user_id = ?1 AND until IS NULL",
            params![id, now],
        )?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = ?1",
            "DELETE FROM api_tokens WHERE user_id = ?1",
            "DELETE FROM password_resets WHERE user_id = ?1",
            "DELETE FROM memberships WHERE user_id = ?1",
            "UPDATE login_events SET ip = NULL WHERE user_id = ?1",
        ] {
            self.conn.execute(sql, [&id])?;
        }
        Ok(())
    }

    fn membership(&self, user: UserId, tenant: TenantId) -> Result<Option<Role>, ControlError> {
        let role: Option<String> = self.one(
            "SELECT role FROM memberships WHERE user_id = ?1 AND tenant_id = ?2",
            params![user.to_string(), tenant.to_string()],
            |r| r.get(0),
        )?;
        role.map(role_from).transpose().map_err(Into::into)
    }

    fn members(&self, tenant: TenantId) -> Result<Vec<Member>, ControlError> {
        self.all(
            "SELECT u.id, u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.tenant_id = ?1 ORDER BY u.email",
            [tenant.to_string()],
            |r| {
                let id: String = r.get(0)?;
                Ok(Member {
                    user_id: parse_id(&id, UserId::parse)?,
                    email: r.get(1)?,
                    name: r.get(2)?,
                    role: role_from(r.get(3)?)?,
                })
            },
        )
    }

    fn memberships(&self, user: UserId) -> Result<Vec<Membership>, ControlError> {
        self.all(
            "SELECT t.id, t.slug, t.name, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.user_id = ?1 ORDER BY t.slug",
            [user.to_string()],
            |r| {
                let id: String = r.get(0)?;
                Ok(Membership {
                    tenant_id: parse_id(&id, TenantId::parse)?,
                    slug: r.get(1)?,
                    tenant_name: r.get(2)?,
                    role: role_from(r.get(3)?)?,
                })
            },
        )
    }

    fn owner_count(&self, tenant: TenantId) -> Result<usize, ControlError> {
        let n: i64 = self
            .one(
                "SELECT COUNT(*) FROM memberships WHERE tenant_id = ?1 AND role = 'owner'",
                [tenant.to_string()],
                |r| r.get(0),
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
        self.conn.execute(
            "INSERT INTO memberships (user_id, tenant_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, tenant_id) DO UPDATE SET role = excluded.role",
            params![user.to_string(), tenant.to_string(), role.as_str(), now],
        )?;
        self.conn.execute(
            "INSERT INTO membership_periods (tenant_id, user_id, since)
             SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM membership_periods
                 WHERE tenant_id = ?1 AND user_id = ?2 AND until IS NULL)
             ON CONFLICT DO NOTHING",
            params![tenant.to_string(), user.to_string(), now],
        )?;
        Ok(())
    }

    fn delete_member(
        &self,
        tenant: TenantId,
        user: UserId,
        now: &str,
    ) -> Result<bool, ControlError> {
        self.conn.execute(
            "UPDATE membership_periods SET until = ?3
             WHERE tenant_id = ?1 AND user_id = ?2 AND until IS NULL",
            params![tenant.to_string(), user.to_string(), now],
        )?;
        Ok(self.conn.execute(
            "DELETE FROM memberships WHERE user_id = ?1 AND tenant_id = ?2",
            params![user.to_string(), tenant.to_string()],
        )? > 0)
    }

    fn insert_session(&self, s: &NewSessionRow<'_>, now: &str) -> Result<(), ControlError> {
        self.conn.execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, ip, user_agent)
             VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6)",
            params![s.id, s.user.to_string(), now, s.expires_at, s.ip, s.user_agent],
        )?;
        Ok(())
    }

    fn live_session(&self, id: &str, now: &str) -> Result<Option<Session>, ControlError> {
        // The session, then its user: see `LIVE_SESSION`.
        let found = self.one(LIVE_SESSION, params![id, now], |r| {
            let user: String = r.get(0)?;
            Ok((
                parse_id(&user, UserId::parse)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ),
            ))
        })?;
        let Some((user, (id, created_at, expires_at, last_seen_at, ip, user_agent))) = found else {
            return Ok(None);
        };
        Ok(self
            .user(user)?
            .filter(|u| u.disabled_at.is_none())
            .map(|user| Session {
                user,
                id,
                created_at,
                expires_at,
                last_seen_at,
                ip,
                user_agent,
            }))
    }

    fn sessions_of(&self, user: UserId, now: &str) -> Result<Vec<Session>, ControlError> {
        self.all(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.user_id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2
                 ORDER BY s.created_at"
            ),
            params![user.to_string(), now],
            session_from_row,
        )
    }

    fn touch_session(&self, id: &str, now: &str) -> Result<(), ControlError> {
        self.conn.execute(
            "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    fn revoke_session(&self, user: UserId, id: &str, now: &str) -> Result<bool, ControlError> {
        Ok(self.conn.execute(
            "UPDATE sessions SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![id, user.to_string(), now],
        )? > 0)
    }

    fn revoke_user_sessions(&self, user: UserId, now: &str) -> Result<usize, ControlError> {
        Ok(self.conn.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            params![user.to_string(), now],
        )?)
    }

    fn insert_token(&self, t: &ApiToken, token_hash: &str) -> Result<(), ControlError> {
        self.conn.execute(
            "INSERT INTO api_tokens (id, token_hash, user_id, tenant_id, role, name, created_at, expires_at, scopes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                t.id,
                token_hash,
                t.user_id.to_string(),
                t.tenant_id.to_string(),
                t.role.as_str(),
                t.name,
                t.created_at,
                t.expires_at,
                t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            ],
        )?;
        Ok(())
    }

    fn live_token(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(ApiToken, User)>, ControlError> {
        // The token, then its user: see `LIVE_SESSION`.
        let Some(token) = self.one(&live_token_sql(), params![token_hash, now], token_from_row)?
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
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = ?1 ORDER BY t.created_at"
            ),
            [user.to_string()],
            token_from_row,
        )
    }

    fn token(&self, id: &str) -> Result<Option<ApiToken>, ControlError> {
        self.one(
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.id = ?1"),
            [id],
            token_from_row,
        )
    }

    fn revoke_token(&self, user: UserId, id: &str, now: &str) -> Result<bool, ControlError> {
        Ok(self.conn.execute(
            "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![id, user.to_string(), now],
        )? > 0)
    }

    fn touch_token(&self, id: &str, now: &str) -> Result<(), ControlError> {
        self.conn.execute(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
            params![id, now],
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
        self.conn.execute(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user.to_string(), now, expires_at],
        )?;
        Ok(())
    }

    fn reset_usable(&self, token_hash: &str, now: &str) -> Result<bool, ControlError> {
        let found: Option<i64> = self.one(
            "SELECT 1 FROM password_resets
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![token_hash, now],
            |r| r.get(0),
        )?;
        Ok(found.is_some())
    }

    fn consume_reset(&self, token_hash: &str, now: &str) -> Result<Option<UserId>, ControlError> {
        let user: Option<String> = self.one(
            "UPDATE password_resets SET used_at = ?2
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
            params![token_hash, now],
            |r| r.get(0),
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
        self.conn.execute(
            "INSERT INTO login_events (user_id, at, ip, success) VALUES (?1, ?2, ?3, ?4)",
            params![user.to_string(), now, ip, success],
        )?;
        Ok(())
    }

    fn tenant_logins(&self, tenant: TenantId, limit: u32) -> Result<Vec<LoginEvent>, ControlError> {
        self.all(
            "SELECT l.user_id, u.email, l.at, l.ip, l.success FROM login_events l
             JOIN users u ON u.id = l.user_id
             WHERE EXISTS (SELECT 1 FROM membership_periods p
                 WHERE p.tenant_id = ?1 AND p.user_id = l.user_id
                   AND l.at >= p.since AND (p.until IS NULL OR l.at < p.until))
             ORDER BY l.id DESC LIMIT ?2",
            params![tenant.to_string(), limit],
            login_from_row,
        )
    }
}

/// A login event from `user_id, email, at, ip, success`.
pub(super) fn login_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LoginEvent> {
    let id: String = r.get(0)?;
    Ok(LoginEvent {
        user_id: parse_id(&id, UserId::parse)?,
        email: r.get(1)?,
        at: r.get(2)?,
        ip: r.get(3)?,
        success: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_or_token_lookup_is_never_re_prepared() {
        let store = SqliteControl::open_in_memory().unwrap();
        let conn = db::lock(&store.conn);
        let tx = Tx { conn: &conn };
        let now = "2026-01-01T00:00:00.000Z";
        let later = "2027-01-01T00:00:00.000Z";
        let user = UserId::generate();
        let new = NewUser {
            email: crate::names::Email::parse("ada@example.com").unwrap(),
            name: "Ada".into(),
            password_hash: None,
            is_operator: false,
        };
        tx.insert_user(user, &new, now).unwrap();
        let tenant = TenantId::generate();
        let slug = TenantSlug::parse("acme").unwrap();
        tx.insert_tenant(tenant, &slug, "Acme", None, now).unwrap();
        for i in 0..20 {
            let id = format!("session-{i}");
            let row = NewSessionRow {
                id: &id,
                user,
                expires_at: later,
                ip: None,
                user_agent: None,
            };
            tx.insert_session(&row, now).unwrap();
            let token = ApiToken {
                id: format!("token-{i}"),
                user_id: user,
                tenant_id: tenant,
                role: Role::Viewer,
                name: String::new(),
                created_at: now.into(),
                last_used_at: None,
                expires_at: None,
                revoked_at: None,
                scopes: Vec::new(),
            };
            tx.insert_token(&token, &format!("hash-{i}")).unwrap();
        }
        for i in 0..20 {
            assert!(
                tx.live_session(&format!("session-{i}"), now)
                    .unwrap()
                    .is_some()
            );
            assert!(tx.live_token(&format!("hash-{i}"), now).unwrap().is_some());
        }
        // The statements the lookups ran (each run 20 or 40 times, so these are the cached
        // ones, not fresh copies) were compiled once.
        let runs = [
            (LIVE_SESSION.to_owned(), 20),
            (live_token_sql(), 20),
            (user_by_id_sql(), 40),
        ];
        for (sql, expected) in runs {
            let stmt = conn.prepare_cached(&sql).unwrap();
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::Run),
                expected,
                "{sql}"
            );
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
    }
}
