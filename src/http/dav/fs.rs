//! dav-server's filesystem trait implemented on a tenant's `Vault`, so that WebDAV gets
//! exactly the vault's guarantees and nothing of dav-server's own local filesystem (which
//! follows symlinks out of its root).
//!
//! Every `DavPath` becomes a `VaultPath` (`vault_path`), the one parser of every path
//! input; every operation runs through the caller's `TenantAccess`, so writes are staged,
//! fsynced, renamed, indexed, quota-checked and audited like the API's. A PUT streams:
//! dav-server hands chunks to `Upload`, which feeds a blocking thread running
//! `Vault::write_file` through a bounded channel; `flush` (called once the body has
//! ended) waits for the commit, so the client's 201/204 comes after the data is durable.
//! A body that ends any other way (client gone, stall, error) never reaches `End`: the
//! writer sees an aborted stream and the vault discards what was staged. Deletes go to
//! the trash, as in the API and the web UI.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::io::{self, Read, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::StatusCode;
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsError, FsFuture, FsResult,
    FsStream, OpenOptions, ReadDirMeta,
};
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::paths::vault_path;
use crate::auth::TenantAccess;
use crate::db;
use crate::vault::index::properties::{Property, PropertyChange};
use crate::vault::index::{Entry, EntryKind};
use crate::vault::path::VaultPath;
use crate::vault::{Precondition, VaultError};

/// Entries fetched from the index per step of a directory listing: a 10,000-entry
/// folder streams out in ten steps, never held whole.
const LIST_PAGE: u32 = 1000;
/// Chunks of an upload in flight between the socket and the writing thread.
const UPLOAD_QUEUE: usize = 8;

/// One tenant's vault as dav-server sees it: the caller's checked access.
#[derive(Clone)]
pub struct VaultFs {
    access: Arc<TenantAccess>,
    max_file_bytes: u64,
    /// The dead properties of the entries of the listing page being described, read
    /// with the page (one statement per page, not one per entry): a PROPFIND of a
    /// folder answers from here. One page at a time (`note_listed`).
    listed: Arc<Mutex<HashMap<String, Vec<Property>>>>,
    /// Set when a listing page could not be read. dav-server skips a failed entry and
    /// would answer a complete-looking 207; `serve` aborts the response instead, so no
    /// client (rclone sync, say) takes a short listing for the folder.
    listing_failed: Arc<AtomicBool>,
}

impl VaultFs {
    pub fn new(access: TenantAccess, max_file_bytes: u64) -> VaultFs {
        VaultFs {
            access: Arc::new(access),
            max_file_bytes,
            listed: Arc::default(),
            listing_failed: Arc::default(),
        }
    }

    /// Whether a listing of this request failed part way (see `listing_failed`).
    pub fn listing_failed(&self) -> Arc<AtomicBool> {
        self.listing_failed.clone()
    }

    /// Runs vault work on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&TenantAccess) -> Result<T, VaultError> + Send + 'static,
    ) -> FsResult<T> {
        let access = self.access.clone();
        let answer = super::super::extract::blocking(move || Ok(work(&access)))
            .await
            .map_err(|_| FsError::GeneralFailure)?;
        answer.map_err(fs_error)
    }
}

/// The vault's refusals in dav-server's terms (which become the status codes RFC 4918
/// asks for: 404, 405 for an existing target, 403, 413, 507).
fn fs_error(e: VaultError) -> FsError {
    match e {
        VaultError::NotFound => FsError::NotFound,
        VaultError::AlreadyExists
        | VaultError::ExistsAt(_)
        | VaultError::CaseConflict(..)
        | VaultError::PreconditionFailed => FsError::Exists,
        VaultError::Frozen
        | VaultError::Moving
        | VaultError::IsADirectory
        | VaultError::NotADirectory
        | VaultError::NotRegular
        | VaultError::Escape
        | VaultError::MoveIntoSelf => FsError::Forbidden,
        VaultError::TooLarge { .. } => FsError::TooLarge,
        VaultError::QuotaExceeded { .. }
        | VaultError::StorageFull
        | VaultError::PropertiesTooLarge(_) => FsError::InsufficientStorage,
        // The client's own stream failed; nothing was kept.
        VaultError::Upload(_) => FsError::GeneralFailure,
        other => {
            tracing::error!(error = %other, "WebDAV: vault operation failed");
            FsError::GeneralFailure
        }
    }
}

fn required(path: &DavPath) -> FsResult<VaultPath> {
    vault_path(path.as_bytes())
        .map_err(|_| FsError::Forbidden)?
        .ok_or(FsError::Forbidden)
}

fn optional(path: &DavPath) -> FsResult<Option<VaultPath>> {
    vault_path(path.as_bytes()).map_err(|_| FsError::Forbidden)
}

/// The key of `listed` for a path (the vault path's text).
fn listed_key(path: &DavPath) -> Option<String> {
    optional(path).ok().flatten().map(|p| p.as_str().to_owned())
}

fn system_time(rfc3339: &str) -> Option<SystemTime> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(t.into())
}

/// An index entry (or the vault's root) as WebDAV metadata. A file's ETag is the first
/// 128 bits of its SHA-256 (32 hex digits): as strong as a tag needs, and short enough
/// for clients with fixed-size `If:` buffers (litmus cuts the header at 199 bytes, which
/// two full 64-digit tags overflow).
#[derive(Debug, Clone)]
struct Meta {
    dir: bool,
    len: u64,
    modified: SystemTime,
    created: Option<SystemTime>,
    sha256: Option<String>,
}

impl Meta {
    fn of(entry: &Entry) -> Meta {
        Meta {
            dir: entry.kind == EntryKind::Dir,
            len: entry.size,
            modified: system_time(&entry.modified_at).unwrap_or(UNIX_EPOCH),
            created: system_time(&entry.created_at),
            sha256: entry.sha256.clone(),
        }
    }

    /// The vault's root, dated by its tenant's creation (stable, so its ETag is too).
    fn root(created_at: &str) -> Meta {
        Meta {
            dir: true,
            len: 0,
            modified: system_time(created_at).unwrap_or(UNIX_EPOCH),
            created: None,
            sha256: None,
        }
    }
}

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.len
    }
    fn modified(&self) -> FsResult<SystemTime> {
        Ok(self.modified)
    }
    fn created(&self) -> FsResult<SystemTime> {
        self.created.ok_or(FsError::NotImplemented)
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn etag(&self) -> Option<String> {
        if let Some(sha) = &self.sha256 {
            return Some(sha.chars().take(32).collect());
        }
        let t = self.modified.duration_since(UNIX_EPOCH).ok()?;
        Some(format!("{:x}", t.as_micros()))
    }
}

struct DirEntry {
    name: Vec<u8>,
    meta: Meta,
}

impl DavDirEntry for DirEntry {
    fn name(&self) -> Vec<u8> {
        self.name.clone()
    }
    fn metadata(&self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        Box::pin(std::future::ready(Ok(meta)))
    }
}

/// Where a listing is: what is fetched and not yet handed out, and where the next page
/// starts.
struct Listing {
    fs: VaultFs,
    dir: Option<VaultPath>,
    after: Option<String>,
    buffered: VecDeque<Entry>,
    finished: bool,
}

impl DavFileSystem for VaultFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        async move {
            let path = required(path)?;
            if options.write {
                return self.open_for_write(path, options).await;
            }
            let read = self.run(move |a| a.vault().open_file(&path)).await?;
            let meta = Meta::of(&read.entry);
            let file: Box<dyn DavFile> = Box::new(Download {
                file: tokio::fs::File::from_std(read.file.into_std()),
                meta,
            });
            Ok(file)
        }
        .boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let dir = optional(path)?;
            let listing = Listing {
                fs: self.clone(),
                dir,
                after: None,
                buffered: VecDeque::new(),
                finished: false,
            };
            let stream = futures_util::stream::unfold(listing, |mut l| async move {
                if l.buffered.is_empty() && !l.finished {
                    let (dir, after) = (l.dir.clone(), l.after.clone());
                    let page =
                        l.fs.run(move |a| {
                            let entries =
                                a.vault().list(dir.as_ref(), after.as_deref(), LIST_PAGE)?;
                            let properties = a.vault().properties_of(&entries)?;
                            Ok((entries, properties))
                        })
                        .await;
                    match page {
                        Ok((entries, properties)) => {
                            l.fs.note_listed(&entries, properties);
                            l.finished = (entries.len() as u32) < LIST_PAGE;
                            l.after = entries.last().map(|e| e.name.clone());
                            l.buffered.extend(entries);
                        }
                        Err(e) => {
                            l.fs.listing_failed.store(true, Ordering::SeqCst);
                            l.finished = true;
                            return Some((Err(e), l));
                        }
                    }
                }
                let entry = l.buffered.pop_front()?;
                let item: Box<dyn DavDirEntry> = Box::new(DirEntry {
                    name: entry.name.clone().into_bytes(),
                    meta: Meta::of(&entry),
                });
                Some((Ok(item), l))
            });
            let stream: FsStream<Box<dyn DavDirEntry>> = Box::pin(stream);
            Ok(stream)
        }
        .boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let meta: Box<dyn DavMetaData> = match optional(path)? {
                None => Box::new(Meta::root(&self.access.tenant().created_at)),
                Some(p) => Box::new(Meta::of(&self.run(move |a| a.vault().stat(&p)).await?)),
            };
            Ok(meta)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let path = required(path)?;
            self.run(move |a| {
                // MKCOL makes one collection: an existing target is 405, a missing
                // parent 409 (RFC 4918 9.3.1), where the API's mkdir is `mkdir -p`.
                if a.vault().stat(&path).is_ok() {
                    return Err(VaultError::AlreadyExists);
                }
                if let Some(parent) = path.parent() {
                    match a.vault().stat(&parent)?.kind {
                        EntryKind::Dir => {}
                        EntryKind::File => return Err(VaultError::NotFound),
                    }
                }
                a.vault().mkdir(a.caller(), &path).map(drop)
            })
            .await
        }
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove_file(path)
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let path = required(path)?;
            self.run(move |a| a.vault().delete(a.caller(), &path).map(drop))
                .await
        }
        .boxed()
    }

    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (from, to) = (required(from)?, required(to)?);
            self.run(move |a| a.vault().rename(a.caller(), &from, &to).map(drop))
                .await
        }
        .boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (from, to) = (required(from)?, required(to)?);
            // A copy is a read and a write: the write is staged, checked against the
            // quota, committed and audited like an upload; the copy's properties follow
            // (RFC 4918 9.8.2).
            self.run(move |a| {
                let mut file = a.vault().open_file(&from)?.file.into_std();
                a.vault()
                    .write_file(a.caller(), &to, &mut file, &Precondition::None)?;
                let properties = a.vault().properties(Some(&from))?;
                if properties.is_empty() {
                    return Ok(());
                }
                let set: Vec<PropertyChange> =
                    properties.into_iter().map(PropertyChange::Set).collect();
                // The copy itself is done and durable; properties that no longer fit
                // (the quota) stay behind rather than make a done copy look failed.
                if let Err(e) = a.vault().change_properties(a.caller(), Some(&to), &set) {
                    tracing::warn!(error = %e, "WebDAV COPY: properties not copied");
                }
                Ok(())
            })
            .await
        }
        .boxed()
    }

    /// False for a listed entry without properties, so a folder's PROPFIND asks the
    /// index nothing more for it (dav-server may ask more than once per entry).
    fn have_props<'a>(
        &'a self,
        path: &'a DavPath,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        let known = listed_key(path).and_then(|k| db::lock(&self.listed).get(&k).map(Vec::len));
        Box::pin(std::future::ready(known != Some(0)))
    }

    /// Dead properties, stored in the vault's index (all or none per request, audited);
    /// a refusal is answered per property in the 207.
    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        async move {
            let path = optional(path)?;
            let changes: Vec<PropertyChange> = patch
                .iter()
                .map(|(set, prop)| {
                    let namespace = prop.namespace.clone().unwrap_or_default();
                    match (set, &prop.xml) {
                        (true, Some(xml)) => PropertyChange::Set(Property {
                            namespace,
                            name: prop.name.clone(),
                            xml: xml.clone(),
                        }),
                        _ => PropertyChange::Remove {
                            namespace,
                            name: prop.name.clone(),
                        },
                    }
                })
                .collect();
            let status = match self
                .run(move |a| {
                    a.vault()
                        .change_properties(a.caller(), path.as_ref(), &changes)
                })
                .await
            {
                Ok(()) => StatusCode::OK,
                Err(FsError::InsufficientStorage) => StatusCode::INSUFFICIENT_STORAGE,
                Err(FsError::NotFound) => StatusCode::NOT_FOUND,
                Err(FsError::GeneralFailure) => return Err(FsError::GeneralFailure),
                Err(_) => StatusCode::FORBIDDEN,
            };
            Ok(patch.into_iter().map(|(_, prop)| (status, prop)).collect())
        }
        .boxed()
    }

    fn get_props<'a>(&'a self, path: &'a DavPath, do_content: bool) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            let stored = self.stored_properties(path).await?;
            Ok(stored
                .into_iter()
                .map(|p| DavProp {
                    name: p.name,
                    prefix: None,
                    namespace: (!p.namespace.is_empty()).then_some(p.namespace),
                    xml: do_content.then_some(p.xml),
                })
                .collect())
        }
        .boxed()
    }

    fn get_prop<'a>(&'a self, path: &'a DavPath, prop: DavProp) -> FsFuture<'a, Vec<u8>> {
        async move {
            let namespace = prop.namespace.unwrap_or_default();
            let stored = self.stored_properties(path).await?;
            stored
                .into_iter()
                .find(|p| p.namespace == namespace && p.name == prop.name)
                .map(|p| p.xml)
                .ok_or(FsError::NotFound)
        }
        .boxed()
    }

    fn get_quota(&self) -> FsFuture<'_, (u64, Option<u64>)> {
        async move { self.run(|a| a.vault().space()).await }.boxed()
    }
}

impl VaultFs {
    /// The properties of `path`: from the listing page being described, else the index.
    async fn stored_properties(&self, path: &DavPath) -> FsResult<Vec<Property>> {
        if let Some(known) = listed_key(path).and_then(|k| db::lock(&self.listed).get(&k).cloned())
        {
            return Ok(known);
        }
        let path = optional(path)?;
        self.run(move |a| a.vault().properties(path.as_ref())).await
    }

    /// Remembers the properties of a listing page's entries (none: an empty list).
    /// dav-server describes each entry before it takes the next, so the previous page's
    /// are done with: only one page is held at a time.
    fn note_listed(&self, entries: &[Entry], properties: Vec<(String, Property)>) {
        let mut listed = db::lock(&self.listed);
        listed.clear();
        for entry in entries {
            listed.insert(entry.path.clone(), Vec::new());
        }
        for (path, property) in properties {
            listed.entry(path).or_default().push(property);
        }
    }

    async fn open_for_write(
        &self,
        path: VaultPath,
        options: OpenOptions,
    ) -> FsResult<Box<dyn DavFile>> {
        // LOCK on an unmapped URL makes an empty file (RFC 4918 7.3), opening it without
        // writing: committed here, since dav-server never flushes it.
        if !options.truncate && !options.append && options.size.is_none() && options.create {
            return self.create_empty(path).await;
        }
        // Partial writes (Content-Range, appends) would need a read-modify-write of a
        // whole version; the vault writes whole files only.
        if options.append || !options.truncate {
            return Err(FsError::NotImplemented);
        }
        if options.size.is_some_and(|n| n > self.max_file_bytes) {
            return Err(FsError::TooLarge);
        }
        let precondition = if options.create_new {
            Precondition::IfAbsent
        } else {
            Precondition::None
        };
        let must_exist = !options.create;
        let absent_only = options.create_new;
        let probe = path.clone();
        // PUT never makes parents (409 from dav-server on NotFound), and never writes over
        // a directory.
        self.run(move |a| {
            match a.vault().stat(&probe) {
                Ok(e) if e.kind == EntryKind::Dir => return Err(VaultError::IsADirectory),
                Ok(_) if absent_only => {
                    return Err(VaultError::AlreadyExists);
                }
                Ok(_) => {}
                Err(VaultError::NotFound) if must_exist => return Err(VaultError::NotFound),
                // A new name must not collide by case (409 now, not after the body).
                Err(VaultError::NotFound) => a.vault().check_name(&probe)?,
                Err(e) => return Err(e),
            }
            match probe.parent() {
                Some(parent) => match a.vault().stat(&parent)?.kind {
                    EntryKind::Dir => Ok(()),
                    EntryKind::File => Err(VaultError::NotFound),
                },
                None => Ok(()),
            }
        })
        .await?;
        let (tx, rx) = mpsc::channel(UPLOAD_QUEUE);
        let access = self.access.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut body = ChannelReader {
                rx,
                current: Bytes::new(),
            };
            access
                .vault()
                .write_file(access.caller(), &path, &mut body, &precondition)
        });
        Ok(Box::new(Upload {
            tx: Some(tx),
            writer: Some(writer),
            written: None,
        }))
    }
}

impl VaultFs {
    async fn create_empty(&self, path: VaultPath) -> FsResult<Box<dyn DavFile>> {
        let written = self
            .run(move |a| {
                if let Some(parent) = path.parent()
                    && a.vault().stat(&parent)?.kind != EntryKind::Dir
                {
                    return Err(VaultError::NotFound);
                }
                a.vault()
                    .write_file(a.caller(), &path, &mut io::empty(), &Precondition::IfAbsent)
            })
            .await?;
        Ok(Box::new(Upload {
            tx: None,
            writer: None,
            written: Some(Meta::of(&written.entry)),
        }))
    }
}

/// A piece of an upload: bytes, or the end of a body that arrived whole.
enum Piece {
    Data(Bytes),
    End,
}

/// The writing thread's view of an upload: a reader that ends only at `Piece::End`; a
/// channel closed without it is an aborted upload, reported as an error so that the
/// vault keeps nothing.
struct ChannelReader {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Piece::Data(bytes)) => self.current = bytes,
                Some(Piece::End) => return Ok(0),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the upload ended before its body did",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A file being written by PUT.
struct Upload {
    tx: Option<mpsc::Sender<Piece>>,
    writer: Option<JoinHandle<Result<crate::vault::Written, VaultError>>>,
    written: Option<Meta>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upload")
    }
}

impl Upload {
    /// The writer's outcome, once it has stopped (committed, or refused the upload).
    async fn outcome(&mut self) -> FsResult<()> {
        self.tx = None;
        let Some(writer) = self.writer.take() else {
            return match self.written {
                Some(_) => Ok(()),
                None => Err(FsError::GeneralFailure),
            };
        };
        let written = writer
            .await
            .map_err(|_| FsError::GeneralFailure)?
            .map_err(fs_error)?;
        self.written = Some(Meta::of(&written.entry));
        Ok(())
    }

    async fn send(&mut self, piece: Piece) -> FsResult<()> {
        let Some(tx) = &self.tx else {
            return Err(FsError::GeneralFailure);
        };
        if tx.send(piece).await.is_err() {
            // The writer stopped early (over the quota or the size limit): its reason.
            self.outcome().await?;
            return Err(FsError::GeneralFailure);
        }
        Ok(())
    }
}

impl DavFile for Upload {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta = self.written.clone();
        async move {
            let meta: Box<dyn DavMetaData> = Box::new(meta.ok_or(FsError::NotFound)?);
            Ok(meta)
        }
        .boxed()
    }

    fn write_buf(&mut self, mut buf: Box<dyn hyper::body::Buf + Send>) -> FsFuture<'_, ()> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        self.write_bytes(bytes)
    }

    fn write_bytes(&mut self, buf: Bytes) -> FsFuture<'_, ()> {
        async move { self.send(Piece::Data(buf)).await }.boxed()
    }

    fn read_bytes(&mut self, _count: usize) -> FsFuture<'_, Bytes> {
        Box::pin(std::future::ready(Err(FsError::Forbidden)))
    }

    fn seek(&mut self, _pos: SeekFrom) -> FsFuture<'_, u64> {
        Box::pin(std::future::ready(Err(FsError::NotImplemented)))
    }

    /// The body has ended whole: commit, and answer only once it is durable.
    fn flush(&mut self) -> FsFuture<'_, ()> {
        async move {
            if self.writer.is_some() {
                self.send(Piece::End).await?;
            }
            self.outcome().await
        }
        .boxed()
    }
}

/// A file being read by GET: one version, opened through the vault.
struct Download {
    file: tokio::fs::File,
    meta: Meta,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Download")
    }
}

impl DavFile for Download {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        Box::pin(std::future::ready(Ok(meta)))
    }

    fn write_buf(&mut self, _buf: Box<dyn hyper::body::Buf + Send>) -> FsFuture<'_, ()> {
        Box::pin(std::future::ready(Err(FsError::Forbidden)))
    }

    fn write_bytes(&mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        Box::pin(std::future::ready(Err(FsError::Forbidden)))
    }

    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            let mut buf = vec![0; count];
            let mut filled = 0;
            while filled < count {
                match self.file.read(&mut buf[filled..]).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(_) => return Err(FsError::GeneralFailure),
                }
            }
            buf.truncate(filled);
            Ok(Bytes::from(buf))
        }
        .boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        async move {
            self.file
                .seek(pos)
                .await
                .map_err(|_| FsError::GeneralFailure)
        }
        .boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
