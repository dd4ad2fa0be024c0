//! Moving a tenant between nodes (`coffer tenant move`, README "Scaling out"): two nodes
//! on one PostgreSQL control plane, each serving HTTP on loopback, the node taking the
//! tenant pulling its copy from the other over the node-to-node route. A move under
//! concurrent reads and writes loses no acknowledged write; a transfer cut off midway
//! leaves the tenant whole on the old node, fenced, until the move is resumed or rolled
//! back; a node token is the only way in.

mod relay;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use coffer::clock::ManualClock;
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::NewUser;
use coffer::http::AppState;
use coffer::names::{Email, TenantSlug};

use crate::haproxy::{exchange, get_status, make_owner, owner_token, send};
use crate::nodes::{files_on, heard_of_change};
use crate::support::{World, operator, postgres};
use relay::cutting_relay;

/// A node's HTTP server on loopback, stopped when dropped.
struct Served {
    addr: String,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Served {
    fn start(coffer: &Coffer) -> Served {
        Served::start_with(coffer, None)
    }

    /// `start`, terminating TLS with `tls`.
    fn start_with(
        coffer: &Coffer,
        tls: Option<std::sync::Arc<coffer::http::tls::Certificates>>,
    ) -> Served {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(coffer.clone()).unwrap();
        runtime.spawn(coffer::http::serve(state, listener, tls, async move {
            let _ = stopped.await;
        }));
        Served {
            addr,
            runtime: Some(runtime),
            stop: Some(stop),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Two nodes on one control plane: node-1 (the world, holding alpha, on a manual clock)
/// and node-2, both serving; an owner of alpha with an API token.
struct Cluster {
    a: World,
    clock: std::sync::Arc<ManualClock>,
    b: Coffer,
    served_a: Served,
    served_b: Served,
    token: String,
    _dir: tempfile::TempDir,
}

fn cluster(base: &str) -> Cluster {
    let clock = ManualClock::starting_now();
    let a = World::with_clock(
        Config {
            control: Some(postgres::fresh_schema(base)),
            node: Some("node-1".into()),
            ..Config::default()
        },
        clock.clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let b = Coffer::init(
        &dir.path().join("node-2-data"),
        Config {
            node: Some("node-2".into()),
            ..a.coffer.config().clone()
        },
    )
    .unwrap()
    .0;
    let user = a
        .coffer
        .control()
        .create_user(
            &operator(),
            &NewUser {
                email: Email::parse("owner@move.example").unwrap(),
                name: "Owner".into(),
                password_hash: None,
                is_operator: false,
            },
        )
        .unwrap();
    make_owner(&a.coffer, "alpha", user.id);
    let token = owner_token(&a.coffer, &a.alpha, user.id);
    let (served_a, served_b) = (Served::start(&a.coffer), Served::start(&b));
    a.coffer.control().register_node(&served_a.url()).unwrap();
    b.control().register_node(&served_b.url()).unwrap();
    Cluster {
        a,
        clock,
        b,
        served_a,
        served_b,
        token,
        _dir: dir,
    }
}

impl Cluster {
    fn auth(&self) -> String {
        format!("Authorization: Bearer {}\r\n", self.token)
    }

    fn put(&self, addr: &str, path: &str, body: &str) -> u16 {
        send(
            addr,
            "PUT",
            &format!("/api/v1/tenants/alpha/files/{path}"),
            &self.auth(),
            body,
        )
    }

    /// Creates a record in collection `notes`; the status and, if created, its id.
    fn create_record(&self, addr: &str, text: &str) -> (u16, Option<String>) {
        let body = serde_json::json!({ "text": text }).to_string();
        let answer = exchange(
            addr,
            "POST",
            "/api/v1/tenants/alpha/records/notes",
            &format!("{}Content-Type: application/json\r\n", self.auth()),
            &body,
        );
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let id = answer
            .split("\"id\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next().map(str::to_owned));
        (status, id.filter(|_| status == 201))
    }

    /// Status and body of a file's download.
    fn get(&self, addr: &str, path: &str) -> (u16, String) {
        let answer = exchange(
            addr,
            "GET",
            &format!("/api/v1/tenants/alpha/files/{path}"),
            &self.auth(),
            "",
        );
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }

    fn alpha_dir_on(&self, data: &std::path::Path) -> std::path::PathBuf {
        data.join("tenants").join(self.a.alpha.id.to_string())
    }
}

/// `len` bytes no database would hold by chance (the isolation audit looks for file
/// bytes in the databases).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

fn alpha() -> TenantSlug {
    TenantSlug::parse("alpha").unwrap()
}

#[test]
fn a_tenant_moves_under_reads_and_writes_and_loses_no_acknowledged_write() {
    let Some(base) = postgres::base_url("a_tenant_moves_under_reads_and_writes") else {
        return;
    };
    let c = cluster(&base);
    for i in 0..20 {
        c.a.put(
            &c.a.alpha,
            &format!("before/{i}.txt"),
            format!("before {i}").as_bytes(),
        );
    }
    let (a_addr, b_addr) = (c.served_a.addr.clone(), c.served_b.addr.clone());
    let moved = AtomicBool::new(false);
    let acked_after = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let acked: Mutex<Vec<(String, String)>> = Mutex::new(vec![]);
    let reads = AtomicUsize::new(0);
    let writers = 2;
    let report = std::thread::scope(|s| {
        for w in 0..writers {
            let (c, moved, acked_after, refused, acked) =
                (&c, &moved, &acked_after, &refused, &acked);
            let (a_addr, b_addr) = (a_addr.clone(), b_addr.clone());
            s.spawn(move || {
                let mut node = a_addr;
                let mut mine_after = 0;
                for n in 0.. {
                    if mine_after >= 3 {
                        return;
                    }
                    let (path, content) =
                        (format!("w{w}/{n}.txt"), format!("writer {w} write {n}"));
                    loop {
                        let was_moved = moved.load(Ordering::SeqCst);
                        // Writer 0 stores files, writer 1 creates records.
                        let (status, record) = if w == 0 {
                            (c.put(&node, &path, &content), None)
                        } else {
                            c.create_record(&node, &content)
                        };
                        match status {
                            201 | 200 | 204 => {
                                let key = record.map_or(path.clone(), |id| format!("record:{id}"));
                                acked.lock().unwrap().push((key, content.clone()));
                                if was_moved {
                                    mine_after += 1;
                                    acked_after.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            // The old node after the flip: the client follows to the new one.
                            421 => {
                                node = b_addr.clone();
                                continue;
                            }
                            // Fenced: not acknowledged; the writer goes on to its next file.
                            503 => {
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                            other => panic!("a write got {other}"),
                        }
                        break;
                    }
                }
            });
        }
        {
            let (c, moved, reads) = (&c, &moved, &reads);
            let (a_addr, b_addr) = (a_addr.clone(), b_addr.clone());
            s.spawn(move || {
                let mut node = a_addr;
                loop {
                    let done = moved.load(Ordering::SeqCst);
                    match c.get(&node, "before/3.txt") {
                        (200, body) => assert_eq!(body, "before 3"),
                        (421, _) => {
                            node = b_addr.clone();
                            continue;
                        }
                        // Reads go on while the tenant is fenced.
                        (other, body) => panic!("a read got {other}: {body}"),
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                    if done && node == b_addr {
                        return;
                    }
                }
            });
        }
        // Under way before the move starts: writes acknowledged and reads served on node-1.
        while acked.lock().unwrap().len() < 10 || reads.load(Ordering::SeqCst) < 10 {
            std::thread::yield_now();
        }
        let report = c.b.move_tenant(&operator(), &alpha(), "node-2").unwrap();
        moved.store(true, Ordering::SeqCst);
        report
    });
    assert_eq!(report.from_node, "node-1");
    assert_eq!(report.to_node, "node-2");
    // Fenced at epoch 2, flipped at 3.
    assert_eq!(report.epoch, 3);
    assert!(!report.already_here);
    // The files there before the move came with the live copy; only what changed
    // meanwhile crossed while the tenant was fenced.
    assert!(report.fenced_bytes < report.bytes, "{report:?}");
    let acked = acked.into_inner().unwrap();
    assert!(acked_after.load(Ordering::SeqCst) >= writers * 3);
    eprintln!(
        "move under load: {} files, {} bytes ({} sent while fenced), copy {:.3} s, fenced \
         {:.3} s; {} writes acknowledged, {} refused while fenced, {} reads",
        report.files,
        report.bytes,
        report.fenced_bytes,
        report.copy_secs,
        report.fenced_secs,
        acked.len(),
        refused.load(Ordering::SeqCst),
        reads.load(Ordering::SeqCst)
    );
    // Every acknowledged write, wherever it was acknowledged, is on node-2 as written:
    // the files, and the records.
    let on_b: HashMap<String, Vec<u8>> = files_on(&c.b, "alpha").into_iter().collect();
    let b_access = c.b.auth().operator_access(&operator(), &alpha()).unwrap();
    let notes = coffer::vault::path::CollectionName::parse("notes").unwrap();
    let mut records = 0;
    for (key, content) in &acked {
        if let Some(id) = key.strip_prefix("record:") {
            let id = coffer::vault::path::RecordId::parse(id).unwrap();
            let record = b_access.vault().record(&notes, &id).unwrap();
            assert_eq!(record.body["text"], content.as_str(), "{key}");
            records += 1;
            continue;
        }
        assert_eq!(
            on_b.get(key)
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            Some(content.clone()),
            "{key} was acknowledged"
        );
    }
    assert!(records >= 3, "{records} records");
    assert_eq!(on_b.len() + records, 20 + acked.len());
    assert!(acked.len() >= 10 + writers * 3);
    // node-2 serves alpha; node-1 sends its clients there.
    let tree = "/api/v1/tenants/alpha/tree";
    assert_eq!(get_status(&b_addr, tree, &c.token), 200);
    assert_eq!(get_status(&a_addr, tree, &c.token), 421);

    // A second run finds the move done.
    let again = c.b.move_tenant(&operator(), &alpha(), "node-2").unwrap();
    assert!(again.already_here);

    // node-1 keeps its copy for move_grace_hours, then its lifecycle pass removes it
    // (audited), and nothing else of the move is left on either node.
    let old_copy = c.alpha_dir_on(&c.a.data_dir());
    assert!(
        c.a.coffer
            .run_lifecycle()
            .unwrap()
            .moved_copies_removed
            .is_empty()
    );
    assert!(old_copy.is_dir());
    // Both nodes' auditors find everything in order: the sent copy in its grace period
    // is expected on node-1.
    for node in [&c.a.coffer, &c.b] {
        assert_eq!(node.isolation_audit(false).unwrap().findings, vec![]);
    }
    c.clock.advance(time::Duration::hours(25));
    let pass = c.a.coffer.run_lifecycle().unwrap();
    assert_eq!(pass.moved_copies_removed, vec![c.a.alpha.id.to_string()]);
    assert!(!old_copy.exists());
    for data in [c.a.data_dir(), c.b.data_root_path().to_owned()] {
        let debris: Vec<_> = std::fs::read_dir(data.join("tenants"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(debris.is_empty(), "{}: {debris:?}", data.display());
    }
    for node in [&c.a.coffer, &c.b] {
        let chain = node.audit().verify().unwrap();
        assert!(chain.broken.is_none(), "{chain:?}");
    }
}

#[test]
fn a_move_cut_off_midway_leaves_the_tenant_whole_and_resumes_or_rolls_back() {
    let Some(base) = postgres::base_url("a_move_cut_off_midway") else {
        return;
    };
    let c = cluster(&base);
    for i in 0..40 {
        c.a.put(&c.a.alpha, &format!("doc/{i}.bin"), &noise(i, 50_000));
    }
    let (a_addr, b_addr) = (c.served_a.addr.clone(), c.served_b.addr.clone());
    let a_control = c.a.coffer.control();

    // node-1 "dies" a third of the way through the live copy: nothing was fenced, so
    // nothing stopped, and node-2 keeps nothing of it.
    let relay = cutting_relay(a_addr.clone(), "GET", 700_000);
    a_control.register_node(&format!("http://{relay}")).unwrap();
    let err =
        c.b.move_tenant(&operator(), &alpha(), "node-2")
            .unwrap_err();
    assert!(
        err.to_string().contains("pulling alpha from node-1"),
        "{err}"
    );
    let incoming_b =
        c.b.data_root_path()
            .join("tenants")
            .join(format!(".incoming-{}", c.a.alpha.id));
    assert!(!incoming_b.exists());
    assert_eq!(c.put(&a_addr, "during-live-copy.txt", "taken"), 201);
    let before = files_on(&c.a.coffer, "alpha");

    // node-1 "dies" early in the fenced copy, after the live copy went through.
    let relay = cutting_relay(a_addr.clone(), "POST", 4096);
    a_control.register_node(&format!("http://{relay}")).unwrap();
    let cut = c.b.move_tenant(&operator(), &alpha(), "node-2");
    let err = cut.unwrap_err().to_string();
    assert!(err.contains("pulling alpha from node-1"), "{err}");
    // The tenant is whole on node-1, fenced: reads go on, writes wait; node-2 serves
    // nothing of it and holds only the debris of the copy.
    let placed = a_control
        .tenant(c.a.alpha.id)
        .unwrap()
        .unwrap()
        .placement
        .unwrap();
    assert_eq!(
        (placed.node.as_str(), placed.fenced_at.is_some()),
        ("node-1", true)
    );
    assert_eq!(c.get(&a_addr, "doc/7.bin").0, 200);
    assert_eq!(c.put(&a_addr, "during.txt", "refused"), 503);
    assert_eq!(
        get_status(&b_addr, "/api/v1/tenants/alpha/tree", &c.token),
        421
    );
    assert_eq!(files_on(&c.a.coffer, "alpha"), before);
    assert!(incoming_b.is_dir());

    // An hour on, node-1's auditors name the fence that never ended, and node-2's the
    // partial copy (until the rollback below takes both away).
    let now = coffer::clock::Clock::now(c.clock.as_ref());
    c.clock.advance(time::Duration::minutes(61));
    let stuck = c.a.coffer.isolation_audit(false).unwrap().findings;
    assert_eq!(
        stuck.iter().map(|f| f.check).collect::<Vec<_>>(),
        vec!["stuck-fence"],
        "{stuck:#?}"
    );
    c.clock.set(now); // node tokens are checked against node-1's clock
    // While the tenant is fenced the move may resume: node-2's lifecycle pass keeps the
    // partial copy.
    c.b.run_lifecycle().unwrap();
    assert!(incoming_b.is_dir());
    // Rolled back (from node-1): node-1 takes writes again, node-2's next lifecycle
    // pass removes its debris, and a move still holding the fenced epoch cannot flip
    // the tenant with the copy it took.
    let rolled = c.a.coffer.abort_move(&operator(), &alpha()).unwrap();
    assert_eq!(
        (rolled.node.as_str(), rolled.epoch, rolled.removed_debris),
        ("node-1", 3, false)
    );
    c.b.run_lifecycle().unwrap();
    assert!(!incoming_b.exists());
    assert_eq!(c.put(&a_addr, "after-abort.txt", "kept"), 201);
    let stale = c.b.control().replace_placement(
        &operator(),
        c.a.alpha.id,
        &placed,
        "node-2",
        serde_json::json!("a stale move"),
    );
    assert!(stale.unwrap_err().to_string().contains("changed meanwhile"));
    assert!(
        c.b.abort_move(&operator(), &alpha()).is_err(),
        "nothing left to roll back"
    );

    // Cut off again, then resumed against the real address: the second run removes the
    // debris, pulls again and finishes, with every file (the write made after the
    // rollback too) served by node-2.
    assert!(c.b.move_tenant(&operator(), &alpha(), "node-2").is_err());
    a_control.register_node(&c.served_a.url()).unwrap();
    let stamp = a_control.change_stamp();
    let resumed = c.b.move_tenant(&operator(), &alpha(), "node-2").unwrap();
    assert_eq!((resumed.files, resumed.epoch), (42, 5));
    let mut expected = before.clone();
    expected.push(("after-abort.txt".into(), b"kept".to_vec()));
    expected.sort();
    let mut on_b = files_on(&c.b, "alpha");
    on_b.sort();
    assert_eq!(on_b, expected);
    assert_eq!(c.put(&b_addr, "on-node-2.txt", "new home"), 201);
    heard_of_change(&c.a.coffer, stamp);
    assert_eq!(c.put(&a_addr, "stale.txt", "no"), 421);

    // Moved back, once node-1's old copy is gone (removed by hand here, as an operator
    // or a lifecycle run from the command line would, while node-1 kept serving): node-1
    // serves the new copy, never the vault it still had open from before.
    let old_copy = c.alpha_dir_on(&c.a.data_dir());
    assert!(
        c.a.coffer
            .move_tenant(&operator(), &alpha(), "node-1")
            .is_err()
    );
    std::fs::remove_dir_all(&old_copy).unwrap();
    let stamp = a_control.change_stamp();
    let back =
        c.a.coffer
            .move_tenant(&operator(), &alpha(), "node-1")
            .unwrap();
    assert_eq!(
        (back.from_node.as_str(), back.to_node.as_str()),
        ("node-2", "node-1")
    );
    heard_of_change(&c.a.coffer, stamp);
    assert_eq!(c.put(&a_addr, "back.txt", "home again"), 201);
    assert_eq!(
        std::fs::read(old_copy.join("files/back.txt")).unwrap(),
        b"home again"
    );
    assert_eq!(
        c.get(&a_addr, "on-node-2.txt"),
        (200, "new home".to_owned())
    );
}

#[test]
fn only_a_node_token_for_a_fenced_tenant_pulls_a_copy() {
    let Some(base) = postgres::base_url("only_a_node_token_pulls") else {
        return;
    };
    let c = cluster(&base);
    let a_addr = c.served_a.addr.clone();
    let path = format!("/api/v1/nodes/moves/{}", c.a.alpha.id);
    // No token, a member's API token, a forged one: 401.
    assert_eq!(send(&a_addr, "GET", &path, "", ""), 401);
    assert_eq!(get_status(&a_addr, &path, &c.token), 401);
    let forged = coffer::coffer::moving::token::NodeKeys::new(&[9; 32]).issue(
        "node-2",
        &c.a.alpha.id.to_string(),
        1,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    assert_eq!(get_status(&a_addr, &path, &forged), 401);
    // A token signed with the cluster's node key, for a tenant that is not fenced (or
    // at another epoch than its fence's), pulls nothing: 403, and nothing is fenced.
    assert!(c.a.coffer.verify_node_token("not a token").is_err());
    let schema = c.a.coffer.config().control.clone().unwrap();
    let secret = postgres::query_text(
        &schema,
        "SELECT value FROM cluster_secrets WHERE name = 'node'",
    );
    let keys = coffer::coffer::moving::token::NodeKeys::new(&hex::decode(secret.trim()).unwrap());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let genuine = keys.issue("node-2", &c.a.alpha.id.to_string(), 1, now);
    assert_eq!(get_status(&a_addr, &path, &genuine), 403);
    // For another tenant than the one in the path: 401.
    let other = keys.issue("node-2", &c.a.bravo.id.to_string(), 1, now);
    assert_eq!(get_status(&a_addr, &path, &other), 401);
    // A live copy's token reads the tenant while it takes writes, at its epoch only, and
    // shuts nothing.
    let live = keys.issue_live("node-2", &c.a.alpha.id.to_string(), 1, now);
    assert_eq!(get_status(&a_addr, &path, &live), 200);
    let stale = keys.issue_live("node-2", &c.a.alpha.id.to_string(), 0, now);
    assert_eq!(get_status(&a_addr, &path, &stale), 403);
    assert_eq!(c.put(&a_addr, "after-live-copy.txt", "still writable"), 201);
    // Nor does it take the fenced copy (which lists held files).
    let auth = format!("Authorization: Bearer {live}\r\nContent-Type: application/json\r\n");
    assert_eq!(send(&a_addr, "POST", &path, &auth, r#"{"held":{}}"#), 403);
    let placed = c.a.coffer.control().tenant(c.a.alpha.id).unwrap().unwrap();
    assert!(
        placed
            .placement
            .is_some_and(|p| p.fenced_at.is_none() && p.epoch == 1)
    );
    // One run per tenant on a node: while another holds the move's lock, a second is
    // refused before anything is fenced.
    let tenants = c.b.data_root_path().join("tenants");
    let held =
        std::fs::File::create(tenants.join(format!(".moving-{}.lock", c.a.alpha.id))).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let busy =
        c.b.move_tenant(&operator(), &alpha(), "node-2")
            .unwrap_err()
            .to_string();
    assert!(busy.contains("another move of alpha is running"), "{busy}");
    drop(held);
    let placed = c.a.coffer.control().tenant(c.a.alpha.id).unwrap().unwrap();
    assert!(
        placed
            .placement
            .is_some_and(|p| p.fenced_at.is_none() && p.epoch == 1)
    );
    // A move is run on the node taking the tenant.
    assert!(
        c.b.move_tenant(&operator(), &alpha(), "node-1")
            .unwrap_err()
            .to_string()
            .contains("run the move on node node-1")
    );
    // A copy whose file is not what its index records (damaged on the old node) is
    // refused before anything is placed; the rollback leaves the tenant where it was.
    c.a.put(&c.a.alpha, "x.txt", b"x");
    let file = c.alpha_dir_on(&c.a.data_dir()).join("files/x.txt");
    std::fs::write(&file, b"tampered").unwrap();
    let refused =
        c.b.move_tenant(&operator(), &alpha(), "node-2")
            .unwrap_err()
            .to_string();
    assert!(
        refused.contains("x.txt differs from its index entry"),
        "{refused}"
    );
    c.b.abort_move(&operator(), &alpha()).unwrap();
    let placed = c.a.coffer.control().tenant(c.a.alpha.id).unwrap().unwrap();
    assert!(
        placed
            .placement
            .is_some_and(|p| p.node == "node-1" && p.fenced_at.is_none())
    );
    assert!(
        !c.b.data_root_path()
            .join("tenants")
            .join(c.a.alpha.id.to_string())
            .exists()
    );
    // Through the public front (HAProxy's example configuration), node routes do not exist.
    let cfg = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy/haproxy.cfg"),
    )
    .unwrap();
    assert!(cfg.contains("http-request deny deny_status 404 if { path_beg /api/v1/nodes/ }"));
}

#[test]
fn a_copy_travels_over_tls_to_an_https_node_address_and_only_to_a_trusted_one() {
    let Some(base) = postgres::base_url("a_copy_travels_over_tls") else {
        return;
    };
    let c = cluster(&base);
    c.a.put(&c.a.alpha, "over/tls.txt", b"encrypted on the way");
    // node-1 also serves TLS, with a certificate for 127.0.0.1; it registers that address.
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let certs = coffer::http::tls::Certificates::load(&cert, &key).unwrap();
    let tls = Served::start_with(&c.a.coffer, Some(certs));
    c.a.coffer
        .control()
        .register_node(&format!("https://{}", tls.addr))
        .unwrap();
    let node = |name: &str, ca: Option<std::path::PathBuf>| {
        Coffer::init(
            &dir.path().join(name),
            Config {
                node: Some(name.into()),
                node_ca_file: ca,
                ..c.a.coffer.config().clone()
            },
        )
        .unwrap()
        .0
    };
    // Without the nodes' authority, or with another one, nothing is pulled.
    let no_ca = node("node-3", None).move_tenant(&operator(), &alpha(), "node-3");
    let why = no_ca.unwrap_err().to_string();
    assert!(why.contains("needs node_ca_file"), "{why}");
    let foreign = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let foreign_ca = dir.path().join("foreign.pem");
    std::fs::write(&foreign_ca, foreign.cert.pem()).unwrap();
    let untrusted = node("node-4", Some(foreign_ca)).move_tenant(&operator(), &alpha(), "node-4");
    assert!(untrusted.is_err(), "a node it cannot verify sent the copy");
    // With it, the copy travels and verifies.
    let trusted = node("node-5", Some(cert));
    let report = trusted
        .move_tenant(&operator(), &alpha(), "node-5")
        .unwrap();
    assert_eq!((report.from_node.as_str(), report.files), ("node-1", 1));
    // A quiet tenant: every file came with the live copy, none while fenced.
    assert_eq!(report.fenced_bytes, 0, "{report:?}");
    assert_eq!(
        files_on(&trusted, "alpha"),
        vec![("over/tls.txt".to_owned(), b"encrypted on the way".to_vec())]
    );
}

#[test]
fn a_node_without_room_for_the_copy_refuses_it_before_writing() {
    let Some(base) = postgres::base_url("a_node_without_room") else {
        return;
    };
    let c = cluster(&base);
    c.a.put(&c.a.alpha, "big.bin", &noise(1, 6 << 20));
    // node-3's data root on a 16 MiB filesystem: less than the copy's 6 MiB plus the
    // margin a taking node keeps.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node-3");
    std::fs::create_dir(&data).unwrap();
    let Some(_fs) = crate::diskfull::Tmpfs::mount(&data, "16m") else {
        assert!(
            std::env::var("COFFER_REQUIRE_ROOT_TESTS").is_err(),
            "COFFER_REQUIRE_ROOT_TESTS is set but this test cannot mount a tmpfs"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let small = Coffer::init(
        &data,
        Config {
            node: Some("node-3".into()),
            ..c.a.coffer.config().clone()
        },
    )
    .unwrap()
    .0;
    let refused = small
        .move_tenant(&operator(), &alpha(), "node-3")
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("not enough free space on this node"),
        "{refused}"
    );
    // Refused at the live copy, before the fence: nothing of it was written there, and
    // node-1 never stopped taking writes.
    let incoming = data
        .join("tenants")
        .join(format!(".incoming-{}", c.a.alpha.id));
    assert!(!incoming.exists());
    let placed = c.a.coffer.control().tenant(c.a.alpha.id).unwrap().unwrap();
    assert!(placed.placement.unwrap().fenced_at.is_none());
    assert_eq!(c.put(&c.served_a.addr, "still.txt", "writable"), 201);
}
