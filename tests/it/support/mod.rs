//! Test support: a fresh data root in a temporary directory with ready tenants, and
//! helpers to look at the disk the way an attacker or an auditor would.
//!
//! When a `World` is dropped it checks what must hold after every test, whatever it did:
//! no vault has anything left in `.staging/` or a pending write, and the audit chain
//! verifies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coffer::audit::{Actor, Caller};
use coffer::auth::TenantAccess;
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::{NewTenant, Tenant};
use coffer::names::TenantSlug;
use coffer::vault::Vault;

pub mod client;
pub mod postgres;
pub mod zipgen;

/// A data root with two tenants, `alpha` and `bravo`, inside a temp dir that also holds a
/// `outside/` canary directory next to the data root.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub coffer: Coffer,
    pub alpha: Tenant,
    pub bravo: Tenant,
    /// Set by tests that leave the data root damaged on purpose.
    pub skip_invariants: bool,
}

pub fn operator() -> Caller {
    Caller::new(Actor::Operator(Some("test".into())))
}

/// A tenant's vault, as the operator reaches it (through `Auth::operator_access`).
pub struct VaultHandle(pub TenantAccess);

impl std::ops::Deref for VaultHandle {
    type Target = Vault;
    fn deref(&self) -> &Vault {
        self.0.vault()
    }
}

pub fn new_tenant(slug: &str, quota_bytes: Option<u64>) -> NewTenant {
    NewTenant {
        slug: TenantSlug::parse(slug).unwrap(),
        name: slug.to_uppercase(),
        quota_bytes,
        owner: None,
    }
}

impl World {
    pub fn new() -> World {
        World::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> World {
        World::with_clock(config, coffer::clock::system())
    }

    /// A world whose every part reads `clock` (a `ManualClock` moves time without sleeps).
    pub fn with_clock(config: Config, clock: coffer::clock::SharedClock) -> World {
        World::build(config, clock, &|_| {})
    }

    /// A world whose data root directory is prepared by `prepare` before Coffer creates
    /// anything in it (a test mounts a small filesystem there).
    pub fn with_prepared_root(config: Config, prepare: &dyn Fn(&Path)) -> World {
        World::build(config, coffer::clock::system(), prepare)
    }

    fn build(
        mut config: Config,
        clock: coffer::clock::SharedClock,
        prepare: &dyn Fn(&Path),
    ) -> World {
        if config.control.is_none() && postgres::suite_on_postgres() {
            let base = postgres::base_url("COFFER_TEST_CONTROL=postgres")
                .expect("COFFER_TEST_CONTROL=postgres needs COFFER_TEST_POSTGRES");
            config.control = Some(postgres::fresh_schema(&base));
            config.node = Some("node-1".into());
        }
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("data")).unwrap();
        prepare(&tmp.path().join("data"));
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/secret.txt"), b"outside secret").unwrap();
        let (coffer, created) =
            Coffer::init_with_clock(&tmp.path().join("data"), config, clock).unwrap();
        assert!(created);
        let op = operator();
        let alpha = coffer
            .create_tenant(&op, new_tenant("alpha", None))
            .unwrap();
        let bravo = coffer
            .create_tenant(&op, new_tenant("bravo", None))
            .unwrap();
        World {
            tmp,
            coffer,
            alpha,
            bravo,
            skip_invariants: false,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// The operator's access to a tenant's vault.
    /// Stores `bytes` at `path` in `t`'s vault as the operator.
    pub fn put(&self, t: &Tenant, path: &str, bytes: &[u8]) {
        self.vault(t)
            .write_file(
                &operator(),
                &coffer::vault::path::VaultPath::parse(path).unwrap(),
                &mut &bytes[..],
                &coffer::vault::Precondition::None,
            )
            .unwrap();
    }

    pub fn vault(&self, t: &Tenant) -> VaultHandle {
        VaultHandle(self.access(t))
    }

    pub fn access(&self, t: &Tenant) -> TenantAccess {
        let slug = TenantSlug::parse(&t.slug).unwrap();
        self.coffer
            .auth()
            .operator_access(&operator(), &slug)
            .unwrap()
    }

    /// The host path of a tenant's vault directory (for planting things "with disk access").
    pub fn vault_dir(&self, t: &Tenant) -> PathBuf {
        self.data_dir().join("tenants").join(t.id.to_string())
    }

    /// The `coffer` command on this data root (and this world's control plane: a world on
    /// PostgreSQL writes a configuration file naming it).
    pub fn cli(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"));
        command.arg("--data-dir").arg(self.data_dir());
        if let Some(url) = &self.coffer.config().control {
            let file = self.tmp.path().join("control.toml");
            let node = self.coffer.config().node.clone().unwrap_or_default();
            std::fs::write(&file, format!("control = {url:?}\nnode = {node:?}\n")).unwrap();
            command.arg("--config").arg(file);
        }
        command
    }

    /// A second, independent `Coffer` on the same data root, as after a restart.
    pub fn reopen(&self) -> Coffer {
        Coffer::open(&self.data_dir(), self.coffer.config().clone()).unwrap()
    }

    /// What must hold after any test: staging empty and no pending writes in every vault,
    /// and an intact audit chain.
    pub fn check_invariants(&self) {
        let chain = self.coffer.audit().verify().unwrap();
        assert!(chain.broken.is_none(), "audit chain broken: {chain:?}");
        for t in self.coffer.control().local_tenants().unwrap() {
            let dir = self.vault_dir(&t);
            if t.state.is_gone() {
                // A purge that began may still be finishing; a finished one left nothing.
                if t.state == coffer::control::TenantState::Purged {
                    assert!(!dir.exists(), "{}: purged vault still on disk", t.id);
                }
                continue;
            }
            let staging: Vec<_> = std::fs::read_dir(dir.join(".staging"))
                .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(
                staging.is_empty(),
                "{}: staging not empty: {staging:?}",
                t.slug
            );
            let index = rusqlite::Connection::open_with_flags(
                dir.join("index.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            let pending: i64 = index
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM pending_writes) + (SELECT COUNT(*) FROM pending_events)",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(pending, 0, "{}: pending rows left behind", t.slug);
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if !self.skip_invariants && !std::thread::panicking() {
            self.check_invariants();
        }
    }
}

/// Every file and directory below `root` (not following symlinks) with its content hash
/// or kind, to compare before and after.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string();
        let ft = entry.file_type();
        let value = if ft.is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            format!("file:{}:{}", bytes.len(), sha256_hex(&bytes))
        } else if ft.is_dir() {
            "dir".to_owned()
        } else if ft.is_symlink() {
            format!(
                "link:{}",
                std::fs::read_link(entry.path()).unwrap().display()
            )
        } else {
            "special".to_owned()
        };
        out.insert(rel, value);
    }
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
