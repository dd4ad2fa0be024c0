//! Streaming a snapshot into a ZIP: entries in a fixed order with the files' own mtimes
//! and fixed permissions, each entry's SHA-256 computed from the bytes as they go in,
//! `manifest.json` last. Already-compressed types are stored; anything else is deflated
//! only if a probe of its first 64 KiB shows it pays. Large compressible files are
//! compressed ahead on a second thread (spooled in the vault's staging area) and copied
//! in raw in their turn, so the bytes never depend on thread timing.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::records::{RecordLine, records_csv};
use super::{
    AUDIT_NAME, ExportError, ExportOptions, FILES_PREFIX, FORMAT, FORMAT_VERSION, MANIFEST_NAME,
    Manifest, ManifestEntry, ManifestTenant, README_NAME, RECORDS_PREFIX, Snapshot,
};
use crate::audit::AuditLog;
use crate::vault::index::{Entry, EntryKind, Record};
use crate::vault::path::VaultPath;
use crate::vault::{Vault, VaultError};

/// Bytes of a file read to decide whether deflate pays.
const PROBE_BYTES: usize = 64 * 1024;
const COPY_BUFFER: usize = 256 * 1024;
/// Deflate level of every compressed entry (see `options`).
const DEFLATE_LEVEL: i64 = 2;
/// Entries that may reach this size get ZIP64 headers (decided before streaming).
const ZIP64_THRESHOLD: u64 = 0xFFFF_0000;
/// Audit events read per page while writing `audit.jsonl`.
const AUDIT_PAGE: u32 = 1000;

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

/// Deflate states kept for `deflate_pays` (each ~300 KiB): enough for the exports that
/// run at once; more are made when needed and dropped after use.
const PROBES_KEPT: usize = 4;

/// Whether deflate (level 1) saves at least 10% on this sample. The compressor and its
/// output buffer come from a small shared pool: a deflate state per file made the
/// allocator's heap grow during large exports, and one per thread (the blocking pool's
/// threads come and go) kept tens of them alive and churned the allocator.
fn deflate_pays(sample: &[u8]) -> bool {
    static PROBES: std::sync::Mutex<Vec<(flate2::Compress, Vec<u8>)>> =
        std::sync::Mutex::new(Vec::new());
    if sample.len() < 64 {
        return false;
    }
    let (mut compress, mut out) = crate::db::lock(&PROBES).pop().unwrap_or_else(|| {
        (
            flate2::Compress::new(flate2::Compression::fast(), false),
            Vec::new(),
        )
    });
    compress.reset();
    out.clear();
    // Room for the worst case: fixed-Huffman output of incompressible data grows to
    // ~9/8 of its input, and zlib-rs asserts (panics) rather than run out of room.
    out.reserve(sample.len() * 2 + 1024);
    let pays = match compress.compress_vec(sample, &mut out, flate2::FlushCompress::Finish) {
        Ok(flate2::Status::StreamEnd) => out.len() * 10 < sample.len() * 9,
        // The output did not fit in the sample's size plus slack: it does not pay.
        _ => false,
    };
    let mut probes = crate::db::lock(&PROBES);
    if probes.len() < PROBES_KEPT {
        probes.push((compress, out));
    }
    pays
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

/// The archive being written, with the manifest entries so far.
struct Writer<'o, W: Write> {
    zip: ZipWriter<StreamWriter<W>>,
    as_of: DateTime,
    entries: Vec<ManifestEntry>,
    exported: u64,
    opts: ExportOptions<'o>,
}

/// Streams the snapshot into `sink` as a ZIP and returns its manifest.
pub fn write_archive<W: Write>(
    snapshot: &Snapshot,
    vault: &Vault,
    audit: &AuditLog,
    sink: W,
    opts: ExportOptions<'_>,
) -> Result<Manifest, ExportError> {
    let mut w = Writer {
        zip: ZipWriter::new_stream(sink),
        as_of: zip_time(&snapshot.as_of),
        entries: Vec::new(),
        exported: 0,
        opts,
    };
    w.add_bytes(
        README_NAME,
        README_TEXT.as_bytes(),
        CompressionMethod::Stored,
    )?;
    w.write_files(snapshot, vault)?;
    w.write_records(&snapshot.records)?;
    w.write_audit(snapshot, audit)?;
    w.finish(snapshot)
}

impl<W: Write> Writer<'_, W> {
    fn add_bytes(
        &mut self,
        name: &str,
        bytes: &[u8],
        method: CompressionMethod,
    ) -> Result<(), ExportError> {
        self.zip
            .start_file(name, options(method, self.as_of, false))?;
        self.zip.write_all(bytes)?;
        self.entries.push(ManifestEntry {
            path: name.to_owned(),
            kind: "file".into(),
            size: Some(bytes.len() as u64),
            sha256: Some(hex::encode(Sha256::digest(bytes))),
        });
        Ok(())
    }

    /// Deflate, unless the export stores everything (`ExportOptions::stored`).
    fn deflated(&self) -> CompressionMethod {
        if self.opts.stored {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        }
    }

    fn progress(&mut self, n: u64) {
        self.exported += n;
        let exported = self.exported;
        if let Some(p) = self.opts.progress.as_mut() {
            p(exported);
        }
    }

    /// `files/...` in path order. Large compressible files are compressed ahead on a
    /// second thread into one-entry archives spooled in the vault's staging area, then
    /// copied in raw when their turn comes, so two files compress at once; the entry
    /// order (and so the bytes) stays the same. At most two spooled files exist at a time.
    fn write_files(&mut self, snapshot: &Snapshot, vault: &Vault) -> Result<(), ExportError> {
        let strict = self.opts.strict;
        std::thread::scope(|scope| {
            let (to_writer, from_worker) =
                std::sync::mpsc::sync_channel::<Result<Spooled<'_>, ExportError>>(1);
            let stored = self.opts.stored;
            let offloaded: Vec<&Entry> = snapshot
                .entries
                .iter()
                .filter(|e| !stored && offload(e))
                .collect();
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
                if !stored && offload(entry) {
                    let spooled = from_worker
                        .recv()
                        .map_err(|_| io::Error::other("export worker stopped"))??;
                    self.add_spooled(spooled, vault, entry, name, &mut buf)?;
                } else if entry.kind == EntryKind::Dir {
                    let mtime = zip_time(&entry.modified_at);
                    self.zip.add_directory(
                        format!("{name}/"),
                        options(CompressionMethod::Stored, mtime, false),
                    )?;
                    self.entries.push(ManifestEntry {
                        path: format!("{name}/"),
                        kind: "dir".into(),
                        size: None,
                        sha256: None,
                    });
                } else {
                    self.stream_file(vault, entry, &name, &mut buf)?;
                }
            }
            Ok(())
        })
    }

    fn add_spooled(
        &mut self,
        spooled: Spooled<'_>,
        vault: &Vault,
        entry: &Entry,
        name: String,
        buf: &mut [u8],
    ) -> Result<(), ExportError> {
        match spooled {
            Spooled::Missing => Ok(()),
            Spooled::Store => self.stream_file(vault, entry, &name, buf),
            Spooled::Ready {
                mut scratch,
                sha256,
                size,
            } => {
                let mut one = zip::ZipArchive::new(io::BufReader::new(scratch.rewind()?))?;
                self.zip
                    .raw_copy_file_rename(one.by_index_raw(0)?, name.as_str())?;
                self.progress(size);
                self.entries.push(ManifestEntry {
                    path: name,
                    kind: "file".into(),
                    size: Some(size),
                    sha256: Some(sha256),
                });
                Ok(())
            }
        }
    }

    /// Streams one file into the archive: probe, choose the method, copy while hashing.
    /// A file deleted since the snapshot is left out (non-strict exports).
    fn stream_file(
        &mut self,
        vault: &Vault,
        entry: &Entry,
        name: &str,
        buf: &mut [u8],
    ) -> Result<(), ExportError> {
        let strict = self.opts.strict;
        let Some(mut read) = open_entry(vault, entry, strict)? else {
            return Ok(());
        };
        let size = read.file.metadata()?.len();
        // Read the probe first: it decides the method before the entry starts.
        let mut probe = Vec::with_capacity(PROBE_BYTES.min(size as usize));
        (&mut read.file)
            .take(PROBE_BYTES as u64)
            .read_to_end(&mut probe)?;
        let method = match self.opts.stored {
            true => CompressionMethod::Stored,
            false => choose_method(&entry.path, &probe),
        };
        let mtime = zip_time(&read.entry.modified_at);
        self.zip
            .start_file(name, options(method, mtime, size >= ZIP64_THRESHOLD))?;
        let mut hashing = Hashing {
            inner: &mut self.zip,
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
            // Field by field: `hashing` holds `self.zip`.
            self.exported += n as u64;
            if let Some(p) = self.opts.progress.as_mut() {
                p(self.exported);
            }
        }
        let (bytes, hasher) = (hashing.bytes, hashing.hasher);
        let sha256 = hex::encode(hasher.finalize());
        if strict && entry.sha256.as_deref() != Some(sha256.as_str()) {
            return Err(ExportError::Changed);
        }
        self.entries.push(ManifestEntry {
            path: name.to_owned(),
            kind: "file".into(),
            size: Some(bytes),
            sha256: Some(sha256),
        });
        Ok(())
    }

    /// One JSON-lines file and one CSV per collection, in collection and id order.
    fn write_records(&mut self, records: &[Record]) -> Result<(), ExportError> {
        for group in records.chunk_by(|a, b| a.collection == b.collection) {
            let collection = &group[0].collection;
            let mut jsonl = Vec::new();
            for r in group {
                serde_json::to_writer(&mut jsonl, &RecordLine::from(r))
                    .map_err(io::Error::other)?;
                jsonl.push(b'\n');
            }
            self.add_bytes(
                &format!("{RECORDS_PREFIX}{collection}.jsonl"),
                &jsonl,
                self.deflated(),
            )?;
            self.add_bytes(
                &format!("{RECORDS_PREFIX}{collection}.csv"),
                records_csv(group).as_bytes(),
                self.deflated(),
            )?;
        }
        Ok(())
    }

    /// The tenant's audit events up to the snapshot's cursor.
    fn write_audit(&mut self, snapshot: &Snapshot, audit: &AuditLog) -> Result<(), ExportError> {
        self.zip
            .start_file(AUDIT_NAME, options(self.deflated(), self.as_of, false))?;
        let mut hashing = Hashing {
            inner: &mut self.zip,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let mut after = 0;
        'pages: loop {
            let page = audit.events_for_tenant(snapshot.tenant.id, after, AUDIT_PAGE)?;
            for event in &page {
                if event.seq > snapshot.audit_until_seq {
                    break 'pages;
                }
                serde_json::to_writer(&mut hashing, event).map_err(io::Error::other)?;
                hashing.write_all(b"\n")?;
                after = event.seq;
            }
            if page.len() < AUDIT_PAGE as usize {
                break;
            }
        }
        let (bytes, sha256) = (hashing.bytes, hex::encode(hashing.hasher.finalize()));
        self.entries.push(ManifestEntry {
            path: AUDIT_NAME.into(),
            kind: "file".into(),
            size: Some(bytes),
            sha256: Some(sha256),
        });
        Ok(())
    }

    /// `manifest.json`, last, and the end of the archive.
    fn finish(mut self, snapshot: &Snapshot) -> Result<Manifest, ExportError> {
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
            entries: std::mem::take(&mut self.entries),
        };
        let text = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        self.zip
            .start_file(MANIFEST_NAME, options(self.deflated(), self.as_of, false))?;
        self.zip.write_all(&text)?;
        self.zip.finish()?.flush()?;
        Ok(manifest)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::Snapshot;

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
