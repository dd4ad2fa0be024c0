//! A tenant's vault: its directory (`dir`) and its index (`index`), and the `Vault` that
//! orders every operation across them.
//!
//! A file operation is acknowledged only when the bytes are fsynced in their final place,
//! the directory entry is fsynced, its audit event is durable and the index shows it.
//! Before it touches `files/`, it commits `pending_writes` rows naming its paths and a
//! `pending_events` row holding its audit event; a crash (or a failed step) at any point
//! is repaired from what is on disk (`repair`), and the event is appended only if the
//! change happened. `VaultStore` (`cache`) hands out vaults from a bounded cache. This
//! module never decides who may do what: callers arrive with a `Caller` that the auth
//! layer (or the operator CLI) has already vetted, through a `TenantAccess`.

pub mod backup;
mod batch;
mod cache;
mod copy;
pub mod dir;
mod group;
pub mod index;
pub mod layout;
pub mod path;
pub mod properties;
mod records;
mod repair;
mod tenancy;
pub mod transfer;
mod trash;

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use cap_std::fs::File;

pub use crate::audit::Caller;
use crate::audit::{AuditAction, AuditEvent, AuditLog};
use crate::clock::{self, SharedClock};
pub use crate::config::VaultLimits;
use crate::db;
use crate::names::TenantId;
pub use batch::{ImportBatch, ImportSummary};
pub use cache::{CLOSING_MAX, OpenHook, VaultStore};
pub use copy::sha256_of;
use dir::{DirError, VaultDir};
use index::{Entry, EntryKind, Index, IndexChange, IndexError};
use layout::{DataRoot, SqliteFile};
use path::VaultPath;
use repair::{Expect, Intent};
pub use repair::{ReindexReport, SkippedEntry, UsageDrift};

/// Errors of vault operations, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("not found")]
    NotFound,
    #[error("the tenant is cancelled: its vault is read-only until it is reactivated")]
    Frozen,
    #[error("the tenant is moving to another node: writes resume there shortly")]
    Moving,
    #[error("already exists")]
    AlreadyExists,
    #[error("already exists: {0}")]
    ExistsAt(String),
    #[error("{0:?} differs only by case from the existing name {1:?}")]
    CaseConflict(String, String),
    #[error("precondition failed: the current version does not match")]
    PreconditionFailed,
    #[error("is a directory")]
    IsADirectory,
    #[error("not a directory")]
    NotADirectory,
    #[error("refused: not a regular file or directory")]
    NotRegular,
    #[error("refused: the path leads outside the vault")]
    Escape,
    #[error("file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(
        "the storage quota would be exceeded: {used} of {quota} bytes used, {attempted} more attempted"
    )]
    QuotaExceeded {
        quota: u64,
        used: u64,
        attempted: u64,
    },
    #[error("cannot move a directory into itself")]
    MoveIntoSelf,
    #[error("properties refused: {0}")]
    PropertiesTooLarge(String),
    #[error("record version is {current}, not the one given")]
    VersionMismatch { current: i64 },
    #[error("the upload stream failed: {0}")]
    Upload(#[source] io::Error),
    #[error("vault directory is damaged: {0}")]
    Damaged(String),
    #[error("the disk is full")]
    StorageFull,
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    #[error("index error: {0}")]
    Index(IndexError),
    #[error("audit log error: {0}")]
    Audit(crate::audit::AuditError),
}

impl From<crate::audit::AuditError> for VaultError {
    fn from(e: crate::audit::AuditError) -> Self {
        if e.is_storage_full() {
            VaultError::StorageFull
        } else {
            VaultError::Audit(e)
        }
    }
}

impl From<IndexError> for VaultError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Audit(a) => a.into(),
            IndexError::Sqlite(ref s) if db::is_full(s) => VaultError::StorageFull,
            IndexError::Db(crate::db::DbError::Sqlite(ref s)) if db::is_full(s) => {
                VaultError::StorageFull
            }
            other => VaultError::Index(other),
        }
    }
}

impl From<DirError> for VaultError {
    fn from(e: DirError) -> Self {
        match e {
            DirError::NotFound => VaultError::NotFound,
            DirError::AlreadyExists => VaultError::AlreadyExists,
            DirError::IsADirectory => VaultError::IsADirectory,
            DirError::NotADirectory => VaultError::NotADirectory,
            DirError::DirectoryNotEmpty => VaultError::AlreadyExists,
            DirError::NotRegular => VaultError::NotRegular,
            DirError::Escape => VaultError::Escape,
            DirError::Damaged(m) => VaultError::Damaged(m),
            DirError::StorageFull => VaultError::StorageFull,
            DirError::Io(e) => VaultError::Io(e),
        }
    }
}

impl From<io::Error> for VaultError {
    fn from(e: io::Error) -> Self {
        DirError::from(e).into()
    }
}

/// A conditional write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Precondition {
    #[default]
    None,
    /// Only if nothing exists at the path (`If-None-Match: *`).
    IfAbsent,
    /// Only if the current content has this SHA-256 (`If-Match`).
    IfMatch(String),
}

/// The bytes of a read: an open, regular file and its index entry. The handle always
/// shows one whole version, since writers replace files by rename.
pub struct FileRead {
    pub file: File,
    pub entry: Entry,
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct Written {
    pub entry: Entry,
    /// Whether the path was new (nothing existed there before the write).
    pub created: bool,
}

const UNLIMITED: u64 = u64::MAX;

/// One tenant's vault.
pub struct Vault {
    tenant: TenantId,
    dir: VaultDir,
    index: Mutex<Index>,
    /// Serialises the short commit step (checks, rename, index) of writes to this vault;
    /// streaming happens outside it.
    commit_lock: Mutex<()>,
    /// File writes waiting for the commit lock, committed together (see `group`).
    writes: group::WriteQueue,
    audit: AuditLog,
    clock: SharedClock,
    limits: VaultLimits,
    quota: AtomicU64,
    /// Why every change is refused now (repair aside): `THAWED`, `CANCELLED` or `FENCED`.
    frozen: AtomicU8,
    /// The fenced epoch at which a move took this vault's copy (0: none). From then on
    /// every change is refused, whatever a stale cache of the control plane says, until
    /// the placement is back here at a later epoch (the move was rolled back).
    sent_at_epoch: AtomicI64,
    /// The placement epoch at which this instance was last found to be the directory
    /// at `tenants/<id>` (0: not yet; see `VaultStore::current_at`).
    checked_epoch: AtomicI64,
    /// Bytes being streamed into staging right now, counted against the quota.
    inflight: AtomicU64,
    /// An operation left pending rows it could not settle (its audit append failed): the
    /// next operation repairs them first.
    dirty: AtomicBool,
}

/// Adds to the vault's in-flight byte count, and takes it back when dropped.
struct InflightGuard<'a> {
    counter: &'a AtomicU64,
    bytes: u64,
}

impl InflightGuard<'_> {
    fn add(&mut self, n: u64) -> u64 {
        self.bytes += n;
        self.counter.fetch_add(n, Ordering::SeqCst) + n
    }
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

fn format_time(t: std::time::SystemTime) -> String {
    db::timestamp(time::OffsetDateTime::from(t))
}

fn content_type_for(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

fn check_precondition(p: &Precondition, current: Option<&Entry>) -> Result<(), VaultError> {
    match (p, current) {
        (Precondition::None, _) => Ok(()),
        (Precondition::IfAbsent, None) => Ok(()),
        (Precondition::IfAbsent, Some(_)) => Err(VaultError::PreconditionFailed),
        (Precondition::IfMatch(sha), Some(e)) if e.sha256.as_deref() == Some(sha.as_str()) => {
            Ok(())
        }
        (Precondition::IfMatch(_), _) => Err(VaultError::PreconditionFailed),
    }
}

impl Vault {
    fn open(
        root: &DataRoot,
        tenants: &cap_std::fs::Dir,
        tenant: TenantId,
        audit: AuditLog,
        clock: SharedClock,
        limits: VaultLimits,
    ) -> Result<Vault, VaultError> {
        let dir = VaultDir::open(tenants, &tenant.to_string())?;
        dir.check_index_file()?;
        let index = Index::open(&root.sqlite_path(SqliteFile::TenantIndex(tenant)))?;
        // An index copied in from another tenant's vault would serve that tenant's
        // records and file list here: refused.
        if !index.claim_identity(&tenant.to_string())? {
            return Err(VaultError::Damaged(
                "index.db belongs to another tenant".into(),
            ));
        }
        let vault = Vault {
            tenant,
            dir,
            index: Mutex::new(index),
            commit_lock: Mutex::new(()),
            writes: group::WriteQueue::default(),
            audit,
            clock,
            limits,
            quota: AtomicU64::new(UNLIMITED),
            frozen: AtomicU8::new(tenancy::THAWED),
            sent_at_epoch: AtomicI64::new(0),
            checked_epoch: AtomicI64::new(0),
            inflight: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
        };
        vault.recover()?;
        Ok(vault)
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    fn now(&self) -> String {
        clock::stamp(self.clock.as_ref())
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        db::lock(&self.index)
    }

    /// Takes the commit lock and the index for a change, first repairing what an earlier
    /// operation left pending (see `dirty`); refused while the vault is frozen.
    fn begin_commit(&self) -> Result<(MutexGuard<'_, ()>, MutexGuard<'_, Index>), VaultError> {
        let commit = db::lock(&self.commit_lock);
        let mut index = self.index();
        self.ready_for_change(&mut index)?;
        Ok((commit, index))
    }

    /// What every change does first under the commit lock: repairs what an earlier
    /// operation left pending, and refuses while the vault is frozen.
    fn ready_for_change(&self, index: &mut Index) -> Result<(), VaultError> {
        self.repair_if_dirty(index)?;
        self.check_not_frozen()
    }

    /// `begin_commit` for repair (reindex), which a frozen vault still allows.
    fn begin_repair(&self) -> Result<(MutexGuard<'_, ()>, MutexGuard<'_, Index>), VaultError> {
        let commit = db::lock(&self.commit_lock);
        let mut index = self.index();
        self.repair_if_dirty(&mut index)?;
        Ok((commit, index))
    }

    fn repair_if_dirty(&self, index: &mut Index) -> Result<(), VaultError> {
        if self.dirty.swap(false, Ordering::SeqCst) {
            self.repair_pending(index, None)?;
        }
        Ok(())
    }

    /// An event of `caller` about this vault.
    fn event(&self, caller: &Caller, action: AuditAction, target: &str) -> AuditEvent {
        caller.event(action).tenant(self.tenant).target(target)
    }

    /// Refuses `path` when it or an ancestor differs only by case from an existing name
    /// (`CaseConflict`): for a caller that wants to refuse before streaming a body. The
    /// write checks again under the commit lock.
    pub fn check_name(&self, path: &VaultPath) -> Result<(), VaultError> {
        self.check_case(&self.index(), path)
    }

    /// Refuses a name that differs only by case from an existing sibling, for the path
    /// and each of its ancestors (the case policy of the layout spec).
    fn check_case(&self, index: &Index, path: &VaultPath) -> Result<(), VaultError> {
        for p in path.ancestors().iter().chain(std::iter::once(path)) {
            if let Some(existing) =
                index.case_collision(p.parent_str(), p.file_name(), &p.fold_key())?
            {
                return Err(VaultError::CaseConflict(p.to_string(), existing));
            }
        }
        Ok(())
    }

    /// Refuses `adding` more bytes when they would take the vault over its quota (files
    /// and trash both count), with the numbers.
    fn check_quota(&self, index: &Index, freed: u64, adding: u64) -> Result<(), VaultError> {
        if self.quota().is_some() {
            self.charge(index.bytes_charged()?, freed, adding)?;
        }
        Ok(())
    }

    /// The bytes charged once `adding` replaces `freed` on top of `charged`, refused with
    /// the numbers when that takes the vault over its quota.
    fn charge(&self, charged: u64, freed: u64, adding: u64) -> Result<u64, VaultError> {
        let used = charged.saturating_sub(freed);
        if let Some(quota) = self.quota()
            && used.saturating_add(adding) > quota
        {
            return Err(VaultError::QuotaExceeded {
                quota,
                used,
                attempted: adding,
            });
        }
        Ok(used.saturating_add(adding))
    }

    /// The index entry of a file just placed at `path`.
    fn file_entry(
        path: &VaultPath,
        size: u64,
        sha256: &str,
        who: &str,
        created_at: String,
        modified_at: String,
    ) -> Entry {
        Entry {
            path: path.to_string(),
            name: path.file_name().to_owned(),
            kind: EntryKind::File,
            size,
            sha256: Some(sha256.to_owned()),
            content_type: Some(content_type_for(path.file_name())),
            created_at,
            modified_at,
            modified_by: Some(who.to_owned()),
        }
    }

    fn dir_entries(&self, created: &[VaultPath], who: &str) -> Vec<Entry> {
        let now = self.now();
        created
            .iter()
            .map(|p| Entry {
                path: p.to_string(),
                name: p.file_name().to_owned(),
                kind: EntryKind::Dir,
                size: 0,
                sha256: None,
                content_type: None,
                created_at: now.clone(),
                modified_at: now.clone(),
                modified_by: Some(who.to_owned()),
            })
            .collect()
    }

    /// Records the operation's paths and its audit event as pending, before `files/`
    /// changes.
    fn begin_pending(
        &self,
        index: &mut Index,
        paths: &[&VaultPath],
        intent: &Intent,
    ) -> Result<(), VaultError> {
        index.begin_pending(paths, &[intent.row()?], &self.now())?;
        Ok(())
    }

    /// Makes a completed change visible: the index change, with the audit event
    /// appended inside its transaction. If the audit log refuses the event, the change is
    /// already durable on disk and so is its event (in `pending_events`): the index is
    /// brought in line with the disk, the event stays pending, and the vault's next
    /// operation (or open) appends it. The write is answered as done, because it is.
    fn finish(
        &self,
        index: &mut Index,
        change: IndexChange<'_>,
        intent: &Intent,
    ) -> Result<(), VaultError> {
        self.finish_all(index, change, &[intent])
    }

    /// `finish` for several operations committed together: their events are appended in
    /// one audit transaction, inside the index transaction.
    fn finish_all(
        &self,
        index: &mut Index,
        change: IndexChange<'_>,
        intents: &[&Intent],
    ) -> Result<(), VaultError> {
        let ids: Vec<&str> = intents.iter().map(|i| i.event.id.as_str()).collect();
        let events: Vec<AuditEvent> = intents.iter().map(|i| i.event.clone()).collect();
        let with_event = IndexChange {
            events_done: &ids,
            ..change
        };
        match index.apply(with_event, &mut || {
            self.audit.append_all(&events).map(|_| ())
        }) {
            Ok(()) => Ok(()),
            Err(IndexError::Audit(e)) => {
                tracing::warn!(error = %e, events = events.len(),
                    "audit log refused events; they stay pending with the change");
                self.dirty.store(true, Ordering::SeqCst);
                index.apply(change, &mut index::no_hook)?;
                Ok(())
            }
            Err(other) => {
                self.dirty.store(true, Ordering::SeqCst);
                Err(other.into())
            }
        }
    }

    /// After a step failed between `begin_pending` and `finish`: re-reads the paths from
    /// disk and settles the event, so no pending row outlives the operation.
    fn abandon(&self, index: &mut Index, intent: &Intent, error: VaultError) -> VaultError {
        if let Err(e) = self.repair_pending(index, Some(&[intent.event.id.as_str()])) {
            tracing::warn!(error = %e, "repair after a failed vault operation failed");
            self.dirty.store(true, Ordering::SeqCst);
        }
        error
    }

    // ---- files -------------------------------------------------------------------------

    /// Streams `body` into the vault at `path`, atomically and durably. The size limit
    /// and the quota are enforced while streaming; on any error nothing is visible, the
    /// old version (if any) is intact, the index is unchanged and staging is cleaned.
    pub fn write_file(
        &self,
        caller: &Caller,
        path: &VaultPath,
        body: &mut dyn Read,
        precondition: &Precondition,
    ) -> Result<Written, VaultError> {
        let (staged, sha256, size, inflight) = self.stream_to_staging(path, body, precondition)?;
        // The commit (checked again under the commit lock, since another writer may have
        // committed meanwhile) may be shared with concurrent writes: see `group`.
        let written = self.commit_write(group::StagedWrite {
            caller: caller.clone(),
            path: path.clone(),
            kept: staged.keep(),
            sha256,
            size,
            precondition: precondition.clone(),
        });
        drop(inflight);
        written
    }

    /// Checks what can be checked before any byte arrives, then streams `body` into a
    /// fsynced staging file, enforcing the size limit and the quota as it goes. The
    /// returned guard keeps the streamed bytes counted against the quota until the write
    /// is committed or dropped.
    fn stream_to_staging(
        &self,
        path: &VaultPath,
        body: &mut dyn Read,
        precondition: &Precondition,
    ) -> Result<(dir::StagedFile<'_>, String, u64, InflightGuard<'_>), VaultError> {
        let (used, old_size) = {
            let index = self.index();
            let old = index.entry(path)?;
            if old.as_ref().is_some_and(|e| e.kind == EntryKind::Dir) {
                return Err(VaultError::IsADirectory);
            }
            check_precondition(precondition, old.as_ref())?;
            self.check_case(&index, path)?;
            (index.bytes_charged()?, old.map_or(0, |e| e.size))
        };
        let quota = self.quota();
        let mut staged = self.dir.stage()?;
        let mut inflight = InflightGuard {
            counter: &self.inflight,
            bytes: 0,
        };
        let max = self.limits.max_file_bytes;
        let base = used.saturating_sub(old_size);
        let (sha256, size) = copy::copy_hashed(body, &mut staged, max, |n| {
            let all_inflight = inflight.add(n);
            match quota {
                Some(quota) if base + all_inflight > quota => Err(VaultError::QuotaExceeded {
                    quota,
                    used: base,
                    attempted: all_inflight,
                }),
                _ => Ok(()),
            }
        })?;
        Ok((staged, sha256, size, inflight))
    }

    /// Audits a read of tenant content by an operator (the CLI's `files get` and
    /// `files ls`): reads by members are not audited, operator access always is.
    pub fn audit_operator_read(&self, caller: &Caller, target: &str) -> Result<(), VaultError> {
        self.audit
            .append(&self.event(caller, AuditAction::FileRead, target))?;
        Ok(())
    }

    /// Metadata of a file or directory.
    pub fn stat(&self, path: &VaultPath) -> Result<Entry, VaultError> {
        self.index().entry(path)?.ok_or(VaultError::NotFound)
    }

    /// Opens a file for reading. Only a regular file whose index entry exists is served;
    /// planted symlinks and special files are refused even if the index mentions them.
    pub fn open_file(&self, path: &VaultPath) -> Result<FileRead, VaultError> {
        let entry = self.stat(path)?;
        if entry.kind == EntryKind::Dir {
            return Err(VaultError::IsADirectory);
        }
        let (file, _meta) = self.dir.open_file(path)?;
        Ok(FileRead { file, entry })
    }

    /// One page of a directory listing (the root for `None`), in name order, after the
    /// name `after`.
    pub fn list(
        &self,
        dir: Option<&VaultPath>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Entry>, VaultError> {
        let index = self.index();
        if let Some(d) = dir {
            match index.entry(d)? {
                Some(e) if e.kind == EntryKind::Dir => {}
                Some(_) => return Err(VaultError::NotADirectory),
                None => return Err(VaultError::NotFound),
            }
        }
        Ok(index.list(dir, after, limit)?)
    }

    /// Every entry of the vault, in path order.
    pub fn all_entries(&self) -> Result<Vec<Entry>, VaultError> {
        Ok(self.index().all_entries()?)
    }

    /// Creates a directory (and missing parents). Idempotent for an existing directory.
    pub fn mkdir(&self, caller: &Caller, path: &VaultPath) -> Result<Entry, VaultError> {
        let (_commit, mut index) = self.begin_commit()?;
        self.check_case(&index, path)?;
        if let Some(e) = index.entry(path)? {
            return match e.kind {
                EntryKind::Dir => Ok(e),
                EntryKind::File => Err(VaultError::AlreadyExists),
            };
        }
        let intent = Intent {
            event: self.event(caller, AuditAction::DirCreate, path.as_str()),
            expect: Expect::Dir {
                path: path.to_string(),
            },
        };
        self.begin_pending(&mut index, &[path], &intent)?;
        let created = match self.dir.mkdir(path) {
            Ok(c) => c,
            Err(e) => return Err(self.abandon(&mut index, &intent, e.into())),
        };
        let upserts = self.dir_entries(&created, &caller.actor.to_string());
        self.finish(
            &mut index,
            IndexChange {
                upserts: &upserts,
                pending_done: &[path.as_str()],
                covered_by_pending: true,
                ..Default::default()
            },
            &intent,
        )?;
        index.entry(path)?.ok_or(VaultError::NotFound)
    }

    /// Moves or renames a file or directory; `to` must not exist.
    pub fn rename(
        &self,
        caller: &Caller,
        from: &VaultPath,
        to: &VaultPath,
    ) -> Result<Entry, VaultError> {
        if to.starts_with(from) {
            return Err(VaultError::MoveIntoSelf);
        }
        let (_commit, mut index) = self.begin_commit()?;
        let moved = index.subtree(from)?;
        if moved.is_empty() {
            return Err(VaultError::NotFound);
        }
        if index.entry(to)?.is_some() {
            return Err(VaultError::AlreadyExists);
        }
        match self.check_case(&index, to) {
            // A rename that changes only the case of the name (`invoice.pdf` to
            // `Invoice.pdf`): the name it collides with is its own.
            Err(VaultError::CaseConflict(at, existing))
                if at == to.as_str()
                    && from.parent_str() == to.parent_str()
                    && existing == from.file_name() => {}
            other => other?,
        }
        let intent = Intent {
            event: self
                .event(caller, AuditAction::FileMove, from.as_str())
                .destination(to.as_str()),
            expect: Expect::Moved {
                from: from.to_string(),
                to: to.to_string(),
            },
        };
        self.begin_pending(&mut index, &[from, to], &intent)?;
        let created = match self.dir.rename(from, to) {
            Ok(c) => c,
            Err(e) => return Err(self.abandon(&mut index, &intent, e.into())),
        };
        let who = caller.actor.to_string();
        let mut upserts = self.dir_entries(&created, &who);
        for mut e in moved {
            let rest = &e.path[from.as_str().len()..];
            e.path = format!("{to}{rest}");
            e.name = e.path.rsplit('/').next().unwrap_or(&e.path).to_owned();
            upserts.push(e);
        }
        self.finish(
            &mut index,
            IndexChange {
                clear_subtrees: &[from.as_str()],
                move_properties: Some((from.as_str(), to.as_str())),
                upserts: &upserts,
                pending_done: &[from.as_str(), to.as_str()],
                covered_by_pending: true,
                ..Default::default()
            },
            &intent,
        )?;
        index.entry(to)?.ok_or(VaultError::NotFound)
    }

    /// Usage counters (bytes and files stored, trash bytes, records, feature counts).
    pub fn usage(&self) -> Result<Vec<(String, i64)>, VaultError> {
        Ok(self.index().counters()?)
    }

    /// Bytes charged against the quota (files and trash) and the quota, if any: what a
    /// mounted drive shows as used and free space.
    pub fn space(&self) -> Result<(u64, Option<u64>), VaultError> {
        Ok((self.index().bytes_charged()?, self.quota()))
    }

    /// The index's own consistency check ("ok" when healthy).
    pub fn index_integrity(&self) -> Result<String, VaultError> {
        Ok(self.index().integrity_check()?)
    }

    /// Spools `body` (at most `max_bytes`) into a scratch file in the vault's staging
    /// area and hands it to `use_it` for reading; the file is removed afterwards. The
    /// spool may not exceed what the vault may still store (the quota less what it holds),
    /// so a tenant can never make the server hold more than twice its quota at once (the
    /// spool, plus entries staged from it, which count as they are written).
    pub fn with_spooled<T>(
        &self,
        body: &mut dyn Read,
        max_bytes: u64,
        use_it: impl FnOnce(&mut File) -> T,
    ) -> Result<T, VaultError> {
        let mut scratch = self.dir.scratch()?;
        let used = self.index().bytes_charged()?;
        let mut inflight = InflightGuard {
            counter: &self.inflight,
            bytes: 0,
        };
        let quota = self.quota();
        copy::copy_hashed(body, &mut scratch, max_bytes, |n| {
            let all = inflight.add(n);
            match quota {
                Some(quota) if used + all > quota => Err(VaultError::QuotaExceeded {
                    quota,
                    used,
                    attempted: all,
                }),
                _ => Ok(()),
            }
        })?;
        drop(inflight);
        Ok(use_it(scratch.rewind()?))
    }

    /// A scratch file in the vault's staging area (written, then read back), removed
    /// when dropped: for work that must spool tenant bytes without leaving the vault.
    pub fn scratch_file(&self) -> Result<dir::StagedFile<'_>, VaultError> {
        Ok(self.dir.scratch()?)
    }
}

/// Contents of the `VAULT` marker file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct VaultMarker {
    pub layout_version: u32,
    pub tenant_id: String,
    pub created_at: String,
}
