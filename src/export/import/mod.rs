//! Reading an archive back into a vault: Coffer's own exports (files and records, checked
//! against the manifest) and plain ZIPs of folders (as `files/`).
//!
//! Four steps: `judge` decides from the central directory (and manifest) whether the
//! archive is acceptable at all; `plan` says where each entry goes; `stage` streams each entry
//! through an inflate counter into the vault's staging area (counted against the quota
//! as it goes); the vault's `ImportBatch` then commits everything together, or nothing.
//! Refused outright: duplicate names, overlapping entries, local headers that disagree
//! with the central directory, symlinks and special files, encrypted entries, names that
//! `enclosed_name` rewrites or rejects, names that are not valid vault paths, two names
//! colliding by case or Unicode normalisation, a file and a directory of the same name,
//! a directory entry carrying data, and too many entries. This module never calls a
//! library's `extract`.

mod judge;
mod plan;
mod stage;

use std::io::{self, Read, Seek};

use serde::Serialize;

use crate::audit::Caller;
use crate::config::ImportLimits;
use crate::vault::{ImportSummary, Vault, VaultError};

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

macro_rules! refusals {
    ($($variant:ident => $code:literal,)*) => {
        /// Why an archive was refused: a closed set with stable codes, so a client (and a
        /// test) can tell one refusal from another.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Refusal { $($variant,)* }

        impl Refusal {
            pub const ALL: &[Refusal] = &[$(Refusal::$variant,)*];
            pub fn code(&self) -> &'static str {
                match self { $(Refusal::$variant => $code,)* }
            }
        }
    };
}

refusals! {
    NotZip => "not-a-zip",
    Unreadable => "unreadable-entry",
    DuplicateNames => "duplicate-names",
    OverlappingEntries => "overlapping-entries",
    HeaderMismatch => "header-mismatch",
    Encrypted => "encrypted-entry",
    Symlink => "symlink-entry",
    SpecialFile => "special-file-entry",
    UnsafeName => "unsafe-entry-name",
    InvalidName => "invalid-entry-name",
    NameCollision => "name-collision",
    FileDirectoryClash => "file-directory-clash",
    DirectoryWithData => "directory-with-data",
    UnexpectedEntry => "unexpected-entry",
    BadManifest => "bad-manifest",
    ManifestMismatch => "manifest-mismatch",
    SizeMismatch => "size-mismatch",
    Corrupt => "corrupt-entry",
    BadRecords => "bad-records",
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("archive refused: {detail}")]
    Refused { reason: Refusal, detail: String },
    #[error("archive refused: {0}")]
    TooLarge(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

fn refused(reason: Refusal, detail: impl Into<String>) -> ImportError {
    ImportError::Refused {
        reason,
        detail: detail.into(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// `coffer-export` or `plain-zip`.
    pub kind: &'static str,
    #[serde(flatten)]
    pub summary: ImportSummary,
}

/// Imports `reader` (a ZIP) into `vault`: judge, stage, commit.
pub fn import_archive<R: Read + Seek>(
    vault: &Vault,
    caller: &Caller,
    reader: R,
    limits: &ImportLimits,
    policy: ConflictPolicy,
) -> Result<ImportReport, ImportError> {
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| refused(Refusal::NotZip, format!("not a readable ZIP archive ({e})")))?;
    let judged = judge::judge(&mut archive, limits)?;
    let plan = plan::plan(judged, limits)?;
    let kind = if plan.is_coffer_export() {
        "coffer-export"
    } else {
        "plain-zip"
    };
    let mut batch = vault.begin_import();
    let records = stage::stage(&mut archive, plan, &mut batch, limits)?;
    let summary = batch
        .commit(caller, &records, policy == ConflictPolicy::Skip)
        .map_err(ImportError::from)?;
    Ok(ImportReport { kind, summary })
}
