//! WebDAV's conditions and properties: `If:` headers kept whole or refused (never
//! dropped), dead properties kept, moved, bounded and charged to the quota, and a rename
//! that changes only the case of a name.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use coffer::audit::{AuditAction, EventQuery};
use coffer::vault::path::VaultPath;

use super::dav;
use crate::http::{TestApp, Who};
use crate::support::World;

fn proppatch(name: &str, value: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:tags"><D:set><D:prop>
<Z:{name}>{value}</Z:{name}></D:prop></D:set></D:propertyupdate>"#
    )
}

#[tokio::test]
async fn dead_properties_are_kept_move_with_their_file_and_are_bounded() {
    let t = TestApp::new();
    t.world.put(&t.world.alpha, "a.txt", b"a");
    let send = |method: &str, uri: &str, body: String| {
        t.send(
            t.request(dav(method), uri, Some(Who::Member))
                .header("depth", "0")
                .body(Body::from(body))
                .unwrap(),
        )
    };
    let set = send(
        "PROPPATCH",
        "/dav/alpha/a.txt",
        proppatch("colour", "green"),
    )
    .await;
    assert_eq!(set.status, StatusCode::MULTI_STATUS);
    assert!(
        String::from_utf8_lossy(&set.body).contains("200 OK"),
        "{:?}",
        set.body
    );
    let moved = t
        .send(
            t.request(dav("MOVE"), "/dav/alpha/a.txt", Some(Who::Member))
                .header("destination", "/dav/alpha/b.txt")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(moved.status, StatusCode::CREATED);
    let all = send("PROPFIND", "/dav/alpha/b.txt", String::new()).await;
    assert!(
        String::from_utf8_lossy(&all.body).contains("green"),
        "{:?}",
        all.body
    );
    let v = t.world.vault(&t.world.alpha);
    let stored = v
        .properties(Some(&VaultPath::parse("b.txt").unwrap()))
        .unwrap();
    assert_eq!((stored.len(), stored[0].name.as_str()), (1, "colour"));
    assert!(
        v.properties(Some(&VaultPath::parse("a.txt").unwrap()))
            .unwrap()
            .is_empty()
    );
    // Audited, by the member.
    let events = t
        .world
        .coffer
        .audit()
        .query(&EventQuery {
            action: Some(AuditAction::FileProperties.as_str()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.as_deref(), Some("a.txt"));
    // Bounded: a value over 4 KiB, or a 65th property, is refused (507 in the 207) and
    // nothing of that request is kept.
    let huge = send(
        "PROPPATCH",
        "/dav/alpha/b.txt",
        proppatch("big", &"x".repeat(5000)),
    )
    .await;
    assert!(
        String::from_utf8_lossy(&huge.body).contains("507"),
        "{:?}",
        huge.body
    );
    for i in 1..64 {
        let r = send(
            "PROPPATCH",
            "/dav/alpha/b.txt",
            proppatch(&format!("p{i}"), "v"),
        )
        .await;
        assert!(String::from_utf8_lossy(&r.body).contains("200 OK"), "{i}");
    }
    let over = send("PROPPATCH", "/dav/alpha/b.txt", proppatch("p64", "v")).await;
    assert!(
        String::from_utf8_lossy(&over.body).contains("507"),
        "{:?}",
        over.body
    );
    let stored = v
        .properties(Some(&VaultPath::parse("b.txt").unwrap()))
        .unwrap();
    assert_eq!(stored.len(), 64);
    // Deleted with their file.
    let del = send("DELETE", "/dav/alpha/b.txt", String::new()).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(
        v.properties(Some(&VaultPath::parse("b.txt").unwrap()))
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn if_headers_are_kept_whole_or_refused_never_dropped() {
    let t = TestApp::new();
    t.world.put(&t.world.alpha, "doc.txt", b"v1");
    let put = |tags: axum::http::HeaderValue| {
        t.request(Method::PUT, "/dav/alpha/doc.txt", Some(Who::Member))
            .header("if", tags)
            .body(Body::from("v2"))
            .unwrap()
    };
    let v = t.world.vault(&t.world.alpha);
    let current = || {
        v.stat(&VaultPath::parse("doc.txt").unwrap())
            .unwrap()
            .sha256
            .unwrap()
    };
    let v1 = current();
    // A relative resource tag with a stale entity tag: the condition holds (412), it is
    // not dropped (which would write unconditionally).
    let stale = axum::http::HeaderValue::from_static("</dav/alpha/doc.txt> ([\"0000\"])");
    assert_eq!(
        t.send(put(stale)).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(current(), v1);
    let fresh = format!("</dav/alpha/doc.txt> ([\"{}\"])", &v1[..32]);
    let fresh = axum::http::HeaderValue::from_str(&fresh).unwrap();
    assert_eq!(t.send(put(fresh)).await.status, StatusCode::NO_CONTENT);
    assert_ne!(current(), v1);
    // Bytes dav-server's scanner would read past, and a second If: header: 400.
    let raw = axum::http::HeaderValue::from_bytes(b"(<\xc3\xa9").unwrap();
    let reply = t.send(put(raw)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let twice = t
        .request(Method::PUT, "/dav/alpha/doc.txt", Some(Who::Member))
        .header("if", "(<urn:uuid:1>)")
        .header("if", "</dav/bravo/x> (<urn:uuid:1>)")
        .body(Body::from("v3"))
        .unwrap();
    assert_eq!(t.send(twice).await.status, StatusCode::BAD_REQUEST);
    // A GET is refused too: dav-server evaluates If: on reads as well.
    let get = t
        .request(Method::GET, "/dav/alpha/doc.txt", Some(Who::Viewer))
        .header(
            "if",
            axum::http::HeaderValue::from_bytes(b"(<\xff").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.send(get).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_rename_may_change_only_the_case_and_properties_count_against_the_quota() {
    let world = World::new();
    let tiny = world
        .coffer
        .create_tenant(
            &crate::support::operator(),
            crate::support::new_tenant("tiny", Some(200)),
        )
        .unwrap();
    let t = TestApp::with_world(world);
    t.make_owner(&tiny);
    t.world.put(&tiny, "invoice.pdf", b"pdf");
    let moved = t
        .send(
            t.request(dav("MOVE"), "/dav/tiny/invoice.pdf", Some(Who::Owner))
                .header("destination", "/dav/tiny/Invoice.pdf")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(moved.status, StatusCode::CREATED, "{:?}", moved.body);
    let names: Vec<String> = t
        .world
        .vault(&tiny)
        .all_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(names, ["Invoice.pdf"]);
    // Another file's name differing only in case is still refused.
    t.world.put(&tiny, "other.txt", b"o");
    let clash = t
        .send(
            t.request(dav("MOVE"), "/dav/tiny/other.txt", Some(Who::Owner))
                .header("destination", "/dav/tiny/INVOICE.pdf")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(clash.status.is_client_error(), "{}", clash.status);
    // 200 bytes of quota: a 300-byte property does not fit, and is not kept.
    let over = t
        .send(
            t.request(dav("PROPPATCH"), "/dav/tiny/Invoice.pdf", Some(Who::Owner))
                .body(Body::from(proppatch("note", &"n".repeat(300))))
                .unwrap(),
        )
        .await;
    assert!(
        String::from_utf8_lossy(&over.body).contains("507"),
        "{:?}",
        over.body
    );
    let v = t.world.vault(&tiny);
    assert!(
        v.properties(Some(&VaultPath::parse("Invoice.pdf").unwrap()))
            .unwrap()
            .is_empty()
    );
    let small = t
        .send(
            t.request(dav("PROPPATCH"), "/dav/tiny/Invoice.pdf", Some(Who::Owner))
                .body(Body::from(proppatch("note", "n")))
                .unwrap(),
        )
        .await;
    assert!(
        String::from_utf8_lossy(&small.body).contains("200 OK"),
        "{:?}",
        small.body
    );
    let (charged, _) = v.space().unwrap();
    assert!(charged > 4, "property bytes are charged: {charged}");
}
