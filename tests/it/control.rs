//! The control plane's rules under concurrency: checked inside the transaction that makes
//! the change, so no interleaving of requests can break them.

use std::sync::{Arc, Barrier};

use coffer::control::{ControlError, MemberChange, NewUser, Role, Standing};
use coffer::names::Email;

use crate::support::{World, new_tenant, operator};

/// Two owners demote each other at the same instant, from two processes' worth of
/// connections to the same data root: whatever the interleaving, a tenant never ends
/// with zero owners (issue 7).
#[test]
fn issue7_owners_demoting_each_other_never_leave_zero_owners() {
    let w = World::new();
    let op = operator();
    let user = |name: &str| {
        w.coffer
            .control()
            .create_user(
                &op,
                &NewUser {
                    email: Email::parse(&format!("{name}@race.example")).unwrap(),
                    name: name.into(),
                    password_hash: None,
                    is_operator: false,
                },
            )
            .unwrap()
    };
    let (ann, bob) = (user("ann"), user("bob"));
    let second = w.reopen();
    let mut last_owner_refusals = 0;
    for round in 0..24 {
        let t = w
            .coffer
            .create_tenant(&op, new_tenant(&format!("race-{round}"), None))
            .unwrap();
        for u in [&ann, &bob] {
            w.coffer
                .control()
                .put_member(
                    &op,
                    Standing::Operator,
                    t.id,
                    u.id,
                    Role::Owner,
                    MemberChange::Add,
                )
                .unwrap();
        }
        let barrier = Arc::new(Barrier::new(2));
        let demote = |coffer: coffer::coffer::Coffer, who: coffer::names::UserId| {
            let barrier = barrier.clone();
            let tenant = t.id;
            std::thread::spawn(move || {
                barrier.wait();
                coffer.control().put_member(
                    &operator(),
                    Standing::Member(Role::Owner),
                    tenant,
                    who,
                    Role::Admin,
                    MemberChange::Change,
                )
            })
        };
        let a = demote(w.coffer.clone(), bob.id);
        let b = demote(second.clone(), ann.id);
        let results = [a.join().unwrap(), b.join().unwrap()];
        let owners = w
            .coffer
            .control()
            .members(t.id)
            .unwrap()
            .iter()
            .filter(|m| m.role == Role::Owner)
            .count();
        assert_eq!(owners, 1, "round {round}: {results:?}");
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: exactly one demotion wins: {results:?}"
        );
        last_owner_refusals += results
            .iter()
            .filter(|r| matches!(r, Err(ControlError::LastOwner)))
            .count();
    }
    assert_eq!(last_owner_refusals, 24);
}
