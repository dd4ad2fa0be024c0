//! The vault layer through its public API: operations, durability and repair, planted
//! non-regular files, limits, and isolation between tenants.

mod on_disk;

use std::io::{self, Read};

use coffer::audit::AuditAction;
use coffer::config::Config;
use coffer::vault::index::EntryKind;
use coffer::vault::path::VaultPath;
use coffer::vault::{Precondition, VaultError};

use crate::support::{World, operator, sha256_hex, snapshot};

fn p(s: &str) -> VaultPath {
    VaultPath::parse(s).unwrap()
}

fn read_all(world: &World, t: &coffer::control::Tenant, path: &str) -> Vec<u8> {
    let mut r = world.vault(t).open_file(&p(path)).unwrap();
    let mut out = Vec::new();
    r.file.read_to_end(&mut out).unwrap();
    out
}

/// A reader that yields `ok_bytes` bytes and then fails, like a client that disconnects.
struct FailingReader {
    ok_bytes: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            ));
        }
        let n = buf.len().min(self.ok_bytes);
        buf[..n].fill(b'x');
        self.ok_bytes -= n;
        Ok(n)
    }
}

fn staging_is_empty(world: &World, t: &coffer::control::Tenant) -> bool {
    std::fs::read_dir(world.vault_dir(t).join(".staging"))
        .unwrap()
        .next()
        .is_none()
}

#[test]
fn write_read_stat_list_round_trip() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    let e = v
        .write_file(
            &op,
            &p("jobs/2026/quote.txt"),
            &mut &b"hello"[..],
            &Precondition::None,
        )
        .unwrap()
        .entry;
    assert_eq!(e.size, 5);
    assert_eq!(e.sha256.as_deref(), Some(sha256_hex(b"hello").as_str()));
    assert_eq!(e.content_type.as_deref(), Some("text/plain"));
    assert_eq!(read_all(&w, &w.alpha, "jobs/2026/quote.txt"), b"hello");
    // Parents were created and indexed as directories.
    assert_eq!(v.stat(&p("jobs")).unwrap().kind, EntryKind::Dir);
    assert_eq!(v.stat(&p("jobs/2026")).unwrap().kind, EntryKind::Dir);
    // On disk, under files/, and nowhere else.
    assert_eq!(
        std::fs::read(w.vault_dir(&w.alpha).join("files/jobs/2026/quote.txt")).unwrap(),
        b"hello"
    );
    assert!(staging_is_empty(&w, &w.alpha));
    // Overwrite keeps created_at and changes the hash.
    let e2 = v
        .write_file(
            &op,
            &p("jobs/2026/quote.txt"),
            &mut &b"hello again"[..],
            &Precondition::None,
        )
        .unwrap()
        .entry;
    assert_eq!(e2.created_at, e.created_at);
    assert_ne!(e2.sha256, e.sha256);
    assert_eq!(
        v.usage().unwrap(),
        vec![
            ("bytes_stored".to_owned(), 11),
            ("files_stored".to_owned(), 1),
            ("property_bytes".to_owned(), 0),
            ("records_stored".to_owned(), 0),
            ("trash_bytes".to_owned(), 0)
        ]
    );
}

#[test]
fn listing_is_paginated_in_stable_order() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    for name in ["b.txt", "a.txt", "d.txt", "c.txt", "e.txt"] {
        v.write_file(
            &operator(),
            &p(&format!("docs/{name}")),
            &mut &b"x"[..],
            &Precondition::None,
        )
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = v.list(Some(&p("docs")), after.as_deref(), 2).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = Some(page.last().unwrap().name.clone());
        seen.extend(page.into_iter().map(|e| e.name));
    }
    assert_eq!(seen, ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]);
    let root: Vec<String> = v
        .list(None, None, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(root, ["docs"]);
    assert!(matches!(
        v.list(Some(&p("docs/a.txt")), None, 10),
        Err(VaultError::NotADirectory)
    ));
    assert!(matches!(
        v.list(Some(&p("nope")), None, 10),
        Err(VaultError::NotFound)
    ));
}

#[test]
fn preconditions_and_case_policy() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    let e = v
        .write_file(
            &op,
            &p("Invoices/inv-1.pdf"),
            &mut &b"v1"[..],
            &Precondition::IfAbsent,
        )
        .unwrap()
        .entry;
    assert!(matches!(
        v.write_file(
            &op,
            &p("Invoices/inv-1.pdf"),
            &mut &b"v2"[..],
            &Precondition::IfAbsent
        ),
        Err(VaultError::PreconditionFailed)
    ));
    assert!(matches!(
        v.write_file(
            &op,
            &p("Invoices/inv-1.pdf"),
            &mut &b"v2"[..],
            &Precondition::IfMatch("0".repeat(64))
        ),
        Err(VaultError::PreconditionFailed)
    ));
    v.write_file(
        &op,
        &p("Invoices/inv-1.pdf"),
        &mut &b"v2"[..],
        &Precondition::IfMatch(e.sha256.unwrap()),
    )
    .unwrap();
    // Two spellings differing only by case may not coexist, at any depth.
    for clash in ["invoices/x.pdf", "Invoices/INV-1.pdf", "INVOICES"] {
        assert!(
            matches!(
                v.write_file(&op, &p(clash), &mut &b"x"[..], &Precondition::None),
                Err(VaultError::CaseConflict(..))
            ),
            "{clash}"
        );
    }
    assert!(matches!(
        v.mkdir(&op, &p("invoices")),
        Err(VaultError::CaseConflict(..))
    ));
    // NFC: the decomposed spelling names the same file.
    v.write_file(
        &op,
        &p("caf\u{e9}.txt"),
        &mut &b"1"[..],
        &Precondition::None,
    )
    .unwrap();
    v.write_file(
        &op,
        &p("cafe\u{301}.txt"),
        &mut &b"2"[..],
        &Precondition::None,
    )
    .unwrap();
    assert_eq!(read_all(&w, &w.alpha, "caf\u{e9}.txt"), b"2");
    assert_eq!(v.list(None, None, 10).unwrap().len(), 2);
}

#[test]
fn move_trash_restore_purge() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    v.write_file(&op, &p("a/one.txt"), &mut &b"1"[..], &Precondition::None)
        .unwrap();
    v.write_file(
        &op,
        &p("a/sub/two.txt"),
        &mut &b"22"[..],
        &Precondition::None,
    )
    .unwrap();
    v.rename(&op, &p("a"), &p("b/renamed")).unwrap();
    assert!(matches!(v.stat(&p("a/one.txt")), Err(VaultError::NotFound)));
    assert_eq!(read_all(&w, &w.alpha, "b/renamed/sub/two.txt"), b"22");
    assert!(matches!(
        v.rename(&op, &p("b"), &p("b/renamed/x")),
        Err(VaultError::MoveIntoSelf)
    ));
    v.write_file(&op, &p("c.txt"), &mut &b"c"[..], &Precondition::None)
        .unwrap();
    assert!(matches!(
        v.rename(&op, &p("c.txt"), &p("b")),
        Err(VaultError::AlreadyExists)
    ));

    let item = v.delete(&op, &p("b/renamed")).unwrap();
    assert_eq!(item.size, 3);
    assert_eq!(item.kind, EntryKind::Dir);
    assert!(matches!(
        v.stat(&p("b/renamed/one.txt")),
        Err(VaultError::NotFound)
    ));
    assert_eq!(v.usage().unwrap()[0], ("bytes_stored".to_owned(), 1));
    assert_eq!(v.trash_list().unwrap().len(), 1);
    // Restore to the original place.
    v.restore(&op, &item.id, None).unwrap();
    assert_eq!(read_all(&w, &w.alpha, "b/renamed/sub/two.txt"), b"22");
    assert!(v.trash_list().unwrap().is_empty());
    // Delete again and purge for good.
    let item = v.delete(&op, &p("b/renamed")).unwrap();
    v.purge(&op, &item.id).unwrap();
    assert!(v.trash_list().unwrap().is_empty());
    assert!(
        std::fs::read_dir(w.vault_dir(&w.alpha).join(".trash"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(matches!(v.purge(&op, &item.id), Err(VaultError::NotFound)));
}

#[test]
fn every_mutation_writes_exactly_one_audit_event() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    let before = w.coffer.audit().verify().unwrap().events;
    v.write_file(&op, &p("x/a.txt"), &mut &b"1"[..], &Precondition::None)
        .unwrap();
    v.mkdir(&op, &p("y")).unwrap();
    v.rename(&op, &p("x/a.txt"), &p("y/a.txt")).unwrap();
    let item = v.delete(&op, &p("y/a.txt")).unwrap();
    v.restore(&op, &item.id, None).unwrap();
    let item = v.delete(&op, &p("y/a.txt")).unwrap();
    v.purge(&op, &item.id).unwrap();
    let events = w
        .coffer
        .audit()
        .events_for_tenant(w.alpha.id, 0, 100)
        .unwrap();
    let actions: Vec<&str> = events
        .iter()
        .rev()
        .take(7)
        .rev()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "file.write",
            "dir.create",
            "file.move",
            "file.delete",
            "file.restore",
            "file.delete",
            "file.purge"
        ]
    );
    assert_eq!(w.coffer.audit().verify().unwrap().events, before + 7);
    assert!(events.iter().all(|e| e.actor == "operator:cli:test"));
    // Audit events carry no content: the bytes "1" appear in no detail.
    assert!(events.iter().all(|e| {
        e.detail
            .as_ref()
            .is_none_or(|d| !d.to_string().contains("\"1\""))
    }));
    assert_eq!(
        AuditAction::parse("file.purge"),
        Some(AuditAction::FilePurge)
    );
}

#[test]
fn failed_upload_leaves_old_version_index_and_no_staging() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    v.write_file(&op, &p("doc.txt"), &mut &b"old"[..], &Precondition::None)
        .unwrap();
    let before = v.stat(&p("doc.txt")).unwrap();
    let err = v
        .write_file(
            &op,
            &p("doc.txt"),
            &mut FailingReader { ok_bytes: 600_000 },
            &Precondition::None,
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::Upload(_)), "{err:?}");
    assert_eq!(read_all(&w, &w.alpha, "doc.txt"), b"old");
    assert_eq!(v.stat(&p("doc.txt")).unwrap(), before);
    assert!(staging_is_empty(&w, &w.alpha));
    // A new file that fails leaves nothing visible at all.
    let _ = v.write_file(
        &op,
        &p("new.txt"),
        &mut FailingReader { ok_bytes: 10 },
        &Precondition::None,
    );
    assert!(matches!(v.stat(&p("new.txt")), Err(VaultError::NotFound)));
    assert!(!w.vault_dir(&w.alpha).join("files/new.txt").exists());
}

#[test]
fn quota_and_size_limit_are_enforced_while_streaming() {
    let w = World::with_config(Config {
        max_file_bytes: 1024 * 1024,
        ..Config::default()
    });
    let op = operator();
    let t = w
        .coffer
        .create_tenant(&op, crate::support::new_tenant("small", Some(1000)))
        .unwrap();
    let v = w.vault(&t);
    v.write_file(&op, &p("a.bin"), &mut &[1u8; 600][..], &Precondition::None)
        .unwrap();
    let err = v
        .write_file(&op, &p("b.bin"), &mut &[2u8; 600][..], &Precondition::None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::QuotaExceeded {
                quota: 1000,
                used: 600,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(v.stat(&p("b.bin")), Err(VaultError::NotFound)));
    assert!(staging_is_empty(&w, &t));
    // Replacing a file counts only the difference.
    v.write_file(&op, &p("a.bin"), &mut &[3u8; 900][..], &Precondition::None)
        .unwrap();
    assert_eq!(v.usage().unwrap()[0].1, 900);

    // The size limit stops an endless stream early: it is never read to the end.
    let wv = w.vault(&w.alpha);
    let mut endless = io::repeat(7);
    let err = wv
        .write_file(&op, &p("huge.bin"), &mut endless, &Precondition::None)
        .unwrap_err();
    assert!(
        matches!(err, VaultError::TooLarge { limit: 1_048_576 }),
        "{err:?}"
    );
    assert!(staging_is_empty(&w, &w.alpha));
}

#[test]
fn tenants_never_touch_each_other() {
    let w = World::new();
    let op = operator();
    let a = w.vault(&w.alpha);
    let b = w.vault(&w.bravo);
    let bravo_before = snapshot(&w.vault_dir(&w.bravo));
    a.write_file(
        &op,
        &p("shared-name.txt"),
        &mut &b"alpha data"[..],
        &Precondition::None,
    )
    .unwrap();
    a.mkdir(&op, &p("only-alpha")).unwrap();
    let item = a.delete(&op, &p("only-alpha")).unwrap();
    a.purge(&op, &item.id).unwrap();
    assert_eq!(
        snapshot(&w.vault_dir(&w.bravo)),
        bravo_before,
        "bravo's vault untouched"
    );
    assert!(matches!(
        b.stat(&p("shared-name.txt")),
        Err(VaultError::NotFound)
    ));
    b.write_file(
        &op,
        &p("shared-name.txt"),
        &mut &b"bravo data"[..],
        &Precondition::None,
    )
    .unwrap();
    assert_eq!(read_all(&w, &w.alpha, "shared-name.txt"), b"alpha data");
    assert_eq!(read_all(&w, &w.bravo, "shared-name.txt"), b"bravo data");
    // Trash ids of one tenant mean nothing in another.
    let item = a.delete(&op, &p("shared-name.txt")).unwrap();
    assert!(matches!(
        b.restore(&op, &item.id, None),
        Err(VaultError::NotFound)
    ));
    assert!(matches!(b.purge(&op, &item.id), Err(VaultError::NotFound)));
    // Separate index databases.
    assert_ne!(
        std::fs::canonicalize(w.vault_dir(&w.alpha).join("index.db")).unwrap(),
        std::fs::canonicalize(w.vault_dir(&w.bravo).join("index.db")).unwrap()
    );
    assert!(a.search("bravo", 10).unwrap().is_empty());
}

/// The process's open descriptors that lead into `root`, read from the kernel (procfs),
/// not from the cache's own counter. Only this test's data root counts, so tests running
/// alongside do not disturb the figure.
fn open_fds_under(root: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.starts_with(root))
        .count()
}

#[test]
fn open_vaults_are_bounded_by_the_cache() {
    let w = World::with_config(Config {
        vault_cache_capacity: 3,
        ..Config::default()
    });
    let op = operator();
    let mut tenants = Vec::new();
    for i in 0..12 {
        let t = w
            .coffer
            .create_tenant(&op, crate::support::new_tenant(&format!("t{i}"), None))
            .unwrap();
        tenants.push(t);
    }
    let root = std::fs::canonicalize(w.data_dir()).unwrap();
    // One open vault holds its directory handles and its index (with -wal and -shm).
    let one = {
        for t in [&w.alpha, &w.bravo].into_iter().chain(&tenants) {
            w.coffer.vault_store_unchecked().evict(t.id);
        }
        let empty = open_fds_under(&root);
        let _v = w.vault(&tenants[0]);
        open_fds_under(&root) - empty
    };
    assert!((4..=10).contains(&one), "one vault holds {one} descriptors");
    // Touch every tenant twice over: descriptors stay bounded by the cache (3 vaults, the
    // evicted ones still queued for the closing thread or being closed, the control plane
    // and the audit log), however many tenants are touched.
    let bound = (3 + coffer::vault::CLOSING_MAX + 1) * one + 8;
    for t in tenants.iter().chain(&tenants) {
        let v = w.vault(t);
        v.write_file(&op, &p("x.txt"), &mut &b"x"[..], &Precondition::None)
            .unwrap();
        drop(v);
        assert!(w.coffer.open_vaults() <= 3);
        let now = open_fds_under(&root);
        assert!(
            now <= bound,
            "{now} descriptors into the data root (bound {bound})"
        );
    }
    // An evicted vault reopens with its data.
    assert_eq!(read_all(&w, &tenants[0], "x.txt"), b"x");
    // A vault still in use when evicted is reused, not opened twice.
    let held = w.vault(&tenants[1]);
    for t in &tenants[2..] {
        w.vault(t);
    }
    assert!(std::ptr::eq(&*held, &*w.vault(&tenants[1])));
}

/// The lifecycle's trash expiry and backups open every tenant's vault: they must not push
/// the vaults in use out of the cache (a pass over 10,000 tenants would empty it).
#[test]
fn a_pass_over_every_tenant_evicts_no_vault_in_use() {
    let w = World::with_config(Config {
        vault_cache_capacity: 3,
        ..Config::default()
    });
    let op = operator();
    let tenants: Vec<_> = (0..6)
        .map(|i| {
            w.coffer
                .create_tenant(&op, crate::support::new_tenant(&format!("t{i}"), None))
                .unwrap()
        })
        .collect();
    let store = w.coffer.vault_store_unchecked();
    let in_use = &tenants[..3];
    let check = |when: &str| {
        for t in in_use {
            assert!(store.cached(t.id).is_some(), "{} evicted by {when}", t.slug);
        }
        for t in &tenants[3..] {
            assert!(store.cached(t.id).is_none(), "{} kept by {when}", t.slug);
        }
    };
    for t in in_use {
        store.open(t.id).unwrap();
    }
    for t in tenants.iter().chain([&w.alpha, &w.bravo]) {
        let v = store.open_transient(t.id).unwrap();
        assert_eq!(v.tenant(), t.id);
    }
    check("transient opens");
    w.coffer.run_lifecycle().unwrap();
    check("the lifecycle pass");
    assert!(w.coffer.open_vaults() <= 3);
}

/// Streams past the inline-hashing threshold are hashed on a second thread: the digest
/// and the bytes must still be exactly those of the stream.
#[test]
fn large_streams_hash_correctly_on_the_hashing_thread() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let mut data = vec![0u8; 10 * 1024 * 1024 + 12345];
    let mut x: u32 = 1;
    for b in data.iter_mut() {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *b = (x >> 24) as u8;
    }
    let e = v
        .write_file(
            &operator(),
            &p("big.bin"),
            &mut &data[..],
            &Precondition::None,
        )
        .unwrap()
        .entry;
    assert_eq!(e.sha256.as_deref(), Some(sha256_hex(&data).as_str()));
    assert_eq!(e.size, data.len() as u64);
    assert_eq!(read_all(&w, &w.alpha, "big.bin"), data);
}

/// Trashed bytes keep counting against the quota until purged, and a restore checks the
/// quota: upload, trash, upload, restore can no longer store more than the quota
/// (issue 7).
#[test]
fn issue7_trash_counts_against_the_quota_and_restore_checks_it() {
    let w = World::new();
    let op = operator();
    let t = w
        .coffer
        .create_tenant(&op, crate::support::new_tenant("quota-trash", Some(1000)))
        .unwrap();
    let v = w.vault(&t);
    v.write_file(&op, &p("a.bin"), &mut &[1u8; 600][..], &Precondition::None)
        .unwrap();
    let item = v.delete(&op, &p("a.bin")).unwrap();
    let err = v
        .write_file(&op, &p("b.bin"), &mut &[2u8; 600][..], &Precondition::None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::QuotaExceeded {
                quota: 1000,
                used: 600,
                ..
            }
        ),
        "{err:?}"
    );
    // A quota lowered since the delete: the restore would take the vault over it.
    v.set_quota(Some(500));
    assert!(matches!(
        v.restore(&op, &item.id, None),
        Err(VaultError::QuotaExceeded { quota: 500, .. })
    ));
    v.set_quota(Some(1000));
    v.restore(&op, &item.id, None).unwrap();
    // Purging frees the bytes for good.
    let item = v.delete(&op, &p("a.bin")).unwrap();
    v.purge(&op, &item.id).unwrap();
    v.write_file(&op, &p("b.bin"), &mut &[2u8; 600][..], &Precondition::None)
        .unwrap();
    let used: i64 = v
        .usage()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == "bytes_stored" || n == "trash_bytes")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(used, 600);
}

/// Opening a vault (SQLite, migrations, crash repair) happens outside the cache's lock:
/// while one tenant's open is held in progress, another tenant is opened and served
/// (issue 7).
#[test]
fn issue7_a_slow_vault_open_does_not_delay_another_tenant() {
    use std::sync::mpsc;
    let w = World::new();
    let store = w.coffer.vault_store_unchecked();
    store.evict(w.alpha.id);
    store.evict(w.bravo.id);
    let (entered_tx, entered) = mpsc::channel();
    let (release_tx, release) = mpsc::channel::<()>();
    let release = std::sync::Mutex::new(release);
    let alpha = w.alpha.id;
    store.set_open_hook(Some(std::sync::Arc::new(move |tenant| {
        if tenant == alpha {
            entered_tx.send(()).unwrap();
            // Held here until the test has served the other tenant.
            let _ = release.lock().unwrap().recv();
        }
    })));
    let w = &w;
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| w.vault(&w.alpha).stat(&p("x")).is_err());
        entered.recv().unwrap();
        // Alpha's open is in progress; bravo must not wait for it. Were the cache's lock
        // held across opens, bravo's open would block until alpha's ends, which this test
        // only allows after bravo has been served (the wait below is a deadlock guard, not
        // a timing measure: any progress at all answers it).
        let (served_tx, served) = mpsc::channel();
        scope.spawn(move || {
            let written = w.vault(&w.bravo).write_file(
                &operator(),
                &p("served.txt"),
                &mut &b"while alpha opens"[..],
                &Precondition::None,
            );
            let _ = served_tx.send(written.is_ok());
        });
        let result = served.recv_timeout(std::time::Duration::from_secs(120));
        release_tx.send(()).unwrap();
        assert_eq!(result, Ok(true), "bravo waited for alpha's open");
        assert!(slow.join().unwrap());
    });
    store.set_open_hook(None);
}

/// An import's staged bytes count against the quota as they are written: staging stops
/// at the quota, it does not inflate the whole entry first (issue 7).
#[test]
fn issue7_import_staging_stops_at_the_quota() {
    let w = World::new();
    let op = operator();
    let t = w
        .coffer
        .create_tenant(
            &op,
            crate::support::new_tenant("staging-quota", Some(100_000)),
        )
        .unwrap();
    let v = w.vault(&t);
    let mut batch = v.begin_import();
    let mut zeros = std::io::repeat(0).take(64 * 1024 * 1024);
    let err = batch
        .stage_file(p("big.bin"), &mut zeros, u64::MAX)
        .unwrap_err();
    match err {
        VaultError::QuotaExceeded {
            quota, attempted, ..
        } => {
            assert_eq!(quota, 100_000);
            // Refused at the first chunk past the quota, not after 64 MiB.
            assert!(attempted < 100_000 + 2 * 1024 * 1024, "{attempted}");
        }
        other => panic!("{other:?}"),
    }
    assert!(zeros.limit() > 60 * 1024 * 1024, "the rest was never read");
    drop(batch);
    assert!(staging_is_empty(&w, &t));
}
