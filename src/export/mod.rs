//! Data portability: the whole vault as one ZIP that opens without Coffer, and back.
//!
//! `Snapshot` fixes what an export contains (the index's files and directories, the
//! records, the tenant's audit events up to a cursor) and names it with an ETag.
//! `write_archive` streams that snapshot into any `Write` with bounded memory: entries in
//! a fixed order, timestamps from the files' own mtimes, each entry's SHA-256 computed
//! from the bytes as they go in, `manifest.json` last. The same snapshot always gives the
//! same bytes, which is what makes a `Range` resume of an HTTP export correct. `verify`
//! checks an archive against its manifest (`verify`); `import` reads one back. The
//! archive writer is `archive`, the records' JSON-lines and CSV forms are `records`.
//! This module never writes tenant files itself: reads go through the `Vault`, and the
//! audit events of an export are written by its one runner, `Coffer::export`.

mod archive;
pub mod import;
mod records;
mod verify;

use std::io;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::AuditLog;
use crate::control::Tenant;
use crate::vault::index::{Entry, Record};
use crate::vault::{Vault, VaultError};
pub(crate) use archive::write_archive;
pub use records::RecordLine;
pub use verify::{VerifyReport, verify};

/// A `Write` that only counts: the size of an archive without keeping it.
#[derive(Debug, Default)]
pub struct CountingSink(u64);

impl CountingSink {
    pub fn bytes(&self) -> u64 {
        self.0
    }
}

impl std::io::Write for CountingSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0 += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub const FORMAT: &str = "coffer-export";
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_NAME: &str = "manifest.json";
pub const README_NAME: &str = "README.txt";
pub const AUDIT_NAME: &str = "audit.jsonl";
pub const FILES_PREFIX: &str = "files/";
pub const RECORDS_PREFIX: &str = "records/";

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

/// How the export is consumed.
#[derive(Default)]
pub struct ExportOptions<'a> {
    /// Fail if anything differs from the snapshot (a resumed download must be the same
    /// bytes as the first one). Without it, a file changed or deleted since the snapshot
    /// is exported as it now is (or left out), and the manifest says so.
    pub strict: bool,
    /// Store every entry as it is, deflating nothing (`?compress=none`): an archive as
    /// large as the vault, written at the speed of the disk.
    pub stored: bool,
    /// Called with the number of file bytes exported so far.
    pub progress: Option<&'a mut dyn FnMut(u64)>,
}
