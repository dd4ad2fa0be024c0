//! An import's files and records, staged one by one and made visible together.
//!
//! Staged bytes count against the vault's quota as they are written, so an archive
//! cannot make the server stage more than the tenant may store. `commit` places every
//! file and inserts every record, or rolls the files back and changes nothing; one audit
//! event describes the whole import. Dropping an uncommitted batch removes its staged
//! files.

use std::io::Read;

use super::dir::KeptFile;
use super::index::{Entry, EntryKind, IndexChange, Record};
use super::path::VaultPath;
use super::repair::{Expect, Intent};
use super::{Caller, InflightGuard, Vault, VaultError, copy, format_time};
use crate::audit::AuditAction;

struct StagedEntry {
    path: VaultPath,
    kept: KeptFile,
    sha256: String,
    size: u64,
}

/// Files (and directories) staged for one import, made visible together by `commit`.
pub struct ImportBatch<'a> {
    vault: &'a Vault,
    files: Vec<StagedEntry>,
    dirs: Vec<VaultPath>,
    /// The staged bytes, counted in the vault's in-flight total until the batch ends.
    staged: InflightGuard<'a>,
}

/// What an import batch did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportSummary {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub records: u64,
    pub skipped: Vec<String>,
}

impl Vault {
    /// Starts an import: files are staged one by one, then committed together.
    pub fn begin_import(&self) -> ImportBatch<'_> {
        ImportBatch {
            vault: self,
            files: Vec::new(),
            dirs: Vec::new(),
            staged: InflightGuard {
                counter: &self.inflight,
                bytes: 0,
            },
        }
    }
}

impl ImportBatch<'_> {
    /// Streams one file into staging, hashing it; more than `max_bytes` fails with
    /// `TooLarge`, more than the quota allows with `QuotaExceeded`. Returns its SHA-256
    /// and size.
    pub fn stage_file(
        &mut self,
        path: VaultPath,
        body: &mut dyn Read,
        max_bytes: u64,
    ) -> Result<(String, u64), VaultError> {
        let vault = self.vault;
        let used = vault.index().bytes_charged()?;
        let quota = vault.quota();
        let mut staged = vault.dir.stage()?;
        let counter = &mut self.staged;
        let (sha256, size) = copy::copy_hashed(body, &mut staged, max_bytes, |n| {
            let inflight = counter.add(n);
            match quota {
                Some(quota) if used + inflight > quota => Err(VaultError::QuotaExceeded {
                    quota,
                    used,
                    attempted: inflight,
                }),
                _ => Ok(()),
            }
        })?;
        self.files.push(StagedEntry {
            path,
            kept: staged.keep(),
            sha256: sha256.clone(),
            size,
        });
        Ok((sha256, size))
    }

    pub fn add_dir(&mut self, path: VaultPath) {
        self.dirs.push(path);
    }

    /// Makes everything visible, or nothing. With `skip_existing`, paths (and records)
    /// that already exist are left alone and reported; otherwise any existing path fails
    /// the import before anything changes. Records are inserted in the same step.
    pub fn commit(
        mut self,
        caller: &Caller,
        records: &[Record],
        skip_existing: bool,
    ) -> Result<ImportSummary, VaultError> {
        let vault = self.vault;
        let (_commit, mut index) = vault.begin_commit()?;
        let (to_commit, skipped) = self.partition(&index, skip_existing)?;
        let bytes: u64 = to_commit.iter().map(|f| f.size).sum();
        if let Err(e) = vault.check_quota(&index, 0, bytes) {
            self.files.extend(to_commit);
            return Err(e);
        }
        let intent = Intent {
            event: vault
                .event(caller, AuditAction::Import, "files")
                .detail(serde_json::json!({
                    "files": to_commit.len(), "bytes": bytes,
                    "records": records.len(), "skipped": skipped.len() })),
            expect: Expect::Imported {
                files: to_commit
                    .iter()
                    .map(|f| (f.path.to_string(), f.sha256.clone()))
                    .collect(),
            },
        };
        let pending: Vec<&VaultPath> = to_commit
            .iter()
            .map(|f| &f.path)
            .chain(self.dirs.iter())
            .collect();
        vault.begin_pending(&mut index, &pending, &intent)?;
        let placed = self.place(&to_commit, &caller.actor.to_string());
        let pending_strs: Vec<&str> = pending.iter().map(|p| p.as_str()).collect();
        let result = match placed.failure {
            Some(e) => Err(e),
            None => vault.finish(
                &mut index,
                IndexChange {
                    upserts: &placed.upserts,
                    records,
                    skip_existing_records: skip_existing,
                    pending_done: &pending_strs,
                    covered_by_pending: true,
                    ..Default::default()
                },
                &intent,
            ),
        };
        if let Err(e) = result {
            // Roll back: the files this import placed go again, then the pending rows are
            // settled from the disk. Directories it created stay (empty) and are indexed,
            // so the index matches the disk.
            for f in &to_commit[..placed.files] {
                let _ = vault.dir.remove_committed_file(&f.path);
            }
            self.files.extend(to_commit.into_iter().skip(placed.files));
            let e = match e {
                VaultError::Index(crate::vault::index::IndexError::RecordExists) => {
                    VaultError::ExistsAt("a record of the archive".into())
                }
                other => other,
            };
            return Err(vault.abandon(&mut index, &intent, e));
        }
        Ok(ImportSummary {
            files: to_commit.len() as u64,
            dirs: placed
                .upserts
                .iter()
                .filter(|u| u.kind == EntryKind::Dir)
                .count() as u64,
            bytes,
            records: records.len() as u64,
            skipped,
        })
    }

    /// Splits the staged files into those to commit and those that exist already
    /// (discarded and reported with `skip_existing`, otherwise an error that discards
    /// everything).
    fn partition(
        &mut self,
        index: &crate::vault::index::Index,
        skip_existing: bool,
    ) -> Result<(Vec<StagedEntry>, Vec<String>), VaultError> {
        let vault = self.vault;
        let mut to_commit = Vec::with_capacity(self.files.len());
        let mut skipped = Vec::new();
        let mut staged_files = std::mem::take(&mut self.files).into_iter();
        while let Some(staged) = staged_files.next() {
            let clash = match index.entry(&staged.path) {
                Ok(Some(_)) => Some(VaultError::ExistsAt(staged.path.to_string())),
                Ok(None) => vault.check_case(index, &staged.path).err(),
                Err(e) => Some(e.into()),
            };
            match clash {
                Some(VaultError::ExistsAt(_) | VaultError::CaseConflict(..)) if skip_existing => {
                    vault.dir.discard_kept(&staged.kept);
                    skipped.push(staged.path.to_string());
                }
                Some(e) => {
                    // Put everything back so that `Drop` discards every staged file.
                    self.files.push(staged);
                    self.files.extend(to_commit);
                    self.files.extend(staged_files);
                    return Err(e);
                }
                None => to_commit.push(staged),
            }
        }
        Ok((to_commit, skipped))
    }

    /// Creates the directories and renames the files into place, in order, stopping at the
    /// first failure.
    fn place(&self, to_commit: &[StagedEntry], who: &str) -> Placed {
        let vault = self.vault;
        let mut placed = Placed {
            upserts: Vec::new(),
            files: 0,
            failure: None,
        };
        for dir_path in &self.dirs {
            match vault.dir.mkdir(dir_path) {
                Ok(created) => placed.upserts.extend(vault.dir_entries(&created, who)),
                Err(e) => {
                    placed.failure = Some(e.into());
                    return placed;
                }
            }
        }
        for f in to_commit {
            let created = match vault.dir.commit_kept(&f.kept, &f.path) {
                Ok(created) => created,
                Err(e) => {
                    placed.failure = Some(e.into());
                    return placed;
                }
            };
            placed.upserts.extend(vault.dir_entries(&created, who));
            let modified = vault
                .dir
                .metadata(&f.path)
                .ok()
                .and_then(|m| m.modified().ok())
                .map(|t| format_time(t.into_std()));
            let now = vault.now();
            placed.upserts.push(Vault::file_entry(
                &f.path,
                f.size,
                &f.sha256,
                who,
                now.clone(),
                modified.unwrap_or(now),
            ));
            placed.files += 1;
        }
        placed
    }
}

/// What `place` did: the index entries of what it placed, how many files, and the
/// failure that stopped it.
struct Placed {
    upserts: Vec<Entry>,
    files: usize,
    failure: Option<VaultError>,
}

impl Drop for ImportBatch<'_> {
    fn drop(&mut self) {
        for f in &self.files {
            self.vault.dir.discard_kept(&f.kept);
        }
    }
}
