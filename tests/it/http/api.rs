//! Files, limits, the operational endpoints and concurrency through the API (records and
//! search: `records`).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

use super::{TestApp, Who};
use crate::support::World;
use crate::support::sha256_hex;
use coffer::config::Config;

const T: &str = "/api/v1/tenants/alpha";

/// Downloads of at most 64 KiB are read whole in the call that opens them, larger ones
/// streamed: on both sides of that limit, whole and ranged GETs give the stored bytes.
#[tokio::test]
async fn downloads_either_side_of_the_read_whole_limit_are_exact() {
    let t = TestApp::new();
    for size in [64 * 1024, 64 * 1024 + 1] {
        let bytes: &'static [u8] = (0..size)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>()
            .leak();
        let url = format!("{T}/files/size-{size}.bin");
        let put = t.put_file(&url, Some(Who::Member), bytes).await;
        assert_eq!(put.status, StatusCode::CREATED);
        let whole = t.call(Method::GET, &url, Some(Who::Viewer)).await;
        assert_eq!(whole.header("content-length"), size.to_string());
        assert!(whole.body[..] == *bytes, "{size} bytes: the body differs");
        for (range, from, to) in [
            ("bytes=65530-", 65_530, size - 1),
            ("bytes=-3", size - 3, size - 1),
        ] {
            let ranged = t
                .send(
                    t.request(Method::GET, &url, Some(Who::Viewer))
                        .header("range", range)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(ranged.status, StatusCode::PARTIAL_CONTENT);
            assert_eq!(
                ranged.header("content-range"),
                format!("bytes {from}-{to}/{size}")
            );
            assert!(ranged.body[..] == bytes[from..=to], "{size} bytes, {range}");
        }
    }
}

#[tokio::test]
async fn file_upload_download_ranges_and_conditions() {
    let t = TestApp::new();
    let body: &'static [u8] = b"0123456789abcdefghij";
    let r = t
        .put_file(
            &format!("{T}/files/jobs/site%20photo.jpg"),
            Some(Who::Member),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let etag = format!("\"{}\"", sha256_hex(body));
    assert_eq!(r.header("etag"), etag);
    assert_eq!(r.json()["path"], "jobs/site photo.jpg");
    // Replace: 200, then conditional writes.
    assert_eq!(
        t.put_file(
            &format!("{T}/files/jobs/site%20photo.jpg"),
            Some(Who::Member),
            body
        )
        .await
        .status,
        StatusCode::OK
    );
    let cond = |h: &'static str, v: String| {
        let t = &t;
        async move {
            t.send(
                t.request(
                    Method::PUT,
                    &format!("{T}/files/jobs/site%20photo.jpg"),
                    Some(Who::Member),
                )
                .header(h, v)
                .body(Body::from("new"))
                .unwrap(),
            )
            .await
            .status
        }
    };
    assert_eq!(
        cond("if-none-match", "*".into()).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        cond("if-match", format!("\"{}\"", "0".repeat(64))).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(cond("if-match", etag.clone()).await, StatusCode::OK);
    let r = t
        .put_file(
            &format!("{T}/files/jobs/site%20photo.jpg"),
            Some(Who::Member),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // Download with headers that keep a browser from rendering it as a page.
    let get = |range: Option<&'static str>| {
        let t = &t;
        async move {
            let mut b = t.request(
                Method::GET,
                &format!("{T}/files/jobs/site%20photo.jpg"),
                Some(Who::Viewer),
            );
            if let Some(r) = range {
                b = b.header("range", r);
            }
            t.send(b.body(Body::empty()).unwrap()).await
        }
    };
    let r = get(None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], body);
    assert_eq!(r.header("content-type"), "image/jpeg");
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert!(r.header("content-disposition").starts_with("attachment;"));
    assert!(r.header("content-security-policy").contains("sandbox"));
    assert_eq!(r.header("etag"), etag);
    assert!(!r.header("last-modified").is_empty());
    let r = get(Some("bytes=10-14")).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::PARTIAL_CONTENT, &b"abcde"[..])
    );
    assert_eq!(r.header("content-range"), "bytes 10-14/20");
    let r = get(Some("bytes=-3")).await;
    assert_eq!(&r.body[..], b"hij");
    let r = get(Some("bytes=20-")).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), "bytes */20");
    // Conditional GET and HEAD.
    let r = t
        .send(
            t.request(
                Method::GET,
                &format!("{T}/files/jobs/site%20photo.jpg"),
                Some(Who::Viewer),
            )
            .header("if-none-match", &etag)
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = t
        .call(
            Method::HEAD,
            &format!("{T}/files/jobs/site%20photo.jpg"),
            Some(Who::Viewer),
        )
        .await;
    assert_eq!(
        (r.status, r.header("content-length"), r.body.len()),
        (StatusCode::OK, "20", 0)
    );
    // HTML is never served as HTML.
    t.put_file(
        &format!("{T}/files/page.html"),
        Some(Who::Member),
        b"<script>alert(1)</script>",
    )
    .await;
    let r = t
        .call(
            Method::GET,
            &format!("{T}/files/page.html"),
            Some(Who::Member),
        )
        .await;
    assert_eq!(r.header("content-type"), "application/octet-stream");
}

#[tokio::test]
async fn listings_dirs_moves_and_trash() {
    let t = TestApp::new();
    for i in 0..5 {
        let r = t
            .send(
                t.request(
                    Method::PUT,
                    &format!("{T}/files/docs/f{i}.txt"),
                    Some(Who::Member),
                )
                .body(Body::from(format!("file {i}")))
                .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = t
        .call(
            Method::GET,
            &format!("{T}/tree/docs?limit=2"),
            Some(Who::Viewer),
        )
        .await;
    let j = r.json();
    assert_eq!(j["entries"].as_array().unwrap().len(), 2);
    assert_eq!(j["next"], "f1.txt");
    let r = t
        .call(
            Method::GET,
            &format!("{T}/tree/docs?limit=2&after=f1.txt"),
            Some(Who::Viewer),
        )
        .await;
    assert_eq!(r.json()["entries"][0]["name"], "f2.txt");
    let r = t
        .call(Method::GET, &format!("{T}/tree"), Some(Who::Viewer))
        .await;
    assert_eq!(r.json()["entries"][0]["name"], "docs");
    assert_eq!(
        t.call(Method::GET, &format!("{T}/tree/nope"), Some(Who::Viewer))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let r = t
        .json(
            Method::POST,
            &format!("{T}/dirs"),
            Some(Who::Member),
            serde_json::json!({ "path": "archive/2025" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = t
        .json(
            Method::POST,
            &format!("{T}/move"),
            Some(Who::Member),
            serde_json::json!({ "from": "docs/f0.txt", "to": "archive/2025/f0.txt" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // The second path input is parsed like the first.
    for to in ["../escape.txt", "/etc/x", "a\\b", "archive/%2e%2e/x"] {
        let r = t
            .json(
                Method::POST,
                &format!("{T}/move"),
                Some(Who::Member),
                serde_json::json!({ "from": "docs/f1.txt", "to": to }),
            )
            .await;
        assert_eq!(
            (r.status, r.json()["pointer"].as_str()),
            (StatusCode::BAD_REQUEST, Some("/to")),
            "{to}"
        );
    }
    let r = t
        .json(
            Method::POST,
            &format!("{T}/move"),
            Some(Who::Member),
            serde_json::json!({ "from": "docs/f1.txt", "to": "DOCS/f1.txt" }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "case-conflict".into())
    );

    let r = t
        .call(
            Method::DELETE,
            &format!("{T}/files/docs"),
            Some(Who::Member),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let trash_id = r.json()["trashed"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.call(
            Method::GET,
            &format!("{T}/files/docs/f2.txt"),
            Some(Who::Member)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .call(Method::GET, &format!("{T}/trash"), Some(Who::Viewer))
        .await;
    assert_eq!(r.json()["items"][0]["original_path"], "docs");
    let r = t
        .call(
            Method::POST,
            &format!("{T}/trash/{trash_id}/restore"),
            Some(Who::Member),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.call(
            Method::GET,
            &format!("{T}/files/docs/f2.txt"),
            Some(Who::Member)
        )
        .await
        .body
        .as_ref(),
        b"file 2"
    );
    let r = t
        .call(
            Method::DELETE,
            &format!("{T}/files/docs/f2.txt"),
            Some(Who::Member),
        )
        .await;
    let id = r.json()["trashed"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.call(
            Method::DELETE,
            &format!("{T}/trash/{id}"),
            Some(Who::Member)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.call(Method::DELETE, &format!("{T}/trash/{id}"), Some(Who::Admin))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.call(Method::DELETE, &format!("{T}/trash/{id}"), Some(Who::Admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn upload_limits_and_quota() {
    let world = crate::support::World::with_config(coffer::config::Config {
        max_file_bytes: 1000,
        ..Default::default()
    });
    let op = crate::support::operator();
    let tiny = world
        .coffer
        .create_tenant(&op, crate::support::new_tenant("tiny", Some(1500)))
        .unwrap();
    let t = super::TestApp::with_world(world);
    t.make_owner(&tiny);

    let big: &'static [u8] = Box::leak(vec![b'x'; 1001].into_boxed_slice());
    let r = t
        .put_file(&format!("{T}/files/big.bin"), Some(Who::Owner), big)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "file-too-large".into())
    );
    // Without Content-Length (chunked), the limit is enforced while streaming.
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        axum::body::Bytes::from_static(big),
    )]);
    let r = t
        .send(
            t.request(Method::PUT, &format!("{T}/files/big.bin"), Some(Who::Owner))
                .body(Body::from_stream(stream))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let fill: &'static [u8] = Box::leak(vec![b'y'; 900].into_boxed_slice());
    assert_eq!(
        t.put_file("/api/v1/tenants/tiny/files/a.bin", Some(Who::Owner), fill)
            .await
            .status,
        StatusCode::CREATED
    );
    let r = t
        .put_file("/api/v1/tenants/tiny/files/b.bin", Some(Who::Owner), fill)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::INSUFFICIENT_STORAGE, "quota-exceeded".into())
    );
    // The refusal carries the numbers (P16: a customer sees why).
    let numbers = r.json();
    assert_eq!(
        (&numbers["used"], &numbers["limit"], &numbers["attempted"]),
        (
            &serde_json::json!(900),
            &serde_json::json!(1500),
            &serde_json::json!(900)
        )
    );
    assert_eq!(
        t.call(
            Method::GET,
            "/api/v1/tenants/tiny/files/b.bin",
            Some(Who::Owner)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ops_endpoints_and_problem_bodies() {
    let t = TestApp::new();
    assert_eq!(
        t.call(Method::GET, "/healthz", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.call(Method::GET, "/readyz", None).await.status,
        StatusCode::OK
    );
    t.call(Method::GET, "/api/v1/auth/me", Some(Who::Member))
        .await;
    // Metrics are not public: 404 for anyone without the token, even an operator.
    for who in [None, Some(Who::Operator), Some(Who::Owner)] {
        assert_eq!(
            t.call(Method::GET, "/metrics", who).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let t = TestApp::with_world(World::with_config(Config {
        metrics_token: Some("m".repeat(32)),
        ..Config::default()
    }));
    t.call(Method::GET, "/api/v1/auth/me", Some(Who::Member))
        .await;
    let scrape = |token: &str| {
        t.request(Method::GET, "/metrics", None)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        t.send(scrape(&"x".repeat(32))).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.call(Method::GET, "/metrics", Some(Who::Owner))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a signed-in user is not a scraper"
    );
    let m = t.send(scrape(&"m".repeat(32))).await;
    assert_eq!(m.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&m.body);
    assert!(text.contains("coffer_http_requests_total"), "{text}");
    assert!(
        !text.contains("alpha"),
        "metrics carry route templates, never tenant names"
    );
    let doc = t
        .call(Method::GET, "/api/v1/openapi.json", None)
        .await
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/tenants/{tenant}/files/{path}"]["put"].is_object());
    let docs = t.call(Method::GET, "/api/v1/docs", None).await;
    assert_eq!(
        (docs.status, docs.header("location")),
        (StatusCode::PERMANENT_REDIRECT, "/api/v1/docs/")
    );
    // Unknown route and wrong method: problem+json too, with a request id.
    let r = t.call(Method::GET, "/api/v1/nope", None).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    assert!(!r.header("x-request-id").is_empty());
    let r = t.call(Method::PATCH, "/healthz", None).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (StatusCode::METHOD_NOT_ALLOWED, "application/problem+json")
    );
    let r = t
        .send(
            Request::builder()
                .uri("/api/v1/tenants/alpha/tree?limit=abc")
                .header("cookie", &t.actor(Who::Viewer).cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (StatusCode::BAD_REQUEST, "application/problem+json")
    );
}

/// Two clients create the same new file at once: the write itself says which one made
/// it, so exactly one answers 201 and the other 200 (issue 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue7_concurrent_creates_get_one_201() {
    let t = std::sync::Arc::new(TestApp::new());
    for round in 0..8 {
        let uri = format!("/api/v1/tenants/alpha/files/race/{round}.txt");
        let put = |body: &'static [u8]| {
            let (t, uri) = (t.clone(), uri.clone());
            tokio::spawn(async move { t.put_file(&uri, Some(Who::Owner), body).await.status })
        };
        let (a, b) = (put(b"first"), put(b"second"));
        let mut statuses = [a.await.unwrap(), b.await.unwrap()];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CREATED],
            "round {round}"
        );
    }
}

/// While one tenant's vault open is held in progress, a request for another tenant is
/// served: no global lock is held across an open (issue 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue7_a_slow_vault_open_does_not_delay_another_tenants_request() {
    let t = std::sync::Arc::new(TestApp::new());
    let world = &t.world;
    let store = world.coffer.vault_store_unchecked();
    store.evict(world.alpha.id);
    store.evict(world.bravo.id);
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let alpha = world.alpha.id;
    store.set_open_hook(Some(std::sync::Arc::new(move |tenant| {
        if tenant == alpha {
            let _ = entered_tx.send(());
            let _ = release_rx.lock().unwrap().recv();
        }
    })));
    let slow = {
        let t = t.clone();
        tokio::spawn(async move {
            t.call(Method::GET, "/api/v1/tenants/alpha/tree", Some(Who::Owner))
                .await
                .status
        })
    };
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    // Alpha's open is in progress. The stranger's tenant must be served meanwhile (the
    // timeout only guards against a hang: any progress answers it).
    let other = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        t.call(
            Method::GET,
            "/api/v1/tenants/bravo/tree",
            Some(Who::Stranger),
        ),
    )
    .await;
    release_tx.send(()).unwrap();
    assert_eq!(other.map(|r| r.status).ok(), Some(StatusCode::OK));
    assert_eq!(slow.await.unwrap(), StatusCode::OK);
    t.world.coffer.vault_store_unchecked().set_open_hook(None);
}
