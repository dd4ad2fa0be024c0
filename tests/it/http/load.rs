//! Hostile load against a real server: stalled uploads, silent and trickling
//! connections, too many connections from one address, bursts of logins. None of them
//! may stop the server from answering everyone else.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use coffer::config::Config;

use super::{TestApp, Who};
use crate::support::World;

/// A server on port 0 in its own runtime, whose blocking pool is small on purpose (so
/// that anything holding blocking threads without bound would starve it); stopped when
/// dropped.
struct Server {
    app: TestApp,
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    fn start(config: Config, blocking_threads: usize) -> Server {
        let app = TestApp::with_world(World::with_config(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(blocking_threads)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(coffer::http::serve(
            app.state.clone(),
            listener,
            None,
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            app,
            addr,
            runtime: Some(runtime),
            stop: Some(stop),
        }
    }

    /// A connection whose reads give up only after a deadlock guard (any answer at all,
    /// or the server closing, ends the wait at once).
    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    }

    /// A complete request on a fresh connection; the status of the answer.
    fn request(&self, method: &str, path: &str, who: Option<Who>, body: &str) -> u16 {
        let mut s = self.connect();
        let auth = who.map_or(String::new(), |w| {
            let a = self.app.actor(w);
            format!("Cookie: {}\r\nX-CSRF-Token: {}\r\n", a.cookie, a.csrf)
        });
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        status_of(&mut s)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Reads an answer and returns its status (0 if the server closed without one).
fn status_of(s: &mut TcpStream) -> u16 {
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Sends the first answer the server gives on `s` (if any) to `answers`, from a thread
/// of its own: which of several stalled requests is answered depends on scheduling.
fn report_answer(s: &TcpStream, answers: &std::sync::mpsc::Sender<String>) {
    let mut reader = s.try_clone().unwrap();
    let tx = answers.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        if let Ok(n) = reader.read(&mut buf)
            && n > 0
        {
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
}

/// Whether the server has closed the connection (a read ends with nothing).
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// More stalled uploads than the cap: those over it are refused at once with 503 and
/// `Retry-After`, and health checks and another tenant's requests are still answered
/// while the rest stall, on a blocking pool smaller than the number of stalled clients
/// (issue 8).
#[test]
fn issue8_stalled_uploads_beyond_the_cap_never_freeze_the_server() {
    let server = Server::start(
        Config {
            max_concurrent_uploads: 4,
            max_concurrent_uploads_per_tenant: 4,
            upload_idle_timeout_secs: 600,
            header_read_timeout_secs: 600,
            ..Config::default()
        },
        8,
    );
    let owner = server.app.actor(Who::Owner).clone();
    let (answered_tx, answered) = std::sync::mpsc::channel::<String>();
    let mut stalled = Vec::new();
    for i in 0..12 {
        let mut s = server.connect();
        write!(
            s,
            "PUT /api/v1/tenants/alpha/files/stall/{i}.bin HTTP/1.1\r\nHost: t\r\nCookie: {}\r\nX-CSRF-Token: {}\r\nContent-Length: 1000000\r\n\r\nx",
            owner.cookie, owner.csrf
        )
        .unwrap();
        // Which four are admitted depends on scheduling; each reader reports an answer.
        report_answer(&s, &answered_tx);
        stalled.push(s);
    }
    // Eight are answered 503 with Retry-After at once; four stall, holding their slots.
    for _ in 0..8 {
        let text = answered.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    }
    assert!(
        answered.try_recv().is_err(),
        "only the uploads over the cap are answered"
    );
    // Everyone else is still served.
    assert_eq!(server.request("GET", "/healthz", None, ""), 200);
    assert_eq!(
        server.request("GET", "/api/v1/tenants/bravo/tree", Some(Who::Stranger), ""),
        200
    );
    assert_eq!(
        server.request("GET", "/api/v1/tenants/alpha/tree", Some(Who::Viewer), ""),
        200
    );
    for s in stalled {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

/// One tenant cannot take every upload slot: past its own cap its uploads are refused
/// ("for this tenant") while another tenant's upload is still admitted (issue 8).
#[test]
fn issue8_one_tenant_cannot_take_every_upload_slot() {
    let server = Server::start(
        Config {
            max_concurrent_uploads: 6,
            max_concurrent_uploads_per_tenant: 2,
            upload_idle_timeout_secs: 600,
            header_read_timeout_secs: 600,
            ..Config::default()
        },
        8,
    );
    let stall = |tenant: &str, who: Who, i: usize| {
        let a = server.app.actor(who).clone();
        let mut s = server.connect();
        write!(
            s,
            "PUT /api/v1/tenants/{tenant}/files/stall/{i}.bin HTTP/1.1\r\nHost: t\r\nCookie: {}\r\nX-CSRF-Token: {}\r\nContent-Length: 1000000\r\n\r\nx",
            a.cookie, a.csrf
        )
        .unwrap();
        s
    };
    // Three uploads into alpha: two stall, holding its two slots; the third is refused
    // at once. Which one is the third depends on scheduling: each reader reports.
    let (answered_tx, answered) = std::sync::mpsc::channel::<String>();
    let alpha: Vec<TcpStream> = (0..3)
        .map(|i| {
            let s = stall("alpha", Who::Owner, i);
            report_answer(&s, &answered_tx);
            s
        })
        .collect();
    let text = answered.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.contains("too-many-uploads") && text.contains("for this tenant"),
        "{text}"
    );
    // bravo still gets a slot: its upload is read (a stalled one is not answered).
    let mut bravo = stall("bravo", Who::Stranger, 0);
    bravo.write_all(&vec![b'y'; 999_999]).unwrap();
    assert_eq!(
        status_of(&mut bravo),
        201,
        "another tenant's upload was refused"
    );
    assert!(
        answered.try_recv().is_err(),
        "only the third upload is answered"
    );
    for s in &alpha {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

/// An export whose client stops reading is cut at the write deadline and frees its
/// slot; while it holds it, a second export of the same tenant is refused with 503 and
/// another tenant's export is served (issue 8).
#[test]
fn issue8_an_export_nobody_reads_is_cut_and_frees_its_slot() {
    let server = Server::start(
        Config {
            max_concurrent_exports_per_tenant: 1,
            response_write_timeout_secs: 1,
            ..Config::default()
        },
        16,
    );
    // Larger than what the socket buffers and the export's channel can absorb.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let big: &'static [u8] = Box::leak(
        (0..24 * 1024 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let rt = server.runtime.as_ref().unwrap();
    let put = rt.block_on(server.app.put_file(
        "/api/v1/tenants/alpha/files/big.bin",
        Some(Who::Owner),
        big,
    ));
    assert_eq!(put.status, StatusCode::CREATED);
    let owner = server.app.actor(Who::Owner).clone();
    let export = "/api/v1/tenants/alpha/export";
    let mut first = server.connect();
    write!(
        first,
        "GET {export} HTTP/1.1\r\nHost: t\r\nCookie: {}\r\n\r\n",
        owner.cookie
    )
    .unwrap();
    assert_eq!(status_of(&mut first), 200);
    // `first` now reads nothing. Its export holds the tenant's one slot...
    assert_eq!(server.request("GET", export, Some(Who::Owner), ""), 503);
    assert_eq!(
        server.request(
            "GET",
            "/api/v1/tenants/bravo/export",
            Some(Who::Stranger),
            ""
        ),
        200
    );
    // ...until the write deadline cuts the connection; then a new export is served.
    let mut status = 503;
    for _ in 0..3000 {
        status = server.request("GET", export, Some(Who::Owner), "");
        if status != 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status, 200, "the unread export never freed its slot");
    // What `first` got is a cut response: the chunked body never ends.
    let mut got = Vec::new();
    let _ = first.read_to_end(&mut got);
    assert!(got.len() < big.len(), "the whole archive was delivered");
    assert!(
        !got.ends_with(b"\r\n0\r\n\r\n"),
        "the response ended cleanly"
    );
}

/// Silent, incomplete, idle and trickling connections are closed by the server, and a
/// JSON body that stops arriving gets 408 (issue 8).
#[test]
fn issue8_idle_and_incomplete_connections_are_closed() {
    let server = Server::start(
        Config {
            header_read_timeout_secs: 1,
            json_body_timeout_secs: 1,
            ..Config::default()
        },
        16,
    );
    // Silent: connects and sends nothing.
    let mut silent = server.connect();
    // Incomplete headers.
    let mut partial = server.connect();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // A login whose body stops after one byte.
    let mut login = server.connect();
    login
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .unwrap();
    // A kept-alive connection, idle after its first answer.
    let mut idle = server.connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&mut idle), 200);
    assert!(closed_by_server(&mut silent), "silent connection kept open");
    assert!(
        closed_by_server(&mut partial),
        "incomplete headers kept open"
    );
    assert!(closed_by_server(&mut idle), "idle keep-alive kept open");
    assert_eq!(status_of(&mut login), 408, "a stopped body is answered 408");
    // The server still answers.
    assert_eq!(server.request("GET", "/healthz", None, ""), 200);
}

/// One address cannot hold more than its share of connections; the others are closed at
/// once and the server keeps answering (issue 8).
#[test]
fn issue8_connections_per_address_are_capped() {
    let server = Server::start(
        Config {
            max_connections_per_ip: 4,
            header_read_timeout_secs: 600,
            ..Config::default()
        },
        16,
    );
    let held: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    let mut over = server.connect();
    assert!(
        closed_by_server(&mut over),
        "a fifth connection from one address"
    );
    drop(held);
    // Once they are gone, the address is served again (the server may need a moment
    // to see the closes: retry on a fresh connection until it answers).
    let mut status = 0;
    for _ in 0..100 {
        status = server.request("GET", "/healthz", None, "");
        if status == 200 {
            break;
        }
        std::thread::yield_now();
    }
    assert_eq!(status, 200);
}

/// A burst of wrong passwords for one account counts every attempt in flight: at most
/// the limit is ever checked, the rest are throttled, and another account from the same
/// address still signs in (issue 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue8_a_burst_of_logins_cannot_outrun_the_throttle() {
    let t = std::sync::Arc::new(TestApp::new());
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move {
                t.json(
                    Method::POST,
                    "/api/v1/auth/login",
                    None,
                    serde_json::json!({ "email": "member@test.example", "password": "wrong guess here" }),
                )
                .await
                .status
            })
        })
        .collect();
    let mut unauthorized = 0;
    let mut throttled = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(unauthorized <= 5, "{unauthorized} guesses were checked");
    assert_eq!(unauthorized + throttled, 40);
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            serde_json::json!({ "email": "viewer@test.example", "password": super::PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Control characters in search text (a NUL ends SQLite's string) are refused as the
/// client's mistake, never a 500 (issue 8).
#[tokio::test]
async fn issue8_nul_in_search_is_a_400() {
    let t = TestApp::new();
    for q in ["%00", "a%00b", "x%0Ay", "%1F"] {
        let r = t
            .call(
                Method::GET,
                &format!("/api/v1/tenants/alpha/search?q={q}"),
                Some(Who::Viewer),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid-query".into()),
            "{q}"
        );
    }
    let r = t
        .call(
            Method::GET,
            "/api/v1/tenants/alpha/records/clients?eq.name=a%00b",
            Some(Who::Viewer),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// API tokens may expire: the expiry is shown in the token list and enforced on the
/// injected clock (issue 8).
#[tokio::test]
async fn issue8_tokens_expire() {
    let clock = coffer::clock::ManualClock::starting_now();
    let t = TestApp::with_world(World::with_clock(Config::default(), clock.clone()));
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(Who::Member),
            serde_json::json!({ "tenant": "alpha", "role": "viewer", "expires_in_days": 1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let listed = t
        .call(Method::GET, "/api/v1/auth/tokens", Some(Who::Member))
        .await;
    assert!(listed.json()["tokens"][0]["expires_at"].is_string());
    let me = |token: String| {
        let t = &t;
        async move {
            t.send(
                axum::http::Request::builder()
                    .uri("/api/v1/auth/me")
                    .header("authorization", format!("Bearer {token}"))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .status
        }
    };
    assert_eq!(me(token.clone()).await, StatusCode::OK);
    clock.advance(time::Duration::hours(25));
    assert_eq!(me(token).await, StatusCode::UNAUTHORIZED);
}

/// The global connection cap, with raw sockets: past it, a new connection waits in the
/// listen backlog (answered only once another closes), never refused or served beyond
/// the cap. The test's address is a trusted proxy, so only the global cap applies.
#[test]
fn issue8_connections_beyond_the_global_cap_wait_for_a_free_one() {
    let server = Server::start(
        Config {
            max_connections: 2,
            trusted_proxies: vec!["127.0.0.1/32".into()],
            header_read_timeout_secs: 600,
            ..Config::default()
        },
        16,
    );
    let ask = |s: &mut TcpStream| {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    };
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = server.connect();
            ask(&mut s);
            assert_eq!(status_of(&mut s), 200);
            s
        })
        .collect();
    let mut waiting = server.connect();
    ask(&mut waiting);
    waiting
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    let early = waiting.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a third connection was served past the cap: {early:?}"
    );
    drop(held.pop());
    waiting
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(status_of(&mut waiting), 200, "served once a slot was free");
}
