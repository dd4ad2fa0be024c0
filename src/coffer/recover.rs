//! `coffer tenant recover SLUG --to NODE`: when a node is lost, each of its tenants is
//! brought back on another node from the newest backup set that holds it. Whatever the
//! tenant changed after that set was made is lost; the report states that window.
//!
//! Run on the node that takes the tenant: the set's copy is verified (every file against
//! its index entry and hash) before anything is written; the tenant is fenced where it
//! was (an old node that is not lost after all stops taking writes); the copy goes in
//! under a temporary name, is renamed into place and opened; only then does the
//! placement move, with its epoch checked, so a recovery racing another (or the old
//! node coming back) cannot leave two nodes serving the tenant.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::backup::read_manifest;
use super::restore::{BackupCheck, verify_vault_copy};
use super::{Coffer, CofferError};
use crate::audit::Caller;
use crate::control::ControlError;
use crate::names::TenantSlug;
use crate::vault::dir::sync_dir;
use crate::vault::layout::{DataRoot, DataRootPath};

/// What a recovery did.
#[derive(Debug, Serialize)]
pub struct RecoverReport {
    pub tenant: String,
    pub from_node: String,
    pub to_node: String,
    /// The placement's new epoch.
    pub epoch: i64,
    /// The backup set the vault came from, and when it was made.
    pub set: PathBuf,
    pub backup_created_at: String,
    /// Seconds between that backup and this recovery: changes made in them are lost.
    pub loss_window_secs: i64,
    pub files: u64,
    pub bytes: u64,
}

fn refuse(message: String) -> CofferError {
    ControlError::Forbidden(message).into()
}

impl Coffer {
    /// Recovers tenant `slug` onto this node (`to` must name it) from the newest set
    /// under `backup_root` (default: the configured backup directory) that holds it.
    pub fn recover_tenant(
        &self,
        caller: &Caller,
        slug: &TenantSlug,
        to: &str,
        backup_root: Option<&Path>,
    ) -> Result<RecoverReport, CofferError> {
        let here = self.check_here(to, "recovery")?;
        let tenant = self.live_tenant(slug)?;
        let Some(from) = tenant.placement.clone() else {
            return Err(refuse(format!("tenant {slug} has no placement")));
        };
        let id = tenant.id.to_string();
        let vaults = self.root.dir().open_dir(DataRootPath::TenantsDir.path())?;
        if vaults.symlink_metadata(&id).is_ok() {
            return Err(refuse(format!(
                "a vault of tenant {slug} is already on this node{}: move it out of the data \
                 root first if it is a stale copy",
                if from.node == here {
                    " (it is served here)"
                } else {
                    ""
                }
            )));
        }

        // The newest set that holds the tenant, verified before anything is copied.
        let root_path = backup_root.map_or_else(|| self.default_backup_root(), Path::to_path_buf);
        let root = DataRoot::open_ambient(&root_path, false)?
            .dir()
            .try_clone()?;
        let mut sets: Vec<String> = root
            .entries()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        sets.sort();
        let (set, manifest) = sets
            .iter()
            .rev()
            .find_map(|name| {
                let manifest = read_manifest(&root, name).ok()?;
                manifest
                    .tenants
                    .iter()
                    .any(|t| t.id == id)
                    .then(|| (name.clone(), manifest))
            })
            .ok_or_else(|| {
                refuse(format!(
                    "no complete backup set under {} holds tenant {slug}",
                    root_path.display()
                ))
            })?;
        let set_path = root_path.join(&set);
        let copy = set_path.join(DataRootPath::TenantsDir.path()).join(&id);
        let mut check = BackupCheck::default();
        verify_vault_copy(&copy, &mut check)?;
        if !check.problems.is_empty() {
            return Err(refuse(format!(
                "the copy of {slug} in {} does not verify: {}",
                set_path.display(),
                check.problems.join("; ")
            )));
        }

        // Fenced first: if the old node is not lost after all, it takes no more writes
        // (they would be lost with the copy it keeps) once it hears of the fence.
        let why = serde_json::json!({ "reason": "recover", "to": here });
        let from = self
            .control
            .fence_placement(caller, tenant.id, &from, why)?
            .placement
            .ok_or_else(|| refuse(format!("tenant {slug} has no placement")))?;

        // Copied under a temporary name, then renamed into place: a crash leaves either
        // nothing or debris the isolation audit names, never a half vault.
        let staging = format!(".recovering-{id}");
        if vaults.symlink_metadata(&staging).is_ok() {
            vaults.remove_dir_all(&staging)?;
        }
        vaults.create_dir_with(&staging, &crate::vault::dir::private_dir())?;
        let from_dir =
            DataRoot::open_ambient(&set_path.join(DataRootPath::TenantsDir.path()), false)?
                .dir()
                .try_clone()?;
        let into = vaults.open_dir(&staging)?;
        crate::vault::backup::copy_tree(&from_dir, &id, &into)?;
        sync_dir(&into)?;
        into.rename(&id, &vaults, &id)?;
        vaults.remove_dir(&staging)?;
        sync_dir(&vaults)?;
        if let Err(e) = self.vaults.open_transient(tenant.id) {
            let _ = vaults.remove_dir_all(&id);
            return Err(e.into());
        }

        let now = self.clock.now();
        let created = time::OffsetDateTime::parse(
            &manifest.created_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| std::io::Error::other(format!("backup created_at: {e}")))?;
        let loss_window_secs = (now - created).whole_seconds().max(0);
        let why = serde_json::json!({ "reason": "recover", "backup_created_at": manifest.created_at,
            "loss_window_secs": loss_window_secs });
        let placed = match self
            .control
            .replace_placement(caller, tenant.id, &from, here, why)
        {
            Ok(placed) => placed,
            Err(e) => {
                // Lost the race: the copy goes, the tenant stays where it was placed.
                let _ = vaults.remove_dir_all(&id);
                return Err(e.into());
            }
        };
        let files = check.files;
        Ok(RecoverReport {
            tenant: slug.as_str().to_owned(),
            from_node: from.node,
            to_node: here.to_owned(),
            epoch: placed.placement.map_or(0, |p| p.epoch),
            set: set_path,
            backup_created_at: manifest.created_at,
            loss_window_secs,
            files,
            bytes: check.bytes,
        })
    }
}
