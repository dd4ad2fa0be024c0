//! kill -9 for real: a `coffer serve` process under mixed load is killed at random
//! moments and restarted, and after every restart nothing acknowledged is lost, no file
//! is torn, the index equals the disk, the audit chain verifies and the usage counters
//! equal a recount.
//!
//! `cargo test` runs a few cycles; `COFFER_KILL_CYCLES=200` (see `tests/scripts/kill9`)
//! runs many. `COFFER_KILL_SEED` replays a run.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use coffer::config::Config;
use coffer::control::{MemberChange, NewUser, Role};
use coffer::names::{Email, TenantSlug};
use coffer::vault::index::EntryKind;

use crate::support::client::request;
use crate::support::{new_tenant, operator, sha256_hex};

const WORKERS: usize = 3;

/// A small deterministic generator (xorshift), so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one worker believes is stored: acknowledged facts only.
#[derive(Default, Clone)]
struct Model {
    /// path → SHA-256 of the acknowledged content.
    files: BTreeMap<String, String>,
    /// record id → acknowledged version.
    records: BTreeMap<String, i64>,
}

/// The operation a worker had sent when the server died: it may or may not have
/// happened, and either outcome is correct.
#[derive(Debug, Clone)]
enum InFlight {
    Put { path: String, sha: String },
    Move { from: String, to: String },
    Delete { path: String },
    Record { id: String },
}

struct WorkerEnd {
    model: Model,
    in_flight: Option<InFlight>,
}

fn content(worker: usize, n: u64, rng: &mut Rng) -> Vec<u8> {
    let size = match rng.below(20) {
        0 => 3 * 1024 * 1024 + rng.below(1024) as usize,
        1..=3 => 256 * 1024,
        _ => 1 + rng.below(16 * 1024) as usize,
    };
    let stamp = format!("worker {worker} write {n} ");
    stamp.bytes().cycle().take(size).collect()
}

/// One worker: mixed operations in its own folder until the server stops answering.
fn work(
    addr: SocketAddr,
    token: String,
    worker: usize,
    mut model: Model,
    seed: u64,
    acks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> WorkerEnd {
    let mut rng = Rng(seed | 1);
    let auth = format!("Bearer {token}");
    let base = "/api/v1/tenants/crash";
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let existing: Vec<String> = model.files.keys().cloned().collect();
        let pick = |rng: &mut Rng| existing[rng.below(existing.len() as u64) as usize].clone();
        let choice = if existing.is_empty() {
            0
        } else {
            rng.below(10)
        };
        let (op, result) = match choice {
            0..=3 | 9 => {
                // A new file, or an overwrite of an existing one.
                let path = if choice == 9 && !existing.is_empty() {
                    pick(&mut rng)
                } else {
                    format!("w{worker}/d{}/f{seed:x}-{n}.bin", rng.below(3))
                };
                let body = content(worker, n, &mut rng);
                let sha = sha256_hex(&body);
                let r = request(
                    addr,
                    "PUT",
                    &format!("{base}/files/{path}"),
                    &[("authorization", &auth)],
                    &body,
                );
                (
                    InFlight::Put {
                        path: path.clone(),
                        sha: sha.clone(),
                    },
                    r.map(|a| (a, Some((path, sha)))),
                )
            }
            4 | 5 => {
                let from = pick(&mut rng);
                let to = format!("w{worker}/moved/m{seed:x}-{n}.bin");
                let body = serde_json::json!({ "from": from, "to": to }).to_string();
                let r = request(
                    addr,
                    "POST",
                    &format!("{base}/move"),
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    body.as_bytes(),
                );
                (InFlight::Move { from, to }, r.map(|a| (a, None)))
            }
            6 => {
                let path = pick(&mut rng);
                let r = request(
                    addr,
                    "DELETE",
                    &format!("{base}/files/{path}"),
                    &[("authorization", &auth)],
                    b"",
                );
                (InFlight::Delete { path }, r.map(|a| (a, None)))
            }
            7 => {
                let id = format!("w{worker}-r{}", rng.below(4));
                let body = serde_json::json!({ "n": n, "worker": worker }).to_string();
                let r = match model.records.get(&id) {
                    Some(v) => request(
                        addr,
                        "PUT",
                        &format!("{base}/records/crashlog/{id}"),
                        &[
                            ("authorization", &auth),
                            ("content-type", "application/json"),
                            ("if-match", &format!("\"{v}\"")),
                        ],
                        body.as_bytes(),
                    ),
                    None => request(
                        addr,
                        "POST",
                        &format!("{base}/records/crashlog?id={id}"),
                        &[
                            ("authorization", &auth),
                            ("content-type", "application/json"),
                        ],
                        body.as_bytes(),
                    ),
                };
                (InFlight::Record { id }, r.map(|a| (a, None)))
            }
            _ => {
                // A whole-vault export, read to its end (or its abort).
                let r = request(
                    addr,
                    "GET",
                    &format!("{base}/export"),
                    &[("authorization", &auth)],
                    b"",
                );
                match r {
                    // 503: the tenant's export slots are taken by other workers.
                    Ok(a) => assert!(
                        a.status == 200 || a.status == 503,
                        "export: {} {}",
                        a.status,
                        String::from_utf8_lossy(&a.body)
                    ),
                    Err(_) => {
                        return WorkerEnd {
                            model,
                            in_flight: None,
                        };
                    }
                }
                continue;
            }
        };
        let (answer, put) = match result {
            Ok(ok) => ok,
            Err(_) => {
                return WorkerEnd {
                    model,
                    in_flight: Some(op),
                };
            }
        };
        assert!(
            (200..300).contains(&answer.status),
            "worker {worker} {op:?}: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        match op {
            InFlight::Put { .. } => {
                let (path, sha) = put.unwrap();
                model.files.insert(path, sha);
            }
            InFlight::Move { from, to } => {
                let sha = model.files.remove(&from).unwrap();
                model.files.insert(to, sha);
            }
            InFlight::Delete { path } => {
                model.files.remove(&path);
            }
            InFlight::Record { id } => {
                let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
                model.records.insert(id, body["version"].as_i64().unwrap());
            }
        }
        acks.fetch_add(1, Ordering::SeqCst);
    }
    WorkerEnd {
        model,
        in_flight: None,
    }
}

/// A data root with the tenant `crash` and an owner's API token for it.
fn seed_owner_token(data: &std::path::Path) -> String {
    let (coffer, _) = coffer::coffer::Coffer::init(data, Config::default()).unwrap();
    let op = operator();
    let tenant = coffer
        .create_tenant(&op, new_tenant("crash", None))
        .unwrap();
    let user = coffer
        .control()
        .create_user(
            &op,
            &NewUser {
                email: Email::parse("load@crash.example").unwrap(),
                name: "Load".into(),
                password_hash: None,
                is_operator: false,
            },
        )
        .unwrap();
    let access = coffer
        .auth()
        .operator_access(&op, &TenantSlug::parse("crash").unwrap())
        .unwrap();
    access
        .change_member(coffer.control(), user.id, Role::Owner, MemberChange::Add)
        .unwrap();
    coffer
        .auth()
        .issue_token(user.id, &tenant, Role::Owner, "load", None, &op)
        .unwrap()
        .0
}

/// A server stopped by SIGTERM (a deploy) writes the API calls it counted since its last
/// flush: none of the usage a tenant is billed for is lost (issue 9).
#[test]
fn a_stopped_server_writes_its_last_usage_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = seed_owner_token(&data);
    let (mut child, addr) = start_server(&data);
    let auth = format!("Bearer {token}");
    for _ in 0..3 {
        let r = request(
            addr,
            "GET",
            "/api/v1/tenants/crash/tree",
            &[("authorization", &auth)],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200);
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success(), "a clean stop");
    let (coffer, _) = coffer::coffer::Coffer::init(&data, Config::default()).unwrap();
    let tenant = coffer
        .control()
        .tenant_by_slug(&TenantSlug::parse("crash").unwrap())
        .unwrap()
        .unwrap();
    let usage = coffer.control().usage(tenant.id, "2000-01-01").unwrap();
    let reads: u64 = usage
        .iter()
        .filter(|u| u.metric == "api.files_read")
        .map(|u| u.value)
        .sum();
    assert_eq!(reads, 3, "{usage:?}");
}

fn start_server(data: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["--data-dir"])
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

/// After a restart: reconciles each worker's model with what the vault holds (an
/// in-flight operation may or may not have happened) and checks the global invariants.
fn verify(data: &std::path::Path, ends: &mut [WorkerEnd], cycle: usize) {
    let coffer = coffer::coffer::Coffer::open(data, Config::default()).unwrap();
    let slug = TenantSlug::parse("crash").unwrap();
    let access = coffer.auth().operator_access(&operator(), &slug).unwrap();
    let v = access.vault();
    let entries = v.all_entries().unwrap();
    let on_disk: BTreeMap<String, String> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| (e.path.clone(), e.sha256.clone().unwrap()))
        .collect();
    for (worker, end) in ends.iter_mut().enumerate() {
        let mine = |p: &String| p.starts_with(&format!("w{worker}/"));
        let actual: BTreeMap<String, String> = on_disk
            .iter()
            .filter(|(p, _)| mine(p))
            .map(|(p, s)| (p.clone(), s.clone()))
            .collect();
        let mut after = end.model.files.clone();
        match &end.in_flight {
            Some(InFlight::Put { path, sha }) => {
                after.insert(path.clone(), sha.clone());
            }
            Some(InFlight::Move { from, to }) => {
                if let Some(sha) = after.remove(from) {
                    after.insert(to.clone(), sha);
                }
            }
            Some(InFlight::Delete { path }) => {
                after.remove(path);
            }
            _ => {}
        }
        assert!(
            actual == end.model.files || actual == after,
            "cycle {cycle}, worker {worker}: acknowledged files lost or changed\nin flight: {:?}\nexpected {:?}\n  or     {:?}\nfound    {:?}",
            end.in_flight,
            end.model.files,
            after,
            actual
        );
        end.model.files = actual;
        // Every file's bytes are exactly one whole version (hash of the content).
        for path in end.model.files.keys() {
            let mut read = v
                .open_file(&coffer::vault::path::VaultPath::parse(path).unwrap())
                .unwrap();
            let (sha, _) = coffer::vault::sha256_of(&mut read.file).unwrap();
            assert_eq!(
                Some(sha),
                read.entry.sha256,
                "cycle {cycle}: torn file {path}"
            );
        }
        let records = v.all_records().unwrap();
        for (id, version) in end.model.records.clone() {
            let found = records.iter().find(|r| r.id == id).map(|r| r.version);
            let in_flight_here =
                matches!(&end.in_flight, Some(InFlight::Record { id: i }) if *i == id);
            assert!(
                found == Some(version) || (in_flight_here && found == Some(version + 1)),
                "cycle {cycle}: record {id} acknowledged at version {version}, found {found:?}"
            );
            end.model.records.insert(id, found.unwrap());
        }
        if let Some(InFlight::Record { id }) = &end.in_flight
            && !end.model.records.contains_key(id)
            && let Some(r) = records.iter().find(|r| &r.id == id)
        {
            end.model.records.insert(id.clone(), r.version);
        }
        end.in_flight = None;
    }
    // Nothing else in the vault: no file that nobody wrote, no staging name visible.
    let known: usize = ends.iter().map(|e| e.model.files.len()).sum();
    assert_eq!(on_disk.len(), known, "cycle {cycle}: unexpected files");
    // The index equals the disk: a full reindex changes nothing.
    let shape = |es: Vec<coffer::vault::index::Entry>| -> Vec<(String, u64, Option<String>)> {
        es.into_iter().map(|e| (e.path, e.size, e.sha256)).collect()
    };
    let before = shape(entries);
    v.reindex(&operator()).unwrap();
    assert_eq!(
        shape(v.all_entries().unwrap()),
        before,
        "cycle {cycle}: index differs from disk"
    );
    // Usage counters equal a recount.
    let counters: BTreeMap<String, i64> = v.usage().unwrap().into_iter().collect();
    let files: Vec<_> = v
        .all_entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::File)
        .collect();
    assert_eq!(
        counters["files_stored"],
        files.len() as i64,
        "cycle {cycle}"
    );
    assert_eq!(
        counters["bytes_stored"],
        files.iter().map(|e| e.size as i64).sum::<i64>(),
        "cycle {cycle}"
    );
    assert_eq!(
        counters["records_stored"],
        v.all_records().unwrap().len() as i64,
        "cycle {cycle}"
    );
    assert_eq!(
        counters["trash_bytes"],
        v.trash_list()
            .unwrap()
            .iter()
            .map(|t| t.size as i64)
            .sum::<i64>(),
        "cycle {cycle}"
    );
    let chain = coffer.audit().verify().unwrap();
    assert!(chain.broken.is_none(), "cycle {cycle}: {chain:?}");
}

/// Issue 8: real SIGKILLs at random moments under mixed load.
#[test]
fn issue8_kill9_never_loses_an_acknowledged_write() {
    let cycles: usize = std::env::var("COFFER_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("COFFER_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(412_062_510);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = seed_owner_token(&data);
    let mut rng = Rng(seed);
    let mut ends: Vec<WorkerEnd> = (0..WORKERS)
        .map(|_| WorkerEnd {
            model: Model::default(),
            in_flight: None,
        })
        .collect();
    for cycle in 0..cycles {
        let (mut child, addr) = start_server(&data);
        let acks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel();
        for (worker, end) in ends.iter().enumerate() {
            let (token, acks, stop, done_tx) =
                (token.clone(), acks.clone(), stop.clone(), done_tx.clone());
            let model = end.model.clone();
            let worker_seed = rng.next();
            std::thread::spawn(move || {
                let end = work(addr, token, worker, model, worker_seed, acks, stop);
                done_tx.send((worker, end)).unwrap();
            });
        }
        drop(done_tx);
        // Kill after a random number of acknowledged operations: the requests in flight
        // at that moment are cut at whatever step they had reached.
        let target = 10 + rng.below(30) as usize;
        while acks.load(Ordering::SeqCst) < target {
            match done_rx.try_recv() {
                Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
                _ => {
                    let _ = child.kill();
                    panic!("cycle {cycle}: a worker stopped before the kill");
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for _ in 0..WORKERS {
            let (worker, end) = done_rx.recv().unwrap();
            ends[worker] = end;
        }
        verify(&data, &mut ends, cycle);
    }
}
