//! The control plane: tenants, users, memberships, sessions and API tokens
//! (`<data-root>/control.db`).
//!
//! Storage sits behind the narrow `ControlStore` trait so that a PostgreSQL backend can
//! replace SQLite without touching `vault` or `index`. `ControlPlane` on top of it adds
//! the rules (the last owner cannot leave) and writes one audit event per mutation. The
//! control plane never holds vault content and never opens a vault.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::audit::{AuditAction, AuditLog, Caller};
use crate::db::{self, DbError, Migration, migration};
use crate::vault::path::{Email, TenantId, TenantSlug, UserId};

pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "control", "0001_control.sql"),
    migration!(2, "control", "0002_auth.sql"),
];

/// A member's role in one tenant. Ordered from most to least powerful over content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Member,
        Role::Viewer,
        Role::Auditor,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Where a tenant is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantState {
    Active,
    Restricted,
    Cancelled,
    Deleted,
}

impl TenantState {
    pub fn as_str(&self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Restricted => "restricted",
            TenantState::Cancelled => "cancelled",
            TenantState::Deleted => "deleted",
        }
    }
    fn parse(s: &str) -> TenantState {
        match s {
            "restricted" => TenantState::Restricted,
            "cancelled" => TenantState::Cancelled,
            "deleted" => TenantState::Deleted,
            _ => TenantState::Active,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    #[serde(serialize_with = "display")]
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub state: TenantState,
    pub plan: String,
    pub quota_bytes: Option<u64>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    #[serde(serialize_with = "display")]
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub is_operator: bool,
    pub created_at: String,
    pub disabled_at: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    #[serde(serialize_with = "display")]
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    #[serde(serialize_with = "display")]
    pub tenant_id: TenantId,
    pub slug: String,
    pub tenant_name: String,
    pub role: Role,
}

/// A server-side session, named by the signed token in the session cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user: User,
    pub expires_at: String,
    pub last_seen_at: String,
}

/// An API token's stored facts (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: String,
    #[serde(serialize_with = "display")]
    pub user_id: UserId,
    #[serde(serialize_with = "display")]
    pub tenant_id: TenantId,
    pub role: Role,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A login recorded for the tenant's usage data.
#[derive(Debug, Clone, Serialize)]
pub struct LoginEvent {
    #[serde(serialize_with = "display")]
    pub user_id: UserId,
    pub email: String,
    pub at: String,
    pub ip: Option<String>,
    pub success: bool,
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

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
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("control database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("audit log error: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

impl From<rusqlite::Error> for ControlError {
    fn from(e: rusqlite::Error) -> Self {
        ControlError::Sqlite(e)
    }
}

/// What a new tenant starts with.
pub struct NewTenant<'a> {
    pub slug: &'a TenantSlug,
    pub name: &'a str,
    pub quota_bytes: Option<u64>,
}

/// Storage of the control plane. Methods are plain reads and writes; rules and auditing
/// live in `ControlPlane`.
pub trait ControlStore: Send + Sync {
    fn insert_tenant(&self, id: TenantId, tenant: &NewTenant<'_>) -> Result<Tenant, ControlError>;
    fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, ControlError>;
    fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, ControlError>;
    fn tenants(&self) -> Result<Vec<Tenant>, ControlError>;
    fn delete_tenant_row(&self, id: TenantId) -> Result<(), ControlError>;

    fn insert_user(
        &self,
        email: &Email,
        name: &str,
        password_hash: Option<&str>,
        is_operator: bool,
    ) -> Result<User, ControlError>;
    fn user(&self, id: UserId) -> Result<Option<User>, ControlError>;
    fn user_by_email(&self, email: &Email) -> Result<Option<User>, ControlError>;
    fn users(&self) -> Result<Vec<User>, ControlError>;
    fn set_password_hash(&self, id: UserId, hash: &str) -> Result<(), ControlError>;

    fn membership(&self, user: UserId, tenant: TenantId) -> Result<Option<Role>, ControlError>;
    fn members(&self, tenant: TenantId) -> Result<Vec<Member>, ControlError>;
    fn memberships(&self, user: UserId) -> Result<Vec<Membership>, ControlError>;
    /// Inserts or changes a membership.
    fn put_member(&self, tenant: TenantId, user: UserId, role: Role) -> Result<(), ControlError>;
    fn delete_member(&self, tenant: TenantId, user: UserId) -> Result<bool, ControlError>;
    fn delete_user(&self, id: UserId) -> Result<(), ControlError>;

    fn insert_session(
        &self,
        id: &str,
        user: UserId,
        expires_at: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(), ControlError>;
    /// A live session (not revoked, not expired at `now`, user not disabled) with its
    /// user, in one indexed lookup.
    fn live_session(&self, id: &str, now: &str) -> Result<Option<Session>, ControlError>;
    fn touch_session(&self, id: &str, now: &str) -> Result<(), ControlError>;
    fn revoke_session(&self, id: &str, now: &str) -> Result<(), ControlError>;
    fn revoke_user_sessions(&self, user: UserId, now: &str) -> Result<usize, ControlError>;

    fn insert_token(&self, token: &ApiToken, token_hash: &str) -> Result<(), ControlError>;
    /// A live token by the hash of its secret, in one indexed lookup.
    fn live_token(&self, token_hash: &str, now: &str) -> Result<Option<ApiToken>, ControlError>;
    fn tokens_of(&self, user: UserId) -> Result<Vec<ApiToken>, ControlError>;
    fn revoke_token(&self, user: UserId, id: &str, now: &str) -> Result<bool, ControlError>;
    fn touch_token(&self, id: &str, now: &str) -> Result<(), ControlError>;

    fn insert_reset(
        &self,
        token_hash: &str,
        user: UserId,
        expires_at: &str,
    ) -> Result<(), ControlError>;
    /// Marks a reset token used and returns its user, if it is unused and unexpired.
    fn consume_reset(&self, token_hash: &str, now: &str) -> Result<Option<UserId>, ControlError>;

    fn insert_login_event(
        &self,
        user: UserId,
        ip: Option<&str>,
        success: bool,
    ) -> Result<(), ControlError>;
    /// Logins of the members of a tenant, newest first.
    fn tenant_logins(&self, tenant: TenantId, limit: u32) -> Result<Vec<LoginEvent>, ControlError>;
}

/// The SQLite implementation of `ControlStore`.
pub struct SqliteControl {
    conn: Mutex<Connection>,
}

const TENANT_COLUMNS: &str = "id, slug, name, state, plan, quota_bytes, created_at";
const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.tenant_id, t.role, t.name, t.created_at, t.last_used_at, t.expires_at, t.revoked_at";

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
    })
}

const USER_COLUMNS: &str = "id, email, name, is_operator, created_at, disabled_at, password_hash";

fn tenant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    let id: String = r.get(0)?;
    let state: String = r.get(3)?;
    Ok(Tenant {
        id: parse_id(&id, TenantId::parse)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        state: TenantState::parse(&state),
        plan: r.get(4)?,
        quota_bytes: r.get::<_, Option<i64>>(5)?.map(|q| q.max(0) as u64),
        created_at: r.get(6)?,
    })
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let id: String = r.get(0)?;
    Ok(User {
        id: parse_id(&id, UserId::parse)?,
        email: r.get(1)?,
        name: r.get(2)?,
        is_operator: r.get(3)?,
        created_at: r.get(4)?,
        disabled_at: r.get(5)?,
        password_hash: r.get(6)?,
    })
}

fn parse_id<T>(
    s: &str,
    parse: fn(&str) -> Result<T, crate::vault::path::NameError>,
) -> rusqlite::Result<T> {
    parse(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
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

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
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

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ControlStore for SqliteControl {
    fn insert_tenant(&self, id: TenantId, t: &NewTenant<'_>) -> Result<Tenant, ControlError> {
        let now = db::now();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO tenants (id, slug, name, quota_bytes, created_at, state_changed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![
                id.to_string(),
                t.slug.as_str(),
                t.name,
                t.quota_bytes.map(|q| q as i64),
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
        drop(conn);
        self.tenant(id)?.ok_or(ControlError::NotFound)
    }

    fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, ControlError> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"
            ))?
            .query_row([id.to_string()], tenant_from_row)
            .optional()?)
    }

    fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, ControlError> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = ?1"
            ))?
            .query_row([slug.as_str()], tenant_from_row)
            .optional()?)
    }

    fn tenants(&self) -> Result<Vec<Tenant>, ControlError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY slug"
        ))?;
        let rows = stmt.query_map([], tenant_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_tenant_row(&self, id: TenantId) -> Result<(), ControlError> {
        self.conn()
            .execute("DELETE FROM tenants WHERE id = ?1", [id.to_string()])?;
        Ok(())
    }

    fn insert_user(
        &self,
        email: &Email,
        name: &str,
        password_hash: Option<&str>,
        is_operator: bool,
    ) -> Result<User, ControlError> {
        let id = UserId::generate();
        self.conn()
            .execute(
                "INSERT INTO users (id, email, name, password_hash, is_operator, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id.to_string(),
                    email.as_str(),
                    name,
                    password_hash,
                    is_operator,
                    db::now()
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    ControlError::EmailTaken
                } else {
                    e.into()
                }
            })?;
        self.user(id)?.ok_or(ControlError::NotFound)
    }

    fn user(&self, id: UserId) -> Result<Option<User>, ControlError> {
        Ok(self
            .conn()
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([id.to_string()], user_from_row)
            .optional()?)
    }

    fn user_by_email(&self, email: &Email) -> Result<Option<User>, ControlError> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
            ))?
            .query_row([email.as_str()], user_from_row)
            .optional()?)
    }

    fn users(&self) -> Result<Vec<User>, ControlError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY email"))?;
        let rows = stmt.query_map([], user_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_password_hash(&self, id: UserId, hash: &str) -> Result<(), ControlError> {
        let n = self.conn().execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![id.to_string(), hash],
        )?;
        if n == 0 {
            return Err(ControlError::NotFound);
        }
        Ok(())
    }

    fn membership(&self, user: UserId, tenant: TenantId) -> Result<Option<Role>, ControlError> {
        let role: Option<String> = self
            .conn()
            .prepare_cached("SELECT role FROM memberships WHERE user_id = ?1 AND tenant_id = ?2")?
            .query_row(params![user.to_string(), tenant.to_string()], |r| r.get(0))
            .optional()?;
        Ok(role.and_then(|r| Role::parse(&r)))
    }

    fn members(&self, tenant: TenantId) -> Result<Vec<Member>, ControlError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT u.id, u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.tenant_id = ?1 ORDER BY u.email",
        )?;
        let rows = stmt.query_map([tenant.to_string()], |r| {
            let id: String = r.get(0)?;
            Ok(Member {
                user_id: parse_id(&id, UserId::parse)?,
                email: r.get(1)?,
                name: r.get(2)?,
                role: role_from(r.get(3)?)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn memberships(&self, user: UserId) -> Result<Vec<Membership>, ControlError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.id, t.slug, t.name, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.user_id = ?1 ORDER BY t.slug",
        )?;
        let rows = stmt.query_map([user.to_string()], |r| {
            let id: String = r.get(0)?;
            Ok(Membership {
                tenant_id: parse_id(&id, TenantId::parse)?,
                slug: r.get(1)?,
                tenant_name: r.get(2)?,
                role: role_from(r.get(3)?)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_member(&self, tenant: TenantId, user: UserId, role: Role) -> Result<(), ControlError> {
        self.conn().execute(
            "INSERT INTO memberships (user_id, tenant_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, tenant_id) DO UPDATE SET role = excluded.role",
            params![
                user.to_string(),
                tenant.to_string(),
                role.as_str(),
                db::now()
            ],
        )?;
        Ok(())
    }

    fn delete_member(&self, tenant: TenantId, user: UserId) -> Result<bool, ControlError> {
        Ok(self.conn().execute(
            "DELETE FROM memberships WHERE user_id = ?1 AND tenant_id = ?2",
            params![user.to_string(), tenant.to_string()],
        )? > 0)
    }

    fn delete_user(&self, id: UserId) -> Result<(), ControlError> {
        self.conn()
            .execute("DELETE FROM users WHERE id = ?1", [id.to_string()])?;
        Ok(())
    }

    fn insert_session(
        &self,
        id: &str,
        user: UserId,
        expires_at: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(), ControlError> {
        let now = db::now();
        self.conn().execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, ip, user_agent)
             VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6)",
            params![id, user.to_string(), now, expires_at, ip, user_agent],
        )?;
        Ok(())
    }

    fn live_session(&self, id: &str, now: &str) -> Result<Option<Session>, ControlError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT u.id, u.email, u.name, u.is_operator, u.created_at, u.disabled_at,
                        u.password_hash, s.id, s.expires_at, s.last_seen_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2
                   AND u.disabled_at IS NULL",
            )?
            .query_row(params![id, now], |r| {
                Ok(Session {
                    user: user_from_row(r)?,
                    id: r.get(7)?,
                    expires_at: r.get(8)?,
                    last_seen_at: r.get(9)?,
                })
            })
            .optional()?)
    }

    fn touch_session(&self, id: &str, now: &str) -> Result<(), ControlError> {
        self.conn().execute(
            "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    fn revoke_session(&self, id: &str, now: &str) -> Result<(), ControlError> {
        self.conn().execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        Ok(())
    }

    fn revoke_user_sessions(&self, user: UserId, now: &str) -> Result<usize, ControlError> {
        Ok(self.conn().execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            params![user.to_string(), now],
        )?)
    }

    fn insert_token(&self, t: &ApiToken, token_hash: &str) -> Result<(), ControlError> {
        self.conn().execute(
            "INSERT INTO api_tokens (id, token_hash, user_id, tenant_id, role, name, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                t.id,
                token_hash,
                t.user_id.to_string(),
                t.tenant_id.to_string(),
                t.role.as_str(),
                t.name,
                t.created_at,
                t.expires_at
            ],
        )?;
        Ok(())
    }

    fn live_token(&self, token_hash: &str, now: &str) -> Result<Option<ApiToken>, ControlError> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = ?1 AND t.revoked_at IS NULL
                   AND (t.expires_at IS NULL OR t.expires_at > ?2) AND u.disabled_at IS NULL"
            ))?
            .query_row(params![token_hash, now], token_from_row)
            .optional()?)
    }

    fn tokens_of(&self, user: UserId) -> Result<Vec<ApiToken>, ControlError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = ?1 ORDER BY t.created_at"
        ))?;
        let rows = stmt.query_map([user.to_string()], token_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke_token(&self, user: UserId, id: &str, now: &str) -> Result<bool, ControlError> {
        Ok(self.conn().execute(
            "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![id, user.to_string(), now],
        )? > 0)
    }

    fn touch_token(&self, id: &str, now: &str) -> Result<(), ControlError> {
        self.conn().execute(
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
    ) -> Result<(), ControlError> {
        self.conn().execute(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user.to_string(), db::now(), expires_at],
        )?;
        Ok(())
    }

    fn consume_reset(&self, token_hash: &str, now: &str) -> Result<Option<UserId>, ControlError> {
        let conn = self.conn();
        let user: Option<String> = conn
            .query_row(
                "UPDATE password_resets SET used_at = ?2
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
                params![token_hash, now],
                |r| r.get(0),
            )
            .optional()?;
        Ok(user.and_then(|u| UserId::parse(&u).ok()))
    }

    fn insert_login_event(
        &self,
        user: UserId,
        ip: Option<&str>,
        success: bool,
    ) -> Result<(), ControlError> {
        self.conn().execute(
            "INSERT INTO login_events (user_id, at, ip, success) VALUES (?1, ?2, ?3, ?4)",
            params![user.to_string(), db::now(), ip, success],
        )?;
        Ok(())
    }

    fn tenant_logins(&self, tenant: TenantId, limit: u32) -> Result<Vec<LoginEvent>, ControlError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT l.user_id, u.email, l.at, l.ip, l.success FROM login_events l
             JOIN memberships m ON m.user_id = l.user_id AND m.tenant_id = ?1
             JOIN users u ON u.id = l.user_id
             ORDER BY l.id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![tenant.to_string(), limit], |r| {
            let id: String = r.get(0)?;
            Ok(LoginEvent {
                user_id: parse_id(&id, UserId::parse)?,
                email: r.get(1)?,
                at: r.get(2)?,
                ip: r.get(3)?,
                success: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The control plane's operations with their rules and their audit events.
#[derive(Clone)]
pub struct ControlPlane {
    store: Arc<dyn ControlStore>,
    audit: AuditLog,
}

impl ControlPlane {
    pub fn new(store: Arc<dyn ControlStore>, audit: AuditLog) -> Self {
        ControlPlane { store, audit }
    }

    pub fn open(path: &Path, audit: AuditLog) -> Result<Self, ControlError> {
        Ok(ControlPlane::new(
            Arc::new(SqliteControl::open(path)?),
            audit,
        ))
    }

    /// Read access to the store.
    pub fn store(&self) -> &dyn ControlStore {
        self.store.as_ref()
    }

    /// Registers a tenant row. The caller creates its vault right after (see
    /// `Coffer::create_tenant`), and deletes the row again if that fails.
    pub fn create_tenant(
        &self,
        caller: &Caller,
        id: TenantId,
        tenant: &NewTenant<'_>,
    ) -> Result<Tenant, ControlError> {
        let created = self.store.insert_tenant(id, tenant)?;
        self.audit.append(
            &caller
                .event(AuditAction::TenantCreate)
                .tenant(id)
                .target(tenant.slug.as_str()),
        )?;
        Ok(created)
    }

    pub fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Tenant, ControlError> {
        self.store
            .tenant_by_slug(slug)?
            .ok_or(ControlError::NotFound)
    }

    pub fn create_user(
        &self,
        caller: &Caller,
        email: &Email,
        name: &str,
        password_hash: Option<&str>,
        is_operator: bool,
    ) -> Result<User, ControlError> {
        let user = self
            .store
            .insert_user(email, name, password_hash, is_operator)?;
        self.audit.append(
            &caller
                .event(AuditAction::UserCreate)
                .target(user.id.to_string())
                .detail(serde_json::json!({ "operator": is_operator })),
        )?;
        Ok(user)
    }

    pub fn user_by_email(&self, email: &Email) -> Result<User, ControlError> {
        self.store
            .user_by_email(email)?
            .ok_or(ControlError::NotFound)
    }

    /// Adds a member, or changes the role of an existing one. Demoting the last owner is
    /// refused.
    pub fn set_member(
        &self,
        caller: &Caller,
        tenant: TenantId,
        user: UserId,
        role: Role,
    ) -> Result<(), ControlError> {
        let current = self.store.membership(user, tenant)?;
        if current == Some(Role::Owner) && role != Role::Owner && self.owner_count(tenant)? <= 1 {
            return Err(ControlError::LastOwner);
        }
        self.store.put_member(tenant, user, role)?;
        let action = if current.is_some() {
            AuditAction::MemberRoleChange
        } else {
            AuditAction::MemberAdd
        };
        self.audit.append(
            &caller
                .event(action)
                .tenant(tenant)
                .target(user.to_string())
                .detail(serde_json::json!({ "role": role.as_str(),
                    "previous": current.map(|r| r.as_str()) })),
        )?;
        Ok(())
    }

    /// Removes a member; the last owner cannot be removed.
    pub fn remove_member(
        &self,
        caller: &Caller,
        tenant: TenantId,
        user: UserId,
    ) -> Result<(), ControlError> {
        let current = self
            .store
            .membership(user, tenant)?
            .ok_or(ControlError::NotMember)?;
        if current == Role::Owner && self.owner_count(tenant)? <= 1 {
            return Err(ControlError::LastOwner);
        }
        self.store.delete_member(tenant, user)?;
        self.audit.append(
            &caller
                .event(AuditAction::MemberRemove)
                .tenant(tenant)
                .target(user.to_string())
                .detail(serde_json::json!({ "role": current.as_str() })),
        )?;
        Ok(())
    }

    fn owner_count(&self, tenant: TenantId) -> Result<usize, ControlError> {
        Ok(self
            .store
            .members(tenant)?
            .iter()
            .filter(|m| m.role == Role::Owner)
            .count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;

    fn plane() -> (ControlPlane, AuditLog) {
        let audit = AuditLog::open_in_memory().unwrap();
        let store = Arc::new(SqliteControl::open_in_memory().unwrap());
        (ControlPlane::new(store, audit.clone()), audit)
    }

    #[test]
    fn last_owner_cannot_leave_or_be_demoted() {
        let (cp, audit) = plane();
        let op = Caller::new(Actor::Operator(None));
        let slug = TenantSlug::parse("acme").unwrap();
        let t = cp
            .create_tenant(
                &op,
                TenantId::generate(),
                &NewTenant {
                    slug: &slug,
                    name: "Acme",
                    quota_bytes: None,
                },
            )
            .unwrap();
        let ann = cp
            .create_user(&op, &Email::parse("ann@x.com").unwrap(), "Ann", None, false)
            .unwrap();
        let bob = cp
            .create_user(&op, &Email::parse("bob@x.com").unwrap(), "Bob", None, false)
            .unwrap();
        cp.set_member(&op, t.id, ann.id, Role::Owner).unwrap();
        assert!(matches!(
            cp.remove_member(&op, t.id, ann.id),
            Err(ControlError::LastOwner)
        ));
        assert!(matches!(
            cp.set_member(&op, t.id, ann.id, Role::Admin),
            Err(ControlError::LastOwner)
        ));
        cp.set_member(&op, t.id, bob.id, Role::Owner).unwrap();
        cp.remove_member(&op, t.id, ann.id).unwrap();
        assert_eq!(cp.store().membership(ann.id, t.id).unwrap(), None);
        // tenant, 2 users, 2 member adds, 1 removal: one event per mutation.
        assert_eq!(audit.verify().unwrap().events, 6);
        assert!(matches!(
            cp.create_tenant(
                &op,
                TenantId::generate(),
                &NewTenant {
                    slug: &slug,
                    name: "Again",
                    quota_bytes: None
                }
            ),
            Err(ControlError::SlugTaken)
        ));
        assert!(matches!(
            cp.create_user(&op, &Email::parse("ANN@x.com").unwrap(), "A", None, false),
            Err(ControlError::EmailTaken)
        ));
    }
}
