//! A full disk, for real: the data root on a small tmpfs (mounted by the test; needs
//! root), filled to the last byte. Every operation then answers a clear 507 (or a CLI
//! error) with nothing partial left, nothing already stored is lost, and everything works
//! again once space is freed.
//!
//! Without root (or without `mount`), the test says it was skipped and how to run it;
//! `COFFER_REQUIRE_ROOT_TESTS=1` (set by `.ci/run`) turns that skip into a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use coffer::config::Config;

use crate::http::{TestApp, Who};
use crate::support::World;
use crate::support::zipgen::{RawEntry, build};

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `ballast` to the last byte; returns how much it took.
fn fill(ballast: &Path) -> u64 {
    let mut f = std::fs::File::create(ballast).unwrap();
    let chunk = vec![0xAAu8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(_) => break,
        }
    }
    // Then byte by byte, so not even a partial block is left.
    while f.write(&[0]).is_ok_and(|n| n == 1) {
        written += 1;
    }
    let _ = f.sync_all();
    written
}

fn disk_full(r: &crate::http::Reply) -> bool {
    r.status == StatusCode::INSUFFICIENT_STORAGE && r.code() == "disk-full"
}

#[tokio::test]
async fn issue8_a_full_disk_answers_507_loses_nothing_and_recovers() {
    let mounted = std::sync::Mutex::new(None);
    let world = World::with_prepared_root(Config::default(), &|data| {
        *mounted.lock().unwrap() = Tmpfs::mount(data, "24m");
    });
    let Some(fs) = mounted.into_inner().unwrap() else {
        let msg =
            "skipped: mounting a tmpfs needs root (run `cargo test` as root, as .ci/run does)";
        assert!(
            std::env::var("COFFER_REQUIRE_ROOT_TESTS").is_err(),
            "COFFER_REQUIRE_ROOT_TESTS is set but the disk-full test cannot mount a tmpfs"
        );
        eprintln!("{msg}");
        return;
    };
    let t = TestApp::with_world(world);
    let api = "/api/v1/tenants/alpha";
    let o = Some(Who::Owner);
    // What is stored before the disk fills must survive it.
    let keep = t
        .put_file(&format!("{api}/files/keep.txt"), o, b"kept through it all")
        .await;
    assert_eq!(keep.status, StatusCode::CREATED);
    let r = t
        .json(
            Method::POST,
            &format!("{api}/records/clients?id=c1"),
            o,
            serde_json::json!({"name": "Ada"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let ballast = fs.0.join("ballast");
    let filled = fill(&ballast);
    assert!(
        filled > 1024 * 1024,
        "the tmpfs had room to fill ({filled})"
    );

    // An upload: refused while streaming, nothing visible, nothing staged.
    let big: &'static [u8] = Box::leak(vec![7u8; 512 * 1024].into_boxed_slice());
    let r = t.put_file(&format!("{api}/files/big.bin"), o, big).await;
    assert!(disk_full(&r), "upload: {} {:?}", r.status, r.json());
    assert_eq!(
        t.call(Method::GET, &format!("{api}/files/big.bin"), o)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A large record: the index cannot grow.
    let body = serde_json::json!({ "notes": "x".repeat(600 * 1024) });
    let r = t
        .json(
            Method::POST,
            &format!("{api}/records/clients?id=c2"),
            o,
            body,
        )
        .await;
    assert!(disk_full(&r), "record: {} {:?}", r.status, r.json());
    assert_eq!(
        t.call(Method::GET, &format!("{api}/records/clients/c2"), o)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // An import: the spooled archive cannot be written.
    let archive = build(&[RawEntry::file("imported/a.bin", &vec![3u8; 256 * 1024])]);
    let r = t
        .send(
            t.request(Method::POST, &format!("{api}/import"), o)
                .header("content-type", "application/zip")
                .body(Body::from(archive))
                .unwrap(),
        )
        .await;
    assert!(disk_full(&r), "import: {} {:?}", r.status, r.json());
    // A control-plane change (and its audit event) cannot be written either.
    let r = t
        .json(
            Method::POST,
            "/api/v1/admin/tenants",
            Some(Who::Operator),
            serde_json::json!({ "slug": "no-room", "name": "x".repeat(200_000) }),
        )
        .await;
    assert!(
        disk_full(&r) || r.status.is_success(),
        "tenant: {} {:?}",
        r.status,
        r.json()
    );
    // An export to a file on the full disk: a clear CLI error, no archive left behind.
    let out = fs.0.join("export.zip");
    let cli = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--data-dir")
        .arg(t.world.data_dir())
        .args(["export", "alpha", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!cli.status.success(), "export to a full disk must fail");
    let err = String::from_utf8_lossy(&cli.stderr);
    assert!(
        err.starts_with("coffer: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert!(!out.exists() && !out.with_extension("zip.partial").exists());
    // Nothing partial: no staging debris, nothing lost.
    let staging = t.world.vault_dir(&t.world.alpha).join(".staging");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    let kept = t
        .call(Method::GET, &format!("{api}/files/keep.txt"), o)
        .await;
    assert_eq!(&kept.body[..], b"kept through it all");

    // Space comes back: everything works again.
    std::fs::remove_file(&ballast).unwrap();
    let r = t.put_file(&format!("{api}/files/big.bin"), o, big).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = serde_json::json!({ "notes": "x".repeat(600 * 1024) });
    let r = t
        .json(
            Method::POST,
            &format!("{api}/records/clients?id=c2"),
            o,
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let cli = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--data-dir")
        .arg(t.world.data_dir())
        .args(["export", "alpha", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(t.world.coffer.audit().verify().unwrap().broken.is_none());
    std::fs::remove_file(&out).unwrap();
    drop(t);
    drop(fs);
}
