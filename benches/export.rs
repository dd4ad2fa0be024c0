//! Export and import benchmark (issue 4) on a deterministic dataset: ~3,000 small text
//! and JSON files, ~200 medium files (half incompressible), and a few files of 100-200
//! MiB (~1.05 GiB in all). In one run it measures, next to baselines on the same files:
//! - the HTTP export through `coffer serve` (throughput in MiB/s of input, server peak RSS
//!   after a half-size and after the full-size vault, to show RSS stays flat);
//! - the archive size against `zip -r -1`, and the time of `zip -r -1` and `tar cf - | cat`;
//! - `coffer import` of the archive into a new tenant.
//!
//! Run: `cargo bench --bench export -- [--scale PERCENT]` (100 = the full dataset).
#![allow(clippy::disallowed_methods)] // the benchmark generates and measures with std::fs

#[path = "support/mod.rs"]
mod support;
use support::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coffer::audit::{Actor, Caller};
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::vault::path::VaultPath;
use coffer::vault::{Precondition, Vault};

/// Deterministic generator: xorshift bytes (incompressible) or text (compressible).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn noise(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
    fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "client",
            "invoice",
            "mulch",
            "hedge",
            "irrigation",
            "paid",
            "pending",
            "crew",
            "site",
            "visit",
            "quote",
            "spring",
            "clean-up",
            "allergen",
            "line",
            "shift",
            "inspection",
            "passed",
            "temperature",
            "batch",
        ];
        let mut v = Vec::with_capacity(len + 64);
        while v.len() < len {
            let n = self.next();
            let line = format!(
                "{},{},{},{:.2},{}\n",
                20260000 + n % 1231,
                WORDS[(n >> 8) as usize % WORDS.len()],
                WORDS[(n >> 16) as usize % WORDS.len()],
                (n >> 24) % 100_000,
                (n >> 40) % 9999
            );
            v.extend_from_slice(line.as_bytes());
        }
        v.truncate(len);
        v
    }
}

fn put(vault: &Vault, op: &Caller, path: &str, bytes: &[u8]) {
    vault
        .write_file(
            op,
            &VaultPath::parse(path).unwrap(),
            &mut &bytes[..],
            &Precondition::None,
        )
        .unwrap();
}

/// Streams `len` bytes of a large file in 8 MiB pieces (memory stays small).
fn put_large(vault: &Vault, op: &Caller, path: &str, len: usize, rng: &mut Gen, text: bool) {
    struct Pieces<'a> {
        rng: &'a mut Gen,
        left: usize,
        text: bool,
        buf: Vec<u8>,
        pos: usize,
    }
    impl std::io::Read for Pieces<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.pos == self.buf.len() {
                if self.left == 0 {
                    return Ok(0);
                }
                let n = self.left.min(8 << 20);
                self.buf = if self.text {
                    self.rng.text(n)
                } else {
                    self.rng.noise(n)
                };
                self.pos = 0;
                self.left -= n;
            }
            let n = out.len().min(self.buf.len() - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }
    let mut reader = Pieces {
        rng,
        left: len,
        text,
        buf: Vec::new(),
        pos: 0,
    };
    vault
        .write_file(
            op,
            &VaultPath::parse(path).unwrap(),
            &mut reader,
            &Precondition::None,
        )
        .unwrap();
}

fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let status = cmd.status().unwrap();
    assert!(status.success(), "{cmd:?}");
    t.elapsed()
}

/// Starts `coffer serve`, runs one HTTP export to a file, returns (time, peak RSS KiB).
fn http_export(data: &Path, token: &str, out: &Path, query: &str) -> (Duration, u64) {
    let (mut child, addr) = start_server(data);
    let t = Instant::now();
    let status = Command::new("curl")
        .args(["-s", "-f", "-o"])
        .arg(out)
        .args([
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("http://{addr}/api/v1/tenants/bench/export{query}"),
        ])
        .status()
        .unwrap();
    let elapsed = t.elapsed();
    assert!(status.success());
    let rss = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    (elapsed, rss)
}

/// `--probe-rss`: peak RSS of in-process exports of one large stored and one large
/// deflated entry, to find what (if anything) grows with entry size.
fn probe_rss() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::tempdir_in(&base).unwrap();
    let (coffer, _) = Coffer::init(&tmp.path().join("data"), Config::default()).unwrap();
    let op = Caller::new(Actor::Operator(Some("bench".into())));
    let mut rng = Gen(42);
    for (slug, mib, text) in [
        ("stored", 64, false),
        ("deflated", 64, true),
        ("deflated-big", 256, true),
    ] {
        let t = coffer.create_tenant(&op, new_tenant(slug)).unwrap();
        let v = open_vault(&coffer, &op, &t);
        put_large(&v, &op, "big.dat", mib << 20, &mut rng, text);
        let before = status_kib("self", "VmHWM:");
        let snap = coffer.snapshot(&v.0, None).unwrap();
        coffer
            .export(&v.0, &snap, std::io::sink(), Default::default(), 0)
            .unwrap();
        println!(
            "probe {slug} {mib}MiB: peak_rss before={before}KiB after={}KiB rss_now={}KiB",
            status_kib("self", "VmHWM:"),
            status_kib("self", "VmRSS:")
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--probe-rss") {
        return probe_rss();
    }
    let scale = arg("--scale", 100) as usize;
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::tempdir_in(&base).unwrap();
    let data = tmp.path().join("data");
    println!(
        "# coffer export benchmark ({}, scale {scale}%)",
        tmp.path().display()
    );
    let Seeded {
        coffer,
        tenant,
        op,
        token,
    } = seed_tenant_with_token(&data);
    let vault = open_vault(&coffer, &op, &tenant);
    let mut rng = Gen(0x9E37_79B9_7F4A_7C15);

    // Half: small and medium files.
    let t = Instant::now();
    for i in 0..3000 * scale / 100 {
        let len = 1024 + (rng.next() % 7168) as usize;
        if i % 2 == 0 {
            put(
                &vault,
                &op,
                &format!("clients/c{:04}/notes-{i}.txt", i % 300),
                &rng.text(len),
            );
        } else {
            let json = format!(
                "{{\"id\": {i}, \"lines\": \"{}\"}}",
                String::from_utf8(rng.text(len)).unwrap().replace('\n', " ")
            );
            put(
                &vault,
                &op,
                &format!("jobs/j{:03}/job-{i}.json", i % 200),
                json.as_bytes(),
            );
        }
    }
    for i in 0..200 * scale / 100 {
        let len = (512 << 10) + (rng.next() % (2 << 20)) as usize;
        if i % 2 == 0 {
            put(
                &vault,
                &op,
                &format!("reports/report-{i}.csv"),
                &rng.text(len),
            );
        } else {
            put(
                &vault,
                &op,
                &format!("photos/site-{i}.jpg"),
                &rng.noise(len),
            );
        }
    }
    let files_dir = data
        .join("tenants")
        .join(tenant.id.to_string())
        .join("files");
    let half_bytes = dir_bytes(&files_dir);
    let (half_time, half_rss) = http_export(&data, &token, &tmp.path().join("half.zip"), "");
    println!(
        "export_http dataset=half input={}MiB time={:.2}s throughput={:.0}MiB/s server_peak_rss={}KiB",
        half_bytes >> 20,
        half_time.as_secs_f64(),
        mib_s(half_bytes, half_time),
        half_rss
    );

    // Full: add the large files.
    for (name, mib, text) in [
        ("video/walkthrough.mp4", 200, false),
        ("backups/accounting.bin", 200, false),
        ("logs/sensors-2025.csv", 150, true),
        ("scans/contracts-2025.pdf", 100, false),
        ("logs/access-2025.log", 100, true),
    ] {
        put_large(&vault, &op, name, (mib * scale / 100) << 20, &mut rng, text);
    }
    drop(vault);
    println!("dataset generated in {:.1}s", t.elapsed().as_secs_f64());
    let full_bytes = dir_bytes(&files_dir);
    let archive = tmp.path().join("full.zip");
    let (full_time, full_rss) = http_export(&data, &token, &archive, "");
    let archive_size = std::fs::metadata(&archive).unwrap().len();

    // Baselines on the same files.
    let zip_out = tmp.path().join("baseline.zip");
    let zip_time = timed(
        Command::new("zip")
            .args(["-r", "-1", "-q"])
            .arg(&zip_out)
            .arg(".")
            .current_dir(&files_dir),
    );
    let zip_size = std::fs::metadata(&zip_out).unwrap().len();
    let tar_time = timed(
        Command::new("sh")
            .arg("-c")
            .arg("tar cf - . | cat > /dev/null")
            .current_dir(&files_dir),
    );
    println!(
        "export_http dataset=full input={}MiB time={:.2}s throughput={:.0}MiB/s server_peak_rss={}KiB archive={}MiB",
        full_bytes >> 20,
        full_time.as_secs_f64(),
        mib_s(full_bytes, full_time),
        full_rss,
        archive_size >> 20
    );
    println!(
        "baseline zip_r_1 time={:.2}s throughput={:.0}MiB/s archive={}MiB | tar_cat time={:.2}s throughput={:.0}MiB/s",
        zip_time.as_secs_f64(),
        mib_s(full_bytes, zip_time),
        zip_size >> 20,
        tar_time.as_secs_f64(),
        mib_s(full_bytes, tar_time)
    );
    let full_mib_s = mib_s(full_bytes, full_time);
    load::row(
        "whole-vault export, HTTP (MiB/s of input)",
        full_mib_s,
        "MiB/s",
        "zip -r -1",
        Some(mib_s(full_bytes, zip_time)),
        true,
    );
    load::row(
        "whole-vault export: archive size",
        (archive_size >> 20) as f64,
        "MiB",
        "zip -r -1",
        Some((zip_size >> 20) as f64),
        false,
    );
    let stored_out = tmp.path().join("stored.zip");
    let (stored_time, stored_rss) = http_export(&data, &token, &stored_out, "?compress=none");
    let _ = std::fs::remove_file(&stored_out);
    load::row(
        "whole-vault export, ?compress=none (MiB/s of input)",
        mib_s(full_bytes, stored_time),
        "MiB/s",
        "tar cf - | cat",
        Some(mib_s(full_bytes, tar_time)),
        true,
    );
    load::row(
        "whole-vault export, ?compress=none: server peak RSS",
        stored_rss as f64 / 1024.0,
        "MiB",
        "-",
        None,
        false,
    );
    load::row(
        "whole-vault export: server peak RSS, full dataset",
        full_rss as f64 / 1024.0,
        "MiB",
        "half dataset",
        Some(half_rss as f64 / 1024.0),
        false,
    );
    println!(
        "ratios export_speed_vs_zip={:.1}x archive_size_vs_zip={:.3} export_vs_tar={:.2}",
        zip_time.as_secs_f64() / full_time.as_secs_f64(),
        archive_size as f64 / zip_size as f64,
        tar_time.as_secs_f64() / full_time.as_secs_f64()
    );

    // Import the archive into a new tenant (a separate process, like an operator would).
    coffer.create_tenant(&op, new_tenant("restored")).unwrap();
    let import_time = timed(
        Command::new(env!("CARGO_BIN_EXE_coffer"))
            .arg("--data-dir")
            .arg(&data)
            .args(["import", "restored"])
            .arg(&archive)
            .stdout(Stdio::null()),
    );
    let verify_time = timed(
        Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["export", "--verify"])
            .arg(&archive)
            .stdout(Stdio::null()),
    );
    load::row(
        "import of the export (MiB/s of input)",
        mib_s(full_bytes, import_time),
        "MiB/s",
        "the export",
        Some(full_mib_s),
        true,
    );
    println!(
        "import time={:.2}s throughput={:.0}MiB/s import_vs_export={:.2} | verify time={:.2}s",
        import_time.as_secs_f64(),
        mib_s(full_bytes, import_time),
        full_time.as_secs_f64() / import_time.as_secs_f64(),
        verify_time.as_secs_f64()
    );
    let _ = std::io::stdout().flush();
    if std::env::args().any(|a| a == "--keep") {
        println!("kept {}", tmp.keep().display());
    }
}
