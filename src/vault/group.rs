//! Group commit of file writes: concurrent writes to one vault share their durable steps.
//!
//! A write streams its body into a fsynced staging file on its own, outside any lock, and
//! then queues itself for commit. Whichever queued writer takes the commit lock first
//! leads: it takes every queued write (up to `MAX_BATCH`) and commits them together with
//! one pending-row transaction, one fsync per directory that received a file, and one
//! index transaction whose audit events are appended to the chain in one transaction.
//! The writers that were waiting find their answer when they get the lock. Nothing waits
//! on a timer: a batch closes when its leader starts (or at `MAX_BATCH`), so one writer
//! alone commits at once, and under load each batch gathers the writes that arrived while
//! the previous one was committing (the write group of LevelDB and RocksDB).
//!
//! Durability is unchanged: no writer is answered before its bytes, its new name, its
//! index entry and its audit event are on disk. Each write is checked on its own
//! (precondition, case, quota counting the batch's earlier writes) and fails on its own;
//! two writes to one name, or to names that differ only by case, never share a batch, so
//! the second sees the first as a sequential writer would.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use cap_std::fs::Dir;

use super::dir::{KeptFile, sync_dir};
use super::index::{Entry, Index, IndexChange};
use super::path::VaultPath;
use super::repair::{Expect, Intent};
use super::{Caller, Precondition, Vault, VaultError, Written, check_precondition, format_time};
use crate::audit::AuditAction;
use crate::db;

/// At most this many writes are committed together: bounds the time a leader holds the
/// commit lock and the size of one index transaction.
const MAX_BATCH: usize = 64;

/// A write whose bytes are staged and fsynced, waiting to be committed.
pub(super) struct StagedWrite {
    pub caller: Caller,
    pub path: VaultPath,
    pub kept: KeptFile,
    pub sha256: String,
    pub size: u64,
    pub precondition: Precondition,
}

type Answer = Arc<Mutex<Option<Result<Written, VaultError>>>>;

/// The writes queued for a vault's next commit, each with the slot for its answer.
#[derive(Default)]
pub(super) struct WriteQueue(Mutex<VecDeque<(StagedWrite, Answer)>>);

/// A write accepted into a batch, with its audit intent.
struct Accepted {
    write: StagedWrite,
    answer: Answer,
    old: Option<Entry>,
    intent: Intent,
}

/// A write placed under its final name, waiting for its directory's fsync.
struct Placed {
    accepted: Accepted,
    created: Vec<VaultPath>,
}

impl Vault {
    /// Commits a staged write, alone or in a group with the writes queued beside it.
    pub(super) fn commit_write(&self, write: StagedWrite) -> Result<Written, VaultError> {
        let answer: Answer = Arc::default();
        db::lock(&self.writes.0).push_back((write, answer.clone()));
        loop {
            let commit = db::lock(&self.commit_lock);
            if let Some(result) = db::lock(&answer).take() {
                return result;
            }
            let mut index = self.index();
            let batch: Vec<_> = {
                let mut queue = db::lock(&self.writes.0);
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                // Only a leader that panicked part way can have taken it.
                return Err(VaultError::Io(std::io::Error::other(
                    "the write was lost by a failed group commit",
                )));
            }
            if let Err(e) = self.ready_for_change(&mut index) {
                // Every queued write would meet the same refusal (a frozen vault, a repair
                // that failed): all are answered now, this one included even when it was
                // beyond the batch, so none is committed after being refused.
                let rest: Vec<_> = db::lock(&self.writes.0).drain(..).collect();
                for (write, other) in batch.into_iter().chain(rest) {
                    self.dir.discard_kept(&write.kept);
                    *db::lock(&other) = Some(Err(replicate(&e)));
                }
                return db::lock(&answer).take().unwrap_or(Err(e));
            }
            self.commit_batch(&mut index, batch);
            drop(index);
            drop(commit);
        }
    }

    /// Commits one batch under the commit lock and answers every write in it (or puts it
    /// back at the head of the queue for the next batch).
    fn commit_batch(&self, index: &mut Index, batch: Vec<(StagedWrite, Answer)>) {
        let fail = |write: &StagedWrite, answer: &Answer, e: VaultError| {
            self.dir.discard_kept(&write.kept);
            *db::lock(answer) = Some(Err(e));
        };
        let mut charged = match index.bytes_charged() {
            Ok(n) => n,
            Err(e) => {
                let e = VaultError::from(e);
                for (write, answer) in &batch {
                    fail(write, answer, replicate(&e));
                }
                return;
            }
        };
        let mut names = BatchNames::default();
        let mut accepted = Vec::new();
        let mut deferred = Vec::new();
        for (write, answer) in batch {
            if !names.admit(&write.path) {
                deferred.push((write, answer));
                continue;
            }
            match self.check_write(index, &write, &mut charged) {
                Ok(old) => {
                    let intent = Intent {
                        event: self
                            .event(&write.caller, AuditAction::FileWrite, write.path.as_str())
                            .detail(serde_json::json!({ "size": write.size })),
                        expect: Expect::File {
                            path: write.path.to_string(),
                            sha256: write.sha256.clone(),
                        },
                    };
                    accepted.push(Accepted {
                        write,
                        answer,
                        old,
                        intent,
                    });
                }
                Err(e) => fail(&write, &answer, e),
            }
        }
        {
            let mut queue = db::lock(&self.writes.0);
            for item in deferred.into_iter().rev() {
                queue.push_front(item);
            }
        }
        if accepted.is_empty() {
            return;
        }
        let pending = (|| {
            let paths: Vec<&VaultPath> = accepted.iter().map(|a| &a.write.path).collect();
            let rows = accepted
                .iter()
                .map(|a| a.intent.row())
                .collect::<Result<Vec<_>, _>>()?;
            index.begin_pending(&paths, &rows, &self.now())?;
            Ok::<_, VaultError>(())
        })();
        if let Err(e) = pending {
            for a in &accepted {
                fail(&a.write, &a.answer, replicate(&e));
            }
            return;
        }
        let (placed, mut failed) = self.place_all(accepted);
        self.finish_batch(index, placed, &mut failed);
        for (a, e) in failed {
            self.dir.discard_kept(&a.write.kept);
            let e = self.abandon(index, &a.intent, e);
            *db::lock(&a.answer) = Some(Err(e));
        }
    }

    /// The checks of one write under the commit lock; `charged` carries the bytes the
    /// batch's earlier writes add. Returns the entry the write replaces.
    fn check_write(
        &self,
        index: &Index,
        write: &StagedWrite,
        charged: &mut u64,
    ) -> Result<Option<Entry>, VaultError> {
        let old = index.entry(&write.path)?;
        check_precondition(&write.precondition, old.as_ref())?;
        self.check_case(index, &write.path)?;
        *charged = self.charge(*charged, old.as_ref().map_or(0, |e| e.size), write.size)?;
        Ok(old)
    }

    /// Renames every accepted write into place, then fsyncs each receiving directory
    /// once. Returns the writes now durable under their names, and the failed ones.
    fn place_all(&self, accepted: Vec<Accepted>) -> (Vec<Placed>, Vec<(Accepted, VaultError)>) {
        let mut failed = Vec::new();
        let mut by_dir: HashMap<String, (Dir, Vec<Placed>)> = HashMap::new();
        for a in accepted {
            match self.dir.place(&a.write.kept, &a.write.path) {
                Ok((parent, created)) => {
                    let key = a.write.path.parent_str().to_owned();
                    by_dir
                        .entry(key)
                        .or_insert_with(|| (parent, Vec::new()))
                        .1
                        .push(Placed {
                            accepted: a,
                            created,
                        });
                }
                Err(e) => failed.push((a, e.into())),
            }
        }
        let mut placed = Vec::new();
        for (_, (dir, files)) in by_dir {
            match sync_dir(&dir) {
                Ok(()) => placed.extend(files),
                Err(e) => {
                    let e = VaultError::from(e);
                    failed.extend(files.into_iter().map(|p| (p.accepted, replicate(&e))));
                }
            }
        }
        (placed, failed)
    }

    /// Makes the placed writes visible in one index transaction with their audit events,
    /// and answers them. A write whose new file cannot be read back joins `failed`.
    fn finish_batch(
        &self,
        index: &mut Index,
        placed: Vec<Placed>,
        failed: &mut Vec<(Accepted, VaultError)>,
    ) {
        let mut done = Vec::new();
        let mut upserts = Vec::new();
        for p in placed {
            let write = &p.accepted.write;
            let modified = match self
                .dir
                .metadata(&write.path)
                .map_err(VaultError::from)
                .and_then(|m| Ok(m.modified()?))
            {
                Ok(m) => m,
                Err(e) => {
                    failed.push((p.accepted, e));
                    continue;
                }
            };
            let who = write.caller.actor.to_string();
            upserts.extend(self.dir_entries(&p.created, &who));
            let created_at = p
                .accepted
                .old
                .as_ref()
                .map_or_else(|| self.now(), |e| e.created_at.clone());
            let modified_at = format_time(modified.into_std());
            let entry = Vault::file_entry(
                &write.path,
                write.size,
                &write.sha256,
                &who,
                created_at,
                modified_at,
            );
            upserts.push(entry.clone());
            done.push((p.accepted, entry));
        }
        if done.is_empty() {
            return;
        }
        let paths: Vec<&str> = done.iter().map(|(a, _)| a.write.path.as_str()).collect();
        let intents: Vec<&Intent> = done.iter().map(|(a, _)| &a.intent).collect();
        let result = self.finish_all(
            index,
            IndexChange {
                upserts: &upserts,
                pending_done: &paths,
                covered_by_pending: true,
                ..Default::default()
            },
            &intents,
        );
        for (a, entry) in done {
            let answer = match &result {
                Ok(()) => Ok(Written {
                    entry,
                    created: a.old.is_none(),
                }),
                Err(e) => Err(replicate(e)),
            };
            *db::lock(&a.answer) = Some(answer);
        }
    }
}

/// The names a batch writes, folded for case: a second write to a name, or to a name
/// (or through a folder) that differs only by case from one in the batch, waits for the
/// next batch, where the index shows the first.
#[derive(Default)]
struct BatchNames(HashMap<String, (String, bool)>);

impl BatchNames {
    fn admit(&mut self, path: &VaultPath) -> bool {
        let ancestors = path.ancestors();
        let clash = |p: &VaultPath, is_file: bool| match self.0.get(&p.fold_key()) {
            None => false,
            Some((exact, was_file)) => is_file || *was_file || exact != p.as_str(),
        };
        if clash(path, true) || ancestors.iter().any(|a| clash(a, false)) {
            return false;
        }
        for a in ancestors {
            self.0.insert(a.fold_key(), (a.to_string(), false));
        }
        self.0.insert(path.fold_key(), (path.to_string(), true));
        true
    }
}

/// The same failure for another write of the batch: the kinds a client acts on are kept
/// (a full disk stays 507, a frozen vault stays refused); anything else is an I/O error
/// with the same message.
fn replicate(e: &VaultError) -> VaultError {
    match e {
        VaultError::StorageFull => VaultError::StorageFull,
        VaultError::Frozen => VaultError::Frozen,
        VaultError::Moving => VaultError::Moving,
        other => VaultError::Io(std::io::Error::other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::vault::index::EntryKind;
    use crate::vault::layout::DataRoot;
    use crate::vault::{VaultLimits, VaultStore};

    fn p(s: &str) -> VaultPath {
        VaultPath::parse(s).unwrap()
    }

    #[test]
    fn a_batch_never_holds_one_name_twice_or_two_spellings_of_it() {
        let mut names = BatchNames::default();
        assert!(names.admit(&p("jobs/2026/a.pdf")));
        assert!(names.admit(&p("jobs/2026/b.pdf")), "siblings share a batch");
        assert!(!names.admit(&p("jobs/2026/a.pdf")), "the same name twice");
        for (clash, why) in [
            ("jobs/2026/A.pdf", "a case variant of a file"),
            ("Jobs/c.pdf", "through a case variant of a folder"),
            ("jobs/2026", "a file over a folder of the batch"),
            ("jobs/2026/a.pdf/x", "under a file of the batch"),
        ] {
            assert!(!names.admit(&p(clash)), "{why}");
        }
        assert!(names.admit(&p("jobs/c.pdf")));
    }

    fn staged(vault: &Vault, path: &str, bytes: &[u8], pre: Precondition) -> StagedWrite {
        let path = p(path);
        let (staged, sha256, size, _inflight) = vault
            .stream_to_staging(&path, &mut &bytes[..], &pre)
            .unwrap();
        StagedWrite {
            caller: Caller::system(),
            path,
            kept: staged.keep(),
            sha256,
            size,
            precondition: pre,
        }
    }

    /// Queues writes by hand so that one leader commits them as one batch: each is
    /// checked as if alone, counting the batch's earlier writes.
    #[test]
    fn queued_writes_commit_together_and_each_is_checked_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = DataRoot::open_ambient(tmp.path(), true).unwrap();
        let audit = AuditLog::open_in_memory().unwrap();
        let store = VaultStore::new(
            Arc::new(root),
            audit.clone(),
            crate::clock::system(),
            VaultLimits::default(),
        )
        .unwrap();
        let vault = store.create(crate::names::TenantId::generate()).unwrap();
        vault.set_quota(Some(250));
        let before = audit.last_seq().unwrap();
        let mut answers = Vec::new();
        for (name, size, pre) in [
            ("a.txt", 100, Precondition::IfAbsent),
            ("a.txt", 100, Precondition::IfAbsent),
            ("b/b.txt", 100, Precondition::None),
            ("c.txt", 100, Precondition::None),
        ] {
            let answer: Answer = Arc::default();
            let write = staged(&vault, name, &vec![b'x'; size], pre);
            db::lock(&vault.writes.0).push_back((write, answer.clone()));
            answers.push(answer);
        }
        let leader = vault.commit_write(staged(&vault, "d.txt", b"d", Precondition::None));
        assert!(!leader.unwrap().entry.path.is_empty());
        let take = |i: usize| db::lock(&answers[i]).take();
        assert!(take(0).unwrap().unwrap().created);
        assert!(
            take(1).is_none(),
            "the second write to a.txt waits for the next batch"
        );
        assert!(take(2).unwrap().is_ok());
        assert!(
            matches!(
                take(3),
                Some(Err(VaultError::QuotaExceeded { used: 200, .. }))
            ),
            "the quota counts the batch's earlier writes"
        );
        // The next leader takes the deferred write: a.txt now exists.
        vault
            .commit_write(staged(&vault, "e.txt", b"e", Precondition::None))
            .unwrap();
        assert!(matches!(take(1), Some(Err(VaultError::PreconditionFailed))));
        let files: Vec<String> = vault
            .all_entries()
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.path)
            .collect();
        assert_eq!(files, ["a.txt", "b/b.txt", "d.txt", "e.txt"]);
        assert_eq!(vault.index().pending().unwrap(), Vec::<String>::new());
        // One event per committed write (b/ was created by its write), in the chain.
        assert_eq!(audit.last_seq().unwrap() - before, 4);
        assert_eq!(
            vault.dir.clean_staging(std::time::Duration::ZERO).unwrap(),
            0
        );
    }
}
