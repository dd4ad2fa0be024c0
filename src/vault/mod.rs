//! A tenant's vault: its directory (`dir`) and its index (`index`), and the `Vault` that
//! orders every operation across them.
//!
//! A write is acknowledged only when the bytes are fsynced in their final place, the
//! directory entry is fsynced, the index is updated and the audit event appended. A
//! crash between those steps leaves a `pending_writes` row that the next open repairs
//! from what is on disk. `VaultStore` hands out vaults from a bounded cache so that the
//! number of open descriptors and SQLite connections does not grow with the number of
//! tenants. This module never decides who may do what: callers arrive with a `Caller`
//! that the auth layer (or the operator CLI) has already vetted.

pub mod dir;
pub mod index;
pub mod layout;
pub mod path;

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use cap_fs_ext::DirExt;
use cap_std::fs::{Dir, File};
use sha2::{Digest, Sha256};

pub use crate::audit::Caller;
use crate::audit::{Actor, AuditAction, AuditEvent, AuditLog};
use crate::db;
use dir::{DirError, DiskEntry, Skipped, VaultDir};
use index::{Entry, EntryKind, Index, IndexChange, IndexError, Record, SearchHit, TrashItem};
use layout::{DataRoot, DataRootPath, LAYOUT_VERSION, SqliteFile};
use path::{CollectionName, RecordId, TenantId, VaultPath};

/// Errors of vault operations, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
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
    #[error("the vault's storage quota of {quota} bytes would be exceeded")]
    QuotaExceeded { quota: u64 },
    #[error("cannot move a directory into itself")]
    MoveIntoSelf,
    #[error("record version is {current}, not the one given")]
    VersionMismatch { current: i64 },
    #[error("the upload stream failed: {0}")]
    Upload(#[source] io::Error),
    #[error("vault directory is damaged: {0}")]
    Damaged(String),
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    #[error("index error: {0}")]
    Index(#[from] IndexError),
    #[error("audit log error: {0}")]
    Audit(#[from] crate::audit::AuditError),
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
            DirError::Io(e) => VaultError::Io(e),
        }
    }
}

impl From<io::Error> for VaultError {
    fn from(e: io::Error) -> Self {
        DirError::from(e).into()
    }
}

/// Limits that apply to every vault of a data root.
#[derive(Debug, Clone)]
pub struct VaultLimits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// How old a staging file must be before an open treats it as left by a crash.
    pub staging_grace: Duration,
    /// How many vaults stay open in the cache.
    pub cache_capacity: usize,
}

impl Default for VaultLimits {
    fn default() -> Self {
        VaultLimits {
            max_file_bytes: 16 * 1024 * 1024 * 1024,
            staging_grace: Duration::from_secs(3600),
            cache_capacity: 256,
        }
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

/// What `reindex` and `recover` found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReindexReport {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub staging_removed: usize,
    pub trash_rows_removed: usize,
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SkippedEntry {
    pub path: String,
    pub reason: String,
}

impl From<Skipped> for SkippedEntry {
    fn from(s: Skipped) -> Self {
        SkippedEntry {
            path: s.path,
            reason: s.reason,
        }
    }
}

/// The bytes of a read: an open, regular file and its index entry. The handle always
/// shows one whole version, since writers replace files by rename.
pub struct FileRead {
    pub file: File,
    pub entry: Entry,
}

/// Read and write size of large streams: big enough that syscalls and hand-offs to the
/// hashing thread are a small part of the cost.
const COPY_BUFFER: usize = 1024 * 1024;
const FIRST_BUFFER: usize = 64 * 1024;
const UNLIMITED: u64 = u64::MAX;

/// One tenant's vault.
pub struct Vault {
    tenant: TenantId,
    dir: VaultDir,
    index: Mutex<Index>,
    /// Serialises the short commit step (checks, rename, index) of writes to this vault;
    /// streaming happens outside it.
    commit_lock: Mutex<()>,
    audit: AuditLog,
    limits: VaultLimits,
    quota: AtomicU64,
    /// Bytes being streamed into staging right now, counted against the quota.
    inflight: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another thread cannot leave the index half-written (SQLite rolls back),
    // so a poisoned lock is still safe to use.
    m.lock().unwrap_or_else(|p| p.into_inner())
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

/// Reads a whole file and returns its SHA-256, in the same buffer size as writes.
fn hash_file(mut file: File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; FIRST_BUFFER];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Streams hashed inline until this many bytes; past it, hashing moves to a second
/// thread so that it overlaps the copy (small files avoid the thread's start-up cost).
const HASH_THREAD_AFTER: u64 = 4 * 1024 * 1024;
/// Buffers in flight between the copy and the hashing thread: bounds memory per write.
const HASH_BUFFERS: usize = 8;

type HashWorker = (
    std::sync::mpsc::SyncSender<(Vec<u8>, usize)>,
    std::sync::mpsc::Receiver<Vec<u8>>,
    std::thread::JoinHandle<Sha256>,
);

/// SHA-256 of a stream, computed while it is copied. Buffers circulate between the copy
/// loop and the hasher, so memory stays at `HASH_BUFFERS` buffers whatever the size.
struct StreamHasher {
    inline: Option<Sha256>,
    worker: Option<HashWorker>,
    hashed: u64,
    spare: Vec<Vec<u8>>,
    allocated: usize,
}

impl StreamHasher {
    fn new() -> Self {
        StreamHasher {
            inline: Some(Sha256::new()),
            worker: None,
            hashed: 0,
            spare: Vec::new(),
            allocated: 0,
        }
    }

    /// A buffer to read into: a spare one, one the hasher has finished with, or a new one
    /// while fewer than `HASH_BUFFERS` exist.
    fn take_buffer(&mut self) -> Vec<u8> {
        if let Some((_, returned, _)) = &self.worker {
            self.spare.extend(returned.try_iter());
            if self.spare.is_empty()
                && self.allocated >= HASH_BUFFERS
                && let Ok(buf) = returned.recv()
            {
                return buf;
            }
        }
        self.spare.pop().unwrap_or_else(|| {
            // Most files are small: the first buffer is too, so a 4 KiB write does not
            // allocate and zero a full copy buffer.
            let size = if self.allocated == 0 {
                FIRST_BUFFER
            } else {
                COPY_BUFFER
            };
            self.allocated += 1;
            vec![0u8; size]
        })
    }

    /// Hashes `buf[..n]` (already written) and takes the buffer back.
    fn consume(&mut self, buf: Vec<u8>, n: usize) {
        self.hashed += n as u64;
        if self.worker.is_none() && self.hashed > HASH_THREAD_AFTER {
            let mut state = self.inline.take().unwrap_or_default();
            let (to_hasher, from_copy) =
                std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(HASH_BUFFERS);
            let (to_copy, returned) = std::sync::mpsc::channel();
            let handle = std::thread::spawn(move || {
                for (buf, n) in from_copy {
                    state.update(&buf[..n]);
                    // The copy loop may have finished and dropped its receiver.
                    let _ = to_copy.send(buf);
                }
                state
            });
            self.worker = Some((to_hasher, returned, handle));
        }
        match (&mut self.inline, &self.worker) {
            (_, Some((to_hasher, _, _))) => {
                // A send fails only if the hasher thread died; `finish` reports that.
                let _ = to_hasher.send((buf, n));
            }
            (Some(state), None) => {
                state.update(&buf[..n]);
                self.spare.push(buf);
            }
            (None, None) => {}
        }
    }

    fn finish(self) -> io::Result<String> {
        let state = match self.worker {
            Some((to_hasher, _, handle)) => {
                drop(to_hasher);
                handle
                    .join()
                    .map_err(|_| io::Error::other("hashing thread panicked"))?
            }
            None => self.inline.unwrap_or_default(),
        };
        Ok(hex::encode(state.finalize()))
    }
}

/// Copies `body` into a staged file while hashing it, refusing more than `max` bytes,
/// calling `on_chunk` with each chunk's length (for quota checks), then fsyncs. Returns
/// the SHA-256 and the size. The one streaming loop of every write into a vault.
fn copy_hashed(
    body: &mut dyn Read,
    staged: &mut dir::StagedFile<'_>,
    max: u64,
    mut on_chunk: impl FnMut(u64) -> Result<(), VaultError>,
) -> Result<(String, u64), VaultError> {
    let mut hasher = StreamHasher::new();
    let mut size: u64 = 0;
    loop {
        let mut buf = hasher.take_buffer();
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(VaultError::Upload(e)),
        };
        size += n as u64;
        if size > max {
            return Err(VaultError::TooLarge { limit: max });
        }
        on_chunk(n as u64)?;
        io::Write::write_all(staged, &buf[..n])?;
        hasher.consume(buf, n);
    }
    staged.sync()?;
    Ok((hasher.finish()?, size))
}

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

impl Vault {
    fn open(
        root: &DataRoot,
        tenants: &Dir,
        tenant: TenantId,
        audit: AuditLog,
        limits: VaultLimits,
    ) -> Result<Vault, VaultError> {
        let dir = VaultDir::open(tenants, &tenant.to_string())?;
        dir.check_index_file()?;
        let index = Index::open(&root.sqlite_path(SqliteFile::TenantIndex(tenant)))?;
        let vault = Vault {
            tenant,
            dir,
            index: Mutex::new(index),
            commit_lock: Mutex::new(()),
            audit,
            limits,
            quota: AtomicU64::new(UNLIMITED),
            inflight: AtomicU64::new(0),
        };
        vault.recover()?;
        Ok(vault)
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Sets the storage quota (`None`: unlimited). The control plane owns the number.
    pub fn set_quota(&self, quota: Option<u64>) {
        self.quota
            .store(quota.unwrap_or(UNLIMITED), Ordering::SeqCst);
    }

    fn quota(&self) -> Option<u64> {
        match self.quota.load(Ordering::SeqCst) {
            UNLIMITED => None,
            q => Some(q),
        }
    }

    fn audit(&self, caller: &Caller, action: AuditAction, target: &str) -> Result<(), VaultError> {
        self.audit.append(
            &AuditEvent::new(action, caller.actor.clone())
                .tenant(self.tenant)
                .ip(caller.ip.clone())
                .target(target),
        )?;
        Ok(())
    }

    fn audit_detail(
        &self,
        caller: &Caller,
        action: AuditAction,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), VaultError> {
        self.audit.append(
            &AuditEvent::new(action, caller.actor.clone())
                .tenant(self.tenant)
                .ip(caller.ip.clone())
                .target(target)
                .detail(detail),
        )?;
        Ok(())
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        lock(&self.index)
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

    fn dir_entries(created: &[VaultPath], who: &str) -> Vec<Entry> {
        let now = db::now();
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
    ) -> Result<Entry, VaultError> {
        let (used, old_size) = {
            let index = self.index();
            let old = index.entry(path)?;
            if old.as_ref().is_some_and(|e| e.kind == EntryKind::Dir) {
                return Err(VaultError::IsADirectory);
            }
            check_precondition(precondition, old.as_ref())?;
            self.check_case(&index, path)?;
            (index.bytes_stored()?, old.map_or(0, |e| e.size))
        };
        let quota = self.quota();
        let mut staged = self.dir.stage()?;
        let mut inflight = InflightGuard {
            counter: &self.inflight,
            bytes: 0,
        };
        let max = self.limits.max_file_bytes;
        let (sha256, size) = copy_hashed(body, &mut staged, max, |n| {
            let all_inflight = inflight.add(n);
            match quota {
                Some(quota) if used.saturating_sub(old_size) + all_inflight > quota => {
                    Err(VaultError::QuotaExceeded { quota })
                }
                _ => Ok(()),
            }
        })?;

        let _commit = lock(&self.commit_lock);
        let mut index = self.index();
        // Re-check under the commit lock: another writer may have committed meanwhile.
        let old = index.entry(path)?;
        check_precondition(precondition, old.as_ref())?;
        self.check_case(&index, path)?;
        if let Some(quota) = quota {
            let used = index.bytes_stored()?;
            if used.saturating_sub(old.as_ref().map_or(0, |e| e.size)) + size > quota {
                return Err(VaultError::QuotaExceeded { quota });
            }
        }
        index.begin_pending(&[path])?;
        let created = self.dir.commit(staged, path)?;
        drop(inflight);
        let meta = self.dir.metadata(path)?;
        let who = caller.actor.to_string();
        let now = db::now();
        let entry = Entry {
            path: path.to_string(),
            name: path.file_name().to_owned(),
            kind: EntryKind::File,
            size,
            sha256: Some(sha256),
            content_type: Some(content_type_for(path.file_name())),
            created_at: old.map_or(now, |e| e.created_at),
            modified_at: format_time(meta.modified()?.into_std()),
            modified_by: Some(who.clone()),
        };
        let mut upserts = Self::dir_entries(&created, &who);
        upserts.push(entry.clone());
        index.apply(IndexChange {
            upserts: &upserts,
            pending_done: &[path.as_str()],
            covered_by_pending: true,
            ..Default::default()
        })?;
        drop(index);
        self.audit_detail(
            caller,
            AuditAction::FileWrite,
            path.as_str(),
            serde_json::json!({ "size": size }),
        )?;
        Ok(entry)
    }

    /// Audits a read of tenant content by an operator (the CLI's `files get` and
    /// `files ls`): reads by members are not audited, operator access always is.
    pub fn audit_operator_read(&self, caller: &Caller, target: &str) -> Result<(), VaultError> {
        self.audit(caller, AuditAction::FileRead, target)
    }

    /// Metadata of a file or directory.
    pub fn stat(&self, path: &VaultPath) -> Result<Entry, VaultError> {
        match self.index().entry(path)? {
            Some(e) => Ok(e),
            None => Err(VaultError::NotFound),
        }
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
        let _commit = lock(&self.commit_lock);
        let mut index = self.index();
        self.check_case(&index, path)?;
        if let Some(e) = index.entry(path)? {
            return match e.kind {
                EntryKind::Dir => Ok(e),
                EntryKind::File => Err(VaultError::AlreadyExists),
            };
        }
        index.begin_pending(&[path])?;
        let created = self.dir.mkdir(path)?;
        let upserts = Self::dir_entries(&created, &caller.actor.to_string());
        index.apply(IndexChange {
            upserts: &upserts,
            pending_done: &[path.as_str()],
            covered_by_pending: true,
            ..Default::default()
        })?;
        let entry = index.entry(path)?.ok_or(VaultError::NotFound)?;
        drop(index);
        self.audit(caller, AuditAction::DirCreate, path.as_str())?;
        Ok(entry)
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
        let _commit = lock(&self.commit_lock);
        let mut index = self.index();
        let moved = index.subtree(from)?;
        if moved.is_empty() {
            return Err(VaultError::NotFound);
        }
        if index.entry(to)?.is_some() {
            return Err(VaultError::AlreadyExists);
        }
        self.check_case(&index, to)?;
        index.begin_pending(&[from, to])?;
        let created = self.dir.rename(from, to)?;
        let who = caller.actor.to_string();
        let mut upserts = Self::dir_entries(&created, &who);
        for mut e in moved {
            let rest = &e.path[from.as_str().len()..];
            e.path = format!("{to}{rest}");
            e.name = e.path.rsplit('/').next().unwrap_or(&e.path).to_owned();
            upserts.push(e);
        }
        index.apply(IndexChange {
            clear_subtrees: &[from.as_str()],
            upserts: &upserts,
            pending_done: &[from.as_str(), to.as_str()],
            covered_by_pending: true,
            ..Default::default()
        })?;
        let entry = index.entry(to)?.ok_or(VaultError::NotFound)?;
        drop(index);
        self.audit_detail(
            caller,
            AuditAction::FileMove,
            from.as_str(),
            serde_json::json!({ "to": to.as_str() }),
        )?;
        Ok(entry)
    }

    /// Moves a file or directory to the trash; returns the trash item.
    pub fn delete(&self, caller: &Caller, path: &VaultPath) -> Result<TrashItem, VaultError> {
        let _commit = lock(&self.commit_lock);
        let mut index = self.index();
        let subtree = index.subtree(path)?;
        let Some(top) = subtree.first() else {
            return Err(VaultError::NotFound);
        };
        let item = TrashItem {
            id: uuid::Uuid::new_v4().simple().to_string(),
            original_path: path.to_string(),
            kind: top.kind,
            size: subtree.iter().map(|e| e.size).sum(),
            deleted_at: db::now(),
            deleted_by: Some(caller.actor.to_string()),
        };
        // The trash row goes in with the pending mark, before the move: after a crash,
        // a row without its `.trash/<id>` is dropped, never an item without its row.
        index.begin_pending(&[path])?;
        index.apply(IndexChange {
            trash_insert: Some(&item),
            ..Default::default()
        })?;
        if let Err(e) = self.dir.move_to_trash(path, &item.id) {
            index.apply(IndexChange {
                trash_remove: Some(&item.id),
                pending_done: &[path.as_str()],
                ..Default::default()
            })?;
            return Err(e.into());
        }
        index.apply(IndexChange {
            clear_subtrees: &[path.as_str()],
            pending_done: &[path.as_str()],
            covered_by_pending: true,
            ..Default::default()
        })?;
        drop(index);
        self.audit_detail(
            caller,
            AuditAction::FileDelete,
            path.as_str(),
            serde_json::json!({ "trash_id": item.id, "size": item.size }),
        )?;
        Ok(item)
    }

    pub fn trash_list(&self) -> Result<Vec<TrashItem>, VaultError> {
        Ok(self.index().trash_list()?)
    }

    /// Restores a trash item to its original path, or to `to`.
    pub fn restore(
        &self,
        caller: &Caller,
        trash_id: &str,
        to: Option<&VaultPath>,
    ) -> Result<Entry, VaultError> {
        let _commit = lock(&self.commit_lock);
        let mut index = self.index();
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
        index.begin_pending(&[&target])?;
        let created = self.dir.restore_from_trash(&item.id, &target)?;
        let mut upserts = Self::dir_entries(&created, &caller.actor.to_string());
        upserts.extend(self.scan_subtree(&index, &target, &mut |_| {})?);
        index.apply(IndexChange {
            clear_subtrees: &[target.as_str()],
            upserts: &upserts,
            trash_remove: Some(&item.id),
            pending_done: &[target.as_str()],
            // A lost trash-row removal is repaired too: recovery drops rows whose item
            // is no longer in `.trash/`.
            covered_by_pending: true,
            ..Default::default()
        })?;
        let entry = index.entry(&target)?.ok_or(VaultError::NotFound)?;
        drop(index);
        self.audit_detail(
            caller,
            AuditAction::FileRestore,
            target.as_str(),
            serde_json::json!({ "trash_id": item.id }),
        )?;
        Ok(entry)
    }

    /// Deletes a trash item for good.
    pub fn purge(&self, caller: &Caller, trash_id: &str) -> Result<TrashItem, VaultError> {
        let _commit = lock(&self.commit_lock);
        let mut index = self.index();
        let item = index.trash_item(trash_id)?.ok_or(VaultError::NotFound)?;
        match self.dir.purge_trash(&item.id) {
            Ok(()) | Err(DirError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        index.apply(IndexChange {
            trash_remove: Some(&item.id),
            ..Default::default()
        })?;
        drop(index);
        self.audit_detail(
            caller,
            AuditAction::FilePurge,
            &item.original_path,
            serde_json::json!({ "trash_id": item.id, "size": item.size }),
        )?;
        Ok(item)
    }

    // ---- repair --------------------------------------------------------------------------

    /// Reads the subtree at `root` from disk into index entries, hashing files whose size
    /// or modification time differ from the index (or all of them, when the index has
    /// no entry).
    fn scan_subtree(
        &self,
        index: &Index,
        root: &VaultPath,
        skipped: &mut dyn FnMut(Skipped),
    ) -> Result<Vec<Entry>, VaultError> {
        let mut found: Vec<DiskEntry> = Vec::new();
        match self.dir.walk(
            Some(root),
            &mut |e| {
                found.push(e);
                Ok(())
            },
            skipped,
        ) {
            Ok(()) | Err(DirError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let mut out = Vec::with_capacity(found.len());
        for d in found {
            let old = index.entry(&d.path)?;
            out.push(self.entry_from_disk(d, old)?);
        }
        Ok(out)
    }

    fn entry_from_disk(&self, d: DiskEntry, old: Option<Entry>) -> Result<Entry, VaultError> {
        let modified_at = format_time(d.modified);
        let now = db::now();
        let (kind, sha256) = if d.is_dir {
            (EntryKind::Dir, None)
        } else {
            let unchanged = old.as_ref().filter(|o| {
                o.kind == EntryKind::File && o.size == d.size && o.modified_at == modified_at
            });
            let sha = match unchanged.and_then(|o| o.sha256.clone()) {
                Some(sha) => sha,
                None => hash_file(self.dir.open_file(&d.path)?.0)?,
            };
            (EntryKind::File, Some(sha))
        };
        Ok(Entry {
            path: d.path.to_string(),
            name: d.path.file_name().to_owned(),
            kind,
            size: d.size,
            sha256,
            content_type: (kind == EntryKind::File).then(|| content_type_for(d.path.file_name())),
            created_at: old.as_ref().map_or(now, |o| o.created_at.clone()),
            modified_at,
            modified_by: old.and_then(|o| o.modified_by),
        })
    }

    /// Repairs what a crash may have left: staging files older than the grace period,
    /// index entries of paths with a pending write, and trash rows without their item.
    /// Runs on every open; cheap when there is nothing to repair.
    fn recover(&self) -> Result<ReindexReport, VaultError> {
        let mut report = ReindexReport {
            staging_removed: self.dir.clean_staging(self.limits.staging_grace)?,
            ..Default::default()
        };
        let _commit = lock(&self.commit_lock);
        let mut index = self.index();
        let pending = index.pending()?;
        if pending.is_empty() {
            return Ok(report);
        }
        for raw in &pending {
            let mut skipped = Vec::new();
            let upserts = match VaultPath::parse(raw) {
                Ok(path) => {
                    // A crashed write may also have created parent directories.
                    let mut upserts = self.missing_ancestors(&index, &path)?;
                    upserts.extend(self.scan_subtree(&index, &path, &mut |s| skipped.push(s))?);
                    upserts
                }
                Err(_) => Vec::new(),
            };
            report.skipped.extend(skipped.into_iter().map(Into::into));
            index.apply(IndexChange {
                clear_subtrees: &[raw.as_str()],
                upserts: &upserts,
                pending_done: &[raw.as_str()],
                ..Default::default()
            })?;
        }
        report.trash_rows_removed = self.drop_orphan_trash_rows(&mut index)?;
        drop(index);
        self.audit.append(
            &AuditEvent::new(AuditAction::VaultReconcile, Actor::System)
                .tenant(self.tenant)
                .detail(serde_json::json!({ "pending_paths": pending.len() })),
        )?;
        Ok(report)
    }

    /// Index entries for ancestors of `path` that exist on disk as directories but not in
    /// the index.
    fn missing_ancestors(&self, index: &Index, path: &VaultPath) -> Result<Vec<Entry>, VaultError> {
        let mut out = Vec::new();
        for ancestor in path.ancestors() {
            if index.entry(&ancestor)?.is_some() {
                continue;
            }
            match self.dir.metadata(&ancestor) {
                Ok(meta) if meta.is_dir() => out.push(
                    self.entry_from_disk(
                        DiskEntry {
                            path: ancestor,
                            is_dir: true,
                            size: 0,
                            modified: meta
                                .modified()
                                .map(|t| t.into_std())
                                .unwrap_or(std::time::SystemTime::UNIX_EPOCH),
                        },
                        None,
                    )?,
                ),
                _ => break,
            }
        }
        Ok(out)
    }

    fn drop_orphan_trash_rows(&self, index: &mut Index) -> Result<usize, VaultError> {
        let mut removed = 0;
        for item in index.trash_list()? {
            if !self.dir.trash_exists(&item.id) {
                index.apply(IndexChange {
                    trash_remove: Some(&item.id),
                    ..Default::default()
                })?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Rebuilds all file metadata from `files/`, hashing every file. Symlinks, special
    /// files and unaddressable names are reported, never indexed.
    pub fn reindex(&self, caller: &Caller) -> Result<ReindexReport, VaultError> {
        let mut report = ReindexReport {
            staging_removed: self.dir.clean_staging(self.limits.staging_grace)?,
            ..Default::default()
        };
        let _commit = lock(&self.commit_lock);
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        self.dir.walk(
            None,
            &mut |e| {
                found.push(e);
                Ok(())
            },
            &mut |s| skipped.push(SkippedEntry::from(s)),
        )?;
        let mut entries = Vec::with_capacity(found.len());
        for d in found {
            let is_dir = d.is_dir;
            // A full rebuild trusts nothing from the old index: every file is hashed.
            let e = self.entry_from_disk(d, None)?;
            if is_dir {
                report.dirs += 1;
            } else {
                report.files += 1;
                report.bytes += e.size;
            }
            entries.push(e);
        }
        report.skipped = skipped;
        let mut index = self.index();
        index.rebuild(&entries)?;
        report.trash_rows_removed = self.drop_orphan_trash_rows(&mut index)?;
        drop(index);
        self.audit_detail(
            caller,
            AuditAction::VaultReindex,
            "files",
            serde_json::json!({ "files": report.files, "dirs": report.dirs,
                                "skipped": report.skipped.len() }),
        )?;
        Ok(report)
    }

    // ---- records ------------------------------------------------------------------------

    pub fn record(&self, collection: &CollectionName, id: &RecordId) -> Result<Record, VaultError> {
        self.index()
            .record(collection, id)?
            .ok_or(VaultError::NotFound)
    }

    pub fn create_record(
        &self,
        caller: &Caller,
        collection: &CollectionName,
        id: Option<RecordId>,
        body: &serde_json::Value,
    ) -> Result<Record, VaultError> {
        let id = id.unwrap_or_else(RecordId::generate);
        let record = self
            .index()
            .insert_record(collection, &id, body, &caller.actor.to_string())
            .map_err(record_error)?;
        self.audit(
            caller,
            AuditAction::RecordCreate,
            &format!("{collection}/{id}"),
        )?;
        Ok(record)
    }

    pub fn replace_record(
        &self,
        caller: &Caller,
        collection: &CollectionName,
        id: &RecordId,
        body: &serde_json::Value,
        expected_version: Option<i64>,
    ) -> Result<Record, VaultError> {
        let record = self
            .index()
            .replace_record(
                collection,
                id,
                body,
                expected_version,
                &caller.actor.to_string(),
            )
            .map_err(record_error)?;
        self.audit_detail(
            caller,
            AuditAction::RecordUpdate,
            &format!("{collection}/{id}"),
            serde_json::json!({ "version": record.version }),
        )?;
        Ok(record)
    }

    pub fn delete_record(
        &self,
        caller: &Caller,
        collection: &CollectionName,
        id: &RecordId,
        expected_version: Option<i64>,
    ) -> Result<(), VaultError> {
        self.index()
            .delete_record(collection, id, expected_version)
            .map_err(record_error)?;
        self.audit(
            caller,
            AuditAction::RecordDelete,
            &format!("{collection}/{id}"),
        )
    }

    pub fn list_records(
        &self,
        collection: &CollectionName,
        filters: &[(String, serde_json::Value)],
        before: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<Record>, VaultError> {
        Ok(self
            .index()
            .list_records(collection, filters, before, limit)?)
    }

    pub fn all_records(&self) -> Result<Vec<Record>, VaultError> {
        Ok(self.index().all_records()?)
    }

    pub fn collections(&self) -> Result<Vec<(String, u64)>, VaultError> {
        Ok(self.index().collections()?)
    }

    pub fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>, VaultError> {
        Ok(self.index().search(text, limit)?)
    }

    /// Usage counters (bytes and files stored, feature counts).
    pub fn usage(&self) -> Result<Vec<(String, i64)>, VaultError> {
        Ok(self.index().counters()?)
    }

    /// The index's own consistency check ("ok" when healthy).
    pub fn index_integrity(&self) -> Result<String, VaultError> {
        Ok(self.index().integrity_check()?)
    }
}

/// Files (and directories) staged for one import, made visible together by `commit`.
/// Dropping an uncommitted batch removes its staged files.
pub struct ImportBatch<'a> {
    vault: &'a Vault,
    files: Vec<(VaultPath, dir::KeptFile, String, u64)>,
    dirs: Vec<VaultPath>,
}

/// What an import batch did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportSummary {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub records: u64,
    pub skipped: Vec<String>,
}

impl ImportBatch<'_> {
    /// Streams one file into staging, hashing it; more than `max_bytes` fails with
    /// `TooLarge`. Returns its SHA-256 and size.
    pub fn stage_file(
        &mut self,
        path: VaultPath,
        body: &mut dyn Read,
        max_bytes: u64,
    ) -> Result<(String, u64), VaultError> {
        let mut staged = self.vault.dir.stage()?;
        let (sha, size) = copy_hashed(body, &mut staged, max_bytes, |_| Ok(()))?;
        self.files.push((path, staged.keep(), sha.clone(), size));
        Ok((sha, size))
    }

    pub fn add_dir(&mut self, path: VaultPath) {
        self.dirs.push(path);
    }

    /// Makes everything visible, or nothing. With `skip_existing`, paths (and records)
    /// that already exist are left alone and reported; otherwise any existing path fails
    /// the import before anything changes. Records are inserted in the same step.
    pub fn commit(
        mut self,
        caller: &Caller,
        records: &[Record],
        skip_existing: bool,
    ) -> Result<ImportSummary, VaultError> {
        let vault = self.vault;
        let _commit = lock(&vault.commit_lock);
        let mut index = vault.index();
        let mut summary = ImportSummary::default();
        let files = std::mem::take(&mut self.files);
        let mut to_commit = Vec::with_capacity(files.len());
        for (path, kept, sha, size) in files {
            let clash = match index.entry(&path)? {
                Some(_) => Some(VaultError::AlreadyExists),
                None => vault.check_case(&index, &path).err(),
            };
            match clash {
                Some(_) if skip_existing => {
                    vault.dir.discard_kept(&kept);
                    summary.skipped.push(path.to_string());
                }
                Some(e) => {
                    // Put the rest back so that `Drop` discards every staged file.
                    self.files.push((path, kept, sha, size));
                    self.files.extend(to_commit);
                    return Err(e);
                }
                None => to_commit.push((path, kept, sha, size)),
            }
        }
        if let Some(quota) = vault.quota() {
            let adding: u64 = to_commit.iter().map(|f| f.3).sum();
            if index.bytes_stored()? + adding > quota {
                self.files.extend(to_commit);
                return Err(VaultError::QuotaExceeded { quota });
            }
        }
        let pending: Vec<&VaultPath> = to_commit
            .iter()
            .map(|f| &f.0)
            .chain(self.dirs.iter())
            .collect();
        index.begin_pending(&pending)?;
        let who = caller.actor.to_string();
        let mut upserts = Vec::new();
        // Indexes into `to_commit` of the files already renamed into place.
        let mut committed: Vec<usize> = Vec::new();
        let mut failure = None;
        for dir_path in &self.dirs {
            match vault.dir.mkdir(dir_path) {
                Ok(created) => upserts.extend(Vault::dir_entries(&created, &who)),
                Err(e) => {
                    failure = Some(VaultError::from(e));
                    break;
                }
            }
        }
        if failure.is_none() {
            for (i, (path, kept, sha, size)) in to_commit.iter().enumerate() {
                match vault.dir.commit_kept(kept, path) {
                    Ok(created) => {
                        upserts.extend(Vault::dir_entries(&created, &who));
                        let modified = vault
                            .dir
                            .metadata(path)
                            .ok()
                            .and_then(|m| m.modified().ok())
                            .map(|t| format_time(t.into_std()));
                        let now = db::now();
                        upserts.push(Entry {
                            path: path.to_string(),
                            name: path.file_name().to_owned(),
                            kind: EntryKind::File,
                            size: *size,
                            sha256: Some(sha.clone()),
                            content_type: Some(content_type_for(path.file_name())),
                            created_at: now.clone(),
                            modified_at: modified.unwrap_or(now),
                            modified_by: Some(who.clone()),
                        });
                        committed.push(i);
                        summary.files += 1;
                        summary.bytes += size;
                    }
                    Err(e) => {
                        failure = Some(e.into());
                        break;
                    }
                }
            }
        }
        if failure.is_none() && !records.is_empty() {
            match index.insert_records_verbatim(records, skip_existing) {
                Ok(n) => summary.records = n as u64,
                Err(e) => failure = Some(record_error(e)),
            }
        }
        let pending_strs: Vec<&str> = pending.iter().map(|p| p.as_str()).collect();
        if let Some(e) = failure {
            // Roll back: the files this import created go again. Directories it created
            // stay (empty) and are indexed, so the index matches the disk.
            for &i in &committed {
                let _ = vault.dir.remove_committed_file(&to_commit[i].0);
            }
            upserts.retain(|u| u.kind == EntryKind::Dir);
            index.apply(IndexChange {
                upserts: &upserts,
                pending_done: &pending_strs,
                ..Default::default()
            })?;
            self.files.extend(
                to_commit
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !committed.contains(i))
                    .map(|(_, f)| f),
            );
            return Err(e);
        }
        summary.dirs = upserts.iter().filter(|u| u.kind == EntryKind::Dir).count() as u64;
        index.apply(IndexChange {
            upserts: &upserts,
            pending_done: &pending_strs,
            covered_by_pending: true,
            ..Default::default()
        })?;
        drop(index);
        vault.audit_detail(
            caller,
            AuditAction::Import,
            "files",
            serde_json::json!({ "files": summary.files, "bytes": summary.bytes,
                                "records": summary.records, "skipped": summary.skipped.len() }),
        )?;
        Ok(summary)
    }
}

impl Drop for ImportBatch<'_> {
    fn drop(&mut self) {
        for (_, kept, _, _) in &self.files {
            self.vault.dir.discard_kept(kept);
        }
    }
}

impl Vault {
    /// Spools `body` (at most `max_bytes`) into a scratch file in the vault's staging
    /// area and hands it to `use_it` for reading; the file is removed afterwards.
    pub fn with_spooled<T>(
        &self,
        body: &mut dyn Read,
        max_bytes: u64,
        use_it: impl FnOnce(&mut File) -> T,
    ) -> Result<T, VaultError> {
        let mut scratch = self.dir.scratch()?;
        let copied =
            io::copy(&mut body.take(max_bytes + 1), &mut scratch).map_err(VaultError::Upload)?;
        if copied > max_bytes {
            return Err(VaultError::TooLarge { limit: max_bytes });
        }
        Ok(use_it(scratch.rewind()?))
    }

    /// A scratch file in the vault's staging area (written, then read back), removed
    /// when dropped: for work that must spool tenant bytes without leaving the vault.
    pub fn scratch_file(&self) -> Result<dir::StagedFile<'_>, VaultError> {
        Ok(self.dir.scratch()?)
    }

    /// Starts an import: files are staged one by one, then committed together.
    pub fn begin_import(&self) -> ImportBatch<'_> {
        ImportBatch {
            vault: self,
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }
}

fn record_error(e: IndexError) -> VaultError {
    match e {
        IndexError::RecordNotFound => VaultError::NotFound,
        IndexError::RecordExists => VaultError::AlreadyExists,
        IndexError::VersionMismatch { current } => VaultError::VersionMismatch { current },
        other => VaultError::Index(other),
    }
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

/// Contents of the `VAULT` marker file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct VaultMarker {
    pub layout_version: u32,
    pub tenant_id: String,
    pub created_at: String,
}

/// Opens vaults of one data root and keeps at most `cache_capacity` of them open.
pub struct VaultStore {
    root: Arc<DataRoot>,
    tenants: Dir,
    audit: AuditLog,
    limits: VaultLimits,
    cache: Mutex<VaultCache>,
}

struct VaultCache {
    tick: u64,
    /// Vaults kept open, with the tick of their last use.
    open: HashMap<TenantId, (Arc<Vault>, u64)>,
    /// Every vault handed out, so that one still in use after eviction is reused rather
    /// than opened twice (two instances would not share a commit lock).
    handed_out: HashMap<TenantId, Weak<Vault>>,
}

impl VaultStore {
    pub fn new(root: Arc<DataRoot>, audit: AuditLog, limits: VaultLimits) -> io::Result<Self> {
        let tenants_name = DataRootPath::TenantsDir.path();
        match root.dir().create_dir(&tenants_name) {
            Ok(()) => dir::sync_dir(root.dir())?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let tenants = root.dir().open_dir_nofollow(&tenants_name)?;
        Ok(VaultStore {
            root,
            tenants,
            audit,
            limits,
            cache: Mutex::new(VaultCache {
                tick: 0,
                open: HashMap::new(),
                handed_out: HashMap::new(),
            }),
        })
    }

    pub fn limits(&self) -> &VaultLimits {
        &self.limits
    }

    /// Creates the vault directory and index of a new tenant.
    pub fn create(&self, tenant: TenantId) -> Result<Arc<Vault>, VaultError> {
        let marker = VaultMarker {
            layout_version: LAYOUT_VERSION,
            tenant_id: tenant.to_string(),
            created_at: db::now(),
        };
        let marker = serde_json::to_string_pretty(&marker).map_err(io::Error::other)?;
        VaultDir::create(&self.tenants, &tenant.to_string(), &marker)?;
        self.open(tenant)
    }

    /// The vault of `tenant`, from the cache or freshly opened (which runs recovery).
    pub fn open(&self, tenant: TenantId) -> Result<Arc<Vault>, VaultError> {
        let mut cache = lock(&self.cache);
        cache.tick += 1;
        let tick = cache.tick;
        if let Some((vault, used)) = cache.open.get_mut(&tenant) {
            *used = tick;
            return Ok(vault.clone());
        }
        let vault = match cache.handed_out.get(&tenant).and_then(Weak::upgrade) {
            Some(v) => v,
            None => Arc::new(Vault::open(
                &self.root,
                &self.tenants,
                tenant,
                self.audit.clone(),
                self.limits.clone(),
            )?),
        };
        cache.handed_out.insert(tenant, Arc::downgrade(&vault));
        cache.open.insert(tenant, (vault.clone(), tick));
        if cache.open.len() > self.limits.cache_capacity.max(1) {
            // Evict the least recently used. O(capacity), only on a miss at capacity.
            if let Some(oldest) = cache
                .open
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| *id)
            {
                cache.open.remove(&oldest);
            }
            if cache.handed_out.len() > 2 * self.limits.cache_capacity.max(1) {
                cache.handed_out.retain(|_, w| w.strong_count() > 0);
            }
        }
        Ok(vault)
    }

    /// How many vaults are open in the cache now.
    pub fn open_count(&self) -> usize {
        lock(&self.cache).open.len()
    }

    /// Drops a vault from the cache (before its directory is removed or moved).
    pub fn evict(&self, tenant: TenantId) {
        let mut cache = lock(&self.cache);
        cache.open.remove(&tenant);
        cache.handed_out.remove(&tenant);
    }
}
