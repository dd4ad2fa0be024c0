//! A vault that keeps serving whatever sequence of operations it is given: failed steps
//! clean up after themselves, and reopening (as after a restart or a cache eviction)
//! always works.

use coffer::vault::index::Entry;
use coffer::vault::path::VaultPath;
use coffer::vault::{Precondition, VaultError};
use proptest::prelude::*;

use crate::support::{World, operator};

fn p(s: &str) -> VaultPath {
    VaultPath::parse(s).unwrap()
}

/// The pending rows a step left in the vault's index, read directly (before any reopen,
/// which would repair them): a failed step must clear its own.
fn pending_rows(w: &World) -> i64 {
    let index = rusqlite::Connection::open_with_flags(
        w.vault_dir(&w.alpha).join("index.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    index
        .query_row(
            "SELECT (SELECT COUNT(*) FROM pending_writes) + (SELECT COUNT(*) FROM pending_events)",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Reopens the vault from disk (evicting it from the cache) and checks it serves, has no
/// pending rows, and that its index equals what is on disk.
fn reopen_and_check(w: &World, context: &str) {
    w.coffer.vault_store_unchecked().evict(w.alpha.id);
    let v = w.vault(&w.alpha);
    v.list(None, None, 100)
        .unwrap_or_else(|e| panic!("{context}: the vault does not serve: {e}"));
    let shape = |entries: Vec<Entry>| -> Vec<(String, bool, u64, Option<String>)> {
        entries
            .into_iter()
            .map(|e| {
                (
                    e.path,
                    e.kind == coffer::vault::index::EntryKind::Dir,
                    e.size,
                    e.sha256,
                )
            })
            .collect()
    };
    let before = shape(v.all_entries().unwrap());
    v.reindex(&operator()).unwrap();
    let after = shape(v.all_entries().unwrap());
    assert_eq!(before, after, "{context}: the index differed from the disk");
}

/// The two requests that bricked a tenant: a file, then a file "under" it. The second is
/// refused cleanly, and the vault still opens, lists, reindexes and exports (issue 8).
#[test]
fn issue8_a_file_under_a_file_never_bricks_the_tenant() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    let op = operator();
    v.write_file(
        &op,
        &p("notes.txt"),
        &mut &b"notes"[..],
        &Precondition::None,
    )
    .unwrap();
    let err = v
        .write_file(
            &op,
            &p("notes.txt/child.txt"),
            &mut &b"child"[..],
            &Precondition::None,
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::NotADirectory), "{err:?}");
    assert!(matches!(
        v.mkdir(&op, &p("notes.txt/sub")),
        Err(VaultError::NotADirectory | VaultError::AlreadyExists)
    ));
    assert!(v.rename(&op, &p("notes.txt"), &p("notes.txt/x")).is_err());
    assert_eq!(pending_rows(&w), 0, "the refused steps left pending rows");
    drop(v);
    reopen_and_check(&w, "after the refused writes");
    let access = w.access(&w.alpha);
    let snap = w.coffer.snapshot(&access, None).unwrap();
    let mut out = Vec::new();
    w.coffer
        .export(&access, &snap, &mut out, Default::default(), 0)
        .unwrap();
    assert!(!out.is_empty());
}

/// Recovery finishes whatever rows it finds: pending writes it cannot apply (a path
/// under a file, a path that is not a vault path, one that escapes) and pending events
/// that are not JSON are dropped and reported by count, and the vault opens and serves.
/// Without the drop-and-report, the first of these made every later open fail (issue 8).
#[test]
fn issue8_recovery_drops_rows_it_cannot_apply_and_the_vault_serves() {
    let w = World::new();
    let v = w.vault(&w.alpha);
    v.write_file(
        &operator(),
        &p("notes.txt"),
        &mut &b"notes"[..],
        &Precondition::None,
    )
    .unwrap();
    drop(v);
    let index = rusqlite::Connection::open(w.vault_dir(&w.alpha).join("index.db")).unwrap();
    for bad in ["notes.txt/child.txt", "../../outside", "a\u{0}b", ""] {
        index
            .execute(
                "INSERT INTO pending_writes (path, started_at) VALUES (?1, 'x')",
                [bad],
            )
            .unwrap();
    }
    index
        .execute(
            "INSERT INTO pending_events (id, event, expect) VALUES ('e1', '{not json', '[')",
            [],
        )
        .unwrap();
    drop(index);
    reopen_and_check(&w, "after bad pending rows");
    assert_eq!(pending_rows(&w), 0, "recovery left rows behind");
    let v = w.vault(&w.alpha);
    assert_eq!(v.stat(&p("notes.txt")).unwrap().size, 5);
    let events = w
        .coffer
        .audit()
        .events_for_tenant(w.alpha.id, 0, 1000)
        .unwrap();
    let repair = events
        .iter()
        .find(|e| e.action == "vault.reconcile")
        .expect("the repair is reported");
    let detail = repair.detail.as_ref().unwrap();
    assert!(detail["dropped_paths"].as_u64().unwrap() >= 3, "{detail}");
    assert_eq!(detail["events_dropped"], 1, "{detail}");
    assert!(
        !serde_json::to_string(detail).unwrap().contains("outside"),
        "the report names no path: {detail}"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Write(String),
    Mkdir(String),
    Move(String, String),
    Delete(String),
    Restore,
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "A"]), 1..4)
        .prop_map(|parts| parts.join("/"))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        path_strategy().prop_map(Op::Write),
        path_strategy().prop_map(Op::Mkdir),
        (path_strategy(), path_strategy()).prop_map(|(a, b)| Op::Move(a, b)),
        path_strategy().prop_map(Op::Delete),
        Just(Op::Restore),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Random writes, directories, moves, deletes and restores (files over directories,
    /// directories over files, paths under files, case clashes): every refusal is a clean
    /// one, and after every step the vault reopens, serves, and matches its disk (issue 8).
    #[test]
    fn issue8_any_sequence_leaves_a_vault_that_opens_and_serves(
        ops in prop::collection::vec(op_strategy(), 1..10),
    ) {
        let w = World::new();
        let op = operator();
        for (i, step) in ops.iter().enumerate() {
            let v = w.vault(&w.alpha);
            let result = match step {
                Op::Write(path) => v
                    .write_file(&op, &p(path), &mut &b"data"[..], &Precondition::None)
                    .map(|_| ()),
                Op::Mkdir(path) => v.mkdir(&op, &p(path)).map(|_| ()),
                Op::Move(from, to) => v.rename(&op, &p(from), &p(to)).map(|_| ()),
                Op::Delete(path) => v.delete(&op, &p(path)).map(|_| ()),
                Op::Restore => match v.trash_list().unwrap().first() {
                    Some(item) => v.restore(&op, &item.id, None).map(|_| ()),
                    None => Ok(()),
                },
            };
            if let Err(e) = result {
                let clean = matches!(
                    e,
                    VaultError::NotFound
                        | VaultError::AlreadyExists
                        | VaultError::IsADirectory
                        | VaultError::NotADirectory
                        | VaultError::CaseConflict(..)
                        | VaultError::MoveIntoSelf
                );
                prop_assert!(clean, "step {i} {step:?}: {e:?}");
            }
            prop_assert_eq!(pending_rows(&w), 0, "step {} {:?} left pending rows", i, step);
            drop(v);
            reopen_and_check(&w, &format!("after step {i} {step:?}"));
        }
    }
}
