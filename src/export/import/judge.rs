//! Judging an archive before anything is read from it: the central directory, every
//! entry's name and kind, collisions, and (for Coffer exports) the manifest. The result
//! is a plan of what to stage; an archive that fails any check is refused whole, with
//! the reason named.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};

use super::{ImportError, Refusal, refused};
use crate::config::ImportLimits;
use crate::export::{
    AUDIT_NAME, FILES_PREFIX, FORMAT, FORMAT_VERSION, MANIFEST_NAME, Manifest, README_NAME,
    RECORDS_PREFIX,
};
use crate::vault::path::{CollectionName, VaultPath, fold_name};

/// What the manifest says of an entry: its size and SHA-256.
pub(super) type SizeAndHash = (Option<u64>, Option<String>);

/// One entry, classified from the central directory before any data is read.
pub(super) enum Planned {
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

/// The verdict on an archive: what to stage, and what the manifest promises.
pub(super) struct Judged {
    pub plan: Vec<Planned>,
    /// Entry name → size and hash, for a Coffer export.
    pub expected: Option<BTreeMap<String, SizeAndHash>>,
}

impl Judged {
    pub fn is_coffer_export(&self) -> bool {
        self.expected.is_some()
    }
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// Judges the whole archive from its central directory (and manifest).
pub(super) fn judge<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    limits: &ImportLimits,
) -> Result<Judged, ImportError> {
    check_structure(archive, limits)?;
    let manifest = read_manifest(archive)?;
    let coffer_export = manifest.is_some();
    let mut plan = Vec::with_capacity(archive.len());
    // Case- and normalisation-folded path → is a directory, to find collisions and
    // file/directory clashes.
    let mut seen: HashMap<String, bool> = HashMap::new();
    for index in 0..archive.len() {
        let entry = read_entry_header(archive, index)?;
        if entry.is_dir && (entry.declared > 0 || entry.compressed > 0) {
            return Err(refused(
                Refusal::DirectoryWithData,
                format!("{}: a directory entry carries data", entry.raw),
            ));
        }
        let relative = if coffer_export {
            match classify_export_entry(&entry.raw, index)? {
                ExportEntry::Planned(p) => {
                    plan.push(p);
                    continue;
                }
                ExportEntry::File(relative) => relative,
            }
        } else if is_archiver_debris(&entry.raw) {
            plan.push(Planned::Skip);
            continue;
        } else {
            entry.raw.trim_end_matches('/').to_owned()
        };
        let path = VaultPath::parse(&relative)
            .map_err(|e| refused(Refusal::InvalidName, format!("{}: {e}", entry.raw)))?;
        check_collisions(&mut seen, &path, entry.is_dir, &entry.raw)?;
        if entry.declared > limits.max_entry_bytes {
            return Err(ImportError::TooLarge(format!(
                "{}: {} bytes, more than the limit",
                entry.raw, entry.declared
            )));
        }
        plan.push(if entry.is_dir {
            Planned::Dir { path }
        } else {
            Planned::File {
                index,
                path,
                declared: entry.declared,
                compressed: entry.compressed,
            }
        });
    }
    let expected = manifest.map(|m| {
        m.entries
            .into_iter()
            .map(|e| (e.path, (e.size, e.sha256)))
            .collect::<BTreeMap<_, _>>()
    });
    if let Some(expected) = &expected {
        cross_check_manifest(archive, expected)?;
    }
    Ok(Judged { plan, expected })
}

/// Archive-wide checks: entry count, duplicate names, overlapping entries (a
/// non-recursive zip bomb), local headers that disagree with the central directory.
fn check_structure<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    limits: &ImportLimits,
) -> Result<(), ImportError> {
    if archive.len() > limits.max_entries {
        return Err(ImportError::TooLarge(format!(
            "{} entries, more than the limit of {}",
            archive.len(),
            limits.max_entries
        )));
    }
    if archive.has_duplicate_names() {
        return Err(refused(Refusal::DuplicateNames, "duplicate entry names"));
    }
    let overlapping = archive
        .has_overlapping_entries()
        .map_err(|e| refused(Refusal::Unreadable, format!("unreadable entries ({e})")))?;
    if overlapping {
        return Err(refused(
            Refusal::OverlappingEntries,
            "overlapping entries (a non-recursive zip bomb)",
        ));
    }
    archive.validate_header_consistency().map_err(|e| {
        refused(
            Refusal::HeaderMismatch,
            format!("local headers disagree with the central directory ({e})"),
        )
    })
}

/// The facts of one entry that the judge needs.
struct EntryHeader {
    raw: String,
    is_dir: bool,
    declared: u64,
    compressed: u64,
}

/// Reads and vets one entry's header: UTF-8 name, not encrypted, not a link or special
/// file, a name that `enclosed_name` neither refuses nor rewrites.
fn read_entry_header<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    index: usize,
) -> Result<EntryHeader, ImportError> {
    let entry = archive
        .by_index_raw(index)
        .map_err(|e| refused(Refusal::Unreadable, format!("entry {index}: {e}")))?;
    let raw = String::from_utf8(entry.name_raw().to_vec()).map_err(|_| {
        refused(
            Refusal::InvalidName,
            format!("entry {index}: name is not UTF-8"),
        )
    })?;
    if entry.encrypted() {
        return Err(refused(
            Refusal::Encrypted,
            format!("{raw}: encrypted entries are not accepted"),
        ));
    }
    if entry.is_symlink() {
        return Err(refused(
            Refusal::Symlink,
            format!("{raw}: symbolic links are not accepted"),
        ));
    }
    if let Some(mode) = entry.unix_mode()
        && !matches!(mode & S_IFMT, 0 | S_IFREG | S_IFDIR)
    {
        return Err(refused(
            Refusal::SpecialFile,
            format!("{raw}: special files are not accepted"),
        ));
    }
    // `enclosed_name` must accept the name and not rewrite it (absolute, drive, UNC).
    let trimmed = raw.trim_end_matches('/');
    match entry.enclosed_name() {
        Some(p) if p.to_str() == Some(trimmed) => {}
        _ => {
            return Err(refused(
                Refusal::UnsafeName,
                format!("{raw}: unsafe entry name"),
            ));
        }
    }
    Ok(EntryHeader {
        is_dir: raw.ends_with('/'),
        declared: entry.size(),
        compressed: entry.compressed_size(),
        raw,
    })
}

enum ExportEntry {
    /// Planned already (skipped, or records).
    Planned(Planned),
    /// A file or directory under `files/`, by its path relative to it.
    File(String),
}

/// Where an entry of a Coffer export belongs.
fn classify_export_entry(raw: &str, index: usize) -> Result<ExportEntry, ImportError> {
    let unexpected = || {
        refused(
            Refusal::UnexpectedEntry,
            format!("{raw}: unexpected entry in a Coffer export"),
        )
    };
    if matches!(raw, MANIFEST_NAME | README_NAME | AUDIT_NAME | "files/") {
        return Ok(ExportEntry::Planned(Planned::Skip));
    }
    if let Some(file) = raw.strip_prefix(RECORDS_PREFIX) {
        if let Some(collection) = file.strip_suffix(".jsonl") {
            let collection = CollectionName::parse(collection)
                .map_err(|e| refused(Refusal::InvalidName, format!("{raw}: {e}")))?;
            return Ok(ExportEntry::Planned(Planned::Records {
                index,
                collection,
                name: raw.to_owned(),
            }));
        }
        // The CSV is a convenience view of the same records.
        if file.ends_with(".csv") {
            return Ok(ExportEntry::Planned(Planned::Skip));
        }
        return Err(unexpected());
    }
    match raw.strip_prefix(FILES_PREFIX) {
        Some(rest) => Ok(ExportEntry::File(rest.trim_end_matches('/').to_owned())),
        None => Err(unexpected()),
    }
}

/// Archive-tool debris that is not the user's data.
fn is_archiver_debris(raw: &str) -> bool {
    let trimmed = raw.trim_end_matches('/');
    trimmed == "__MACOSX"
        || trimmed.starts_with("__MACOSX/")
        || trimmed.rsplit('/').next() == Some(".DS_Store")
}

/// Refuses two entries that a case-insensitive or normalising filesystem would confuse,
/// and a file where a directory is (or the reverse).
fn check_collisions(
    seen: &mut HashMap<String, bool>,
    path: &VaultPath,
    is_dir: bool,
    raw: &str,
) -> Result<(), ImportError> {
    // Every ancestor is implicitly a directory; no file may sit where a directory is.
    for ancestor in path.ancestors() {
        if seen.insert(fold_path(&ancestor), true) == Some(false) {
            return Err(refused(
                Refusal::FileDirectoryClash,
                format!("{raw}: a file and a directory share the name {ancestor}"),
            ));
        }
    }
    let key = fold_path(path);
    match seen.get(&key) {
        Some(true) if !is_dir => {
            return Err(refused(
                Refusal::FileDirectoryClash,
                format!("{raw}: a file and a directory share this name"),
            ));
        }
        Some(false) => {
            return Err(refused(
                Refusal::NameCollision,
                format!("{raw}: collides with another entry by case or Unicode form"),
            ));
        }
        _ => {}
    }
    seen.insert(key, is_dir);
    Ok(())
}

/// The folded form of a whole path: two paths that a case-insensitive filesystem would
/// confuse get the same key (names are already NFC).
fn fold_path(path: &VaultPath) -> String {
    path.components()
        .map(fold_name)
        .collect::<Vec<_>>()
        .join("/")
}

/// Every entry listed in the manifest, and nothing else.
fn cross_check_manifest<R: Read + Seek>(
    archive: &zip::ZipArchive<R>,
    expected: &BTreeMap<String, SizeAndHash>,
) -> Result<(), ImportError> {
    for name in archive.file_names() {
        let name = name.map_err(|e| refused(Refusal::InvalidName, e.to_string()))?;
        if name != MANIFEST_NAME && !expected.contains_key(name.as_ref()) {
            return Err(refused(
                Refusal::ManifestMismatch,
                format!("{name}: not listed in the manifest"),
            ));
        }
    }
    for listed in expected.keys() {
        if archive.index_for_name(listed).is_none() {
            return Err(refused(
                Refusal::ManifestMismatch,
                format!("{listed}: listed in the manifest but missing"),
            ));
        }
    }
    Ok(())
}

fn read_manifest<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
) -> Result<Option<Manifest>, ImportError> {
    let Some(index) = archive.index_for_name(MANIFEST_NAME) else {
        return Ok(None);
    };
    let bad = |m: String| refused(Refusal::BadManifest, format!("manifest.json: {m}"));
    let file = archive.by_index(index).map_err(|e| bad(e.to_string()))?;
    let mut text = Vec::new();
    file.take(256 * 1024 * 1024 + 1)
        .read_to_end(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "unsupported export format {} v{}",
            manifest.format, manifest.format_version
        )));
    }
    Ok(Some(manifest))
}
