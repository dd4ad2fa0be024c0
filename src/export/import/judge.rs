//! Judging an archive before anything is read from it: the central directory (entry
//! count, duplicates, overlaps, header consistency), every entry's header (encryption,
//! links, special files, names an unzip tool would rewrite), and for Coffer exports the
//! manifest. An archive that fails any check is refused whole, with the reason named.

use std::io::{Read, Seek};

use super::{ImportError, Refusal, refused};
use crate::config::ImportLimits;
use crate::export::{FORMAT, FORMAT_VERSION, MANIFEST_NAME, Manifest};

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// What the judge found acceptable: every entry's header, and the manifest if the
/// archive is a Coffer export.
pub(super) struct Judged {
    pub entries: Vec<EntryHeader>,
    pub manifest: Option<Manifest>,
}

/// Judges the whole archive from its central directory and manifest, before any entry's
/// data is read.
pub(super) fn judge<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    limits: &ImportLimits,
) -> Result<Judged, ImportError> {
    check_structure(archive, limits)?;
    let manifest = read_manifest(archive)?;
    let entries = (0..archive.len())
        .map(|index| read_entry_header(archive, index))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(manifest) = &manifest {
        cross_check_manifest(archive, manifest)?;
    }
    Ok(Judged { entries, manifest })
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

/// The facts of one entry that the judge vetted.
pub(super) struct EntryHeader {
    pub index: usize,
    pub raw: String,
    pub is_dir: bool,
    pub declared: u64,
    pub compressed: u64,
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
        index,
        is_dir: raw.ends_with('/'),
        declared: entry.size(),
        compressed: entry.compressed_size(),
        raw,
    })
}

/// Every entry listed in the manifest, and nothing else.
fn cross_check_manifest<R: Read + Seek>(
    archive: &zip::ZipArchive<R>,
    manifest: &Manifest,
) -> Result<(), ImportError> {
    let expected: std::collections::HashSet<&str> =
        manifest.entries.iter().map(|e| e.path.as_str()).collect();
    for name in archive.file_names() {
        let name = name.map_err(|e| refused(Refusal::InvalidName, e.to_string()))?;
        if name != MANIFEST_NAME && !expected.contains(name.as_ref()) {
            return Err(refused(
                Refusal::ManifestMismatch,
                format!("{name}: not listed in the manifest"),
            ));
        }
    }
    for listed in expected {
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
