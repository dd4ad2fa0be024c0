//! What each role may do inside a tenant, and what each route requires.
//!
//! The matrix below is the single source of truth; the HTTP route table names one
//! `Permission` per route. Who may grant which role to whom is a control-plane rule
//! (`control::rules`), because it is checked inside the transaction that grants it.

use crate::control::{Role, TenantState};

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Anyone, signed in or not (login, health checks, the API description).
    Public,
    /// Any signed-in user, acting on their own account.
    Authenticated,
    /// A platform operator: manages tenants and users, reads no tenant content.
    Platform,
    /// A member of the tenant named in the path, whose role allows this.
    Tenant(TenantPermission),
}

/// Permissions inside one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

impl TenantPermission {
    pub const ALL: [TenantPermission; 14] = [
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
    ];

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
        TenantState::Restricted => program && permission.writes_data(),
        TenantState::Cancelled => permission.writes_data(),
        TenantState::Purging | TenantState::Purged => true,
    };
    if refused { Err(state) } else { Ok(()) }
}

/// What an API token may do: only what both its own role and its member's *current*
/// role allow, so removing or demoting a member takes effect on their tokens at once.
pub fn token_allows(token_role: Role, member_role: Role, permission: TenantPermission) -> bool {
    role_allows(token_role, permission) && role_allows(member_role, permission)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_the_role_descriptions() {
        for p in TenantPermission::ALL {
            assert!(role_allows(Role::Owner, p), "owner {p:?}");
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

    #[test]
    fn tokens_never_exceed_their_member() {
        assert!(!token_allows(
            Role::Owner,
            Role::Viewer,
            TenantPermission::FilesWrite
        ));
        assert!(token_allows(
            Role::Owner,
            Role::Viewer,
            TenantPermission::FilesRead
        ));
        assert!(!token_allows(
            Role::Viewer,
            Role::Owner,
            TenantPermission::FilesWrite
        ));
        assert!(!token_allows(
            Role::Auditor,
            Role::Member,
            TenantPermission::AuditRead
        ));
        assert!(!token_allows(
            Role::Member,
            Role::Auditor,
            TenantPermission::FilesRead
        ));
    }
}
