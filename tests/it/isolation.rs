//! `coffer audit isolation`: a clean data root has no findings; each kind of finding,
//! planted, is named with its check and its tenant (never another tenant's); the report
//! reaches operators over the API and the CLI exits non-zero on findings.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use axum::http::{Method, StatusCode};
use coffer::inspect::Finding;

use crate::http::{TestApp, Who};
use crate::support::World;

fn has(findings: &[Finding], tenant: Option<&str>, check: &str, path_end: &str) -> bool {
    findings
        .iter()
        .any(|f| f.tenant.as_deref() == tenant && f.check == check && f.path.ends_with(path_end))
}

#[test]
fn a_clean_data_root_has_no_findings_and_each_planted_one_is_named() {
    let world = World::new();
    world.put(&world.alpha, "clients/ada.txt", &[b'a'; 200]);
    world.put(&world.alpha, "notes.txt", b"short");
    world.put(&world.bravo, "bravo.txt", &[b'b'; 200]);
    let clean = world.coffer.isolation_audit(true).unwrap();
    assert!(clean.findings.is_empty(), "{:#?}", clean.findings);
    assert_eq!(clean.tenants_checked, 2);
    assert!(clean.files_checked >= 3);

    let root = world.data_dir();
    let alpha = world.vault_dir(&world.alpha);
    let (a, b) = (world.alpha.slug.as_str(), world.bravo.slug.as_str());
    // In alpha's vault: a link out, a FIFO, a hard link, a loose mode, a stray top entry,
    // a file nobody indexed, an indexed file gone, one whose size changed, one whose bytes
    // changed (same size).
    std::os::unix::fs::symlink("/etc/passwd", alpha.join("files/escape")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(alpha.join(".staging/pipe"))
            .status()
            .unwrap()
            .success()
    );
    std::fs::hard_link(alpha.join("files/notes.txt"), alpha.join(".trash/linked")).unwrap();
    std::fs::set_permissions(
        alpha.join("files/clients"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(alpha.join("stray.txt"), b"?").unwrap();
    std::fs::write(alpha.join("files/unindexed.txt"), b"who put me here").unwrap();
    std::fs::remove_file(world.vault_dir(&world.bravo).join("files/bravo.txt")).unwrap();
    std::fs::write(alpha.join("files/clients/ada.txt"), [b'z'; 200]).unwrap();
    // At the root: a stray entry, a directory that is no tenant's, one whose name is no id.
    std::fs::write(root.join("notes-from-ops.txt"), b"").unwrap();
    std::fs::create_dir(root.join("tenants/0123456789abcdef0123456789abcdef")).unwrap();
    std::fs::create_dir(root.join("tenants/not-an-id")).unwrap();

    let found = world.coffer.isolation_audit(true).unwrap().findings;
    for (tenant, check, path) in [
        (Some(a), "special-file", "files/escape"),
        (Some(a), "special-file", ".staging/pipe"),
        (Some(a), "hard-link", ".trash/linked"),
        (Some(a), "hard-link", "files/notes.txt"),
        (Some(a), "mode", "files/clients"),
        (Some(a), "unexpected-entry", "stray.txt"),
        (Some(a), "unindexed-file", "files/unindexed.txt"),
        (Some(a), "hash-mismatch", "files/clients/ada.txt"),
        (Some(b), "missing-file", "files/bravo.txt"),
        (None, "unexpected-entry", "notes-from-ops.txt"),
        (
            Some("0123456789abcdef0123456789abcdef"),
            "orphan-vault",
            "tenants/0123456789abcdef0123456789abcdef",
        ),
        (Some("not-an-id"), "orphan-vault", "tenants/not-an-id"),
    ] {
        assert!(
            has(&found, tenant, check, path),
            "{tenant:?} {check} {path} not in {found:#?}"
        );
    }
    // Nothing of alpha's is reported as bravo's, and bravo has only its own finding.
    let bravo: Vec<&Finding> = found
        .iter()
        .filter(|f| f.tenant.as_deref() == Some(b))
        .collect();
    assert_eq!(bravo.len(), 1, "{bravo:#?}");
    // Without --deep the changed bytes (same size) go unseen; the rest stays.
    let shallow = world.coffer.isolation_audit(false).unwrap().findings;
    assert!(!shallow.iter().any(|f| f.check == "hash-mismatch"));
    assert!(has(&shallow, Some(a), "special-file", "files/escape"));

    // A vault whose marker names another tenant, and a live tenant without a vault.
    let marker = std::fs::read_to_string(alpha.join("VAULT")).unwrap();
    std::fs::write(
        alpha.join("VAULT"),
        marker.replace(&world.alpha.id.to_string(), &world.bravo.id.to_string()),
    )
    .unwrap();
    let bravo_dir = world.vault_dir(&world.bravo);
    std::fs::rename(&bravo_dir, root.join("tenants/not-an-id/moved")).unwrap();
    // ...and whose index records another tenant: reported, and refused on open.
    let index = rusqlite::Connection::open(alpha.join("index.db")).unwrap();
    let set_identity = |id: String| {
        index
            .execute("UPDATE vault_identity SET tenant_id = ?1", [id])
            .unwrap()
    };
    assert_eq!(set_identity(world.bravo.id.to_string()), 1);
    world.coffer.vault_store_unchecked().evict(world.alpha.id);
    let refused = world.coffer.auth().operator_access(
        &crate::support::operator(),
        &coffer::names::TenantSlug::parse(a).unwrap(),
    );
    assert!(refused.is_err(), "an index of another tenant was served");
    let found = world.coffer.isolation_audit(false).unwrap().findings;
    assert!(
        has(&found, Some(a), "index-mismatch", "index.db"),
        "{found:#?}"
    );
    set_identity(world.alpha.id.to_string());
    assert!(
        has(&found, Some(a), "marker-mismatch", "VAULT"),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            Some(b),
            "missing-vault",
            &world.bravo.id.to_string()
        ),
        "{found:#?}"
    );
    // Put things back so the world's own checks on drop see a sane root.
    std::fs::rename(root.join("tenants/not-an-id/moved"), &bravo_dir).unwrap();
    std::fs::write(alpha.join("VAULT"), marker).unwrap();
    for p in [
        "files/escape",
        ".staging/pipe",
        ".trash/linked",
        "stray.txt",
        "files/unindexed.txt",
    ] {
        std::fs::remove_file(alpha.join(p)).unwrap();
    }
}

#[test]
fn vault_content_in_the_metadata_is_found() {
    let world = World::new();
    let secret = b"A-CLIENT-SECRET-THAT-ONLY-THE-VAULT-MAY-HOLD-0123456789abcdefghijklmnop";
    world.put(&world.alpha, "secret.txt", secret);
    assert!(
        world
            .coffer
            .isolation_audit(false)
            .unwrap()
            .findings
            .is_empty()
    );
    // A control-plane row that (wrongly) holds the file's bytes: a tenant renamed to them.
    world
        .coffer
        .control()
        .update_tenant(
            &crate::support::operator(),
            world.alpha.id,
            Some(std::str::from_utf8(secret).unwrap()),
            None,
        )
        .unwrap();
    let found = world.coffer.isolation_audit(false).unwrap().findings;
    // control.db, or the copy of a control plane in PostgreSQL.
    let control = match world.coffer.config().control {
        None => "control.db",
        Some(_) => "control (PostgreSQL, checked through a copy)",
    };
    assert!(
        found
            .iter()
            .any(|f| f.check == "content-in-metadata" && f.path == control),
        "{found:#?}"
    );
}

#[test]
fn every_other_kind_of_finding_is_planted_and_named_with_its_tenant() {
    let mut world = World::new();
    world.skip_invariants = true; // the audit chain is broken on purpose below
    let charlie = world
        .coffer
        .create_tenant(
            &crate::support::operator(),
            crate::support::new_tenant("charlie", None),
        )
        .unwrap();
    world.put(&world.alpha, "grows.txt", &[b'g'; 100]);
    world.put(&world.bravo, "kept.txt", &[b'k'; 100]);
    world.put(&charlie, "c.txt", b"c");
    let (a, b) = (world.alpha.slug.as_str(), world.bravo.slug.as_str());
    let (alpha, bravo) = (world.vault_dir(&world.alpha), world.vault_dir(&world.bravo));
    for id in [world.alpha.id, world.bravo.id, charlie.id] {
        world.coffer.vault_store_unchecked().evict(id);
    }
    // alpha: a file that grew outside Coffer, staging debris two hours old, a socket,
    // and (as root) a file owned by someone else.
    let mut grows = std::fs::OpenOptions::new()
        .append(true)
        .open(alpha.join("files/grows.txt"))
        .unwrap();
    std::io::Write::write_all(&mut grows, b"more").unwrap();
    let old = std::fs::File::create(alpha.join(".staging/0123.part")).unwrap();
    old.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
        .unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(alpha.join("files/sock")).unwrap();
    let as_root = rustix::process::geteuid().is_root();
    if as_root {
        std::os::unix::fs::chown(alpha.join("files/grows.txt"), Some(65534), None).unwrap();
    }
    // bravo: the VAULT marker gone, and an index whose schema no longer matches its
    // content (what integrity_check reports for a damaged page).
    std::fs::remove_file(bravo.join("VAULT")).unwrap();
    let index = rusqlite::Connection::open(bravo.join("index.db")).unwrap();
    index
        .execute_batch(
            "CREATE INDEX planted ON entries(path);
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE INDEX planted ON entries(size)' WHERE name = 'planted';
             PRAGMA writable_schema = OFF;",
        )
        .unwrap();
    drop(index);
    // charlie: an index that is not a database.
    std::fs::write(world.vault_dir(&charlie).join("index.db"), [0x55u8; 8192]).unwrap();
    // The control plane grows a column that could hold file bodies (in control.db: the
    // column check reads SQLite's schema); the audit chain is edited after the fact.
    let sqlite_control = world.coffer.config().control.is_none();
    if sqlite_control {
        rusqlite::Connection::open(world.data_dir().join("control.db"))
            .unwrap()
            .execute_batch("ALTER TABLE tenants ADD COLUMN attachment BLOB")
            .unwrap();
    }
    world
        .coffer
        .audit()
        .tamper_unchecked("UPDATE events SET actor = 'someone-else' WHERE seq = 2")
        .unwrap();

    let found = world.coffer.isolation_audit(false).unwrap().findings;
    let mut expected = vec![
        (Some(a), "size-mismatch", "files/grows.txt"),
        (Some(a), "stale-staging", ".staging/0123.part"),
        (Some(a), "special-file", "files/sock"),
        (Some(b), "marker-missing", "VAULT"),
        (Some(b), "integrity", "index.db"),
        (Some("charlie"), "index-unreadable", "index.db"),
        (
            None,
            "audit-chain",
            if sqlite_control {
                "audit.db"
            } else {
                "audit (PostgreSQL, checked through a copy)"
            },
        ),
    ];
    if sqlite_control {
        expected.push((None, "content-column", "control.db"));
    }
    if as_root {
        expected.push((Some(a), "owner", "files/grows.txt"));
    }
    for (tenant, check, path) in expected {
        assert!(
            has(&found, tenant, check, path),
            "{tenant:?} {check} {path} not in {found:#?}"
        );
    }
    // Each vault's findings stay its own.
    for f in &found {
        if f.path.contains(&world.bravo.id.to_string()) {
            assert_eq!(f.tenant.as_deref(), Some(b), "{f:?}");
        }
        if f.path.contains(&charlie.id.to_string()) {
            assert_eq!(f.tenant.as_deref(), Some("charlie"), "{f:?}");
        }
    }
}

#[tokio::test]
async fn operators_read_the_report_and_the_cli_fails_on_findings() {
    let t = TestApp::new();
    let r = t
        .call(
            Method::GET,
            "/api/v1/admin/audit/isolation?deep=true",
            Some(Who::Operator),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["findings"], serde_json::json!([]));
    assert!(
        r.json().get("data_root").is_none(),
        "no host path on the wire"
    );
    let cli = |args: &[&str]| t.world.cli().args(args).output().unwrap();
    let clean = cli(&["audit", "isolation"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    std::fs::write(t.world.vault_dir(&t.world.alpha).join("stray.txt"), b"?").unwrap();
    let dirty = cli(&["audit", "isolation", "--json"]);
    assert!(!dirty.status.success());
    let report: serde_json::Value = serde_json::from_slice(&dirty.stdout).unwrap();
    assert_eq!(report["findings"][0]["check"], "unexpected-entry");
    std::fs::remove_file(t.world.vault_dir(&t.world.alpha).join("stray.txt")).unwrap();
}
