//! The tenant lifecycle (P12–P14) on an injected clock: restriction refuses programs'
//! writes, cancellation makes the vault read-only and schedules the purge, the purge waits
//! for its date and for any legal hold, a purge stopped after any step never serves again
//! and is finished by the next pass, and it leaves a tombstone and a signed receipt.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use coffer::audit::{AuditAction, Caller};
use coffer::clock::{Clock, ManualClock};
use coffer::coffer::PurgeStep;
use coffer::config::Config;
use coffer::control::rules::Transition;
use coffer::control::{Role, Tenant, TenantState};
use coffer::names::{Email, TenantSlug};
use coffer::vault::path::VaultPath;
use coffer::vault::{Precondition, VaultError};

use crate::http::{TestApp, Who};
use crate::support::{World, new_tenant, operator};

fn app_at_clock() -> (TestApp, Arc<ManualClock>) {
    let clock = ManualClock::starting_now();
    let world = World::with_clock(Config::default(), clock.clone());
    (TestApp::with_world(world), clock)
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

/// An owner-role API token for `Who::Owner` in alpha.
fn owner_token(t: &TestApp) -> String {
    let control = t.world.coffer.control();
    let user = control
        .user_by_email(&Email::parse(&Who::Owner.email()).unwrap())
        .unwrap()
        .unwrap();
    t.world
        .coffer
        .auth()
        .issue_token(
            user.id,
            &t.world.alpha,
            Role::Owner,
            "integration",
            None,
            &operator(),
        )
        .unwrap()
        .0
}

async fn token_put(t: &TestApp, token: &str, path: &str) -> crate::http::Reply {
    let req = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/tenants/alpha/files/{path}"))
        .header("host", "coffer.test")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from("from a program"))
        .unwrap();
    t.send(req).await
}

async fn lifecycle(t: &TestApp, who: Who, action: &str) -> crate::http::Reply {
    t.json(
        Method::POST,
        "/api/v1/tenants/alpha/lifecycle",
        Some(who),
        serde_json::json!({ "action": action }),
    )
    .await
}

fn alpha(t: &TestApp) -> Tenant {
    t.world
        .coffer
        .control()
        .tenant(t.world.alpha.id)
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn restriction_stops_programs_writing_but_not_people() {
    let (t, _clock) = app_at_clock();
    let token = owner_token(&t);
    let restricted = lifecycle(&t, Who::Owner, "restrict").await;
    assert_eq!(restricted.status, StatusCode::OK, "{:?}", restricted.json());
    assert_eq!(restricted.json()["tenant"]["state"], "restricted");
    let shown = t
        .call(Method::GET, "/api/v1/tenants/alpha", Some(Who::Viewer))
        .await;
    assert_eq!(shown.json()["tenant"]["processing_restricted"], true);

    let refused = token_put(&t, &token, "auto.txt").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "tenant-restricted");
    assert_eq!(refused.json()["state"], "restricted");
    let by_person = t
        .put_file(
            "/api/v1/tenants/alpha/files/by-hand.txt",
            Some(Who::Member),
            b"typed",
        )
        .await;
    assert_eq!(by_person.status, StatusCode::CREATED);
    let export = t
        .call(
            Method::GET,
            "/api/v1/tenants/alpha/export",
            Some(Who::Owner),
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);

    // Only the owner, in person, changes the state; a repeated change names the state.
    assert_eq!(
        lifecycle(&t, Who::Admin, "unrestrict").await.status,
        StatusCode::FORBIDDEN
    );
    let again = lifecycle(&t, Who::Owner, "restrict").await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "wrong-state".into())
    );
    assert_eq!(again.json()["state"], "restricted");
    let by_token = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/tenants/alpha/lifecycle")
        .header("host", "coffer.test")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"action":"unrestrict"}"#))
        .unwrap();
    let reply = t.send(by_token).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:?}", reply.json());
    assert_eq!(
        lifecycle(&t, Who::Owner, "unrestrict").await.status,
        StatusCode::OK
    );
    assert_eq!(
        token_put(&t, &token, "auto.txt").await.status,
        StatusCode::CREATED
    );

    let changes: Vec<_> = t
        .world
        .coffer
        .audit()
        .events_for_tenant(t.world.alpha.id, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == AuditAction::TenantStateChange.as_str())
        .map(|e| {
            let d = e.detail.unwrap();
            (
                d["from"].as_str().unwrap().to_owned(),
                d["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        changes,
        vec![pair("active", "restricted"), pair("restricted", "active")]
    );
}

#[tokio::test]
async fn a_cancelled_tenant_is_read_only_and_exportable_until_reactivated() {
    let (t, clock) = app_at_clock();
    t.put_file(
        "/api/v1/tenants/alpha/files/keep.txt",
        Some(Who::Owner),
        b"kept",
    )
    .await;
    let cancelled = lifecycle(&t, Who::Owner, "cancel").await;
    assert_eq!(cancelled.status, StatusCode::OK);
    let due = cancelled.json()["tenant"]["purge_after"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(due, coffer::db::timestamp(clock.now() + days(30)));

    let write = t
        .put_file(
            "/api/v1/tenants/alpha/files/new.txt",
            Some(Who::Owner),
            b"x",
        )
        .await;
    assert_eq!(
        (write.status, write.code()),
        (StatusCode::CONFLICT, "tenant-cancelled".into())
    );
    let record = t
        .json(
            Method::POST,
            "/api/v1/tenants/alpha/records/notes",
            Some(Who::Owner),
            serde_json::json!({"a": 1}),
        )
        .await;
    assert_eq!(record.code(), "tenant-cancelled");
    let delete = t
        .call(
            Method::DELETE,
            "/api/v1/tenants/alpha/files/keep.txt",
            Some(Who::Owner),
        )
        .await;
    assert_eq!(delete.code(), "tenant-cancelled");
    let read = t
        .call(
            Method::GET,
            "/api/v1/tenants/alpha/files/keep.txt",
            Some(Who::Viewer),
        )
        .await;
    assert_eq!(
        (read.status, &read.body[..]),
        (StatusCode::OK, &b"kept"[..])
    );
    let export = t
        .call(
            Method::GET,
            "/api/v1/tenants/alpha/export",
            Some(Who::Owner),
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);
    // The operator's own access is read-only too: the vault itself is frozen.
    let frozen = t.world.vault(&t.world.alpha).write_file(
        &operator(),
        &VaultPath::parse("op.txt").unwrap(),
        &mut &b"x"[..],
        &Precondition::None,
    );
    assert!(matches!(frozen, Err(VaultError::Frozen)), "{frozen:?}");

    assert_eq!(
        lifecycle(&t, Who::Owner, "reactivate").await.status,
        StatusCode::OK
    );
    assert!(alpha(&t).lifecycle.purge_after.is_none());
    let write = t
        .put_file(
            "/api/v1/tenants/alpha/files/new.txt",
            Some(Who::Owner),
            b"x",
        )
        .await;
    assert_eq!(write.status, StatusCode::CREATED);
}

#[test]
fn the_purge_waits_for_its_date_and_for_a_legal_hold() {
    let clock = ManualClock::starting_now();
    let world = World::with_clock(Config::default(), clock.clone());
    let (coffer, op) = (&world.coffer, operator());
    let v = world.vault(&world.alpha);
    v.write_file(
        &op,
        &VaultPath::parse("a/b.txt").unwrap(),
        &mut &b"hello"[..],
        &Precondition::None,
    )
    .unwrap();
    let grace = coffer.purge_grace();
    coffer
        .control()
        .change_state(&op, world.alpha.id, Transition::Cancel, grace)
        .unwrap();
    drop(v);
    clock.advance(days(29));
    assert!(coffer.run_lifecycle().unwrap().purged.is_empty());
    coffer
        .control()
        .set_legal_hold(&op, world.alpha.id, true)
        .unwrap();
    clock.advance(days(2));
    let held = coffer.run_lifecycle().unwrap();
    assert!(held.ran && held.purged.is_empty(), "{held:?}");
    let refused = coffer.control().request_deletion(&op, world.alpha.id);
    assert!(matches!(
        refused,
        Err(coffer::control::ControlError::LegalHold(_))
    ));
    coffer
        .control()
        .set_legal_hold(&op, world.alpha.id, false)
        .unwrap();
    let report = coffer.run_lifecycle().unwrap();
    assert_eq!(report.purged, vec![world.alpha.id.to_string()]);
    check_purged(&world, &world.alpha, 1, 1);
}

/// What a finished purge leaves: no vault (not even a purge marker), a tombstone with a
/// free slug and no members, redacted audit targets, a verifying chain and receipt.
fn check_purged(world: &World, t: &Tenant, files: u64, directories: u64) {
    let coffer = &world.coffer;
    let tenants = world.data_dir().join("tenants");
    let left: Vec<_> = std::fs::read_dir(&tenants)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(&t.id.to_string()))
        .collect();
    assert!(left.is_empty(), "left on disk: {left:?}");
    let row = coffer.control().tenant(t.id).unwrap().unwrap();
    assert_eq!(row.state, TenantState::Purged);
    assert_eq!(
        (row.slug.as_str(), row.name.as_str()),
        (format!("purged-{}", t.id).as_str(), "")
    );
    assert!(coffer.control().members(t.id).unwrap().is_empty());
    let receipt = coffer
        .control()
        .purge_record(t.id)
        .unwrap()
        .unwrap()
        .receipt
        .unwrap();
    assert!(receipt.verifies_with(coffer.signing_key().public_key_hex()));
    let doc: serde_json::Value = serde_json::from_str(&receipt.document).unwrap();
    assert_eq!(doc["tenant_id"], t.id.to_string());
    assert_eq!(doc["destroyed"]["files"], files);
    assert_eq!(doc["destroyed"]["directories"], directories);
    assert_eq!(doc["slug_sha256"], coffer::audit::sha256_hex(&t.slug));
    let events = coffer.audit().events_for_tenant(t.id, 0, 10_000).unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.target.is_none() && e.destination.is_none())
    );
    let last = events.last().unwrap();
    assert_eq!(last.action, AuditAction::TenantPurge.as_str());
    assert_eq!(
        last.detail.as_ref().unwrap()["signature"],
        receipt.signature
    );
    assert!(coffer.audit().verify().unwrap().broken.is_none());
    // The slug is free again.
    coffer
        .create_tenant(&operator(), new_tenant(&t.slug, None))
        .unwrap();
}

#[test]
fn a_purge_stopped_after_any_step_serves_nothing_and_the_next_pass_finishes_it() {
    for step in [
        PurgeStep::Begun,
        PurgeStep::Retired,
        PurgeStep::Removed,
        PurgeStep::BackupsCleared,
        PurgeStep::Redacted,
    ] {
        let world = World::new();
        let (coffer, op) = (&world.coffer, operator());
        world
            .vault(&world.alpha)
            .write_file(
                &op,
                &VaultPath::parse("x.txt").unwrap(),
                &mut &b"x"[..],
                &Precondition::None,
            )
            .unwrap();
        let backups = world.data_dir().parent().unwrap().join("backups");
        let set = coffer.backup(Some(&backups)).unwrap().set;
        coffer
            .control()
            .request_deletion(&op, world.alpha.id)
            .unwrap();
        assert!(
            coffer
                .purge_stopping_after(&op, world.alpha.id, step)
                .unwrap()
                .is_none()
        );
        let slug = TenantSlug::parse("alpha").unwrap();
        let access = coffer.auth().operator_access(&Caller::system(), &slug);
        assert!(access.is_err(), "{step:?}: the tenant still opens");
        assert_eq!(
            coffer
                .control()
                .tenant(world.alpha.id)
                .unwrap()
                .unwrap()
                .state,
            TenantState::Purging
        );
        let report = coffer.run_lifecycle().unwrap();
        assert_eq!(report.purged, vec![world.alpha.id.to_string()], "{step:?}");
        check_purged(&world, &world.alpha, 1, 0);
        assert!(
            !set.join("tenants")
                .join(world.alpha.id.to_string())
                .exists()
        );
        let receipt = coffer
            .control()
            .purge_record(world.alpha.id)
            .unwrap()
            .unwrap()
            .receipt
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&receipt.document).unwrap();
        assert_eq!(doc["destroyed"]["backup_copies"], 1, "{step:?}");
    }
}

#[tokio::test]
async fn a_purged_tenant_answers_as_absent_and_its_sessions_go() {
    let (t, _clock) = app_at_clock();
    let token = owner_token(&t);
    t.make_owner(&t.world.bravo);
    let deleted = t
        .json(
            Method::POST,
            "/api/v1/admin/tenants/alpha/lifecycle",
            Some(Who::Operator),
            serde_json::json!({ "action": "delete" }),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.json());
    assert_eq!(deleted.json()["tenant"]["state"], "purged");
    let receipt = deleted.json()["receipt"].clone();
    let id = t.world.alpha.id.to_string();
    let fetched = t
        .call(
            Method::GET,
            &format!("/api/v1/admin/tenants/{id}/receipt"),
            Some(Who::Operator),
        )
        .await;
    assert_eq!(fetched.json(), receipt);
    // The owner also owns bravo, so stays signed in: alpha answers as if it never existed.
    let gone = t
        .call(Method::GET, "/api/v1/tenants/alpha", Some(Who::Owner))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        token_put(&t, &token, "x.txt").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Alpha's viewer belonged nowhere else: signed out. The stranger (bravo) is untouched.
    let me = t
        .call(Method::GET, "/api/v1/auth/me", Some(Who::Viewer))
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let stranger = t
        .call(
            Method::GET,
            "/api/v1/tenants/bravo/tree",
            Some(Who::Stranger),
        )
        .await;
    assert_eq!(stranger.status, StatusCode::OK);
    let again = t
        .json(
            Method::POST,
            "/api/v1/admin/tenants/alpha/lifecycle",
            Some(Who::Operator),
            serde_json::json!({ "action": "cancel" }),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "the slug is free, not the tombstone's"
    );
}

#[test]
fn trash_expires_after_its_retention_unless_held() {
    let clock = ManualClock::starting_now();
    let world = World::with_clock(Config::default(), clock.clone());
    let op = operator();
    for t in [&world.alpha, &world.bravo] {
        let v = world.vault(t);
        let path = VaultPath::parse("old.txt").unwrap();
        v.write_file(&op, &path, &mut &b"old"[..], &Precondition::None)
            .unwrap();
        v.delete(&op, &path).unwrap();
    }
    world
        .coffer
        .control()
        .set_legal_hold(&op, world.bravo.id, true)
        .unwrap();
    clock.advance(days(29));
    assert_eq!(world.coffer.run_lifecycle().unwrap().trash_items_expired, 0);
    clock.advance(days(2));
    assert_eq!(world.coffer.run_lifecycle().unwrap().trash_items_expired, 1);
    assert!(world.vault(&world.alpha).trash_list().unwrap().is_empty());
    assert_eq!(world.vault(&world.bravo).trash_list().unwrap().len(), 1);
}

#[test]
fn one_pass_at_a_time_and_expired_sessions_are_pruned() {
    let clock = ManualClock::starting_now();
    let t = TestApp::with_world(World::with_clock(Config::default(), clock.clone()));
    let coffer = &t.world.coffer;
    let hour = time::Duration::hours(1);
    let elsewhere = "another-host:4242:pass";
    assert!(
        coffer
            .control()
            .take_lease(&coffer.lifecycle_lease(), elsewhere, hour)
            .unwrap()
    );
    assert!(!coffer.run_lifecycle().unwrap().ran);
    // Leases expire on wall time: the injected clock (a drill's `--now`) moves nothing.
    clock.advance(time::Duration::hours(2));
    assert!(!coffer.run_lifecycle().unwrap().ran);
    coffer
        .control()
        .release_lease(&coffer.lifecycle_lease(), elsewhere)
        .unwrap();
    // A lease left by a process of this host that died is taken over at once.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let host = coffer::control::lease_holder()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let dead = format!("{host}:{dead_pid}:crashed-pass");
    assert!(
        coffer
            .control()
            .take_lease(&coffer.lifecycle_lease(), &dead, hour)
            .unwrap()
    );
    let report = coffer.run_lifecycle().unwrap();
    assert!(report.ran, "a dead holder's lease blocked the pass");
    assert_eq!(report.sessions_pruned, 0);
    clock.advance(days(9)); // sessions last 7 days; pruning keeps a day's margin
    let report = coffer.run_lifecycle().unwrap();
    assert_eq!(report.sessions_pruned, Who::ALL.len());
    assert_eq!(coffer.run_lifecycle().unwrap().sessions_pruned, 0);
}

#[test]
fn the_control_migration_keeps_every_row() {
    // A control database as version 2 left it, with a tenant, a member and a token.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("control.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    coffer::db::migrate(&conn, &coffer::control::MIGRATIONS[..2]).unwrap();
    conn.execute_batch(
        "INSERT INTO tenants (id, slug, name, state, created_at, state_changed_at)
           VALUES ('0123456789abcdef0123456789abcdef', 'acme', 'Acme', 'deleted', 't', 't');
         INSERT INTO users (id, email, name, created_at)
           VALUES ('fedcba9876543210fedcba9876543210', 'a@acme.test', 'A', 't');
         INSERT INTO memberships (user_id, tenant_id, role, created_at)
           VALUES ('fedcba9876543210fedcba9876543210', '0123456789abcdef0123456789abcdef', 'owner', 't');",
    )
    .unwrap();
    coffer::db::migrate(&conn, coffer::control::MIGRATIONS).unwrap();
    let (state, members): (String, i64) = conn
        .query_row(
            "SELECT state, (SELECT COUNT(*) FROM memberships) FROM tenants",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), members), ("purged", 1));
    let fk: bool = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert!(fk, "foreign keys are back on");
}
