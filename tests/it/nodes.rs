//! Several Coffer nodes on one PostgreSQL control plane: each node its own data root,
//! every account, session, token and membership shared, and a change made on one node
//! taking effect on the others (README, "Scaling out").

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use coffer::auth::AuthError;
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::{MemberChange, NewUser, Role};
use coffer::http::{AppState, app};
use coffer::names::{Email, TenantSlug};
use tower::ServiceExt;

use crate::http::{TestApp, Who};
use crate::support::{World, new_tenant, operator, postgres};

const PASSWORD: &str = "shared control plane passphrase";

/// The configuration of `node-1` on a fresh control plane.
pub(crate) fn on_postgres(base: &str) -> Config {
    Config {
        control: Some(postgres::fresh_schema(base)),
        node: Some("node-1".into()),
        ..Config::default()
    }
}

/// Waits until `node` has heard of a change committed elsewhere since it read `before`
/// (the notification is asynchronous), so what it caches next is current.
pub(crate) fn heard_of_change(node: &Coffer, before: Option<coffer::control::ChangeStamp>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.control().change_stamp() == before || node.control().change_stamp().is_none() {
        assert!(Instant::now() < deadline, "no change notification arrived");
        std::thread::yield_now();
    }
}

/// A second node (`node-2`): its own data root, the world's control plane.
pub(crate) fn second_node(world: &World, dir: &std::path::Path) -> Coffer {
    let config = Config {
        node: Some("node-2".into()),
        ..world.coffer.config().clone()
    };
    let (node, created) = Coffer::init(&dir.join("data"), config).unwrap();
    assert!(created);
    node
}

#[test]
fn nodes_share_accounts_and_a_revocation_on_one_reaches_the_others() {
    let Some(base) = postgres::base_url("nodes_share_accounts") else {
        return;
    };
    let a = World::with_config(on_postgres(&base));
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
    let (secret, token) = a
        .coffer
        .auth()
        .issue_token(user.id, &a.alpha, Role::Viewer, "sync", None, &op)
        .unwrap();
    let cached_on_b = || {
        matches!(
            b.auth().authorize_cached(Some(&secret), None, None, None),
            Some(Ok(_))
        )
    };
    // Notices of earlier changes may still be arriving and each one drops B's cache:
    // B reads the token again until its cache holds it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cached_on_b() {
        assert!(Instant::now() < deadline, "B never cached the token");
        assert!(b.auth().authenticate_bearer(&secret).is_ok());
    }

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

    // Bookkeeping (a failed sign-in, usage times) is not a change of facts: it sends no
    // change notice, so no node's cache is emptied by a flood of it.
    let url = a.coffer.config().control.clone().unwrap();
    let notices = postgres::notices_during(&url, "coffer_control", || {
        let _ = a.coffer.auth().login(
            "ann@nodes.example",
            "wrong password",
            None,
            None,
            Instant::now(),
        );
        b.auth().authenticate_session(&session.token).unwrap();
        b.auth().flush_touches().unwrap();
    });
    assert_eq!(notices, 0, "bookkeeping sent change notices");
    // ... while a change of facts sends one.
    let notices = postgres::notices_during(&url, "coffer_control", || {
        b.auth()
            .issue_token(user.id, &a.alpha, Role::Viewer, "third", None, &op)
            .unwrap();
    });
    assert_eq!(notices, 1);
}

#[tokio::test]
async fn each_node_serves_only_its_tenants_and_a_fenced_tenant_takes_no_writes() {
    let Some(base) = postgres::base_url("each_node_serves_only_its_tenants") else {
        return;
    };
    let t = TestApp::with_world(World::with_config(on_postgres(&base)));
    let dir = tempfile::tempdir().unwrap();
    let b = second_node(&t.world, dir.path());
    let node_b = app(AppState::new(b.clone()).unwrap());
    let on_b = |req: Request<Body>| {
        let node_b = node_b.clone();
        async move { node_b.oneshot(req).await.unwrap() }
    };
    let list = "/api/v1/tenants/alpha/tree";

    // alpha lives on node-1: node-1 serves it, node-2 answers 421 naming node-1, for a
    // session and for the operator alike, and opens no vault for it.
    assert_eq!(
        t.call(Method::GET, list, Some(Who::Viewer)).await.status,
        200
    );
    let misdirected = on_b(
        t.request(Method::GET, list, Some(Who::Viewer))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(misdirected.status(), StatusCode::MISDIRECTED_REQUEST);
    let body = axum::body::to_bytes(misdirected.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "misdirected");
    assert!(
        body["detail"].as_str().unwrap().contains("node-1"),
        "{body}"
    );
    let slug = TenantSlug::parse("alpha").unwrap();
    assert!(matches!(
        b.auth().operator_access(&operator(), &slug),
        Err(AuthError::Misdirected(node)) if node == "node-1"
    ));
    // Nothing of alpha was opened on node-2 (its vault cache is empty), nor created.
    assert_eq!(b.open_vaults(), 0);
    assert!(
        !dir.path()
            .join("data/tenants")
            .join(t.world.alpha.id.to_string())
            .exists()
    );

    // Nor do node-2's operators' commands reach alpha: its usage report and its deletion
    // are refused before anything changes.
    assert!(matches!(
        b.usage_report(&t.world.alpha),
        Err(coffer::coffer::CofferError::Auth(AuthError::Misdirected(node))) if node == "node-1"
    ));
    let delete = b.operator_step(
        &operator(),
        t.world.alpha.id,
        coffer::coffer::OperatorStep::Delete,
    );
    assert!(
        matches!(
            &delete,
            Err(coffer::coffer::CofferError::Auth(AuthError::Misdirected(_)))
        ),
        "{delete:?}"
    );
    let alpha_now = b.control().tenant(t.world.alpha.id).unwrap().unwrap();
    assert_eq!(alpha_now.state, coffer::control::TenantState::Active);

    // A tenant made on node-2 is placed there: node-1 refuses it, node-2 serves it.
    let charlie = b
        .create_tenant(&operator(), new_tenant("charlie", None))
        .unwrap();
    assert_eq!(
        charlie.placement.as_ref().map(|p| p.node.as_str()),
        Some("node-2")
    );
    let charlie_slug = TenantSlug::parse("charlie").unwrap();
    assert!(b.auth().operator_access(&operator(), &charlie_slug).is_ok());
    assert!(matches!(
        t.world.coffer.auth().operator_access(&operator(), &charlie_slug),
        Err(AuthError::Misdirected(node)) if node == "node-2"
    ));
    // Each node's auditors and lifecycle see only its own tenants: no vault of the other
    // node's tenants is reported missing.
    assert_eq!(b.isolation_audit(false).unwrap().findings, vec![]);
    assert_eq!(b.isolation_audit(false).unwrap().tenants_checked, 1);
    assert_eq!(
        t.world.coffer.isolation_audit(false).unwrap().findings,
        vec![]
    );
    assert_eq!(
        t.world
            .coffer
            .isolation_audit(false)
            .unwrap()
            .tenants_checked,
        2
    );

    // A move's first step fences alpha (set here as the move does, with its change
    // notice): reads go on, writes get 503 with Retry-After; unfenced, writes work again.
    let url = t.world.coffer.config().control.clone().unwrap();
    let put = |name: &str| {
        t.request(
            Method::PUT,
            &format!("/api/v1/tenants/alpha/files/{name}"),
            Some(Who::Member),
        )
        .body(Body::from("during the move"))
        .unwrap()
    };
    let before = t.world.coffer.control().change_stamp();
    postgres::execute(
        &url,
        &format!(
            "UPDATE placements SET fenced_at = '2026-01-01T00:00:00.000Z' WHERE tenant_id = '{}';
             SELECT pg_notify('coffer_control', current_schema());",
            t.world.alpha.id
        ),
    );
    heard_of_change(&t.world.coffer, before);
    let fenced = t.send(put("fenced.txt")).await;
    assert_eq!(fenced.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(fenced.code(), "tenant-moving");
    assert!(!fenced.header("retry-after").is_empty());
    assert_eq!(
        t.call(Method::GET, list, Some(Who::Viewer)).await.status,
        200
    );
    let before = t.world.coffer.control().change_stamp();
    postgres::execute(
        &url,
        "UPDATE placements SET fenced_at = NULL; SELECT pg_notify('coffer_control', current_schema());",
    );
    heard_of_change(&t.world.coffer, before);
    assert_eq!(t.send(put("after.txt")).await.status, StatusCode::CREATED);
}

/// The paths and contents of a tenant's files as `node` serves them.
pub(crate) fn files_on(node: &Coffer, slug: &str) -> Vec<(String, Vec<u8>)> {
    let access = node
        .auth()
        .operator_access(&operator(), &TenantSlug::parse(slug).unwrap())
        .unwrap();
    let mut out = Vec::new();
    for entry in access.vault().all_entries().unwrap() {
        if entry.sha256.is_some() {
            let path = coffer::vault::path::VaultPath::parse(&entry.path).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut access.vault().open_file(&path).unwrap().file,
                &mut bytes,
            )
            .unwrap();
            out.push((entry.path, bytes));
        }
    }
    out
}

#[test]
fn a_lost_nodes_tenants_come_back_on_other_nodes_from_the_latest_backup() {
    let Some(base) = postgres::base_url("a_lost_nodes_tenants_come_back") else {
        return;
    };
    let clock = coffer::clock::ManualClock::starting_now();
    let a = World::with_clock(on_postgres(&base), clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    a.put(&a.alpha, "kept.txt", b"in the backup");
    let made = a.coffer.backup(Some(&backups)).unwrap();
    a.put(&a.alpha, "lost.txt", b"written after the backup");
    // node-1 is lost; node-2 takes alpha.
    let b = second_node(&a, dir.path());
    let op = operator();
    let alpha = TenantSlug::parse("alpha").unwrap();
    let wrong_node = a
        .coffer
        .recover_tenant(&op, &alpha, "node-2", Some(&backups));
    assert!(
        wrong_node
            .unwrap_err()
            .to_string()
            .contains("run the recovery on node node-2")
    );
    let report = b
        .recover_tenant(&op, &alpha, "node-2", Some(&backups))
        .unwrap();
    assert_eq!((report.from_node.as_str(), report.epoch), ("node-1", 3));
    assert_eq!((report.files, report.bytes), (1, 13));
    assert_eq!(report.backup_created_at, made.created_at);
    assert!(report.loss_window_secs >= 0);
    // node-2 serves what the backup held; what came after it is the stated loss.
    assert_eq!(
        files_on(&b, "alpha"),
        vec![("kept.txt".to_owned(), b"in the backup".to_vec())]
    );
    // The old node, were it to come back, serves the tenant no more.
    assert!(matches!(
        a.coffer.auth().operator_access(&op, &alpha),
        Err(AuthError::Misdirected(node)) if node == "node-2"
    ));
    // Run twice, or raced by another recovery: nothing changes the second time.
    let again = b.recover_tenant(&op, &alpha, "node-2", Some(&backups));
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("already on this node")
    );
    let stale = coffer::control::Placement {
        node: "node-1".into(),
        epoch: 1,
        fenced_at: None,
        changed_at: String::new(),
    };
    let raced =
        b.control()
            .replace_placement(&op, a.alpha.id, &stale, "node-3", serde_json::json!("test"));
    assert!(
        raced
            .unwrap_err()
            .to_string()
            .contains("placement changed meanwhile")
    );
    let placed = b
        .control()
        .tenant(a.alpha.id)
        .unwrap()
        .unwrap()
        .placement
        .unwrap();
    assert_eq!((placed.node.as_str(), placed.epoch), ("node-2", 3));
    // In node-2's audit log: the fence where alpha was, then the move, with its reason.
    let events: Vec<serde_json::Value> = b
        .audit()
        .events_for_tenant(a.alpha.id, 0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "tenant.place")
        .map(|e| e.detail.unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (&events[0]["node"], &events[0]["fenced"]),
        (&"node-1".into(), &true.into())
    );
    assert_eq!(events[1]["to"], "node-2");
    assert_eq!(events[1]["why"]["reason"], "recover");
    // node-2's auditors find alpha whole; node-1's name its leftover copy for what it is.
    assert_eq!(b.isolation_audit(false).unwrap().findings, vec![]);
    let stale = a.coffer.isolation_audit(false).unwrap().findings;
    assert_eq!(stale.len(), 1, "{stale:#?}");
    assert_eq!(
        (stale[0].check, stale[0].tenant.as_deref()),
        ("stale-copy", Some("alpha"))
    );
    assert!(stale[0].detail.contains("node-2"));
    // That copy may hold what changed after the backup: the lifecycle pass leaves it to
    // an operator, however long it stays (only copies a node sent go by themselves).
    clock.advance(time::Duration::days(30));
    let pass = a.coffer.run_lifecycle().unwrap();
    assert!(pass.moved_copies_removed.is_empty());
    assert!(
        a.data_dir()
            .join("tenants")
            .join(a.alpha.id.to_string())
            .is_dir()
    );

    // From the command line, on a third node: bravo, with the loss window printed.
    let node3 = dir.path().join("node-3.toml");
    std::fs::write(
        &node3,
        format!(
            "control = {:?}\nnode = \"node-3\"\n",
            a.coffer.config().control.clone().unwrap()
        ),
    )
    .unwrap();
    let coffer_on_3 = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
            .arg("--data-dir")
            .arg(dir.path().join("node-3-data"))
            .arg("--config")
            .arg(&node3)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(coffer_on_3(&["init"]).status.success());
    let out = coffer_on_3(&[
        "tenant",
        "recover",
        "bravo",
        "--to",
        "node-3",
        "--from",
        backups.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("bravo recovered on node-3 (epoch 3)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("seconds since that backup are lost"),
        "{stdout}"
    );
}

#[test]
fn the_control_plane_is_reached_over_tls_verified_against_the_operators_ca() {
    let Some(base) = postgres::base_url("control_over_tls") else {
        return;
    };
    let Some(ca) = postgres::ca_file("control_over_tls") else {
        return;
    };
    let url = postgres::fresh_schema(&base);
    let node = |ca: Option<std::path::PathBuf>| Config {
        control: Some(url.clone()),
        node: Some("node-1".into()),
        control_ca_file: ca,
        ..Config::default()
    };
    // With the authority that signed the database's certificate: TLS, and it works.
    let world = World::with_config(node(Some(ca)));
    let tls = postgres::query_text(
        &base,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE s.ssl AND a.application_name = 'coffer'",
    );
    assert!(
        tls.parse::<u32>().unwrap() >= 1,
        "no TLS connection from Coffer"
    );
    assert_eq!(world.coffer.control().tenants().unwrap().len(), 2);
    // With another authority, the database's certificate does not verify: no connection.
    let dir = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.path().join("other.pem"), other.cert.pem()).unwrap();
    let refused = Coffer::init(
        &dir.path().join("data"),
        node(Some(dir.path().join("other.pem"))),
    );
    let why = refused
        .err()
        .expect("an unverified server was trusted")
        .to_string();
    assert!(why.contains("unavailable"), "{why}");
    // Asking for TLS without saying whom to trust is refused, not half-done.
    let require = Config {
        control: Some(format!("{url}&sslmode=require")),
        ..node(None)
    };
    let why = Coffer::init(&dir.path().join("data2"), require)
        .err()
        .expect("sslmode=require without a CA was accepted")
        .to_string();
    assert!(why.contains("needs control_ca_file"), "{why}");
}

#[test]
fn a_control_plane_that_cannot_be_reached_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("coffer.toml");
    // Nothing listens on port 9 (discard) of loopback here.
    std::fs::write(
        &config,
        "control = \"postgres://coffer@127.0.0.1:9/coffer\"\nnode = \"node-1\"\n",
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
