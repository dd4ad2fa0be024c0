//! Several Coffer nodes on one PostgreSQL control plane: each node its own data root,
//! every account, session, token and membership shared, and a change made on one node
//! taking effect on the others (README, "Scaling out").

use std::time::{Duration, Instant};

use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::{MemberChange, NewUser, Role};
use coffer::names::Email;

use crate::support::{World, operator, postgres};

const PASSWORD: &str = "shared control plane passphrase";

/// Waits until `node` has heard of a change committed elsewhere since it read `before`
/// (the notification is asynchronous), so what it caches next is current.
fn heard_of_change(node: &Coffer, before: Option<coffer::control::ChangeStamp>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.control().change_stamp() == before || node.control().change_stamp().is_none() {
        assert!(Instant::now() < deadline, "no change notification arrived");
        std::thread::yield_now();
    }
}

/// A second node: its own data root, the world's control plane.
fn second_node(world: &World, dir: &std::path::Path) -> Coffer {
    let (node, created) = Coffer::init(&dir.join("data"), world.coffer.config().clone()).unwrap();
    assert!(created);
    node
}

#[test]
fn nodes_share_accounts_and_a_revocation_on_one_reaches_the_others() {
    let Some(base) = postgres::base_url("nodes_share_accounts") else {
        return;
    };
    let a = World::with_config(Config {
        control: Some(postgres::fresh_schema(&base)),
        ..Config::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let b = second_node(&a, dir.path());

    // An account made on node A signs in on node B, and B sees A's tenants.
    let op = operator();
    let user = a
        .coffer
        .control()
        .create_user(
            &op,
            &NewUser {
                email: Email::parse("ann@nodes.example").unwrap(),
                name: "Ann".into(),
                password_hash: Some(coffer::auth::password::hash(PASSWORD).unwrap()),
                is_operator: false,
            },
        )
        .unwrap();
    a.access(&a.alpha)
        .change_member(a.coffer.control(), user.id, Role::Viewer, MemberChange::Add)
        .unwrap();
    let slugs: Vec<String> = b
        .control()
        .tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.slug)
        .collect();
    assert_eq!(slugs, ["alpha", "bravo"]);
    let session = b
        .auth()
        .login("ann@nodes.example", PASSWORD, None, None, Instant::now())
        .unwrap();
    assert!(a.coffer.auth().authenticate_session(&session.token).is_ok());

    // A token issued on A works on B, from B's database read and then from B's cache.
    let before = b.control().change_stamp();
    let (secret, token) = a
        .coffer
        .auth()
        .issue_token(user.id, &a.alpha, Role::Viewer, "sync", None, &op)
        .unwrap();
    heard_of_change(&b, before);
    assert!(b.auth().authenticate_bearer(&secret).is_ok());
    let cached_on_b = || {
        matches!(
            b.auth().authorize_cached(Some(&secret), None, None, None),
            Some(Ok(_))
        )
    };
    assert!(cached_on_b(), "B answers a known token from its cache");

    // Revoked on A: B's database read refuses it at once, and B's cache lets go of it
    // as soon as the change notification arrives (bounded here by a generous deadline;
    // the delay is printed, not asserted).
    let stamp_before = b.control().change_stamp();
    let revoked_at = Instant::now();
    a.coffer
        .control()
        .revoke_token(&op, user.id, &token.id)
        .unwrap();
    assert!(b.auth().authenticate_bearer(&secret).is_err());
    let deadline = revoked_at + Duration::from_secs(30);
    while cached_on_b() {
        assert!(
            Instant::now() < deadline,
            "node B kept serving a token revoked on node A from its cache"
        );
        std::thread::yield_now();
    }
    eprintln!(
        "a revocation on node A reached node B's cache in {:?}",
        revoked_at.elapsed()
    );
    assert_ne!(b.control().change_stamp(), stamp_before);

    // Bookkeeping (a failed sign-in, usage) is not a change of facts: B's cache of a
    // live session stays valid while A records it.
    let before = b.control().change_stamp();
    let (secret, _) = a
        .coffer
        .auth()
        .issue_token(user.id, &a.alpha, Role::Viewer, "second", None, &op)
        .unwrap();
    heard_of_change(&b, before);
    assert!(b.auth().authenticate_bearer(&secret).is_ok());
    let _ = a.coffer.auth().login(
        "ann@nodes.example",
        "wrong password",
        None,
        None,
        Instant::now(),
    );
    a.coffer.auth().flush_touches().unwrap();
    assert!(
        matches!(
            b.auth().authorize_cached(Some(&secret), None, None, None),
            Some(Ok(_))
        ),
        "bookkeeping on A emptied B's cache"
    );
}

#[test]
fn a_control_plane_that_cannot_be_reached_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("coffer.toml");
    // Nothing listens on port 9 (discard) of loopback here.
    std::fs::write(
        &config,
        "control = \"postgres://coffer@127.0.0.1:9/coffer\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .args(["init"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("control database is unavailable"),
        "unclear error: {err}"
    );
    // Not a PostgreSQL URL: refused when the configuration is read.
    std::fs::write(&config, "control = \"mysql://db/coffer\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .args(["tenant", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("control must be a postgres:// URL"), "{err}");
}
