//! The trash: deleting moves a file or directory to `.trash/<id>` with a row in the
//! index; it can be restored (quota permitting) or purged for good. Trashed bytes count
//! against the quota until purged.

use super::dir::DirError;
use super::index::{self, Entry, IndexChange, TrashItem};
use super::path::VaultPath;
use super::repair::{Expect, Intent};
use super::{Caller, Vault, VaultError};
use crate::audit::AuditAction;

impl Vault {
    /// Moves a file or directory to the trash; returns the trash item. Trashed bytes keep
    /// counting against the quota until purged.
    pub fn delete(&self, caller: &Caller, path: &VaultPath) -> Result<TrashItem, VaultError> {
        let (_commit, mut index) = self.begin_commit()?;
        let subtree = index.subtree(path)?;
        let Some(top) = subtree.first() else {
            return Err(VaultError::NotFound);
        };
        let item = TrashItem {
            id: uuid::Uuid::new_v4().simple().to_string(),
            original_path: path.to_string(),
            kind: top.kind,
            size: subtree.iter().map(|e| e.size).sum(),
            deleted_at: self.now(),
            deleted_by: Some(caller.actor.to_string()),
        };
        let intent = Intent {
            event: self
                .event(caller, AuditAction::FileDelete, path.as_str())
                .detail(serde_json::json!({ "trash_id": item.id, "size": item.size })),
            expect: Expect::Trashed {
                trash_id: item.id.clone(),
            },
        };
        // The trash row goes in with the pending marks, before the move: after a crash,
        // a row without its `.trash/<id>` is dropped, never an item without its row.
        self.begin_pending(&mut index, &[path], &intent)?;
        index.apply(
            IndexChange {
                trash_insert: Some(&item),
                ..Default::default()
            },
            &mut index::no_hook,
        )?;
        if let Err(e) = self.dir.move_to_trash(path, &item.id) {
            return Err(self.abandon(&mut index, &intent, e.into()));
        }
        self.finish(
            &mut index,
            IndexChange {
                clear_subtrees: &[path.as_str()],
                pending_done: &[path.as_str()],
                covered_by_pending: true,
                ..Default::default()
            },
            &intent,
        )?;
        Ok(item)
    }

    pub fn trash_list(&self) -> Result<Vec<TrashItem>, VaultError> {
        Ok(self.index().trash_list()?)
    }

    /// Restores a trash item to its original path, or to `to`. Refused while the vault is
    /// over its quota (a quota lowered since the delete).
    pub fn restore(
        &self,
        caller: &Caller,
        trash_id: &str,
        to: Option<&VaultPath>,
    ) -> Result<Entry, VaultError> {
        let (_commit, mut index) = self.begin_commit()?;
        let item = index.trash_item(trash_id)?.ok_or(VaultError::NotFound)?;
        let target = match to {
            Some(t) => t.clone(),
            None => VaultPath::parse(&item.original_path)
                .map_err(|_| VaultError::Damaged("trash row has an invalid path".into()))?,
        };
        if index.entry(&target)?.is_some() {
            return Err(VaultError::AlreadyExists);
        }
        self.check_case(&index, &target)?;
        // The item's bytes are charged already (in the trash); restoring moves them.
        self.check_quota(&index, item.size, item.size)?;
        let intent = Intent {
            event: self
                .event(caller, AuditAction::FileRestore, target.as_str())
                .detail(serde_json::json!({ "trash_id": item.id })),
            expect: Expect::Restored {
                trash_id: item.id.clone(),
                path: target.to_string(),
            },
        };
        self.begin_pending(&mut index, &[&target], &intent)?;
        let created = match self.dir.restore_from_trash(&item.id, &target) {
            Ok(c) => c,
            Err(e) => return Err(self.abandon(&mut index, &intent, e.into())),
        };
        let mut upserts = self.dir_entries(&created, &caller.actor.to_string());
        match self.scan_subtree(&index, &target, &mut |_| {}) {
            Ok(scanned) => upserts.extend(scanned),
            Err(e) => return Err(self.abandon(&mut index, &intent, e)),
        }
        self.finish(
            &mut index,
            IndexChange {
                clear_subtrees: &[target.as_str()],
                upserts: &upserts,
                trash_remove: Some(&item.id),
                pending_done: &[target.as_str()],
                // A lost trash-row removal is repaired too: recovery drops rows whose item
                // is no longer in `.trash/`.
                covered_by_pending: true,
                ..Default::default()
            },
            &intent,
        )?;
        index.entry(&target)?.ok_or(VaultError::NotFound)
    }

    /// Deletes a trash item for good.
    pub fn purge(&self, caller: &Caller, trash_id: &str) -> Result<TrashItem, VaultError> {
        let (_commit, mut index) = self.begin_commit()?;
        let item = index.trash_item(trash_id)?.ok_or(VaultError::NotFound)?;
        let intent = Intent {
            event: self
                .event(caller, AuditAction::FilePurge, &item.original_path)
                .detail(serde_json::json!({ "trash_id": item.id, "size": item.size })),
            expect: Expect::Purged {
                trash_id: item.id.clone(),
            },
        };
        self.begin_pending(&mut index, &[], &intent)?;
        match self.dir.purge_trash(&item.id) {
            Ok(()) | Err(DirError::NotFound) => {}
            Err(e) => return Err(self.abandon(&mut index, &intent, e.into())),
        }
        self.finish(
            &mut index,
            IndexChange {
                trash_remove: Some(&item.id),
                ..Default::default()
            },
            &intent,
        )?;
        Ok(item)
    }

    /// Purges every trash item deleted before `cutoff` (a timestamp): the lifecycle's trash
    /// expiry. Returns how many went.
    pub fn expire_trash(&self, caller: &Caller, cutoff: &str) -> Result<usize, VaultError> {
        let expired: Vec<TrashItem> = self
            .index()
            .trash_list()?
            .into_iter()
            .filter(|item| item.deleted_at.as_str() < cutoff)
            .collect();
        for item in &expired {
            match self.purge(caller, &item.id) {
                Ok(_) | Err(VaultError::NotFound) => {} // purged meanwhile by someone else
                Err(e) => return Err(e),
            }
        }
        Ok(expired.len())
    }
}
