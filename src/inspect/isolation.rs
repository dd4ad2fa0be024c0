//! `coffer audit isolation`: what an auditor checking tenant isolation runs over a whole
//! data root. It reads the tree from outside (walkdir, never following a link), the way
//! an auditor's own tool would, and compares it with what Coffer says it holds:
//!
//! - every vault directory belongs to a live tenant (or a tombstone being purged, as
//!   `<id>.purging`) and every live tenant has its vault;
//! - each vault's `VAULT` marker and its index (`vault_identity`) name its own tenant;
//! - only the entries the layout spec allows, at the data root and at each vault's top;
//! - no symlink, hard link, FIFO, socket or device anywhere (backup sets aside: they
//!   hard-link unchanged files on purpose and are checked by `backup --verify`);
//! - directories 0700 and files 0600, owned by the data root's owner;
//! - every indexed file exists with its size (and, `--deep`, its hash), every file on
//!   disk is indexed, staging holds nothing older than the grace period;
//! - every database passes `PRAGMA integrity_check`;
//! - neither the control plane nor the audit log holds vault content: no column that
//!   could hold a body (by schema), and no sampled file or record body in their bytes;
//! - the audit chain verifies.
//!
//! A finding names its tenant (by slug, or the directory's name), a check id, the path
//! relative to the data root, and a fix hint. A finding in one vault is never reported
//! under another: each vault's checks read that vault's directory and index only.
#![allow(
    clippy::disallowed_methods,
    reason = "an auditor's read-only walk over the data root from outside, never inside request handling"
)]

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::coffer::{Coffer, CofferError};
use crate::control::{Tenant, TenantState};
use crate::names::TenantId;
use crate::vault::layout::{DataRootPath, INDEX_COMPANIONS, VaultEntry};

/// One thing an auditor must look at.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Finding {
    /// The tenant's slug, or the vault directory's name when no tenant owns it; `None`
    /// for the data root itself.
    #[schema(examples("acme"))]
    pub tenant: Option<String>,
    /// A stable id (`orphan-vault`, `special-file`, ...).
    #[schema(examples("orphan-vault"))]
    pub check: &'static str,
    /// Relative to the data root.
    #[schema(examples("vaults/01939a1e0c4b7d2e8f10a2b3c4d5e6f7"))]
    pub path: String,
    #[schema(examples("a vault directory no tenant owns"))]
    pub detail: String,
    #[schema(examples("restore its tenant or move the directory out of the data root"))]
    pub hint: &'static str,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IsolationReport {
    /// For the operator's console; never sent over the API (no host paths on the wire).
    #[serde(skip)]
    pub data_root: PathBuf,
    pub deep: bool,
    #[schema(examples(20))]
    pub tenants_checked: usize,
    #[schema(examples(3205))]
    pub files_checked: u64,
    pub findings: Vec<Finding>,
}

/// Bytes taken from each sampled file or record to look for in the control plane and
/// the audit log.
const SAMPLE_BYTES: usize = 32;
/// Files and records sampled per vault.
const SAMPLES_PER_VAULT: usize = 3;
/// Column names that would hold content if the control plane or audit log had one.
const CONTENT_COLUMNS: [&str; 5] = ["body", "content", "data", "bytes", "blob"];

struct Audit<'a> {
    root: &'a Path,
    owner_uid: u32,
    staging_grace: Duration,
    deep: bool,
    findings: Vec<Finding>,
    files_checked: u64,
    samples: Vec<Vec<u8>>,
}

impl Audit<'_> {
    fn find(
        &mut self,
        tenant: Option<&str>,
        check: &'static str,
        path: &Path,
        detail: String,
        hint: &'static str,
    ) {
        let rel = path.strip_prefix(self.root).unwrap_or(path);
        self.findings.push(Finding {
            tenant: tenant.map(str::to_owned),
            check,
            path: rel.to_string_lossy().into_owned(),
            detail,
            hint,
        });
    }
}

impl Coffer {
    /// Runs the isolation audit over this data root (read-only).
    pub fn isolation_audit(&self, deep: bool) -> Result<IsolationReport, CofferError> {
        let root = self.data_root_path().to_owned();
        let owner_uid = std::fs::symlink_metadata(&root)?.uid();
        let mut audit = Audit {
            root: &root,
            owner_uid,
            staging_grace: Duration::from_secs(self.config().staging_grace_secs),
            deep,
            findings: Vec::new(),
            files_checked: 0,
            samples: Vec::new(),
        };
        check_root_entries(&mut audit)?;
        // Every tenant, to name what a directory is; only this node's are expected here
        // (the others' vaults live on their nodes).
        let tenants = self.control().tenants()?;
        let by_id: HashMap<String, &Tenant> =
            tenants.iter().map(|t| (t.id.to_string(), t)).collect();
        let vaults = root.join(DataRootPath::TenantsDir.path());
        let grace = time::Duration::hours(i64::from(self.config().move_grace_hours));
        let grace_cutoff = crate::db::timestamp(self.clock().now() - grace);
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&vaults)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if let Some(kind) = move_entry(&name) {
                check_move_entry(&mut audit, &by_id, &name, &path, kind)?;
                continue;
            }
            let (id, purging) = match name.strip_suffix(".purging") {
                Some(id) => (id, true),
                None => (name.as_str(), false),
            };
            let owner = TenantId::parse(id).ok().and_then(|_| by_id.get(id));
            match owner {
                // A copy this node sent, in its grace period: the lifecycle pass removes it.
                Some(t)
                    if !self.control().serves(t)
                        && vaults.join(format!(".sent-{}", t.id)).is_file()
                        && t.placement
                            .as_ref()
                            .is_some_and(|p| p.changed_at > grace_cutoff) =>
                {
                    check_tree(&mut audit, Some(&name), &path)?;
                }
                Some(t) if !self.control().serves(t) => {
                    let node = t.placement.as_ref().map_or("", |p| p.node.as_str());
                    audit.find(Some(&t.slug), "stale-copy", &path,
                        format!("a copy of a tenant now served by node {node}"),
                        "once the tenant is confirmed on its node, move this copy out of the data root; never serve it");
                    check_tree(&mut audit, Some(&name), &path)?;
                }
                Some(t) if !purging && !t.state.is_gone() => {
                    seen.push(t.id);
                    check_vault(&mut audit, t, &path)?;
                }
                Some(t) if purging && t.state == TenantState::Purging => {
                    check_tree(&mut audit, Some(&name), &path)?;
                }
                _ => {
                    let why = if TenantId::parse(id).is_err() {
                        "a name that is not a tenant id".to_owned()
                    } else if let Some(t) = owner {
                        format!("a vault of a tenant that is {}", t.state.as_str())
                    } else {
                        "no tenant has this id".to_owned()
                    };
                    audit.find(Some(&name), "orphan-vault", &path, why,
                        "compare with the control plane; move it out of the data root for inspection, never serve it");
                    check_tree(&mut audit, Some(&name), &path)?;
                }
            }
        }
        for t in tenants
            .iter()
            .filter(|t| !t.state.is_gone() && self.control().serves(t) && !seen.contains(&t.id))
        {
            audit.find(
                Some(&t.slug),
                "missing-vault",
                &vaults.join(t.id.to_string()),
                "a live tenant has no vault directory".into(),
                "restore the vault from the latest backup (coffer restore)",
            );
        }
        // A fence older than an hour is a move or recovery that stopped half-way: the
        // tenant takes no writes until someone finishes or rolls it back.
        let stuck_before = crate::db::timestamp(self.clock().now() - time::Duration::hours(1));
        for t in tenants.iter().filter(|t| !t.state.is_gone()) {
            if let Some(p) = &t.placement
                && self.control().serves(t)
                && p.fenced_at.as_ref().is_some_and(|at| *at < stuck_before)
            {
                audit.find(
                    Some(&t.slug),
                    "stuck-fence",
                    &vaults.join(t.id.to_string()),
                    format!(
                        "fenced since {} (writes refused): a move or recovery did not finish",
                        p.fenced_at.as_deref().unwrap_or_default()
                    ),
                    "run the move again on the node taking the tenant, or roll it back with coffer tenant move SLUG --abort",
                );
            }
        }
        // A control plane in PostgreSQL is checked through a consistent copy (the same
        // one a backup takes): its rows, not its server's files, are what could leak.
        // A PostgreSQL control plane and audit chain are checked through copies.
        let scratch = tempfile::tempdir()?;
        let (control, audit_db) = if self.config().control.is_some() {
            let control = scratch.path().join("control.db");
            self.control().snapshot_into(&control)?;
            let audit_copy = scratch.path().join("audit.db");
            self.audit().snapshot_into(&audit_copy)?;
            (
                (
                    control,
                    PathBuf::from("control (PostgreSQL, checked through a copy)"),
                ),
                (
                    audit_copy,
                    PathBuf::from("audit (PostgreSQL, checked through a copy)"),
                ),
            )
        } else {
            let control = root.join(DataRootPath::ControlDb.path());
            let audit_db = root.join(DataRootPath::AuditDb.path());
            ((control.clone(), control), (audit_db.clone(), audit_db))
        };
        let chain_label = audit_db.1.clone();
        check_databases(&mut audit, &[control, audit_db])?;
        let chain = self.audit().verify()?;
        if let Some((seq, why)) = chain.broken {
            audit.find(
                None,
                "audit-chain",
                &chain_label,
                format!("broken at event {seq}: {why}"),
                "compare with the auditor's saved checkpoint; restore the log from a backup",
            );
        }
        Ok(IsolationReport {
            data_root: root.clone(),
            deep,
            tenants_checked: seen.len(),
            files_checked: audit.files_checked,
            findings: audit.findings,
        })
    }
}

/// Integrity of the control plane and the audit log, and that neither holds content.
/// Each database is a file to read and the path its findings name.
fn check_databases(
    audit: &mut Audit<'_>,
    databases: &[(PathBuf, PathBuf)],
) -> Result<(), CofferError> {
    for (file, path) in databases {
        let conn = crate::db::open_read_only(file).map_err(std::io::Error::other)?;
        integrity(audit, None, path, &conn);
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(std::io::Error::other)?;
        for table in tables {
            let columns: Vec<(String, String)> = conn
                .prepare(&format!(
                    "SELECT name, type FROM pragma_table_info('{table}')"
                ))
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(std::io::Error::other)?;
            for (column, kind) in columns {
                let holds_bytes = kind.eq_ignore_ascii_case("BLOB") || kind.is_empty();
                let named_content = CONTENT_COLUMNS.contains(&column.as_str())
                    && !kind.eq_ignore_ascii_case("INTEGER");
                if holds_bytes || named_content {
                    audit.find(None, "content-column", path,
                        format!("{table}.{column} ({kind}) could hold vault content"),
                        "the control plane and audit log hold metadata only; move the column's data to the vault");
                }
            }
        }
        drop(conn);
        // By sampling: no sampled vault bytes in the database or its log.
        // One pass over the bytes, each window looked up among all samples (every
        // sample is SAMPLE_BYTES long), so the cost does not grow with the tenants;
        // read in chunks, so a years-long audit log is never held in memory whole.
        let samples: std::collections::HashSet<&[u8]> =
            audit.samples.iter().map(Vec::as_slice).collect();
        let mut found = count_windows_in(file, &samples)?;
        let wal = file.with_extension("db-wal");
        if wal.exists() {
            found += count_windows_in(&wal, &samples)?;
        }
        if found > 0 {
            audit.find(
                None,
                "content-in-metadata",
                path,
                format!("{found} places hold bytes of a vault's files or records"),
                "find the rows holding them; vault content must stay in its vault",
            );
        }
    }
    Ok(())
}

/// Only the layout's fixed entries (and SQLite's companions, and the default backup
/// directory) at the data root.
fn check_root_entries(audit: &mut Audit<'_>) -> Result<(), CofferError> {
    let mut allowed: Vec<String> = DataRootPath::FIXED
        .iter()
        .map(|p| p.path().to_string_lossy().into_owned())
        .collect();
    for db in [DataRootPath::ControlDb, DataRootPath::AuditDb] {
        let name = db.path().to_string_lossy().into_owned();
        for suffix in ["-wal", "-shm", "-journal"] {
            allowed.push(format!("{name}{suffix}"));
        }
    }
    allowed.push("backups".into());
    let root = audit.root.to_owned();
    for entry in std::fs::read_dir(&root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !allowed.contains(&name) {
            audit.find(
                None,
                "unexpected-entry",
                &entry.path(),
                "not part of the data root's layout".into(),
                "move it out of the data root (see vault-layout/README.md)",
            );
        }
        let meta = entry.metadata()?;
        if name != DataRootPath::TenantsDir.path().to_string_lossy() && name != "backups" {
            check_entry(audit, None, &entry.path(), &meta);
            if meta.is_dir() && name == DataRootPath::Outbox.path().to_string_lossy() {
                check_tree(audit, None, &entry.path())?;
            }
        }
    }
    let tenants = root.join(DataRootPath::TenantsDir.path());
    let meta = std::fs::symlink_metadata(&tenants)?;
    check_entry(audit, None, &tenants, &meta);
    check_entry(audit, None, &root, &std::fs::symlink_metadata(&root)?);
    Ok(())
}

/// Kind, links, mode and owner of one entry.
fn check_entry(audit: &mut Audit<'_>, tenant: Option<&str>, path: &Path, meta: &std::fs::Metadata) {
    let kind = meta.file_type();
    let special = if kind.is_symlink() {
        Some("a symbolic link")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_block_device() || kind.is_char_device() {
        Some("a device")
    } else {
        None
    };
    if let Some(what) = special {
        audit.find(
            tenant,
            "special-file",
            path,
            format!("{what}; Coffer never makes one"),
            "remove it after finding who made it: nothing in a data root may point elsewhere",
        );
        return;
    }
    if kind.is_file() && meta.nlink() > 1 {
        audit.find(
            tenant,
            "hard-link",
            path,
            format!("{} names for one file", meta.nlink()),
            "replace it with a copy: a hard link can join two tenants' files",
        );
    }
    let mode = meta.mode() & 0o7777;
    let want = if kind.is_dir() { 0o700 } else { 0o600 };
    if mode & 0o077 != 0 || mode & !want != 0 {
        audit.find(
            tenant,
            "mode",
            path,
            format!("mode {mode:04o}, expected {want:04o}"),
            "chmod it; Coffer creates everything private whatever the umask",
        );
    }
    if meta.uid() != audit.owner_uid {
        audit.find(
            tenant,
            "owner",
            path,
            format!(
                "owned by uid {}, the data root by uid {}",
                meta.uid(),
                audit.owner_uid
            ),
            "chown it to the service user",
        );
    }
}

/// Every entry below `dir` (not following links): kinds, links, modes, owners.
/// What a move keeps beside the vaults (vault-layout/README.md): a send's scratch, a
/// copy coming in, a run's lock, the mark that a copy was sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MoveEntry {
    Outgoing,
    Incoming,
    Lock,
    Sent,
}

/// The move entry `name` is, and its tenant's id.
fn move_entry(name: &str) -> Option<(MoveEntry, String)> {
    let (kind, rest) = if let Some(rest) = name.strip_prefix(".outgoing-") {
        (MoveEntry::Outgoing, rest)
    } else if let Some(rest) = name.strip_prefix(".incoming-") {
        (MoveEntry::Incoming, rest)
    } else if let Some(rest) = name
        .strip_prefix(".moving-")
        .and_then(|r| r.strip_suffix(".lock"))
    {
        (MoveEntry::Lock, rest)
    } else if let Some(rest) = name.strip_prefix(".sent-") {
        (MoveEntry::Sent, rest)
    } else {
        return None;
    };
    let id = rest.split('-').next()?;
    TenantId::parse(id).ok().map(|_| (kind, id.to_owned()))
}

/// Whether a `coffer tenant move` run holds tenant `id`'s move lock in `tenants` now.
fn move_running(tenants: &Path, id: &str) -> bool {
    let Ok(lock) = std::fs::File::open(tenants.join(format!(".moving-{id}.lock"))) else {
        return false;
    };
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockShared)
        .is_err_and(|e| e == rustix::io::Errno::WOULDBLOCK)
}

/// A move's entry is expected while its tenant is fenced or a move run holds its lock
/// (a move under way, perhaps still in its live copy), and the lock and sent marks
/// (empty files) at any time; a move's directories otherwise are debris the lifecycle
/// pass removes. Whatever it is, nothing in it may be a link or
/// readable by others.
fn check_move_entry(
    audit: &mut Audit<'_>,
    by_id: &HashMap<String, &Tenant>,
    name: &str,
    path: &Path,
    (kind, id): (MoveEntry, String),
) -> Result<(), CofferError> {
    let tenant = by_id.get(&id);
    let slug = tenant.map(|t| t.slug.as_str());
    let moving = tenant
        .and_then(|t| t.placement.as_ref())
        .is_some_and(|p| p.fenced_at.is_some())
        || path.parent().is_some_and(|dir| move_running(dir, &id));
    let meta = path.symlink_metadata()?;
    let mark = matches!(kind, MoveEntry::Lock | MoveEntry::Sent);
    if mark && !(meta.is_file() && meta.len() == 0) {
        audit.find(
            slug.or(Some(name)),
            "move-debris",
            path,
            "a move's mark that is not an empty file".into(),
            "move it out of the data root for inspection",
        );
    } else if !mark && !moving {
        audit.find(slug.or(Some(name)), "move-debris", path,
            "left by a move that ended or died".into(),
            "the lifecycle pass removes it; or run the move again, or roll it back with coffer tenant move SLUG --abort");
    }
    check_tree(audit, slug.or(Some(name)), path)
}

fn check_tree(audit: &mut Audit<'_>, tenant: Option<&str>, dir: &Path) -> Result<(), CofferError> {
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        let meta = entry.path().symlink_metadata()?;
        check_entry(audit, tenant, entry.path(), &meta);
    }
    Ok(())
}

/// One live tenant's vault: marker, top entries, the tree, index against disk, staging,
/// index integrity; samples its content for the metadata check.
fn check_vault(audit: &mut Audit<'_>, tenant: &Tenant, dir: &Path) -> Result<(), CofferError> {
    let slug = tenant.slug.as_str();
    let id = tenant.id.to_string();
    let marker_path = dir.join(VaultEntry::Marker.path());
    match std::fs::read_to_string(&marker_path).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
        Some(m) if m["tenant_id"] == id.as_str() => {}
        Some(m) => audit.find(Some(slug), "marker-mismatch", &marker_path,
            format!("names tenant {} ", m["tenant_id"]),
            "this directory holds another tenant's vault: take the tenant offline and compare with backups"),
        None => audit.find(Some(slug), "marker-missing", &marker_path,
            "no readable VAULT marker".into(), "restore the vault from a backup"),
    }
    let mut allowed: Vec<&str> = VaultEntry::ALL.iter().map(|e| e.path()).collect();
    allowed.extend(INDEX_COMPANIONS);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !allowed.contains(&name.as_str()) {
            audit.find(
                Some(slug),
                "unexpected-entry",
                &entry.path(),
                "not part of a vault's layout".into(),
                "move it out of the vault (see vault-layout/README.md)",
            );
        }
    }
    check_tree(audit, Some(slug), dir)?;
    let staging = dir.join(VaultEntry::StagingDir.path());
    if let Ok(entries) = std::fs::read_dir(&staging) {
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > audit.staging_grace);
            if old {
                audit.find(
                    Some(slug),
                    "stale-staging",
                    &entry.path(),
                    "older than the staging grace period".into(),
                    "reopening the vault removes crash debris; if it stays, remove it",
                );
            }
        }
    }
    let index_path = dir.join(VaultEntry::IndexDb.path());
    // SQLite opens lazily: the schema read is what finds a file that is not a database.
    let readable = crate::db::open_read_only(&index_path).and_then(|c| {
        c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(c)
    });
    let conn = match readable {
        Ok(c) => c,
        Err(e) => {
            audit.find(
                Some(slug),
                "index-unreadable",
                &index_path,
                e.to_string(),
                "coffer reindex SLUG rebuilds it from the files",
            );
            return Ok(());
        }
    };
    integrity(audit, Some(slug), &index_path, &conn);
    let recorded: Option<String> = conn
        .query_row("SELECT tenant_id FROM vault_identity", [], |r| r.get(0))
        .ok();
    if recorded.as_deref() != Some(id.as_str()) {
        audit.find(
            Some(slug),
            "index-mismatch",
            &index_path,
            format!(
                "the index records tenant {}",
                recorded.as_deref().unwrap_or("(none)")
            ),
            "this index belongs to another vault: take the tenant offline and compare with backups",
        );
    }
    compare_index_with_disk(audit, slug, dir, &conn)?;
    sample_records(audit, &conn);
    Ok(())
}

/// Files on disk against the index's file rows.
fn compare_index_with_disk(
    audit: &mut Audit<'_>,
    slug: &str,
    dir: &Path,
    conn: &rusqlite::Connection,
) -> Result<(), CofferError> {
    let indexed: BTreeMap<String, (u64, Option<String>)> = conn
        .prepare("SELECT path, size, sha256 FROM entries WHERE kind = 'file'")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (r.get::<_, i64>(1)? as u64, r.get(2)?),
                ))
            })?
            .collect()
        })
        .map_err(std::io::Error::other)?;
    let files = dir.join(VaultEntry::FilesDir.path());
    let mut on_disk = BTreeMap::new();
    let mut sampled = 0;
    for entry in walkdir::WalkDir::new(&files)
        .follow_links(false)
        .min_depth(1)
    {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(&files).unwrap_or(entry.path());
            on_disk.insert(rel.to_string_lossy().into_owned(), entry.path().to_owned());
        }
    }
    for (path, (size, hash)) in &indexed {
        let full = files.join(path);
        let Some(disk) = on_disk.get(path) else {
            audit.find(
                Some(slug),
                "missing-file",
                &full,
                "indexed but not on disk".into(),
                "restore it from a backup, or `coffer reindex SLUG` to drop the row",
            );
            continue;
        };
        audit.files_checked += 1;
        let meta = std::fs::symlink_metadata(disk)?;
        if meta.len() != *size {
            audit.find(
                Some(slug),
                "size-mismatch",
                &full,
                format!("{} bytes on disk, {size} indexed", meta.len()),
                "compare with a backup; `coffer reindex SLUG` records what is on disk",
            );
        } else if audit.deep {
            let mut file = std::fs::File::open(disk)?;
            let (actual, _) = crate::vault::sha256_of(&mut file)?;
            if hash.as_deref() != Some(actual.as_str()) {
                audit.find(
                    Some(slug),
                    "hash-mismatch",
                    &full,
                    "content differs from its recorded hash".into(),
                    "the file changed outside Coffer: compare with a backup",
                );
            }
        }
        if sampled < SAMPLES_PER_VAULT && meta.len() >= 2 * SAMPLE_BYTES as u64 {
            // The middle SAMPLE_BYTES only: a file may be many GiB.
            use std::io::{Read, Seek, SeekFrom};
            let mut file = std::fs::File::open(disk)?;
            file.seek(SeekFrom::Start(meta.len() / 2))?;
            let mut sample = vec![0u8; SAMPLE_BYTES];
            file.read_exact(&mut sample)?;
            audit.samples.push(sample);
            sampled += 1;
        }
    }
    for (path, full) in &on_disk {
        if !indexed.contains_key(path) {
            audit.find(
                Some(slug),
                "unindexed-file",
                full,
                "on disk but not in the index".into(),
                "`coffer reindex SLUG` indexes it, once you know where it came from",
            );
        }
    }
    Ok(())
}

/// How many SAMPLE_BYTES-long windows of the file at `path` are among `samples`, read
/// in 1 MiB chunks that overlap by a window less one byte (so none is missed).
fn count_windows_in(
    path: &Path,
    samples: &std::collections::HashSet<&[u8]>,
) -> std::io::Result<usize> {
    use std::io::Read;
    const CHUNK: usize = 1 << 20;
    let mut file = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(CHUNK + SAMPLE_BYTES);
    let mut found = 0;
    loop {
        let kept = buf.len();
        buf.resize(kept + CHUNK, 0);
        let n = file.read(&mut buf[kept..])?;
        buf.truncate(kept + n);
        if n == 0 {
            return Ok(found);
        }
        found += buf
            .windows(SAMPLE_BYTES)
            .filter(|w| samples.contains(w))
            .count();
        // Keep the tail that could start a window spanning into the next chunk.
        let tail = buf.len().saturating_sub(SAMPLE_BYTES - 1);
        buf.drain(..tail);
    }
}

/// A few record bodies, for the metadata check.
fn sample_records(audit: &mut Audit<'_>, conn: &rusqlite::Connection) {
    let bodies: Vec<String> = conn
        .prepare("SELECT body FROM records WHERE length(body) >= 64 LIMIT ?1")
        .and_then(|mut s| {
            s.query_map([SAMPLES_PER_VAULT as i64], |r| r.get(0))?
                .collect()
        })
        .unwrap_or_default();
    for body in bodies {
        let mid = body.len() / 2;
        audit
            .samples
            .push(body.as_bytes()[mid..mid + SAMPLE_BYTES].to_vec());
    }
}

fn integrity(
    audit: &mut Audit<'_>,
    tenant: Option<&str>,
    path: &Path,
    conn: &rusqlite::Connection,
) {
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| e.to_string());
    if result != "ok" {
        audit.find(
            tenant,
            "integrity",
            path,
            result,
            "restore the database from the latest backup",
        );
    }
}
