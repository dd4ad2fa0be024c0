//! Inviting someone by e-mail: an account without a password, a membership and a
//! one-time code in one transaction, the code mailed through the outbox, the password
//! set with it; the member rules hold for invitations as for additions.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{TestApp, Who};

/// The one-time code in the newest outbox message to `to`, and the message.
fn code_mailed_to(t: &TestApp, to: &str) -> (String, String) {
    let mut messages: Vec<_> = std::fs::read_dir(t.world.data_dir().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    messages.sort();
    let text = messages
        .iter()
        .rev()
        .map(|m| std::fs::read_to_string(m).unwrap())
        .find(|m| m.starts_with(&format!("To: {to}\r\n")))
        .unwrap_or_else(|| panic!("no message to {to}"));
    let code = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_owned();
    (code, text)
}

async fn invite(t: &TestApp, who: Who, email: &str, role: &str) -> super::Reply {
    t.json(
        Method::POST,
        "/api/v1/tenants/alpha/members",
        Some(who),
        json!({ "email": email, "role": role }),
    )
    .await
}

#[tokio::test]
async fn someone_without_an_account_is_invited_sets_a_password_and_is_a_member() {
    let t = TestApp::new();
    let r = invite(&t, Who::Admin, "newcomer@test.example", "member").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    assert_eq!(r.json()["invited"], true);
    let (first_code, text) = code_mailed_to(&t, "newcomer@test.example");
    assert!(text.contains("You are invited to"), "{text}");
    assert!(text.contains("as member"), "{text}");

    // Not signed in yet: there is no password to guess.
    let login = json!({ "email": "newcomer@test.example", "password": "anything at all" });
    let r = t
        .json(Method::POST, "/api/v1/auth/login", None, login)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Inviting again renews the code (the message went astray); the old one is spent.
    let r = invite(&t, Who::Owner, "newcomer@test.example", "member").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["invited"], true);
    let (code, _) = code_mailed_to(&t, "newcomer@test.example");
    assert_ne!(code, first_code);

    let set = json!({ "token": code, "new_password": "a brand new passphrase" });
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            set,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json());
    let login = json!({ "email": "newcomer@test.example", "password": "a brand new passphrase" });
    let r = t
        .json(Method::POST, "/api/v1/auth/login", None, login)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let memberships = &r.json()["memberships"];
    assert_eq!(memberships[0]["slug"], "alpha");
    assert_eq!(memberships[0]["role"], "member");

    // With a password set, inviting again is what it always was: already a member.
    let r = invite(&t, Who::Admin, "newcomer@test.example", "member").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "already-member");
    // An existing account elsewhere is added at once, with no message.
    let r = invite(&t, Who::Owner, "stranger@test.example", "viewer").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["invited"], false);
}

#[tokio::test]
async fn an_invitation_the_rules_refuse_leaves_no_account_and_sends_nothing() {
    let t = TestApp::new();
    // An admin cannot make owners; a member cannot invite at all.
    let r = invite(&t, Who::Admin, "would-be-owner@test.example", "owner").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = invite(&t, Who::Member, "friend@test.example", "viewer").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = invite(&t, Who::Admin, "not an address", "viewer").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for email in ["would-be-owner@test.example", "friend@test.example"] {
        let found = t
            .world
            .coffer
            .control()
            .user_by_email(&coffer::names::Email::parse(email).unwrap())
            .unwrap();
        assert!(found.is_none(), "{email} got an account");
    }
    assert!(!t.world.data_dir().join("outbox").exists());
}

#[tokio::test]
async fn a_tenant_made_for_a_new_owner_invites_them() {
    let t = TestApp::new();
    let body = json!({ "slug": "corner-bakery", "name": "Corner Bakery",
        "owner_email": "baker@corner.example" });
    let r = t
        .json(
            Method::POST,
            "/api/v1/admin/tenants",
            Some(Who::Operator),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    assert_eq!(r.json()["owner_invited"], true);
    let (code, text) = code_mailed_to(&t, "baker@corner.example");
    assert!(
        text.contains("Corner Bakery") && text.contains("as owner"),
        "{text}"
    );
    let set = json!({ "token": code, "new_password": "flour and water and salt" });
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            set,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let login = json!({ "email": "baker@corner.example", "password": "flour and water and salt" });
    let r = t
        .json(Method::POST, "/api/v1/auth/login", None, login)
        .await;
    assert_eq!(r.json()["memberships"][0]["role"], "owner");
    assert_eq!(r.json()["memberships"][0]["slug"], "corner-bakery");

    // An existing account is made owner with no message.
    let body = json!({ "slug": "second-shop", "name": "Second Shop",
        "owner_email": "owner@test.example" });
    let r = t
        .json(
            Method::POST,
            "/api/v1/admin/tenants",
            Some(Who::Operator),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["owner_invited"], false);
}
