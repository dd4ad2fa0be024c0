//! The control plane's domain types: tenants, users, memberships, sessions, tokens.
//!
//! These are what the rest of Coffer reasons with, not what goes over the wire: the HTTP
//! layer has its own response types (`http::dto`), so a column added here (a password
//! hash) never reaches a client by accident.

use serde::{Deserialize, Serialize};

use crate::names::{Email, TenantId, TenantSlug, UserId};

/// A member's role in one tenant. Ordered from most to least powerful over content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// On whose authority a change to a tenant's members is made: the object-level rules
/// (`rules::may_change_member`) depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A platform operator (CLI or operator console): not bound by member roles.
    Operator,
    /// A member of the tenant with this role.
    Member(Role),
}

/// On whose authority a change to a tenant's members is asked for: resolved into a
/// `Standing` inside the transaction that makes the change, from the actor's role at
/// that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A platform operator.
    Operator,
    /// A member; a program acting with a token is held to the token's role too.
    Member { user: UserId, ceiling: Option<Role> },
}

impl Role {
    /// How far a role reaches over members: lower is stronger.
    fn reach(self) -> u8 {
        match self {
            Role::Owner => 0,
            Role::Admin => 1,
            Role::Member => 2,
            Role::Viewer => 3,
            Role::Auditor => 4,
        }
    }

    /// The weaker of two roles (a token's role caps its member's).
    pub fn weaker(self, other: Role) -> Role {
        if other.reach() > self.reach() {
            other
        } else {
            self
        }
    }
}

/// Where a tenant is in its lifecycle (the transitions are `rules::transition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantState {
    /// In use.
    Active,
    /// Processing restricted (GDPR Art. 18): readable and exportable by people; no
    /// writes by programs, nothing handed to AI features.
    Restricted,
    /// The subscription ended: read-only for everyone, exportable, purged when due.
    Cancelled,
    /// Being purged: serves nothing; the next lifecycle run finishes an interrupted purge.
    Purging,
    /// Gone: the row is a tombstone (dates and the deletion receipt).
    Purged,
}

impl TenantState {
    pub fn as_str(&self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Restricted => "restricted",
            TenantState::Cancelled => "cancelled",
            TenantState::Purging => "purging",
            TenantState::Purged => "purged",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<TenantState> {
        Some(match s {
            "active" => TenantState::Active,
            "restricted" => TenantState::Restricted,
            "cancelled" => TenantState::Cancelled,
            "purging" => TenantState::Purging,
            "purged" => TenantState::Purged,
            _ => return None,
        })
    }

    /// True once a purge has begun: the tenant serves nothing, to anyone.
    pub fn is_gone(self) -> bool {
        matches!(self, TenantState::Purging | TenantState::Purged)
    }
}

/// The dates of a tenant's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lifecycle {
    pub state_changed_at: String,
    pub cancelled_at: Option<String>,
    /// When a cancelled tenant is due for purge.
    pub purge_after: Option<String>,
    /// Set while a legal hold blocks purge and trash expiry.
    pub legal_hold_at: Option<String>,
    pub purged_at: Option<String>,
}

/// What a purge found when it began (the receipt's counts), and its receipt once done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRecord {
    pub tenant: TenantId,
    pub started_at: String,
    pub files: u64,
    pub directories: u64,
    pub records: u64,
    pub bytes: u64,
    pub finished_at: Option<String>,
    pub receipt: Option<crate::signing::Signed>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub state: TenantState,
    pub plan: String,
    pub quota_bytes: Option<u64>,
    pub created_at: String,
    pub lifecycle: Lifecycle,
    /// The node serving it; `None` with the embedded control plane (one node serves all).
    pub placement: Option<Placement>,
}

/// Where a tenant is served when nodes share a PostgreSQL control plane: on one node at a
/// time. `epoch` grows by one each time the tenant changes node, is fenced or unfenced, so
/// a node (or a move) acting on an older placement can tell; while `fenced_at` is set (a
/// move is copying the vault) the tenant takes no writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    pub epoch: i64,
    pub fenced_at: Option<String>,
    /// When the placement last changed (placed, fenced, moved, unfenced), RFC 3339.
    pub changed_at: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub is_operator: bool,
    pub created_at: String,
    pub disabled_at: Option<String>,
    /// The argon2id (or legacy bcrypt) hash; never leaves the server.
    pub password_hash: Option<String>,
}

impl User {
    /// Invited and never set a password (nor deleted): due an invitation's code.
    pub fn awaits_password(&self) -> bool {
        self.password_hash.is_none() && self.disabled_at.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct Membership {
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
    pub created_at: String,
    pub expires_at: String,
    pub last_seen_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// An API token's stored facts (never its secret).
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: String,
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub role: Role,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Extra permissions beyond the role (see `TokenScope`).
    pub scopes: Vec<TokenScope>,
}

/// An extra permission an API token may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum TokenScope {
    /// Report AI token consumption for the tenant (an AI integration's token).
    #[serde(rename = "ai-usage")]
    AiUsage,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::AiUsage => "ai-usage",
        }
    }
    pub fn parse(s: &str) -> Option<TokenScope> {
        (s == "ai-usage").then_some(TokenScope::AiUsage)
    }
}

/// One usage figure: a tenant's `metric` on `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub day: String,
    pub metric: String,
    pub value: u64,
}

/// A login recorded for the tenant's usage data.
#[derive(Debug, Clone)]
pub struct LoginEvent {
    pub user_id: UserId,
    pub email: String,
    pub at: String,
    pub ip: Option<String>,
    pub success: bool,
}

/// A user account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: String,
    pub password_hash: Option<String>,
    pub is_operator: bool,
}

impl NewUser {
    /// Someone invited by address: no name, no password until they set one with the
    /// invitation's code.
    pub fn invited(email: &Email) -> NewUser {
        NewUser {
            email: email.clone(),
            name: String::new(),
            password_hash: None,
            is_operator: false,
        }
    }
}

/// Who owns a new tenant from its first moment.
#[derive(Debug, Clone)]
pub enum TenantOwner {
    /// An existing account.
    Existing(UserId),
    /// An account created in the same step (sign-up).
    New(NewUser),
}

/// A tenant to create: its row, and optionally its owner, made in one transaction.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: TenantSlug,
    pub name: String,
    pub quota_bytes: Option<u64>,
    pub owner: Option<TenantOwner>,
}

/// How `ControlPlane::put_member` treats an existing membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Only a new member (409 if already one).
    Add,
    /// Only an existing member's role (404 if not one).
    Change,
    /// Either (the operator CLI's `member add`).
    Upsert,
}
