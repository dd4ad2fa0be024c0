//! Checking and restoring backup sets (see `backup`): `coffer backup --verify DIR` reads a
//! set without changing it; `coffer restore FROM-DIR` copies it into a new data root and
//! proves the result opens, its vaults open and its audit chain verifies.

use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use serde::Serialize;

use super::backup::{BackupManifest, MANIFEST};
use super::{Coffer, CofferError};
use crate::audit::{AuditAction, AuditLog, Caller};
use crate::config::Config;
use crate::names::TenantId;
use crate::vault::index::{EntryKind, Index};
use crate::vault::layout::{DataRoot, DataRootPath, VaultEntry};

/// Opens an existing directory of a backup set (read only in effect: nothing here writes).
fn open_dir(path: &Path) -> std::io::Result<Dir> {
    DataRoot::open_ambient(path, false)?.dir().try_clone()
}

/// What `coffer backup --verify` found.
#[derive(Debug, Default, Serialize)]
pub struct BackupCheck {
    pub created_at: String,
    pub tenants: usize,
    pub files: u64,
    pub bytes: u64,
    pub audit_events: u64,
    /// Everything wrong, one line each; empty when the set is sound.
    pub problems: Vec<String>,
}

/// Reads a whole set: the manifest, both databases' integrity, the audit chain, and every
/// vault's index, files (size and SHA-256) and trash items. Changes nothing.
pub fn verify_backup(set_path: &Path) -> Result<BackupCheck, CofferError> {
    let set = open_dir(set_path)?;
    let manifest: BackupManifest = serde_json::from_str(&set.read_to_string(MANIFEST)?)
        .map_err(|e| std::io::Error::other(format!("{MANIFEST}: {e}")))?;
    let mut check = BackupCheck {
        created_at: manifest.created_at.clone(),
        tenants: manifest.tenants.len(),
        ..Default::default()
    };
    for file in [
        DataRootPath::Marker,
        DataRootPath::Secret,
        DataRootPath::SigningKey,
    ] {
        if !set.is_file(file.path()) {
            check
                .problems
                .push(format!("{} is missing", file.path().display()));
        }
    }
    for db in ["control.db", "audit.db"] {
        match crate::db::open_read_only(&set_path.join(db))
            .and_then(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))?))
        {
            Ok(ok) if ok == "ok" => {}
            Ok(bad) => check.problems.push(format!("{db}: {bad}")),
            Err(e) => check.problems.push(format!("{db}: {e}")),
        }
    }
    match AuditLog::open_read_only(&set_path.join("audit.db")).and_then(|a| a.verify()) {
        Ok(chain) => {
            check.audit_events = chain.events;
            if let Some((seq, why)) = chain.broken {
                check
                    .problems
                    .push(format!("audit chain broken at {seq}: {why}"));
            }
        }
        Err(e) => check.problems.push(format!("audit.db: {e}")),
    }
    for tenant in &manifest.tenants {
        let dir = set_path.join("tenants").join(&tenant.id);
        if let Err(e) = verify_vault_copy(&dir, &mut check) {
            check.problems.push(format!("tenant {}: {e}", tenant.id));
        }
    }
    Ok(check)
}

pub(super) fn verify_vault_copy(dir: &Path, check: &mut BackupCheck) -> Result<(), CofferError> {
    let vault = open_dir(dir)?;
    if !vault.is_file(VaultEntry::Marker.path()) {
        check
            .problems
            .push(format!("{}: no VAULT marker", dir.display()));
    }
    let index = Index::open_read_only(&dir.join(VaultEntry::IndexDb.path()))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let integrity = index
        .integrity_check()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if integrity != "ok" {
        check
            .problems
            .push(format!("{}: index: {integrity}", dir.display()));
    }
    let files = vault.open_dir(VaultEntry::FilesDir.path())?;
    for entry in index
        .all_entries()
        .map_err(|e| std::io::Error::other(e.to_string()))?
    {
        if entry.kind == EntryKind::Dir {
            continue;
        }
        check.files += 1;
        check.bytes += entry.size;
        let found = files
            .open(&entry.path)
            .and_then(|mut f| crate::vault::sha256_of(&mut f))
            .map(|(hash, n)| (n, hash));
        match found {
            Ok((n, hash)) if n == entry.size && Some(&hash) == entry.sha256.as_ref() => {}
            Ok(_) => check.problems.push(format!(
                "{}: {} differs from its index",
                dir.display(),
                entry.path
            )),
            Err(e) => check
                .problems
                .push(format!("{}: {}: {e}", dir.display(), entry.path)),
        }
    }
    let trash = vault.open_dir(VaultEntry::TrashDir.path())?;
    for item in index
        .trash_list()
        .map_err(|e| std::io::Error::other(e.to_string()))?
    {
        if trash.symlink_metadata(&item.id).is_err() {
            check
                .problems
                .push(format!("{}: trash item {} missing", dir.display(), item.id));
        }
    }
    Ok(())
}

/// What `coffer restore` did.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    pub tenants: usize,
    pub files: u64,
    pub audit_events: u64,
}

/// Restores the set at `set_path` into `data_dir`, which must not exist yet (or be
/// empty): the set is verified first, copied (never linked: the restored root owes the
/// backup nothing), then opened with every vault and the audit chain checked. The
/// restored root's log records the restore.
pub fn restore_backup(
    set_path: &Path,
    data_dir: &Path,
    config: Config,
) -> Result<RestoreReport, CofferError> {
    let check = verify_backup(set_path)?;
    if !check.problems.is_empty() {
        return Err(std::io::Error::other(format!(
            "the backup does not verify ({} problems; first: {})",
            check.problems.len(),
            check.problems[0]
        ))
        .into());
    }
    // Checked before anything is created or its mode changed.
    if data_dir.exists() && open_dir(data_dir)?.entries()?.next().is_some() {
        return Err(std::io::Error::other(format!("{} is not empty", data_dir.display())).into());
    }
    let target = DataRoot::open_ambient(data_dir, true)?.dir().try_clone()?;
    let set = open_dir(set_path)?;
    // With a PostgreSQL control plane the control plane and the audit chain stay the
    // database's: the set's copies (checked above) are not brought into the data root,
    // where nothing would read them, and no purge would redact them.
    let databases: &[&str] = match config.control {
        None => &["control.db", "audit.db"],
        Some(_) => &[],
    };
    for name in ["COFFER", "secret.key", "signing.key"]
        .iter()
        .chain(databases)
    {
        set.copy(name, &target, name)?;
    }
    let manifest: BackupManifest =
        serde_json::from_str(&set.read_to_string(MANIFEST)?).map_err(std::io::Error::other)?;
    target.create_dir("tenants")?;
    let (from, to) = (set.open_dir("tenants")?, target.open_dir("tenants")?);
    for tenant in &manifest.tenants {
        crate::vault::backup::copy_tree(&from, &tenant.id, &to)?;
    }
    crate::vault::dir::sync_dir(&to)?;
    crate::vault::dir::sync_dir(&target)?;
    let coffer = Coffer::open(data_dir, config)?;
    for tenant in &manifest.tenants {
        let id = TenantId::parse(&tenant.id).map_err(|e| std::io::Error::other(e.to_string()))?;
        coffer.vaults.open(id)?;
    }
    coffer.audit.append(
        &Caller::system()
            .event(AuditAction::DataRootRestore)
            .detail(serde_json::json!({ "backup_created_at": manifest.created_at })),
    )?;
    let chain = coffer.audit.verify()?;
    if let Some((seq, why)) = chain.broken {
        return Err(
            std::io::Error::other(format!("restored audit chain broken at {seq}: {why}")).into(),
        );
    }
    Ok(RestoreReport {
        data_dir: data_dir.to_owned(),
        tenants: manifest.tenants.len(),
        files: check.files,
        audit_events: chain.events,
    })
}
