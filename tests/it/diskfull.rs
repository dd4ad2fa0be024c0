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
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(crate) fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
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

/// Fills the filesystem holding `ballast` to the last byte, then gives back `free`
/// bytes: the next operation that needs more than that runs out of space part-way.
fn leave_free(ballast: &Path, free: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ballast)
        .unwrap();
    let chunk = vec![0xAAu8; 64 * 1024];
    while f.write(&chunk).is_ok_and(|n| n > 0) {}
    // Then byte by byte, so not even a partial block is left.
    while f.write(&[0]).is_ok_and(|n| n == 1) {}
    let len = f.metadata().unwrap().len();
    assert!(len > free, "the tmpfs had room to fill");
    f.set_len(len - free).unwrap();
    f.sync_all().unwrap();
}

/// Bytes that no compressor shrinks (so an archive of them is as large as they are).
fn incompressible(n: usize, seed: u64) -> &'static [u8] {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Box::leak(bytes.into_boxed_slice())
}

fn disk_full(r: &crate::http::Reply) -> bool {
    r.status == StatusCode::INSUFFICIENT_STORAGE && r.code() == "disk-full"
}

const MIB: usize = 1024 * 1024;

/// An import into alpha of a 3 MiB archive that no compressor shrinks.
async fn import(t: &TestApp) -> crate::http::Reply {
    let archive = build(&[
        RawEntry::file("imported/a.bin", incompressible(MIB, 13)),
        RawEntry::file("imported/b.bin", incompressible(2 * MIB, 17)),
    ]);
    t.send(
        t.request(
            Method::POST,
            "/api/v1/tenants/alpha/import",
            Some(Who::Owner),
        )
        .header("content-type", "application/zip")
        .body(Body::from(archive))
        .unwrap(),
    )
    .await
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
    // What is stored before the disk fills must survive it; the 3 MiB file also makes
    // the export larger than the room left for it.
    let kept = incompressible(3 * MIB, 7);
    let keep = t.put_file(&format!("{api}/files/keep.bin"), o, kept).await;
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
    let staging = t.world.vault_dir(&t.world.alpha).join(".staging");
    let staged = || std::fs::read_dir(&staging).unwrap().count();

    // An upload of 4 MiB with 1 MiB left: the disk fills while it streams.
    leave_free(&ballast, MIB as u64);
    let big = incompressible(4 * MIB, 11);
    let r = t.put_file(&format!("{api}/files/big.bin"), o, big).await;
    assert!(disk_full(&r), "upload: {} {:?}", r.status, r.json());
    let missing = t
        .call(Method::GET, &format!("{api}/files/big.bin"), o)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(staged(), 0, "the failed upload left staging debris");

    // An import of a 3 MiB archive: with 1 MiB left the disk fills while the archive is
    // spooled; with 4.5 MiB left the spool fits and the disk fills while it is unpacked
    // into staging. Either way nothing of it appears.
    for free in [MIB as u64, 9 * MIB as u64 / 2] {
        leave_free(&ballast, free);
        let r = import(&t).await;
        assert!(disk_full(&r), "import: {} {:?}", r.status, r.json());
        for name in ["imported/a.bin", "imported/b.bin"] {
            let gone = t.call(Method::GET, &format!("{api}/files/{name}"), o).await;
            assert_eq!(gone.status, StatusCode::NOT_FOUND, "{name}");
        }
        assert_eq!(staged(), 0, "the failed import left staging debris");
    }

    // A 600 KiB record with 64 KiB left: the index fills while it writes.
    leave_free(&ballast, 64 * 1024);
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
    let missing = t
        .call(Method::GET, &format!("{api}/records/clients/c2"), o)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The audit append: with not a byte left, audited control-plane changes (API tokens
    // created) go on until the control plane's log cannot grow. Each one either lands
    // whole (token and audit event) or answers 507 and leaves nothing.
    // (With PostgreSQL the control plane and the audit chain are not on this disk.)
    if t.world.coffer.config().control.is_none() {
        leave_free(&ballast, 0);
        let before = t.world.coffer.audit().verify().unwrap().events;
        let mut created = 0u64;
        let refused = loop {
            let r = t
                .json(
                    Method::POST,
                    "/api/v1/auth/tokens",
                    o,
                    serde_json::json!({ "tenant": "alpha", "role": "viewer", "name": "n".repeat(200) }),
                )
                .await;
            if disk_full(&r) {
                break r;
            }
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
            created += 1;
            assert!(created < 5000, "the control plane never ran out of room");
        };
        assert!(disk_full(&refused));
        let after = t.world.coffer.audit().verify().unwrap();
        assert!(after.broken.is_none());
        assert_eq!(
            after.events,
            before + created,
            "one audit event per token, none for the refused one"
        );
    }

    // An export of ~3 MiB to a file with 1 MiB left: a clear CLI error, no archive left.
    leave_free(&ballast, MIB as u64);
    let out = fs.0.join("export.zip");
    let export = || {
        t.world
            .cli()
            .args(["export", "alpha", "-o"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let cli = export();
    assert!(!cli.status.success(), "export to a full disk must fail");
    let err = String::from_utf8_lossy(&cli.stderr);
    assert!(
        err.starts_with("coffer: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert!(!out.exists() && !out.with_extension("zip.partial").exists());

    // Nothing lost.
    let got = t
        .call(Method::GET, &format!("{api}/files/keep.bin"), o)
        .await;
    assert_eq!(&got.body[..], kept);
    let c1 = t
        .call(Method::GET, &format!("{api}/records/clients/c1"), o)
        .await;
    assert_eq!(c1.status, StatusCode::OK);

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
    let r = import(&t).await;
    assert!(r.status.is_success(), "import: {} {:?}", r.status, r.json());
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            o,
            serde_json::json!({ "tenant": "alpha", "role": "viewer", "name": "after" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let cli = export();
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
