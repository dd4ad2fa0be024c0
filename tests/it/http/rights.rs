//! The customer's rights over HTTP (P9, P11, P12, P15): access to everything held about
//! me, correction, my sessions, audit reading with filters, and account deletion that
//! anonymises the person and sends the tenants they owned alone to purge.

use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use coffer::audit::AuditAction;
use coffer::control::TenantState;
use coffer::names::Email;

use super::{PASSWORD, TestApp, Who};

#[tokio::test]
async fn an_access_request_returns_everything_held_about_me() {
    let t = TestApp::new();
    let token = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(Who::Owner),
            serde_json::json!({ "tenant": "alpha", "role": "viewer", "name": "backup script" }),
        )
        .await;
    assert_eq!(token.status, StatusCode::CREATED, "{:?}", token.json());
    let data = t
        .call(Method::GET, "/api/v1/auth/me/data", Some(Who::Owner))
        .await;
    assert_eq!(data.status, StatusCode::OK);
    let d = data.json();
    assert_eq!(d["user"]["email"], Who::Owner.email());
    assert_eq!(d["memberships"][0]["slug"], "alpha");
    assert_eq!(d["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(d["sessions"][0]["current"], true);
    assert_eq!(d["api_tokens"][0]["name"], "backup script");
    assert_eq!(d["logins"][0]["success"], true);
    let actions: Vec<&str> = d["account_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"auth.login"), "{actions:?}");
    assert!(
        d["account_events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant_id"].is_null())
    );
}

#[tokio::test]
async fn a_person_corrects_their_profile_and_the_change_is_audited() {
    let t = TestApp::new();
    let fixed = t
        .json(
            Method::PATCH,
            "/api/v1/auth/me",
            Some(Who::Member),
            serde_json::json!({ "name": "Marta Ruiz", "email": "marta@test.example" }),
        )
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{:?}", fixed.json());
    assert_eq!(fixed.json()["email"], "marta@test.example");
    let taken = t
        .json(
            Method::PATCH,
            "/api/v1/auth/me",
            Some(Who::Member),
            serde_json::json!({ "email": Who::Owner.email() }),
        )
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "email-taken".into())
    );
    let bad = t
        .json(
            Method::PATCH,
            "/api/v1/auth/me",
            Some(Who::Member),
            serde_json::json!({ "name": "a\u{0}b" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let events = t
        .call(
            Method::GET,
            "/api/v1/auth/me/events?action=user.update",
            Some(Who::Member),
        )
        .await;
    let list = events.json()["events"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["detail"]["fields"],
        serde_json::json!(["name", "email"])
    );
    assert!(
        !list[0].to_string().contains("Marta"),
        "the audit log names fields, not values"
    );
    // The new address signs in; the old one no longer does.
    let auth = t.world.coffer.auth();
    assert!(
        auth.login("marta@test.example", PASSWORD, None, None, Instant::now())
            .is_ok()
    );
    assert!(
        auth.login(&Who::Member.email(), PASSWORD, None, None, Instant::now())
            .is_err()
    );
}

#[tokio::test]
async fn sessions_are_listed_with_ip_and_revoked_one_by_one() {
    let t = TestApp::new();
    let other = t
        .world
        .coffer
        .auth()
        .login(
            &Who::Owner.email(),
            PASSWORD,
            Some("203.0.113.9"),
            Some("phone"),
            Instant::now(),
        )
        .unwrap();
    let list = t
        .call(Method::GET, "/api/v1/auth/sessions", Some(Who::Owner))
        .await;
    let sessions = list.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    let phone = sessions
        .iter()
        .find(|s| s["user_agent"] == "phone")
        .unwrap();
    assert_eq!(
        (phone["ip"].as_str(), phone["current"].as_bool()),
        (Some("203.0.113.9"), Some(false))
    );
    let uri = format!("/api/v1/auth/sessions/{}", phone["id"].as_str().unwrap());
    assert_eq!(
        t.call(Method::DELETE, &uri, Some(Who::Owner)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.call(Method::DELETE, &uri, Some(Who::Owner)).await.status,
        StatusCode::NOT_FOUND
    );
    let stale = Request::builder()
        .uri("/api/v1/auth/me")
        .header("host", "coffer.test")
        .header(
            "cookie",
            format!("{}={}", coffer::http::SESSION_COOKIE, other.token),
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.send(stale).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(Who::Owner))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn audit_reading_filters_by_action_actor_and_time_and_pages() {
    let t = TestApp::new();
    for name in ["a", "b", "c"] {
        t.put_file(
            &format!("/api/v1/tenants/alpha/files/{name}.txt"),
            Some(Who::Member),
            b"x",
        )
        .await;
    }
    t.put_file(
        "/api/v1/tenants/bravo/files/z.txt",
        Some(Who::Stranger),
        b"x",
    )
    .await;
    let member = t.actor(Who::Member).user_id.clone();
    let page = |q: String| {
        let t = &t;
        async move {
            t.call(
                Method::GET,
                &format!("/api/v1/tenants/alpha/audit?{q}"),
                Some(Who::Auditor),
            )
            .await
        }
    };
    let writes = page("action=file.write".into()).await.json();
    assert_eq!(writes["events"].as_array().unwrap().len(), 3);
    let first = page("action=file.write&limit=2".into()).await.json();
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let next = first["next"].as_i64().unwrap();
    let rest = page(format!("action=file.write&after={next}")).await.json();
    assert_eq!(rest["events"][0]["target"], "c.txt");
    let by_member = page(format!("actor=user:{member}")).await.json();
    assert!(
        by_member["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == format!("user:{member}"))
    );
    let future = page("since=2999-01-01T00:00:00Z".into()).await.json();
    assert!(future["events"].as_array().unwrap().is_empty());
    for bad in [
        "action=file.explode",
        "since=yesterday",
        "actor=nobody",
        "colour=red",
    ] {
        let reply = page(bad.into()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // Operators read every tenant's events; nobody else reads the whole log.
    let all = t
        .call(
            Method::GET,
            "/api/v1/admin/audit?action=file.write",
            Some(Who::Operator),
        )
        .await;
    assert_eq!(all.json()["events"].as_array().unwrap().len(), 4);
    // A NUL in a filter names nobody, whichever database holds the log.
    let nul = t
        .call(
            Method::GET,
            "/api/v1/admin/audit?actor=token:%00",
            Some(Who::Operator),
        )
        .await;
    assert_eq!(nul.status, StatusCode::OK, "{:?}", nul.json());
    assert!(nul.json()["events"].as_array().unwrap().is_empty());
    let refused = t
        .call(Method::GET, "/api/v1/admin/audit", Some(Who::Owner))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deleting_an_account_anonymises_it_and_cancels_the_tenants_it_owned_alone() {
    let t = TestApp::new();
    let stranger = t
        .world
        .coffer
        .control()
        .user_by_email(&Email::parse(&Who::Stranger.email()).unwrap())
        .unwrap()
        .unwrap();
    t.world
        .coffer
        .auth()
        .request_reset(&Who::Stranger.email(), None)
        .unwrap();
    t.world
        .coffer
        .auth()
        .request_reset(&Who::Owner.email(), None)
        .unwrap();
    // The stranger is also a viewer of alpha, which has other owners: it stays.
    t.world
        .access(&t.world.alpha)
        .change_member(
            t.world.coffer.control(),
            stranger.id,
            coffer::control::Role::Viewer,
            coffer::control::MemberChange::Add,
        )
        .unwrap();
    let deleted = t
        .json(
            Method::POST,
            "/api/v1/auth/me/delete",
            Some(Who::Stranger),
            serde_json::json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "{:?}",
        deleted.json()
    );
    let row = t.world.coffer.control().user(stranger.id).unwrap().unwrap();
    assert_eq!(
        row.email,
        format!("deleted-{}@deleted.invalid", stranger.id)
    );
    assert!(row.name.is_empty() && row.password_hash.is_none() && row.disabled_at.is_some());
    assert!(
        t.world
            .coffer
            .control()
            .memberships(stranger.id)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(Who::Stranger))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The outbox keeps others' messages, not theirs.
    let outbox: Vec<String> = std::fs::read_dir(t.world.data_dir().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(outbox.len(), 1);
    assert!(outbox[0].contains(&Who::Owner.email()));
    // Bravo, which the stranger owned alone, is cancelled (cancel, then purge): it is
    // purged after the grace period, not before, so its other members could export it.
    let report = t.world.coffer.run_lifecycle().unwrap();
    assert!(report.purged.is_empty(), "{report:?}");
    let bravo = t
        .world
        .coffer
        .control()
        .tenant(t.world.bravo.id)
        .unwrap()
        .unwrap();
    assert_eq!(bravo.state, TenantState::Cancelled);
    let due = bravo.lifecycle.purge_after.as_deref().unwrap();
    let in_29_days =
        coffer::db::timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(29));
    assert!(due > in_29_days.as_str(), "purge due {due}");
    let alpha_events = t
        .world
        .coffer
        .audit()
        .events_for_tenant(t.world.alpha.id, 0, 1000)
        .unwrap();
    assert!(alpha_events.iter().any(|e| {
        e.action == AuditAction::MemberRemove.as_str()
            && e.detail
                .as_ref()
                .is_some_and(|d| d["reason"] == "account deleted")
    }));
    // The audit log names the person only by the pseudonymous id.
    let all = t.world.coffer.audit().query(&coffer::audit::EventQuery {
        limit: 100_000,
        ..Default::default()
    });
    let text = serde_json::to_string(
        &all.unwrap()
            .iter()
            .map(|e| (e.target.clone(), e.detail.clone()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!text.contains(&Who::Stranger.email()));
}
