//! Planning an import from the judged entries: where each entry goes (a file or folder
//! under `files/`, a collection's records, or nothing), with every name parsed as a vault
//! path and checked against the others for collisions a case-insensitive or normalising
//! filesystem would make.

use std::collections::{BTreeMap, HashMap};

use super::judge::{EntryHeader, Judged};
use super::{ImportError, Refusal, refused};
use crate::config::ImportLimits;
use crate::export::{AUDIT_NAME, FILES_PREFIX, MANIFEST_NAME, README_NAME, RECORDS_PREFIX};
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

/// What to stage, and what the manifest promises of each entry.
pub(super) struct Plan {
    pub items: Vec<Planned>,
    /// Entry name → size and hash, for a Coffer export.
    pub expected: Option<BTreeMap<String, SizeAndHash>>,
}

impl Plan {
    pub fn is_coffer_export(&self) -> bool {
        self.expected.is_some()
    }
}

/// Plans every judged entry.
pub(super) fn plan(judged: Judged, limits: &ImportLimits) -> Result<Plan, ImportError> {
    let coffer_export = judged.manifest.is_some();
    let mut items = Vec::with_capacity(judged.entries.len());
    // Case- and normalisation-folded path → is a directory, to find collisions and
    // file/directory clashes.
    let mut seen: HashMap<String, bool> = HashMap::new();
    for entry in judged.entries {
        items.push(plan_entry(entry, coffer_export, &mut seen, limits)?);
    }
    let expected = judged.manifest.map(|m| {
        m.entries
            .into_iter()
            .map(|e| (e.path, (e.size, e.sha256)))
            .collect::<BTreeMap<_, _>>()
    });
    Ok(Plan { items, expected })
}

fn plan_entry(
    entry: EntryHeader,
    coffer_export: bool,
    seen: &mut HashMap<String, bool>,
    limits: &ImportLimits,
) -> Result<Planned, ImportError> {
    if entry.is_dir && (entry.declared > 0 || entry.compressed > 0) {
        return Err(refused(
            Refusal::DirectoryWithData,
            format!("{}: a directory entry carries data", entry.raw),
        ));
    }
    let relative = if coffer_export {
        match classify_export_entry(&entry.raw, entry.index)? {
            ExportEntry::Planned(p) => return Ok(p),
            ExportEntry::File(relative) => relative,
        }
    } else if is_archiver_debris(&entry.raw) {
        return Ok(Planned::Skip);
    } else {
        entry.raw.trim_end_matches('/').to_owned()
    };
    let path = VaultPath::parse(&relative)
        .map_err(|e| refused(Refusal::InvalidName, format!("{}: {e}", entry.raw)))?;
    check_collisions(seen, &path, entry.is_dir, &entry.raw)?;
    if entry.declared > limits.max_entry_bytes {
        return Err(ImportError::TooLarge(format!(
            "{}: {} bytes, more than the limit",
            entry.raw, entry.declared
        )));
    }
    Ok(if entry.is_dir {
        Planned::Dir { path }
    } else {
        Planned::File {
            index: entry.index,
            path,
            declared: entry.declared,
            compressed: entry.compressed,
        }
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
