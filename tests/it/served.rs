//! `coffer serve` as a separate process, read through its own log: TLS 1.3 accepted and
//! TLS 1.2 refused, HTTP/2 and HTTP/1.1 by ALPN, HSTS and the `__Host-` session cookie,
//! a certificate replaced on SIGHUP (a broken replacement keeps the old one serving),
//! SIGHUP without TLS, and the access log (one line per request, ids only, no colour).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::Arc;

use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::NewUser;
use coffer::names::Email;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::deployment_audit::self_signed;
use crate::support::operator;

const EMAIL: &str = "owner@tls.example";
const PASSWORD: &str = "correct horse battery staple";

pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: BufReader<ChildStderr>,
    /// Dropped with the server, which stops the watchdog.
    _watchdog: std::sync::mpsc::Sender<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills the server if the test is still running after two minutes, so a log line that
/// never comes fails the test (the server's stderr closes) instead of hanging it.
fn watchdog(pid: u32) -> std::sync::mpsc::Sender<()> {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            wait.recv_timeout(std::time::Duration::from_secs(120))
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    done
}

impl Server {
    /// Reads the log until a line containing every one of `needles`.
    fn wait_for_log(&mut self, needles: &[&str]) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.log.read_line(&mut line).unwrap() > 0,
                "the server exited before logging {needles:?}"
            );
            if needles.iter().all(|n| line.contains(n)) {
                return line;
            }
        }
    }

    fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn start(data: &std::path::Path, config: &std::path::Path) -> Server {
    start_logging(data, config, "info")
}

/// A server logging at `level`. Its log is a pipe that only `wait_for_log` reads, so a
/// test making many requests without reading it asks for `warn` (a full pipe would stop
/// the server).
pub(crate) fn start_logging(
    data: &std::path::Path,
    config: &std::path::Path,
    level: &str,
) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", level)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let log = BufReader::new(child.stderr.take().unwrap());
    let _watchdog = watchdog(child.id());
    Server {
        child,
        addr,
        log,
        _watchdog,
    }
}

fn client(
    trusted: &[&std::path::Path],
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        let pem = std::fs::read(cert).unwrap();
        for der in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
            roots.add(der.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A completed handshake, or the handshake's error.
fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr)?);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

fn leaf(tls: &Tls) -> CertificateDer<'static> {
    tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn pem_leaf(path: &std::path::Path) -> CertificateDer<'static> {
    let pem = std::fs::read(path).unwrap();
    rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap()
}

/// One HTTP/1.1 request; the response head and body as text.
fn http1(tls: &mut Tls, request: &str) -> String {
    tls.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    // `Connection: close`: the server ends the stream after the response.
    let _ = tls.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn serve_terminates_tls_13_with_hsts_host_cookie_alpn_and_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (coffer, _) = Coffer::init(&data, Config::default()).unwrap();
    coffer
        .control()
        .create_user(
            &operator(),
            &NewUser {
                email: Email::parse(EMAIL).unwrap(),
                name: "Owner".into(),
                password_hash: Some(coffer::auth::password::hash(PASSWORD).unwrap()),
                is_operator: false,
            },
        )
        .unwrap();
    drop(coffer);
    let (cert_a, key_a) = self_signed(dir.path(), "a");
    let (cert_b, key_b) = self_signed(dir.path(), "b");
    let (cert, key) = (dir.path().join("live.crt"), dir.path().join("live.key"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let config = dir.path().join("coffer.toml");
    std::fs::write(
        &config,
        format!(
            "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap();
    let mut server = start(&data, &config);
    let trusted = [cert_a.as_path(), cert_b.as_path()];
    use rustls::version::{TLS12, TLS13};

    // TLS 1.2 only: refused in the handshake.
    let refused = connect(server.addr, client(&trusted, &[&TLS12], &[b"http/1.1"]))
        .expect_err("a TLS 1.2-only client was served");
    assert!(
        refused.to_string().contains("ProtocolVersion"),
        "refused for another reason: {refused}"
    );

    // TLS 1.3 offering h2 first: HTTP/2 is chosen.
    let h2 = connect(
        server.addr,
        client(&trusted, &[&TLS13], &[b"h2", b"http/1.1"]),
    )
    .unwrap();
    assert_eq!(h2.conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        h2.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(leaf(&h2), pem_leaf(&cert_a));
    drop(h2);

    // HTTP/1.1 by ALPN: a sign-in sets the __Host- cookie, with HSTS.
    let mut h1 = connect(server.addr, client(&trusted, &[&TLS13], &[b"http/1.1"])).unwrap();
    assert_eq!(h1.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let body = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}"}}"#);
    let response = http1(
        &mut h1,
        &format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let lower = response.to_ascii_lowercase();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        lower.contains("\r\nstrict-transport-security: max-age=63072000; includesubdomains\r\n"),
        "{response}"
    );
    let cookie = response
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {response}"));
    assert!(cookie.contains(" __Host-coffer_session="), "{cookie}");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");

    // A new pair on disk and SIGHUP: new connections get it.
    let fingerprint_b = coffer::digest::sha256_hex_bytes(pem_leaf(&cert_b).as_ref());
    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    server.hangup();
    server.wait_for_log(&["TLS certificate loaded", &fingerprint_b]);
    let tls = connect(server.addr, client(&trusted, &[&TLS13], &[b"http/1.1"])).unwrap();
    assert_eq!(leaf(&tls), pem_leaf(&cert_b));

    // A broken renewal (a truncated certificate): logged, and B keeps serving.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    server.hangup();
    server.wait_for_log(&["not reloaded", &fingerprint_b]);
    let tls = connect(server.addr, client(&trusted, &[&TLS13], &[b"http/1.1"])).unwrap();
    assert_eq!(leaf(&tls), pem_leaf(&cert_b));
}

#[test]
fn sighup_without_tls_is_logged_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    Coffer::init(&data, Config::default()).unwrap();
    let config = dir.path().join("coffer.toml");
    std::fs::write(&config, "").unwrap();
    let mut server = start(&data, &config);
    // The banner comes before the reloader's listener exists; a signal in that window is
    // handled (the process lives) but not reported. An answered request means the
    // listener is in place.
    assert!(
        plain(
            server.addr,
            "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .starts_with("HTTP/1.1 200")
    );
    server.hangup();
    server.wait_for_log(&["SIGHUP", "nothing to reload"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(server.child.try_wait().unwrap().is_none());
}

/// One plain HTTP/1.1 request on a new connection; the response as text.
fn plain(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn every_request_has_one_access_line_with_ids_and_no_names_or_colour() {
    use coffer::control::{MemberChange, Role};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (coffer, _) = Coffer::init(&data, Config::default()).unwrap();
    let op = operator();
    let tenant = coffer
        .create_tenant(&op, crate::support::new_tenant("acme", None))
        .unwrap();
    let user = coffer
        .control()
        .create_user(
            &op,
            &NewUser {
                email: Email::parse(EMAIL).unwrap(),
                name: "Ada Lovelace".into(),
                password_hash: Some(coffer::auth::password::hash("correct horse battery").unwrap()),
                is_operator: false,
            },
        )
        .unwrap();
    coffer
        .auth()
        .operator_access(&op, &coffer::names::TenantSlug::parse("acme").unwrap())
        .unwrap()
        .change_member(coffer.control(), user.id, Role::Owner, MemberChange::Add)
        .unwrap();
    let (token, _) = coffer
        .auth()
        .issue_token(user.id, &tenant, Role::Owner, "log test", None, &op)
        .unwrap();
    drop(coffer);
    let config = dir.path().join("coffer.toml");
    std::fs::write(&config, "").unwrap();
    let mut server = start(&data, &config);
    let file = "/api/v1/tenants/acme/files/clients/ada-invoice.txt";
    let auth = format!("authorization: Bearer {token}\r\n");
    let put = plain(
        server.addr,
        &format!(
            "PUT {file} HTTP/1.1\r\nhost: x\r\n{auth}content-length: 12\r\nconnection: close\r\n\r\ntwelve bytes"
        ),
    );
    assert!(put.starts_with("HTTP/1.1 201"), "{put}");
    let get = plain(
        server.addr,
        &format!("GET {file} HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n"),
    );
    assert!(get.ends_with("twelve bytes"), "{get}");
    let anonymous = plain(
        server.addr,
        "GET /api/v1/tenants/acme/tree HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    let (tenant_id, user_id) = (tenant.id.to_string(), user.id.to_string());
    let upload = server.wait_for_log(&["coffer::access", "method=PUT"]);
    for part in [
        "route=/api/v1/tenants/{tenant}/files/{*path}",
        "status=201",
        "bytes_in=12",
        &format!("tenant=\"{tenant_id}\""),
        &format!("user=\"{user_id}\""),
        "request_id=",
    ] {
        assert!(upload.contains(part), "{part} not in {upload}");
    }
    // The download's line is written when its body ends, with the bytes sent.
    let download = server.wait_for_log(&["coffer::access", "method=GET", "status=200"]);
    assert!(download.contains("bytes_out=12"), "{download}");
    assert!(
        download.contains(&format!("user=\"{user_id}\"")),
        "{download}"
    );
    let refused = server.wait_for_log(&["coffer::access", "status=401"]);
    assert!(refused.contains("user=\"-\""), "{refused}");
    // A sign-in's line names the user it signed in (a public route: the handler records it).
    let body = format!("{{\"email\":\"{EMAIL}\",\"password\":\"correct horse battery\"}}");
    let login = plain(
        server.addr,
        &format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let signed_in = server.wait_for_log(&["coffer::access", "route=/api/v1/auth/login"]);
    assert!(
        signed_in.contains(&format!("user=\"{user_id}\"")),
        "{signed_in}"
    );
    for line in [&upload, &download, &refused] {
        assert!(
            !line.contains('\x1b'),
            "colour codes in a log that is not a terminal: {line:?}"
        );
        // Not "ada": three hex digits, found now and then inside a random request id.
        for secret in ["Ada", "ada-invoice", "acme", "Lovelace", EMAIL, "invoice"] {
            assert!(!line.contains(secret), "{secret} logged: {line}");
        }
    }
}
