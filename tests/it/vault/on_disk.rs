//! The vault on disk as an attacker or a crash leaves it: planted links and special
//! files are never followed or read, crash leftovers are repaired on the next open, the
//! index is rebuilt from the files, and a symlinked index database is refused.

use std::os::unix::fs::symlink;

use coffer::vault::index::EntryKind;
use coffer::vault::{Precondition, VaultError};

use super::p;
use crate::support::{World, operator, sha256_hex, snapshot};

#[test]
fn planted_symlinks_hardlinks_and_fifos_are_never_followed_or_read() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    v.write_file(
        &op,
        &p("docs/real.txt"),
        &mut &b"real"[..],
        &Precondition::None,
    )
    .unwrap();
    let files = w.vault_dir(&w.alpha).join("files");
    let outside = w.tmp.path().join("outside");
    // Planted by someone with disk access.
    symlink(outside.join("secret.txt"), files.join("docs/abs-link.txt")).unwrap();
    symlink(
        "../../../../outside/secret.txt",
        files.join("docs/rel-link.txt"),
    )
    .unwrap();
    symlink("real.txt", files.join("docs/inside-link.txt")).unwrap();
    symlink(&outside, files.join("dirlink")).unwrap();
    symlink("docs", files.join("inside-dirlink")).unwrap();
    std::fs::hard_link(outside.join("secret.txt"), files.join("docs/hard.txt")).unwrap();
    let fifo = files.join("docs/pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let before_outside = snapshot(&outside);

    // Reindex sees them and refuses each one.
    let report = v.reindex(&op).unwrap();
    let mut skipped: Vec<&str> = report.skipped.iter().map(|s| s.path.as_str()).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "dirlink",
            "docs/abs-link.txt",
            "docs/hard.txt",
            "docs/inside-link.txt",
            "docs/pipe",
            "docs/rel-link.txt",
            "inside-dirlink"
        ]
    );
    assert_eq!(report.files, 1);

    for name in [
        "docs/abs-link.txt",
        "docs/rel-link.txt",
        "docs/inside-link.txt",
        "docs/hard.txt",
        "docs/pipe",
    ] {
        assert!(
            matches!(v.open_file(&p(name)), Err(VaultError::NotFound)),
            "{name} via index"
        );
    }
    // Even with a forged index row, the door itself refuses (and a FIFO does not block).
    {
        let idx = rusqlite::Connection::open(w.vault_dir(&w.alpha).join("index.db")).unwrap();
        for name in [
            "docs/abs-link.txt",
            "docs/rel-link.txt",
            "docs/inside-link.txt",
            "docs/hard.txt",
            "docs/pipe",
        ] {
            idx.execute(
                "INSERT INTO entries (path, parent, name, name_fold, kind, size, created_at, modified_at)
                 VALUES (?1, 'docs', ?2, lower(?2), 'file', 1, 'x', 'x')",
                [name, name.rsplit('/').next().unwrap()],
            )
            .unwrap();
        }
    }
    for name in [
        "docs/abs-link.txt",
        "docs/rel-link.txt",
        "docs/inside-link.txt",
        "docs/hard.txt",
        "docs/pipe",
    ] {
        let err = v.open_file(&p(name)).err().unwrap();
        assert!(matches!(err, VaultError::NotRegular), "{name}: {err:?}");
    }
    // Writing through a symlinked directory, or over a symlink, is refused.
    for target in [
        "dirlink/new.txt",
        "inside-dirlink/new.txt",
        "docs/abs-link.txt",
    ] {
        let err = v
            .write_file(&op, &p(target), &mut &b"pwn"[..], &Precondition::None)
            .unwrap_err();
        assert!(
            matches!(err, VaultError::NotRegular | VaultError::NotADirectory),
            "{target}: {err:?}"
        );
    }
    assert!(matches!(
        v.mkdir(&op, &p("dirlink/sub")),
        Err(VaultError::NotRegular | VaultError::NotADirectory)
    ));
    // Deleting a directory that contains links removes the links, never their targets.
    let item = v.delete(&op, &p("docs")).unwrap();
    v.purge(&op, &item.id).unwrap();
    assert_eq!(snapshot(&outside), before_outside);
    assert_eq!(
        std::fs::read(outside.join("secret.txt")).unwrap(),
        b"outside secret"
    );
}

#[test]
fn crash_leftovers_are_repaired_on_next_open() {
    let w = World::new();
    let op = operator();
    let v = w.vault(&w.alpha);
    v.write_file(&op, &p("ledger.csv"), &mut &b"v1"[..], &Precondition::None)
        .unwrap();
    v.write_file(&op, &p("keep.txt"), &mut &b"keep"[..], &Precondition::None)
        .unwrap();
    drop(v);
    let dir = w.vault_dir(&w.alpha);

    // Crash 1: killed while streaming: a partial staging file, target untouched.
    let stale = dir.join(".staging/0123.part");
    std::fs::write(&stale, b"half a file").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // Crash 2: killed after the rename, before the index update.
    let idx = rusqlite::Connection::open(dir.join("index.db")).unwrap();
    idx.execute(
        "INSERT INTO pending_writes (path, started_at) VALUES ('ledger.csv', 'x')",
        [],
    )
    .unwrap();
    std::fs::write(dir.join("files/ledger.csv"), b"v2 after crash").unwrap();
    // Crash 3: killed after the trash row, before the move to .trash.
    idx.execute(
        "INSERT INTO pending_writes (path, started_at) VALUES ('keep.txt', 'x')",
        [],
    )
    .unwrap();
    idx.execute(
        "INSERT INTO trash (id, original_path, kind, size, deleted_at) VALUES ('deadbeef', 'keep.txt', 'file', 4, 'x')",
        [],
    )
    .unwrap();
    // Crash 4: killed after a new file's rename: file on disk, no entry.
    idx.execute(
        "INSERT INTO pending_writes (path, started_at) VALUES ('new/fresh.txt', 'x')",
        [],
    )
    .unwrap();
    std::fs::create_dir(dir.join("files/new")).unwrap();
    std::fs::write(dir.join("files/new/fresh.txt"), b"fresh").unwrap();
    drop(idx);

    // "Restart": a new process opens the data root.
    let coffer = w.reopen();
    let alpha = coffer::names::TenantSlug::parse("alpha").unwrap();
    let access = coffer.auth().operator_access(&operator(), &alpha).unwrap();
    let v = access.vault();
    assert!(!stale.exists(), "stale staging file removed");
    let ledger = v.stat(&p("ledger.csv")).unwrap();
    assert_eq!(
        ledger.sha256.as_deref(),
        Some(sha256_hex(b"v2 after crash").as_str())
    );
    assert_eq!(ledger.size, 14);
    assert_eq!(v.stat(&p("keep.txt")).unwrap().size, 4);
    assert!(
        v.trash_list().unwrap().is_empty(),
        "trash row without item dropped"
    );
    assert_eq!(v.stat(&p("new/fresh.txt")).unwrap().size, 5);
    assert_eq!(v.stat(&p("new")).unwrap().kind, EntryKind::Dir);
    assert_eq!(v.usage().unwrap()[0].1, 14 + 4 + 5);
    // A young staging file may belong to a live writer in another process: kept.
    std::fs::write(dir.join(".staging/live.part"), b"in progress").unwrap();
    drop(access);
    let coffer = w.reopen();
    coffer.auth().operator_access(&operator(), &alpha).unwrap();
    assert!(dir.join(".staging/live.part").exists());
    std::fs::remove_file(dir.join(".staging/live.part")).unwrap();
}

#[test]
fn reindex_rebuilds_the_derived_index() {
    let w = World::new();
    let op = operator();
    let v = w.vault(&w.alpha);
    for i in 0..20 {
        v.write_file(
            &op,
            &p(&format!("d{}/f{i}.txt", i % 3)),
            &mut format!("file {i}").as_bytes(),
            &Precondition::None,
        )
        .unwrap();
    }
    let before: Vec<_> = v
        .all_entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.path, e.kind, e.size, e.sha256))
        .collect();
    // Lose the index's file metadata entirely.
    rusqlite::Connection::open(w.vault_dir(&w.alpha).join("index.db"))
        .unwrap()
        .execute("DELETE FROM entries", [])
        .unwrap();
    assert!(v.all_entries().unwrap().is_empty());
    let report = v.reindex(&op).unwrap();
    assert_eq!((report.files, report.dirs), (20, 3));
    let after: Vec<_> = v
        .all_entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.path, e.kind, e.size, e.sha256))
        .collect();
    assert_eq!(before, after);
    assert_eq!(v.search("f7", 5).unwrap()[0].reference, "d1/f7.txt");
    assert_eq!(v.index_integrity().unwrap(), "ok");
}

#[test]
fn symlinked_index_database_is_refused() {
    let w = World::new();
    let dir = w.vault_dir(&w.bravo);
    w.coffer.vault_store_unchecked().evict(w.bravo.id);
    std::fs::remove_file(dir.join("index.db")).unwrap();
    let _ = std::fs::remove_file(dir.join("index.db-wal"));
    let _ = std::fs::remove_file(dir.join("index.db-shm"));
    symlink(w.vault_dir(&w.alpha).join("index.db"), dir.join("index.db")).unwrap();
    let coffer = w.reopen();
    let slug = coffer::names::TenantSlug::parse("bravo").unwrap();
    assert!(matches!(
        coffer.auth().operator_access(&operator(), &slug),
        Err(coffer::auth::AuthError::Vault(VaultError::NotRegular))
    ));
}
