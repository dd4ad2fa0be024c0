//! The request-path workloads of the benchmark suite (issue 14), each next to a baseline
//! measured in the same run: `benches/run` runs this with the other benchmarks and prints
//! one table. Figures are reported, never asserted.
//! - 4 KiB authenticated GETs, 16 connections (req/s, p99) against nginx serving the same
//!   file without authentication (when installed), and on one connection (the slowest
//!   request: a stall shows there);
//! - 16 KiB durable PUTs, 16 connections to one tenant, against a single-threaded
//!   create+write+fsync+rename loop and against dufs (when installed; it never fsyncs),
//!   and the fsyncs per PUT under `strace -c` (when installed);
//! - many tenants (10,000 by default), each with its own API token and file: random
//!   4 KiB GETs against the single-tenant figure, with the server's open descriptors and
//!   RSS;
//! - listing a 1,000-entry page of the folder the PUTs filled, and a search.
//!
//! Run: `cargo bench --bench suite -- [--tenants N] [--requests N] [--puts N]`; the server binary
//! can be replaced with `COFFER_BENCH_BIN` (a before/after comparison).
#![allow(clippy::disallowed_methods)] // the benchmark sets up and measures with std::fs

#[path = "support/mod.rs"]
mod support;
use support::load::{self, Load, installed, row};
use support::*;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use coffer::control::{MemberChange, Role};
use coffer::vault::Precondition;
use coffer::vault::path::VaultPath;

const CONNS: usize = 16;
const PUT_BYTES: usize = 16 << 10;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port`.
fn wait_listening(port: u16) -> SocketAddr {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..500 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return addr;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("nothing listens on {addr}");
}

/// A server stopped when dropped: SIGTERM first, so that nginx's master stops its
/// workers instead of leaving them orphaned.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// nginx serving `root` on loopback, with as many workers as cores.
fn start_nginx(tmp: &Path, root: &Path) -> (Killed, SocketAddr) {
    let port = free_port();
    let prefix = tmp.join("nginx");
    std::fs::create_dir_all(&prefix).unwrap();
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes auto; pid {p}/nginx.pid; error_log {p}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {p}/body; proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fcgi; uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}",
            p = prefix.display(),
            root = root.display()
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Killed(child), wait_listening(port))
}

/// dufs serving `root` with uploads allowed.
fn start_dufs(root: &Path) -> (Killed, SocketAddr) {
    let port = free_port();
    let child = Command::new("dufs")
        .args(["-A", "-b", "127.0.0.1", "-p", &port.to_string()])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Killed(child), wait_listening(port))
}

/// A request head: `GET` without a body, `PUT` with a 16 KiB one; with a bearer token or
/// without (the baselines).
fn head(method: &str, addr: SocketAddr, path: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let length = match method {
        "PUT" => format!("Content-Length: {PUT_BYTES}\r\n"),
        _ => String::new(),
    };
    format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{length}\r\n").into_bytes()
}

fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Vec<u8> {
    head("GET", addr, path, token)
}

/// The same-run baseline for small durable writes: one thread creating, writing,
/// fsyncing and renaming 16 KiB files.
fn fsync_loop(dir: &Path, n: usize) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let body = vec![7u8; PUT_BYTES];
    let t = Instant::now();
    for i in 0..n {
        let tmp = dir.join(format!(".{i}.part"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(&body).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, dir.join(format!("{i}.bin"))).unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Runs 16 connections of 16 KiB PUTs to fresh names under `prefix`.
fn put_load(addr: SocketAddr, prefix: &str, token: Option<&str>, per: usize, ok: u16) -> Load {
    let body = vec![7u8; PUT_BYTES];
    load::run(addr, CONNS, per, ok, |c, i| {
        (
            head("PUT", addr, &format!("{prefix}/c{c}-{i}.bin"), token),
            body.clone(),
        )
    })
}

/// fsync-family calls per PUT while `strace -c -f` watches the server for a short load.
fn fsyncs_per_put(pid: u32, addr: SocketAddr, token: &str) -> Option<f64> {
    let out = std::env::temp_dir().join(format!("coffer-suite-strace-{pid}"));
    let mut strace = Command::new("strace")
        .args(["-c", "-f", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&out)
        .args(["-p", &pid.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(std::time::Duration::from_millis(500)); // attached to every thread
    let per = 25;
    put_load(
        addr,
        "/api/v1/tenants/bench/files/strace",
        Some(token),
        per,
        201,
    );
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let text = std::fs::read_to_string(&out).ok()?;
    let _ = std::fs::remove_file(&out);
    let calls: u64 = text
        .lines()
        .filter(|l| l.ends_with(" fsync") || l.ends_with(" fdatasync"))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .sum();
    Some(calls as f64 / (CONNS * per) as f64)
}

fn main() {
    let tenants = arg("--tenants", 10_000) as usize;
    let requests = arg("--requests", 20_000) as usize;
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::tempdir_in(&base).unwrap();
    let data = tmp.path().join("data");
    println!("# coffer request-path suite ({})", tmp.path().display());

    // Seed: tenant `bench` with a 4 KiB file, then `tenants` more, each with its own
    // token and file, all reached by one member (a bookkeeper with many clients).
    let seeded = seed_tenant_with_token(&data);
    let four_k = VaultPath::parse("small/4k.bin").unwrap();
    open_vault(&seeded.coffer, &seeded.op, &seeded.tenant)
        .write_file(
            &seeded.op,
            &four_k,
            &mut &[7u8; 4096][..],
            &Precondition::None,
        )
        .unwrap();
    let t = Instant::now();
    let user = seeded
        .coffer
        .control()
        .user_by_email(&coffer::names::Email::parse("b@bench.example").unwrap())
        .unwrap()
        .unwrap();
    let mut tokens = Vec::with_capacity(tenants);
    for i in 0..tenants {
        let slug = format!("t{i:05}");
        let tenant = seeded
            .coffer
            .create_tenant(&seeded.op, new_tenant(&slug))
            .unwrap();
        let vault = open_vault(&seeded.coffer, &seeded.op, &tenant);
        vault
            .write_file(
                &seeded.op,
                &four_k,
                &mut &[7u8; 4096][..],
                &Precondition::None,
            )
            .unwrap();
        vault
            .0
            .change_member(
                seeded.coffer.control(),
                user.id,
                Role::Owner,
                MemberChange::Add,
            )
            .unwrap();
        let (token, _) = seeded
            .coffer
            .auth()
            .issue_token(user.id, &tenant, Role::Owner, "bench", None, &seeded.op)
            .unwrap();
        tokens.push((slug, token));
    }
    println!("# seeded {tenants} tenants in {:.0?}", t.elapsed());
    let token = seeded.token.clone();
    drop(seeded);

    // 16 writers to one tenant: the per-tenant upload limit (8 by default) raised to
    // match, so that the PUT workload measures commits, not admission (503s).
    let config = tmp.path().join("coffer.toml");
    std::fs::write(
        &config,
        format!("max_concurrent_uploads_per_tenant = {CONNS}\n"),
    )
    .unwrap();
    let (server, addr) = start_server_with_config(&data, Some(&config));
    let server = Killed(server);
    let pid = server.0.id();
    load::wait_idle(pid);
    let rss_idle = peak_rss_kib(pid);

    // 4 KiB GETs.
    let path = "/api/v1/tenants/bench/files/small/4k.bin";
    let request = get(addr, path, Some(&token));
    load::run(addr, CONNS, 100, 200, |_, _| (request.clone(), Vec::new())); // warm-up
    let single = load::run(addr, CONNS, requests / CONNS, 200, |_, _| {
        (request.clone(), Vec::new())
    });
    let one = load::run(addr, 1, requests / 4, 200, |_, _| {
        (request.clone(), Vec::new())
    });
    let nginx = installed("nginx").then(|| {
        let root = tmp.path().join("static");
        std::fs::create_dir_all(root.join("small")).unwrap();
        std::fs::write(root.join("small/4k.bin"), [7u8; 4096]).unwrap();
        let (_nginx, addr) = start_nginx(tmp.path(), &root);
        let request = get(addr, "/small/4k.bin", None);
        load::run(addr, CONNS, 100, 200, |_, _| (request.clone(), Vec::new()));
        load::run(addr, CONNS, requests / CONNS, 200, |_, _| {
            (request.clone(), Vec::new())
        })
    });
    row(
        "4 KiB GET, 16 conns (req/s)",
        single.rps(),
        "req/s",
        "nginx, no auth",
        nginx.as_ref().map(Load::rps),
        true,
    );
    row(
        "4 KiB GET, 16 conns p99",
        single.pct_ms(0.99),
        "ms",
        "nginx, no auth",
        nginx.as_ref().map(|n| n.pct_ms(0.99)),
        false,
    );
    row(
        "4 KiB GET, 1 conn, slowest request",
        one.max_ms(),
        "ms",
        "-",
        None,
        false,
    );
    row(
        "4 KiB GET, 1 conn p99",
        one.pct_ms(0.99),
        "ms",
        "-",
        None,
        false,
    );

    // Many tenants: random tenant per request, each with its own token.
    if tenants > 0 {
        let requests_by_tenant: Vec<Vec<u8>> = tokens
            .iter()
            .map(|(slug, token)| {
                get(
                    addr,
                    &format!("/api/v1/tenants/{slug}/files/small/4k.bin"),
                    Some(token),
                )
            })
            .collect();
        let pick = |c: usize, i: usize| {
            let mut x = (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64 + 7);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (
                requests_by_tenant[(x % tenants as u64) as usize].clone(),
                Vec::new(),
            )
        };
        // Steady state: every tenant asked once first (the cache holds what fits).
        let per_conn = tenants.div_ceil(CONNS);
        load::run(addr, CONNS, per_conn, 200, |c, i| {
            let n = (c * per_conn + i) % tenants;
            (requests_by_tenant[n].clone(), Vec::new())
        });
        load::reset_peak_rss(pid);
        let many = load::run(addr, CONNS, requests / CONNS, 200, pick);
        let label = format!("{tenants} tenants, random 4 KiB GET");
        row(
            &format!("{label} (req/s)"),
            many.rps(),
            "req/s",
            "1 tenant, same run",
            Some(single.rps()),
            true,
        );
        row(
            &format!("{label} p99"),
            many.pct_ms(0.99),
            "ms",
            "1 tenant, same run",
            Some(single.pct_ms(0.99)),
            false,
        );
        row(
            &format!("{label}: open descriptors"),
            load::open_fds(pid) as f64,
            "fds",
            "-",
            None,
            false,
        );
        row(
            &format!("{label}: peak RSS"),
            peak_rss_kib(pid) as f64 / 1024.0,
            "MiB",
            "-",
            None,
            false,
        );
    }

    // 16 KiB durable PUTs to one tenant.
    let per = arg("--puts", requests as u64 / 10) as usize / CONNS;
    put_load(
        addr,
        "/api/v1/tenants/bench/files/warm",
        Some(&token),
        5,
        201,
    );
    let puts = put_load(
        addr,
        "/api/v1/tenants/bench/files/put",
        Some(&token),
        per,
        201,
    );
    let looped = fsync_loop(&tmp.path().join("loop"), CONNS * per / 2);
    row(
        "16 KiB PUT, 16 conns, 1 tenant (PUT/s)",
        puts.rps(),
        "PUT/s",
        "create+fsync+rename loop",
        Some(looped),
        true,
    );
    if installed("dufs") {
        let root = tmp.path().join("dufs");
        std::fs::create_dir_all(root.join("put")).unwrap();
        let (_dufs, daddr) = start_dufs(&root);
        let dufs = put_load(daddr, "/put", None, per, 201);
        row(
            "16 KiB PUT, 16 conns (PUT/s)",
            puts.rps(),
            "PUT/s",
            "dufs, no fsync",
            Some(dufs.rps()),
            true,
        );
    }
    row(
        "16 KiB PUT, 16 conns p50",
        puts.pct_ms(0.50),
        "ms",
        "-",
        None,
        false,
    );
    row(
        "16 KiB PUT, 16 conns p99",
        puts.pct_ms(0.99),
        "ms",
        "-",
        None,
        false,
    );
    if installed("strace")
        && let Some(n) = fsyncs_per_put(pid, addr, &token)
    {
        row(
            "16 KiB PUT: fsync calls per PUT (strace -c)",
            n,
            "calls",
            "-",
            None,
            false,
        );
    }
    // Listing and search over the folder the PUTs filled.
    let list = get(
        addr,
        "/api/v1/tenants/bench/tree/put?limit=1000",
        Some(&token),
    );
    let listing = load::run(addr, 4, 25, 200, |_, _| (list.clone(), Vec::new()));
    row(
        "list a folder, one 1,000-entry page, 4 conns",
        listing.pct_ms(0.50),
        "ms p50",
        "-",
        None,
        false,
    );
    let search = get(addr, "/api/v1/tenants/bench/search?q=c7", Some(&token));
    let searched = load::run(addr, 4, 100, 200, |_, _| (search.clone(), Vec::new()));
    row(
        "search file names and records, 4 conns",
        searched.pct_ms(0.50),
        "ms p50",
        "-",
        None,
        false,
    );
    row(
        "server RSS, idle after seeding",
        rss_idle as f64 / 1024.0,
        "MiB",
        "-",
        None,
        false,
    );
    println!(
        "# not found in PATH (their rows are skipped): {}",
        ["nginx", "dufs", "strace"]
            .into_iter()
            .filter(|p| !installed(p))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
