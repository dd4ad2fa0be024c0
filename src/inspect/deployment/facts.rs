//! What the deployment audit looks at, written down before any rule is applied: the
//! process, the data root's modes and owners, the secret, the TLS files, the answers
//! the HTTP edge gives (headers, cookie, `/metrics`), the databases, the backups, the
//! disk, the clock and the block device under the data root. Every field is public so a
//! test can start from a good deployment and change one fact.
#![allow(
    clippy::disallowed_methods,
    reason = "an auditor's read-only look at the data root and the machine, never inside request handling"
)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use time::OffsetDateTime;

use crate::coffer::{Coffer, CofferError};
use crate::config::Config;
use crate::vault::layout::DataRootPath;

/// Mode bits and owner of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    /// Permission bits only (`0o700`).
    pub mode: u32,
    pub uid: u32,
    pub is_dir: bool,
}

impl FileFacts {
    pub fn of(path: &Path) -> std::io::Result<FileFacts> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(FileFacts {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            is_dir: meta.is_dir(),
        })
    }
}

/// What the HTTP edge answers, probed in-process on the configured application.
#[derive(Debug, Clone, Default)]
pub struct EdgeFacts {
    /// Headers (lowercase names) of an anonymous cross-origin `GET /healthz`.
    pub headers: BTreeMap<String, String>,
    /// Status of an anonymous `GET /metrics` on the main address.
    pub metrics_status: u16,
    /// The `Set-Cookie` value a sign-in sends.
    pub session_cookie: String,
}

/// The configured certificate and key.
#[derive(Debug, Clone)]
pub struct TlsFacts {
    /// The leaf certificate's SHA-256, or why the pair does not load.
    pub loads: Result<String, String>,
    pub key_file: Option<FileFacts>,
}

/// Password hashing as configured in the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordFacts {
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Sign-in throttling as configured in the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleFacts {
    pub per_account: usize,
    pub per_address: usize,
    pub window_secs: u64,
}

/// One SQLite database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    /// Relative to the data root.
    pub name: String,
    pub version: u32,
    /// The newest migration this binary knows.
    pub latest: u32,
    /// `PRAGMA quick_check`'s answer (`ok` when sound).
    pub integrity: String,
}

/// Space on the data root's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskFacts {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// The block device under the data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// On dm-crypt (directly or below LVM); names the device.
    Encrypted(String),
    /// On a device that is not encrypted; names it.
    Plain(String),
    /// Could not tell (a filesystem without a block device: tmpfs, ZFS, network).
    Unknown(String),
}

/// Everything the checks read.
#[derive(Debug, Clone)]
pub struct Facts {
    pub config: Config,
    /// The effective user id of the process (the service user under systemd).
    pub euid: u32,
    pub data_root: FileFacts,
    /// The data root's own entries (backup roots inside it aside), by name.
    pub root_entries: BTreeMap<String, FileFacts>,
    /// Key files (`secret.key`, `signing.key`) by name.
    pub key_files: BTreeMap<String, FileFacts>,
    /// Bits of entropy in the session secret (its decoded length × 8).
    pub secret_bits: usize,
    pub tls: Option<TlsFacts>,
    pub edge: EdgeFacts,
    pub password: PasswordFacts,
    pub throttle: ThrottleFacts,
    /// `RUST_LOG` as the service would see it.
    pub log_filter: Option<String>,
    /// Events checked, or why the chain does not verify.
    pub audit_chain: Result<u64, String>,
    pub databases: Vec<DatabaseFacts>,
    /// The newest complete backup set, or why the backup roots cannot be read.
    pub newest_backup: Result<Option<OffsetDateTime>, String>,
    /// Whether the backup root is on the data root's filesystem (`None`: no root yet).
    pub backup_same_filesystem: Option<bool>,
    pub now: OffsetDateTime,
    /// The newest audit event's time (a node with its own log: a later one means this
    /// clock went back).
    pub newest_audit_event: Option<OffsetDateTime>,
    /// The shared control database's clock, read now (several nodes: the audit chain's
    /// times come from every node's clock, so this host is compared with the database).
    pub database_clock: Option<OffsetDateTime>,
    pub disk: Option<DiskFacts>,
    pub encryption: Encryption,
    /// Soft `RLIMIT_CORE` (bytes).
    pub core_dump_limit: Option<u64>,
    /// Hard `RLIMIT_NOFILE`.
    pub descriptor_limit: Option<u64>,
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

impl Facts {
    /// Looks at `coffer`'s deployment. `edge` comes from the HTTP layer (`probe_edge`),
    /// which this module does not depend on.
    pub fn gather(coffer: &Coffer, edge: EdgeFacts) -> Result<Facts, CofferError> {
        let root = coffer.data_root_path().to_owned();
        let config = coffer.config().clone();
        let mut root_entries = BTreeMap::new();
        let mut key_files = BTreeMap::new();
        let backup_root = coffer.default_backup_root();
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path() == backup_root {
                continue;
            }
            let facts = FileFacts::of(&entry.path())?;
            if [DataRootPath::Secret, DataRootPath::SigningKey]
                .iter()
                .any(|p| p.path() == Path::new(&name))
            {
                key_files.insert(name.clone(), facts);
            }
            root_entries.insert(name, facts);
        }
        let secret_bits = std::fs::read_to_string(root.join(DataRootPath::Secret.path()))
            .ok()
            .and_then(|t| hex::decode(t.trim()).ok())
            .map_or(0, |b| b.len() * 8);
        let tls = config.tls_cert_file.as_ref().map(|cert| TlsFacts {
            loads: config
                .tls_key_file
                .as_ref()
                .ok_or_else(|| "tls_key_file is not set".to_owned())
                .and_then(|key| {
                    crate::http::tls::Certificates::load(cert, key)
                        .map(|c| c.fingerprint())
                        .map_err(|e| e.to_string())
                }),
            key_file: config
                .tls_key_file
                .as_ref()
                .and_then(|k| FileFacts::of(k).ok()),
        });
        let audit_chain = match coffer.verify_audit() {
            Ok(r) => match r.broken {
                None => Ok(r.events),
                Some((seq, why)) => Err(format!("broken at event {seq}: {why}")),
            },
            Err(e) => Err(e.to_string()),
        };
        let database_clock = coffer
            .control()
            .database_time()
            .ok()
            .flatten()
            .and_then(|t| parse_time(&t));
        let newest_audit_event = coffer
            .audit()
            .last_seq()
            .ok()
            .filter(|_| coffer.config().control.is_none())
            .and_then(|seq| coffer.audit().event_time(seq).ok().flatten())
            .and_then(|t| parse_time(&t));
        let newest_backup = coffer
            .newest_backup()
            .map(|t| t.and_then(|t| parse_time(&t)))
            .map_err(|e| e.to_string());
        let backup_same_filesystem = std::fs::metadata(&backup_root)
            .ok()
            .zip(std::fs::metadata(&root).ok())
            .map(|(b, r)| b.dev() == r.dev());
        Ok(Facts {
            euid: rustix::process::geteuid().as_raw(),
            data_root: FileFacts::of(&root)?,
            root_entries,
            key_files,
            secret_bits,
            tls,
            edge,
            password: password_facts(),
            throttle: ThrottleFacts {
                per_account: crate::auth::throttle::ACCOUNT_LIMIT,
                per_address: crate::auth::throttle::IP_LIMIT,
                window_secs: crate::auth::throttle::WINDOW.as_secs(),
            },
            log_filter: std::env::var("RUST_LOG").ok(),
            audit_chain,
            databases: databases(coffer, &root)?,
            newest_backup,
            backup_same_filesystem,
            now: coffer.clock().now(),
            newest_audit_event,
            database_clock,
            disk: disk(&root),
            encryption: encryption(&root),
            core_dump_limit: rlimit::getrlimit(rlimit::Resource::CORE)
                .ok()
                .map(|(soft, _)| soft),
            descriptor_limit: rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(_, hard)| hard),
            config,
        })
    }
}

fn password_facts() -> PasswordFacts {
    let params = crate::auth::password::parameters();
    PasswordFacts {
        algorithm: "argon2id".into(),
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
    }
}

/// The control plane, the audit log and every vault's index: version and quick check.
fn databases(coffer: &Coffer, root: &Path) -> Result<Vec<DatabaseFacts>, CofferError> {
    let control = match &coffer.config().control {
        None => database(root, Path::new("control.db"), crate::control::MIGRATIONS),
        // PostgreSQL checks its own pages; what a node can see is that the database
        // answers and which schema it has.
        Some(_) => match coffer.control().schema_version() {
            Ok((version, latest)) => DatabaseFacts {
                name: "control (PostgreSQL)".into(),
                version,
                latest,
                integrity: "ok".into(),
            },
            Err(e) => DatabaseFacts {
                name: "control (PostgreSQL)".into(),
                version: 0,
                latest: 0,
                integrity: e.to_string(),
            },
        },
    };
    let mut out = vec![control];
    // With PostgreSQL the audit chain's tables are part of the control schema above.
    if coffer.config().control.is_none() {
        out.push(database(
            root,
            Path::new("audit.db"),
            crate::audit::MIGRATIONS,
        ));
    }
    let tenants = root.join(DataRootPath::TenantsDir.path());
    let mut names: Vec<String> = std::fs::read_dir(&tenants)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.ends_with(".purging"))
        .collect();
    names.sort();
    for name in names {
        let index = DataRootPath::TenantsDir.path().join(&name);
        let index = index.join(crate::vault::layout::VaultEntry::IndexDb.path());
        if root.join(&index).is_file() {
            out.push(database(root, &index, crate::vault::index::MIGRATIONS));
        }
    }
    Ok(out)
}

fn database(root: &Path, name: &Path, migrations: &[crate::db::Migration]) -> DatabaseFacts {
    let latest = migrations.last().map_or(0, |m| m.version);
    let (version, integrity) = match crate::db::open_read_only(&root.join(name)) {
        Ok(conn) => (
            conn.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap_or(0),
            conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
                .unwrap_or_else(|e| e.to_string()),
        ),
        Err(e) => (0, e.to_string()),
    };
    DatabaseFacts {
        name: name.display().to_string(),
        version,
        latest,
        integrity,
    }
}

fn disk(root: &Path) -> Option<DiskFacts> {
    let stat = rustix::fs::statvfs(root).ok()?;
    Some(DiskFacts {
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
        available_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
    })
}

/// Whether the data root's block device is dm-crypt, directly or below device-mapper
/// layers (LVM on LUKS): `/sys/dev/block/MAJ:MIN/dm/uuid` starts with `CRYPT-` on the
/// device or one of its `slaves`.
fn encryption(root: &Path) -> Encryption {
    let Ok(meta) = std::fs::metadata(root) else {
        return Encryption::Unknown("the data root cannot be read".into());
    };
    let (major, minor) = (rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()));
    if major == 0 {
        return Encryption::Unknown(format!(
            "the data root's filesystem has no block device (device 0:{minor}: tmpfs, btrfs subvolume, ZFS or network)"
        ));
    }
    let sys = Path::new("/sys/dev/block").join(format!("{major}:{minor}"));
    let name = std::fs::canonicalize(&sys)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| format!("{major}:{minor}"));
    if is_crypt(&sys, 0) {
        Encryption::Encrypted(name)
    } else {
        Encryption::Plain(name)
    }
}

fn is_crypt(device: &Path, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    let uuid = std::fs::read_to_string(device.join("dm/uuid")).unwrap_or_default();
    if uuid.starts_with("CRYPT-") {
        return true;
    }
    std::fs::read_dir(device.join("slaves"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|slave| is_crypt(&slave.path(), depth + 1))
        })
        .unwrap_or(false)
}
