//! `coffer audit deployment`: every check passes on a good deployment and fails (or
//! warns) when the one fact it rules on goes bad; real faults planted on disk, in the
//! configuration and at the HTTP edge are seen by a real gather; the command's exit code
//! follows its failures.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use coffer::config::Config;
use coffer::http::AppState;
use coffer::inspect::deployment::facts::{DiskFacts, Encryption, FileFacts};
use coffer::inspect::deployment::{self, CHECKS, DeploymentReport, Facts, Status};

use crate::support::World;

/// A self-signed certificate and its key, written 0600 under `dir`.
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key)
}

/// A world served over TLS with a fresh certificate, sign-up off.
fn tls_world() -> World {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path(), "server");
    // The certificate directory must outlive the world: keep it.
    std::mem::forget(certs);
    World::with_config(Config {
        tls_cert_file: Some(cert),
        tls_key_file: Some(key),
        signup_enabled: false,
        ..Config::default()
    })
}

async fn gather(world: &World) -> Facts {
    let mut state = AppState::new(world.coffer.clone()).unwrap();
    if world.coffer.config().serves_tls() {
        state = state.with_tls();
    }
    let edge = coffer::http::probe_edge(state).await;
    Facts::gather(&world.coffer, edge).unwrap()
}

/// The machine-level facts a test machine cannot have (an encrypted disk, a nightly
/// backup on another disk, a non-root user), set as a good production host has them.
/// Everything about the data root, the configuration and the edge stays as gathered.
fn as_on_a_good_host(mut f: Facts) -> Facts {
    if f.euid == 0 {
        let service_user = 990;
        f.euid = service_user;
        f.data_root.uid = service_user;
        for e in f.root_entries.values_mut().chain(f.key_files.values_mut()) {
            e.uid = service_user;
        }
    }
    f.encryption = Encryption::Encrypted("dm-0".into());
    f.disk = Some(DiskFacts {
        total_bytes: 100 << 30,
        available_bytes: 60 << 30,
    });
    f.core_dump_limit = Some(0);
    f.descriptor_limit = Some(65_536);
    f.newest_backup = Ok(Some(f.now - time::Duration::hours(3)));
    f.backup_same_filesystem = Some(false);
    f.log_filter = Some("info".into());
    f
}

fn status(report: &DeploymentReport, id: &str) -> Status {
    report
        .get(id)
        .unwrap_or_else(|| panic!("no check {id}"))
        .status
}

fn assert_all_pass(report: &DeploymentReport) {
    let not: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| format!("{} {:?}: {}", c.id, c.status, c.detail))
        .collect();
    assert!(not.is_empty(), "{not:#?}");
}

type Spoil = fn(&mut Facts);

/// For each check: how one fact goes bad, and what the check must then say.
fn spoilers() -> Vec<(&'static str, Status, Spoil)> {
    fn open(e: &mut FileFacts) {
        e.mode = 0o755;
    }
    vec![
        ("process-not-root", Status::Fail, |f| {
            f.euid = 0;
            f.data_root.uid = 0;
            for e in f.root_entries.values_mut().chain(f.key_files.values_mut()) {
                e.uid = 0;
            }
        }),
        ("data-root-mode", Status::Fail, |f| open(&mut f.data_root)),
        ("data-root-entries-mode", Status::Fail, |f| {
            open(f.root_entries.get_mut("tenants").unwrap())
        }),
        ("secret-strength", Status::Fail, |f| f.secret_bits = 64),
        ("key-files-mode", Status::Fail, |f| {
            f.key_files.get_mut("signing.key").unwrap().mode = 0o644
        }),
        ("transport-tls", Status::Fail, |f| {
            f.config.tls_cert_file = None;
            f.config.tls_key_file = None;
            f.tls = None;
            f.config.listen = "0.0.0.0:8080".into();
            // What the edge would then send: the plain cookie, no HSTS.
            f.edge.session_cookie = f.edge.session_cookie.replace("__Host-", "");
            f.edge.headers.remove("strict-transport-security");
        }),
        ("tls-version", Status::Fail, |f| {
            f.config.tls_allow_tls12 = true
        }),
        ("tls-certificate", Status::Fail, |f| {
            f.tls.as_mut().unwrap().loads = Err("key does not match".into())
        }),
        ("session-cookie", Status::Fail, |f| {
            f.edge.session_cookie = f.edge.session_cookie.replace("; HttpOnly", "")
        }),
        ("session-lifetime", Status::Fail, |f| {
            f.config.session_days = 30
        }),
        ("password-hashing", Status::Fail, |f| {
            f.password.memory_kib = 4096
        }),
        ("login-throttle", Status::Fail, |f| {
            f.throttle.per_account = 0
        }),
        ("request-limits", Status::Fail, |f| {
            f.config.header_read_timeout_secs = 3600
        }),
        ("trusted-proxies-narrow", Status::Fail, |f| {
            f.config.trusted_proxies = vec!["0.0.0.0/0".into()]
        }),
        ("cors", Status::Fail, |f| {
            f.edge
                .headers
                .insert("access-control-allow-origin".into(), "*".into());
        }),
        ("security-headers", Status::Fail, |f| {
            f.edge.headers.remove("x-content-type-options");
        }),
        ("metrics-not-public", Status::Fail, |f| {
            f.edge.metrics_status = 200
        }),
        ("debug-logging-off", Status::Fail, |f| {
            f.log_filter = Some("coffer=debug".into())
        }),
        ("audit-chain", Status::Fail, |f| {
            f.audit_chain = Err("broken at event 3".into())
        }),
        ("database-integrity", Status::Fail, |f| {
            f.databases[0].integrity = "*** in database main *** Page 3: btree".into()
        }),
        ("migrations-current", Status::Fail, |f| {
            f.databases[1].version = f.databases[1].latest + 1
        }),
        ("backups-recent", Status::Fail, |f| {
            f.config.backup_retention_days = 365
        }),
        ("backups-recent", Status::Warn, |f| {
            f.newest_backup = Ok(Some(f.now - time::Duration::hours(30)))
        }),
        ("backup-location", Status::Warn, |f| {
            f.backup_same_filesystem = Some(true)
        }),
        ("disk-free", Status::Fail, |f| {
            f.disk = Some(DiskFacts {
                total_bytes: 100 << 30,
                available_bytes: 4 << 30,
            })
        }),
        ("clock-sane", Status::Fail, |f| {
            f.newest_audit_event = Some(f.now + time::Duration::hours(2))
        }),
        // Several nodes: this host ten minutes off the shared database's clock.
        ("clock-sane", Status::Fail, |f| {
            f.database_clock = Some(f.now - time::Duration::minutes(10))
        }),
        ("signup-policy", Status::Warn, |f| {
            f.config.signup_enabled = true
        }),
        ("encryption-at-rest", Status::Warn, |f| {
            f.encryption = Encryption::Plain("vda1".into())
        }),
        ("core-dumps-off", Status::Fail, |f| {
            f.core_dump_limit = Some(u64::MAX)
        }),
        ("descriptor-limit", Status::Fail, |f| {
            f.descriptor_limit = Some(1024)
        }),
    ]
}

#[tokio::test]
async fn every_check_passes_on_a_good_deployment_and_fails_alone_when_its_fact_goes_bad() {
    let world = tls_world();
    let good = as_on_a_good_host(gather(&world).await);
    assert_all_pass(&deployment::evaluate(&good));
    let spoilers = spoilers();
    // Every check of the table is driven both ways, and there are at least 20.
    let mut driven: Vec<&str> = spoilers.iter().map(|(id, _, _)| *id).collect();
    let mut table: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
    assert!(table.len() >= 20, "{} checks", table.len());
    driven.sort_unstable();
    driven.dedup();
    table.sort_unstable();
    assert_eq!(driven, table);
    for (id, expected, spoil) in spoilers {
        let mut facts = good.clone();
        spoil(&mut facts);
        let report = deployment::evaluate(&facts);
        assert_eq!(status(&report, id), expected, "{id}: {:?}", report.get(id));
        let others: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.id != id && c.status != Status::Pass)
            .map(|c| c.id)
            .collect();
        assert!(others.is_empty(), "spoiling {id} also moved {others:?}");
        // The failure says what to do.
        assert!(!report.get(id).unwrap().fix.is_empty());
    }
}

#[tokio::test]
async fn the_edge_is_probed_for_real_cookie_hsts_metrics_and_cors() {
    let world = tls_world();
    let facts = gather(&world).await;
    assert!(
        facts
            .edge
            .session_cookie
            .starts_with("__Host-coffer_session=")
    );
    assert!(
        facts.edge.headers["strict-transport-security"].starts_with("max-age=63072000"),
        "{:?}",
        facts.edge.headers
    );
    assert_eq!(facts.edge.metrics_status, 404);
    assert!(
        !facts
            .edge
            .headers
            .contains_key("access-control-allow-origin")
    );
    // HSTS switched off in the configuration: the probe sees it gone.
    let off = World::with_config(Config {
        hsts_max_age_secs: 0,
        control: None,
        ..world.coffer.config().clone()
    });
    let report = deployment::evaluate(&as_on_a_good_host(gather(&off).await));
    assert_eq!(status(&report, "security-headers"), Status::Fail);
    // Plain HTTP: the cookie has no __Host- prefix and no HSTS is sent, which is right
    // only on loopback behind a proxy.
    let plain = World::with_config(Config {
        trusted_proxies: vec!["127.0.0.1/32".into()],
        signup_enabled: false,
        ..Config::default()
    });
    let mut facts = as_on_a_good_host(gather(&plain).await);
    assert!(facts.edge.session_cookie.starts_with("coffer_session="));
    assert_all_pass(&deployment::evaluate(&facts));
    // A proxy on another host: plain HTTP on a private address warns; on a public one
    // it fails, proxy or not.
    facts.config.listen = "10.0.0.5:8080".into();
    let report = deployment::evaluate(&facts);
    assert_eq!(status(&report, "transport-tls"), Status::Warn);
    facts.config.listen = "203.0.113.7:8080".into();
    let report = deployment::evaluate(&facts);
    assert_eq!(status(&report, "transport-tls"), Status::Fail);
}

#[tokio::test]
async fn faults_planted_on_disk_and_in_the_configuration_are_found() {
    let mut world = World::new();
    world.skip_invariants = true;
    let root = world.coffer.data_root_path().to_owned();
    std::fs::set_permissions(root.join("secret.key"), PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&root, PermissionsExt::from_mode(0o755)).unwrap();
    // A vault index written by a newer Coffer.
    let index = root
        .join("tenants")
        .join(world.bravo.id.to_string())
        .join("index.db");
    rusqlite::Connection::open(&index)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    // A row of the audit chain edited after the fact.
    world
        .coffer
        .audit()
        .tamper_unchecked("UPDATE events SET actor = 'someone-else' WHERE seq = 1")
        .unwrap();
    let report = deployment::evaluate(&as_on_a_good_host(gather(&world).await));
    for id in [
        "key-files-mode",
        "data-root-mode",
        "migrations-current",
        "audit-chain",
    ] {
        assert_eq!(
            status(&report, id),
            Status::Fail,
            "{id}: {:?}",
            report.get(id)
        );
    }
    let detail = &report.get("migrations-current").unwrap().detail;
    assert!(detail.contains(&world.bravo.id.to_string()), "{detail}");
    std::fs::set_permissions(&root, PermissionsExt::from_mode(0o700)).unwrap();

    // A key that is not the certificate's: the pair does not load.
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(dir.path(), "one");
    let (_, other_key) = self_signed(dir.path(), "two");
    let mismatched = World::with_config(Config {
        tls_cert_file: Some(cert),
        tls_key_file: Some(other_key),
        ..Config::default()
    });
    let facts = gather(&mismatched).await;
    let report = deployment::evaluate(&facts);
    assert_eq!(status(&report, "tls-certificate"), Status::Fail);
    // Sign-up on by default: a warning, not a failure.
    assert_eq!(status(&report, "signup-policy"), Status::Warn);
}

#[test]
fn the_command_reports_every_check_and_fails_on_a_failed_one() {
    let world = World::new();
    let root = world.coffer.data_root_path().to_owned();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
            .arg("--data-dir")
            .arg(&root)
            .arg("--json")
            .args(["audit", "deployment"])
            .args(extra)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 20);
    for c in checks {
        for field in ["id", "explains", "severity", "status", "detail", "fix"] {
            assert!(c[field].is_string(), "{c}");
        }
    }
    let failed = report["failed"].as_u64().unwrap();
    assert_eq!(out.status.success(), failed == 0, "{report:#}");
    // A secret readable by others is a critical failure, whatever --fail-on says.
    std::fs::set_permissions(root.join("secret.key"), PermissionsExt::from_mode(0o644)).unwrap();
    let out = run(&["--fail-on", "critical"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "key-files-mode")
        .unwrap();
    assert_eq!(key["status"], "fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deployment checks failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(root.join("secret.key"), PermissionsExt::from_mode(0o600)).unwrap();
}
