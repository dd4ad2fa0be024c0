//! HTTP benchmarks (issue 3). Runs `coffer serve` (release) as its own process so its
//! peak RSS can be read, and compares in the same run:
//! - a 1 GiB upload and download through the API (curl) with a plain file copy and with
//!   curl against a minimal static file server (Python's http.server) on the same file;
//! - small authenticated 4 KiB GETs (session-less API token, RBAC, index lookup), with 1
//!   and 64 keep-alive connections: requests/s, p50 and p99 latency.
//!
//! Run: `cargo bench --bench http -- [--large-mib N] [--small N]`.
#![allow(clippy::disallowed_methods)] // the benchmark sets up and measures with std::fs

#[path = "support/mod.rs"]
mod support;
use support::*;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coffer::vault::Precondition;
use coffer::vault::path::VaultPath;

fn curl(args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new("curl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        t.elapsed(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn main() {
    let large_mib = arg("--large-mib", 1024);
    let small_n = arg("--small", 3000) as usize;
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::tempdir_in(&base).unwrap();
    let data = tmp.path().join("data");
    println!("# coffer HTTP benchmark ({})", tmp.path().display());

    // Seed: a tenant, an owner, an API token, a 4 KiB file.
    let token = {
        let seeded = seed_tenant_with_token(&data);
        open_vault(&seeded.coffer, &seeded.op, &seeded.tenant)
            .write_file(
                &seeded.op,
                &VaultPath::parse("small/4k.bin").unwrap(),
                &mut &[7u8; 4096][..],
                &Precondition::None,
            )
            .unwrap();
        seeded.token
    };

    // The large file, incompressible.
    let source = tmp.path().join("large.bin");
    {
        let mut f = std::fs::File::create(&source).unwrap();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..large_mib {
            for chunk in buf.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes());
            }
            f.write_all(&buf).unwrap();
        }
        f.sync_all().unwrap();
    }
    let bytes = large_mib << 20;

    // Baseline 1: plain copy with fsync.
    let t = Instant::now();
    {
        let mut src = std::fs::File::open(&source).unwrap();
        let mut dst = std::fs::File::create(tmp.path().join("copy.bin")).unwrap();
        std::io::copy(&mut src, &mut dst).unwrap();
        dst.sync_all().unwrap();
    }
    let copy = t.elapsed();
    std::fs::remove_file(tmp.path().join("copy.bin")).unwrap();

    // Baseline for hashing: sha256sum over the same file (Coffer hashes while it writes).
    let (sha256sum, _) = {
        let t = Instant::now();
        let out = Command::new("sha256sum").arg(&source).output().unwrap();
        assert!(out.status.success());
        (t.elapsed(), out)
    };

    // Baseline 2: curl against a minimal static file server on the same file.
    let mut py = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "0"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(py.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let py_port = line
        .split("port ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .to_owned();
    let (static_dl, _) = curl(&[
        "-s",
        "-o",
        "/dev/null",
        &format!("http://127.0.0.1:{py_port}/large.bin"),
    ]);
    let _ = py.kill();
    let _ = py.wait();

    let (mut server, addr) = start_server(&data);
    let pid = server.id();
    let rss_idle = peak_rss_kib(pid);
    let auth_header = format!("Authorization: Bearer {token}");
    let url = format!("http://{addr}/api/v1/tenants/bench/files/large/video.bin");
    let (upload, _) = curl(&[
        "-s",
        "-f",
        "-o",
        "/dev/null",
        "-X",
        "PUT",
        "-H",
        &auth_header,
        "-T",
        source.to_str().unwrap(),
        &url,
    ]);
    let rss_after_upload = peak_rss_kib(pid);
    let (download, _) = curl(&["-s", "-f", "-o", "/dev/null", "-H", &auth_header, &url]);
    let rss_after_download = peak_rss_kib(pid);
    println!(
        "large size={large_mib}MiB plain_copy_fsync={:.0}MiB/s static_server_download={:.0}MiB/s coffer_upload={:.0}MiB/s coffer_download={:.0}MiB/s download_vs_static={:.2} upload_vs_copy={:.2}",
        mib_s(bytes, copy),
        mib_s(bytes, static_dl),
        mib_s(bytes, upload),
        mib_s(bytes, download),
        static_dl.as_secs_f64() / download.as_secs_f64(),
        copy.as_secs_f64() / upload.as_secs_f64(),
    );
    load::row(
        "1 GiB PUT (MiB/s; hashed, fsynced, indexed, audited)",
        mib_s(bytes, upload),
        "MiB/s",
        "cp + fsync",
        Some(mib_s(bytes, copy)),
        true,
    );
    load::row(
        "1 GiB PUT (MiB/s)",
        mib_s(bytes, upload),
        "MiB/s",
        "sha256sum",
        Some(mib_s(bytes, sha256sum)),
        true,
    );
    load::row(
        "1 GiB GET (MiB/s)",
        mib_s(bytes, download),
        "MiB/s",
        "python http.server",
        Some(mib_s(bytes, static_dl)),
        true,
    );
    load::row(
        "server peak RSS after 1 GiB PUT and GET",
        rss_after_download as f64 / 1024.0,
        "MiB",
        "-",
        None,
        false,
    );
    println!(
        "server_peak_rss idle={rss_idle}KiB after_1GiB_upload={rss_after_upload}KiB after_1GiB_download={rss_after_download}KiB"
    );

    // Small authenticated GETs.
    let request = format!(
        "GET /api/v1/tenants/bench/files/small/4k.bin HTTP/1.1\r\nHost: {addr}\r\n{auth_header}\r\n\r\n"
    )
    .into_bytes();
    let get = |_: usize, _: usize| (request.clone(), Vec::new());
    load::run(addr, 1, 200, 200, get); // warm-up
    let one = load::run(addr, 1, small_n, 200, get);
    println!(
        "small_get_4KiB connections=1 requests={small_n} rps={:.0} p50={:.3}ms p99={:.3}ms",
        one.rps(),
        one.pct_ms(0.50),
        one.pct_ms(0.99)
    );
    let conns = 64;
    let all = load::run(addr, conns, (small_n / 8).max(50), 200, get);
    println!(
        "small_get_4KiB connections={conns} requests={} rps={:.0} p50={:.3}ms p99={:.3}ms server_peak_rss={}KiB",
        all.latencies.len(),
        all.rps(),
        all.pct_ms(0.50),
        all.pct_ms(0.99),
        peak_rss_kib(pid)
    );
    let _ = server.kill();
    let _ = server.wait();
}
