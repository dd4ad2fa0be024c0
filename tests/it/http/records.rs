//! Records and search through the API: create, read, replace, merge-patch and delete
//! with versions, concurrent writers, limits, filters and pages; search scoped to its
//! tenant, where user text is never query syntax.

use axum::body::Body;
use axum::http::{Method, StatusCode};

use super::{TestApp, Who};

const T: &str = "/api/v1/tenants/alpha";

#[tokio::test]
async fn records_crud_concurrency_and_limits() {
    let t = TestApp::new();
    let url = format!("{T}/records/clients");
    let r = t
        .json(
            Method::POST,
            &format!("{url}?id=c-1"),
            Some(Who::Member),
            serde_json::json!({ "name": "Hannah", "status": "active", "visits": 3 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("etag"), "\"1\"");
    assert_eq!(r.header("location"), format!("{url}/c-1"));
    for i in 0..3 {
        t.json(
            Method::POST,
            &url,
            Some(Who::Member),
            serde_json::json!({ "name": format!("Client {i}"), "status": "lead" }),
        )
        .await;
    }
    assert_eq!(
        t.json(
            Method::POST,
            &format!("{url}?id=c-1"),
            Some(Who::Member),
            serde_json::json!({})
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    let r = t
        .call(
            Method::GET,
            &format!("{url}?eq.status=active"),
            Some(Who::Viewer),
        )
        .await;
    assert_eq!(r.json()["records"].as_array().unwrap().len(), 1);
    let r = t
        .call(
            Method::GET,
            &format!("{url}?eq.visits=3"),
            Some(Who::Viewer),
        )
        .await;
    assert_eq!(r.json()["records"][0]["id"], "c-1");
    let r = t
        .call(Method::GET, &format!("{url}?limit=2"), Some(Who::Viewer))
        .await;
    let page = r.json();
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_owned();
    let r = t
        .call(
            Method::GET,
            &format!("{url}?limit=2&cursor={}", next.replace('|', "%7C")),
            Some(Who::Viewer),
        )
        .await;
    assert_eq!(r.json()["records"].as_array().unwrap().len(), 2);
    assert_eq!(
        t.call(Method::GET, &format!("{url}?bogus=1"), Some(Who::Viewer))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Replace needs If-Match; a stale version is refused.
    let put = |v: Option<&'static str>, body: serde_json::Value| {
        let t = &t;
        async move {
            let mut b = t
                .request(
                    Method::PUT,
                    &format!("{T}/records/clients/c-1"),
                    Some(Who::Member),
                )
                .header("content-type", "application/json");
            if let Some(v) = v {
                b = b.header("if-match", v);
            }
            t.send(b.body(Body::from(body.to_string())).unwrap()).await
        }
    };
    assert_eq!(
        put(None, serde_json::json!({ "name": "H" })).await.status,
        StatusCode::PRECONDITION_REQUIRED
    );
    let r = put(
        Some("\"1\""),
        serde_json::json!({ "name": "Hannah R.", "status": "active" }),
    )
    .await;
    assert_eq!((r.status, r.header("etag")), (StatusCode::OK, "\"2\""));
    assert_eq!(
        put(Some("\"1\""), serde_json::json!({ "name": "lost update" }))
            .await
            .status,
        StatusCode::PRECONDITION_FAILED
    );
    // Merge patch.
    let r = t
        .send(
            t.request(
                Method::PATCH,
                &format!("{T}/records/clients/c-1"),
                Some(Who::Member),
            )
            .header("content-type", "application/merge-patch+json")
            .header("if-match", "\"2\"")
            .body(Body::from(r#"{"status": null, "phone": "555-0100"}"#))
            .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["body"],
        serde_json::json!({ "name": "Hannah R.", "phone": "555-0100" })
    );
    // The history of the change is in the audit log.
    let audit = t
        .call(Method::GET, &format!("{T}/audit"), Some(Who::Auditor))
        .await
        .json();
    let updates = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "record.update" && e["target"] == "clients/c-1")
        .count();
    assert_eq!(updates, 2);
    // Bad input: malformed JSON with a pointer, wrong shapes, limits.
    let raw = |body: &'static str, ct: &'static str| {
        let t = &t;
        async move {
            t.send(
                t.request(
                    Method::POST,
                    &format!("{T}/records/clients"),
                    Some(Who::Member),
                )
                .header("content-type", ct)
                .body(Body::from(body))
                .unwrap(),
            )
            .await
        }
    };
    let r = raw(r#"{"name": "x",}"#, "application/json").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid-json".into())
    );
    assert!(r.json()["detail"].as_str().unwrap().contains("line 1"));
    assert_eq!(
        raw("[1, 2]", "application/json").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        raw("{}", "text/plain").await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let deep: &'static str = Box::leak(
        format!(
            "{}{}",
            "{\"a\":".repeat(40),
            "1".to_owned() + &"}".repeat(40)
        )
        .into_boxed_str(),
    );
    assert_eq!(raw(deep, "application/json").await.code(), "json-too-deep");
    let huge: &'static str =
        Box::leak(format!("{{\"blob\": \"{}\"}}", "x".repeat(1_100_000)).into_boxed_str());
    assert_eq!(
        raw(huge, "application/json").await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        t.json(
            Method::POST,
            &format!("{T}/records/Bad-Name"),
            Some(Who::Member),
            serde_json::json!({})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    // Delete with a stale version fails; with the right one succeeds.
    let del = |v: &'static str| {
        let t = &t;
        async move {
            t.send(
                t.request(
                    Method::DELETE,
                    &format!("{T}/records/clients/c-1"),
                    Some(Who::Member),
                )
                .header("if-match", v)
                .body(Body::empty())
                .unwrap(),
            )
            .await
            .status
        }
    };
    assert_eq!(del("\"1\"").await, StatusCode::PRECONDITION_FAILED);
    assert_eq!(del("\"3\"").await, StatusCode::NO_CONTENT);
    assert_eq!(
        t.call(
            Method::GET,
            &format!("{T}/records/clients/c-1"),
            Some(Who::Member)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .call(Method::GET, &format!("{T}/records"), Some(Who::Viewer))
        .await;
    assert_eq!(
        r.json()["collections"][0],
        serde_json::json!({ "name": "clients", "count": 3 })
    );
}

#[tokio::test]
async fn search_is_tenant_scoped_and_never_syntax() {
    let t = TestApp::new();
    t.json(
        Method::POST,
        &format!("{T}/records/jobs"),
        Some(Who::Member),
        serde_json::json!({ "title": "Hedge trimming at Oakridge" }),
    )
    .await;
    t.put_file(
        &format!("{T}/files/oakridge/plan.pdf"),
        Some(Who::Member),
        b"%PDF",
    )
    .await;
    t.json(
        Method::POST,
        "/api/v1/tenants/bravo/records/jobs",
        Some(Who::Stranger),
        serde_json::json!({ "title": "Oakridge secret" }),
    )
    .await;
    let r = t
        .call(
            Method::GET,
            &format!("{T}/search?q=oakridge"),
            Some(Who::Viewer),
        )
        .await;
    let hits = r.json()["hits"].as_array().unwrap().clone();
    assert!(
        hits.iter().any(|h| h["kind"] == "record")
            && hits.iter().any(|h| h["ref"] == "oakridge/plan.pdf")
    );
    assert!(
        !r.body.windows(6).any(|w| w == b"secret"),
        "no other tenant's data"
    );
    for q in [
        "%22",
        "body%3Ax",
        "a%20OR%20b",
        "NEAR(a",
        "*",
        "%5E",
        "%28%28",
        "title%3A%22x%22",
    ] {
        let r = t
            .call(Method::GET, &format!("{T}/search?q={q}"), Some(Who::Viewer))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{q}");
    }
    assert_eq!(
        t.call(Method::GET, &format!("{T}/search"), Some(Who::Viewer))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}
