//! Core benchmarks (issue 2): durable small writes vs a bare write+fsync+rename loop,
//! large writes vs a plain copy with fsync, `reindex` of many small files, and opening a
//! cold tenant among many. Every figure is paired with a baseline measured in the same
//! run on the same disk, because this machine is shared and noisy.
//!
//! Run: `cargo bench --bench core -- [--small N] [--large-mib N] [--reindex N] [--tenants N]`
//! (defaults: 2000, 1024, 100000, 10000). Writes under `$COFFER_BENCH_DIR` (default: a
//! temporary directory next to the target dir, on the same disk as the repo).
#![allow(clippy::disallowed_methods)] // the baselines use std::fs on purpose

#[path = "support/mod.rs"]
mod support;
use support::*;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coffer::audit::{Actor, Caller};
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::vault::Precondition;
use coffer::vault::path::VaultPath;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn fsync_dir(path: &Path) {
    std::fs::File::open(path).unwrap().sync_all().unwrap();
}

/// A deterministic pseudo-random byte stream (xorshift), incompressible like photos.
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let bytes = self.state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let small = arg("--small", 2000);
    let large_mib = arg("--large-mib", 1024);
    let reindex_n = arg("--reindex", 100_000);
    let tenants_n = arg("--tenants", 10_000);
    let base = std::env::var("COFFER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp"));
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::tempdir_in(&base).unwrap();
    println!("# coffer core benchmark ({})", tmp.path().display());

    let (coffer, _) = Coffer::init(&tmp.path().join("data"), Config::default()).unwrap();
    let op = Caller::new(Actor::Operator(Some("bench".into())));
    let tenant = coffer.create_tenant(&op, new_tenant("bench")).unwrap();
    let vault = open_vault(&coffer, &op, &tenant);

    // 1. Durable 4 KiB writes.
    let payload = vec![42u8; 4096];
    let bare_dir = tmp.path().join("bare");
    std::fs::create_dir(&bare_dir).unwrap();
    let t = Instant::now();
    for i in 0..small {
        let tmp_path = bare_dir.join(format!("{i}.tmp"));
        let mut f = std::fs::File::create(&tmp_path).unwrap();
        f.write_all(&payload).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp_path, bare_dir.join(format!("{i}.bin"))).unwrap();
        fsync_dir(&bare_dir);
    }
    let bare = t.elapsed();
    let t = Instant::now();
    for i in 0..small {
        let path = VaultPath::parse(&format!("small/{i}.bin")).unwrap();
        vault
            .write_file(&op, &path, &mut &payload[..], &Precondition::None)
            .unwrap();
    }
    let through_vault = t.elapsed();
    println!(
        "small_writes n={small} size=4KiB bare_write_fsync_rename={:.0}/s vault={:.0}/s ratio={:.2}",
        per_sec(small, bare),
        per_sec(small, through_vault),
        bare.as_secs_f64() / through_vault.as_secs_f64()
    );

    // 2. Large write: a plain copy with fsync of the same bytes vs the vault (hashing).
    let source = tmp.path().join("large.src");
    {
        let mut f = std::fs::File::create(&source).unwrap();
        std::io::copy(
            &mut Noise {
                state: 0x9E37_79B9_7F4A_7C15,
                left: large_mib << 20,
            },
            &mut f,
        )
        .unwrap();
        f.sync_all().unwrap();
    }
    let bytes = large_mib << 20;
    let rss_before = status_kib("self", "VmRSS:");
    let hwm_before = status_kib("self", "VmHWM:");
    // Alternate baseline and vault so that neither always runs on a colder or busier disk;
    // report the median of the rounds.
    let rounds = 3;
    let mut copies = Vec::new();
    let mut vaults = Vec::new();
    for round in 0..rounds {
        let t = Instant::now();
        {
            let mut src = std::fs::File::open(&source).unwrap();
            let mut dst = std::fs::File::create(tmp.path().join("large.copy")).unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = src.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                dst.write_all(&buf[..n]).unwrap();
            }
            dst.sync_all().unwrap();
        }
        copies.push(t.elapsed());
        std::fs::remove_file(tmp.path().join("large.copy")).unwrap();
        let t = Instant::now();
        let mut src = std::fs::File::open(&source).unwrap();
        vault
            .write_file(
                &op,
                &VaultPath::parse(&format!("large/video-{round}.bin")).unwrap(),
                &mut src,
                &Precondition::None,
            )
            .unwrap();
        vaults.push(t.elapsed());
        let item = vault
            .delete(
                &op,
                &VaultPath::parse(&format!("large/video-{round}.bin")).unwrap(),
            )
            .unwrap();
        vault.purge(&op, &item.id).unwrap();
    }
    copies.sort();
    vaults.sort();
    let (copy, large) = (copies[rounds / 2], vaults[rounds / 2]);
    let rss_after = status_kib("self", "VmRSS:");
    let mbps = |d: Duration| bytes as f64 / 1048576.0 / d.as_secs_f64();
    println!(
        "large_write size={large_mib}MiB rounds={rounds} (median) plain_copy_fsync={:.0}MiB/s vault_with_sha256={:.0}MiB/s ratio={:.2} rss_before={}KiB rss_after={}KiB peak_rss_before={}KiB peak_rss_after={}KiB",
        mbps(copy),
        mbps(large),
        copy.as_secs_f64() / large.as_secs_f64(),
        rss_before,
        rss_after,
        hwm_before,
        status_kib("self", "VmHWM:")
    );
    std::fs::remove_file(&source).unwrap();

    // 3. reindex of many small files planted directly on disk.
    let t2 = coffer.create_tenant(&op, new_tenant("reindex")).unwrap();
    let files = tmp
        .path()
        .join("data/tenants")
        .join(t2.id.to_string())
        .join("files");
    let t = Instant::now();
    for i in 0..reindex_n {
        let dir = files.join(format!("d{:03}", i % 500));
        if i < 500 {
            std::fs::create_dir(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file number {i}\n")).unwrap();
    }
    let plant = t.elapsed();
    let v2 = open_vault(&coffer, &op, &t2);
    let t = Instant::now();
    let report = v2.reindex(&op).unwrap();
    let reindex = t.elapsed();
    assert_eq!(report.files, reindex_n);
    println!(
        "reindex files={} dirs={} seconds={:.2} files_per_s={:.0} (planting them with std::fs took {:.2}s)",
        report.files,
        report.dirs,
        reindex.as_secs_f64(),
        per_sec(report.files, reindex),
        plant.as_secs_f64()
    );
    drop(v2);

    // 4. Cold open of one tenant among many.
    let t = Instant::now();
    let mut last = None;
    for i in 0..tenants_n {
        let slug = format!("tenant-{i}");
        last = Some(coffer.create_tenant(&op, new_tenant(&slug)).unwrap());
    }
    let create = t.elapsed();
    let fds_before = open_fds();
    drop(vault);
    drop(coffer);
    let fresh = Coffer::open(&tmp.path().join("data"), Config::default()).unwrap();
    let fds_fresh = open_fds();
    let target = last.unwrap();
    let t = Instant::now();
    let v = open_vault(&fresh, &op, &target);
    let cold = t.elapsed();
    let t = Instant::now();
    let _again = open_vault(&fresh, &op, &target);
    let warm = t.elapsed();
    let fds_one = open_fds();
    drop(v);
    // Touch many tenants: open descriptors stay bounded by the cache.
    let all = fresh.control().tenants().unwrap();
    for t in all.iter().take(2000) {
        open_vault(&fresh, &op, t);
    }
    println!(
        "cold_open tenants={} create_all={:.1}s cold_open={:.2}ms warm_open={:.3}ms fds_after_create={} fds_fresh_process={} fds_one_vault_open={} fds_after_touching_2000={} cache_capacity={}",
        tenants_n + 2,
        create.as_secs_f64(),
        cold.as_secs_f64() * 1000.0,
        warm.as_secs_f64() * 1000.0,
        fds_before,
        fds_fresh,
        fds_one,
        open_fds(),
        fresh.config().vault_cache_capacity
    );
}
