//! An opened data root, and the home of every operation that spans its parts.
//!
//! `Coffer` wires the audit log, the control plane, the vault store and `Auth` together
//! and keeps them private: callers get the control plane's rule-checked API, `Auth` (the
//! only maker of `TenantAccess`), and the cross-part operations below, each written once
//! and used by the CLI, the HTTP API and the demo alike: creating a tenant with its owner
//! (vault and rows, or nothing), sign-up, and the export runner that owns its audit
//! events. It never bypasses a part's own rules.

mod audit;
mod backup;
mod lifecycle;
pub mod moving;
mod purge;
mod recover;
mod restore;
pub use recover::RecoverReport;
mod usage;

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use cap_std::fs::{OpenOptions, OpenOptionsExt};

use crate::audit::{AuditAction, AuditError, AuditLog, Caller, Outcome};
use crate::auth::mailer::{Mailer, OutboxMailer};
use crate::auth::{Auth, AuthError, AuthParts, NewSession, TenantAccess, password};
use crate::clock::{self, SharedClock};
use crate::config::Config;
use crate::control::{ControlError, ControlPlane, NewTenant, NewUser, Tenant, TenantOwner};
use crate::export::import::{ConflictPolicy, ImportError, ImportReport};
use crate::export::{ExportError, ExportOptions, Manifest, Snapshot};
use crate::names::{Email, TenantId, TenantSlug};
use crate::signing::SigningKey;
use crate::vault::layout::{DataRoot, DataRootPath, LAYOUT_VERSION, SqliteFile};
use crate::vault::{VaultError, VaultStore};
pub use backup::{BackupManifest, BackupReport, BackupTenant};
pub use lifecycle::{LifecycleReport, OperatorStep};
pub use purge::PurgeStep;
pub use restore::{BackupCheck, RestoreReport, restore_backup, verify_backup};
pub use usage::UsageReport;

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
    Audit(#[from] AuditError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("sign-up is disabled on this server")]
    SignupDisabled,
    /// Another process holds the work's lease (a purge of the same tenant, a backup being
    /// written); the step is safe to retry, and the lifecycle pass does.
    #[error("{0}; try again shortly")]
    Busy(String),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RootMarker {
    layout_version: u32,
    created_at: String,
}

/// An opened data root.
#[derive(Clone)]
pub struct Coffer {
    root: Arc<DataRoot>,
    audit: AuditLog,
    control: ControlPlane,
    vaults: Arc<VaultStore>,
    auth: Arc<Auth>,
    config: Config,
    clock: SharedClock,
    signing: Arc<SigningKey>,
    /// The keys of node tokens, read from the control plane once (see `moving`).
    node_keys: Arc<std::sync::OnceLock<moving::token::NodeKeys>>,
}

impl Coffer {
    /// Creates a data root if absent (marker, secret, databases, `tenants/`) and opens
    /// it. Idempotent: returns whether anything was created.
    pub fn init(data_dir: &Path, config: Config) -> Result<(Coffer, bool), CofferError> {
        Coffer::init_with_clock(data_dir, config, clock::system())
    }

    pub fn init_with_clock(
        data_dir: &Path,
        config: Config,
        clock: SharedClock,
    ) -> Result<(Coffer, bool), CofferError> {
        let root = DataRoot::open_ambient(data_dir, true)?;
        let marker = DataRootPath::Marker.path();
        let created = !root.dir().exists(&marker);
        if created {
            let text = serde_json::to_string_pretty(&RootMarker {
                layout_version: LAYOUT_VERSION,
                created_at: clock::stamp(clock.as_ref()),
            })
            .map_err(std::io::Error::other)?;
            write_new_private(&root, &DataRootPath::Secret.path(), &random_secret_hex()?)?;
            write_new_private(&root, &marker, &text)?;
            crate::vault::dir::sync_dir(root.dir())?;
        }
        let coffer = Coffer::from_root(root, config, clock)?;
        if created {
            coffer.audit.append(
                &Caller::new(crate::audit::Actor::Operator(None)).event(AuditAction::DataRootInit),
            )?;
        }
        Ok((coffer, created))
    }

    /// Opens an existing data root.
    pub fn open(data_dir: &Path, config: Config) -> Result<Coffer, CofferError> {
        Coffer::open_with_clock(data_dir, config, clock::system())
    }

    pub fn open_with_clock(
        data_dir: &Path,
        config: Config,
        clock: SharedClock,
    ) -> Result<Coffer, CofferError> {
        if !data_dir.join(DataRootPath::Marker.path()).is_file() {
            return Err(CofferError::NotInitialised(data_dir.display().to_string()));
        }
        let root = DataRoot::open_ambient(data_dir, false)?;
        Coffer::from_root(root, config, clock)
    }

    fn from_root(
        root: DataRoot,
        config: Config,
        clock: SharedClock,
    ) -> Result<Coffer, CofferError> {
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
        let (control, audit) = match &config.control {
            Some(url) => {
                let node = config.node.as_deref().ok_or_else(|| {
                    std::io::Error::other(
                        "a PostgreSQL control plane needs node in the configuration",
                    )
                })?;
                ControlPlane::open_postgres(
                    url,
                    config.control_ca_file.as_deref(),
                    Some(node),
                    clock.clone(),
                )?
            }
            None => {
                root.create_private_database(SqliteFile::Audit)?;
                let audit = AuditLog::open(&root.sqlite_path(SqliteFile::Audit), clock.clone())?;
                root.create_private_database(SqliteFile::Control)?;
                let control = ControlPlane::open(
                    &root.sqlite_path(SqliteFile::Control),
                    audit.clone(),
                    clock.clone(),
                )?;
                (control, audit)
            }
        };
        let root = Arc::new(root);
        let vaults = Arc::new(VaultStore::new(
            root.clone(),
            audit.clone(),
            clock.clone(),
            config.vault_limits(),
        )?);
        // Sessions must verify on every node sharing a control plane: its secret, if it
        // has one (PostgreSQL), else this data root's.
        let secret = match control.shared_secret("session", &random_secret_hex()?)? {
            Some(hex) => hex::decode(hex.trim())
                .map_err(|e| std::io::Error::other(format!("shared session secret: {e}")))?,
            None => read_secret(&root)?,
        };
        // Checkpoints of a shared audit chain must verify on every node: the cluster's
        // key, if the control plane keeps one (PostgreSQL), else this data root's (which
        // every root has, and backups carry).
        let own_key = signing_key(&root)?;
        let signing =
            match control.shared_secret("signing", &hex::encode(SigningKey::generate_pkcs8()?))? {
                Some(hex) => SigningKey::from_pkcs8(
                    &hex::decode(hex.trim())
                        .map_err(|e| std::io::Error::other(format!("shared signing key: {e}")))?,
                )?,
                None => own_key,
            };
        let signing = Arc::new(signing);
        let mailer: Arc<dyn Mailer> = Arc::new(OutboxMailer::new(root.clone()));
        let auth = Arc::new(Auth::new(AuthParts {
            control: control.clone(),
            vaults: vaults.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            secret,
            mailer,
            session_ttl_secs: i64::from(config.session_days) * 24 * 3600,
            public_url: config.public_url.clone(),
        })?);
        Ok(Coffer {
            root,
            audit,
            control,
            vaults,
            auth,
            config,
            clock,
            signing,
            node_keys: Arc::default(),
        })
    }

    /// How long a cancelled tenant stays before its purge.
    pub fn purge_grace(&self) -> time::Duration {
        time::Duration::days(i64::from(self.config.purge_grace_days))
    }

    /// The key that signs receipts and checkpoints.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    /// The control plane's rule-checked operations.
    pub fn control(&self) -> &ControlPlane {
        &self.control
    }

    /// The audit log (reads, verification).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The host path of the data root (for operator messages).
    pub fn data_root_path(&self) -> &Path {
        self.root.ambient_path()
    }

    /// How many vaults are open in the cache now.
    pub fn open_vaults(&self) -> usize {
        self.vaults.open_count()
    }

    /// The vault store, for tests that must hold a vault open in progress. Only with the
    /// `test-hooks` feature: production code reaches vaults through `TenantAccess` only.
    #[cfg(feature = "test-hooks")]
    pub fn vault_store_unchecked(&self) -> &VaultStore {
        &self.vaults
    }

    /// Whether the databases answer (readiness).
    pub fn check_ready(&self) -> Result<(), CofferError> {
        self.control.tenants()?;
        self.audit.last_seq()?;
        Ok(())
    }

    /// Creates a tenant with its vault and (optionally) its owner: the vault directory
    /// first, then every control-plane row in one transaction. If the rows cannot be
    /// written, the vault is removed again and that removal is audited; a crash between
    /// the two leaves only an unregistered vault directory, which the isolation audit
    /// reports and nobody can reach.
    pub fn create_tenant(&self, caller: &Caller, new: NewTenant) -> Result<Tenant, CofferError> {
        let new = NewTenant {
            quota_bytes: new.quota_bytes.or(self.config.default_quota_bytes),
            ..new
        };
        if self.control.tenant_by_slug(&new.slug)?.is_some() {
            return Err(ControlError::SlugTaken.into());
        }
        let id = TenantId::generate();
        self.vaults.create(id)?;
        match self.control.create_tenant(caller, id, &new) {
            Ok((tenant, _owner)) => Ok(tenant),
            Err(e) => {
                // The compensation (the new, empty vault goes) is audited with the failure.
                // Neither may hide the original error; what cannot be recorded is logged.
                let removed = self.vaults.remove_unregistered(id);
                if let Err(why) = &removed {
                    tracing::error!(tenant = %id, error = %why, "the vault of a failed tenant creation could not be removed");
                }
                let failure = caller
                    .event(AuditAction::TenantCreate)
                    .target(new.slug.as_str())
                    .outcome(Outcome::Failure)
                    .detail(serde_json::json!({
                        "reason": e.to_string(), "tenant": id.to_string(),
                        "vault_removed": removed.is_ok() }));
                if let Err(why) = self.audit.append(&failure) {
                    tracing::warn!(tenant = %id, error = %why, "a failed tenant creation could not be audited");
                }
                Err(e.into())
            }
        }
    }

    /// Sign-up: a new user, a tenant they own (both in one step), then a session.
    #[allow(clippy::too_many_arguments)]
    pub fn signup(
        &self,
        email: &str,
        name: &str,
        password_text: &str,
        slug: &str,
        tenant_name: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(NewSession, Tenant), CofferError> {
        if !self.config.signup_enabled {
            return Err(CofferError::SignupDisabled);
        }
        let invalid = |e: crate::names::NameError| AuthError::Invalid(e.to_string());
        let email = Email::parse(email).map_err(invalid)?;
        let slug = TenantSlug::parse(slug).map_err(invalid)?;
        let name = crate::names::display_name(name).map_err(invalid)?;
        let tenant_name = crate::names::display_name(tenant_name).map_err(invalid)?;
        self.auth.count_signup(ip)?;
        let hash = password::hash(password_text).map_err(AuthError::from)?;
        let caller = Caller::new(crate::audit::Actor::Anonymous).with_ip(ip.map(str::to_owned));
        let tenant = self.create_tenant(
            &caller,
            NewTenant {
                slug,
                name: tenant_name,
                // Self-service tenants always have a quota: anyone may sign up.
                quota_bytes: Some(
                    self.config
                        .default_quota_bytes
                        .unwrap_or(self.config.signup_quota_bytes),
                ),
                owner: Some(TenantOwner::New(NewUser {
                    email: email.clone(),
                    name,
                    password_hash: Some(hash),
                    is_operator: false,
                })),
            },
        )?;
        let user = self
            .control
            .user_by_email(&email)?
            .ok_or(ControlError::NotFound)?;
        let as_user = Auth::user_caller(user.id, ip);
        let session = self.auth.start_session(&as_user, user, ip, user_agent)?;
        Ok((session, tenant))
    }

    /// A snapshot of what an export of the tenant contains now (or at an earlier audit
    /// cursor).
    pub fn snapshot(
        &self,
        access: &TenantAccess,
        audit_until_seq: Option<i64>,
    ) -> Result<Snapshot, ExportError> {
        Snapshot::take(
            access.vault(),
            access.tenant(),
            &self.audit,
            audit_until_seq,
        )
    }

    /// The size of the archive `snapshot` names, by a dry run of the same deterministic
    /// archive into a counter. It delivers nothing, so it is not an export to audit.
    pub fn archive_size(
        &self,
        access: &TenantAccess,
        snapshot: &Snapshot,
        stored: bool,
    ) -> Result<u64, ExportError> {
        let mut sink = crate::export::CountingSink::default();
        let options = ExportOptions {
            strict: true,
            stored,
            progress: None,
        };
        crate::export::write_archive(snapshot, access.vault(), &self.audit, &mut sink, options)?;
        Ok(sink.bytes())
    }

    /// Runs an export into `sink`, with its audit events: `export.start` before the first
    /// byte (no export without it), `export.finish` with the outcome after the last. If
    /// the finish event cannot be written, the export fails too, so no delivered archive
    /// goes unrecorded. `offset` is where a resumed download starts (for the record).
    pub fn export<W: Write>(
        &self,
        access: &TenantAccess,
        snapshot: &Snapshot,
        sink: W,
        options: ExportOptions<'_>,
        offset: u64,
    ) -> Result<Manifest, ExportError> {
        let tenant = access.tenant().id;
        self.audit.append(
            &access
                .caller()
                .event(AuditAction::ExportStart)
                .tenant(tenant)
                .detail(
                    serde_json::json!({ "audit_until_seq": snapshot.audit_until_seq,
                    "offset": offset }),
                ),
        )?;
        let result =
            crate::export::write_archive(snapshot, access.vault(), &self.audit, sink, options);
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let finish = access
            .caller()
            .event(AuditAction::ExportFinish)
            .tenant(tenant)
            .outcome(outcome);
        let recorded = self.audit.append(&finish);
        let manifest = result?;
        recorded?;
        Ok(manifest)
    }

    /// Imports an archive into the tenant's vault (the event is the vault's own).
    pub fn import<R: Read + Seek>(
        &self,
        access: &TenantAccess,
        reader: R,
        policy: ConflictPolicy,
    ) -> Result<ImportReport, ImportError> {
        crate::export::import::import_archive(
            access.vault(),
            access.caller(),
            reader,
            &self.config.import_limits(),
            policy,
        )
    }
}

/// 256 random bits, hex-encoded.
fn random_secret_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// The session-signing secret (created by `init`).
fn read_secret(root: &DataRoot) -> Result<Vec<u8>, CofferError> {
    let text = root.dir().read_to_string(DataRootPath::Secret.path())?;
    hex::decode(text.trim()).map_err(|e| std::io::Error::other(format!("secret.key: {e}")).into())
}

/// The server's signing key, made on first use (data roots from before it existed get
/// theirs on the next open).
fn signing_key(root: &DataRoot) -> Result<SigningKey, CofferError> {
    let path = DataRootPath::SigningKey.path();
    if !root.dir().exists(&path) {
        let created = write_new_private(root, &path, &hex::encode(SigningKey::generate_pkcs8()?));
        match created {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {} // another process won
            other => other?,
        }
        crate::vault::dir::sync_dir(root.dir())?;
    }
    let text = root.dir().read_to_string(&path)?;
    let der =
        hex::decode(text.trim()).map_err(|e| std::io::Error::other(format!("signing.key: {e}")))?;
    Ok(SigningKey::from_pkcs8(&der)?)
}

/// Writes a new file readable by the owner only (mode 0600), durably.
fn write_new_private(root: &DataRoot, name: &Path, text: &str) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = root.dir().open_with(name, &options)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
