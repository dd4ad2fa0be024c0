//! What operators see in `/metrics`: descriptions, bucketed latency by method and
//! status class, transfers, errors by code and process figures, with bounded labels.
//! (The access log is read from a served process: `served.rs`.)

use axum::body::Body;
use axum::http::{Method, StatusCode};

use super::{TestApp, Who};
use crate::support::World;
use coffer::config::Config;

#[tokio::test]
async fn metrics_describe_every_family_and_bucket_latency() {
    let token = "m".repeat(32);
    let t = TestApp::with_world(World::with_config(Config {
        metrics_token: Some(token.clone()),
        ..Config::default()
    }));
    let file = "/api/v1/tenants/alpha/files/m.bin";
    t.put_file(file, Some(Who::Owner), b"0123456789").await;
    let got = t.call(Method::GET, file, Some(Who::Owner)).await;
    assert_eq!(got.status, StatusCode::OK);
    let missing = t
        .call(
            Method::GET,
            "/api/v1/tenants/alpha/files/nope",
            Some(Who::Owner),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Methods a client makes up share one label: they cannot grow the series.
    for invented in ["ZZA", "ZZB", "ZZC"] {
        let method = Method::from_bytes(invented.as_bytes()).unwrap();
        t.call(method, "/api/v1/auth/me", None).await;
    }
    let scrape = t
        .request(Method::GET, "/metrics", None)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let m = t.send(scrape).await;
    assert_eq!(m.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&m.body).into_owned();
    assert!(!text.contains("ZZA") && !text.contains("ZZB"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
    // Every family that has samples is described.
    let families: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .fold(n, |n, suffix| n.strip_suffix(suffix).unwrap_or(n))
        })
        .collect();
    for family in &families {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} has no TYPE"
        );
    }
    for expected in [
        "# TYPE coffer_http_request_duration_seconds histogram",
        "coffer_http_request_duration_seconds_bucket{",
        "method=\"PUT\"",
        "status=\"2xx\"",
        "coffer_transfers_total{kind=\"upload\",status=\"2xx\"}",
        "coffer_transfers_total{kind=\"download\",status=\"2xx\"}",
        "coffer_transfer_bytes_total{kind=\"download\",status=\"2xx\"}",
        "coffer_transfer_bytes_total{kind=\"download\",status=\"4xx\"}",
        "coffer_blocking_jobs_in_flight",
        "coffer_password_hash_slots_in_use",
        "coffer_quota_refusals_total",
        "coffer_http_errors_total{code=\"not-found\"}",
        "coffer_open_vaults",
        "coffer_upload_slots_in_use",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
    // Bounded labels: route templates, never a tenant, a slug or a file name.
    assert!(!text.contains("alpha") && !text.contains("m.bin"));
}
