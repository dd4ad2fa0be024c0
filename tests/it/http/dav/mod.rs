//! WebDAV (`/dav/{tenant}/`) through the app: every method × actor of the RBAC matrix,
//! Basic credentials (an API token, never the password), hostile URLs, `Destination:`
//! and `If:` headers, writes that are durable, indexed, quota-checked and audited like the
//! API's, lock timeouts on the server's clock, and a folder larger than one listing page.
//! Real clients (litmus, rclone) run against a served instance in `served::webdav_*`.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use coffer::audit::{AuditAction, EventQuery};
use coffer::auth::permission::TenantPermission as TP;
use coffer::clock::ManualClock;
use coffer::config::Config;
use coffer::http::routes::DAV_ROUTES;
use coffer::vault::path::VaultPath;

use super::{PASSWORD, Reply, TestApp, Who};

mod conditions;
use crate::support::World;

fn dav(method: &str) -> Method {
    Method::from_bytes(method.as_bytes()).unwrap()
}

/// Who may use each WebDAV method, written from the issue's words (viewers read, members
/// write, auditors see nothing), never read from the server's table.
fn expected_permission(method: &str) -> TP {
    match method {
        "OPTIONS" | "PROPFIND" | "GET" | "HEAD" => TP::FilesRead,
        _ => TP::FilesWrite,
    }
}

fn may(who: Who, p: TP) -> bool {
    match p {
        TP::FilesRead => matches!(who, Who::Owner | Who::Admin | Who::Member | Who::Viewer),
        _ => matches!(who, Who::Owner | Who::Admin | Who::Member),
    }
}

const PROPPATCH_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>
<Z:Win32LastModifiedTime>Mon, 30 Nov 2026 10:00:00 GMT</Z:Win32LastModifiedTime>
</D:prop></D:set></D:propertyupdate>"#;

const LOCK_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>
<D:locktype><D:write/></D:locktype><D:owner>test</D:owner></D:lockinfo>"#;

/// One request per method that succeeds for anyone allowed, and its status then.
fn probe(
    t: &TestApp,
    method: &str,
    who: Option<Who>,
) -> (axum::http::request::Builder, Body, StatusCode) {
    let tag = who.map_or("anon", Who::name);
    let d = "/dav/alpha";
    let req = |uri: String| t.request(dav(method), &uri, who);
    match method {
        "OPTIONS" => (req(format!("{d}/")), Body::empty(), StatusCode::OK),
        "PROPFIND" => (
            req(format!("{d}/")).header("depth", "1"),
            Body::empty(),
            StatusCode::MULTI_STATUS,
        ),
        "GET" | "HEAD" => (req(format!("{d}/seed.txt")), Body::empty(), StatusCode::OK),
        "PUT" => (
            req(format!("{d}/put-{tag}.txt")),
            Body::from("new"),
            StatusCode::CREATED,
        ),
        "DELETE" => (
            req(format!("{d}/del-{tag}.txt")),
            Body::empty(),
            StatusCode::NO_CONTENT,
        ),
        "MKCOL" => (
            req(format!("{d}/dir-{tag}")),
            Body::empty(),
            StatusCode::CREATED,
        ),
        "COPY" => (
            req(format!("{d}/seed.txt")).header("destination", format!("{d}/copy-{tag}.txt")),
            Body::empty(),
            StatusCode::CREATED,
        ),
        "MOVE" => (
            req(format!("{d}/mv-{tag}.txt")).header("destination", format!("{d}/moved-{tag}.txt")),
            Body::empty(),
            StatusCode::CREATED,
        ),
        "PROPPATCH" => (
            req(format!("{d}/seed.txt")),
            Body::from(PROPPATCH_BODY),
            StatusCode::MULTI_STATUS,
        ),
        "LOCK" => (
            req(format!("{d}/lock-{tag}.txt")),
            Body::from(LOCK_BODY),
            StatusCode::CREATED,
        ),
        // A token that names no lock: refused by the lock table, after authorization.
        "UNLOCK" => (
            req(format!("{d}/seed.txt")).header(
                "lock-token",
                "<urn:uuid:00000000-0000-0000-0000-000000000000>",
            ),
            Body::empty(),
            StatusCode::CONFLICT,
        ),
        other => panic!("no probe for {other}: add one"),
    }
}

#[tokio::test]
async fn every_webdav_method_follows_the_rbac_matrix() {
    let t = TestApp::new();
    t.world.put(&t.world.alpha, "seed.txt", b"seed");
    let everyone = crate::http::rbac::ACTORS;
    for who in everyone {
        let tag = who.map_or("anon", Who::name);
        t.world.put(&t.world.alpha, &format!("del-{tag}.txt"), b"x");
        t.world.put(&t.world.alpha, &format!("mv-{tag}.txt"), b"x");
    }
    assert_eq!(
        DAV_ROUTES.len(),
        12,
        "a new WebDAV method needs its probe here"
    );
    for route in DAV_ROUTES {
        assert_eq!(
            route.permission,
            coffer::auth::permission::Permission::Tenant(expected_permission(route.method)),
            "{}",
            route.method
        );
        for who in everyone {
            let (req, body, allowed) = probe(&t, route.method, who);
            let reply = t.send(req.body(body).unwrap()).await;
            let expected = match who {
                None => StatusCode::UNAUTHORIZED,
                // Not a member: the tenant does not exist for them.
                Some(Who::Stranger | Who::Operator) => StatusCode::NOT_FOUND,
                Some(w) if may(w, expected_permission(route.method)) => allowed,
                Some(_) => StatusCode::FORBIDDEN,
            };
            assert_eq!(
                reply.status, expected,
                "{} as {who:?}: {:?}",
                route.method, reply.body
            );
            if who.is_none() {
                assert!(reply.header("www-authenticate").starts_with("Basic realm="));
            }
        }
    }
    // Any other method is not WebDAV's: 405 with the list.
    let reply = t
        .call(Method::PATCH, "/dav/alpha/seed.txt", Some(Who::Owner))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.header("allow").contains("PROPFIND"));
}

fn basic(user: &str, secret: &str) -> String {
    let raw = format!("{user}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

async fn token(t: &TestApp, who: Who, role: &str) -> String {
    let reply = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(who),
            serde_json::json!({"tenant": "alpha", "role": role, "name": "drive"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.json()["token"].as_str().unwrap().to_owned()
}

async fn as_basic(t: &TestApp, method: &str, uri: &str, auth: &str, body: &'static str) -> Reply {
    let req = axum::http::Request::builder()
        .method(dav(method))
        .uri(uri)
        .header("host", "coffer.test")
        .header("authorization", auth)
        .header("depth", "0")
        .body(Body::from(body))
        .unwrap();
    t.send(req).await
}

#[tokio::test]
async fn basic_credentials_are_an_email_and_an_api_token_never_the_password() {
    let t = TestApp::new();
    let owner = token(&t, Who::Owner, "owner").await;
    let viewer = token(&t, Who::Viewer, "viewer").await;
    let (o, v) = (Who::Owner.email(), Who::Viewer.email());
    let ok = as_basic(&t, "PROPFIND", "/dav/alpha/", &basic(&o, &owner), "").await;
    assert_eq!(ok.status, StatusCode::MULTI_STATUS);
    // The address is matched without regard to case.
    let upper = as_basic(
        &t,
        "PROPFIND",
        "/dav/alpha/",
        &basic(&o.to_uppercase(), &owner),
        "",
    )
    .await;
    assert_eq!(upper.status, StatusCode::MULTI_STATUS);
    // Another person's address with this token, the account password, garbage: 401.
    for auth in [
        basic(&v, &owner),
        basic(&o, PASSWORD),
        basic(&o, "cft_not-a-token"),
        "Basic !!!".to_owned(),
        basic("no-colon-here", ""),
    ] {
        let reply = as_basic(&t, "PROPFIND", "/dav/alpha/", &auth, "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{auth}");
        assert!(reply.header("www-authenticate").starts_with("Basic"));
    }
    let password = as_basic(&t, "PROPFIND", "/dav/alpha/", &basic(&o, PASSWORD), "").await;
    assert_eq!(password.code(), "bad-credentials");
    // A viewer's token reads and cannot write.
    let read = as_basic(&t, "PROPFIND", "/dav/alpha/", &basic(&v, &viewer), "").await;
    assert_eq!(read.status, StatusCode::MULTI_STATUS);
    let write = as_basic(&t, "PUT", "/dav/alpha/v.txt", &basic(&v, &viewer), "x").await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    // Basic is WebDAV's alone: the API does not take it.
    let api = as_basic(
        &t,
        "GET",
        "/api/v1/tenants/alpha/tree",
        &basic(&o, &owner),
        "",
    )
    .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    // While the business is restricted, a drive (a token, so a program) only reads.
    t.lifecycle("alpha", "restrict").await;
    let read = as_basic(&t, "PROPFIND", "/dav/alpha/", &basic(&o, &owner), "").await;
    assert_eq!(read.status, StatusCode::MULTI_STATUS);
    let write = as_basic(&t, "PUT", "/dav/alpha/r.txt", &basic(&o, &owner), "x").await;
    assert_eq!(
        (write.status, write.code()),
        (StatusCode::CONFLICT, "tenant-restricted".into())
    );
    t.lifecycle("alpha", "unrestrict").await;
    // A revoked token stops at once.
    let id = owner.split('_').nth(1).unwrap();
    let revoked = t
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/tokens/{id}"),
            Some(Who::Owner),
        )
        .await;
    assert!(revoked.status.is_success(), "{:?}", revoked.body);
    let after = as_basic(&t, "PROPFIND", "/dav/alpha/", &basic(&o, &owner), "").await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

/// The hostile-path families of THREATS.md, as WebDAV request URLs.
const HOSTILE: &[&str] = &[
    "..%2f..%2foutside%2fsecret.txt",
    "a/%2e%2e/%2e%2e/%2e%2e/outside/secret.txt",
    "%252e%252e/outside",
    "%c0%ae%c0%ae/outside",
    "a%5c..%5c..%5coutside",
    "..;/outside",
    "%ef%bc%8e%ef%bc%8e%ef%bc%8foutside",
    "C:%5cWindows",
    "%5c%5c%3f%5cC:%5cx",
    "CON",
    "lpt%c2%b9.txt",
    "x%00.txt",
    "trailing.%20",
    "trailing.",
    "%ff%fe",
    // An absolute path once decoded, a drive letter in the middle, a name too long.
    "%2fetc%2fpasswd",
    "a/C:%5cx/b",
    "n%E2%80%AEtxt.exe",
    concat!(
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    ),
];

#[tokio::test]
async fn hostile_urls_destinations_and_if_tags_are_refused_and_touch_nothing() {
    let t = TestApp::new();
    t.world.put(&t.world.alpha, "keep.txt", b"keep");
    t.world.put(&t.world.bravo, "theirs.txt", b"theirs");
    let before = crate::support::snapshot(&t.world.data_dir().join("tenants"));
    for path in HOSTILE {
        for method in ["PUT", "MKCOL", "DELETE", "PROPFIND", "GET", "LOCK"] {
            let body = match method {
                "LOCK" => Body::from(LOCK_BODY),
                "PUT" => Body::from("x"),
                _ => Body::empty(),
            };
            let req = t
                .request(dav(method), &format!("/dav/alpha/{path}"), Some(Who::Owner))
                .body(body)
                .unwrap();
            let reply = t.send(req).await;
            // 409: a literal, harmless name (`..;`) whose parent does not exist.
            assert!(
                matches!(reply.status.as_u16(), 400 | 404 | 409),
                "{method} {path}: {} {:?}",
                reply.status,
                reply.body
            );
        }
    }
    // Destination: another tenant, another host, a traversal, credentials in the URL.
    for (destination, status) in [
        ("/dav/bravo/stolen.txt", 403),
        ("http://coffer.test/dav/bravo/stolen.txt", 403),
        ("http://evil.test/dav/alpha/x.txt", 502),
        ("http://user@coffer.test/dav/alpha/x.txt", 502),
        ("/dav/alpha/../bravo/stolen.txt", 400),
        ("/dav/alpha/..%2f..%2foutside%2fx", 400),
        ("/dav/alpha/%2e%2e/%2e%2e/outside/x", 400),
        ("/dav/alphabet/x.txt", 403),
        ("/elsewhere/x.txt", 403),
    ] {
        for method in ["MOVE", "COPY"] {
            let req = t
                .request(dav(method), "/dav/alpha/keep.txt", Some(Who::Owner))
                .header("destination", destination)
                .body(Body::empty())
                .unwrap();
            let reply = t.send(req).await;
            assert_eq!(
                reply.status.as_u16(),
                status,
                "{method} to {destination}: {:?}",
                reply.body
            );
        }
    }
    // The same hostile paths as a MOVE or COPY's Destination.
    for path in HOSTILE {
        for method in ["MOVE", "COPY"] {
            let req = t
                .request(dav(method), "/dav/alpha/keep.txt", Some(Who::Owner))
                .header("destination", format!("/dav/alpha/{path}"))
                .body(Body::empty())
                .unwrap();
            let reply = t.send(req).await;
            assert!(
                matches!(reply.status.as_u16(), 400 | 409),
                "{method} to {path}: {} {:?}",
                reply.status,
                reply.body
            );
        }
    }
    // If: tags name lock roots: only this vault's, and well formed.
    for tags in [
        "</dav/bravo/theirs.txt> (<urn:uuid:1>)",
        "<http://evil.test/dav/alpha/keep.txt> (<urn:uuid:1>)",
        "</dav/alpha/%2e%2e/x> (<urn:uuid:1>)",
        "(<urn:uuid:1> [\"cut-off",
    ] {
        let req = t
            .request(Method::PUT, "/dav/alpha/keep.txt", Some(Who::Owner))
            .header("if", tags)
            .body(Body::from("changed"))
            .unwrap();
        let reply = t.send(req).await;
        assert!(
            matches!(reply.status.as_u16(), 400 | 403 | 502),
            "{tags}: {}",
            reply.status
        );
    }
    let after = crate::support::snapshot(&t.world.data_dir().join("tenants"));
    let changed: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k)
        .filter(|k| !k.ends_with("-wal") && !k.ends_with("-shm") && !k.ends_with(".db"))
        .collect();
    assert!(changed.is_empty(), "files changed: {changed:?}");
    assert_eq!(
        std::fs::read(t.world.tmp.path().join("outside/secret.txt")).unwrap(),
        b"outside secret"
    );
    let bravo = t.world.vault(&t.world.bravo).all_entries().unwrap();
    assert_eq!(bravo.len(), 1, "{bravo:?}");
    // Case and Unicode collisions: a name differing from `keep.txt` only in case is
    // refused; the NFD spelling of an NFC name is the same file, never a second one.
    let collide = t
        .request(Method::PUT, "/dav/alpha/KEEP.txt", Some(Who::Owner))
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(t.send(collide).await.status, StatusCode::CONFLICT);
    let mkcol = t
        .request(dav("MKCOL"), "/dav/alpha/Keep.TXT", Some(Who::Owner))
        .body(Body::empty())
        .unwrap();
    assert!(t.send(mkcol).await.status.is_client_error());
    for (spelling, body) in [("caf%C3%A9.txt", "nfc"), ("cafe%CC%81.txt", "nfd")] {
        let req = t
            .request(
                Method::PUT,
                &format!("/dav/alpha/{spelling}"),
                Some(Who::Owner),
            )
            .body(Body::from(body))
            .unwrap();
        assert!(t.send(req).await.status.is_success(), "{spelling}");
    }
    let cafe: Vec<_> = t
        .world
        .vault(&t.world.alpha)
        .all_entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.path.starts_with("caf"))
        .collect();
    assert_eq!(cafe.len(), 1, "{cafe:?}");
    assert_eq!(cafe[0].path, "caf\u{e9}.txt");
    let v = t.world.vault(&t.world.alpha);
    assert!(v.stat(&VaultPath::parse("KEEP.txt").unwrap()).is_err());
    assert!(v.stat(&VaultPath::parse("Keep.TXT").unwrap()).is_err());
}

#[tokio::test]
async fn webdav_writes_are_indexed_audited_quota_checked_and_conditional() {
    let world = World::with_config(Config {
        max_file_bytes: 1000,
        ..Default::default()
    });
    let tiny = world
        .coffer
        .create_tenant(
            &crate::support::operator(),
            crate::support::new_tenant("tiny", Some(20)),
        )
        .unwrap();
    let t = TestApp::with_world(world);
    t.make_owner(&tiny);
    let put = |path: &str, body: &'static str| {
        t.request(
            Method::PUT,
            &format!("/dav/alpha/{path}"),
            Some(Who::Member),
        )
        .body(Body::from(body))
        .unwrap()
    };
    // No parent: 409, never `mkdir -p`.
    assert_eq!(
        t.send(put("no/parent.txt", "x")).await.status,
        StatusCode::CONFLICT
    );
    let created = t.send(put("notes.txt", "first")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let replaced = t.send(put("notes.txt", "second")).await;
    assert_eq!(replaced.status, StatusCode::NO_CONTENT);
    let v = t.world.vault(&t.world.alpha);
    let entry = v.stat(&VaultPath::parse("notes.txt").unwrap()).unwrap();
    assert_eq!(
        entry.sha256.as_deref(),
        Some(crate::support::sha256_hex(b"second").as_str())
    );
    assert_eq!(
        replaced.header("etag"),
        format!("\"{}\"", &entry.sha256.unwrap()[..32])
    );
    // If-None-Match: * never overwrites.
    let guarded = t
        .request(Method::PUT, "/dav/alpha/notes.txt", Some(Who::Member))
        .header("if-none-match", "*")
        .body(Body::from("third"))
        .unwrap();
    assert_eq!(
        t.send(guarded).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    // Every change is in the audit log, by the member who made it.
    let member = &t.actor(Who::Member).user_id;
    let events = t
        .world
        .coffer
        .audit()
        .query(&EventQuery {
            action: Some(AuditAction::FileWrite.as_str()),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let by_member = events
        .iter()
        .filter(|e| e.target.as_deref() == Some("notes.txt") && e.actor == format!("user:{member}"))
        .count();
    assert_eq!(by_member, 2, "{events:?}");
    // Over the quota: 507; over the size limit: 413; nothing of either kept.
    let to_tiny = |body: &'static [u8]| {
        t.request(Method::PUT, "/dav/tiny/big.bin", Some(Who::Owner))
            .body(Body::from(body))
            .unwrap()
    };
    let over_quota = t.send(to_tiny(b"more than twenty bytes of data")).await;
    assert_eq!(over_quota.status, StatusCode::INSUFFICIENT_STORAGE);
    let too_big: &'static [u8] = Box::leak(vec![b'x'; 1001].into_boxed_slice());
    let over_limit = t.send(to_tiny(too_big)).await;
    assert_eq!(over_limit.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(t.world.vault(&tiny).all_entries().unwrap().is_empty());
    let staging = std::fs::read_dir(t.world.vault_dir(&tiny).join("staging"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(staging, 0, "staged bytes left behind");
    // The root is not deleted (nor its entries one by one before a refusal).
    let root = t
        .send(
            t.request(dav("DELETE"), "/dav/alpha/", Some(Who::Owner))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(root.status, StatusCode::FORBIDDEN);
    assert!(v.trash_list().unwrap().is_empty());
    // A chunked upload announcing a length it does not keep (Finder's
    // X-Expected-Entity-Length) is stored whole, never cut at the announced length.
    let chunks = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"0123456789")),
        Ok(axum::body::Bytes::from_static(b"abcdef")),
    ]);
    let announced = t
        .request(Method::PUT, "/dav/alpha/finder.txt", Some(Who::Member))
        .header("x-expected-entity-length", "10")
        .body(Body::from_stream(chunks))
        .unwrap();
    assert_eq!(t.send(announced).await.status, StatusCode::CREATED);
    let stored = v.stat(&VaultPath::parse("finder.txt").unwrap()).unwrap();
    assert_eq!(stored.size, 16);
    // A folder goes to the trash whole: one item to restore, as from the web UI.
    let send = |method: &str, uri: &str, body: &'static str| {
        t.request(dav(method), uri, Some(Who::Member))
            .body(Body::from(body))
            .unwrap()
    };
    assert_eq!(
        t.send(send("MKCOL", "/dav/alpha/job", "")).await.status,
        StatusCode::CREATED
    );
    for f in ["a.txt", "b.txt"] {
        let r = t
            .send(send("PUT", &format!("/dav/alpha/job/{f}"), "x"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let gone = t.send(send("DELETE", "/dav/alpha/job", "")).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let trash = v.trash_list().unwrap();
    assert_eq!(trash.len(), 1, "{trash:?}");
    assert_eq!(trash[0].original_path, "job");
    // DELETE goes to the trash, as in the API.
    let del = t
        .send(
            t.request(dav("DELETE"), "/dav/alpha/notes.txt", Some(Who::Member))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(v.trash_list().unwrap().len(), 2);
}

#[tokio::test]
async fn locks_are_per_tenant_and_expire_on_the_servers_clock() {
    let clock = ManualClock::starting_now();
    let t = TestApp::with_world(World::with_clock(Config::default(), clock.clone()));
    t.make_owner(&t.world.bravo);
    t.world.put(&t.world.alpha, "doc.txt", b"v1");
    t.world.put(&t.world.bravo, "doc.txt", b"v1");
    let lock = |timeout: &str| {
        t.request(dav("LOCK"), "/dav/alpha/doc.txt", Some(Who::Owner))
            .header("timeout", timeout.to_owned())
            .body(Body::from(LOCK_BODY))
            .unwrap()
    };
    let put_as = |who: Who, tenant: &str| {
        t.request(Method::PUT, &format!("/dav/{tenant}/doc.txt"), Some(who))
            .body(Body::from("v2"))
            .unwrap()
    };
    let locked = t.send(lock("Second-60")).await;
    assert_eq!(locked.status, StatusCode::OK, "{:?}", locked.body);
    assert!(String::from_utf8_lossy(&locked.body).contains("Second-60"));
    assert_eq!(
        t.send(put_as(Who::Member, "alpha")).await.status,
        StatusCode::LOCKED
    );
    // The same path in another tenant is another resource.
    assert_eq!(
        t.send(put_as(Who::Owner, "bravo")).await.status,
        StatusCode::NO_CONTENT
    );
    clock.advance(time::Duration::seconds(61));
    assert_eq!(
        t.send(put_as(Who::Member, "alpha")).await.status,
        StatusCode::NO_CONTENT
    );
    // An UNLOCK aimed at another URL releases nothing, and the lock still expires.
    let locked = t.send(lock("Second-60")).await;
    assert_eq!(locked.status, StatusCode::OK);
    let token = locked.header("lock-token").to_owned();
    let astray = t
        .send(
            t.request(dav("UNLOCK"), "/dav/alpha/", Some(Who::Owner))
                .header("lock-token", token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(astray.status.is_client_error(), "{}", astray.status);
    assert_eq!(
        t.send(put_as(Who::Member, "alpha")).await.status,
        StatusCode::LOCKED
    );
    clock.advance(time::Duration::seconds(61));
    assert_eq!(
        t.send(put_as(Who::Member, "alpha")).await.status,
        StatusCode::NO_CONTENT
    );
    // Infinite: ten minutes (dav-server's cap on exclusive locks, which is the default
    // here); a shared lock an hour at most, whatever is asked.
    let endless = t.send(lock("Infinite")).await;
    assert_eq!(endless.status, StatusCode::OK);
    let default = coffer::http::dav::DEFAULT_TIMEOUT.as_secs();
    assert!(String::from_utf8_lossy(&endless.body).contains(&format!("Second-{default}")));
    clock.advance(time::Duration::seconds(default as i64 + 1));
    let shared = t
        .request(dav("LOCK"), "/dav/alpha/doc.txt", Some(Who::Owner))
        .header("timeout", "Second-86400")
        .body(Body::from(LOCK_BODY.replace("exclusive", "shared")))
        .unwrap();
    let endless = t.send(shared).await;
    assert_eq!(endless.status, StatusCode::OK);
    let capped = coffer::http::dav::MAX_TIMEOUT.as_secs();
    assert!(String::from_utf8_lossy(&endless.body).contains(&format!("Second-{capped}")));
    clock.advance(time::Duration::seconds(capped as i64 - 1));
    assert_eq!(
        t.send(put_as(Who::Member, "alpha")).await.status,
        StatusCode::LOCKED
    );
    clock.advance(time::Duration::seconds(2));
    assert_eq!(
        t.send(put_as(Who::Member, "alpha")).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_folder_larger_than_a_listing_page_is_listed_whole_at_depth_one() {
    let t = TestApp::new();
    let v = t.world.vault(&t.world.alpha);
    let mut batch = v.begin_import();
    let n = 1_234;
    for i in 0..n {
        let path = VaultPath::parse(&format!("big/f{i:05}.txt")).unwrap();
        batch.stage_file(path, &mut &b"x"[..], u64::MAX).unwrap();
    }
    batch.add_dir(VaultPath::parse("big").unwrap());
    batch
        .commit(&crate::support::operator(), &[], false)
        .unwrap();
    let reply = t
        .send(
            t.request(dav("PROPFIND"), "/dav/alpha/big/", Some(Who::Viewer))
                .header("depth", "1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS);
    let text = String::from_utf8_lossy(&reply.body);
    assert_eq!(text.matches("<D:response>").count(), n + 1);
    assert!(text.contains("/dav/alpha/big/f01233.txt"));
    // Depth: infinity is refused with RFC 4918's precondition, whatever the client claims.
    let deep = t
        .send(
            t.request(dav("PROPFIND"), "/dav/alpha/", Some(Who::Viewer))
                .header("depth", "infinity")
                .header("x-litmus", "props: 1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(deep.status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&deep.body).contains("propfind-finite-depth"));
}
