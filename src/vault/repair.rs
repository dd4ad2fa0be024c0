//! Making the index match the disk again: after a crash (on every open), after a failed
//! step (for that operation's own pending rows), and on request (`reindex`).
//!
//! Repair never gives up on a whole vault because of one row: a pending path that cannot
//! be read back is dropped and reported, and a pending event whose change did not happen
//! is dropped. A pending event whose change did happen is appended to the audit log (by
//! its id, so at most once); if the audit log refuses, the event stays pending for the
//! next repair.

use serde::{Deserialize, Serialize};

use super::dir::{DirError, DiskEntry, Skipped};
use super::index::{Entry, EntryKind, Index, IndexChange, PendingEvent, no_hook};
use super::path::VaultPath;
use super::{Vault, VaultError, content_type_for, copy, format_time};
use crate::audit::{Actor, AuditAction, AuditEvent};

/// What `reindex` and repair found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReindexReport {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub staging_removed: usize,
    pub trash_rows_removed: usize,
    /// Pending events whose change had happened, appended to the audit log.
    pub events_replayed: usize,
    /// Pending events whose change had not happened (or could not be read), dropped.
    pub events_dropped: usize,
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedEntry {
    pub path: String,
    pub reason: String,
}

impl From<Skipped> for SkippedEntry {
    fn from(s: Skipped) -> Self {
        SkippedEntry {
            path: s.path,
            reason: s.reason,
        }
    }
}

/// What must be true after a file operation for its audit event to describe something
/// that happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Expect {
    File { path: String, sha256: String },
    Dir { path: String },
    Moved { from: String, to: String },
    Trashed { trash_id: String },
    Restored { trash_id: String, path: String },
    Purged { trash_id: String },
    Imported { files: Vec<(String, String)> },
}

impl Expect {
    fn holds(&self, index: &Index) -> Result<bool, VaultError> {
        let entry = |p: &str| -> Result<Option<Entry>, VaultError> {
            match VaultPath::parse(p) {
                Ok(path) => Ok(index.entry(&path)?),
                Err(_) => Ok(None),
            }
        };
        let file_is = |p: &str, sha: &str| -> Result<bool, VaultError> {
            Ok(entry(p)?.is_some_and(|e| e.sha256.as_deref() == Some(sha)))
        };
        Ok(match self {
            Expect::File { path, sha256 } => file_is(path, sha256)?,
            Expect::Dir { path } => entry(path)?.is_some_and(|e| e.kind == EntryKind::Dir),
            Expect::Moved { from, to } => entry(to)?.is_some() && entry(from)?.is_none(),
            Expect::Trashed { trash_id } => index.trash_item(trash_id)?.is_some(),
            Expect::Restored { trash_id, path } => {
                index.trash_item(trash_id)?.is_none() && entry(path)?.is_some()
            }
            Expect::Purged { trash_id } => index.trash_item(trash_id)?.is_none(),
            Expect::Imported { files } => {
                let mut all = true;
                for (p, sha) in files {
                    all &= file_is(p, sha)?;
                }
                all
            }
        })
    }
}

/// An operation's audit event and what makes it true.
pub(super) struct Intent {
    pub event: AuditEvent,
    pub expect: Expect,
}

impl Intent {
    pub fn row(&self) -> Result<PendingEvent, VaultError> {
        let json = |v: serde_json::Result<String>| v.map_err(std::io::Error::other);
        Ok(PendingEvent {
            id: self.event.id.clone(),
            event: json(serde_json::to_string(&self.event))?,
            expect: json(serde_json::to_string(&self.expect))?,
        })
    }
}

/// The error kinds that mean "nothing is there" when re-reading a pending path.
fn absent(e: &DirError) -> bool {
    matches!(e, DirError::NotFound | DirError::NotADirectory)
}

impl Vault {
    /// Repairs what a crash may have left: staging files older than the grace period,
    /// pending paths and events, and trash rows without their item. Runs on every open;
    /// cheap when there is nothing to repair.
    pub(super) fn recover(&self) -> Result<ReindexReport, VaultError> {
        // Leftover staging files are debris: failing to remove one must not keep the
        // vault from opening (the next open tries again).
        let staging_removed = match self.dir.clean_staging(self.limits.staging_grace) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(tenant = %self.tenant, error = %e, "staging debris not removed");
                0
            }
        };
        let _commit = crate::db::lock(&self.commit_lock);
        let mut index = self.index();
        let mut report = self.repair_pending(&mut index, None)?;
        report.staging_removed = staging_removed;
        if !report.skipped.is_empty() {
            // Counted, not named: logs never carry a tenant's file names (the
            // `vault.reconcile` event counts them too; `coffer reindex` lists them).
            tracing::warn!(tenant = %self.tenant, dropped = report.skipped.len(),
                "pending changes that could not be applied on open were dropped");
        }
        Ok(report)
    }

    /// Re-reads every pending path from disk into the index, then settles pending events
    /// (all of them, or only `events`): appended if their change happened, else dropped.
    /// The caller holds the commit lock.
    pub(super) fn repair_pending(
        &self,
        index: &mut Index,
        events: Option<&[&str]>,
    ) -> Result<ReindexReport, VaultError> {
        let mut report = ReindexReport::default();
        let pending = self.repair_paths(index, &mut report)?;
        report.trash_rows_removed = self.drop_orphan_trash_rows(index)?;
        self.settle_events(index, events, &mut report)?;
        if pending > 0 || report.trash_rows_removed > 0 {
            let reconcile = AuditEvent::new(AuditAction::VaultReconcile, Actor::System)
                .tenant(self.tenant)
                .detail(serde_json::json!({ "pending_paths": pending,
                    "dropped_paths": report.skipped.len(),
                    "events_replayed": report.events_replayed,
                    "events_dropped": report.events_dropped,
                    "trash_rows_removed": report.trash_rows_removed }));
            if let Err(e) = self.audit.append(&reconcile) {
                tracing::warn!(error = %e, "could not audit a vault repair");
            }
        }
        Ok(report)
    }

    /// Replaces the index entries under every pending path with what is on disk. A path
    /// that cannot be read back is dropped and reported, never fatal. Returns how many
    /// paths were pending.
    fn repair_paths(
        &self,
        index: &mut Index,
        report: &mut ReindexReport,
    ) -> Result<usize, VaultError> {
        let pending = index.pending()?;
        for raw in &pending {
            let mut skipped = Vec::new();
            let read_back = VaultPath::parse(raw)
                .map_err(|e| VaultError::Damaged(e.to_string()))
                .and_then(|path| {
                    let mut upserts = self.missing_ancestors(index, &path)?;
                    upserts.extend(self.scan_subtree(index, &path, &mut |s| skipped.push(s))?);
                    Ok(upserts)
                });
            let upserts = read_back.unwrap_or_else(|e| {
                report.skipped.push(SkippedEntry {
                    path: raw.clone(),
                    reason: format!("pending write dropped: {e}"),
                });
                Vec::new()
            });
            report.skipped.extend(skipped.into_iter().map(Into::into));
            index.apply(
                IndexChange {
                    clear_subtrees: &[raw.as_str()],
                    upserts: &upserts,
                    pending_done: &[raw.as_str()],
                    ..Default::default()
                },
                &mut no_hook,
            )?;
        }
        Ok(pending.len())
    }

    /// Appends each pending event whose change happened (by its id: at most once), and
    /// drops the others. If the audit log refuses, the event stays pending for the next
    /// repair and the vault keeps serving.
    fn settle_events(
        &self,
        index: &mut Index,
        only: Option<&[&str]>,
        report: &mut ReindexReport,
    ) -> Result<(), VaultError> {
        for row in index.pending_events(only)? {
            let event: Option<AuditEvent> = serde_json::from_str(&row.event).ok();
            let expect: Option<Expect> = serde_json::from_str(&row.expect).ok();
            let happened = match &expect {
                Some(e) => e.holds(index)?,
                None => false,
            };
            let done = [row.id.as_str()];
            let change = IndexChange {
                events_done: &done,
                ..Default::default()
            };
            match (event, happened) {
                (Some(event), true) => {
                    match index.apply(change, &mut || self.audit.append(&event).map(|_| ())) {
                        Ok(()) => report.events_replayed += 1,
                        Err(e) => {
                            tracing::warn!(error = %e, "pending audit event kept for later");
                            self.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
                _ => {
                    index.apply(change, &mut no_hook)?;
                    report.events_dropped += 1;
                }
            }
        }
        Ok(())
    }

    /// Reads the subtree at `root` from disk into index entries, hashing files whose size
    /// or modification time differ from the index (or all of them, when the index has
    /// no entry). Nothing at `root` (or a file where a parent directory should be) gives
    /// no entries.
    pub(super) fn scan_subtree(
        &self,
        index: &Index,
        root: &VaultPath,
        skipped: &mut dyn FnMut(Skipped),
    ) -> Result<Vec<Entry>, VaultError> {
        let mut found: Vec<DiskEntry> = Vec::new();
        match self.dir.walk(
            Some(root),
            &mut |e| {
                found.push(e);
                Ok(())
            },
            skipped,
        ) {
            Ok(()) => {}
            Err(e) if absent(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let mut out = Vec::with_capacity(found.len());
        for d in found {
            let old = index.entry(&d.path)?;
            out.push(self.entry_from_disk(d, old)?);
        }
        Ok(out)
    }

    fn entry_from_disk(&self, d: DiskEntry, old: Option<Entry>) -> Result<Entry, VaultError> {
        let modified_at = format_time(d.modified);
        let now = self.now();
        let (kind, sha256) = if d.is_dir {
            (EntryKind::Dir, None)
        } else {
            let unchanged = old.as_ref().filter(|o| {
                o.kind == EntryKind::File && o.size == d.size && o.modified_at == modified_at
            });
            let sha = match unchanged.and_then(|o| o.sha256.clone()) {
                Some(sha) => sha,
                None => copy::sha256_of(&mut self.dir.open_file(&d.path)?.0)?.0,
            };
            (EntryKind::File, Some(sha))
        };
        Ok(Entry {
            path: d.path.to_string(),
            name: d.path.file_name().to_owned(),
            kind,
            size: d.size,
            sha256,
            content_type: (kind == EntryKind::File).then(|| content_type_for(d.path.file_name())),
            created_at: old.as_ref().map_or(now, |o| o.created_at.clone()),
            modified_at,
            modified_by: old.and_then(|o| o.modified_by),
        })
    }

    /// Index entries for ancestors of `path` that exist on disk as directories but not in
    /// the index.
    fn missing_ancestors(&self, index: &Index, path: &VaultPath) -> Result<Vec<Entry>, VaultError> {
        let mut out = Vec::new();
        for ancestor in path.ancestors() {
            if index.entry(&ancestor)?.is_some() {
                continue;
            }
            match self.dir.metadata(&ancestor) {
                Ok(meta) if meta.is_dir() => out.push(
                    self.entry_from_disk(
                        DiskEntry {
                            path: ancestor,
                            is_dir: true,
                            size: 0,
                            modified: meta
                                .modified()
                                .map(|t| t.into_std())
                                .unwrap_or(std::time::SystemTime::UNIX_EPOCH),
                        },
                        None,
                    )?,
                ),
                _ => break,
            }
        }
        Ok(out)
    }

    fn drop_orphan_trash_rows(&self, index: &mut Index) -> Result<usize, VaultError> {
        let mut removed = 0;
        for item in index.trash_list()? {
            if !self.dir.trash_exists(&item.id) {
                index.apply(
                    IndexChange {
                        trash_remove: Some(&item.id),
                        ..Default::default()
                    },
                    &mut no_hook,
                )?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Rebuilds all file metadata from `files/`, hashing every file. Symlinks, special
    /// files and unaddressable names are reported, never indexed. The audit event is
    /// appended inside the rebuild's transaction.
    pub fn reindex(&self, caller: &super::Caller) -> Result<ReindexReport, VaultError> {
        let mut report = ReindexReport {
            staging_removed: self.dir.clean_staging(self.limits.staging_grace)?,
            ..Default::default()
        };
        let (_commit, mut index) = self.begin_repair()?;
        // Settle what is pending first, so that no pending event is lost by the rebuild.
        let settled = self.repair_pending(&mut index, None)?;
        report.events_replayed = settled.events_replayed;
        report.events_dropped = settled.events_dropped;
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        self.dir.walk(
            None,
            &mut |e| {
                found.push(e);
                Ok(())
            },
            &mut |s| skipped.push(SkippedEntry::from(s)),
        )?;
        let mut entries = Vec::with_capacity(found.len());
        for d in found {
            let is_dir = d.is_dir;
            // A full rebuild trusts nothing from the old index: every file is hashed.
            let e = self.entry_from_disk(d, None)?;
            if is_dir {
                report.dirs += 1;
            } else {
                report.files += 1;
                report.bytes += e.size;
            }
            entries.push(e);
        }
        report.skipped = skipped;
        let event = self
            .event(caller, AuditAction::VaultReindex, "files")
            .detail(
                serde_json::json!({ "files": report.files, "dirs": report.dirs,
                                "skipped": report.skipped.len() }),
            );
        index.rebuild(&entries, &mut || self.audit.append(&event).map(|_| ()))?;
        report.trash_rows_removed = self.drop_orphan_trash_rows(&mut index)?;
        Ok(report)
    }

    /// Recounts the usage counters (bytes, files, trash bytes, records) from the index
    /// and reports every counter that drifted; with `repair`, sets them to the recount
    /// (audited as `vault.reconcile`). Counters change in the same transaction as what
    /// they count, so a drift means something outside Coffer changed the index.
    pub fn reconcile_usage(
        &self,
        caller: &super::Caller,
        repair: bool,
    ) -> Result<Vec<UsageDrift>, VaultError> {
        let (_commit, mut index) = self.begin_repair()?;
        let drift: Vec<UsageDrift> = index
            .recount()?
            .into_iter()
            .filter_map(|(counter, counted)| {
                let stored = index.counter(&counter).ok()?;
                (stored != counted).then_some(UsageDrift {
                    counter,
                    stored,
                    counted,
                })
            })
            .collect();
        if repair && !drift.is_empty() {
            let values: Vec<(String, i64)> = drift
                .iter()
                .map(|d| (d.counter.clone(), d.counted))
                .collect();
            index.set_counters(&values)?;
            let event = caller
                .event(AuditAction::VaultReconcile)
                .tenant(self.tenant)
                .detail(serde_json::json!({ "usage_drift": drift }));
            self.audit.append(&event)?;
        }
        Ok(drift)
    }
}

/// A usage counter that did not equal its recount.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageDrift {
    pub counter: String,
    pub stored: i64,
    pub counted: i64,
}
