//! What the control plane tells a vault of its tenant, and the one check every change
//! makes of it: the quota; the freeze (the tenant cancelled, or fenced while a move or
//! recovery copies it); and, for nodes sharing a control plane, the mark a move leaves
//! when it takes the vault's copy (no change commits after it, see
//! `VaultStore::mark_sent`) and the placement epoch at which this open instance was last
//! found to be the directory at `tenants/<id>` (see `VaultStore::current_at`).

use std::sync::atomic::Ordering;

use super::{UNLIMITED, Vault, VaultError};

/// Why a vault is frozen (`Vault::frozen`).
pub(super) const THAWED: u8 = 0;
const CANCELLED: u8 = 1;
const FENCED: u8 = 2;

impl Vault {
    /// Sets the storage quota (`None`: unlimited). The control plane owns the number.
    pub fn set_quota(&self, quota: Option<u64>) {
        self.quota
            .store(quota.unwrap_or(UNLIMITED), Ordering::SeqCst);
    }

    /// Freezes the vault (the tenant is cancelled, or fenced while a move or recovery
    /// copies it) or thaws it. The control plane owns the state; every change checks it
    /// under the lock it commits under.
    pub fn set_frozen(&self, cancelled: bool, fenced: bool) {
        let why = match (cancelled, fenced) {
            (true, _) => CANCELLED,
            (false, true) => FENCED,
            (false, false) => THAWED,
        };
        self.frozen.store(why, Ordering::SeqCst);
    }

    pub(crate) fn check_not_frozen(&self) -> Result<(), VaultError> {
        if self.sent_at_epoch.load(Ordering::SeqCst) != 0 {
            return Err(VaultError::Moving);
        }
        match self.frozen.load(Ordering::SeqCst) {
            CANCELLED => Err(VaultError::Frozen),
            FENCED => Err(VaultError::Moving),
            _ => Ok(()),
        }
    }

    pub(crate) fn quota(&self) -> Option<u64> {
        match self.quota.load(Ordering::SeqCst) {
            UNLIMITED => None,
            q => Some(q),
        }
    }

    /// Marks the vault as sent away by a move at fenced epoch `epoch`: no change
    /// commits from now on (see `sent_at_epoch`). Checked under the commit lock, like
    /// the freeze, so a change already past authorization commits before the copy that
    /// follows this call takes the lock, or not at all.
    pub(crate) fn mark_sent(&self, epoch: i64) {
        self.sent_at_epoch.store(epoch, Ordering::SeqCst);
    }

    /// The placement epoch this instance was last checked at (see `checked_epoch`).
    pub fn checked_epoch(&self) -> i64 {
        self.checked_epoch.load(Ordering::SeqCst)
    }

    pub(crate) fn set_checked_epoch(&self, epoch: i64) {
        self.checked_epoch.store(epoch, Ordering::SeqCst);
    }

    /// Device and inode of the directory this instance has open.
    pub(crate) fn dir_identity(&self) -> std::io::Result<(u64, u64)> {
        use cap_std::fs::MetadataExt;
        let meta = self.dir.parts().0.dir_metadata()?;
        Ok((meta.dev(), meta.ino()))
    }

    /// Whether a move took this vault's copy (see `mark_sent`).
    pub fn is_sent(&self) -> bool {
        self.sent_at_epoch.load(Ordering::SeqCst) != 0
    }

    /// Fits the sent-away mark to the placement as now known: a placement here, not
    /// fenced, at an epoch past the move's is a move rolled back, and the vault takes
    /// changes again; anything older (a cache that has not heard of the move yet)
    /// leaves it as it is.
    /// Returns whether it lifted the mark.
    pub(crate) fn fit_placement(&self, here: bool, fenced: bool, epoch: i64) -> bool {
        let sent = self.sent_at_epoch.load(Ordering::SeqCst);
        sent != 0
            && here
            && !fenced
            && epoch > sent
            && self
                .sent_at_epoch
                .compare_exchange(sent, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }
}
