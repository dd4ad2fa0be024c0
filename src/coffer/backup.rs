//! Backups (P12): `coffer backup`, `--verify`, `coffer restore`, rotation, and removing a
//! purged tenant from every set.
//!
//! A backup set is a directory `coffer-backup-<time>` under a backup root (the config's
//! `backup_dir`, `--to DIR`, or `<data-root>/backups`), holding a data root's worth of
//! files: `control.db` first (SQLite `VACUUM INTO`, one moment), then every vault listed in
//! that copy (each as of one moment, through the vault layer, unchanged files hard-linked
//! from the previous set), then `audit.db` (last, so every change in the set has its
//! event), the keys and the marker, and `BACKUP.json` at the very end: a set without it is
//! incomplete and never used. Every root ever written is remembered in the control plane,
//! so rotation (`backup_retention_days`) and purges reach every set.
//!
//! A backup and a purge's removal from the backups exclude each other (the `backups`
//! lease), so no set can be written with a tenant whose purge has already cleared the
//! sets. A root carries a `COFFER-BACKUPS` marker: a registered root that cannot be
//! opened, or lacks its marker (an unmounted disk shows its empty mount point), fails the
//! purge step, which the lifecycle pass retries; a purge never issues its receipt while a
//! copy may survive somewhere it could not look.

use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use super::{Coffer, CofferError};
use crate::audit::{AuditAction, AuditLog, Caller};
use crate::control::ControlPlane;
use crate::names::TenantId;
use crate::vault::backup::{SnapshotStats, SnapshotTarget};
use crate::vault::dir::sync_dir;
use crate::vault::layout::{DataRoot, DataRootPath};

/// The name prefix of a backup set directory.
const SET_PREFIX: &str = "coffer-backup-";
/// The manifest that marks a set complete.
pub const MANIFEST: &str = "BACKUP.json";
/// The marker of a backup root (written when the root is first used).
const ROOT_MARKER: &str = "COFFER-BACKUPS";
/// The lease that a backup and a purge's removal from the backups share.
const BACKUP_LEASE: &str = "backups";
/// How long a backup may hold the lease (a holder that died on this host frees it at
/// once; see `ControlPlane::take_lease`).
const BACKUP_LEASE_TTL: time::Duration = time::Duration::hours(24);

/// `BACKUP.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupManifest {
    pub kind: String,
    pub version: u32,
    pub created_at: String,
    pub tenants: Vec<BackupTenant>,
    /// Tenants purged after this set was made: their data was removed from it.
    #[serde(default)]
    pub purged_tenants: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupTenant {
    pub id: String,
    pub files: u64,
    pub bytes: u64,
    pub trash_items: u64,
}

/// What `coffer backup` did.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub set: PathBuf,
    pub created_at: String,
    pub tenants: usize,
    pub files: u64,
    pub bytes: u64,
    /// Files and trash items hard-linked from the previous set (no new space).
    pub linked: u64,
    pub copied_bytes: u64,
    /// Sets removed by rotation afterwards.
    pub rotated: Vec<PathBuf>,
}

impl Coffer {
    /// The backup root used when none is given.
    pub fn default_backup_root(&self) -> PathBuf {
        self.config
            .backup_dir
            .clone()
            .unwrap_or_else(|| self.root.ambient_path().join("backups"))
    }

    /// Writes a backup set under `root` (default: `default_backup_root`), then rotates.
    pub fn backup(&self, root: Option<&Path>) -> Result<BackupReport, CofferError> {
        self.with_backup_lease("a backup is already being written", || {
            self.write_backup_set(root)
        })
    }

    /// Runs `work` holding the backups lease, or answers `Busy` with `busy` when another
    /// process holds it.
    fn with_backup_lease<T>(
        &self,
        busy: &str,
        work: impl FnOnce() -> Result<T, CofferError>,
    ) -> Result<T, CofferError> {
        let holder = crate::control::lease_holder();
        if !self
            .control
            .take_lease(BACKUP_LEASE, &holder, BACKUP_LEASE_TTL)?
        {
            return Err(CofferError::Busy(busy.to_owned()));
        }
        let result = work();
        let released = self.control.release_lease(BACKUP_LEASE, &holder);
        let out = result?;
        released?;
        Ok(out)
    }

    fn write_backup_set(&self, root: Option<&Path>) -> Result<BackupReport, CofferError> {
        let root_path =
            absolute(root.map_or_else(|| self.default_backup_root(), Path::to_path_buf))?;
        let root_dir = open_or_create(&root_path)?;
        self.control
            .register_backup_root(&root_path.to_string_lossy())?;
        let created_at = crate::clock::stamp(self.clock.as_ref());
        let previous = newest_complete_set(&root_dir)?;
        let name = unused_set_name(&root_dir, &created_at);
        root_dir.create_dir(&name)?;
        let set = root_dir.open_dir(&name)?;
        let set_path = root_path.join(&name);

        self.control.snapshot_into(&set_path.join("control.db"))?;
        let copy = ControlPlane::open(
            &set_path.join("control.db"),
            AuditLog::open_in_memory()?,
            self.clock.clone(),
        )?;
        set.create_dir(DataRootPath::TenantsDir.path())?;
        let tenants_dir = set.open_dir(DataRootPath::TenantsDir.path())?;
        let previous_tenants = previous
            .as_ref()
            .and_then(|p| root_dir.open_dir(p).ok())
            .and_then(|d| d.open_dir("tenants").ok());
        let mut report = BackupReport {
            set: set_path.clone(),
            created_at: created_at.clone(),
            tenants: 0,
            files: 0,
            bytes: 0,
            linked: 0,
            copied_bytes: 0,
            rotated: Vec::new(),
        };
        let mut manifest = BackupManifest {
            kind: "coffer-backup".into(),
            version: 1,
            created_at: created_at.clone(),
            tenants: Vec::new(),
            purged_tenants: Vec::new(),
        };
        // This node's tenants (the copy of a shared control plane names every node's).
        let here: std::collections::HashSet<TenantId> =
            self.control.local_tenants()?.iter().map(|t| t.id).collect();
        for tenant in copy
            .tenants()?
            .into_iter()
            .filter(|t| !t.state.is_gone() && here.contains(&t.id))
        {
            let previous_set = previous.as_ref().map(|p| root_path.join(p));
            let stats = self.back_up_vault(
                tenant.id,
                &tenants_dir,
                &set_path,
                previous_tenants.as_ref(),
                previous_set.as_deref(),
            )?;
            report.tenants += 1;
            report.files += stats.files;
            report.bytes += stats.bytes;
            report.linked += stats.linked;
            report.copied_bytes += stats.copied_bytes;
            manifest.tenants.push(BackupTenant {
                id: tenant.id.to_string(),
                files: stats.files,
                bytes: stats.bytes,
                trash_items: stats.trash_items,
            });
        }
        drop(copy);
        self.audit.snapshot_into(&set_path.join("audit.db"))?;
        for file in [
            DataRootPath::Marker,
            DataRootPath::Secret,
            DataRootPath::SigningKey,
        ] {
            let name = file.path();
            self.root.dir().copy(&name, &set, &name)?;
        }
        write_manifest(&set, &manifest)?;
        sync_dir(&root_dir)?;
        self.audit
            .append(&Caller::system().event(AuditAction::BackupCreate).detail(
                serde_json::json!({
            "set": name, "tenants": report.tenants, "files": report.files, "bytes": report.bytes,
            "linked": report.linked, "copied_bytes": report.copied_bytes }),
            ))?;
        report.rotated = self.rotate_backups()?;
        Ok(report)
    }

    /// Copies one vault into the set at `set_path` (its `tenants/` open as `tenants_dir`),
    /// as of one moment, hard-linking files unchanged since the previous set.
    fn back_up_vault(
        &self,
        tenant: TenantId,
        tenants_dir: &Dir,
        set_path: &Path,
        previous_tenants: Option<&Dir>,
        previous_set: Option<&Path>,
    ) -> Result<SnapshotStats, CofferError> {
        let id = tenant.to_string();
        tenants_dir.create_dir(&id)?;
        let out = tenants_dir.open_dir(&id)?;
        let previous_dir = previous_tenants.and_then(|d| d.open_dir(&id).ok());
        let previous_index = previous_set.map(|p| p.join("tenants").join(&id).join("index.db"));
        Ok(self
            .vaults
            .open_transient(tenant)?
            .snapshot_into(&SnapshotTarget {
                dir: &out,
                ambient: &set_path.join("tenants").join(&id),
                previous: previous_dir.as_ref(),
                previous_index: previous_index.as_deref(),
            })?)
    }

    /// When the newest complete set (in every root ever used) was made, RFC 3339.
    pub fn newest_backup(&self) -> Result<Option<String>, CofferError> {
        let mut newest = None;
        for (_, root) in self.backup_roots()? {
            for name in set_names(&root)? {
                if let Ok(manifest) = read_manifest(&root, &name) {
                    newest = newest.max(Some(manifest.created_at));
                }
            }
        }
        Ok(newest)
    }

    /// Removes every set (in every root ever used) older than `backup_retention_days`,
    /// and incomplete sets more than a day old (a backup that died).
    pub fn rotate_backups(&self) -> Result<Vec<PathBuf>, CofferError> {
        let now = self.clock.now();
        let keep_after = crate::db::timestamp(
            now - time::Duration::days(i64::from(self.config.backup_retention_days)),
        );
        let debris_before = compact(&crate::db::timestamp(now - time::Duration::days(1)));
        let mut removed = Vec::new();
        for (root_path, root) in self.backup_roots()? {
            for name in set_names(&root)? {
                let expired = match read_manifest(&root, &name) {
                    Ok(m) => m.created_at < keep_after,
                    Err(_) => set_time(&name).is_some_and(|t| t < debris_before),
                };
                if expired {
                    // Several nodes share the backup root: another may have removed it.
                    match root.remove_dir_all(&name) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        other => other?,
                    }
                    removed.push(root_path.join(&name));
                    self.audit.append(
                        &Caller::system()
                            .event(AuditAction::BackupRemove)
                            .detail(serde_json::json!({ "set": name })),
                    )?;
                }
            }
            sync_dir(&root)?;
        }
        Ok(removed)
    }

    /// A purge's step: removes a tenant from every backup set (its vault copy, its rows in
    /// the set's control plane, its names in the set's audit log), incomplete sets
    /// included. Returns how many complete sets held it. Idempotent. Fails (and the purge
    /// waits) while a backup is being written or a registered root is unreachable.
    pub(crate) fn forget_tenant_in_backups(&self, tenant: TenantId) -> Result<usize, CofferError> {
        self.with_backup_lease(
            "a backup is being written; the purge removes the tenant from it afterwards",
            || {
                let mut sets = 0;
                for (root_path, root) in self.backup_roots()? {
                    for name in set_names(&root)? {
                        if self.forget_tenant_in_set(tenant, &root_path, &root, &name)? {
                            sets += 1;
                        }
                    }
                }
                Ok(sets)
            },
        )
    }

    /// Removes `tenant` from the set `name`; whether the set is complete and lists the
    /// tenant as purged (also when an interrupted purge already cleared it).
    fn forget_tenant_in_set(
        &self,
        tenant: TenantId,
        root_path: &Path,
        root: &Dir,
        name: &str,
    ) -> Result<bool, CofferError> {
        let id = tenant.to_string();
        let set = root.open_dir(name)?;
        if let Ok(tenants) = set.open_dir("tenants")
            && tenants.symlink_metadata(&id).is_ok()
        {
            tenants.remove_dir_all(&id)?;
            sync_dir(&tenants)?;
        }
        // An incomplete set (a backup that died) may lack either database.
        let set_path = root_path.join(name);
        if set.is_file("control.db") {
            ControlPlane::open(
                &set_path.join("control.db"),
                AuditLog::open_in_memory()?,
                self.clock.clone(),
            )?
            .erase_tenant_copy(tenant)?;
        }
        if set.is_file("audit.db") {
            AuditLog::open(&set_path.join("audit.db"), self.clock.clone())?
                .redact_tenant_targets(tenant)?;
        }
        let Ok(mut manifest) = read_manifest(root, name) else {
            return Ok(false);
        };
        if manifest.tenants.iter().any(|t| t.id == id) {
            manifest.tenants.retain(|t| t.id != id);
            manifest.purged_tenants.push(id.clone());
            write_manifest(&set, &manifest)?;
        }
        Ok(manifest.purged_tenants.contains(&id))
    }

    /// Every backup root ever written to, opened. A root that cannot be opened or has
    /// lost its marker is an error: a copy could survive there unseen.
    fn backup_roots(&self) -> Result<Vec<(PathBuf, Dir)>, CofferError> {
        let mut roots = Vec::new();
        for path in self.control.backup_roots()? {
            let path = PathBuf::from(path);
            let unreachable = |why: String| {
                CofferError::Busy(format!(
                    "backup root {} is unreachable ({why}); it must be reachable before a purge can finish",
                    path.display()
                ))
            };
            let root =
                DataRoot::open_ambient(&path, false).map_err(|e| unreachable(e.to_string()))?;
            if !root.dir().is_file(ROOT_MARKER) {
                return Err(unreachable("its COFFER-BACKUPS marker is missing".into()));
            }
            roots.push((path, root.dir().try_clone()?));
        }
        Ok(roots)
    }
}

fn absolute(path: PathBuf) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

/// Opens a backup root, creating it (mode 0700) and its marker if absent.
fn open_or_create(path: &Path) -> std::io::Result<Dir> {
    let dir = DataRoot::open_ambient(path, true)?.dir().try_clone()?;
    if !dir.is_file(ROOT_MARKER) {
        let mut options = cap_std::fs::OpenOptions::new();
        cap_std::fs::OpenOptionsExt::mode(options.write(true).create(true), 0o600);
        let mut marker = dir.open_with(ROOT_MARKER, &options)?;
        std::io::Write::write_all(
            &mut marker,
            b"A Coffer backup root: sets of coffer-backup-<time>/ (see the README, Backups).\n",
        )?;
        marker.sync_all()?;
        sync_dir(&dir)?;
    }
    Ok(dir)
}

fn set_names(root: &Dir) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = root
        .entries()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(SET_PREFIX))
        .collect();
    names.sort();
    Ok(names)
}

/// A timestamp without its colons, as set names carry it.
fn compact(stamp: &str) -> String {
    stamp.replace(':', "")
}

/// The (compact) time in a set's name (`coffer-backup-<stamp>[-n]`).
fn set_time(name: &str) -> Option<String> {
    let rest = name.strip_prefix(SET_PREFIX)?;
    Some(
        rest.split_once("Z-")
            .map_or(rest.to_owned(), |(t, _)| format!("{t}Z")),
    )
}

fn unused_set_name(root: &Dir, created_at: &str) -> String {
    let base = format!("{SET_PREFIX}{}", compact(created_at));
    let mut name = base.clone();
    let mut n = 1;
    while root.symlink_metadata(&name).is_ok() {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

fn newest_complete_set(root: &Dir) -> std::io::Result<Option<String>> {
    Ok(set_names(root)?
        .into_iter()
        .rev()
        .find(|n| read_manifest(root, n).is_ok()))
}

pub fn read_manifest(root: &Dir, set: &str) -> std::io::Result<BackupManifest> {
    let text = root.read_to_string(Path::new(set).join(MANIFEST))?;
    serde_json::from_str(&text).map_err(std::io::Error::other)
}

/// Writes `BACKUP.json` durably (a new file renamed over the old).
fn write_manifest(set: &Dir, manifest: &BackupManifest) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(manifest).map_err(std::io::Error::other)?;
    let temp = format!("{MANIFEST}.new");
    let mut file = set.create(&temp)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()?;
    set.rename(&temp, set, MANIFEST)?;
    sync_dir(set)
}
