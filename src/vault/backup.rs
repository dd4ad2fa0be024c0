//! A vault's part of a backup: a consistent copy of the vault directory (its index as of
//! one moment, and exactly the files and trash items that index names), read through
//! the vault's own capability handles. The vault's commit lock is held throughout, so no
//! change lands between the index copy and the files.
//!
//! A file whose path and SHA-256 are the same in the previous backup set is hard-linked
//! from there instead of copied (a trash item, which never changes, whenever its id is
//! there): a daily backup costs what changed. Links never leave the backup root, and
//! nothing is followed: only regular files and directories are copied.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use serde::Serialize;

use super::dir::{private_dir, sync_dir};
use super::index::{EntryKind, Index};
use super::layout::VaultEntry;
use super::path::VaultPath;
use super::{Vault, VaultError};

/// Where one vault's copy goes.
pub struct SnapshotTarget<'a> {
    /// The vault's (empty) directory in the new backup set.
    pub dir: &'a Dir,
    /// The same directory's ambient path (SQLite writes the index copy by path).
    pub ambient: &'a Path,
    /// The same tenant's directory in the previous complete set, if there is one.
    pub previous: Option<&'a Dir>,
    /// The previous set's copy of the index, to know which files are unchanged.
    pub previous_index: Option<&'a Path>,
}

/// What a vault's copy holds and cost.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct SnapshotStats {
    pub files: u64,
    pub bytes: u64,
    /// Files (and trash items) hard-linked from the previous set.
    pub linked: u64,
    /// Bytes actually written.
    pub copied_bytes: u64,
    pub trash_items: u64,
}

impl Vault {
    /// Copies the vault into `target` as of one moment (see the module docs).
    #[allow(
        clippy::disallowed_methods,
        reason = "unchanged files are hard-linked between two sets of one backup root, never into a vault"
    )]
    pub fn snapshot_into(&self, target: &SnapshotTarget<'_>) -> Result<SnapshotStats, VaultError> {
        let (_commit, index) = self.begin_repair()?;
        index.snapshot_into(&target.ambient.join(VaultEntry::IndexDb.path()))?;
        let (root, files, trash) = self.dir.parts();
        copy_file(
            root,
            VaultEntry::Marker.path(),
            target.dir,
            VaultEntry::Marker.path(),
        )?;
        for entry in [
            VaultEntry::FilesDir,
            VaultEntry::StagingDir,
            VaultEntry::TrashDir,
        ] {
            target.dir.create_dir(entry.path())?;
        }
        let out_files = target.dir.open_dir_nofollow(VaultEntry::FilesDir.path())?;
        let out_trash = target.dir.open_dir_nofollow(VaultEntry::TrashDir.path())?;
        let previous_files = target
            .previous
            .and_then(|p| p.open_dir_nofollow(VaultEntry::FilesDir.path()).ok());
        let previous_trash = target
            .previous
            .and_then(|p| p.open_dir_nofollow(VaultEntry::TrashDir.path()).ok());
        let unchanged = previous_hashes(target.previous_index);
        let mut stats = SnapshotStats::default();
        for entry in index.all_entries()? {
            let path =
                VaultPath::parse(&entry.path).map_err(|e| VaultError::Damaged(e.to_string()))?;
            if entry.kind == EntryKind::Dir {
                out_files.create_dir_all(path.as_str())?;
                continue;
            }
            if let Some(parent) = path.parent() {
                out_files.create_dir_all(parent.as_str())?;
            }
            stats.files += 1;
            stats.bytes += entry.size;
            let same =
                entry.sha256.is_some() && unchanged.get(&entry.path) == entry.sha256.as_ref();
            let linked = same
                && previous_files.as_ref().is_some_and(|prev| {
                    prev.hard_link(path.as_str(), &out_files, path.as_str())
                        .is_ok()
                });
            if linked {
                stats.linked += 1;
            } else {
                stats.copied_bytes += copy_file(files, path.as_str(), &out_files, path.as_str())?;
            }
        }
        for item in index.trash_list()? {
            stats.trash_items += 1;
            let linked = previous_trash
                .as_ref()
                .is_some_and(|prev| link_tree(prev, &item.id, &out_trash).is_ok());
            if linked {
                stats.linked += 1;
            } else {
                // A link that failed half-way (another filesystem) leaves a partial tree.
                let _ = out_trash
                    .remove_dir_all(&item.id)
                    .or_else(|_| out_trash.remove_file(&item.id));
                stats.copied_bytes += copy_tree(trash, &item.id, &out_trash)?;
            }
        }
        drop(index);
        sync_dir(&out_files)?;
        sync_dir(&out_trash)?;
        sync_dir(target.dir)?;
        Ok(stats)
    }
}

/// Path → SHA-256 of the files in a previous set's index copy (empty if none or unreadable).
fn previous_hashes(index: Option<&Path>) -> HashMap<String, String> {
    let Some(path) = index.filter(|p| p.is_file()) else {
        return HashMap::new();
    };
    Index::open_read_only(path)
        .and_then(|i| i.all_entries())
        .map(|entries| {
            entries
                .into_iter()
                .filter_map(|e| e.sha256.map(|h| (e.path, h)))
                .collect()
        })
        .unwrap_or_default()
}

/// Copies one regular file, durably; returns its size. Anything else is refused.
fn copy_file(from: &Dir, name: &str, to: &Dir, as_name: &str) -> io::Result<u64> {
    let meta = from.symlink_metadata(name)?;
    if !meta.is_file() {
        return Err(io::Error::other(format!("{name} is not a regular file")));
    }
    let mut read = OpenOptions::new();
    read.read(true).follow(FollowSymlinks::No);
    let mut source = from.open_with(name, &read)?;
    let mut options = OpenOptions::new();
    // Private whatever the umask, like everything Coffer creates.
    options.write(true).create_new(true).mode(0o600);
    let mut dest = to.open_with(as_name, &options)?;
    let n = io::copy(&mut source, &mut dest)?;
    dest.sync_all()?;
    Ok(n)
}

/// Copies a file or a directory tree (regular files and directories only); returns the
/// bytes copied.
pub fn copy_tree(from: &Dir, name: &str, to: &Dir) -> io::Result<u64> {
    let meta = from.symlink_metadata(name)?;
    if meta.is_file() {
        return copy_file(from, name, to, name);
    }
    if !meta.is_dir() {
        return Ok(0); // never copy links or devices
    }
    to.create_dir_with(name, &private_dir())?;
    let (src, dst) = (from.open_dir_nofollow(name)?, to.open_dir_nofollow(name)?);
    let mut total = 0;
    for entry in src.entries()? {
        let entry = entry?;
        let child = entry.file_name();
        let Some(child) = child.to_str() else {
            continue;
        };
        total += copy_tree(&src, child, &dst)?;
    }
    sync_dir(&dst)?;
    Ok(total)
}

/// Hard-links a file or directory tree from `from` into `to` (same filesystem).
#[allow(
    clippy::disallowed_methods,
    reason = "the one place Coffer makes links: between two sets of one backup root, never into a vault"
)]
fn link_tree(from: &Dir, name: &str, to: &Dir) -> io::Result<()> {
    let meta = from.symlink_metadata(name)?;
    if meta.is_file() {
        return from.hard_link(name, to, name);
    }
    if !meta.is_dir() {
        return Ok(());
    }
    to.create_dir(name)?;
    let (src, dst) = (from.open_dir_nofollow(name)?, to.open_dir_nofollow(name)?);
    for entry in src.entries()? {
        let entry = entry?;
        let child = entry.file_name();
        let Some(child) = child.to_str() else {
            continue;
        };
        link_tree(&src, child, &dst)?;
    }
    Ok(())
}
