//! An opened data root: the audit log, the control plane and the vault store, wired
//! together. Both the CLI and the HTTP server start from a `Coffer`.
//!
//! This is where operations that span the control plane and a vault are ordered (a new
//! tenant is a control-plane row and a vault directory). It never bypasses either one.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cap_std::fs::{OpenOptions, OpenOptionsExt};

use crate::audit::{AuditAction, AuditLog, Caller};
use crate::config::Config;
use crate::control::{ControlError, ControlPlane, NewTenant, Tenant};
use crate::db;
use crate::vault::layout::{DataRoot, DataRootPath, LAYOUT_VERSION, SqliteFile};
use crate::vault::path::{TenantId, TenantSlug};
use crate::vault::{Vault, VaultError, VaultLimits, VaultStore};

#[derive(Debug, thiserror::Error)]
pub enum CofferError {
    #[error("{0} is not a Coffer data root (run `coffer init` first)")]
    NotInitialised(String),
    #[error(
        "data root layout version {found} is not supported by this build (expects {LAYOUT_VERSION})"
    )]
    LayoutVersion { found: u32 },
    #[error("data root I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RootMarker {
    layout_version: u32,
    created_at: String,
}

/// An opened data root.
#[derive(Clone)]
pub struct Coffer {
    pub root: Arc<DataRoot>,
    pub audit: AuditLog,
    pub control: ControlPlane,
    pub vaults: Arc<VaultStore>,
    pub config: Config,
}

impl Coffer {
    /// Creates a data root if absent (marker, secret, databases, `tenants/`) and opens
    /// it. Idempotent: returns whether anything was created.
    pub fn init(data_dir: &Path, config: Config) -> Result<(Coffer, bool), CofferError> {
        let root = DataRoot::open_ambient(data_dir, true)?;
        let marker = DataRootPath::Marker.path();
        let created = !root.dir().exists(&marker);
        if created {
            let text = serde_json::to_string_pretty(&RootMarker {
                layout_version: LAYOUT_VERSION,
                created_at: db::now(),
            })
            .map_err(std::io::Error::other)?;
            write_new_private(&root, &DataRootPath::Secret.path(), &random_secret_hex()?)?;
            write_new_private(&root, &marker, &text)?;
            crate::vault::dir::sync_dir(root.dir())?;
        }
        let coffer = Coffer::from_root(root, config)?;
        if created {
            coffer.audit.append(
                &Caller::new(crate::audit::Actor::Operator(None)).event(AuditAction::DataRootInit),
            )?;
        }
        Ok((coffer, created))
    }

    /// Opens an existing data root.
    pub fn open(data_dir: &Path, config: Config) -> Result<Coffer, CofferError> {
        if !data_dir.join(DataRootPath::Marker.path()).is_file() {
            return Err(CofferError::NotInitialised(data_dir.display().to_string()));
        }
        let root = DataRoot::open_ambient(data_dir, false)?;
        Coffer::from_root(root, config)
    }

    fn from_root(root: DataRoot, config: Config) -> Result<Coffer, CofferError> {
        let marker: RootMarker =
            serde_json::from_str(&root.dir().read_to_string(DataRootPath::Marker.path())?)
                .map_err(|e| {
                    CofferError::NotInitialised(format!("{} ({e})", root.ambient_path().display()))
                })?;
        if marker.layout_version != LAYOUT_VERSION {
            return Err(CofferError::LayoutVersion {
                found: marker.layout_version,
            });
        }
        let audit = AuditLog::open(&root.sqlite_path(SqliteFile::Audit))?;
        let control = ControlPlane::open(&root.sqlite_path(SqliteFile::Control), audit.clone())?;
        let root = Arc::new(root);
        let limits = VaultLimits {
            max_file_bytes: config.max_file_bytes,
            staging_grace: Duration::from_secs(config.staging_grace_secs),
            cache_capacity: config.vault_cache_capacity,
        };
        let vaults = Arc::new(VaultStore::new(root.clone(), audit.clone(), limits)?);
        Ok(Coffer {
            root,
            audit,
            control,
            vaults,
            config,
        })
    }

    /// The session-signing secret (created by `init`).
    pub fn secret(&self) -> Result<Vec<u8>, CofferError> {
        let text = self
            .root
            .dir()
            .read_to_string(DataRootPath::Secret.path())?;
        hex::decode(text.trim())
            .map_err(|e| std::io::Error::other(format!("secret.key: {e}")).into())
    }

    /// Creates a tenant: its control-plane row, then its vault. If the vault cannot be
    /// created the row is removed again, so no tenant exists without a vault.
    pub fn create_tenant(
        &self,
        caller: &Caller,
        slug: &TenantSlug,
        name: &str,
        quota_bytes: Option<u64>,
    ) -> Result<Tenant, CofferError> {
        let id = TenantId::generate();
        let tenant = self.control.create_tenant(
            caller,
            id,
            &NewTenant {
                slug,
                name,
                quota_bytes: quota_bytes.or(self.config.default_quota_bytes),
            },
        )?;
        if let Err(e) = self.vaults.create(id) {
            self.control.store().delete_tenant_row(id)?;
            return Err(e.into());
        }
        Ok(tenant)
    }

    /// The vault of a tenant, with the tenant's quota applied.
    pub fn vault(&self, tenant: &Tenant) -> Result<Arc<Vault>, CofferError> {
        let vault = self.vaults.open(tenant.id)?;
        vault.set_quota(tenant.quota_bytes);
        Ok(vault)
    }
}

/// 256 random bits, hex-encoded.
fn random_secret_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Writes a new file readable by the owner only (mode 0600), durably.
fn write_new_private(root: &DataRoot, name: &Path, text: &str) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = root.dir().open_with(name, &options)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
