//! Lifecycle benchmarks (issue 9): backing up a vault of many files (first set, then a
//! second after 1% changed, which hard-links the rest) and purging it, each next to a
//! baseline measured in the same run on the same disk: `cp -a` of the vault directory
//! for the backup, `rm -rf` of such a copy for the purge.
//!
//! Run: `cargo bench --bench lifecycle -- [--files N] [--bytes N]` (defaults: 100000
//! files of 2048 bytes). Writes under `$COFFER_BENCH_DIR` (default: a temporary directory
//! next to the target dir).
#![allow(clippy::disallowed_methods)] // the baselines and the size count use std::fs

#[path = "support/mod.rs"]
mod support;
use support::*;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use coffer::audit::{Actor, Caller};
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::vault::Precondition;
use coffer::vault::path::VaultPath;

/// Bytes on disk under `root`, counting each inode once (hard links are free), and the
/// bytes of inodes not already in `seen`.
fn disk_bytes(root: &Path, seen: &mut HashSet<u64>) -> u64 {
    let mut total = 0;
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let meta = entry.unwrap().metadata().unwrap();
        if seen.insert(meta.ino()) {
            total += meta.blocks() * 512;
        }
    }
    total
}

fn timed(what: &str, f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    let d = start.elapsed();
    println!("{what:<44} {:>9.2} s", d.as_secs_f64());
    d
}

fn shell(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?}");
}

fn main() {
    let files = arg("--files", 100_000);
    let bytes = arg("--bytes", 2048) as usize;
    let base = std::env::var_os("COFFER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-lifecycle")
        });
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let data = base.join("data");
    let (coffer, _) = Coffer::init(&data, Config::default()).unwrap();
    let op = Caller::new(Actor::Operator(Some("bench".into())));
    let tenant = coffer.create_tenant(&op, new_tenant("bench")).unwrap();
    let vault = open_vault(&coffer, &op, &tenant);
    println!("vault of {files} files of {bytes} bytes");
    timed("seed (durable writes through the vault)", || {
        for i in 0..files {
            let path = VaultPath::parse(&format!("d{:03}/f{i:06}.bin", i % 500)).unwrap();
            let mut body: Vec<u8> = (0..bytes).map(|b| (b as u64 * 31 + i) as u8).collect();
            body[0] = i as u8;
            vault
                .write_file(&op, &path, &mut &body[..], &Precondition::None)
                .unwrap();
        }
    });
    let vault_dir = data.join("tenants").join(tenant.id.to_string());

    let copy = base.join("cp-baseline");
    let baseline = timed("baseline: cp -a of the vault directory", || {
        shell(&[
            "cp",
            "-a",
            vault_dir.to_str().unwrap(),
            copy.to_str().unwrap(),
        ])
    });
    let roots = base.join("backups");
    let mut first = None;
    let full = timed("backup #1 (coffer backup)", || {
        first = Some(coffer.backup(Some(&roots)).unwrap())
    });
    let first = first.unwrap();
    let mut seen = HashSet::new();
    let first_size = disk_bytes(&first.set, &mut seen);
    let changed = files / 100;
    for i in 0..changed {
        let path = VaultPath::parse(&format!("d{:03}/f{i:06}.bin", i % 500)).unwrap();
        vault
            .write_file(&op, &path, &mut &b"changed"[..], &Precondition::None)
            .unwrap();
    }
    let mut second = None;
    let incremental = timed(&format!("backup #2 after {changed} files changed"), || {
        second = Some(coffer.backup(Some(&roots)).unwrap())
    });
    let second = second.unwrap();
    let second_size = disk_bytes(&second.set, &mut seen);
    println!(
        "backup #1: {} files, {:.1} MiB on disk; ratio to cp -a {:.2}",
        first.files,
        first_size as f64 / 1048576.0,
        full.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "backup #2: {} linked, {} bytes copied, {:.1} MiB new on disk ({:.1}% of #1); ratio to #1 {:.2}",
        second.linked,
        second.copied_bytes,
        second_size as f64 / 1048576.0,
        100.0 * second_size as f64 / first_size.max(1) as f64,
        incremental.as_secs_f64() / full.as_secs_f64()
    );
    let check = timed("backup --verify of set #2 (rehash all)", || {
        assert!(
            coffer::coffer::verify_backup(&second.set)
                .unwrap()
                .problems
                .is_empty()
        )
    });
    let _ = check;

    drop(vault);
    // The purge removes three trees (the vault and its copy in each set, the second
    // mostly links): the baseline removes three such trees with rm -rf.
    let (linked, vault_copy) = (base.join("cp-linked"), base.join("cp-vault"));
    shell(&[
        "cp",
        "-al",
        copy.to_str().unwrap(),
        linked.to_str().unwrap(),
    ]);
    shell(&[
        "cp",
        "-a",
        vault_dir.to_str().unwrap(),
        vault_copy.to_str().unwrap(),
    ]);
    let rm = timed("baseline: rm -rf of three such trees", || {
        for tree in [&copy, &linked, &vault_copy] {
            shell(&["rm", "-rf", tree.to_str().unwrap()]);
        }
    });
    coffer.control().request_deletion(&op, tenant.id).unwrap();
    let purge = timed("purge (vault and both backup copies, receipt)", || {
        coffer.purge_tenant(&op, tenant.id).unwrap();
    });
    println!(
        "purge: ratio to rm -rf {:.2}; peak RSS {} KiB",
        purge.as_secs_f64() / rm.as_secs_f64(),
        status_kib("self", "VmHWM:")
    );
    let _ = std::fs::remove_dir_all(&base);
}
