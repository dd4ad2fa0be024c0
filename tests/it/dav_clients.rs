//! Real WebDAV clients against `coffer serve` in its own process: the litmus suite
//! (Debian's `litmus`: basic, copymove, props, locks, http), `rclone` syncing a tree up
//! and down, and `cadaver` working a session through. `.ci/run`
//! installs all three and sets `COFFER_REQUIRE_DAV_CLIENTS=1`, so there a missing client fails
//! the test instead of skipping it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::{MemberChange, NewUser, Role};
use coffer::names::{Email, TenantSlug};

use crate::served::{Server, start_logging};
use crate::support::{operator, sha256_hex};

const EMAIL: &str = "owner@drive.example";

/// The client's path, or `None` (skip) when it is not installed and not required.
fn client(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("COFFER_REQUIRE_DAV_CLIENTS").is_none(),
            "{name} is required here (apt-get install {name})"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

/// A served data root with tenant `acme`, its owner, and an owner's API token.
fn served() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (coffer, _) = Coffer::init(&data, Config::default()).unwrap();
    let op = operator();
    let tenant = coffer
        .create_tenant(&op, crate::support::new_tenant("acme", None))
        .unwrap();
    let user = coffer
        .control()
        .create_user(
            &op,
            &NewUser {
                email: Email::parse(EMAIL).unwrap(),
                name: "Drive Owner".into(),
                password_hash: None,
                is_operator: false,
            },
        )
        .unwrap();
    coffer
        .auth()
        .operator_access(&op, &TenantSlug::parse("acme").unwrap())
        .unwrap()
        .change_member(coffer.control(), user.id, Role::Owner, MemberChange::Add)
        .unwrap();
    let (token, _) = coffer
        .auth()
        .issue_token(user.id, &tenant, Role::Owner, "drive", None, &op)
        .unwrap();
    drop(coffer);
    let config = dir.path().join("coffer.toml");
    std::fs::write(&config, "").unwrap();
    let server = start_logging(&data, &config, "warn");
    (dir, server, token)
}

/// litmus's results for one suite: the names of the tests that failed, with the reason.
fn litmus(bin: &Path, url: &str, token: &str, suite: &str, cwd: &Path) -> (String, Vec<String>) {
    let out = Command::new(bin)
        .args([url, EMAIL, token])
        .env("TESTS", suite)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let failed = text
        .lines()
        .filter(|l| l.contains("FAIL ("))
        .map(|l| l.trim().to_owned())
        .collect();
    (text, failed)
}

/// Every suite RFC 4918 clients rely on passes whole: no failure, no skip (litmus skips
/// the tests that depend on a failed one). Its warnings are named in the README.
#[test]
fn litmus_passes_every_suite() {
    let Some(bin) = client("litmus") else { return };
    let (dir, server, token) = served();
    let url = format!("http://{}/dav/acme/", server.addr);
    // litmus 0.13's test counts per suite, as the README states them.
    for (suite, count) in [
        ("basic", 16),
        ("copymove", 13),
        ("props", 30),
        ("locks", 41),
        ("http", 4),
    ] {
        let (text, failed) = litmus(&bin, &url, &token, suite, dir.path());
        assert!(
            text.contains(&format!("of {count} tests run: {count} passed")),
            "litmus {suite}: {text}"
        );
        assert!(text.contains(&format!("summary for `{suite}'")), "{text}");
        assert!(failed.is_empty(), "litmus {suite}: {failed:#?}\n{text}");
        assert!(!text.contains("SKIPPED"), "litmus {suite}: {text}");
        assert!(text.contains("0 failed. 100.0%"), "litmus {suite}: {text}");
    }
}

fn tree(root: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, sha256_hex(&std::fs::read(e.path()).unwrap()))
        })
        .collect()
}

fn rclone(bin: &Path, pass: &str, url: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_COFFER_TYPE", "webdav")
        .env("RCLONE_CONFIG_COFFER_URL", url)
        .env("RCLONE_CONFIG_COFFER_VENDOR", "other")
        .env("RCLONE_CONFIG_COFFER_USER", EMAIL)
        .env("RCLONE_CONFIG_COFFER_PASS", pass)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rclone {args:?}: {text}");
    text
}

#[test]
fn rclone_syncs_a_tree_up_and_down_byte_identical() {
    let Some(bin) = client("rclone") else { return };
    let (dir, server, token) = served();
    let url = format!("http://{}/dav/acme/", server.addr);
    let up = dir.path().join("up");
    let mut seed = 0x2545_f491_u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    for (path, len) in [
        ("empty.txt", 0),
        ("one.txt", 1),
        ("clients/Ada Lovelace/invoice 2026-11.pdf", 70_000),
        ("clients/Zoë Müller/photo.jpg", 300_000),
        ("jobs/2026/11/site notes.txt", 1_000),
        ("jobs/2026/11/plan (final).dwg", 2_000_000),
    ] {
        let file = up.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, noise(len)).unwrap();
    }
    let obscured = rclone(&bin, "", &url, &["obscure", &token]);
    let pass = obscured.trim();
    let up_s = up.to_str().unwrap();
    let down = dir.path().join("down");
    // Up, checked byte by byte (the server has no hash rclone knows), down, compared.
    let round_trip = || {
        rclone(&bin, pass, &url, &["sync", up_s, "coffer:backup"]);
        rclone(
            &bin,
            pass,
            &url,
            &["check", "--download", up_s, "coffer:backup"],
        );
        rclone(
            &bin,
            pass,
            &url,
            &["sync", "coffer:backup", down.to_str().unwrap()],
        );
        assert_eq!(tree(&up), tree(&down));
    };
    round_trip();
    // A change and a removal travel too; the removed file is in the trash, not gone.
    std::fs::write(up.join("one.txt"), b"changed").unwrap();
    std::fs::remove_file(up.join("jobs/2026/11/site notes.txt")).unwrap();
    round_trip();
    drop(server);
    let coffer = Coffer::open(&dir.path().join("data"), Config::default()).unwrap();
    let access = coffer
        .auth()
        .operator_access(&operator(), &TenantSlug::parse("acme").unwrap())
        .unwrap();
    let trash = access.vault().trash_list().unwrap();
    assert!(
        trash
            .iter()
            .any(|t| t.original_path == "backup/jobs/2026/11/site notes.txt"),
        "{trash:?}"
    );
}

/// cadaver, a second client (command-line, neon like litmus but a user's tool): a
/// session of folder, upload, move, download, properties, lock, delete.
#[test]
fn cadaver_works_a_session_through() {
    let Some(bin) = client("cadaver") else { return };
    let (dir, server, token) = served();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let netrc = home.join(".netrc");
    std::fs::write(
        &netrc,
        format!("machine 127.0.0.1\nlogin {EMAIL}\npassword {token}\n"),
    )
    .unwrap();
    // neon ignores a .netrc others can read.
    std::fs::set_permissions(&netrc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(home.join("local.txt"), "hello from cadaver\n").unwrap();
    let script = "mkcol jobs\nput local.txt jobs/a.txt\nmove jobs/a.txt jobs/b.txt\n\
        get jobs/b.txt back.txt\npropset jobs/b.txt colour green\npropget jobs/b.txt colour\n\
        lock jobs/b.txt\nunlock jobs/b.txt\ndelete jobs/b.txt\nls jobs\nquit\n";
    let mut child = Command::new(bin)
        .arg(format!("http://{}/dav/acme/", server.addr))
        .env("HOME", &home)
        .current_dir(&home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("succeeded.").count(), 8, "{text}");
    assert!(text.contains("Value of colour is: green"), "{text}");
    assert!(text.contains("collection is empty"), "{text}");
    assert!(!text.contains("failed"), "{text}");
    assert_eq!(
        std::fs::read_to_string(home.join("back.txt")).unwrap(),
        "hello from cadaver\n"
    );
}
