//! Staging a judged archive: every file entry streams through an inflate counter into the
//! vault's staging area (never trusting declared sizes), records are read and checked,
//! and both are compared with the manifest when there is one.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek};

use sha2::{Digest, Sha256};

use super::plan::{Plan, Planned, SizeAndHash};
use super::{ImportError, Refusal, refused};
use crate::config::ImportLimits;
use crate::export::{FILES_PREFIX, RecordLine};
use crate::vault::index::Record;
use crate::vault::path::{CollectionName, RecordId, VaultPath};
use crate::vault::{ImportBatch, VaultError};

/// Records are read whole; no collection file may inflate past this.
const MAX_RECORDS_ENTRY: u64 = 1 << 30;

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

/// Stages every planned file into `batch` and returns the records read.
pub(super) fn stage<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    plan: Plan,
    batch: &mut ImportBatch<'_>,
    limits: &ImportLimits,
) -> Result<Vec<Record>, ImportError> {
    let mut records = Vec::new();
    let mut total: u64 = 0;
    let expected = plan.expected.as_ref();
    for item in plan.items {
        match item {
            Planned::Skip => {}
            Planned::Dir { path } => batch.add_dir(path),
            Planned::File {
                index,
                path,
                declared,
                compressed,
            } => {
                let file = FileEntry {
                    index,
                    path,
                    declared,
                    compressed,
                };
                stage_file(archive, file, batch, limits, &mut total, expected)?;
            }
            Planned::Records {
                index,
                collection,
                name,
            } => {
                let bytes = read_records_entry(archive, index, &name, limits, &mut total)?;
                if let Some(expected) = expected {
                    let actual = (
                        Some(bytes.len() as u64),
                        Some(hex::encode(Sha256::digest(&bytes))),
                    );
                    if expected.get(&name) != Some(&actual) {
                        return Err(refused(
                            Refusal::ManifestMismatch,
                            format!("{name}: does not match the manifest"),
                        ));
                    }
                }
                records.extend(parse_records(&collection, &bytes, &name)?);
            }
        }
    }
    Ok(records)
}

struct FileEntry {
    index: usize,
    path: VaultPath,
    declared: u64,
    compressed: u64,
}

fn stage_file<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    file: FileEntry,
    batch: &mut ImportBatch<'_>,
    limits: &ImportLimits,
    total: &mut u64,
    expected: Option<&BTreeMap<String, SizeAndHash>>,
) -> Result<(), ImportError> {
    let path = &file.path;
    let entry = archive
        .by_index(file.index)
        .map_err(|e| refused(Refusal::Unreadable, format!("{path}: {e}")))?;
    let ratio_limit = file
        .compressed
        .max(1)
        .saturating_mul(limits.max_ratio)
        .saturating_add(1 << 20);
    let mut counted = Counted {
        inner: entry,
        read: 0,
        entry_limit: limits.max_entry_bytes.min(ratio_limit),
        total,
        total_limit: limits.max_total_bytes,
    };
    let (sha, size) = match batch.stage_file(path.clone(), &mut counted, limits.max_entry_bytes) {
        Ok(r) => r,
        Err(VaultError::Upload(e)) if e.kind() == io::ErrorKind::FileTooLarge => {
            return Err(ImportError::TooLarge(format!("{path}: {e}")));
        }
        Err(VaultError::Upload(e)) => {
            return Err(refused(
                Refusal::Corrupt,
                format!("{path}: corrupt entry ({e})"),
            ));
        }
        Err(VaultError::TooLarge { .. }) => {
            return Err(ImportError::TooLarge(format!(
                "{path}: over the size limit"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if size != file.declared {
        return Err(refused(
            Refusal::SizeMismatch,
            format!(
                "{path}: inflates to {size} bytes, header says {}",
                file.declared
            ),
        ));
    }
    if let Some(expected) = expected {
        let name = format!("{FILES_PREFIX}{path}");
        if expected.get(&name) != Some(&(Some(size), Some(sha))) {
            return Err(refused(
                Refusal::ManifestMismatch,
                format!("{name}: does not match the manifest"),
            ));
        }
    }
    Ok(())
}

fn read_records_entry<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    index: usize,
    name: &str,
    limits: &ImportLimits,
    total: &mut u64,
) -> Result<Vec<u8>, ImportError> {
    let entry = archive
        .by_index(index)
        .map_err(|e| refused(Refusal::Unreadable, format!("{name}: {e}")))?;
    let mut counted = Counted {
        inner: entry,
        read: 0,
        entry_limit: MAX_RECORDS_ENTRY,
        total,
        total_limit: limits.max_total_bytes,
    };
    let mut bytes = Vec::new();
    counted
        .read_to_end(&mut bytes)
        .map_err(|e| match e.kind() {
            io::ErrorKind::FileTooLarge => ImportError::TooLarge(format!("{name}: {e}")),
            _ => refused(Refusal::Corrupt, format!("{name}: corrupt entry ({e})")),
        })?;
    Ok(bytes)
}

fn parse_records(
    collection: &CollectionName,
    bytes: &[u8],
    name: &str,
) -> Result<Vec<Record>, ImportError> {
    let bad = |m: String| refused(Refusal::BadRecords, m);
    let text = std::str::from_utf8(bytes).map_err(|_| bad(format!("{name}: not UTF-8")))?;
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line: RecordLine =
            serde_json::from_str(line).map_err(|e| bad(format!("{name} line {}: {e}", n + 1)))?;
        RecordId::parse(&line.id).map_err(|e| bad(format!("{name} line {}: {e}", n + 1)))?;
        if !line.body.is_object() || line.version < 1 {
            return Err(bad(format!("{name} line {}: not a valid record", n + 1)));
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
