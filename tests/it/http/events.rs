//! Every mutation through the API writes its audit events, exactly, with the right
//! action and target; reads write none.

use axum::body::Body;
use axum::http::{Method, StatusCode};

use super::{PASSWORD, Reply, TestApp, Who};
use crate::support::zipgen::{RawEntry, build};

/// The events written since `after`, as (action, target).
fn events_since(t: &TestApp, after: i64) -> Vec<(String, Option<String>)> {
    t.world
        .coffer
        .audit()
        .events_after(after, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.target))
        .collect()
}

fn last(t: &TestApp) -> i64 {
    t.world.coffer.audit().last_seq().unwrap()
}

/// Runs one call and checks that exactly these events (action, target) were written.
async fn expect<F, Fut>(t: &TestApp, what: &str, want: &[(&str, Option<&str>)], call: F) -> Reply
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let before = last(t);
    let reply = call().await;
    assert!(
        reply.status.is_success(),
        "{what}: {} {:?}",
        reply.status,
        reply.json()
    );
    let got = events_since(t, before);
    let want: Vec<(String, Option<String>)> = want
        .iter()
        .map(|(a, target)| ((*a).to_owned(), target.map(str::to_owned)))
        .collect();
    assert_eq!(got, want, "{what}");
    reply
}

/// Issue 7: records, import, reindex, tokens, members, sessions and tenants, through the
/// API, each with its one event (or the exact events of a compound change) and target.
#[tokio::test]
async fn issue7_every_mutation_through_the_api_writes_exactly_its_events() {
    let app = TestApp::new();
    let t = &app;
    let api = "/api/v1/tenants/alpha";
    let o = Some(Who::Owner);
    // Files.
    expect(
        t,
        "upload",
        &[("file.write", Some("docs/a.txt"))],
        || async move {
            t.put_file(&format!("{api}/files/docs/a.txt"), o, b"hello")
                .await
        },
    )
    .await;
    expect(
        t,
        "mkdir",
        &[("dir.create", Some("empty"))],
        || async move {
            t.json(
                Method::POST,
                &format!("{api}/dirs"),
                o,
                serde_json::json!({ "path": "empty" }),
            )
            .await
        },
    )
    .await;
    expect(
        t,
        "move",
        &[("file.move", Some("docs/a.txt"))],
        || async move {
            t.json(
                Method::POST,
                &format!("{api}/move"),
                o,
                serde_json::json!({ "from": "docs/a.txt", "to": "docs/b.txt" }),
            )
            .await
        },
    )
    .await;
    let trashed = expect(
        t,
        "delete",
        &[("file.delete", Some("docs/b.txt"))],
        || async move {
            t.call(Method::DELETE, &format!("{api}/files/docs/b.txt"), o)
                .await
        },
    )
    .await;
    let id = trashed.json()["trashed"]["id"].as_str().unwrap().to_owned();
    expect(
        t,
        "restore",
        &[("file.restore", Some("docs/b.txt"))],
        || async move {
            t.call(Method::POST, &format!("{api}/trash/{id}/restore"), o)
                .await
        },
    )
    .await;
    // Records.
    expect(
        t,
        "record create",
        &[("record.create", Some("clients/c1"))],
        || async move {
            t.json(
                Method::POST,
                &format!("{api}/records/clients?id=c1"),
                o,
                serde_json::json!({ "name": "Ada" }),
            )
            .await
        },
    )
    .await;
    expect(
        t,
        "record replace",
        &[("record.update", Some("clients/c1"))],
        || async move {
            t.send(
                t.request(Method::PUT, &format!("{api}/records/clients/c1"), o)
                    .header("content-type", "application/json")
                    .header("if-match", "\"1\"")
                    .body(Body::from(r#"{"name":"Ada L."}"#))
                    .unwrap(),
            )
            .await
        },
    )
    .await;
    expect(
        t,
        "record patch",
        &[("record.update", Some("clients/c1"))],
        || async move {
            t.send(
                t.request(Method::PATCH, &format!("{api}/records/clients/c1"), o)
                    .header("content-type", "application/merge-patch+json")
                    .body(Body::from(r#"{"city":"Leeds"}"#))
                    .unwrap(),
            )
            .await
        },
    )
    .await;
    expect(
        t,
        "record delete",
        &[("record.delete", Some("clients/c1"))],
        || async move {
            t.call(Method::DELETE, &format!("{api}/records/clients/c1"), o)
                .await
        },
    )
    .await;
    // Import.
    let archive = build(&[RawEntry::file("imported/x.txt", b"x")]);
    expect(
        t,
        "import",
        &[("vault.import", Some("files"))],
        || async move {
            t.send(
                t.request(Method::POST, &format!("{api}/import"), o)
                    .header("content-type", "application/zip")
                    .body(Body::from(archive))
                    .unwrap(),
            )
            .await
        },
    )
    .await;
    // Reindex (an operator's command): one event.
    let before = last(t);
    t.world
        .vault(&t.world.alpha)
        .reindex(&crate::support::operator())
        .unwrap();
    assert_eq!(
        events_since(t, before),
        [("vault.reindex".to_owned(), Some("files".to_owned()))]
    );
    // Members.
    let stranger = t.actor(Who::Stranger).user_id.as_str();
    expect(
        t,
        "member add",
        &[("member.add", Some(stranger))],
        || async move {
            t.json(
                Method::POST,
                &format!("{api}/members"),
                o,
                serde_json::json!({ "email": "stranger@test.example", "role": "viewer" }),
            )
            .await
        },
    )
    .await;
    expect(
        t,
        "member change",
        &[("member.role_change", Some(stranger))],
        || async move {
            t.json(
                Method::PATCH,
                &format!("{api}/members/{stranger}"),
                o,
                serde_json::json!({ "role": "member" }),
            )
            .await
        },
    )
    .await;
    expect(
        t,
        "member remove",
        &[("member.remove", Some(stranger))],
        || async move {
            t.call(Method::DELETE, &format!("{api}/members/{stranger}"), o)
                .await
        },
    )
    .await;
    // Tokens.
    let before = last(t);
    let minted = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            o,
            serde_json::json!({ "tenant": "alpha", "role": "viewer" }),
        )
        .await;
    let token_id = minted.json()["details"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        events_since(t, before),
        [("token.create".to_owned(), Some(token_id.clone()))]
    );
    let token_id = token_id.as_str();
    expect(
        t,
        "token revoke",
        &[("token.revoke", Some(token_id))],
        || async move {
            t.call(
                Method::DELETE,
                &format!("/api/v1/auth/tokens/{token_id}"),
                o,
            )
            .await
        },
    )
    .await;
    // Sessions: a login, a password change (which opens the caller's new session), a
    // logout.
    let owner_id = t.actor(Who::Owner).user_id.as_str();
    let login = expect(
        t,
        "login",
        &[("auth.login", Some(owner_id))],
        || async move {
            t.json(
                Method::POST,
                "/api/v1/auth/login",
                None,
                serde_json::json!({ "email": "owner@test.example", "password": PASSWORD }),
            )
            .await
        },
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    let auditor_id = t.actor(Who::Auditor).user_id.as_str();
    expect(
        t,
        "password change",
        &[
            ("user.password_change", Some(auditor_id)),
            ("auth.login", Some(auditor_id)),
        ],
        || async move {
            t.json(
                Method::POST,
                "/api/v1/auth/password",
                Some(Who::Auditor),
                serde_json::json!({ "current_password": PASSWORD,
                    "new_password": "another long passphrase" }),
            )
            .await
        },
    )
    .await;
    let viewer_id = t.actor(Who::Viewer).user_id.as_str();
    expect(
        t,
        "logout",
        &[("auth.logout", Some(viewer_id))],
        || async move {
            t.call(Method::POST, "/api/v1/auth/logout", Some(Who::Viewer))
                .await
        },
    )
    .await;
    // Tenants (operators): one event without an owner, tenant + membership with one.
    expect(
        t,
        "tenant create",
        &[("tenant.create", Some("newco"))],
        || async move {
            t.json(
                Method::POST,
                "/api/v1/admin/tenants",
                Some(Who::Operator),
                serde_json::json!({ "slug": "newco", "name": "NewCo" }),
            )
            .await
        },
    )
    .await;
    expect(
        t,
        "tenant create with owner",
        &[
            ("tenant.create", Some("ownedco")),
            ("member.add", Some(owner_id)),
        ],
        || async move {
            t.json(
                Method::POST,
                "/api/v1/admin/tenants",
                Some(Who::Operator),
                serde_json::json!({ "slug": "ownedco", "name": "OwnedCo",
                    "owner_email": "owner@test.example" }),
            )
            .await
        },
    )
    .await;
    // A move's destination is recorded, redactable, beside its target.
    let moved = t
        .world
        .coffer
        .audit()
        .events_for_tenant(t.world.alpha.id, 0, 1000)
        .unwrap()
        .into_iter()
        .find(|e| e.action == "file.move")
        .unwrap();
    assert_eq!(moved.destination.as_deref(), Some("docs/b.txt"));
    // Trash purge.
    let trashed = t
        .call(Method::DELETE, &format!("{api}/files/docs/b.txt"), o)
        .await;
    let id = trashed.json()["trashed"]["id"].as_str().unwrap().to_owned();
    expect(
        t,
        "purge",
        &[("file.purge", Some("docs/b.txt"))],
        || async move {
            t.call(Method::DELETE, &format!("{api}/trash/{id}"), o)
                .await
        },
    )
    .await;
    // Password reset: the request and the confirmation, one event each.
    let member_id = t.actor(Who::Member).user_id.as_str();
    expect(
        t,
        "reset request",
        &[("user.password_change", Some(member_id))],
        || async move {
            t.json(
                Method::POST,
                "/api/v1/auth/password-reset",
                None,
                serde_json::json!({ "email": "member@test.example" }),
            )
            .await
        },
    )
    .await;
    let message = std::fs::read_dir(t.world.data_dir().join("outbox"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let reset_token = std::fs::read_to_string(message)
        .unwrap()
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap()
        .to_owned();
    expect(
        t,
        "reset confirm",
        &[("user.password_change", Some(member_id))],
        || async move {
            t.json(
                Method::POST,
                "/api/v1/auth/password-reset/confirm",
                None,
                serde_json::json!({ "token": reset_token, "new_password": "a fresh long passphrase" }),
            )
            .await
        },
    )
    .await;
    // Sign-up: the tenant, its new owner's account and membership, and the first session.
    let before = last(t);
    let signed_up = t
        .json(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            serde_json::json!({ "email": "founder@new.example", "password": "founder passphrase",
                "tenant_slug": "founded" }),
        )
        .await;
    assert_eq!(signed_up.status, StatusCode::CREATED);
    let founder = signed_up.json()["user"]["id"].as_str().unwrap().to_owned();
    let f = Some(founder.clone());
    assert_eq!(
        events_since(t, before),
        [
            ("tenant.create".to_owned(), Some("founded".to_owned())),
            ("user.create".to_owned(), f.clone()),
            ("member.add".to_owned(), f.clone()),
            ("auth.login".to_owned(), f.clone()),
        ]
    );
    // Account deletion: the membership removals it implies, and the deletion.
    let admin_id = t.actor(Who::Admin).user_id.as_str();
    expect(
        t,
        "account deletion",
        &[
            ("member.remove", Some(admin_id)),
            ("user.delete", Some(admin_id)),
        ],
        || async move {
            t.json(
                Method::POST,
                "/api/v1/auth/me/delete",
                Some(Who::Admin),
                serde_json::json!({ "password": PASSWORD }),
            )
            .await
        },
    )
    .await;
    // Reads write nothing.
    let before = last(t);
    for uri in [
        format!("{api}/tree"),
        format!("{api}/records"),
        format!("{api}/search?q=ada"),
        format!("{api}/members"),
        format!("{api}/audit"),
        "/api/v1/auth/me".to_owned(),
    ] {
        let r = t.call(Method::GET, &uri, o).await;
        assert!(r.status.is_success(), "{uri}");
    }
    assert_eq!(last(t), before, "reads are not audited");
}
