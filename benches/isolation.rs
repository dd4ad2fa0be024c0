//! The isolation audit's cost (issue 10): `coffer audit isolation` over a data root of
//! many tenants, shallow and `--deep` (every file rehashed), next to a baseline measured
//! in the same run on the same tree: a bare walk that stats every entry (the floor for
//! any inspection of the tree).
//!
//! Run: `cargo bench --bench isolation -- [--tenants N] [--files N] [--bytes N]`
//! (defaults: 1000 tenants of 20 files of 2048 bytes). Writes under `$COFFER_BENCH_DIR`
//! (default: a directory next to the target dir).
#![allow(clippy::disallowed_methods)] // the baseline walks the tree with std::fs

#[path = "support/mod.rs"]
mod support;
use support::*;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use coffer::audit::{Actor, Caller};
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::vault::Precondition;
use coffer::vault::path::VaultPath;

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    let d = start.elapsed();
    println!("{what:<44} {:>9.2} s", d.as_secs_f64());
    (out, d)
}

fn main() {
    let tenants = arg("--tenants", 1000);
    let files = arg("--files", 20);
    let bytes = arg("--bytes", 2048) as usize;
    let base = std::env::var_os("COFFER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-isolation")
        });
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let data = base.join("data");
    let config = Config {
        vault_cache_capacity: 64,
        ..Config::default()
    };
    let (coffer, _) = Coffer::init(&data, config).unwrap();
    let op = Caller::new(Actor::Operator(Some("bench".into())));
    println!("{tenants} tenants of {files} files of {bytes} bytes");
    timed("seed (tenants and durable writes)", || {
        for t in 0..tenants {
            let tenant = coffer
                .create_tenant(&op, new_tenant(&format!("t{t:05}")))
                .unwrap();
            let vault = open_vault(&coffer, &op, &tenant);
            for i in 0..files {
                let path = VaultPath::parse(&format!("docs/f{i:04}.bin")).unwrap();
                let body: Vec<u8> = (0..bytes).map(|b| (b as u64 * 31 + i + t) as u8).collect();
                vault
                    .write_file(&op, &path, &mut &body[..], &Precondition::None)
                    .unwrap();
            }
        }
    });
    let (entries, walk) = timed("baseline: stat every entry (walkdir)", || {
        walkdir::WalkDir::new(&data)
            .follow_links(false)
            .into_iter()
            .map(|e| e.unwrap().path().symlink_metadata().unwrap().len())
            .fold(0usize, |n, _| n + 1)
    });
    let (shallow, shallow_t) = timed("coffer audit isolation", || {
        coffer.isolation_audit(false).unwrap()
    });
    let (deep, deep_t) = timed("coffer audit isolation --deep", || {
        coffer.isolation_audit(true).unwrap()
    });
    assert!(shallow.findings.is_empty(), "{:?}", shallow.findings);
    assert!(deep.findings.is_empty(), "{:?}", deep.findings);
    println!(
        "{entries} entries; {} tenants and {} files checked; findings: {} shallow, {} deep",
        shallow.tenants_checked,
        shallow.files_checked,
        shallow.findings.len(),
        deep.findings.len()
    );
    println!(
        "ratio to the bare walk: shallow {:.1}, deep {:.1}; per tenant: shallow {:.2} ms, deep {:.2} ms",
        shallow_t.as_secs_f64() / walk.as_secs_f64(),
        deep_t.as_secs_f64() / walk.as_secs_f64(),
        shallow_t.as_secs_f64() * 1000.0 / tenants as f64,
        deep_t.as_secs_f64() * 1000.0 / tenants as f64
    );
    let _ = std::fs::remove_dir_all(&base);
}
