//! Several nodes (issue 15): the request path with the control plane in PostgreSQL and
//! HAProxy in front, against one node on the embedded SQLite control plane, in the same
//! run. Figures are reported, never asserted.
//! - 4 KiB authenticated GETs, 16 connections and one: SQLite single node (baseline),
//!   the PostgreSQL node directly, and through HAProxy (two nodes, routed by the map);
//! - sign-in (argon2 plus the session's writes), one connection;
//! - many tenants on one PostgreSQL node: seeding time, and random-tenant GETs;
//! - moving a tenant (`coffer tenant move`, 1 GiB in 3,000 files by default) from node-1
//!   to node-2 while a client writes to it: the move's time against `cp -a` of the same
//!   vault directory plus `sync` (same disk, same run), the fenced window the move
//!   reports, and the writes refused as the client saw them.
//!
//! Run: `COFFER_TEST_POSTGRES=postgres://... cargo bench --bench nodes -- [--tenants N]
//! [--requests N] [--move-mib N] [--move-files N]` (`--move-mib 0`: no move) (`.ci/postgres start DIR` makes a database; HAProxy from Debian's
//! `haproxy`, its rows skipped when it is not installed).
#![allow(clippy::disallowed_methods)] // the benchmark sets up and measures with std::fs

#[path = "support/mod.rs"]
mod support;
use support::load::{self, installed, row};
use support::*;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use coffer::config::Config;
use coffer::control::{MemberChange, NewUser, Role};
use coffer::vault::Precondition;
use coffer::vault::path::VaultPath;

const CONNS: usize = 16;
const PASSWORD: &str = "bench nodes passphrase";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh schema in the database at `base`, as a `control` URL.
fn fresh_schema(base: &str) -> String {
    let schema = format!("bench_{}", coffer::names::TenantId::generate());
    let (url, statement) = (base.to_owned(), format!("CREATE SCHEMA {schema}"));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client.batch_execute(&statement).await.unwrap();
        });
    })
    .join()
    .unwrap();
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!("{base}{joiner}options=-csearch_path%3D{schema}")
}

/// A data root with tenant `bench` (a 4 KiB file), `tenants` more (one file each), one
/// user owning them all with a password, and an owner token per tenant.
fn seed(data: &Path, config: Config, tenants: usize) -> (String, Vec<(String, String)>) {
    let (coffer, _) = coffer::coffer::Coffer::init(data, config).unwrap();
    let op = coffer::audit::Caller::new(coffer::audit::Actor::Operator(Some("bench".into())));
    let user = coffer
        .control()
        .create_user(
            &op,
            &NewUser {
                email: coffer::names::Email::parse("b@bench.example").unwrap(),
                name: "B".into(),
                password_hash: Some(coffer::auth::password::hash(PASSWORD).unwrap()),
                is_operator: false,
            },
        )
        .unwrap();
    let four_k = VaultPath::parse("small/4k.bin").unwrap();
    let mut tokens = Vec::new();
    for i in 0..=tenants {
        let slug = if i == 0 {
            "bench".to_owned()
        } else {
            format!("t{i:05}")
        };
        let tenant = coffer.create_tenant(&op, new_tenant(&slug)).unwrap();
        let vault = open_vault(&coffer, &op, &tenant);
        vault
            .write_file(&op, &four_k, &mut &[7u8; 4096][..], &Precondition::None)
            .unwrap();
        vault
            .0
            .change_member(coffer.control(), user.id, Role::Owner, MemberChange::Add)
            .unwrap();
        let (token, _) = coffer
            .auth()
            .issue_token(user.id, &tenant, Role::Owner, "bench", None, &op)
            .unwrap();
        tokens.push((slug, token));
    }
    (tokens[0].1.clone(), tokens)
}

fn get(addr: SocketAddr, path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n")
        .into_bytes()
}

fn login(addr: SocketAddr) -> (Vec<u8>, Vec<u8>) {
    let body = format!(r#"{{"email":"b@bench.example","password":"{PASSWORD}"}}"#);
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    (head.into_bytes(), body.into_bytes())
}

struct Figures {
    rps: f64,
    p99: f64,
    one_p50: f64,
    one_p99: f64,
    login_p50: f64,
}

fn measure(addr: SocketAddr, token: &str, requests: usize) -> Figures {
    let request = get(addr, "/api/v1/tenants/bench/files/small/4k.bin", token);
    load::run(addr, CONNS, 100, 200, |_, _| (request.clone(), Vec::new())); // warm-up
    let many = load::run(addr, CONNS, requests / CONNS, 200, |_, _| {
        (request.clone(), Vec::new())
    });
    let one = load::run(addr, 1, requests / 8, 200, |_, _| {
        (request.clone(), Vec::new())
    });
    let logins = load::run(addr, 1, 20, 200, |_, _| login(addr));
    Figures {
        rps: many.rps(),
        p99: many.pct_ms(0.99),
        one_p50: one.pct_ms(0.50),
        one_p99: one.pct_ms(0.99),
        login_p50: logins.pct_ms(0.50),
    }
}

fn rows(label: &str, f: &Figures, base: &Figures, baseline: &str) {
    row(
        &format!("{label}: 4 KiB GET, 16 conns (req/s)"),
        f.rps,
        "req/s",
        baseline,
        Some(base.rps),
        true,
    );
    row(
        &format!("{label}: 4 KiB GET, 16 conns p99"),
        f.p99,
        "ms",
        baseline,
        Some(base.p99),
        false,
    );
    row(
        &format!("{label}: 4 KiB GET, 1 conn p50"),
        f.one_p50,
        "ms",
        baseline,
        Some(base.one_p50),
        false,
    );
    row(
        &format!("{label}: 4 KiB GET, 1 conn p99"),
        f.one_p99,
        "ms",
        baseline,
        Some(base.one_p99),
        false,
    );
    row(
        &format!("{label}: sign-in p50"),
        f.login_p50,
        "ms",
        baseline,
        Some(base.login_p50),
        false,
    );
}

fn main() {
    let Some(base) = std::env::var("COFFER_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("# nodes: skipped (set COFFER_TEST_POSTGRES; .ci/postgres start DIR makes one)");
        return;
    };
    let tenants = arg("--tenants", 2_000) as usize;
    let requests = arg("--requests", 16_000) as usize;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&root).unwrap();
    let tmp = tempfile::tempdir_in(&root).unwrap();
    println!("# coffer on several nodes ({})", tmp.path().display());

    // The baseline: one node, SQLite control plane.
    let (token, _) = seed(&tmp.path().join("single"), Config::default(), 0);
    let (server, addr) = start_server(&tmp.path().join("single"));
    let server = Killed(server);
    let single = measure(addr, &token, requests);
    drop(server);

    let move_mib = arg("--move-mib", 1024);
    let move_files = arg("--move-files", 3000).max(1);
    // Two nodes on PostgreSQL; node-1 holds `bench`, the many tenants and `big`.
    let url = fresh_schema(&base);
    let node = |name: &str| Config {
        control: Some(url.clone()),
        node: Some(name.into()),
        ..Config::default()
    };
    let t = Instant::now();
    let (token, tokens) = seed(&tmp.path().join("node-1"), node("node-1"), tenants);
    let seeded = t.elapsed();
    let big = (move_mib > 0).then(|| {
        seed_big(
            &tmp.path().join("node-1"),
            node("node-1"),
            move_files,
            move_mib << 20,
        )
    });
    coffer::coffer::Coffer::init(&tmp.path().join("node-2"), node("node-2")).unwrap();
    let config_file = |name: &str| {
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&path, format!("control = {url:?}\nnode = {name:?}\n")).unwrap();
        path
    };
    let (n1, addr1) =
        start_server_with_config(&tmp.path().join("node-1"), Some(&config_file("node-1")));
    let n1 = Killed(n1);
    let (n2, addr2) =
        start_server_with_config(&tmp.path().join("node-2"), Some(&config_file("node-2")));
    let _n2 = Killed(n2);
    let direct = measure(addr1, &token, requests);
    rows("PostgreSQL node", &direct, &single, "SQLite single node");

    if installed("haproxy") {
        let map = tmp.path().join("tenants.map");
        let printed = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .arg("--config")
            .arg(config_file("node-1"))
            .args(["placements", "map"])
            .output()
            .unwrap();
        std::fs::write(&map, &printed.stdout).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy/haproxy.cfg"),
        )
        .unwrap();
        let cfg = example
            .replace(
                "bind :443 ssl crt /etc/haproxy/coffer.pem alpn h2,http/1.1",
                &format!("bind 127.0.0.1:{port}"),
            )
            .replace(
                "/run/haproxy/admin.sock",
                &tmp.path().join("admin.sock").to_string_lossy(),
            )
            .replace("/etc/haproxy/coffer/tenants.map", &map.to_string_lossy())
            .replace("10.0.1.11:8080", &addr1.to_string())
            .replace("10.0.1.12:8080", &addr2.to_string())
            .replace("    log stdout format raw local0\n", "")
            .replace("    option httplog\n", "");
        std::fs::write(tmp.path().join("haproxy.cfg"), cfg).unwrap();
        let _proxy = Killed(
            Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(tmp.path().join("haproxy.cfg"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let proxy: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        while std::net::TcpStream::connect(proxy).is_err() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let through = measure(proxy, &token, requests);
        rows(
            "PostgreSQL + HAProxy",
            &through,
            &single,
            "SQLite single node",
        );
    } else {
        println!("# haproxy is not installed (apt-get install haproxy): its rows are skipped");
    }

    // Many tenants on node-1: random tenant per request, each with its own token.
    let heads: Vec<Vec<u8>> = tokens
        .iter()
        .map(|(slug, token)| {
            get(
                addr1,
                &format!("/api/v1/tenants/{slug}/files/small/4k.bin"),
                token,
            )
        })
        .collect();
    let pick = |c: usize, i: usize| (c * 7919 + i * 104_729) % heads.len();
    load::run(addr1, CONNS, heads.len() / CONNS + 1, 200, |c, i| {
        (heads[pick(c, i)].clone(), Vec::new())
    });
    let many = load::run(addr1, CONNS, requests / CONNS, 200, |c, i| {
        (heads[pick(c, i)].clone(), Vec::new())
    });
    row(
        &format!("PostgreSQL node, {} tenants: seeding", tokens.len()),
        seeded.as_secs_f64(),
        "s",
        "-",
        None,
        false,
    );
    row(
        &format!(
            "PostgreSQL node, {} tenants: random GET (req/s)",
            tokens.len()
        ),
        many.rps(),
        "req/s",
        "same node, one tenant",
        Some(direct.rps),
        true,
    );
    row(
        &format!("PostgreSQL node, {} tenants: random GET p99", tokens.len()),
        many.pct_ms(0.99),
        "ms",
        "same node, one tenant",
        Some(direct.p99),
        false,
    );
    row(
        "PostgreSQL node: open descriptors after the many-tenant load",
        load::open_fds(n1.0.id()) as f64,
        "fds",
        "-",
        None,
        false,
    );

    drop(n1);
    drop(_n2);
    if let Some((big_id, big_token)) = big {
        // Servers again, each with its address for the other node.
        let (n1, addr1) =
            start_server_with_config(&tmp.path().join("node-1"), Some(&config_file("node-1")));
        let _n1 = Killed(n1);
        let (n2, addr2) =
            start_server_with_config(&tmp.path().join("node-2"), Some(&config_file("node-2")));
        let _n2 = Killed(n2);
        for (name, addr) in [("node-1", addr1), ("node-2", addr2)] {
            let (coffer, _) =
                coffer::coffer::Coffer::init(&tmp.path().join(name), node(name)).unwrap();
            coffer
                .control()
                .register_node(&format!("http://{addr}"))
                .unwrap();
        }
        move_tenant(
            tmp.path(),
            &config_file("node-2"),
            &big_id,
            &big_token,
            (addr1, addr2),
            move_mib,
            move_files,
        );
    }
}

/// Tenant `big` on node-1: `files` files of `bytes` in all (deterministic contents, a
/// few per folder), with an owner token. Returns its id and the token.
fn seed_big(data: &Path, config: Config, files: u64, bytes: u64) -> (String, String) {
    let (coffer, _) = coffer::coffer::Coffer::init(data, config).unwrap();
    let op = coffer::audit::Caller::new(coffer::audit::Actor::Operator(Some("bench".into())));
    let user = coffer
        .control()
        .create_user(
            &op,
            &NewUser {
                email: coffer::names::Email::parse("m@bench.example").unwrap(),
                name: "M".into(),
                password_hash: None,
                is_operator: false,
            },
        )
        .unwrap();
    let tenant = coffer.create_tenant(&op, new_tenant("big")).unwrap();
    let vault = open_vault(&coffer, &op, &tenant);
    let each = (bytes / files) as usize;
    let mut content = vec![0u8; each];
    for i in 0..files {
        for (j, b) in content.iter_mut().enumerate() {
            *b = (i as usize * 31 + j * 7) as u8;
        }
        let path = VaultPath::parse(&format!("d{:03}/f{i:05}.bin", i / 30)).unwrap();
        vault
            .write_file(&op, &path, &mut &content[..], &Precondition::None)
            .unwrap();
    }
    vault
        .0
        .change_member(coffer.control(), user.id, Role::Owner, MemberChange::Add)
        .unwrap();
    let (token, _) = coffer
        .auth()
        .issue_token(user.id, &tenant, Role::Owner, "bench", None, &op)
        .unwrap();
    (tenant.id.to_string(), token)
}

/// Moves `big` from node-1 to node-2 while one client writes 4 KiB files to it (on
/// node-1, then on node-2 once node-1 answers 421), and reports the figures.
fn move_tenant(
    tmp: &Path,
    config2: &Path,
    big_id: &str,
    token: &str,
    (addr1, addr2): (SocketAddr, SocketAddr),
    mib: u64,
    files: u64,
) {
    // The baseline: the same vault directory copied on the same disk, made durable.
    let copy = tmp.join("cp-baseline");
    let t = Instant::now();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(tmp.join("node-1/tenants").join(big_id))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    assert!(Command::new("sync").status().unwrap().success());
    let baseline = t.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&copy).unwrap();

    let done = std::sync::atomic::AtomicBool::new(false);
    let (report, writes) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let body = [5u8; 4096];
            let mut node = addr1;
            let (mut acked, mut refused) = (0u32, 0u32);
            let mut first_refused: Option<Instant> = None;
            let mut outage = None;
            for n in 0.. {
                let head = format!(
                    "PUT /api/v1/tenants/big/files/w/{n}.bin HTTP/1.1\r\nHost: {node}\r\nAuthorization: Bearer {token}\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n"
                );
                // A connection per write: a refusal may close it.
                match load::Conn::open(node).send(head.as_bytes(), &body) {
                    201 | 200 | 204 => {
                        acked += 1;
                        if let (Some(since), None) = (first_refused, outage) {
                            outage = Some(since.elapsed());
                        }
                        if node == addr2 && done.load(std::sync::atomic::Ordering::SeqCst) {
                            return (acked, refused, outage);
                        }
                    }
                    421 => node = addr2,
                    503 => {
                        refused += 1;
                        first_refused.get_or_insert_with(Instant::now);
                    }
                    other => panic!("a write during the move got {other}"),
                }
            }
            unreachable!()
        });
        let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .arg("--config")
            .arg(config2)
            .arg("--data-dir")
            .arg(tmp.join("node-2"))
            .args(["--json", "tenant", "move", "big", "--to", "node-2"])
            .output()
            .unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (report, writer.join().unwrap())
    });
    let copy_secs = report["copy_secs"].as_f64().unwrap();
    let fenced_secs = report["fenced_secs"].as_f64().unwrap();
    let precopy_secs = report["precopy_secs"].as_f64().unwrap();
    let fenced_mib = report["fenced_bytes"].as_f64().unwrap() / f64::from(1 << 20);
    let label = format!("move {mib} MiB in {files} files, node to node");
    row(
        &format!("{label}: copy and checks"),
        copy_secs,
        "s",
        "cp -a + sync",
        Some(baseline),
        false,
    );
    row(
        &format!("{label}: throughput"),
        mib as f64 / copy_secs,
        "MiB/s",
        "cp -a + sync",
        Some(mib as f64 / baseline),
        true,
    );
    row(
        &format!("{label}: live copy (tenant still writable)"),
        precopy_secs,
        "s",
        "-",
        None,
        false,
    );
    row(
        &format!("{label}: file data sent while fenced"),
        fenced_mib,
        "MiB",
        "-",
        None,
        false,
    );
    row(
        &format!("{label}: writes fenced (fence to flip)"),
        fenced_secs,
        "s",
        "-",
        None,
        false,
    );
    let (acked, refused, outage) = writes;
    row(
        &format!("{label}: a writer's outage ({acked} acknowledged, {refused} refused)"),
        outage.map_or(0.0, |d| d.as_secs_f64()),
        "s",
        "-",
        None,
        false,
    );
}
