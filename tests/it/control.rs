//! The control plane's rules under concurrency: checked inside the transaction that makes
//! the change, so no interleaving of requests can break them.

use std::sync::{Arc, Barrier};
use std::time::Instant;

use coffer::auth::permission::TenantPermission;
use coffer::control::{ControlError, MemberChange, NewUser, Role};
use coffer::names::{Email, UserId};

use crate::support::{World, new_tenant, operator};

const PASSWORD: &str = "race condition passphrase";

/// Two owners demote each other at the same instant, each on their own authority and
/// each through its own connection to the data root (as two server processes would):
/// whatever the interleaving, exactly one demotion wins and the tenant keeps an owner
/// (issue 7).
#[test]
fn issue7_owners_demoting_each_other_never_leave_zero_owners() {
    let w = World::new();
    let op = operator();
    let hash = coffer::auth::password::hash(PASSWORD).unwrap();
    let user = |name: &str| {
        w.coffer
            .control()
            .create_user(
                &op,
                &NewUser {
                    email: Email::parse(&format!("{name}@race.example")).unwrap(),
                    name: name.into(),
                    password_hash: Some(hash.clone()),
                    is_operator: false,
                },
            )
            .unwrap()
    };
    let (ann, bob) = (user("ann"), user("bob"));
    let second = w.reopen();
    let mut last_owner_refusals = 0;
    for round in 0..24 {
        let slug = format!("race-{round}");
        let t = w
            .coffer
            .create_tenant(&op, new_tenant(&slug, None))
            .unwrap();
        for u in [&ann, &bob] {
            w.access(&t)
                .change_member(w.coffer.control(), u.id, Role::Owner, MemberChange::Add)
                .unwrap();
        }
        let barrier = Arc::new(Barrier::new(2));
        let demote = |coffer: coffer::coffer::Coffer, actor: &str, victim: UserId| {
            let barrier = barrier.clone();
            let (slug, email) = (slug.clone(), format!("{actor}@race.example"));
            std::thread::spawn(move || {
                let auth = coffer.auth();
                let session = auth
                    .login(&email, PASSWORD, None, None, Instant::now())
                    .unwrap();
                let me = auth.authenticate_session(&session.token).unwrap();
                let access = auth
                    .tenant_access(&me, &slug, TenantPermission::MembersManage, None)
                    .unwrap();
                barrier.wait();
                access.change_member(coffer.control(), victim, Role::Admin, MemberChange::Change)
            })
        };
        let a = demote(w.coffer.clone(), "ann", bob.id);
        let b = demote(second.clone(), "bob", ann.id);
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
        // The loser was refused either as the last owner or, having just been demoted,
        // as no longer an owner: its authority is read inside the transaction.
        last_owner_refusals += results
            .iter()
            .filter(|r| matches!(r, Err(ControlError::LastOwner | ControlError::Forbidden(_))))
            .count();
    }
    assert_eq!(last_owner_refusals, 24);
}

/// An owner demoted to admin a moment ago can no longer touch owners, even with the
/// access it obtained before the demotion (issue 7).
#[test]
fn issue7_an_actors_own_role_is_read_when_the_change_is_made() {
    let w = World::new();
    let op = operator();
    let hash = coffer::auth::password::hash(PASSWORD).unwrap();
    let mk = |name: &str| {
        w.coffer
            .control()
            .create_user(
                &op,
                &NewUser {
                    email: Email::parse(&format!("{name}@stale.example")).unwrap(),
                    name: name.into(),
                    password_hash: Some(hash.clone()),
                    is_operator: false,
                },
            )
            .unwrap()
    };
    let (ann, bob, cat) = (mk("ann"), mk("bob"), mk("cat"));
    let t = w
        .coffer
        .create_tenant(&op, new_tenant("stale", None))
        .unwrap();
    for (u, role) in [
        (&ann, Role::Owner),
        (&bob, Role::Owner),
        (&cat, Role::Owner),
    ] {
        w.access(&t)
            .change_member(w.coffer.control(), u.id, role, MemberChange::Add)
            .unwrap();
    }
    let auth = w.coffer.auth();
    let session = auth
        .login("ann@stale.example", PASSWORD, None, None, Instant::now())
        .unwrap();
    let me = auth.authenticate_session(&session.token).unwrap();
    let ann_access = auth
        .tenant_access(&me, "stale", TenantPermission::MembersManage, None)
        .unwrap();
    // Bob demotes Ann to admin; Ann's earlier access must not let her demote Cat.
    w.access(&t)
        .change_member(
            w.coffer.control(),
            ann.id,
            Role::Admin,
            MemberChange::Change,
        )
        .unwrap();
    let refused = ann_access.change_member(
        w.coffer.control(),
        cat.id,
        Role::Viewer,
        MemberChange::Change,
    );
    assert!(
        matches!(refused, Err(ControlError::Forbidden(_))),
        "{refused:?}"
    );
    let _ = bob;
}
