//! The control plane's object-level rules, as pure functions: who may grant which role,
//! and who may change or remove which member. The HTTP API and the CLI reach them only
//! through `ControlPlane`, which evaluates them inside the transaction that makes the
//! change, so no interleaving of two requests can break them.

use super::ControlError;
use super::model::{Role, Standing, TenantState};

/// A change of a tenant's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Restrict processing (GDPR Art. 18).
    Restrict,
    Unrestrict,
    /// End the subscription: read-only, purged after the grace period.
    Cancel,
    /// Undo a cancellation before the purge.
    Reactivate,
    /// A due purge starts: from here on the tenant serves nothing.
    BeginPurge,
    FinishPurge,
}

impl Transition {
    pub fn parse(name: &str) -> Option<Transition> {
        Some(match name {
            "restrict" => Transition::Restrict,
            "unrestrict" => Transition::Unrestrict,
            "cancel" => Transition::Cancel,
            "reactivate" => Transition::Reactivate,
            _ => return None,
        })
    }
}

/// The state a transition leads to from `from`, or `WrongState` carrying the current state.
///
/// ```text
/// active ⇄ restricted      active|restricted → cancelled → active (reactivate)
/// cancelled → purging → purged
/// ```
pub fn transition(from: TenantState, change: Transition) -> Result<TenantState, ControlError> {
    use TenantState::*;
    use Transition::*;
    match (from, change) {
        (Active, Restrict) => Ok(Restricted),
        (Restricted, Unrestrict) => Ok(Active),
        (Active | Restricted, Cancel) => Ok(Cancelled),
        (Cancelled, Reactivate) => Ok(Active),
        (Cancelled, BeginPurge) => Ok(Purging),
        (Purging, FinishPurge) => Ok(Purged),
        (current, _) => Err(ControlError::WrongState(current)),
    }
}

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
mod lifecycle_tests {
    use super::*;

    #[test]
    fn only_the_documented_transitions_exist() {
        use TenantState::*;
        use Transition::*;
        let states = [Active, Restricted, Cancelled, Purging, Purged];
        let changes = [
            Restrict,
            Unrestrict,
            Cancel,
            Reactivate,
            BeginPurge,
            FinishPurge,
        ];
        let allowed = [
            (Active, Restrict, Restricted),
            (Restricted, Unrestrict, Active),
            (Active, Cancel, Cancelled),
            (Restricted, Cancel, Cancelled),
            (Cancelled, Reactivate, Active),
            (Cancelled, BeginPurge, Purging),
            (Purging, FinishPurge, Purged),
        ];
        for from in states {
            for change in changes {
                let expected = allowed
                    .iter()
                    .find(|(f, c, _)| *f == from && *c == change)
                    .map(|(_, _, to)| *to);
                match (transition(from, change), expected) {
                    (Ok(to), Some(e)) => assert_eq!(to, e),
                    (Err(ControlError::WrongState(s)), None) => assert_eq!(s, from),
                    (got, _) => panic!("{from:?} {change:?}: {got:?}"),
                }
            }
        }
    }
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
