//! What each role may do inside a tenant, and what each route requires.
//!
//! The matrix below is the single source of truth; the HTTP route table names one
//! `Permission` per route. Who may grant which role to whom is a control-plane rule
//! (`control::rules`), because it is checked inside the transaction that grants it.

use crate::control::{ApiToken, Placement, Role, TenantState, TokenScope};

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Anyone, signed in or not (login, health checks, the API description).
    Public,
    /// A metrics scraper: any request on the separate `metrics_listen` address, or one
    /// bearing `metrics_token` on the main one. Nobody else, signed in or not.
    Metrics,
    /// Any signed-in user, acting on their own account.
    Authenticated,
    /// A platform operator: manages tenants and users, reads no tenant content.
    Platform,
    /// A member of the tenant named in the path, whose role allows this.
    Tenant(TenantPermission),
    /// Another node sharing the control plane, with a node token (signed with the
    /// cluster's node key) for the tenant in the path; nobody else, signed in or not.
    Node,
}

/// Permissions inside one tenant (on the wire, their `as_str` names: a client shows only
/// the controls its caller holds).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TenantPermission {
    TenantRead,
    MembersRead,
    MembersManage,
    FilesRead,
    FilesWrite,
    TrashPurge,
    RecordsRead,
    RecordsWrite,
    Search,
    AuditRead,
    UsageRead,
    Export,
    Import,
    /// Restrict, unrestrict, cancel or reactivate the tenant.
    Lifecycle,
    /// Report AI token consumption: only an API token with the `ai-usage` scope.
    UsageReport,
}

impl TenantPermission {
    pub const ALL: [TenantPermission; 15] = [
        TenantPermission::TenantRead,
        TenantPermission::MembersRead,
        TenantPermission::MembersManage,
        TenantPermission::FilesRead,
        TenantPermission::FilesWrite,
        TenantPermission::TrashPurge,
        TenantPermission::RecordsRead,
        TenantPermission::RecordsWrite,
        TenantPermission::Search,
        TenantPermission::AuditRead,
        TenantPermission::UsageRead,
        TenantPermission::Export,
        TenantPermission::Import,
        TenantPermission::Lifecycle,
        TenantPermission::UsageReport,
    ];

    /// The feature name usage is metered under (`api.<name>`).
    pub fn as_str(self) -> &'static str {
        use TenantPermission::*;
        match self {
            TenantRead => "tenant_read",
            MembersRead => "members_read",
            MembersManage => "members_manage",
            FilesRead => "files_read",
            FilesWrite => "files_write",
            TrashPurge => "trash_purge",
            RecordsRead => "records_read",
            RecordsWrite => "records_write",
            Search => "search",
            AuditRead => "audit_read",
            UsageRead => "usage_read",
            Export => "export",
            Import => "import",
            Lifecycle => "lifecycle",
            UsageReport => "usage_report",
        }
    }

    /// True for the permissions that change the tenant's data.
    pub fn writes_data(self) -> bool {
        use TenantPermission::*;
        matches!(self, FilesWrite | RecordsWrite | TrashPurge | Import)
    }
}

/// The RBAC matrix. Owner: everything. Admin: all data and members (but not owners, an
/// object-level rule enforced where members are changed). Member: read and write files
/// and records, search. Viewer: read only. Auditor: the audit log and usage, no content.
pub fn role_allows(role: Role, permission: TenantPermission) -> bool {
    use Role::*;
    use TenantPermission::*;
    match permission {
        TenantRead => true,
        MembersRead | MembersManage | TrashPurge | Export => matches!(role, Owner | Admin),
        FilesRead | RecordsRead | Search => matches!(role, Owner | Admin | Member | Viewer),
        FilesWrite | RecordsWrite => matches!(role, Owner | Admin | Member),
        AuditRead | UsageRead => matches!(role, Owner | Admin | Auditor),
        Import | Lifecycle => role == Owner,
        // No person reports AI usage: only an integration's scoped token (`token_allows`).
        UsageReport => false,
    }
}

/// Whether a tenant in `state` allows `permission` (which the role already allows), for a
/// person or for a program (an API token): a restricted tenant takes no data writes from
/// programs (P13: no processing by automations); a cancelled one takes none from anyone
/// (it stays readable and exportable until its purge); a purging or purged one serves
/// nothing. The refusal carries the state.
pub fn state_allows(
    state: TenantState,
    permission: TenantPermission,
    program: bool,
) -> Result<(), TenantState> {
    let refused = match state {
        TenantState::Active => false,
        // Restricted processing: nothing handed to AI features, whoever asks; no change by
        // a program (people may still work, and export; lifecycle changes need a person
        // anyway).
        TenantState::Restricted => {
            permission == TenantPermission::UsageReport
                || (program
                    && (permission.writes_data() || permission == TenantPermission::MembersManage))
        }
        TenantState::Cancelled => {
            permission.writes_data() || permission == TenantPermission::UsageReport
        }
        TenantState::Purging | TenantState::Purged => true,
    };
    if refused { Err(state) } else { Ok(()) }
}

/// Why this node may not serve a tenant now (nodes sharing a PostgreSQL control plane):
/// it is placed on another node, or a move has fenced it and `permission` changes data.
/// `None` for the operator's own access, which the fence does not stop (the move itself
/// reads through it). Without a placement (the embedded control plane) this node serves
/// every tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementRefusal {
    Elsewhere(String),
    Fenced,
}

pub fn placement_allows(
    placement: Option<&Placement>,
    here: Option<&str>,
    permission: Option<TenantPermission>,
) -> Result<(), PlacementRefusal> {
    let Some(placement) = placement else {
        return Ok(());
    };
    if here != Some(placement.node.as_str()) {
        return Err(PlacementRefusal::Elsewhere(placement.node.clone()));
    }
    if placement.fenced_at.is_some() && permission.is_some_and(TenantPermission::writes_data) {
        return Err(PlacementRefusal::Fenced);
    }
    Ok(())
}

/// What an API token may do: only what both its own role and its member's *current*
/// role allow, so removing or demoting a member takes effect on their tokens at once.
/// A token's `ai-usage` scope adds `UsageReport` alone, and only while its member may
/// still read the tenant's usage.
pub fn token_allows(token: &ApiToken, member_role: Role, permission: TenantPermission) -> bool {
    if permission == TenantPermission::UsageReport {
        return token.scopes.contains(&TokenScope::AiUsage)
            && role_allows(member_role, TenantPermission::UsageRead);
    }
    role_allows(token.role, permission) && role_allows(member_role, permission)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_metered_names() {
        for p in TenantPermission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }

    #[test]
    fn matrix_matches_the_role_descriptions() {
        for p in TenantPermission::ALL {
            let in_person = p != TenantPermission::UsageReport;
            assert_eq!(role_allows(Role::Owner, p), in_person, "owner {p:?}");
        }
        assert!(!role_allows(Role::Admin, TenantPermission::Import));
        assert!(!role_allows(Role::Member, TenantPermission::MembersManage));
        assert!(role_allows(Role::Member, TenantPermission::FilesWrite));
        assert!(!role_allows(Role::Viewer, TenantPermission::FilesWrite));
        assert!(role_allows(Role::Viewer, TenantPermission::Search));
        for content in [
            TenantPermission::FilesRead,
            TenantPermission::RecordsRead,
            TenantPermission::Search,
        ] {
            assert!(!role_allows(Role::Auditor, content));
        }
        assert!(role_allows(Role::Auditor, TenantPermission::AuditRead));
    }

    fn token(role: Role, scopes: Vec<TokenScope>) -> ApiToken {
        ApiToken {
            id: "t".into(),
            user_id: crate::names::UserId::generate(),
            tenant_id: crate::names::TenantId::generate(),
            role,
            name: "t".into(),
            created_at: String::new(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
            scopes,
        }
    }

    #[test]
    fn tokens_never_exceed_their_member() {
        use TenantPermission::*;
        let t = |role| token(role, Vec::new());
        assert!(!token_allows(&t(Role::Owner), Role::Viewer, FilesWrite));
        assert!(token_allows(&t(Role::Owner), Role::Viewer, FilesRead));
        assert!(!token_allows(&t(Role::Viewer), Role::Owner, FilesWrite));
        assert!(!token_allows(&t(Role::Auditor), Role::Member, AuditRead));
        assert!(!token_allows(&t(Role::Member), Role::Auditor, FilesRead));
    }

    #[test]
    fn only_a_scoped_token_reports_ai_usage_and_never_while_restricted() {
        use TenantPermission::UsageReport;
        for role in [
            Role::Owner,
            Role::Admin,
            Role::Member,
            Role::Viewer,
            Role::Auditor,
        ] {
            assert!(!role_allows(role, UsageReport), "{role:?} in person");
        }
        let scoped = token(Role::Viewer, vec![TokenScope::AiUsage]);
        assert!(token_allows(&scoped, Role::Admin, UsageReport));
        assert!(
            !token_allows(&scoped, Role::Member, UsageReport),
            "its member cannot see usage"
        );
        assert!(!token_allows(
            &token(Role::Owner, Vec::new()),
            Role::Owner,
            UsageReport
        ));
        assert!(
            !token_allows(&scoped, Role::Admin, TenantPermission::FilesWrite),
            "a viewer token"
        );
        assert!(state_allows(TenantState::Active, UsageReport, true).is_ok());
        assert!(state_allows(TenantState::Restricted, UsageReport, true).is_err());
        assert!(state_allows(TenantState::Restricted, UsageReport, false).is_err());
        assert!(state_allows(TenantState::Cancelled, UsageReport, true).is_err());
        let members = TenantPermission::MembersManage;
        assert!(
            state_allows(TenantState::Restricted, members, true).is_err(),
            "no program changes"
        );
        assert!(state_allows(TenantState::Restricted, members, false).is_ok());
    }
}
