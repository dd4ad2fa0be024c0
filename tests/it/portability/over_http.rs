//! Export and import over HTTP: the export streams, resumes with Range and never ends
//! silently short; import is the owner's alone, refuses hostile archives, and counts
//! what it unpacks against the quota while staging.

use std::io::Cursor;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use coffer::export::verify;

use super::seed;
use crate::http::{TestApp, Who};
use crate::support::operator;
use crate::support::zipgen::{RawEntry, build};

/// `?compress=none` stores every entry: an archive that verifies like the deflated one,
/// with its own ETag so that a resume never mixes the two, and resumable on its own.
#[tokio::test]
async fn an_export_without_compression_stores_everything_and_resumes() {
    let t = TestApp::new();
    seed(&t.world);
    let text = "client visit, hedge trimmed, invoice paid\n".repeat(2_000);
    t.put_file(
        "/api/v1/tenants/alpha/files/notes/long.txt",
        Some(Who::Member),
        text.leak().as_bytes(),
    )
    .await;
    let methods = |body: &[u8]| {
        let mut zip = zip::ZipArchive::new(Cursor::new(body.to_vec())).unwrap();
        (0..zip.len())
            .map(|i| zip.by_index_raw(i).unwrap().compression())
            .collect::<Vec<_>>()
    };
    let base = "/api/v1/tenants/alpha/export";
    let deflated = t.call(Method::GET, base, Some(Who::Owner)).await;
    assert!(methods(&deflated.body).contains(&zip::CompressionMethod::Deflated));
    let url = "/api/v1/tenants/alpha/export?compress=none";
    let stored = t.call(Method::GET, url, Some(Who::Owner)).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert!(
        methods(&stored.body)
            .iter()
            .all(|m| *m == zip::CompressionMethod::Stored)
    );
    assert!(stored.body.len() > deflated.body.len());
    let report = verify(Cursor::new(stored.body.to_vec())).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let etag = stored.header("etag").to_owned();
    assert_ne!(etag, deflated.header("etag"));
    // Resumed with its own tag: the rest of the stored archive.
    let resume = |tag: String| {
        t.request(Method::GET, url, Some(Who::Owner))
            .header("range", "bytes=100-")
            .header("if-range", tag)
            .body(Body::empty())
            .unwrap()
    };
    let resumed = t.send(resume(etag.clone())).await;
    assert_eq!(resumed.status, StatusCode::PARTIAL_CONTENT);
    assert!(
        resumed.body[..] == stored.body[100..],
        "the resumed bytes differ"
    );
    // With the deflated archive's tag it is no resume: a whole (new) stored archive.
    let other = t.send(resume(deflated.header("etag").to_owned())).await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other.header("etag").ends_with("-stored\""));
    assert!(
        verify(Cursor::new(other.body.to_vec()))
            .unwrap()
            .problems
            .is_empty()
    );
    for bad in ["?compress=zstd", "?compress=", "?level=9"] {
        let refused = t
            .call(Method::GET, &format!("{base}{bad}"), Some(Who::Owner))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn http_export_streams_resumes_and_never_truncates_silently() {
    let t = TestApp::new();
    seed(&t.world);
    let url = "/api/v1/tenants/alpha/export";
    let full = t.call(Method::GET, url, Some(Who::Owner)).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.header("content-type"), "application/zip");
    let etag = full.header("etag").to_owned();
    assert!(
        verify(Cursor::new(full.body.to_vec()))
            .unwrap()
            .problems
            .is_empty()
    );
    // Resume from the middle with If-Range: the rest matches the first download.
    let half = full.body.len() / 2;
    let resumed = t
        .send(
            t.request(Method::GET, url, Some(Who::Owner))
                .header("range", format!("bytes={half}-"))
                .header("if-range", &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(resumed.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resumed.header("content-range"),
        format!("bytes {half}-{}/{}", full.body.len() - 1, full.body.len())
    );
    assert_eq!(&resumed.body[..], &full.body[half..]);
    // After a change, the old ETag no longer matches: the whole new archive (200).
    t.put_file(
        "/api/v1/tenants/alpha/files/new.txt",
        Some(Who::Member),
        b"new",
    )
    .await;
    let stale = t
        .send(
            t.request(Method::GET, url, Some(Who::Owner))
                .header("range", "bytes=10-")
                .header("if-range", &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_ne!(stale.header("etag"), etag);
    // Auditors and members cannot export.
    assert_eq!(
        t.call(Method::GET, url, Some(Who::Member)).await.status,
        StatusCode::FORBIDDEN
    );
    // Export start and finish are audited.
    let events = t
        .world
        .coffer
        .audit()
        .events_for_tenant(t.world.alpha.id, 0, 10_000)
        .unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.action == "export.finish" && e.outcome == "success")
            .count()
            >= 2
    );

    // A file that can no longer be read mid-export: the body errors, it does not end.
    let files = t.world.vault_dir(&t.world.alpha).join("files");
    std::fs::remove_file(files.join("raw/sensor.bin")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", files.join("raw/sensor.bin")).unwrap();
    let response = tower::ServiceExt::oneshot(
        t.app.clone(),
        t.request(Method::GET, url, Some(Who::Owner))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "headers were sent before the failure"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    assert!(
        body.is_err(),
        "a failed export must end in a transfer error, not a short archive"
    );
}

#[tokio::test]
async fn http_import_is_owner_only_and_refuses_hostile_archives() {
    let t = TestApp::new();
    let upload = |who: Who, bytes: Vec<u8>, ct: &'static str, query: &'static str| {
        let t = &t;
        async move {
            t.send(
                t.request(
                    Method::POST,
                    &format!("/api/v1/tenants/alpha/import{query}"),
                    Some(who),
                )
                .header("content-type", ct)
                .body(Body::from(bytes))
                .unwrap(),
            )
            .await
        }
    };
    let good = build(&[RawEntry::file("docs/a.txt", b"hello")]);
    assert_eq!(
        upload(Who::Admin, good.clone(), "application/zip", "")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(Who::Owner, good.clone(), "text/plain", "")
            .await
            .status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let r = upload(Who::Owner, good.clone(), "application/zip", "").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.json()["files"], 1);
    let r = upload(Who::Owner, good.clone(), "application/zip", "").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "already-exists".into())
    );
    let r = upload(Who::Owner, good, "application/zip", "?conflict=skip").await;
    assert_eq!(r.status, StatusCode::OK);
    // An archive larger than the tenant's quota is refused while uploading (413).
    let op = operator();
    let tiny = t
        .world
        .coffer
        .create_tenant(&op, crate::support::new_tenant("tiny-quota", Some(64)))
        .unwrap();
    t.make_owner(&tiny);
    let big = build(&[RawEntry::file("a.bin", &[7u8; 4096])]);
    let r = t
        .send(
            t.request(
                Method::POST,
                "/api/v1/tenants/tiny-quota/import",
                Some(Who::Owner),
            )
            .header("content-type", "application/zip")
            .body(Body::from(big))
            .unwrap(),
        )
        .await;
    // The spooled archive counts against the quota: refused with the numbers.
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::INSUFFICIENT_STORAGE, "quota-exceeded".into())
    );
    let evil = build(&[RawEntry::file("../../outside/evil.txt", b"x")]);
    let r = upload(Who::Owner, evil, "application/zip", "").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "archive-refused".into())
    );
    assert_eq!(
        r.json()["reason"],
        "unsafe-entry-name",
        "the refusal names its reason"
    );
    assert!(
        std::fs::read_dir(t.world.vault_dir(&t.world.alpha).join(".staging"))
            .unwrap()
            .next()
            .is_none()
    );
}

/// Unpacked entries count against the quota while they are staged: an archive that is
/// small on the wire but inflates past the quota is refused with the numbers, and leaves
/// nothing staged or visible (issue 7).
#[tokio::test]
async fn issue7_import_staging_counts_against_the_quota() {
    let t = TestApp::new();
    let tenant = t
        .world
        .coffer
        .create_tenant(
            &operator(),
            crate::support::new_tenant("small-quota", Some(100_000)),
        )
        .unwrap();
    t.make_owner(&tenant);
    let zeros = vec![0u8; 1024 * 1024];
    let archive = build(&[RawEntry {
        deflate: true,
        ..RawEntry::file("inflates.bin", &zeros)
    }]);
    assert!(
        archive.len() < 10_000,
        "small on the wire: {}",
        archive.len()
    );
    let r = t
        .send(
            t.request(
                Method::POST,
                "/api/v1/tenants/small-quota/import",
                Some(Who::Owner),
            )
            .header("content-type", "application/zip")
            .body(Body::from(archive))
            .unwrap(),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::INSUFFICIENT_STORAGE, "quota-exceeded".into())
    );
    assert!(r.json()["detail"].as_str().unwrap().contains("100000"));
    let dir = t.world.vault_dir(&tenant);
    assert!(
        std::fs::read_dir(dir.join(".staging"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(
        std::fs::read_dir(dir.join("files"))
            .unwrap()
            .next()
            .is_none()
    );
}
