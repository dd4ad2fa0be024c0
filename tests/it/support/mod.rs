//! Test support: a fresh data root in a temporary directory with ready tenants, and
//! helpers to look at the disk the way an attacker or an auditor would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer::audit::{Actor, Caller};
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::Tenant;
use coffer::vault::Vault;
use coffer::vault::path::TenantSlug;

pub mod zipgen;

/// A data root with two tenants, `alpha` and `bravo`, inside a temp dir that also holds a
/// `outside/` canary directory next to the data root.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub coffer: Coffer,
    pub alpha: Tenant,
    pub bravo: Tenant,
}

pub fn operator() -> Caller {
    Caller::new(Actor::Operator(Some("test".into())))
}

impl World {
    pub fn new() -> World {
        World::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> World {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/secret.txt"), b"outside secret").unwrap();
        let (coffer, created) = Coffer::init(&tmp.path().join("data"), config).unwrap();
        assert!(created);
        let op = operator();
        let alpha = coffer
            .create_tenant(&op, &TenantSlug::parse("alpha").unwrap(), "Alpha", None)
            .unwrap();
        let bravo = coffer
            .create_tenant(&op, &TenantSlug::parse("bravo").unwrap(), "Bravo", None)
            .unwrap();
        World {
            tmp,
            coffer,
            alpha,
            bravo,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn vault(&self, t: &Tenant) -> Arc<Vault> {
        self.coffer.vault(t).unwrap()
    }

    /// The host path of a tenant's vault directory (for planting things "with disk access").
    pub fn vault_dir(&self, t: &Tenant) -> PathBuf {
        self.data_dir().join("tenants").join(t.id.to_string())
    }

    /// A second, independent `Coffer` on the same data root, as after a restart.
    pub fn reopen(&self) -> Coffer {
        Coffer::open(&self.data_dir(), self.coffer.config.clone()).unwrap()
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
