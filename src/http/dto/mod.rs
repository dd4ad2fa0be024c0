//! The API's wire types: what clients send and receive, separate from the domain types
//! they are made from. A field reaches a client only if it is written here, so a column
//! added to a table (a password hash) never leaks by accident, and the database schema is
//! not the API. Every response type is built by a `From` of its domain type; request bodies
//! are in `requests`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::StoredEvent;
use crate::auth::NewSession;
use crate::control::{
    ApiToken, LoginEvent, Member, Membership, Role, Session, Tenant, TenantState, TokenScope, User,
};
use crate::export::import::ImportReport;
use crate::vault::ImportSummary;
use crate::vault::index::{Entry, EntryKind, Record, SearchHit, TrashItem};

// ---- responses ------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserOut {
    #[schema(examples("0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub id: String,
    #[schema(examples("ada@example.com"))]
    pub email: String,
    #[schema(examples("Ada Lovelace"))]
    pub name: String,
    pub is_operator: bool,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub created_at: String,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        UserOut {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            is_operator: u.is_operator,
            created_at: u.created_at.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantOut {
    #[schema(examples("0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub id: String,
    #[schema(examples("acme"))]
    pub slug: String,
    #[schema(examples("Ada Lovelace"))]
    pub name: String,
    pub state: TenantState,
    #[schema(examples("standard"))]
    pub plan: String,
    #[schema(examples(10_737_418_240_u64))]
    pub quota_bytes: Option<u64>,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub created_at: String,
    /// True while processing is restricted (GDPR Art. 18): an integration (AI features,
    /// automations) must check it and leave the tenant's data alone.
    pub processing_restricted: bool,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub state_changed_at: String,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub cancelled_at: Option<String>,
    /// When a cancelled tenant will be purged (export before then).
    #[schema(examples("2026-12-30T12:00:00.000Z"))]
    pub purge_after: Option<String>,
    pub legal_hold: bool,
}

impl From<&Tenant> for TenantOut {
    fn from(t: &Tenant) -> Self {
        TenantOut {
            id: t.id.to_string(),
            slug: t.slug.clone(),
            name: t.name.clone(),
            state: t.state,
            plan: t.plan.clone(),
            quota_bytes: t.quota_bytes,
            created_at: t.created_at.clone(),
            processing_restricted: t.state == TenantState::Restricted,
            state_changed_at: t.lifecycle.state_changed_at.clone(),
            cancelled_at: t.lifecycle.cancelled_at.clone(),
            purge_after: t.lifecycle.purge_after.clone(),
            legal_hold: t.lifecycle.legal_hold_at.is_some(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberOut {
    #[schema(examples("0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub user_id: String,
    #[schema(examples("ada@example.com"))]
    pub email: String,
    #[schema(examples("Ada Lovelace"))]
    pub name: String,
    pub role: Role,
}

impl From<&Member> for MemberOut {
    fn from(m: &Member) -> Self {
        MemberOut {
            user_id: m.user_id.to_string(),
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MembershipOut {
    #[schema(examples("01939a1e0c4b7d2e8f10a2b3c4d5e6f7"))]
    pub tenant_id: String,
    #[schema(examples("acme"))]
    pub slug: String,
    #[schema(examples("Acme Plumbing"))]
    pub tenant_name: String,
    pub role: Role,
}

impl From<&Membership> for MembershipOut {
    fn from(m: &Membership) -> Self {
        MembershipOut {
            tenant_id: m.tenant_id.to_string(),
            slug: m.slug.clone(),
            tenant_name: m.tenant_name.clone(),
            role: m.role,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenOut {
    #[schema(examples("0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub id: String,
    #[schema(examples("01939a1e0c4b7d2e8f10a2b3c4d5e6f7"))]
    pub tenant_id: String,
    pub role: Role,
    #[schema(examples("Ada Lovelace"))]
    pub name: String,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub created_at: String,
    #[schema(examples("2026-11-30T12:05:00.000Z"))]
    pub last_used_at: Option<String>,
    #[schema(examples("2026-12-07T12:00:00.000Z"))]
    pub expires_at: Option<String>,
    #[schema(examples("2026-12-01T09:00:00.000Z"))]
    pub revoked_at: Option<String>,
    pub scopes: Vec<TokenScope>,
}

impl From<&ApiToken> for TokenOut {
    fn from(t: &ApiToken) -> Self {
        TokenOut {
            id: t.id.clone(),
            tenant_id: t.tenant_id.to_string(),
            role: t.role,
            name: t.name.clone(),
            created_at: t.created_at.clone(),
            last_used_at: t.last_used_at.clone(),
            expires_at: t.expires_at.clone(),
            revoked_at: t.revoked_at.clone(),
            scopes: t.scopes.clone(),
        }
    }
}

/// One of the user's sessions. `id` is a public handle derived from the session id (the
/// id itself stays server-side).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionOut {
    #[schema(examples("0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub id: String,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub created_at: String,
    #[schema(examples("2026-12-07T12:00:00.000Z"))]
    pub expires_at: String,
    #[schema(examples("2026-11-30T12:05:00.000Z"))]
    pub last_seen_at: String,
    #[schema(examples("203.0.113.7"))]
    pub ip: Option<String>,
    #[schema(examples("Mozilla/5.0"))]
    pub user_agent: Option<String>,
    pub current: bool,
}

impl SessionOut {
    pub fn new(s: &Session, current_sid: Option<&str>) -> Self {
        SessionOut {
            id: session_handle(&s.id),
            created_at: s.created_at.clone(),
            expires_at: s.expires_at.clone(),
            last_seen_at: s.last_seen_at.clone(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current: current_sid == Some(s.id.as_str()),
        }
    }
}

/// The public handle of a session: a prefix of the SHA-256 of its id.
pub fn session_handle(sid: &str) -> String {
    crate::audit::sha256_hex(sid)[..32].to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginOut {
    #[schema(examples("0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub user_id: String,
    #[schema(examples("ada@example.com"))]
    pub email: String,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub at: String,
    #[schema(examples("203.0.113.7"))]
    pub ip: Option<String>,
    pub success: bool,
}

impl From<&LoginEvent> for LoginOut {
    fn from(l: &LoginEvent) -> Self {
        LoginOut {
            user_id: l.user_id.to_string(),
            email: l.email.clone(),
            at: l.at.clone(),
            ip: l.ip.clone(),
            success: l.success,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntryOut {
    #[schema(examples("jobs/2026/site.jpg"))]
    pub path: String,
    #[schema(examples("Ada Lovelace"))]
    pub name: String,
    pub kind: EntryKind,
    #[schema(examples(204800))]
    pub size: u64,
    #[schema(examples("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"))]
    pub sha256: Option<String>,
    #[schema(examples("image/jpeg"))]
    pub content_type: Option<String>,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub created_at: String,
    #[schema(examples("2026-11-30T12:05:00.000Z"))]
    pub modified_at: String,
    #[schema(examples("user:0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub modified_by: Option<String>,
}

impl From<&Entry> for EntryOut {
    fn from(e: &Entry) -> Self {
        EntryOut {
            path: e.path.clone(),
            name: e.name.clone(),
            kind: e.kind,
            size: e.size,
            sha256: e.sha256.clone(),
            content_type: e.content_type.clone(),
            created_at: e.created_at.clone(),
            modified_at: e.modified_at.clone(),
            modified_by: e.modified_by.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrashItemOut {
    #[schema(examples("0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub id: String,
    #[schema(examples("jobs/2026/site.jpg"))]
    pub original_path: String,
    pub kind: EntryKind,
    #[schema(examples(204800))]
    pub size: u64,
    #[schema(examples("2026-11-30T12:10:00.000Z"))]
    pub deleted_at: String,
    #[schema(examples("user:0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub deleted_by: Option<String>,
}

impl From<&TrashItem> for TrashItemOut {
    fn from(t: &TrashItem) -> Self {
        TrashItemOut {
            id: t.id.clone(),
            original_path: t.original_path.clone(),
            kind: t.kind,
            size: t.size,
            deleted_at: t.deleted_at.clone(),
            deleted_by: t.deleted_by.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordOut {
    #[schema(examples("clients"))]
    pub collection: String,
    #[schema(examples("0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub id: String,
    #[schema(examples(3))]
    pub version: i64,
    #[schema(value_type = Object, example = json!({"name": "Ada Lovelace", "phone": "+44 20 7946 0000"}))]
    pub body: serde_json::Value,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub created_at: String,
    #[schema(examples("2026-11-30T12:05:00.000Z"))]
    pub updated_at: String,
    #[schema(examples("user:0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub created_by: Option<String>,
    #[schema(examples("user:0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub updated_by: Option<String>,
}

impl From<&Record> for RecordOut {
    fn from(r: &Record) -> Self {
        RecordOut {
            collection: r.collection.clone(),
            id: r.id.clone(),
            version: r.version,
            body: r.body.clone(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            created_by: r.created_by.clone(),
            updated_by: r.updated_by.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchHitOut {
    #[schema(examples("record"))]
    pub kind: String,
    #[serde(rename = "ref")]
    #[schema(examples("clients/client-0042"))]
    pub reference: String,
    #[schema(examples("… replaced the [boiler] at 14 Maple Street …"))]
    pub snippet: String,
}

impl From<&SearchHit> for SearchHitOut {
    fn from(h: &SearchHit) -> Self {
        SearchHitOut {
            kind: h.kind.clone(),
            reference: h.reference.clone(),
            snippet: h.snippet.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEventOut {
    #[schema(examples(42))]
    pub seq: i64,
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub at: String,
    #[schema(examples("01939a1e0c4b7d2e8f10a2b3c4d5e6f7"))]
    pub tenant_id: Option<String>,
    #[schema(examples("user:0193b3c4d5e6f708192a3b4c5d6e7f80"))]
    pub actor: String,
    #[schema(examples("203.0.113.7"))]
    pub ip: Option<String>,
    #[schema(examples("file.write"))]
    pub action: String,
    #[schema(examples("jobs/2026/site.jpg"))]
    pub target: Option<String>,
    #[schema(examples("jobs/2026/site.jpg"))]
    pub destination: Option<String>,
    #[schema(examples("ok"))]
    pub outcome: String,
    #[schema(value_type = Option<Object>, example = json!({"bytes": 204800}))]
    pub detail: Option<serde_json::Value>,
    #[schema(examples("5d41402abc4b2a76b9719d911017c592aa4f2c3b8a1e9d0f3c2b1a0f9e8d7c6b"))]
    pub hash: String,
}

impl From<&StoredEvent> for AuditEventOut {
    fn from(e: &StoredEvent) -> Self {
        AuditEventOut {
            seq: e.seq,
            at: e.at.clone(),
            tenant_id: e.tenant_id.clone(),
            actor: e.actor.clone(),
            ip: e.ip.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            destination: e.destination.clone(),
            outcome: e.outcome.clone(),
            detail: e.detail.clone(),
            hash: e.hash.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportOut {
    /// `coffer-export` or `plain-zip`.
    #[schema(examples("coffer-export"))]
    pub kind: String,
    #[schema(examples(12))]
    pub files: u64,
    #[schema(examples(3))]
    pub dirs: u64,
    #[schema(examples(2457600))]
    pub bytes: u64,
    #[schema(examples(40))]
    pub records: u64,
    /// Paths that existed already and were kept (`conflict=skip`).
    pub skipped: Vec<String>,
}

impl From<&ImportReport> for ImportOut {
    fn from(r: &ImportReport) -> Self {
        let ImportSummary {
            files,
            dirs,
            bytes,
            records,
            skipped,
        } = &r.summary;
        ImportOut {
            kind: r.kind.to_owned(),
            files: *files,
            dirs: *dirs,
            bytes: *bytes,
            records: *records,
            skipped: skipped.clone(),
        }
    }
}

/// One page of a directory listing; `next` is the `after` of the next page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntriesPage {
    pub entries: Vec<EntryOut>,
    #[schema(examples("site-photo.jpg"))]
    pub next: Option<String>,
}

/// One page of records; `next` is the `cursor` of the next page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordsPage {
    pub records: Vec<RecordOut>,
    #[schema(examples("2026-11-30T12:05:00.000Z|client-0042"))]
    pub next: Option<String>,
}

/// One page of audit events; `next` is the `after` of the next page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventOut>,
    #[schema(examples(43))]
    pub next: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MembersOut {
    pub members: Vec<MemberOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokensOut {
    pub tokens: Vec<TokenOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionsOut {
    pub sessions: Vec<SessionOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantsOut {
    pub tenants: Vec<TenantOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantCreatedOut {
    pub tenant: TenantOut,
    /// Whether the owner had no account and was sent an invitation to set a password.
    #[schema(examples(false))]
    pub owner_invited: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsersOut {
    pub users: Vec<UserOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrashOut {
    pub items: Vec<TrashItemOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrashedOut {
    pub trashed: TrashItemOut,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HitsOut {
    pub hits: Vec<SearchHitOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CollectionsOut {
    pub collections: Vec<CollectionOut>,
}

/// The signed-in user (login, sign-up, `GET /auth/me`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub user: UserOut,
    pub memberships: Vec<MembershipOut>,
    /// Echo this in `X-CSRF-Token` on cookie-authenticated requests that change state.
    #[schema(examples("kX3v...Q"))]
    pub csrf_token: Option<String>,
    /// The token in use, for a program authenticated by one.
    pub api_token: Option<TokenOut>,
}

impl SessionInfo {
    pub fn new(session: &NewSession, memberships: &[Membership]) -> Self {
        SessionInfo {
            user: (&session.user).into(),
            memberships: memberships.iter().map(Into::into).collect(),
            csrf_token: Some(session.csrf_token.clone()),
            api_token: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignupOut {
    pub user: UserOut,
    pub tenant: TenantOut,
    #[schema(examples("kX3v...Q"))]
    pub csrf_token: String,
}

/// After a password change: the new session's CSRF token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasswordChangedOut {
    pub user: UserOut,
    #[schema(examples("kX3v...Q"))]
    pub csrf_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewTokenOut {
    /// The secret, shown this once: the credential a program keeps.
    #[schema(examples("cft_7af8cc310cf6b920bb2147184e343934_3480eb52f5122df06ee8"))]
    pub token: String,
    pub details: TokenOut,
}

/// A member added or invited.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberAddedOut {
    /// Whether a message with a one-time code to set a password was sent (someone who
    /// had no account, or never set a password).
    #[schema(examples(true))]
    pub invited: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    pub tenant: TenantOut,
    /// Your role in it.
    pub role: Option<Role>,
    /// What you may do in it now (your role, your token, the tenant's state).
    #[schema(example = json!(["tenant_read", "files_read", "search"]))]
    pub permissions: Vec<crate::auth::permission::TenantPermission>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageOut {
    #[schema(examples("acme"))]
    pub tenant: String,
    #[schema(examples(10_737_418_240_u64))]
    pub quota_bytes: Option<u64>,
    pub counters: std::collections::BTreeMap<String, i64>,
    /// Metered usage per day and metric (API calls per feature, AI tokens), last 90 days.
    pub metered: Vec<MeteredOut>,
    /// Logins of the tenant's members, including members since removed.
    pub recent_logins: Vec<LoginOut>,
}

/// One metered figure: `metric` on `day`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeteredOut {
    #[schema(examples("2026-11-30"))]
    pub day: String,
    #[schema(examples("api.files_write"))]
    pub metric: String,
    #[schema(examples(120))]
    pub value: u64,
}

impl From<&crate::control::UsageRow> for MeteredOut {
    fn from(r: &crate::control::UsageRow) -> Self {
        MeteredOut {
            day: r.day.clone(),
            metric: r.metric.clone(),
            value: r.value,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CollectionOut {
    #[schema(examples("Ada Lovelace"))]
    pub name: String,
    #[schema(examples(12))]
    pub count: u64,
}

mod requests;
pub use requests::*;
