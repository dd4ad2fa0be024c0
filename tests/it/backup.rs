//! Backups (P12): a set is a consistent copy that restores into a working data root; the
//! second set costs only what changed; `--verify` finds a damaged file; rotation keeps
//! none past its retention; a purge removes the tenant from every set.

use std::path::{Path, PathBuf};

use coffer::clock::ManualClock;
use coffer::coffer::{Coffer, restore_backup, verify_backup};
use coffer::config::Config;
use coffer::vault::path::{CollectionName, VaultPath};

use crate::support::{World, operator, sha256_hex};

/// Every file of a vault as the vault layer reads it: path → SHA-256.
fn contents(coffer: &Coffer, slug: &str) -> Vec<(String, String)> {
    let access = coffer
        .auth()
        .operator_access(
            &operator(),
            &coffer::names::TenantSlug::parse(slug).unwrap(),
        )
        .unwrap();
    let mut out = Vec::new();
    for entry in access.vault().all_entries().unwrap() {
        if let Some(hash) = entry.sha256 {
            let mut read = access
                .vault()
                .open_file(&VaultPath::parse(&entry.path).unwrap())
                .unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut read.file, &mut bytes).unwrap();
            assert_eq!(sha256_hex(&bytes), hash);
            out.push((entry.path, hash));
        }
    }
    out
}

fn sets(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("coffer-backup-")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_backup_restores_into_a_working_root_and_the_next_one_costs_what_changed() {
    let world = World::new();
    let op = operator();
    world.put(&world.alpha, "invoices/2026/march.pdf", &vec![7u8; 200_000]);
    world.put(&world.alpha, "notes.txt", b"first");
    world.put(&world.bravo, "photo.jpg", &vec![9u8; 50_000]);
    let v = world.vault(&world.alpha);
    let clients = CollectionName::parse("clients").unwrap();
    v.create_record(
        &op,
        &clients,
        None,
        &serde_json::json!({"name": "Oakridge"}),
    )
    .unwrap();
    v.delete(&op, &VaultPath::parse("notes.txt").unwrap())
        .unwrap();
    drop(v);
    let root = world.data_dir().parent().unwrap().join("backups");

    let first = world.coffer.backup(Some(&root)).unwrap();
    assert_eq!((first.tenants, first.files, first.linked), (2, 2, 0));
    world.put(&world.alpha, "new.txt", b"changed since");
    let second = world.coffer.backup(Some(&root)).unwrap();
    assert_eq!(second.files, 3);
    assert_eq!(
        second.linked, 3,
        "two unchanged files and the trash item are links"
    );
    assert_eq!(second.copied_bytes, "changed since".len() as u64);
    let check = verify_backup(&second.set).unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert_eq!(check.files, 3);

    let restored_dir = world.data_dir().parent().unwrap().join("restored");
    let report = restore_backup(&second.set, &restored_dir, Config::default()).unwrap();
    assert_eq!(report.tenants, 2);
    let restored = Coffer::open(&restored_dir, Config::default()).unwrap();
    for slug in ["alpha", "bravo"] {
        assert_eq!(
            contents(&restored, slug),
            contents(&world.coffer, slug),
            "{slug}"
        );
    }
    let access = restored
        .auth()
        .operator_access(&op, &coffer::names::TenantSlug::parse("alpha").unwrap())
        .unwrap();
    assert_eq!(access.vault().all_records().unwrap().len(), 1);
    assert_eq!(access.vault().trash_list().unwrap().len(), 1);
    assert_eq!(
        restored.control().members(world.alpha.id).unwrap().len(),
        world
            .coffer
            .control()
            .members(world.alpha.id)
            .unwrap()
            .len()
    );
    assert!(restored.audit().verify().unwrap().broken.is_none());
    // Restoring over a root that holds anything is refused.
    assert!(restore_backup(&second.set, &restored_dir, Config::default()).is_err());
}

#[test]
fn verify_finds_a_damaged_file_and_restore_refuses_the_set() {
    let world = World::new();
    world.put(&world.alpha, "contract.pdf", b"the signed contract");
    let root = world.data_dir().parent().unwrap().join("backups");
    let set = world.coffer.backup(Some(&root)).unwrap().set;
    let copy = set
        .join("tenants")
        .join(world.alpha.id.to_string())
        .join("files/contract.pdf");
    std::fs::write(&copy, b"the forged contract").unwrap();
    let check = verify_backup(&set).unwrap();
    assert_eq!(check.problems.len(), 1, "{:?}", check.problems);
    assert!(check.problems[0].contains("contract.pdf"));
    let target = world.data_dir().parent().unwrap().join("restored");
    assert!(restore_backup(&set, &target, Config::default()).is_err());
}

#[test]
fn rotation_keeps_no_set_past_its_retention() {
    let clock = ManualClock::starting_now();
    let world = World::with_clock(Config::default(), clock.clone());
    let root = world.data_dir().parent().unwrap().join("backups");
    let old = world.coffer.backup(Some(&root)).unwrap().set;
    std::fs::create_dir(root.join("coffer-backup-2000-01-01T000000.000Z")).unwrap(); // died
    clock.advance(time::Duration::days(89));
    let kept = world.coffer.backup(Some(&root)).unwrap();
    assert_eq!(
        kept.rotated,
        vec![root.join("coffer-backup-2000-01-01T000000.000Z")]
    );
    clock.advance(time::Duration::days(2));
    let report = world.coffer.run_lifecycle().unwrap();
    assert_eq!(report.backups_rotated, 1);
    assert_eq!(sets(&root), vec![kept.set.clone()]);
    assert!(!old.exists());
}

#[test]
fn a_purge_removes_the_tenant_from_every_backup_set() {
    let world = World::new();
    let op = operator();
    world.put(&world.alpha, "clients/secret-plans.txt", b"alpha's data");
    world.put(&world.bravo, "keep.txt", b"bravo's data");
    let roots = ["backups-a", "backups-b"].map(|n| world.data_dir().parent().unwrap().join(n));
    let sets: Vec<PathBuf> = roots
        .iter()
        .map(|r| world.coffer.backup(Some(r)).unwrap().set)
        .collect();
    world
        .coffer
        .control()
        .request_deletion(&op, world.alpha.id)
        .unwrap();
    let receipt = world.coffer.purge_tenant(&op, world.alpha.id).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&receipt.document).unwrap();
    assert_eq!(doc["destroyed"]["backup_copies"], 2);
    let id = world.alpha.id.to_string();
    for set in &sets {
        assert!(!set.join("tenants").join(&id).exists());
        let manifest = std::fs::read_to_string(set.join("BACKUP.json")).unwrap();
        assert!(
            manifest.contains(&format!("\"purged_tenants\": [\n    \"{id}\"")),
            "{manifest}"
        );
        let control = rusqlite::Connection::open(set.join("control.db")).unwrap();
        let (slug, name, members): (String, String, i64) = control
            .query_row(
                "SELECT slug, name, (SELECT COUNT(*) FROM memberships WHERE tenant_id = ?1) FROM tenants WHERE id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (slug, name.as_str(), members),
            (format!("purged-{id}"), "", 0)
        );
        let audit = rusqlite::Connection::open(set.join("audit.db")).unwrap();
        let named: i64 = audit
            .query_row(
                "SELECT COUNT(*) FROM events WHERE tenant_id = ?1 AND target IS NOT NULL",
                [&id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(named, 0, "the set's audit log still names alpha's files");
        let check = verify_backup(set).unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
        assert_eq!(check.tenants, 1);
    }
}

/// A purge never finishes while a copy could survive unseen: not while a backup is being
/// written (the backups lease), not while a registered root is unreachable (its marker
/// gone, as on an unmounted disk), and an incomplete set (a backup that died) is cleared
/// too. Each refusal is `Busy`; the purge then resumes and finishes.
#[test]
fn a_purge_waits_for_running_backups_and_unreachable_roots_and_clears_incomplete_sets() {
    let world = World::new();
    let op = operator();
    world.put(&world.alpha, "clients/plans.txt", b"alpha's data");
    let base = world.data_dir().parent().unwrap().to_owned();
    let (root_a, root_b) = (base.join("backups-a"), base.join("backups-b"));
    let complete = world.coffer.backup(Some(&root_a)).unwrap().set;
    let died = world.coffer.backup(Some(&root_b)).unwrap().set;
    std::fs::remove_file(died.join("BACKUP.json")).unwrap();
    let id = world.alpha.id.to_string();
    world
        .coffer
        .control()
        .request_deletion(&op, world.alpha.id)
        .unwrap();
    let busy = |r: Result<coffer::signing::Signed, coffer::coffer::CofferError>| {
        matches!(r, Err(coffer::coffer::CofferError::Busy(_)))
    };

    // A backup is being written (another process holds the lease).
    let writer = "another-host:77:backup";
    let hour = time::Duration::hours(1);
    assert!(
        world
            .coffer
            .control()
            .take_lease("backups", writer, hour)
            .unwrap()
    );
    assert!(busy(world.coffer.purge_tenant(&op, world.alpha.id)));
    assert!(
        world.coffer.backup(Some(&root_a)).is_err(),
        "two backups at once"
    );
    world
        .coffer
        .control()
        .release_lease("backups", writer)
        .unwrap();

    // Root b's disk is not mounted: its marker is gone.
    let marker = root_b.join("COFFER-BACKUPS");
    let saved = std::fs::read(&marker).unwrap();
    std::fs::remove_file(&marker).unwrap();
    assert!(busy(world.coffer.purge_tenant(&op, world.alpha.id)));
    assert!(
        complete.join("tenants").join(&id).exists(),
        "a set was cleared before every root was reachable"
    );
    std::fs::write(&marker, saved).unwrap();

    // Everything reachable: the purge finishes, and no set holds alpha, complete or not.
    let receipt = world.coffer.purge_tenant(&op, world.alpha.id).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&receipt.document).unwrap();
    assert_eq!(doc["destroyed"]["backup_copies"], 1, "the complete set");
    for set in [&complete, &died] {
        assert!(!set.join("tenants").join(&id).exists(), "{}", set.display());
        let control = rusqlite::Connection::open(set.join("control.db")).unwrap();
        let slug: String = control
            .query_row("SELECT slug FROM tenants WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(slug, format!("purged-{id}"));
    }
}
