//! Raw HTTP over a real socket: traversal payloads exactly as an attacker sends them
//! (no client normalising `..`), against a server bound to port 0 before it is spawned.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::{TestApp, Who};
use crate::support::snapshot;

fn raw_request(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn encoded_traversal_and_hostile_bytes_never_escape() {
    let t = TestApp::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(coffer::http::serve(
        t.state.clone(),
        listener,
        None,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let before = snapshot(t.world.tmp.path().join("outside").as_path());
    let bravo_before = snapshot(&t.world.vault_dir(&t.world.bravo));
    let cookie = &t.actor(Who::Owner).cookie;
    let csrf = &t.actor(Who::Owner).csrf;
    let payloads = [
        "../../outside/secret.txt",
        "..%2f..%2foutside%2fsecret.txt",
        "%2e%2e/%2e%2e/outside/secret.txt",
        "%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
        "..%252f..%252foutside",
        "%252e%252e/x",
        "..%5c..%5coutside",
        "..\\..\\outside",
        "%c0%ae%c0%ae/%c0%ae%c0%ae/outside",
        "%c0%af",
        "x%00.txt",
        "..;/..;/outside",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "C:%5cwindows",
        "\\\\?\\C:\\x",
        "CON",
        "a/./b",
        "a//b",
        "%ef%bc%8e%ef%bc%8e/x",
        "file.txt%20",
        "%ff%fe",
    ];
    for p in payloads {
        for (method, body) in [("GET", ""), ("PUT", "pwned"), ("DELETE", "")] {
            let req = format!(
                "{method} /api/v1/tenants/alpha/files/{p} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let (status, text) = raw_request(addr, &req);
            // `..;` is not `..`: a literal (harmless) name inside the vault, so the PUT
            // creates it there and the DELETE then trashes it. Everything else is refused.
            let expected_literal = match method {
                "GET" => 404,
                "PUT" => 201,
                _ => 200,
            };
            if p == "..;/..;/outside" {
                assert_eq!(status, expected_literal, "{method} {p}\n{text}");
            } else {
                assert!(
                    (400..500).contains(&status),
                    "{method} {p}: {status}\n{text}"
                );
            }
            assert!(!text.contains("outside secret"), "{method} {p} leaked");
            assert!(
                !text.contains("/tmp") && !text.contains(t.world.tmp.path().to_str().unwrap()),
                "host path leaked: {text}"
            );
        }
    }
    // Tenant slugs in the URL are parsed too.
    for slug in ["..%2fbravo", "%2e%2e", "ALPHA", "alpha%00", "bravo"] {
        let (status, _) = raw_request(
            addr,
            &format!(
                "GET /api/v1/tenants/{slug}/tree HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(status, 404, "{slug}");
    }
    assert_eq!(
        snapshot(t.world.tmp.path().join("outside").as_path()),
        before
    );
    // The literal `..;` tree stayed inside alpha's files/ (and went to its trash).
    assert!(
        t.world
            .vault_dir(&t.world.alpha)
            .join("files/..;/..;")
            .is_dir()
    );
    assert_eq!(snapshot(&t.world.vault_dir(&t.world.bravo)), bravo_before);
    // Keep-alive: small requests on one connection are answered promptly (TCP_NODELAY).
    let mut s = TcpStream::connect(addr).unwrap();
    for _ in 0..20 {
        s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    let _ = stop_tx.send(());
    runtime.block_on(server).unwrap().unwrap();
}
