//! Load and soak (issue 8): `coffer serve` (release) as its own process, many tenants, and
//! concurrent clients of every role doing mixed work over keep-alive connections for a
//! bounded time. Every answer is checked against what that role must get (a viewer's
//! upload must be 403, an owner's 201), so the error rate counts wrong answers, not just
//! 5xx. The data set stays bounded (each writer deletes the record it made the round
//! before, managers empty the trash), so the server's memory must level off; only the
//! audit log grows, on disk. A sampler reads the server's RSS and open descriptors every few seconds: both must
//! stay flat once warm.
//!
//! Run: `cargo bench --bench soak -- [--seconds N] [--tenants N] [--clients N]`
//! (defaults: 180, 20, 40). Exits non-zero if any valid request got a wrong answer, or if
//! RSS or descriptors grew once warm (see `growth`).
#![allow(clippy::disallowed_methods)] // the benchmark sets up and measures with std::fs

#[path = "support/mod.rs"]
mod support;
use support::*;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer::audit::{Actor, Caller};
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::{MemberChange, NewUser, Role};
use coffer::names::Email;

const ROLES: [Role; 5] = [
    Role::Owner,
    Role::Admin,
    Role::Member,
    Role::Viewer,
    Role::Auditor,
];

/// One client's identity: a tenant and an API token for one role in it.
#[derive(Clone)]
struct Identity {
    tenant: String,
    role: Role,
    token: String,
}

/// Creates the tenants, one user per role in each, and a token per user.
fn seed(data: &std::path::Path, tenants: u64) -> Vec<Identity> {
    let (coffer, _) = Coffer::init(data, Config::default()).unwrap();
    let op = Caller::new(Actor::Operator(Some("soak".into())));
    let mut out = Vec::new();
    for t in 0..tenants {
        let slug = format!("t{t:03}");
        let tenant = coffer.create_tenant(&op, new_tenant(&slug)).unwrap();
        let access = open_vault(&coffer, &op, &tenant);
        for role in ROLES {
            let user = coffer
                .control()
                .create_user(
                    &op,
                    &NewUser {
                        email: Email::parse(
                            &format!("{role:?}.{slug}@soak.example").to_lowercase(),
                        )
                        .unwrap(),
                        name: format!("{role:?}"),
                        password_hash: None,
                        is_operator: false,
                    },
                )
                .unwrap();
            access
                .0
                .change_member(coffer.control(), user.id, role, MemberChange::Add)
                .unwrap();
            let (token, _) = coffer
                .auth()
                .issue_token(user.id, &tenant, role, "soak", None, &op)
                .unwrap();
            out.push(Identity {
                tenant: slug.clone(),
                role,
                token,
            });
        }
    }
    out
}

/// A keep-alive HTTP/1.1 connection (content-length and chunked bodies).
struct Connection {
    addr: SocketAddr,
    reader: Option<BufReader<TcpStream>>,
}

struct Answer {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Connection {
    fn send(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        for _attempt in 0..2 {
            if self.reader.is_none() {
                let stream = TcpStream::connect(self.addr).unwrap();
                stream.set_nodelay(true).unwrap();
                self.reader = Some(BufReader::new(stream));
            }
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nhost: soak\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (name, value) in extra {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let reader = self.reader.as_mut().unwrap();
            let sent = reader
                .get_mut()
                .write_all(head.as_bytes())
                .and_then(|_| reader.get_mut().write_all(body));
            match sent.and_then(|_| read_answer(reader)) {
                Ok(answer) => return answer,
                // The server closed an idle keep-alive connection: reconnect once.
                Err(_) => self.reader = None,
            }
        }
        panic!("{method} {path}: connection failed twice")
    }
}

fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<Answer> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut length, mut chunked, mut etag) = (0usize, false, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((&h, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
            "etag" => etag = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..n]);
            if n == 0 {
                break;
            }
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Answer { status, etag, body })
}

/// Latencies per operation and the wrong answers seen.
#[derive(Default)]
struct Tally {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    requests: u64,
    wrong: Vec<String>,
}

/// One client's connection, identity and tally.
struct Client {
    conn: Connection,
    who: Identity,
    tally: Tally,
    /// The record this client made last round, deleted this round: the data set stays
    /// bounded, so memory that keeps growing is a leak, not a bigger tenant.
    last_record: Option<String>,
}

impl Client {
    /// Sends one request and checks its status against what this role must get.
    fn step(
        &mut self,
        op: &'static str,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        expect: &[u16],
    ) -> Answer {
        let t = Instant::now();
        let answer = self.conn.send(method, path, &self.who.token, extra, body);
        self.tally
            .latencies
            .entry(op)
            .or_default()
            .push(t.elapsed());
        self.tally.requests += 1;
        if !expect.contains(&answer.status) {
            self.tally.wrong.push(format!(
                "{:?} {method} {path}: {} (expected {expect:?})",
                self.who.role, answer.status
            ));
        }
        answer
    }

    /// One round of the role's work; `round` and `noise` vary names and sizes.
    fn round(&mut self, seed: u64, round: u64, noise: u64) {
        const DENIED: &[u16] = &[403];
        let role = self.who.role;
        let base = format!("/api/v1/tenants/{}", self.who.tenant);
        let writes = matches!(role, Role::Owner | Role::Admin | Role::Member);
        let manages = matches!(role, Role::Owner | Role::Admin);
        let name = format!("{base}/files/soak/{role:?}-{seed}-{}.bin", round % 50);
        let size = 1024 + (noise % (64 * 1024)) as usize;
        let content: Vec<u8> = (0..size).map(|i| (i as u64 ^ noise) as u8).collect();
        let put = self.step(
            "upload",
            "PUT",
            &name,
            &[],
            &content,
            if writes { &[200, 201] } else { DENIED },
        );
        if writes {
            let etag = put.etag.unwrap_or_default();
            let got = self.step("download", "GET", &name, &[], b"", &[200]);
            if got.body != content {
                self.tally
                    .wrong
                    .push(format!("{name}: downloaded bytes differ"));
            }
            self.step(
                "overwrite",
                "PUT",
                &name,
                &[("if-match", &etag)],
                &content[..size / 2],
                &[200],
            );
            let record = format!(
                r#"{{"client":"{}","n":{round},"note":"soak"}}"#,
                self.who.tenant
            );
            let json = [("content-type", "application/json")];
            let created = self.step(
                "record",
                "POST",
                &format!("{base}/records/jobs"),
                &json,
                record.as_bytes(),
                &[201],
            );
            let id = created_id(&created.body);
            let patch = [("content-type", "application/merge-patch+json")];
            self.step(
                "patch",
                "PATCH",
                &format!("{base}/records/jobs/{id}"),
                &patch,
                br#"{"done":true}"#,
                &[200],
            );
            if let Some(previous) = self.last_record.replace(id) {
                self.step(
                    "record-delete",
                    "DELETE",
                    &format!("{base}/records/jobs/{previous}"),
                    &[],
                    b"",
                    &[204],
                );
            }
            if round.is_multiple_of(5) {
                self.step("delete", "DELETE", &name, &[], b"", &[200]);
            }
        }
        if role == Role::Auditor {
            self.step(
                "audit",
                "GET",
                &format!("{base}/audit?limit=50"),
                &[],
                b"",
                &[200],
            );
            self.step("download", "GET", &name, &[], b"", DENIED);
        } else {
            self.step(
                "list",
                "GET",
                &format!("{base}/tree/soak"),
                &[],
                b"",
                &[200, 404],
            );
            self.step(
                "search",
                "GET",
                &format!("{base}/search?q=soak"),
                &[],
                b"",
                &[200],
            );
            self.step(
                "records",
                "GET",
                &format!("{base}/records/jobs?limit=20"),
                &[],
                b"",
                &[200],
            );
        }
        if manages && round.is_multiple_of(10) {
            // Empty the trash the deletes fill (a few items a round; another manager
            // of the tenant may have purged an item first: 404).
            let trash = self.step("trash", "GET", &format!("{base}/trash"), &[], b"", &[200]);
            for id in trash_ids(&trash.body).into_iter().take(40) {
                self.step(
                    "purge",
                    "DELETE",
                    &format!("{base}/trash/{id}"),
                    &[],
                    b"",
                    &[204, 404],
                );
            }
        }
        let usage: &[u16] = if manages || role == Role::Auditor {
            &[200]
        } else {
            DENIED
        };
        self.step("usage", "GET", &format!("{base}/usage"), &[], b"", usage);
        if round.is_multiple_of(25) {
            self.step(
                "export",
                "GET",
                &format!("{base}/export"),
                &[],
                b"",
                // 503: the tenant's export slots are taken by another client.
                if manages { &[200, 503] } else { DENIED },
            );
        }
    }
}

/// One client: its identity's work, in a loop, until `stop`.
fn client(
    addr: SocketAddr,
    who: Identity,
    seed: u64,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut client = Client {
        conn: Connection { addr, reader: None },
        who,
        tally: Tally::default(),
        last_record: None,
    };
    let mut noise = seed | 1;
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        client.round(seed, round, noise);
    }
    let mut shared = tally.lock().unwrap();
    shared.requests += client.tally.requests;
    shared.wrong.append(&mut client.tally.wrong);
    for (op, mut l) in client.tally.latencies {
        shared.latencies.entry(op).or_default().append(&mut l);
    }
}

/// The ids of a trash listing.
fn trash_ids(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["items"].as_array().map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The `id` of a created record's JSON answer.
fn created_id(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "missing".into())
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let seconds = arg("--seconds", 180);
    let tenants = arg("--tenants", 20);
    let clients = arg("--clients", 40);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let identities = seed(&data, tenants);
    let (mut server, addr) = start_server(&data);
    let pid = server.id();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let who = identities[(c as usize * 7) % identities.len()].clone();
            let (stop, tally) = (stop.clone(), tally.clone());
            std::thread::spawn(move || client(addr, who, c + 1, stop, tally))
        })
        .collect();
    println!("soak: {tenants} tenants, {clients} clients of every role, {seconds} s");
    println!("{:>6} {:>10} {:>6}", "t (s)", "RSS (KiB)", "fds");
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(5).min(Duration::from_secs(seconds)));
        let sample = (
            start.elapsed().as_secs(),
            status_kib(&pid.to_string(), "VmRSS:"),
            open_descriptors(pid),
        );
        println!("{:>6} {:>10} {:>6}", sample.0, sample.1, sample.2);
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let peak = peak_rss_kib(pid);
    server.kill().unwrap();
    server.wait().unwrap();
    let tally = tally.lock().unwrap();
    println!(
        "\n{:<10} {:>8} {:>10} {:>10} {:>10}",
        "operation", "count", "p50 ms", "p99 ms", "max ms"
    );
    let mut all = Vec::new();
    for (op, latencies) in &tally.latencies {
        let mut l = latencies.clone();
        l.sort();
        all.extend_from_slice(&l);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{op:<10} {:>8} {:>10.2} {:>10.2} {:>10.2}",
            l.len(),
            ms(percentile(&l, 0.5)),
            ms(percentile(&l, 0.99)),
            ms(*l.last().unwrap())
        );
    }
    all.sort();
    let secs = start.elapsed().as_secs_f64();
    let warm = samples.get(samples.len() / 4).copied().unwrap_or_default();
    let last = samples.last().copied().unwrap_or_default();
    println!(
        "\nrequests {} ({:.0}/s), wrong answers {} ({:.4}%), p50 {:.2} ms, p99 {:.2} ms",
        tally.requests,
        tally.requests as f64 / secs,
        tally.wrong.len(),
        100.0 * tally.wrong.len() as f64 / tally.requests.max(1) as f64,
        percentile(&all, 0.5).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0,
    );
    println!(
        "server RSS at 25% {} KiB, at end {} KiB (ratio {:.2}), peak {peak} KiB; descriptors at 25% {}, at end {}",
        warm.1,
        last.1,
        last.1 as f64 / warm.1.max(1) as f64,
        warm.2,
        last.2
    );
    for wrong in tally.wrong.iter().take(20) {
        println!("wrong: {wrong}");
    }
    let leaks = growth(&samples);
    for leak in &leaks {
        println!("not flat: {leak}");
    }
    if !tally.wrong.is_empty() || !leaks.is_empty() {
        std::process::exit(1);
    }
}

/// What grew once warm. A cache filling up grows fast and then levels off; a leak keeps
/// growing. So RSS must grow in the second half of the run by less than a quarter of
/// what it grew in the first half (or by under 16 MiB, allocator noise), and the
/// descriptors at the end may not exceed the first half's highest by more than 16
/// (connections that happen to be open at the sample).
fn growth(samples: &[(u64, u64, usize)]) -> Vec<String> {
    let n = samples.len();
    if n < 8 {
        return vec![format!("only {n} samples: run longer to judge flatness")];
    }
    // Least-squares slopes of RSS over each half (single samples swing by a few MiB
    // with the exports in flight): growth over the second half must be small, and well
    // below the first half's warm-up.
    let (first, second) = samples.split_at(n / 2);
    let half_secs = (second[second.len() - 1].0 - second[0].0).max(1) as f64;
    let early = slope_kib_per_sec(first) * half_secs;
    let late = slope_kib_per_sec(second) * half_secs;
    println!(
        "RSS trend: {early:.0} KiB over the first half, {late:.0} KiB over the second ({:.1} KiB/s)",
        late / half_secs
    );
    let mut leaks = Vec::new();
    if late > 16.0 * 1024.0 && late * 4.0 > early {
        leaks.push(format!(
            "RSS still growing: {late:.0} KiB over the second half ({early:.0} KiB over the first)"
        ));
    }
    let warm_fds = samples[..n / 2].iter().map(|x| x.2).max().unwrap_or(0);
    let end_fds = samples[n - 1].2;
    if end_fds > warm_fds + 16 {
        leaks.push(format!(
            "descriptors {warm_fds} in the first half, {end_fds} at the end"
        ));
    }
    leaks
}

/// The least-squares slope of RSS (KiB) over time (s).
fn slope_kib_per_sec(samples: &[(u64, u64, usize)]) -> f64 {
    let n = samples.len() as f64;
    let (sx, sy) = samples
        .iter()
        .fold((0.0, 0.0), |(x, y), s| (x + s.0 as f64, y + s.1 as f64));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = samples.iter().fold((0.0, 0.0), |(a, b), s| {
        let dx = s.0 as f64 - mx;
        (a + dx * (s.1 as f64 - my), b + dx * dx)
    });
    if den == 0.0 { 0.0 } else { num / den }
}
