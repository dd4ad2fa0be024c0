//! The control plane's object-level rules, as pure functions: who may grant which role,
//! and who may change or remove which member. The HTTP API and the CLI reach them only
//! through `ControlPlane`, which evaluates them inside the transaction that makes the
//! change, so no interleaving of two requests can break them.

use super::ControlError;
use super::model::{Role, Standing};

/// Whether `granter` may hand out `role` (to a member or an API token): never above its
/// own rank; admins cannot create owners.
pub fn may_grant(granter: Role, role: Role) -> bool {
    match granter {
        Role::Owner => true,
        Role::Admin => role != Role::Owner,
        Role::Member => matches!(role, Role::Member | Role::Viewer),
        Role::Viewer => role == Role::Viewer,
        Role::Auditor => role == Role::Auditor,
    }
}

/// Whether `by` may change a membership from `current` to `new` (`None`: not a member /
/// removed), given that the tenant has `owners` owners now.
///
/// - Only owners and admins manage members; operators are not bound by roles.
/// - An admin never touches an owner and never makes one.
/// - A tenant always keeps at least one owner.
pub fn may_change_member(
    by: Standing,
    current: Option<Role>,
    new: Option<Role>,
    owners: usize,
) -> Result<(), ControlError> {
    if let Standing::Member(role) = by {
        if !matches!(role, Role::Owner | Role::Admin) {
            return Err(ControlError::Forbidden(
                "only owners and admins manage members".into(),
            ));
        }
        if current == Some(Role::Owner) && role != Role::Owner {
            return Err(ControlError::Forbidden(
                "only owners can change or remove owners".into(),
            ));
        }
        if let Some(new) = new
            && !may_grant(role, new)
        {
            return Err(ControlError::Forbidden(format!(
                "a {} cannot grant the {} role",
                role.as_str(),
                new.as_str()
            )));
        }
    }
    if current == Some(Role::Owner) && new != Some(Role::Owner) && owners <= 1 {
        return Err(ControlError::LastOwner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn check(
        by: Standing,
        current: Option<Role>,
        new: Option<Role>,
        owners: usize,
    ) -> &'static str {
        match may_change_member(by, current, new, owners) {
            Ok(()) => "ok",
            Err(ControlError::LastOwner) => "last-owner",
            Err(ControlError::Forbidden(_)) => "forbidden",
            Err(_) => "other",
        }
    }

    #[test]
    fn member_rules_table() {
        let owner = Standing::Member(Owner);
        let admin = Standing::Member(Admin);
        let table = [
            (owner, None, Some(Owner), 1, "ok"),
            (owner, Some(Owner), Some(Admin), 2, "ok"),
            (owner, Some(Owner), Some(Admin), 1, "last-owner"),
            (owner, Some(Owner), None, 1, "last-owner"),
            (owner, Some(Owner), None, 2, "ok"),
            (admin, None, Some(Member), 1, "ok"),
            (admin, None, Some(Owner), 1, "forbidden"),
            (admin, Some(Owner), Some(Owner), 2, "forbidden"),
            (admin, Some(Owner), None, 2, "forbidden"),
            (admin, Some(Member), Some(Admin), 1, "ok"),
            (admin, Some(Viewer), None, 1, "ok"),
            (Standing::Member(Member), None, Some(Viewer), 1, "forbidden"),
            (Standing::Member(Viewer), Some(Viewer), None, 1, "forbidden"),
            (Standing::Operator, Some(Owner), None, 1, "last-owner"),
            (Standing::Operator, None, Some(Owner), 0, "ok"),
            (Standing::Operator, Some(Owner), Some(Viewer), 2, "ok"),
        ];
        for (by, current, new, owners, expect) in table {
            assert_eq!(
                check(by, current, new, owners),
                expect,
                "{by:?} {current:?} -> {new:?} with {owners} owners"
            );
        }
    }

    #[test]
    fn grants_never_exceed_the_granter() {
        assert!(may_grant(Admin, Member));
        assert!(!may_grant(Admin, Owner));
        assert!(!may_grant(Viewer, Member));
        assert!(may_grant(Member, Viewer));
        assert!(!may_grant(Member, Auditor));
        assert!(!may_grant(Auditor, Viewer));
    }
}
