//! Every on-disk path of a data root, and the one function that opens it with ambient
//! authority.
//!
//! `vault-layout/README.md` is the spec of this tree; a test holds `DataRootPath` and
//! `VaultEntry` to it. No other module spells a file or directory name of the layout, and
//! no other function may call `Dir::open_ambient_dir`. SQLite cannot open a database
//! through a directory handle, so `DataRoot::sqlite_path` is the single, documented place
//! where an ambient path to a database is formed.

use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use crate::names::TenantId;

/// The version of the on-disk layout written in every vault's `VAULT` marker and in the
/// data root's `COFFER` marker. Bumped only with an upgrade step (see the layout spec).
pub const LAYOUT_VERSION: u32 = 1;

/// A path of the data root, relative to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRootPath {
    /// Marker file naming the layout version.
    Marker,
    /// The control-plane database.
    ControlDb,
    /// The hash-chained audit log.
    AuditDb,
    /// The session-signing secret (mode 0600).
    Secret,
    /// The Ed25519 key that signs deletion receipts and audit checkpoints (mode 0600).
    SigningKey,
    /// The directory of all vaults.
    TenantsDir,
    /// Messages the default mailer "sends" (password resets), for an operator to forward.
    Outbox,
    /// One tenant's vault directory.
    Tenant(TenantId),
}

impl DataRootPath {
    /// Every fixed entry of the data root (the per-tenant `Tenant(id)` aside). The match in
    /// `path` is exhaustive, so a new variant cannot be forgotten here without a test
    /// failing against the spec.
    pub const FIXED: [DataRootPath; 7] = [
        DataRootPath::Marker,
        DataRootPath::ControlDb,
        DataRootPath::AuditDb,
        DataRootPath::Secret,
        DataRootPath::SigningKey,
        DataRootPath::TenantsDir,
        DataRootPath::Outbox,
    ];

    pub fn path(&self) -> PathBuf {
        match self {
            DataRootPath::Marker => PathBuf::from("COFFER"),
            DataRootPath::ControlDb => PathBuf::from("control.db"),
            DataRootPath::AuditDb => PathBuf::from("audit.db"),
            DataRootPath::Secret => PathBuf::from("secret.key"),
            DataRootPath::SigningKey => PathBuf::from("signing.key"),
            DataRootPath::TenantsDir => PathBuf::from("tenants"),
            DataRootPath::Outbox => PathBuf::from("outbox"),
            DataRootPath::Tenant(id) => Path::new("tenants").join(id.to_string()),
        }
    }
}

/// A path inside one vault directory, relative to `tenants/<tenant-id>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultEntry {
    /// Marker file: layout version, tenant id, creation time (JSON).
    Marker,
    /// The tenant's SQLite index (with its `-wal` and `-shm` companions).
    IndexDb,
    /// The tree of documents and photos the user sees. User paths resolve only here.
    FilesDir,
    /// Temporary files of writes in progress (same filesystem, so rename is atomic).
    StagingDir,
    /// Deleted items until they are restored or purged.
    TrashDir,
}

impl VaultEntry {
    pub const ALL: [VaultEntry; 5] = [
        VaultEntry::Marker,
        VaultEntry::IndexDb,
        VaultEntry::FilesDir,
        VaultEntry::StagingDir,
        VaultEntry::TrashDir,
    ];

    pub fn path(&self) -> &'static str {
        match self {
            VaultEntry::Marker => "VAULT",
            VaultEntry::IndexDb => "index.db",
            VaultEntry::FilesDir => "files",
            VaultEntry::StagingDir => ".staging",
            VaultEntry::TrashDir => ".trash",
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(
            self,
            VaultEntry::FilesDir | VaultEntry::StagingDir | VaultEntry::TrashDir
        )
    }
}

/// Files SQLite itself may create next to `index.db` (write-ahead log and shared memory).
pub const INDEX_COMPANIONS: [&str; 3] = ["index.db-wal", "index.db-shm", "index.db-journal"];

/// The opened data root: a capability for everything below it, plus the ambient path that
/// SQLite needs.
#[derive(Debug)]
pub struct DataRoot {
    dir: Dir,
    ambient_path: PathBuf,
}

impl DataRoot {
    /// Opens (and with `create`, creates, mode 0700) the data root. This is the only place
    /// in Coffer that uses ambient authority to reach the filesystem for tenant data; backup
    /// roots and sets, which hold copies of a data root, are opened through it too.
    #[allow(
        clippy::disallowed_methods,
        reason = "the one sanctioned use of ambient authority: opening the data root"
    )]
    pub fn open_ambient(path: &Path, create: bool) -> std::io::Result<DataRoot> {
        if create {
            if !path.exists() {
                std::fs::create_dir_all(path)?;
            }
            // Only the service account may enter the data root (also when it was made by
            // someone else, such as a mount point): everything below it then stays private
            // whatever modes SQLite or a tool gives individual files.
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        }
        let ambient_path = std::fs::canonicalize(path)?;
        let dir = Dir::open_ambient_dir(&ambient_path, cap_std::ambient_authority())?;
        Ok(DataRoot { dir, ambient_path })
    }

    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The host path of the data root, for operator messages and for SQLite.
    pub fn ambient_path(&self) -> &Path {
        &self.ambient_path
    }

    /// Creates the data root's own database file (empty: SQLite treats it as a new
    /// database) with mode 0600 if it is absent, so neither it nor the `-wal` and `-shm`
    /// files SQLite derives from it are ever readable by others, whatever the umask.
    pub fn create_private_database(&self, db: SqliteFile) -> std::io::Result<()> {
        let name = match db {
            SqliteFile::Control => DataRootPath::ControlDb.path(),
            SqliteFile::Audit => DataRootPath::AuditDb.path(),
            SqliteFile::TenantIndex(_) => return Ok(()),
        };
        let mut options = cap_std::fs::OpenOptions::new();
        cap_std::fs::OpenOptionsExt::mode(options.write(true).create_new(true), 0o600);
        match self.dir.open_with(&name, &options) {
            Ok(file) => file.sync_all(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The host path of a database file. SQLite opens files by name; every caller opens
    /// with `SQLITE_OPEN_NOFOLLOW` and checks the file through the `Dir` first.
    pub fn sqlite_path(&self, db: SqliteFile) -> PathBuf {
        match db {
            SqliteFile::Control => self.ambient_path.join(DataRootPath::ControlDb.path()),
            SqliteFile::Audit => self.ambient_path.join(DataRootPath::AuditDb.path()),
            SqliteFile::TenantIndex(id) => self
                .ambient_path
                .join(DataRootPath::Tenant(id).path())
                .join(VaultEntry::IndexDb.path()),
        }
    }
}

/// The SQLite databases of a data root.
#[derive(Debug, Clone, Copy)]
pub enum SqliteFile {
    Control,
    Audit,
    TenantIndex(TenantId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_pinned() {
        let id = TenantId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let table = [
            (DataRootPath::Marker, "COFFER"),
            (DataRootPath::ControlDb, "control.db"),
            (DataRootPath::AuditDb, "audit.db"),
            (DataRootPath::Secret, "secret.key"),
            (DataRootPath::TenantsDir, "tenants"),
            (DataRootPath::Outbox, "outbox"),
            (
                DataRootPath::Tenant(id),
                "tenants/0123456789abcdef0123456789abcdef",
            ),
        ];
        for (entry, expect) in table {
            assert_eq!(entry.path(), PathBuf::from(expect));
        }
        let vault: Vec<&str> = VaultEntry::ALL.iter().map(|e| e.path()).collect();
        assert_eq!(vault, ["VAULT", "index.db", "files", ".staging", ".trash"]);
    }
}
