//! Usage metering (P16): API calls per feature, AI tokens from a scoped integration token
//! (refused while restricted), logins kept for removed members, counters that equal a
//! recount.

use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use coffer::audit::AuditAction;

use super::{PASSWORD, Reply, TestApp, Who};
use crate::support::operator;

fn metered(reply: &Reply, metric: &str) -> u64 {
    reply.json()["metered"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["metric"] == metric)
        .map(|r| r["value"].as_u64().unwrap())
        .sum()
}

async fn bearer(
    t: &TestApp,
    token: &str,
    method: Method,
    uri: &str,
    body: serde_json::Value,
) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "coffer.test")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    t.send(req).await
}

#[tokio::test]
async fn api_calls_are_metered_per_feature() {
    let t = TestApp::new();
    for name in ["a", "b"] {
        t.put_file(
            &format!("/api/v1/tenants/alpha/files/{name}.txt"),
            Some(Who::Member),
            b"x",
        )
        .await;
    }
    t.call(
        Method::GET,
        "/api/v1/tenants/alpha/files/a.txt",
        Some(Who::Viewer),
    )
    .await;
    t.call(
        Method::GET,
        "/api/v1/tenants/bravo/tree",
        Some(Who::Stranger),
    )
    .await;
    let state = t.state.clone();
    let coffer = t.world.coffer.clone();
    tokio::task::spawn_blocking(move || state.meter().flush(&coffer))
        .await
        .unwrap()
        .unwrap();
    let usage = t
        .call(
            Method::GET,
            "/api/v1/tenants/alpha/usage",
            Some(Who::Auditor),
        )
        .await;
    assert_eq!(metered(&usage, "api.files_write"), 2);
    assert_eq!(metered(&usage, "api.files_read"), 1);
    assert_eq!(
        metered(&usage, "api.usage_read"),
        0,
        "this call is counted at the next flush"
    );
    let bravo = t
        .call(
            Method::GET,
            "/api/v1/tenants/bravo/usage",
            Some(Who::Stranger),
        )
        .await;
    assert_eq!(metered(&bravo, "api.files_read"), 1);
    assert_eq!(metered(&bravo, "api.files_write"), 0);
}

#[tokio::test]
async fn only_a_scoped_integration_token_reports_ai_tokens_and_never_while_restricted() {
    let t = TestApp::new();
    let minted = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(Who::Owner),
            serde_json::json!({ "tenant": "alpha", "role": "viewer", "name": "ai", "scopes": ["ai-usage"] }),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{:?}", minted.json());
    let scoped = minted.json()["token"].as_str().unwrap().to_owned();
    let plain = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(Who::Owner),
            serde_json::json!({ "tenant": "alpha", "role": "owner" }),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let report =
        serde_json::json!({ "model": "summariser-2", "input_tokens": 1200, "output_tokens": 300 });
    let uri = "/api/v1/tenants/alpha/usage/ai";
    assert_eq!(
        bearer(&t, &scoped, Method::POST, uri, report.clone())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bearer(&t, &plain, Method::POST, uri, report.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.json(Method::POST, uri, Some(Who::Owner), report.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The scope adds nothing else: the token is still a viewer's.
    let write = bearer(
        &t,
        &scoped,
        Method::POST,
        "/api/v1/tenants/alpha/records/notes",
        serde_json::json!({"a": 1}),
    )
    .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    let bad = bearer(
        &t,
        &scoped,
        Method::POST,
        uri,
        serde_json::json!({ "model": "", "input_tokens": 1, "output_tokens": 1 }),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    t.lifecycle("alpha", "restrict").await;
    let refused = bearer(&t, &scoped, Method::POST, uri, report.clone()).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "tenant-restricted".into())
    );

    let usage = t
        .call(Method::GET, "/api/v1/tenants/alpha/usage", Some(Who::Owner))
        .await;
    assert_eq!(metered(&usage, "ai.input_tokens"), 1200);
    assert_eq!(metered(&usage, "ai.output_tokens"), 300);
    let events = t
        .world
        .coffer
        .audit()
        .events_for_tenant(t.world.alpha.id, 0, 1000)
        .unwrap();
    let reported: Vec<_> = events
        .iter()
        .filter(|e| e.action == AuditAction::UsageAiReport.as_str())
        .collect();
    assert_eq!(reported.len(), 1);
    assert_eq!(
        reported[0].detail.as_ref().unwrap()["model"],
        "summariser-2"
    );
}

#[tokio::test]
async fn a_removed_members_logins_stay_in_the_tenants_history() {
    let t = TestApp::new();
    let member = t.actor(Who::Member).user_id.clone();
    let removed = t
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/alpha/members/{member}"),
            Some(Who::Owner),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    // A login after the removal is not the tenant's.
    t.world
        .coffer
        .auth()
        .login(&Who::Member.email(), PASSWORD, None, None, Instant::now())
        .unwrap();
    let usage = t
        .call(Method::GET, "/api/v1/tenants/alpha/usage", Some(Who::Owner))
        .await;
    let logins: Vec<_> = usage.json()["recent_logins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["user_id"] == member)
        .cloned()
        .collect();
    assert_eq!(logins.len(), 1, "{logins:?}");
}

#[test]
fn usage_counters_equal_a_recount_and_drift_is_repaired() {
    let w = crate::support::World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    v.write_file(
        &op,
        &coffer::vault::path::VaultPath::parse("a.txt").unwrap(),
        &mut &b"abc"[..],
        &coffer::vault::Precondition::None,
    )
    .unwrap();
    assert!(v.reconcile_usage(&op, true).unwrap().is_empty());
    {
        // Someone edits the index behind Coffer's back.
        let db = rusqlite::Connection::open(w.vault_dir(&w.alpha).join("index.db")).unwrap();
        db.execute(
            "UPDATE usage_counters SET value = 999 WHERE name = 'bytes_stored'",
            [],
        )
        .unwrap();
    }
    let drift = v.reconcile_usage(&op, true).unwrap();
    assert_eq!(drift.len(), 1);
    assert_eq!(
        (drift[0].counter.as_str(), drift[0].stored, drift[0].counted),
        ("bytes_stored", 999, 3)
    );
    assert!(
        v.reconcile_usage(&op, false).unwrap().is_empty(),
        "repaired"
    );
}
