//! Data portability: the whole vault as one ZIP that opens without Coffer, and back.
//!
//! `Snapshot` fixes what an export contains (the index's files and directories, the
//! records, the tenant's audit events up to a cursor) and names it with an ETag.
//! `write_archive` streams that snapshot into any `Write` with bounded memory: entries in
//! a fixed order, timestamps from the files' own mtimes, each entry's SHA-256 computed
//! from the bytes as they go in, `manifest.json` last. The same snapshot always gives the
//! same bytes, which is what makes a `Range` resume of an HTTP export correct. `verify`
//! checks an archive against its manifest; `import` reads one back (see `import.rs`).
//! This module never writes tenant files itself: reads go through the `Vault`.

pub mod import;

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::audit::AuditLog;
use crate::control::Tenant;
use crate::vault::index::{Entry, EntryKind, Record};
use crate::vault::path::VaultPath;
use crate::vault::{Vault, VaultError};

pub const FORMAT: &str = "coffer-export";
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_NAME: &str = "manifest.json";
pub const README_NAME: &str = "README.txt";
pub const AUDIT_NAME: &str = "audit.jsonl";
pub const FILES_PREFIX: &str = "files/";
pub const RECORDS_PREFIX: &str = "records/";

/// Bytes of a file read to decide whether deflate pays.
const PROBE_BYTES: usize = 64 * 1024;
const COPY_BUFFER: usize = 256 * 1024;
/// Deflate level of every compressed entry (see `options`).
const DEFLATE_LEVEL: i64 = 2;
/// Entries that may reach this size get ZIP64 headers (decided before streaming).
const ZIP64_THRESHOLD: u64 = 0xFFFF_0000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("audit log error: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("archive error: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("the vault changed during a resumed export; download it again from the start")]
    Changed,
    #[error("not a Coffer export: {0}")]
    NotAnExport(String),
}

/// One entry of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub path: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestTenant {
    pub id: String,
    pub slug: String,
    pub name: String,
}

/// `manifest.json`: the last entry of every export. Its JSON Schema is
/// `vault-layout/export-manifest.schema.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub tenant: ManifestTenant,
    /// The newest change the archive reflects (RFC 3339): also the timestamp of the
    /// entries that have no file of their own.
    pub as_of: String,
    /// The archive holds the tenant's audit events with `seq` up to this one.
    pub audit_until_seq: i64,
    pub entries: Vec<ManifestEntry>,
}

/// What one export contains, fixed before the first byte is written.
pub struct Snapshot {
    pub tenant: Tenant,
    pub entries: Vec<Entry>,
    pub records: Vec<Record>,
    pub audit_until_seq: i64,
    pub as_of: String,
    /// Names the snapshot: equal ETags mean equal archive bytes.
    pub etag: String,
}

impl Snapshot {
    /// Takes a snapshot of `vault`. `audit_until_seq` reproduces an earlier export (its
    /// manifest records the cursor); by default it is the tenant's newest event.
    pub fn take(
        vault: &Vault,
        tenant: &Tenant,
        audit: &AuditLog,
        audit_until_seq: Option<i64>,
    ) -> Result<Snapshot, ExportError> {
        let entries = vault.all_entries()?;
        let records = vault.all_records()?;
        let audit_until_seq = match audit_until_seq {
            Some(s) => s,
            None => audit.last_seq_for_tenant(tenant.id)?,
        };
        let last_event = audit.event_time(audit_until_seq)?.unwrap_or_default();
        let as_of = entries
            .iter()
            .map(|e| e.modified_at.as_str())
            .chain(records.iter().map(|r| r.updated_at.as_str()))
            .chain(std::iter::once(last_event.as_str()))
            .max()
            .unwrap_or("")
            .to_owned();
        let mut h = Sha256::new();
        h.update(format!(
            "{FORMAT} v{FORMAT_VERSION}\n{}\n{}\n{}\n{audit_until_seq}\n",
            tenant.id, tenant.slug, tenant.name
        ));
        for e in &entries {
            h.update(format!(
                "{}\0{:?}\0{}\0{}\0{}\n",
                e.path,
                e.kind,
                e.size,
                e.sha256.as_deref().unwrap_or(""),
                e.modified_at
            ));
        }
        for r in &records {
            h.update(format!(
                "{}\0{}\0{}\0{}\n",
                r.collection, r.id, r.version, r.updated_at
            ));
        }
        let etag = format!(
            "\"export-{audit_until_seq}-{}\"",
            &hex::encode(h.finalize())[..32]
        );
        Ok(Snapshot {
            tenant: tenant.clone(),
            entries,
            records,
            audit_until_seq,
            as_of,
            etag,
        })
    }

    /// The audit cursor named by an export ETag (for `If-Range` resumes).
    pub fn cursor_of_etag(etag: &str) -> Option<i64> {
        etag.trim()
            .trim_matches('"')
            .strip_prefix("export-")?
            .split('-')
            .next()?
            .parse()
            .ok()
    }
}

/// A `Write` adapter that hashes and counts what passes through.
struct Hashing<'a, W: Write> {
    inner: &'a mut W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Types that are compressed already (stored, never deflated again).
fn already_compressed(path: &str) -> bool {
    const EXT: &[&str] = &[
        "jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "avif", "mp4", "mov", "m4v", "avi",
        "mkv", "webm", "mp3", "m4a", "aac", "ogg", "opus", "flac", "zip", "gz", "tgz", "bz2", "xz",
        "zst", "7z", "rar", "pdf", "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub", "jar",
    ];
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| EXT.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Whether deflate (level 1) saves at least 10% on this sample. The compressor and its
/// output buffer are reused across calls on a thread: allocating a deflate state per
/// file made the allocator's heap grow during large exports.
fn deflate_pays(sample: &[u8]) -> bool {
    thread_local! {
        static PROBE: std::cell::RefCell<(flate2::Compress, Vec<u8>)> = std::cell::RefCell::new((
            flate2::Compress::new(flate2::Compression::fast(), false),
            Vec::new(),
        ));
    }
    if sample.len() < 64 {
        return false;
    }
    PROBE.with(|cell| {
        let (compress, out) = &mut *cell.borrow_mut();
        compress.reset();
        out.clear();
        // Room for the worst case: fixed-Huffman output of incompressible data grows to
        // ~9/8 of its input, and zlib-rs asserts (panics) rather than run out of room.
        out.reserve(sample.len() * 2 + 1024);
        match compress.compress_vec(sample, out, flate2::FlushCompress::Finish) {
            Ok(flate2::Status::StreamEnd) => out.len() * 10 < sample.len() * 9,
            // The output did not fit in the sample's size plus slack: it does not pay.
            _ => false,
        }
    })
}

/// An RFC 3339 timestamp as a ZIP (DOS) time, clamped to the range ZIP can hold.
fn zip_time(rfc3339: &str) -> DateTime {
    let parsed =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
            .map(|t| t.to_offset(time::UtcOffset::UTC));
    match parsed {
        Ok(t) if t.year() < 1980 => DateTime::default(),
        Ok(t) if t.year() > 2107 => {
            DateTime::from_date_and_time(2107, 12, 31, 23, 59, 58).unwrap_or_default()
        }
        Ok(t) => {
            DateTime::try_from(time::PrimitiveDateTime::new(t.date(), t.time())).unwrap_or_default()
        }
        Err(_) => DateTime::default(),
    }
}

fn options(method: CompressionMethod, mtime: DateTime, large: bool) -> SimpleFileOptions {
    let o = SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(mtime)
        // Fixed, ordinary permissions: never the source's bits, never a link or device.
        .unix_permissions(0o644)
        .large_file(large);
    // zlib-rs's level 1 is its "quick" strategy, which compresses text a third worse than
    // Info-ZIP's -1; level 2 matches it.
    if method == CompressionMethod::Deflated {
        o.compression_level(Some(DEFLATE_LEVEL))
    } else {
        o
    }
}

/// How the export is consumed.
#[derive(Default)]
pub struct ExportOptions<'a> {
    /// Fail if anything differs from the snapshot (a resumed download must be the same
    /// bytes as the first one). Without it, a file changed or deleted since the snapshot
    /// is exported as it now is (or left out), and the manifest says so.
    pub strict: bool,
    /// Called with the number of file bytes exported so far.
    pub progress: Option<&'a mut dyn FnMut(u64)>,
}

const README_TEXT: &str = "\
This archive is a complete export of one Coffer vault. It needs no Coffer to read.

  files/               your documents and photos, in the folders you used
  records/<name>.jsonl your records (clients, jobs, invoices...), one JSON document per line
  records/<name>.csv   the same records as a spreadsheet (nested values as JSON text)
  audit.jsonl          the history of changes to your vault (who, what, when), one event per line
  manifest.json        every entry of this archive with its size and SHA-256 checksum

To check the archive: compare `sha256sum` of each file with manifest.json, or run
`coffer export --verify <archive>.zip`.
";

/// Streams the snapshot into `sink` as a ZIP and returns its manifest.
pub fn write_archive<W: Write>(
    snapshot: &Snapshot,
    vault: &Vault,
    audit: &AuditLog,
    sink: W,
    mut opts: ExportOptions<'_>,
) -> Result<Manifest, ExportError> {
    let mut zip = ZipWriter::new_stream(sink);
    let as_of = zip_time(&snapshot.as_of);
    let mut entries = Vec::new();
    let mut exported: u64 = 0;

    let add_bytes = |zip: &mut ZipWriter<_>,
                     name: &str,
                     bytes: &[u8],
                     method: CompressionMethod|
     -> Result<ManifestEntry, ExportError> {
        zip.start_file(name, options(method, as_of, false))?;
        zip.write_all(bytes)?;
        Ok(ManifestEntry {
            path: name.to_owned(),
            kind: "file".into(),
            size: Some(bytes.len() as u64),
            sha256: Some(hex::encode(Sha256::digest(bytes))),
        })
    };
    entries.push(add_bytes(
        &mut zip,
        README_NAME,
        README_TEXT.as_bytes(),
        CompressionMethod::Stored,
    )?);

    // Large compressible files are compressed ahead on a second thread into one-entry
    // archives spooled in the vault's staging area, then copied in raw when their turn
    // comes, so two files compress at once; the entry order (and so the bytes) stays
    // the same. At most two spooled files exist at a time.
    let strict = opts.strict;
    let files: Result<(), ExportError> = std::thread::scope(|scope| {
        let (to_writer, from_worker) =
            std::sync::mpsc::sync_channel::<Result<Spooled<'_>, ExportError>>(1);
        let offloaded: Vec<&Entry> = snapshot.entries.iter().filter(|e| offload(e)).collect();
        if !offloaded.is_empty() {
            scope.spawn(move || {
                for entry in offloaded {
                    let item = spool(vault, entry, strict);
                    let stop = item.is_err();
                    if to_writer.send(item).is_err() || stop {
                        break;
                    }
                }
            });
        }
        let mut buf = vec![0u8; COPY_BUFFER];
        for entry in &snapshot.entries {
            let name = format!("{FILES_PREFIX}{}", entry.path);
            if offload(entry) {
                let spooled = from_worker
                    .recv()
                    .map_err(|_| io::Error::other("export worker stopped"))??;
                match spooled {
                    Spooled::Missing => {}
                    Spooled::Store => {
                        if let Some(m) = stream_file(
                            &mut zip,
                            vault,
                            entry,
                            &name,
                            strict,
                            &mut buf,
                            &mut exported,
                            &mut opts,
                        )? {
                            entries.push(m);
                        }
                    }
                    Spooled::Ready {
                        mut scratch,
                        sha256,
                        size,
                    } => {
                        let mut one = zip::ZipArchive::new(io::BufReader::new(scratch.rewind()?))?;
                        zip.raw_copy_file_rename(one.by_index_raw(0)?, name.as_str())?;
                        exported += size;
                        if let Some(p) = opts.progress.as_mut() {
                            p(exported);
                        }
                        entries.push(ManifestEntry {
                            path: name,
                            kind: "file".into(),
                            size: Some(size),
                            sha256: Some(sha256),
                        });
                    }
                }
                continue;
            }
            if entry.kind == EntryKind::Dir {
                zip.add_directory(
                    format!("{name}/"),
                    options(
                        CompressionMethod::Stored,
                        zip_time(&entry.modified_at),
                        false,
                    ),
                )?;
                entries.push(ManifestEntry {
                    path: format!("{name}/"),
                    kind: "dir".into(),
                    size: None,
                    sha256: None,
                });
            } else if let Some(m) = stream_file(
                &mut zip,
                vault,
                entry,
                &name,
                strict,
                &mut buf,
                &mut exported,
                &mut opts,
            )? {
                entries.push(m);
            }
        }
        Ok(())
    });
    files?;

    // Records: one JSON-lines file and one CSV per collection, in collection and id order.
    let mut i = 0;
    while i < snapshot.records.len() {
        let collection = snapshot.records[i].collection.clone();
        let end = snapshot.records[i..]
            .iter()
            .position(|r| r.collection != collection)
            .map_or(snapshot.records.len(), |n| i + n);
        let group = &snapshot.records[i..end];
        let mut jsonl = Vec::new();
        for r in group {
            serde_json::to_writer(&mut jsonl, &RecordLine::from(r)).map_err(io::Error::other)?;
            jsonl.push(b'\n');
        }
        entries.push(add_bytes(
            &mut zip,
            &format!("{RECORDS_PREFIX}{collection}.jsonl"),
            &jsonl,
            CompressionMethod::Deflated,
        )?);
        let csv = records_csv(group);
        entries.push(add_bytes(
            &mut zip,
            &format!("{RECORDS_PREFIX}{collection}.csv"),
            csv.as_bytes(),
            CompressionMethod::Deflated,
        )?);
        i = end;
    }

    // The tenant's audit events up to the snapshot's cursor.
    zip.start_file(
        AUDIT_NAME,
        options(CompressionMethod::Deflated, as_of, false),
    )?;
    let mut hashing = Hashing {
        inner: &mut zip,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut after = 0;
    loop {
        let page = audit.events_for_tenant(snapshot.tenant.id, after, 1000)?;
        let mut done = page.is_empty();
        for event in &page {
            if event.seq > snapshot.audit_until_seq {
                done = true;
                break;
            }
            serde_json::to_writer(&mut hashing, event).map_err(io::Error::other)?;
            hashing.write_all(b"\n")?;
            after = event.seq;
        }
        if done || page.len() < 1000 {
            break;
        }
    }
    entries.push(ManifestEntry {
        path: AUDIT_NAME.into(),
        kind: "file".into(),
        size: Some(hashing.bytes),
        sha256: Some(hex::encode(hashing.hasher.finalize())),
    });

    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        tenant: ManifestTenant {
            id: snapshot.tenant.id.to_string(),
            slug: snapshot.tenant.slug.clone(),
            name: snapshot.tenant.name.clone(),
        },
        as_of: snapshot.as_of.clone(),
        audit_until_seq: snapshot.audit_until_seq,
        entries,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    zip.start_file(
        MANIFEST_NAME,
        options(CompressionMethod::Deflated, as_of, false),
    )?;
    zip.write_all(&text)?;
    zip.finish()?.flush()?;
    Ok(manifest)
}

/// Files at least this large that are not of a compressed type are compressed ahead on
/// the second thread.
const OFFLOAD_MIN: u64 = 16 * 1024 * 1024;

fn offload(entry: &Entry) -> bool {
    entry.kind == EntryKind::File && entry.size >= OFFLOAD_MIN && !already_compressed(&entry.path)
}

/// A large file compressed ahead, or what the writer should do instead.
enum Spooled<'a> {
    /// A one-entry archive holding the compressed file, in the vault's staging area.
    Ready {
        scratch: crate::vault::dir::StagedFile<'a>,
        sha256: String,
        size: u64,
    },
    /// Deflate does not pay: the writer stores it.
    Store,
    /// Deleted since the snapshot (non-strict exports leave it out).
    Missing,
}

/// Compresses one large file into a one-entry archive in the vault's staging area.
fn spool<'a>(vault: &'a Vault, entry: &Entry, strict: bool) -> Result<Spooled<'a>, ExportError> {
    let Some(mut read) = open_entry(vault, entry, strict)? else {
        return Ok(Spooled::Missing);
    };
    let size = read.file.metadata()?.len();
    let mut probe = Vec::with_capacity(PROBE_BYTES);
    (&mut read.file)
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut probe)?;
    if choose_method(&entry.path, &probe) == CompressionMethod::Stored {
        return Ok(Spooled::Store);
    }
    let mut scratch = vault.scratch_file()?;
    let mut one = ZipWriter::new(io::BufWriter::with_capacity(
        COPY_BUFFER,
        scratch.rewind()?.try_clone()?,
    ));
    let name = format!("{FILES_PREFIX}{}", entry.path);
    one.start_file(
        name.as_str(),
        options(
            CompressionMethod::Deflated,
            zip_time(&read.entry.modified_at),
            size >= ZIP64_THRESHOLD,
        ),
    )?;
    let mut hashing = Hashing {
        inner: &mut one,
        hasher: Sha256::new(),
        bytes: 0,
    };
    hashing.write_all(&probe)?;
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = read.file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hashing.write_all(&buf[..n])?;
    }
    let sha256 = hex::encode(hashing.hasher.finalize());
    let bytes = hashing.bytes;
    one.finish()?.flush()?;
    if strict && entry.sha256.as_deref() != Some(sha256.as_str()) {
        return Err(ExportError::Changed);
    }
    Ok(Spooled::Ready {
        scratch,
        sha256,
        size: bytes,
    })
}

fn open_entry(
    vault: &Vault,
    entry: &Entry,
    strict: bool,
) -> Result<Option<crate::vault::FileRead>, ExportError> {
    let path = VaultPath::parse(&entry.path).map_err(|e| ExportError::Io(io::Error::other(e)))?;
    match vault.open_file(&path) {
        Ok(r) => Ok(Some(r)),
        Err(VaultError::NotFound) if !strict => Ok(None),
        Err(VaultError::NotFound) => Err(ExportError::Changed),
        Err(e) => Err(e.into()),
    }
}

fn choose_method(path: &str, sample: &[u8]) -> CompressionMethod {
    if already_compressed(path) || !deflate_pays(sample) {
        CompressionMethod::Stored
    } else {
        CompressionMethod::Deflated
    }
}

/// Streams one file into the archive: probe, choose the method, copy while hashing.
/// `None` if it was deleted since the snapshot (non-strict exports leave it out).
#[allow(clippy::too_many_arguments)]
fn stream_file<W: Write + io::Seek>(
    zip: &mut ZipWriter<W>,
    vault: &Vault,
    entry: &Entry,
    name: &str,
    strict: bool,
    buf: &mut [u8],
    exported: &mut u64,
    opts: &mut ExportOptions<'_>,
) -> Result<Option<ManifestEntry>, ExportError> {
    let Some(mut read) = open_entry(vault, entry, strict)? else {
        return Ok(None);
    };
    let size = read.file.metadata()?.len();
    // Read the probe first: it decides the method before the entry starts.
    let mut probe = Vec::with_capacity(PROBE_BYTES.min(size as usize));
    (&mut read.file)
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut probe)?;
    let method = choose_method(&entry.path, &probe);
    zip.start_file(
        name,
        options(
            method,
            zip_time(&read.entry.modified_at),
            size >= ZIP64_THRESHOLD,
        ),
    )?;
    let mut hashing = Hashing {
        inner: zip,
        hasher: Sha256::new(),
        bytes: 0,
    };
    hashing.write_all(&probe)?;
    loop {
        let n = read.file.read(buf)?;
        if n == 0 {
            break;
        }
        hashing.write_all(&buf[..n])?;
        *exported += n as u64;
        if let Some(p) = opts.progress.as_mut() {
            p(*exported);
        }
    }
    let sha256 = hex::encode(hashing.hasher.finalize());
    if strict && entry.sha256.as_deref() != Some(sha256.as_str()) {
        return Err(ExportError::Changed);
    }
    Ok(Some(ManifestEntry {
        path: name.to_owned(),
        kind: "file".into(),
        size: Some(hashing.bytes),
        sha256: Some(sha256),
    }))
}

/// One line of `records/<collection>.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordLine {
    pub id: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub body: serde_json::Value,
}

impl From<&Record> for RecordLine {
    fn from(r: &Record) -> Self {
        RecordLine {
            id: r.id.clone(),
            version: r.version,
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            created_by: r.created_by.clone(),
            updated_by: r.updated_by.clone(),
            body: r.body.clone(),
        }
    }
}

/// A CSV cell: quoted when needed, and defused against formula injection (a cell that a
/// spreadsheet would evaluate starts with a quote character instead).
fn csv_cell(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn records_csv(records: &[Record]) -> String {
    let mut fields: Vec<String> = records
        .iter()
        .filter_map(|r| r.body.as_object())
        .flat_map(|o| o.keys().cloned())
        .collect();
    fields.sort();
    fields.dedup();
    let mut out = String::from("id,version,created_at,updated_at");
    for f in &fields {
        out.push(',');
        out.push_str(&csv_cell(f));
    }
    out.push_str("\r\n");
    for r in records {
        out.push_str(&format!(
            "{},{},{},{}",
            csv_cell(&r.id),
            r.version,
            r.created_at,
            r.updated_at
        ));
        for f in &fields {
            out.push(',');
            match r.body.get(f) {
                Some(serde_json::Value::String(s)) => out.push_str(&csv_cell(s)),
                Some(serde_json::Value::Null) | None => {}
                Some(other) => out.push_str(&csv_cell(&other.to_string())),
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// What `verify` found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub entries: usize,
    pub bytes: u64,
    pub problems: Vec<String>,
}

/// Checks an archive against its manifest: every listed entry present with its size and
/// SHA-256, nothing unlisted, no duplicates.
pub fn verify<R: Read + io::Seek>(reader: R) -> Result<VerifyReport, ExportError> {
    let mut archive = zip::ZipArchive::new(reader)?;
    if archive.has_duplicate_names() {
        return Err(ExportError::NotAnExport(
            "the archive has duplicate entry names".into(),
        ));
    }
    let manifest: Manifest = {
        let mut file = archive
            .by_name(MANIFEST_NAME)
            .map_err(|_| ExportError::NotAnExport("no manifest.json".into()))?;
        let mut text = Vec::new();
        file.by_ref()
            .take(256 * 1024 * 1024)
            .read_to_end(&mut text)?;
        serde_json::from_slice(&text)
            .map_err(|e| ExportError::NotAnExport(format!("manifest.json: {e}")))?
    };
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(ExportError::NotAnExport(format!(
            "unsupported format {} v{}",
            manifest.format, manifest.format_version
        )));
    }
    let mut report = VerifyReport {
        entries: manifest.entries.len(),
        ..Default::default()
    };
    let listed: std::collections::HashSet<&str> =
        manifest.entries.iter().map(|e| e.path.as_str()).collect();
    for name in archive.file_names() {
        let name = name?;
        if name != MANIFEST_NAME && !listed.contains(name.as_ref()) {
            report
                .problems
                .push(format!("{name}: in the archive but not in the manifest"));
        }
    }
    let mut buf = vec![0u8; COPY_BUFFER];
    for e in &manifest.entries {
        let mut file = match archive.by_name(&e.path) {
            Ok(f) => f,
            Err(_) => {
                report
                    .problems
                    .push(format!("{}: listed in the manifest but missing", e.path));
                continue;
            }
        };
        if e.kind == "dir" {
            if !file.is_dir() {
                report
                    .problems
                    .push(format!("{}: listed as a directory", e.path));
            }
            continue;
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        report.bytes += size;
        if Some(size) != e.size {
            report.problems.push(format!(
                "{}: {size} bytes, manifest says {:?}",
                e.path, e.size
            ));
        }
        if Some(hex::encode(hasher.finalize())) != e.sha256 {
            report
                .problems
                .push(format!("{}: SHA-256 does not match the manifest", e.path));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_escaped_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    #[test]
    fn compression_choice() {
        assert!(already_compressed("photos/IMG_1.JPG"));
        assert!(!already_compressed("notes.txt"));
        assert!(deflate_pays(
            &b"the same words again and again ".repeat(200)
        ));
        let mut noise = vec![0u8; 4096];
        let mut x = 1u32;
        for b in noise.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
        assert!(!deflate_pays(&noise));
        // Regression: a full 64 KiB probe of noise expands under fixed Huffman codes; the
        // reused compressor's buffer must hold that (zlib-rs panicked when it did not).
        let mut x = 3u64;
        let noise: Vec<u8> = (0..PROBE_BYTES / 8)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .collect();
        assert!(!deflate_pays(&noise));
        assert!(!deflate_pays(&noise), "and again on the reused compressor");
    }

    #[test]
    fn zip_times_are_clamped() {
        assert_eq!(zip_time("1970-01-01T00:00:00.000Z"), DateTime::default());
        let t = zip_time("2026-03-14T10:20:30.000Z");
        assert_eq!(
            (t.year(), t.month(), t.day(), t.hour(), t.minute()),
            (2026, 3, 14, 10, 20)
        );
        assert_eq!(Snapshot::cursor_of_etag("\"export-42-abcdef\""), Some(42));
        assert_eq!(Snapshot::cursor_of_etag("\"other\""), None);
    }
}
