//! Reading an archive back into a vault: Coffer's own exports (files and records, checked
//! against the manifest) and plain ZIPs of folders (as `files/`).
//!
//! The archive is judged before anything becomes visible. Refused outright: duplicate
//! names, overlapping entries, local headers that disagree with the central directory,
//! symlinks and special files, encrypted entries, names that `enclosed_name` rewrites or
//! rejects, names that are not valid vault paths, two names colliding by case or Unicode
//! normalisation, a file and a directory of the same name, and too many entries. Inflated
//! bytes are counted while inflating, never trusted from headers, against per-entry,
//! total and ratio limits. Entries stream into staging through the vault layer and are
//! committed all together, or not at all. This module never calls a library's `extract`.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Seek};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{FILES_PREFIX, FORMAT, MANIFEST_NAME, Manifest, RECORDS_PREFIX, RecordLine};
use crate::audit::Caller;
use crate::vault::index::Record;
use crate::vault::path::{CollectionName, RecordId, VaultPath, fold_name};
use crate::vault::{ImportSummary, Vault, VaultError};

/// Limits on what an archive may make Coffer inflate and store.
#[derive(Debug, Clone)]
pub struct ImportLimits {
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
    /// Largest inflated/compressed ratio of one entry (beyond the first MiB).
    pub max_ratio: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_entries: 200_000,
            max_entry_bytes: 16 * 1024 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024 * 1024,
            max_ratio: 1000,
        }
    }
}

/// What to do with paths (and records) that already exist in the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Refuse the whole import if anything exists already (the default).
    Fail,
    /// Keep what exists, import the rest.
    Skip,
}

impl ConflictPolicy {
    pub fn parse(s: &str) -> Option<ConflictPolicy> {
        match s {
            "fail" => Some(ConflictPolicy::Fail),
            "skip" => Some(ConflictPolicy::Skip),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("archive refused: {0}")]
    Refused(String),
    #[error("archive refused: {0}")]
    TooLarge(String),
    #[error("already in the vault: {0}")]
    Conflict(String),
    #[error(transparent)]
    Vault(VaultError),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl From<VaultError> for ImportError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::AlreadyExists => {
                ImportError::Conflict("a path of the archive exists already".into())
            }
            VaultError::CaseConflict(a, b) => {
                ImportError::Conflict(format!("{a:?} differs only by case from {b:?}"))
            }
            other => ImportError::Vault(other),
        }
    }
}

fn refused(why: impl Into<String>) -> ImportError {
    ImportError::Refused(why.into())
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// `coffer-export` or `plain-zip`.
    pub kind: &'static str,
    #[serde(flatten)]
    pub summary: ImportSummary,
}

/// Counts inflated bytes as they are read, refusing past the limits.
struct Counted<'a, R: Read> {
    inner: R,
    read: u64,
    entry_limit: u64,
    total: &'a mut u64,
    total_limit: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        *self.total += n as u64;
        if self.read > self.entry_limit || *self.total > self.total_limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "inflated size over the limit (zip bomb?)",
            ));
        }
        Ok(n)
    }
}

/// What the manifest says of an entry: its size and SHA-256.
type SizeAndHash = (Option<u64>, Option<String>);

/// One entry, classified from the central directory before any data is read.
enum Planned {
    File {
        index: usize,
        path: VaultPath,
        declared: u64,
        compressed: u64,
    },
    Dir {
        path: VaultPath,
    },
    Records {
        index: usize,
        collection: CollectionName,
        name: String,
    },
    Skip,
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// Imports `reader` (a ZIP) into `vault`.
pub fn import_archive<R: Read + Seek>(
    vault: &Vault,
    caller: &Caller,
    reader: R,
    limits: &ImportLimits,
    policy: ConflictPolicy,
) -> Result<ImportReport, ImportError> {
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| refused(format!("not a readable ZIP archive ({e})")))?;
    if archive.len() > limits.max_entries {
        return Err(ImportError::TooLarge(format!(
            "{} entries, more than the limit of {}",
            archive.len(),
            limits.max_entries
        )));
    }
    if archive.has_duplicate_names() {
        return Err(refused("duplicate entry names"));
    }
    if archive
        .has_overlapping_entries()
        .map_err(|e| refused(format!("unreadable entries ({e})")))?
    {
        return Err(refused("overlapping entries (a non-recursive zip bomb)"));
    }
    archive.validate_header_consistency().map_err(|e| {
        refused(format!(
            "local headers disagree with the central directory ({e})"
        ))
    })?;

    let manifest = read_manifest(&mut archive)?;
    let coffer_export = manifest.is_some();
    let mut plan = Vec::with_capacity(archive.len());
    // Case- and normalisation-folded path → kind, to find collisions and file/dir clashes.
    let mut seen: HashMap<String, bool> = HashMap::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| refused(format!("entry {index}: {e}")))?;
        let raw = String::from_utf8(entry.name_raw().to_vec())
            .map_err(|_| refused(format!("entry {index}: name is not UTF-8")))?;
        if entry.encrypted() {
            return Err(refused(format!(
                "{raw}: encrypted entries are not accepted"
            )));
        }
        if entry.is_symlink() {
            return Err(refused(format!("{raw}: symbolic links are not accepted")));
        }
        if let Some(mode) = entry.unix_mode()
            && !matches!(mode & S_IFMT, 0 | S_IFREG | S_IFDIR)
        {
            return Err(refused(format!("{raw}: special files are not accepted")));
        }
        // `enclosed_name` must accept the name and not rewrite it (absolute, drive, UNC).
        let trimmed = raw.trim_end_matches('/');
        match entry.enclosed_name() {
            Some(p) if p.to_str() == Some(trimmed) => {}
            _ => return Err(refused(format!("{raw}: unsafe entry name"))),
        }
        let is_dir = raw.ends_with('/');
        let declared = entry.size();
        let compressed = entry.compressed_size();
        drop(entry);
        let relative = if coffer_export {
            match raw.as_str() {
                MANIFEST_NAME | super::README_NAME | super::AUDIT_NAME => {
                    plan.push(Planned::Skip);
                    continue;
                }
                "files/" => {
                    plan.push(Planned::Skip);
                    continue;
                }
                name if name.starts_with(RECORDS_PREFIX) => {
                    let file = &name[RECORDS_PREFIX.len()..];
                    if let Some(collection) = file.strip_suffix(".jsonl") {
                        let collection = CollectionName::parse(collection)
                            .map_err(|e| refused(format!("{raw}: {e}")))?;
                        plan.push(Planned::Records {
                            index,
                            collection,
                            name: raw.clone(),
                        });
                    } else if file.ends_with(".csv") {
                        // The CSV is a convenience view of the same records.
                        plan.push(Planned::Skip);
                    } else {
                        return Err(refused(format!(
                            "{raw}: unexpected entry in a Coffer export"
                        )));
                    }
                    continue;
                }
                name => match name.strip_prefix(FILES_PREFIX) {
                    Some(rest) => rest.trim_end_matches('/').to_owned(),
                    None => {
                        return Err(refused(format!(
                            "{raw}: unexpected entry in a Coffer export"
                        )));
                    }
                },
            }
        } else {
            // Archive-tool debris that is not the user's data.
            if trimmed == "__MACOSX"
                || trimmed.starts_with("__MACOSX/")
                || trimmed.rsplit('/').next() == Some(".DS_Store")
            {
                plan.push(Planned::Skip);
                continue;
            }
            trimmed.to_owned()
        };
        let path = VaultPath::parse(&relative).map_err(|e| refused(format!("{raw}: {e}")))?;
        // Every ancestor is implicitly a directory; no file may sit where a directory is.
        for ancestor in path.ancestors() {
            if seen.insert(fold_path(&ancestor), true) == Some(false) {
                return Err(refused(format!(
                    "{raw}: a file and a directory share the name {ancestor}"
                )));
            }
        }
        let key = fold_path(&path);
        match seen.get(&key) {
            Some(prev_dir) if !(is_dir && *prev_dir) => {
                return Err(refused(format!(
                    "{raw}: collides with another entry by case, Unicode form, or file/directory"
                )));
            }
            _ => {}
        }
        seen.insert(key, is_dir);
        if declared > limits.max_entry_bytes {
            return Err(ImportError::TooLarge(format!(
                "{raw}: {declared} bytes, more than the limit"
            )));
        }
        plan.push(if is_dir {
            Planned::Dir { path }
        } else {
            Planned::File {
                index,
                path,
                declared,
                compressed,
            }
        });
    }

    // Manifest cross-check (Coffer exports): every file entry listed, with size and hash.
    let expected: Option<BTreeMap<String, SizeAndHash>> = manifest.as_ref().map(|m| {
        m.entries
            .iter()
            .map(|e| (e.path.clone(), (e.size, e.sha256.clone())))
            .collect()
    });
    if let Some(expected) = &expected {
        for name in archive.file_names() {
            let name = name.map_err(|e| refused(e.to_string()))?;
            if name != MANIFEST_NAME && !expected.contains_key(name.as_ref()) {
                return Err(refused(format!("{name}: not listed in the manifest")));
            }
        }
        for listed in expected.keys() {
            if archive.index_for_name(listed).is_none() {
                return Err(refused(format!(
                    "{listed}: listed in the manifest but missing"
                )));
            }
        }
    }

    let mut batch = vault.begin_import();
    let mut records = Vec::new();
    let mut total: u64 = 0;
    for item in plan {
        match item {
            Planned::Skip => {}
            Planned::Dir { path } => batch.add_dir(path),
            Planned::File {
                index,
                path,
                declared,
                compressed,
            } => {
                let entry = archive
                    .by_index(index)
                    .map_err(|e| refused(format!("{path}: {e}")))?;
                let ratio_limit = compressed
                    .max(1)
                    .saturating_mul(limits.max_ratio)
                    .saturating_add(1 << 20);
                let mut counted = Counted {
                    inner: entry,
                    read: 0,
                    entry_limit: limits.max_entry_bytes.min(ratio_limit),
                    total: &mut total,
                    total_limit: limits.max_total_bytes,
                };
                let (sha, size) =
                    match batch.stage_file(path.clone(), &mut counted, limits.max_entry_bytes) {
                        Ok(r) => r,
                        Err(VaultError::Upload(e)) if e.kind() == io::ErrorKind::FileTooLarge => {
                            return Err(ImportError::TooLarge(format!("{path}: {e}")));
                        }
                        Err(VaultError::Upload(e)) => {
                            return Err(refused(format!("{path}: corrupt entry ({e})")));
                        }
                        Err(VaultError::TooLarge { .. }) => {
                            return Err(ImportError::TooLarge(format!(
                                "{path}: over the size limit"
                            )));
                        }
                        Err(e) => return Err(e.into()),
                    };
                if size != declared {
                    return Err(refused(format!(
                        "{path}: inflates to {size} bytes, header says {declared}"
                    )));
                }
                if let Some(expected) = &expected {
                    let name = format!("{FILES_PREFIX}{path}");
                    if expected.get(&name) != Some(&(Some(size), Some(sha))) {
                        return Err(refused(format!("{name}: does not match the manifest")));
                    }
                }
            }
            Planned::Records {
                index,
                collection,
                name,
            } => {
                let entry = archive
                    .by_index(index)
                    .map_err(|e| refused(format!("{name}: {e}")))?;
                let mut counted = Counted {
                    inner: entry,
                    read: 0,
                    entry_limit: 1 << 30,
                    total: &mut total,
                    total_limit: limits.max_total_bytes,
                };
                let mut bytes = Vec::new();
                counted
                    .read_to_end(&mut bytes)
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::FileTooLarge => {
                            ImportError::TooLarge(format!("{name}: {e}"))
                        }
                        _ => refused(format!("{name}: corrupt entry ({e})")),
                    })?;
                if let Some(expected) = &expected {
                    let actual = (
                        Some(bytes.len() as u64),
                        Some(hex::encode(Sha256::digest(&bytes))),
                    );
                    if expected.get(&name) != Some(&actual) {
                        return Err(refused(format!("{name}: does not match the manifest")));
                    }
                }
                records.extend(parse_records(&collection, &bytes, &name)?);
            }
        }
    }
    let summary = batch
        .commit(caller, &records, policy == ConflictPolicy::Skip)
        .map_err(ImportError::from)?;
    Ok(ImportReport {
        kind: if coffer_export {
            "coffer-export"
        } else {
            "plain-zip"
        },
        summary,
    })
}

/// The folded form of a whole path: two paths that a case-insensitive filesystem would
/// confuse get the same key (names are already NFC).
fn fold_path(path: &VaultPath) -> String {
    path.components()
        .map(fold_name)
        .collect::<Vec<_>>()
        .join("/")
}

fn read_manifest<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
) -> Result<Option<Manifest>, ImportError> {
    let Some(index) = archive.index_for_name(MANIFEST_NAME) else {
        return Ok(None);
    };
    let file = archive
        .by_index(index)
        .map_err(|e| refused(format!("manifest.json: {e}")))?;
    let mut text = Vec::new();
    file.take(256 * 1024 * 1024 + 1).read_to_end(&mut text)?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| refused(format!("manifest.json: {e}")))?;
    if manifest.format != FORMAT || manifest.format_version != super::FORMAT_VERSION {
        return Err(refused(format!(
            "unsupported export format {} v{}",
            manifest.format, manifest.format_version
        )));
    }
    Ok(Some(manifest))
}

fn parse_records(
    collection: &CollectionName,
    bytes: &[u8],
    name: &str,
) -> Result<Vec<Record>, ImportError> {
    let text = std::str::from_utf8(bytes).map_err(|_| refused(format!("{name}: not UTF-8")))?;
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line: RecordLine = serde_json::from_str(line)
            .map_err(|e| refused(format!("{name} line {}: {e}", n + 1)))?;
        RecordId::parse(&line.id).map_err(|e| refused(format!("{name} line {}: {e}", n + 1)))?;
        if !line.body.is_object() || line.version < 1 {
            return Err(refused(format!(
                "{name} line {}: not a valid record",
                n + 1
            )));
        }
        out.push(Record {
            collection: collection.to_string(),
            id: line.id,
            version: line.version,
            body: line.body,
            created_at: line.created_at,
            updated_at: line.updated_at,
            created_by: line.created_by,
            updated_by: line.updated_by,
        });
    }
    Ok(out)
}
