//! Edges an attacker pushes on (issue 8 review): sign-up cannot mint unlimited tenants,
//! names reaching the databases are checked, token lifetimes are bounded, a throttled
//! login never waits for a hashing slot, and no small body can hold a connection.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::FromRef;
use axum::http::{Method, Request, StatusCode};
use coffer::http::bodies::PasswordGate;

use super::{TestApp, Who};

fn signup(n: usize) -> serde_json::Value {
    serde_json::json!({ "email": format!("owner{n}@shops.example"), "password": "shop owner passphrase",
        "tenant_slug": format!("shop-{n}") })
}

#[tokio::test]
async fn one_address_cannot_sign_up_without_end_and_each_tenant_has_a_quota() {
    let t = TestApp::new();
    for n in 0..5 {
        let r = t
            .json(Method::POST, "/api/v1/auth/signup", None, signup(n))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{n}: {:?}", r.json());
    }
    let r = t
        .json(Method::POST, "/api/v1/auth/signup", None, signup(5))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!r.header("retry-after").is_empty());
    let slug = coffer::names::TenantSlug::parse("shop-0").unwrap();
    let tenant = t
        .world
        .coffer
        .control()
        .tenant_by_slug(&slug)
        .unwrap()
        .unwrap();
    assert_eq!(tenant.quota_bytes, Some(1024 * 1024 * 1024));
}

#[tokio::test]
async fn names_with_control_characters_or_too_long_are_refused_at_the_edge() {
    let t = TestApp::new();
    let long = "x".repeat(201);
    for name in ["Line\nbreak", "nul\u{0}", long.as_str()] {
        let mut body = signup(9);
        body["name"] = name.into();
        let r = t
            .json(Method::POST, "/api/v1/auth/signup", None, body)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?}");
        let token = t
            .json(
                Method::POST,
                "/api/v1/auth/tokens",
                Some(Who::Owner),
                serde_json::json!({ "tenant": "alpha", "role": "viewer", "name": name }),
            )
            .await;
        assert_eq!(token.status, StatusCode::BAD_REQUEST, "token {name:?}");
        let tenant = t
            .json(
                Method::POST,
                "/api/v1/admin/tenants",
                Some(Who::Operator),
                serde_json::json!({ "slug": "named", "name": name }),
            )
            .await;
        assert_eq!(tenant.status, StatusCode::BAD_REQUEST, "tenant {name:?}");
    }
}

#[tokio::test]
async fn a_token_lives_one_day_to_ten_years() {
    let t = TestApp::new();
    for (days, status) in [
        (0, StatusCode::BAD_REQUEST),
        (1, StatusCode::CREATED),
        (3650, StatusCode::CREATED),
        (3651, StatusCode::BAD_REQUEST),
        (4_000_000, StatusCode::BAD_REQUEST),
    ] {
        let r = t
            .json(
                Method::POST,
                "/api/v1/auth/tokens",
                Some(Who::Owner),
                serde_json::json!({ "tenant": "alpha", "role": "viewer", "expires_in_days": days }),
            )
            .await;
        assert_eq!(r.status, status, "{days} days: {:?}", r.json());
    }
}

/// With every hashing slot taken, a login for a locked account is refused at once (429),
/// not queued behind the slots until the queue deadline (503).
#[tokio::test]
async fn a_throttled_login_never_waits_for_a_hashing_slot() {
    let config = coffer::config::Config {
        max_concurrent_password_hashes: 1,
        password_queue_secs: 3600,
        ..Default::default()
    };
    let t = TestApp::with_world(crate::support::World::with_config(config));
    let wrong =
        serde_json::json!({ "email": Who::Viewer.email(), "password": "not the password at all" });
    for _ in 0..5 {
        let r = t
            .json(Method::POST, "/api/v1/auth/login", None, wrong.clone())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let gate = PasswordGate::from_ref(&t.state);
    let _held = gate.enter().await.unwrap();
    // Were the throttle checked only after the gate, this would wait an hour.
    let r = tokio::time::timeout(
        Duration::from_secs(600),
        t.json(Method::POST, "/api/v1/auth/login", None, wrong),
    )
    .await
    .expect("the throttled login waited for the hashing slot");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

/// A restore request whose body never finishes is cut at the JSON deadline (408), like
/// every other small body. Time is paused: the deadline passes without waiting.
#[tokio::test(start_paused = true)]
async fn a_stalled_small_body_is_cut_at_its_deadline() {
    let t = TestApp::new();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tx.send(Ok(Bytes::from_static(b"{\"to\":"))).await.unwrap();
    let body = Body::from_stream(tokio_stream_from(rx));
    let req: Request<Body> = t
        .request(
            Method::POST,
            "/api/v1/tenants/alpha/trash/0123456789abcdef0123456789abcdef/restore",
            Some(Who::Owner),
        )
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    // The outer bound only turns a hang (no deadline at all) into a failure.
    let r = tokio::time::timeout(Duration::from_secs(3600), t.send(req))
        .await
        .expect("the stalled body held the request");
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::REQUEST_TIMEOUT, "request-timeout".into())
    );
    drop(tx);
}

/// The pace every streaming body must keep: a stalled body ends in a `TimedOut` error
/// after the idle deadline, a trickle (one byte every 10 s, never idle) after the grace
/// period, and a steady body passes whole. Time is paused, so no deadline is waited for.
#[tokio::test(start_paused = true)]
async fn stalled_and_trickling_bodies_end_in_a_timeout() {
    use futures_util::StreamExt;
    let pace = coffer::http::bodies::Pace {
        idle: Duration::from_secs(60),
        min_bytes_per_sec: 4096,
        grace: Duration::from_secs(30),
    };
    let kind = |item: Option<std::io::Result<Bytes>>| item.unwrap().unwrap_err().kind();

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(Ok(Bytes::from_static(b"the first bytes")))
        .await
        .unwrap();
    let mut stalled = Box::pin(coffer::http::bodies::paced(
        Body::from_stream(tokio_stream_from(rx)),
        pace,
    ));
    let start = tokio::time::Instant::now();
    assert_eq!(
        &stalled.next().await.unwrap().unwrap()[..],
        b"the first bytes"
    );
    let cut = tokio::time::timeout(Duration::from_secs(3600), stalled.next())
        .await
        .expect("a stalled body was never cut");
    assert_eq!(kind(cut), std::io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= pace.idle, "cut before the idle deadline");
    assert!(stalled.next().await.is_none(), "nothing after the error");
    drop(tx);

    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let trickler = tokio::spawn(async move {
        while tx.send(Ok(Bytes::from_static(b"x"))).await.is_ok() {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
    let mut trickle = Box::pin(coffer::http::bodies::paced(
        Body::from_stream(tokio_stream_from(rx)),
        pace,
    ));
    let start = tokio::time::Instant::now();
    let mut bytes = 0;
    let err = loop {
        match trickle.next().await.unwrap() {
            Ok(b) => bytes += b.len(),
            Err(e) => break e,
        }
        assert!(bytes < 1000, "a trickle was never cut");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(
        start.elapsed() > pace.grace && bytes >= 3,
        "cut after the grace period"
    );
    trickler.abort();

    let steady = futures_util::stream::iter(
        (0..100).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 64 * 1024]))),
    );
    let whole = coffer::http::bodies::paced(Body::from_stream(steady), pace)
        .map(|c| c.unwrap().len())
        .fold(0, |a, n| async move { a + n })
        .await;
    assert_eq!(whole, 100 * 64 * 1024);
}

/// An upload whose body fails part-way (a client that goes away) answers a clear 4xx,
/// frees its slot (the server has one) and leaves nothing staged or visible.
#[tokio::test]
async fn a_failed_upload_frees_its_slot_and_leaves_nothing() {
    let config = coffer::config::Config {
        max_concurrent_uploads: 1,
        ..Default::default()
    };
    let t = TestApp::with_world(crate::support::World::with_config(config));
    for name in ["gone1.bin", "gone2.bin"] {
        let broken = futures_util::stream::iter([
            Ok(Bytes::from(vec![5u8; 256 * 1024])),
            Err(std::io::Error::other("client went away")),
        ]);
        let r = t
            .send(
                t.request(
                    Method::PUT,
                    &format!("/api/v1/tenants/alpha/files/{name}"),
                    Some(Who::Owner),
                )
                .body(Body::from_stream(broken))
                .unwrap(),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "upload-failed".into())
        );
    }
    let ok = t
        .put_file(
            "/api/v1/tenants/alpha/files/next.bin",
            Some(Who::Owner),
            b"whole",
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    for name in ["gone1.bin", "gone2.bin"] {
        let gone = t
            .call(
                Method::GET,
                &format!("/api/v1/tenants/alpha/files/{name}"),
                Some(Who::Owner),
            )
            .await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
    }
    let staging = t.world.vault_dir(&t.world.alpha).join(".staging");
    assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0);
}

/// A receiver as a stream (the sender is kept open, so the body never ends).
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// However many accounts sign in at once, no more passwords are hashed than the gate
/// allows (argon2 at 19 MiB each is the memory a client can make the server spend): with
/// the only hashing slot held, twenty sign-ins of twenty accounts wait out the queue and
/// get 503 with `Retry-After`, none of them hashed; once the slot is free a sign-in
/// succeeds. Time is paused: the queue deadline passes without waiting.
#[tokio::test(start_paused = true)]
async fn sign_ins_of_many_accounts_share_the_hashing_gate() {
    let config = coffer::config::Config {
        max_concurrent_password_hashes: 1,
        password_queue_secs: 30,
        ..Default::default()
    };
    let t = std::sync::Arc::new(TestApp::with_world(crate::support::World::with_config(
        config,
    )));
    let gate = PasswordGate::from_ref(&t.state);
    let held = gate.enter().await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                let body = serde_json::json!({
                    "email": format!("person{i}@shops.example"),
                    "password": "some passphrase or other",
                });
                t.json(Method::POST, "/api/v1/auth/login", None, body).await
            })
        })
        .collect();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "too-many-logins".into())
        );
        assert!(!r.header("retry-after").is_empty());
    }
    drop(held);
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            serde_json::json!({ "email": Who::Viewer.email(), "password": super::PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// The log as a test can read it: everything at WARN or above, from this thread.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// A client's mistakes and attacks are answered 4xx and never logged as errors or
/// warnings (an attacker must not be able to flood the operator's error log).
#[tokio::test]
async fn hostile_requests_get_4xx_and_never_log_at_warn_or_error() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let t = TestApp::new();
    let api = "/api/v1/tenants/alpha";
    let o = Some(Who::Owner);
    let put = t.put_file(&format!("{api}/files/a.txt"), o, b"abc").await;
    assert_eq!(put.status, StatusCode::CREATED);
    let raw = |method: Method, uri: String, who: Option<Who>| t.request(method, &uri, who);
    let requests: Vec<Request<Body>> = vec![
        raw(Method::GET, format!("{api}/search?q=a%00b"), o)
            .body(Body::empty())
            .unwrap(),
        raw(
            Method::GET,
            format!("{api}/files/..%2f..%2fetc%2fpasswd"),
            o,
        )
        .body(Body::empty())
        .unwrap(),
        raw(Method::GET, "/api/v1/tenants/nosuch/tree".into(), o)
            .body(Body::empty())
            .unwrap(),
        raw(Method::PUT, format!("{api}/files/b.txt"), Some(Who::Viewer))
            .body(Body::from("x"))
            .unwrap(),
        raw(Method::GET, format!("{api}/files/a.txt"), o)
            .header("range", "bytes=999999-")
            .body(Body::empty())
            .unwrap(),
        raw(Method::PUT, format!("{api}/files/a.txt"), o)
            .header("if-match", "\"not-the-etag\"")
            .body(Body::from("y"))
            .unwrap(),
        raw(Method::POST, format!("{api}/records/clients"), o)
            .header("content-type", "application/json")
            .body(Body::from("{\"name\": "))
            .unwrap(),
        raw(Method::POST, format!("{api}/records/clients"), o)
            .header("content-type", "text/plain")
            .body(Body::from("{}"))
            .unwrap(),
        raw(Method::POST, format!("{api}/records/clients"), o)
            .header("content-type", "application/json")
            .body(Body::from(format!(
                "{{\"notes\": \"{}\"}}",
                "x".repeat(2 * 1024 * 1024)
            )))
            .unwrap(),
        raw(Method::POST, "/api/v1/auth/login".into(), None)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"email": "owner@test.example", "password": "wrong wrong wrong"}"#,
            ))
            .unwrap(),
        raw(Method::GET, format!("{api}/tree"), None)
            .body(Body::empty())
            .unwrap(),
    ];
    for req in requests {
        let what = format!("{} {}", req.method(), req.uri());
        let r = t.send(req).await;
        assert!(r.status.is_client_error(), "{what}: {}", r.status);
    }
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.is_empty(), "4xx answers were logged:\n{text}");
    // The capture works: an error on this thread is seen.
    tracing::error!("a real error");
    assert!(String::from_utf8_lossy(&log.0.lock().unwrap()).contains("a real error"));
}

/// Password resets cannot be used to spend the server's hashing or mail: a wrong token is
/// refused before any hashing slot is waited for (the only one is held here), wrong
/// tokens from one address are throttled, and reset requests are limited per address.
#[tokio::test]
async fn reset_guesses_and_requests_are_limited_and_never_wait_for_hashing() {
    let config = coffer::config::Config {
        max_concurrent_password_hashes: 1,
        password_queue_secs: 3600,
        ..Default::default()
    };
    let t = TestApp::with_world(crate::support::World::with_config(config));
    let gate = PasswordGate::from_ref(&t.state);
    let _held = gate.enter().await.unwrap();
    let confirm = |i: usize| serde_json::json!({ "token": format!("guess-{i}"), "new_password": "a brand new passphrase" });
    let limit = coffer::auth::throttle::RESET_GUESS_LIMIT;
    for i in 0..limit {
        let r = tokio::time::timeout(
            Duration::from_secs(60),
            t.json(
                Method::POST,
                "/api/v1/auth/password-reset/confirm",
                None,
                confirm(i),
            ),
        )
        .await
        .expect("a wrong reset token waited for the hashing slot");
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "bad-reset-token".into())
        );
    }
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            confirm(99),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!r.header("retry-after").is_empty());

    let ask = serde_json::json!({ "email": Who::Viewer.email() });
    for _ in 0..coffer::auth::throttle::RESET_REQUEST_LIMIT {
        let r = t
            .json(
                Method::POST,
                "/api/v1/auth/password-reset",
                None,
                ask.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r = t
        .json(Method::POST, "/api/v1/auth/password-reset", None, ask)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let mails = std::fs::read_dir(t.world.data_dir().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(mails, coffer::auth::throttle::RESET_REQUEST_LIMIT);
}

/// A tenant creation that fails after its vault was made (sign-up with an e-mail already
/// taken) leaves no vault behind, and the compensation is audited with the failure.
#[tokio::test]
async fn a_failed_signup_leaves_no_vault_and_audits_the_cleanup() {
    let t = TestApp::new();
    let tenants = t.world.data_dir().join("tenants");
    let before = std::fs::read_dir(&tenants).unwrap().count();
    let body = serde_json::json!({ "email": Who::Owner.email(),
        "password": "shop owner passphrase", "tenant_slug": "fresh-shop" });
    let r = t
        .json(Method::POST, "/api/v1/auth/signup", None, body)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.json());
    assert_eq!(std::fs::read_dir(&tenants).unwrap().count(), before);
    let slug = coffer::names::TenantSlug::parse("fresh-shop").unwrap();
    assert!(
        t.world
            .coffer
            .control()
            .tenant_by_slug(&slug)
            .unwrap()
            .is_none()
    );
    let events = t
        .world
        .coffer
        .audit()
        .query(&coffer::audit::EventQuery {
            limit: 100_000,
            ..Default::default()
        })
        .unwrap();
    let failure = events
        .iter()
        .rev()
        .find(|e| e.action == "tenant.create")
        .unwrap();
    assert_eq!(failure.outcome, "failure");
    assert_eq!(failure.detail.as_ref().unwrap()["vault_removed"], true);
}
