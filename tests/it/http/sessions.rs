//! Sessions, cookies, CSRF, login throttling, password change and reset, sign-up.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use coffer::http::{CSRF_HEADER, SESSION_COOKIE};

use super::{PASSWORD, TestApp, Who};

async fn login(t: &TestApp, email: &str, password: &str) -> super::Reply {
    t.json(
        Method::POST,
        "/api/v1/auth/login",
        None,
        serde_json::json!({ "email": email, "password": password }),
    )
    .await
}

fn cookie_of(reply: &super::Reply) -> String {
    reply
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn login_sets_one_hardened_cookie_and_never_returns_the_token() {
    let t = TestApp::new();
    let r = login(&t, "member@test.example", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 1);
    let c = cookies[0].to_str().unwrap();
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=604800",
    ] {
        assert!(c.contains(attr), "{attr} in {c}");
    }
    let token = cookie_of(&r).split_once('=').unwrap().1.to_owned();
    assert!(
        !String::from_utf8_lossy(&r.body).contains(&token),
        "token never in a body"
    );
    assert!(r.json()["csrf_token"].as_str().unwrap().len() == 64);
    assert_eq!(r.json()["memberships"][0]["slug"], "alpha");
    // Wrong password and unknown account answer the same.
    let a = login(&t, "member@test.example", "wrong password here").await;
    let b = login(&t, "nobody@test.example", "wrong password here").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNAUTHORIZED, "bad-credentials".into())
    );
    assert_eq!((b.status, b.code()), (a.status, a.code()));
    // Logins are recorded for the tenant's usage data.
    let usage = t
        .call(Method::GET, "/api/v1/tenants/alpha/usage", Some(Who::Owner))
        .await
        .json();
    assert!(
        usage["recent_logins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["email"] == "member@test.example" && l["success"] == true)
    );
}

#[tokio::test]
async fn logout_password_change_and_account_deletion_revoke_at_once() {
    let t = TestApp::new();
    let me = |cookie: String| {
        let t = &t;
        async move {
            t.send(
                Request::builder()
                    .uri("/api/v1/auth/me")
                    .header("cookie", cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .status
        }
    };
    // Logout.
    let viewer = t.actor(Who::Viewer).clone();
    assert_eq!(me(viewer.cookie.clone()).await, StatusCode::OK);
    let r = t
        .call(Method::POST, "/api/v1/auth/logout", Some(Who::Viewer))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(me(viewer.cookie.clone()).await, StatusCode::UNAUTHORIZED);

    // Password change ends every session, including other devices', and issues a new one.
    let member = t.actor(Who::Member).clone();
    let other_device = cookie_of(&login(&t, "member@test.example", PASSWORD).await);
    let r = t
        .json(Method::POST, "/api/v1/auth/password", Some(Who::Member),
            serde_json::json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(me(member.cookie.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(other_device).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(cookie_of(&r)).await, StatusCode::OK);
    assert_eq!(
        login(&t, "member@test.example", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&t, "member@test.example", "a brand new passphrase")
            .await
            .status,
        StatusCode::OK
    );

    // Account deletion.
    let auditor = t.actor(Who::Auditor).clone();
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/me/delete",
            Some(Who::Auditor),
            serde_json::json!({ "password": "wrong one" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/me/delete",
            Some(Who::Auditor),
            serde_json::json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(me(auditor.cookie).await, StatusCode::UNAUTHORIZED);
    // The last owner of a tenant may delete their account too (P12): the tenant is
    // cancelled with its purge due at once.
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/me/delete",
            Some(Who::Owner),
            serde_json::json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let alpha = t
        .world
        .coffer
        .control()
        .tenant(t.world.alpha.id)
        .unwrap()
        .unwrap();
    assert_eq!(alpha.state, coffer::control::TenantState::Cancelled);
    // Cancelled, not purged at once: the grace period lets anyone left export it.
    assert!(alpha.lifecycle.purge_after.is_some());
    assert!(
        !t.world
            .coffer
            .control()
            .due_purges()
            .unwrap()
            .iter()
            .any(|d| d.id == alpha.id)
    );
}

#[tokio::test]
async fn forged_and_tampered_session_tokens_are_refused() {
    let t = TestApp::new();
    let real = t
        .actor(Who::Member)
        .cookie
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let tampered = parts.join(".");
    for token in [
        tampered.as_str(),
        "garbage",
        "",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ] {
        let r = t
            .send(
                Request::builder()
                    .uri("/api/v1/auth/me")
                    .header("cookie", format!("{SESSION_COOKIE}={token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}");
    }
}

#[tokio::test]
async fn csrf_defences_on_cookie_requests() {
    let t = TestApp::new();
    let m = t.actor(Who::Member).clone();
    let put = |csrf: Option<&str>, extra: Option<(&'static str, &'static str)>| {
        let mut b = Request::builder()
            .method(Method::PUT)
            .uri("/api/v1/tenants/alpha/files/csrf.txt")
            .header("host", "coffer.test")
            .header("cookie", &m.cookie);
        if let Some(c) = csrf {
            b = b.header(CSRF_HEADER, c);
        }
        if let Some((k, v)) = extra {
            b = b.header(k, v);
        }
        b.body(Body::from("x")).unwrap()
    };
    let r = t.send(put(None, None)).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "csrf-token-missing".into())
    );
    let r = t.send(put(Some(&t.actor(Who::Viewer).csrf), None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another session's token");
    let r = t
        .send(put(Some(&m.csrf), Some(("origin", "https://evil.example"))))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "cross-site-request".into())
    );
    let r = t
        .send(put(Some(&m.csrf), Some(("sec-fetch-site", "cross-site"))))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .send(put(Some(&m.csrf), Some(("origin", "http://coffer.test"))))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // JSON endpoints refuse the simple content types a cross-site form can send.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = t
            .send(
                Request::builder()
                    .method(Method::POST)
                    .uri("/api/v1/auth/login")
                    .header("content-type", ct)
                    .body(Body::from(format!(
                        r#"{{"email":"member@test.example","password":"{PASSWORD}"}}"#
                    )))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
    }
    // GET never changes state: every GET route, called as the owner, leaves the vault's
    // files, records and usage as they were and appends no audit event beyond the export's
    // own start/finish records.
    t.put_file(
        "/api/v1/tenants/alpha/files/docs/a.txt",
        Some(Who::Member),
        b"a",
    )
    .await;
    let vault = t.world.vault(&t.world.alpha);
    let before = (
        vault.all_entries().unwrap(),
        vault.all_records().unwrap(),
        vault.usage().unwrap(),
    );
    let seq = t
        .world
        .coffer
        .audit()
        .last_seq_for_tenant(t.world.alpha.id)
        .unwrap();
    let mut called = 0;
    for r in coffer::http::ROUTES
        .iter()
        .filter(|r| r.method == Method::GET)
    {
        let uri = r
            .path
            .replace("{tenant}", "alpha")
            .replace("{*path}", "docs/a.txt")
            .replace("{collection}", "clients")
            .replace("{id}", "c1");
        let uri = if uri.ends_with("/search") {
            format!("{uri}?q=a")
        } else {
            uri
        };
        let reply = t.call(Method::GET, &uri, Some(Who::Owner)).await;
        assert!(!reply.status.is_server_error(), "{uri}");
        called += 1;
    }
    assert!(called >= 15, "every GET route was called");
    assert_eq!(
        (
            vault.all_entries().unwrap(),
            vault.all_records().unwrap(),
            vault.usage().unwrap()
        ),
        before
    );
    let new_events = t
        .world
        .coffer
        .audit()
        .events_for_tenant(t.world.alpha.id, seq, 1000)
        .unwrap();
    assert!(
        new_events
            .iter()
            .all(|e| e.action == "export.start" || e.action == "export.finish"),
        "{:?}",
        new_events.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let t = TestApp::new();
    for _ in 0..5 {
        assert_eq!(
            login(&t, "viewer@test.example", "not the password")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused while the account is locked.
    let r = login(&t, "viewer@test.example", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    // Other accounts are unaffected.
    assert_eq!(
        login(&t, "member@test.example", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn password_reset_through_the_outbox() {
    let t = TestApp::new();
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            serde_json::json!({ "email": "viewer@test.example" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            serde_json::json!({ "email": "ghost@test.example" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "no account enumeration");
    let outbox = t.world.data_dir().join("outbox");
    let messages: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(messages.len(), 1);
    let text = std::fs::read_to_string(&messages[0]).unwrap();
    assert!(text.starts_with("To: viewer@test.example\r\n"));
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap()
        .to_owned();
    let confirm = |token: String, pw: &'static str| {
        let t = &t;
        async move {
            t.json(
                Method::POST,
                "/api/v1/auth/password-reset/confirm",
                None,
                serde_json::json!({ "token": token, "new_password": pw }),
            )
            .await
            .status
        }
    };
    assert_eq!(
        confirm(token.clone(), "short").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        confirm(token.clone(), "reset passphrase 2026").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        confirm(token, "another passphrase 2026").await,
        StatusCode::BAD_REQUEST,
        "one use only"
    );
    assert_eq!(
        login(&t, "viewer@test.example", "reset passphrase 2026")
            .await
            .status,
        StatusCode::OK
    );
    // The old session died with the reset.
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(Who::Viewer))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn signup_creates_an_owned_tenant_and_can_be_disabled() {
    let t = TestApp::new();
    let body = serde_json::json!({ "email": "new@shop.example", "password": "shop owner passphrase",
        "tenant_slug": "corner-shop", "tenant_name": "Corner Shop" });
    let r = t
        .json(Method::POST, "/api/v1/auth/signup", None, body.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let cookie = cookie_of(&r);
    let r = t
        .send(
            Request::builder()
                .uri("/api/v1/tenants/corner-shop")
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.json()["role"], "owner");
    let r = t
        .json(Method::POST, "/api/v1/auth/signup", None, body)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = t
        .json(Method::POST, "/api/v1/auth/signup", None, serde_json::json!({ "email": "x@shop.example", "password": "shop owner passphrase", "tenant_slug": "../etc" }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let world = crate::support::World::with_config(coffer::config::Config {
        signup_enabled: false,
        ..Default::default()
    });
    let t = TestApp::with_world(world);
    let r = t
        .json(Method::POST, "/api/v1/auth/signup", None, serde_json::json!({ "email": "y@shop.example", "password": "shop owner passphrase", "tenant_slug": "other-shop" }))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "signup-disabled".into())
    );
}

fn session_token(t: &TestApp, who: Who) -> String {
    t.actor(who).cookie.split_once('=').unwrap().1.to_owned()
}

/// Unpadded base64url, to hand-craft a token whose header no library would sign.
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (x as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

async fn me_with(t: &TestApp, token: &str) -> StatusCode {
    t.send(
        Request::builder()
            .uri("/api/v1/auth/me")
            .header("cookie", format!("{SESSION_COOKIE}={token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .status
}

/// Tokens signed with the server's real key are refused when anything but the key is
/// wrong: the algorithm, `iss`, `aud`, a missing `nbf` or `exp`, a life beyond 7 days. The
/// same claims re-signed correctly are accepted, so each refusal is for its own reason
/// (issue 7).
#[tokio::test]
async fn issue7_real_key_but_wrong_algorithm_or_claims_is_refused() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let t = TestApp::new();
    let real = session_token(&t, Who::Member);
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode_claims(&real).unwrap();
    // The data root's secret, or the one nodes share in a PostgreSQL control plane.
    let secret = match &t.world.coffer.config().control {
        None => std::fs::read_to_string(t.world.data_dir().join("secret.key")).unwrap(),
        Some(url) => crate::support::postgres::query_text(
            url,
            "SELECT value FROM cluster_secrets WHERE name = 'session'",
        ),
    };
    let secret = hex::decode(secret.trim()).unwrap();
    let key = EncodingKey::from_secret(&secret);
    let sign = |alg: Algorithm, claims: &serde_json::Value| {
        jsonwebtoken::encode(&Header::new(alg), claims, &key).unwrap()
    };
    let with = |field: &str, value: serde_json::Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    let without = |field: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(field);
        c
    };
    assert_eq!(
        me_with(&t, &sign(Algorithm::HS256, &claims)).await,
        StatusCode::OK
    );
    let exp = claims["exp"].as_i64().unwrap();
    let nbf = claims["nbf"].as_i64().unwrap();
    let refused = [
        ("HS384", sign(Algorithm::HS384, &claims)),
        ("HS512", sign(Algorithm::HS512, &claims)),
        (
            "wrong iss",
            sign(Algorithm::HS256, &with("iss", "someone-else".into())),
        ),
        (
            "wrong aud",
            sign(Algorithm::HS256, &with("aud", "another-app".into())),
        ),
        ("no nbf", sign(Algorithm::HS256, &without("nbf"))),
        ("no exp", sign(Algorithm::HS256, &without("exp"))),
        ("no iss", sign(Algorithm::HS256, &without("iss"))),
        (
            "life over 7 days",
            sign(Algorithm::HS256, &with("exp", (nbf + 8 * 86_400).into())),
        ),
        (
            "expired",
            sign(Algorithm::HS256, &with("exp", (nbf - 60).into())),
        ),
        (
            "not yet valid",
            sign(Algorithm::HS256, &with("nbf", (exp - 30).into())),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64url(br#"{"alg":"none","typ":"JWT"}"#),
                real.split('.').nth(1).unwrap()
            ),
        ),
    ];
    for (why, token) in refused {
        assert_eq!(me_with(&t, &token).await, StatusCode::UNAUTHORIZED, "{why}");
    }
}

/// The server-side session ends after 7 days even for a token whose own times are
/// fine: time moves on an injected clock, no sleeps (issue 7).
#[tokio::test]
async fn issue7_sessions_end_after_seven_days_on_the_server_side() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let clock = coffer::clock::ManualClock::starting_now();
    let world = crate::support::World::with_clock(Default::default(), clock.clone());
    let t = TestApp::with_world(world);
    let real = session_token(&t, Who::Viewer);
    clock.advance(time::Duration::days(7) - time::Duration::minutes(1));
    assert_eq!(me_with(&t, &real).await, StatusCode::OK);
    clock.advance(time::Duration::minutes(2));
    assert_eq!(me_with(&t, &real).await, StatusCode::UNAUTHORIZED);
    // A fresh, validly timed token for the same (expired) session is refused too.
    let mut claims: serde_json::Value =
        jsonwebtoken::dangerous::insecure_decode_claims(&real).unwrap();
    let now = coffer::clock::Clock::now(clock.as_ref()).unix_timestamp();
    claims["nbf"] = now.into();
    claims["iat"] = now.into();
    claims["exp"] = (now + 3600).into();
    let secret = hex::decode(
        std::fs::read_to_string(t.world.data_dir().join("secret.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let renewed = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    assert_eq!(me_with(&t, &renewed).await, StatusCode::UNAUTHORIZED);
}

/// An API token logging out revokes itself; a token can never delete a person's account
/// or change their password (issue 7).
#[tokio::test]
async fn issue7_tokens_log_themselves_out_and_cannot_delete_accounts() {
    let t = TestApp::new();
    let mint = || async {
        let r = t
            .json(
                Method::POST,
                "/api/v1/auth/tokens",
                Some(Who::Member),
                serde_json::json!({ "tenant": "alpha", "role": "viewer" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        r.json()["token"].as_str().unwrap().to_owned()
    };
    let bearer = |method: Method, uri: &str, token: &str, scheme: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("{scheme} {token}"))
    };
    let token = mint().await;
    // A stored usage time that is not the expected shape (short, or not ASCII) never
    // makes authentication panic: it is only compared, never sliced.
    // (Planted in control.db: a world on PostgreSQL runs the rest.)
    if t.world.coffer.config().control.is_none() {
        let control = rusqlite::Connection::open(t.world.data_dir().join("control.db")).unwrap();
        control
            .execute("UPDATE api_tokens SET last_used_at = 'é'", [])
            .unwrap();
    }
    // The scheme is case-insensitive (RFC 9110).
    let r = t
        .send(
            bearer(Method::GET, "/api/v1/auth/me", &token, "bearer")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for (uri, body) in [
        (
            "/api/v1/auth/me/delete",
            serde_json::json!({ "password": PASSWORD }),
        ),
        (
            "/api/v1/auth/password",
            serde_json::json!({ "current_password": PASSWORD, "new_password": "another long one" }),
        ),
    ] {
        let r = t
            .send(
                bearer(Method::POST, uri, &token, "Bearer")
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "session-required".into()),
            "{uri}"
        );
    }
    assert_eq!(
        login(&t, "member@test.example", PASSWORD).await.status,
        StatusCode::OK
    );
    let r = t
        .send(
            bearer(Method::POST, "/api/v1/auth/logout", &token, "BEARER")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t
        .send(
            bearer(Method::GET, "/api/v1/auth/me", &token, "Bearer")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the token logged itself out"
    );
}
