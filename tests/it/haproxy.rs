//! Two Coffer nodes behind HAProxy (Debian's package), run with `deploy/haproxy/
//! haproxy.cfg`: each tenant's requests reach the node it is placed on, and a tenant
//! created later is routed once `coffer placements sync` has put it in HAProxy's map,
//! through the runtime API, without a reload.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::{MemberChange, NewUser, Role, Tenant};
use coffer::names::Email;

use crate::served::start_logging;
use crate::support::{World, new_tenant, operator, postgres};

/// A child process killed when the test ends, however it ends.
pub(crate) struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn haproxy_installed() -> bool {
    let found = Command::new("haproxy").arg("-v").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("COFFER_REQUIRE_HAPROXY").is_none(),
            "haproxy is not installed but the HAProxy test is required"
        );
        eprintln!("haproxy test: skipped (apt-get install haproxy)");
    }
    found
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const OPERATOR_PASSWORD: &str = "operator through the proxy";

/// One request on its own connection; the whole answer (head and body).
pub(crate) fn exchange(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: coffer.test\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

pub(crate) fn send(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> u16 {
    let answer = exchange(addr, method, path, headers, body);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// The status of a GET through `addr` with a bearer token.
pub(crate) fn get_status(addr: &str, path: &str, token: &str) -> u16 {
    send(
        addr,
        "GET",
        path,
        &format!("Authorization: Bearer {token}\r\n"),
        "",
    )
}

/// Signs in through `addr`; the session cookie (`name=value`).
fn sign_in(addr: &str, email: &str, password: &str) -> String {
    let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
    let answer = exchange(
        addr,
        "POST",
        "/api/v1/auth/login",
        "Content-Type: application/json\r\n",
        &body,
    );
    answer
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no session cookie in {answer:?}"))
}

/// HAProxy in front of the test's nodes, killed when dropped.
pub(crate) struct Proxy {
    _process: Running,
    /// Where clients connect.
    pub listen: String,
    /// The tenant map it loaded (empty at start) and its runtime API's socket.
    pub map: PathBuf,
    pub socket: PathBuf,
}

/// Starts HAProxy on `deploy/haproxy/haproxy.cfg` with this test's listener, an empty
/// map and a socket in `dir`, and a backend per node address (`node-1`, `node-2`, ...:
/// the example's two, more added); returns once it listens.
pub(crate) fn start_proxy(dir: &Path, nodes: &[String]) -> Proxy {
    start_proxy_on(dir, nodes, None)
}

/// `start_proxy`, on a host of its own: inside network namespace `netns`, listening on
/// its address `ip` (port 8443).
pub(crate) fn start_proxy_on(dir: &Path, nodes: &[String], host: Option<(&str, &str)>) -> Proxy {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy/haproxy.cfg"),
    )
    .unwrap();
    let listen = match host {
        Some((_, ip)) => format!("{ip}:8443"),
        None => format!("127.0.0.1:{}", free_port()),
    };
    let (map, socket) = (dir.join("tenants.map"), dir.join("admin.sock"));
    std::fs::write(&map, "").unwrap();
    let mut cfg = example
        .replace(
            "bind :443 ssl crt /etc/haproxy/coffer.pem alpn h2,http/1.1",
            &format!("bind {listen}"),
        )
        .replace("/run/haproxy/admin.sock", &socket.to_string_lossy())
        .replace("/etc/haproxy/coffer/tenants.map", &map.to_string_lossy())
        .replace("10.0.1.11:8080", &nodes[0])
        .replace("10.0.1.12:8080", &nodes[1])
        .replace("    log stdout format raw local0\n", "");
    assert!(
        cfg.contains(&format!("bind {listen}")),
        "the example changed shape"
    );
    for (i, addr) in nodes.iter().enumerate().skip(2) {
        let n = i + 1;
        cfg.push_str(&format!(
            "\nbackend node-{n}\n    server node-{n} {addr} check\n"
        ));
    }
    std::fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
    let mut command = match host {
        Some((netns, _)) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", netns, "haproxy"]);
            c
        }
        None => Command::new("haproxy"),
    };
    let process = Running(
        command
            .arg("-db")
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&listen).is_err() || !socket.exists() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proxy {
        _process: process,
        listen,
        map,
        socket,
    }
}

fn node_config(dir: &Path, name: &str, world: &World) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let url = world.coffer.config().control.clone().unwrap();
    std::fs::write(&path, format!("control = {url:?}\nnode = {name:?}\n")).unwrap();
    path
}

pub(crate) fn make_owner(coffer: &Coffer, slug: &str, user: coffer::names::UserId) {
    let slug = coffer::names::TenantSlug::parse(slug).unwrap();
    coffer
        .auth()
        .operator_access(&operator(), &slug)
        .unwrap()
        .change_member(coffer.control(), user, Role::Owner, MemberChange::Add)
        .unwrap();
}

pub(crate) fn owner_token(coffer: &Coffer, tenant: &Tenant, user: coffer::names::UserId) -> String {
    coffer
        .auth()
        .issue_token(
            user,
            tenant,
            Role::Owner,
            "through the proxy",
            None,
            &operator(),
        )
        .unwrap()
        .0
}

#[test]
fn each_tenant_reaches_its_node_through_haproxy_and_new_ones_after_a_sync() {
    let Some(base) = postgres::base_url("haproxy") else {
        return;
    };
    if !haproxy_installed() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let node1 = World::with_config(Config {
        control: Some(postgres::fresh_schema(&base)),
        node: Some("node-1".into()),
        ..Config::default()
    });
    let node2 = Coffer::init(
        &dir.join("node-2-data"),
        Config {
            node: Some("node-2".into()),
            ..node1.coffer.config().clone()
        },
    )
    .unwrap()
    .0;
    let charlie = node2
        .create_tenant(&operator(), new_tenant("charlie", None))
        .unwrap();
    let user = node1
        .coffer
        .control()
        .create_user(
            &operator(),
            &NewUser {
                email: Email::parse("owner@proxy.example").unwrap(),
                name: "Owner".into(),
                password_hash: None,
                is_operator: false,
            },
        )
        .unwrap();
    node1
        .coffer
        .control()
        .create_user(
            &operator(),
            &NewUser {
                email: Email::parse("operator@proxy.example").unwrap(),
                name: "Operator".into(),
                password_hash: Some(coffer::auth::password::hash(OPERATOR_PASSWORD).unwrap()),
                is_operator: true,
            },
        )
        .unwrap();
    make_owner(&node1.coffer, "alpha", user.id);
    make_owner(&node2, "charlie", user.id);
    let alpha_token = owner_token(&node1.coffer, &node1.alpha, user.id);
    let charlie_token = owner_token(&node2, &charlie, user.id);

    let server1 = start_logging(
        &node1.data_dir(),
        &node_config(dir, "node-1", &node1),
        "warn",
    );
    let server2 = start_logging(
        &dir.join("node-2-data"),
        &node_config(dir, "node-2", &node1),
        "warn",
    );
    let proxy = start_proxy(dir, &[server1.addr.to_string(), server2.addr.to_string()]);
    let (listen, map) = (proxy.listen.clone(), proxy.map.clone());

    // The map from the control plane, through the runtime API.
    let sync_args = |once: bool| {
        let mut c = node1.cli();
        c.args(["placements", "sync", "--haproxy"])
            .arg(format!("unix:{}", proxy.socket.display()))
            .arg("--map")
            .arg(&map);
        if once {
            c.arg("--once");
        }
        c
    };
    let once = sync_args(true).output().unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    // The slug and the id of each of the three tenants.
    assert_eq!(
        String::from_utf8_lossy(&once.stdout).trim(),
        "6 entries changed"
    );
    let printed = node1.cli().args(["placements", "map"]).output().unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout);
    for line in [
        "alpha node-1".to_owned(),
        "bravo node-1".to_owned(),
        "charlie node-2".to_owned(),
        format!("{} node-1", node1.alpha.id),
        format!("{} node-2", charlie.id),
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line} not in {printed}"
        );
    }
    assert_eq!(printed.lines().count(), 6);
    // The map file holds the same, for HAProxy's next start.
    assert_eq!(std::fs::read_to_string(&map).unwrap(), printed);

    // Every request reaches the tenant's own node: never a 421 from the other one. (Two
    // of each in a row: round-robin would send one of them to the wrong node.)
    for _ in 0..3 {
        for (path, token) in [
            ("/api/v1/tenants/alpha/tree", &alpha_token),
            ("/api/v1/tenants/charlie/tree", &charlie_token),
        ] {
            assert_eq!(get_status(&listen, path, token), 200, "{path}");
            assert_eq!(get_status(&listen, path, token), 200, "{path}");
        }
    }

    // A tenant created while the sync runs is routed once its placement reaches the map.
    let mut watcher = sync_args(false);
    let watcher = Running(
        watcher
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let delta = node2
        .create_tenant(&operator(), new_tenant("delta", None))
        .unwrap();
    make_owner(&node2, "delta", user.id);
    let delta_token = owner_token(&node2, &delta, user.id);
    let created = Instant::now();
    let deadline = created + Duration::from_secs(30);
    // Until the map has it, delta goes to any node (roundrobin): wait for six in a row.
    let mut in_a_row = 0;
    while in_a_row < 6 {
        assert!(
            Instant::now() < deadline,
            "delta never reached its node through the proxy"
        );
        if get_status(&listen, "/api/v1/tenants/delta/tree", &delta_token) == 200 {
            in_a_row += 1;
        } else {
            in_a_row = 0;
        }
    }
    eprintln!(
        "a new tenant was routed through HAProxy within {:?}",
        created.elapsed()
    );
    // By HAProxy's own map, not by luck: delta's slug and id are there, on node-2.
    let api = coffer::haproxy::RuntimeApi::parse(&format!("unix:{}", proxy.socket.display()));
    let in_proxy = api.show_map(&map.to_string_lossy()).unwrap();
    assert_eq!(in_proxy.get("delta").map(String::as_str), Some("node-2"));
    assert_eq!(
        in_proxy.get(&delta.id.to_string()).map(String::as_str),
        Some("node-2")
    );
    // Operators' routes for a tenant reach its node too, by slug and by id.
    let cookie = sign_in(&listen, "operator@proxy.example", OPERATOR_PASSWORD);
    for key in ["charlie".to_owned(), charlie.id.to_string()] {
        let path = format!("/api/v1/admin/tenants/{key}/usage");
        for _ in 0..2 {
            let status = send(&listen, "GET", &path, &format!("Cookie: {cookie}\r\n"), "");
            assert_eq!(status, 200, "{path}");
        }
    }
    drop(watcher);
    drop(proxy);
    drop((server1, server2));
}
