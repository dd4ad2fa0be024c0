//! The capability door to one vault's bytes: `cap_std::fs::Dir` handles rooted at the
//! vault directory, its `files/`, `.staging/` and `.trash/`.
//!
//! Every operation resolves user paths under the `files/` handle, one component at a
//! time with `O_NOFOLLOW`, so no path can name `index.db`, `.staging/` or `.trash/`, no
//! symlink (even one pointing inside) is ever followed, and cap-std refuses anything
//! that would leave the root. Only regular files are opened for reading, and opens use
//! `O_NONBLOCK` so a planted FIFO cannot hang a reader. This module never creates a
//! symlink, never touches the index, and knows nothing of tenants beyond its handles.

use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::{
    Dir, DirBuilder, DirBuilderExt, File, Metadata, MetadataExt, OpenOptions, OpenOptionsExt,
};

use super::layout::VaultEntry;
use super::path::VaultPath;

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("is a directory")]
    IsADirectory,
    #[error("not a directory")]
    NotADirectory,
    #[error("directory is not empty")]
    DirectoryNotEmpty,
    #[error("refused: not a regular file or directory (symlink, FIFO, socket or device)")]
    NotRegular,
    #[error("refused: the path leads outside the vault")]
    Escape,
    #[error("vault directory is damaged: {0}")]
    Damaged(String),
    #[error("the disk is full")]
    StorageFull,
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for DirError {
    fn from(e: io::Error) -> Self {
        classify(e)
    }
}

/// Maps the errors the kernel and cap-std give to what they mean for a vault. `ELOOP`
/// (a symlink met with `O_NOFOLLOW`) and `ENXIO` (a FIFO or socket opened non-blocking)
/// mean a planted non-regular entry; cap-std reports an escape as `PermissionDenied`.
fn classify(e: io::Error) -> DirError {
    use io::ErrorKind as K;
    match e.kind() {
        K::NotFound => DirError::NotFound,
        K::AlreadyExists => DirError::AlreadyExists,
        K::IsADirectory => DirError::IsADirectory,
        K::NotADirectory => DirError::NotADirectory,
        K::DirectoryNotEmpty => DirError::DirectoryNotEmpty,
        K::PermissionDenied => DirError::Escape,
        _ if crate::db::io_is_full(&e) => DirError::StorageFull,
        _ => match e.raw_os_error() {
            Some(code) if code == libc::ELOOP || code == libc::ENXIO => DirError::NotRegular,
            Some(code) if code == libc::ENOTDIR => DirError::NotADirectory,
            _ => DirError::Io(e),
        },
    }
}

/// A file or directory found on disk while walking a vault.
#[derive(Debug, Clone)]
pub struct DiskEntry {
    pub path: VaultPath,
    pub is_dir: bool,
    pub size: u64,
    pub modified: SystemTime,
}

/// Something on disk that a walk refused to index (planted by someone with disk access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path as far as it could be shown (lossy for non-UTF-8 names).
    pub path: String,
    pub reason: String,
}

/// Open handles to one vault directory.
#[derive(Debug)]
pub struct VaultDir {
    root: Dir,
    files: Dir,
    staging: Dir,
    trash: Dir,
}

fn sub(root: &Dir, entry: VaultEntry) -> Result<Dir, DirError> {
    root.open_dir_nofollow(entry.path()).map_err(|e| {
        DirError::Damaged(format!(
            "{} cannot be opened as a directory: {e}",
            entry.path()
        ))
    })
}

/// fsync a directory. cap-std holds directories as `O_PATH` handles on Linux, which
/// cannot be fsynced, so `.` is reopened for reading.
pub fn sync_dir(dir: &Dir) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.read(true).maybe_dir(true);
    dir.open_with(".", &options)?.sync_all()
}

/// Directories Coffer creates are private to the service account (0700), whatever the
/// process umask.
pub(crate) fn private_dir() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.mode(0o700);
    builder
}

fn read_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .follow(FollowSymlinks::No)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    options
}

impl VaultDir {
    /// Creates the skeleton of a new vault inside `tenants` under `name` (a server-chosen
    /// id), with its marker, and fsyncs it.
    pub fn create(tenants: &Dir, name: &str, marker_json: &str) -> Result<VaultDir, DirError> {
        let private = private_dir();
        tenants.create_dir_with(name, &private)?;
        let root = tenants.open_dir_nofollow(name)?;
        for entry in VaultEntry::ALL.iter().filter(|e| e.is_dir()) {
            root.create_dir_with(entry.path(), &private)?;
        }
        let new_private = || {
            let mut o = OpenOptions::new();
            o.write(true).create_new(true).mode(0o600);
            o
        };
        let mut marker = root.open_with(VaultEntry::Marker.path(), &new_private())?;
        marker.write_all(marker_json.as_bytes())?;
        marker.sync_all()?;
        // An empty file is an empty SQLite database; creating it here gives it (and the
        // -wal and -shm files SQLite derives from it) mode 0600 whatever the umask.
        root.open_with(VaultEntry::IndexDb.path(), &new_private())?
            .sync_all()?;
        sync_dir(&root)?;
        sync_dir(tenants)?;
        VaultDir::open(tenants, name)
    }

    /// Opens an existing vault directory, refusing a symlinked or incomplete one.
    pub fn open(tenants: &Dir, name: &str) -> Result<VaultDir, DirError> {
        let root = tenants.open_dir_nofollow(name)?;
        let marker = root
            .symlink_metadata(VaultEntry::Marker.path())
            .map_err(|_| DirError::Damaged("VAULT marker is missing".into()))?;
        if !marker.is_file() {
            return Err(DirError::Damaged(
                "VAULT marker is not a regular file".into(),
            ));
        }
        Ok(VaultDir {
            files: sub(&root, VaultEntry::FilesDir)?,
            staging: sub(&root, VaultEntry::StagingDir)?,
            trash: sub(&root, VaultEntry::TrashDir)?,
            root,
        })
    }

    /// Reads the marker file (small, regular, no symlink).
    /// The vault's root, `files/` and `.trash/` directories, for a backup's read-only
    /// walk (`vault::backup`).
    pub fn parts(&self) -> (&Dir, &Dir, &Dir) {
        (&self.root, &self.files, &self.trash)
    }

    pub fn read_marker(&self) -> Result<String, DirError> {
        let mut f = self
            .root
            .open_with(VaultEntry::Marker.path(), &read_options())?;
        let mut text = String::new();
        Read::by_ref(&mut f)
            .take(64 * 1024)
            .read_to_string(&mut text)?;
        Ok(text)
    }

    /// Checks that `index.db` is a regular file or absent before SQLite opens it by name.
    pub fn check_index_file(&self) -> Result<(), DirError> {
        match self.root.symlink_metadata(VaultEntry::IndexDb.path()) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(DirError::NotRegular),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the directory containing `path`, component by component without following
    /// symlinks. With `create`, missing directories are made (and fsynced) and returned.
    fn parent_dir(
        &self,
        path: &VaultPath,
        create: bool,
    ) -> Result<(Dir, Vec<VaultPath>), DirError> {
        let mut created = Vec::new();
        let mut current = self.files.try_clone()?;
        for ancestor in path.ancestors() {
            let name = ancestor.file_name();
            current = match current.open_dir_nofollow(name) {
                Ok(d) => d,
                Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                    current.create_dir_with(name, &private_dir())?;
                    sync_dir(&current)?;
                    created.push(ancestor.clone());
                    current.open_dir_nofollow(name)?
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok((current, created))
    }

    /// Opens a directory of the vault (the root for `None`).
    fn open_dir(&self, dir: Option<&VaultPath>) -> Result<Dir, DirError> {
        match dir {
            None => Ok(self.files.try_clone()?),
            Some(path) => {
                let (parent, _) = self.parent_dir(path, false)?;
                Ok(parent.open_dir_nofollow(path.file_name())?)
            }
        }
    }

    /// `lstat` of a vault path (never follows a final symlink).
    pub fn metadata(&self, path: &VaultPath) -> Result<Metadata, DirError> {
        let (parent, _) = self.parent_dir(path, false)?;
        Ok(parent.symlink_metadata(path.file_name())?)
    }

    /// Opens a regular file for reading. Symlinks, FIFOs, sockets and devices are refused.
    pub fn open_file(&self, path: &VaultPath) -> Result<(File, Metadata), DirError> {
        let (parent, _) = self.parent_dir(path, false)?;
        let file = parent.open_with(path.file_name(), &read_options())?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(DirError::IsADirectory);
        }
        // A hard link planted from outside is indistinguishable from a regular file except
        // by its link count; Coffer's own writes (rename of a fresh file) never make one.
        if !meta.is_file() || meta.nlink() > 1 {
            return Err(DirError::NotRegular);
        }
        Ok((file, meta))
    }

    /// A new temporary file in `.staging/`, removed again unless committed.
    pub fn stage(&self) -> Result<StagedFile<'_>, DirError> {
        self.new_staged("part", false)
    }

    /// A scratch file in `.staging/` that can be written and read back (an uploaded
    /// archive before import); removed when dropped.
    pub fn scratch(&self) -> Result<StagedFile<'_>, DirError> {
        self.new_staged("scratch", true)
    }

    fn new_staged(&self, suffix: &str, readable: bool) -> Result<StagedFile<'_>, DirError> {
        let name = format!("{}.{suffix}", uuid::Uuid::new_v4().simple());
        let file = self.staging.open_with(
            &name,
            OpenOptions::new()
                .read(readable)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .follow(FollowSymlinks::No),
        )?;
        Ok(StagedFile {
            staging: &self.staging,
            name,
            file: Some(file),
        })
    }

    /// Moves a fully written and fsynced kept staging file to `path` (creating parent
    /// directories), replacing a regular file but nothing else. The new name is not yet
    /// durable: the caller fsyncs the returned parent directory (once for every file a
    /// group commit placed in it). Also returns the directories it created.
    pub fn place(
        &self,
        kept: &KeptFile,
        path: &VaultPath,
    ) -> Result<(Dir, Vec<VaultPath>), DirError> {
        let (parent, created) = self.parent_dir(path, true)?;
        match parent.symlink_metadata(path.file_name()) {
            Ok(m) if m.is_dir() => return Err(DirError::IsADirectory),
            Ok(m) if !m.is_file() => return Err(DirError::NotRegular),
            _ => {}
        }
        self.staging.rename(&kept.name, &parent, path.file_name())?;
        Ok((parent, created))
    }

    /// Moves a kept staging file to `path`, like `place`, and fsyncs its directory. The
    /// target must not exist.
    pub fn commit_kept(
        &self,
        kept: &KeptFile,
        path: &VaultPath,
    ) -> Result<Vec<VaultPath>, DirError> {
        let (parent, created) = self.parent_dir(path, true)?;
        if parent.symlink_metadata(path.file_name()).is_ok() {
            return Err(DirError::AlreadyExists);
        }
        self.staging.rename(&kept.name, &parent, path.file_name())?;
        sync_dir(&parent)?;
        Ok(created)
    }

    /// Removes a kept staging file that will not be committed.
    pub fn discard_kept(&self, kept: &KeptFile) {
        let _ = self.staging.remove_file(&kept.name);
    }

    /// Removes a regular file that this process just committed (rolling back an import).
    pub fn remove_committed_file(&self, path: &VaultPath) -> Result<(), DirError> {
        let (parent, _) = self.parent_dir(path, false)?;
        if !parent.symlink_metadata(path.file_name())?.is_file() {
            return Err(DirError::NotRegular);
        }
        parent.remove_file(path.file_name())?;
        sync_dir(&parent)?;
        Ok(())
    }

    /// Creates a directory and any missing parents. Returns the directories created
    /// (empty if it already existed).
    pub fn mkdir(&self, path: &VaultPath) -> Result<Vec<VaultPath>, DirError> {
        let (parent, mut created) = self.parent_dir(path, true)?;
        match parent.create_dir_with(path.file_name(), &private_dir()) {
            Ok(()) => {
                sync_dir(&parent)?;
                created.push(path.clone());
                Ok(created)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let m = parent.symlink_metadata(path.file_name())?;
                if m.is_dir() {
                    Ok(created)
                } else {
                    Err(DirError::AlreadyExists)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Renames `from` to `to` inside `files/`; `to` must not exist. Returns the parent
    /// directories created for `to`.
    pub fn rename(&self, from: &VaultPath, to: &VaultPath) -> Result<Vec<VaultPath>, DirError> {
        let (from_parent, _) = self.parent_dir(from, false)?;
        let meta = from_parent.symlink_metadata(from.file_name())?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(DirError::NotRegular);
        }
        let (to_parent, created) = self.parent_dir(to, true)?;
        match to_parent.symlink_metadata(to.file_name()) {
            Ok(_) => return Err(DirError::AlreadyExists),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        from_parent.rename(from.file_name(), &to_parent, to.file_name())?;
        sync_dir(&to_parent)?;
        sync_dir(&from_parent)?;
        Ok(created)
    }

    /// Moves `path` (file or directory) to `.trash/<trash_id>`.
    pub fn move_to_trash(&self, path: &VaultPath, trash_id: &str) -> Result<(), DirError> {
        let (parent, _) = self.parent_dir(path, false)?;
        let meta = parent.symlink_metadata(path.file_name())?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(DirError::NotRegular);
        }
        parent.rename(path.file_name(), &self.trash, trash_id)?;
        sync_dir(&self.trash)?;
        sync_dir(&parent)?;
        Ok(())
    }

    /// Whether `.trash/<trash_id>` exists.
    pub fn trash_exists(&self, trash_id: &str) -> bool {
        self.trash.symlink_metadata(trash_id).is_ok()
    }

    /// Moves `.trash/<trash_id>` back to `path` (which must not exist).
    pub fn restore_from_trash(
        &self,
        trash_id: &str,
        path: &VaultPath,
    ) -> Result<Vec<VaultPath>, DirError> {
        let (parent, created) = self.parent_dir(path, true)?;
        if parent.symlink_metadata(path.file_name()).is_ok() {
            return Err(DirError::AlreadyExists);
        }
        self.trash.rename(trash_id, &parent, path.file_name())?;
        sync_dir(&parent)?;
        sync_dir(&self.trash)?;
        Ok(created)
    }

    /// Deletes `.trash/<trash_id>` for good. Directories are removed through file
    /// descriptors without following symlinks (cap-std's `remove_dir_all`).
    pub fn purge_trash(&self, trash_id: &str) -> Result<(), DirError> {
        let meta = self.trash.symlink_metadata(trash_id)?;
        if meta.is_dir() {
            self.trash.remove_dir_all(trash_id)?;
        } else {
            self.trash.remove_file(trash_id)?;
        }
        sync_dir(&self.trash)?;
        Ok(())
    }

    /// Removes staging files last modified before `older_than` ago (left by a crash);
    /// returns how many. Younger ones may belong to a write in progress in another
    /// process.
    pub fn clean_staging(&self, older_than: Duration) -> Result<usize, DirError> {
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for entry in self.staging.entries()? {
            let entry = entry?;
            let meta = entry.metadata()?;
            let modified = meta.modified().map(|t| t.into_std()).unwrap_or(cutoff);
            if modified <= cutoff {
                if meta.is_dir() {
                    self.staging.remove_dir_all(entry.file_name())?;
                } else {
                    self.staging.remove_file(entry.file_name())?;
                }
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.staging)?;
        }
        Ok(removed)
    }

    /// Walks the subtree at `start` (the whole tree for `None`) without following
    /// symlinks, calling `found` for each regular file and directory in path order, and
    /// `skipped` for everything it refuses: symlinks, special files, names that are not
    /// valid vault paths (they could not be exported or addressed).
    pub fn walk(
        &self,
        start: Option<&VaultPath>,
        found: &mut dyn FnMut(DiskEntry) -> Result<(), DirError>,
        skipped: &mut dyn FnMut(Skipped),
    ) -> Result<(), DirError> {
        if let Some(path) = start {
            let meta = self.metadata(path)?;
            if meta.is_file() && meta.nlink() == 1 {
                return found(disk_entry(path.clone(), &meta));
            }
            if !meta.is_dir() {
                skipped(Skipped {
                    path: path.to_string(),
                    reason: "not a regular file or directory".into(),
                });
                return Ok(());
            }
            found(disk_entry(path.clone(), &meta))?;
        }
        let dir = self.open_dir(start)?;
        walk_dir(&dir, start, found, skipped)
    }
}

fn disk_entry(path: VaultPath, meta: &Metadata) -> DiskEntry {
    DiskEntry {
        path,
        is_dir: meta.is_dir(),
        size: if meta.is_file() { meta.len() } else { 0 },
        modified: meta
            .modified()
            .map(|t| t.into_std())
            .unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

fn walk_dir(
    dir: &Dir,
    prefix: Option<&VaultPath>,
    found: &mut dyn FnMut(DiskEntry) -> Result<(), DirError>,
    skipped: &mut dyn FnMut(Skipped),
) -> Result<(), DirError> {
    let mut children = Vec::new();
    for entry in dir.entries()? {
        let entry = entry?;
        children.push((entry.file_name(), entry.file_type()?));
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    for (raw_name, file_type) in children {
        let shown = match prefix {
            Some(p) => format!("{p}/{}", raw_name.to_string_lossy()),
            None => raw_name.to_string_lossy().into_owned(),
        };
        let Some(name) = raw_name.to_str() else {
            skipped(Skipped {
                path: shown,
                reason: "name is not valid UTF-8".into(),
            });
            continue;
        };
        let parsed = match prefix {
            Some(p) => p.join(name),
            None => VaultPath::parse(name),
        };
        let path = match parsed {
            // A name that parses to a different (normalised) string is not the one on
            // disk: addressing it would miss the file.
            Ok(path) if path.file_name() == name => path,
            Ok(_) => {
                skipped(Skipped {
                    path: shown,
                    reason: "name is not in Unicode NFC form".into(),
                });
                continue;
            }
            Err(e) => {
                skipped(Skipped {
                    path: shown,
                    reason: format!("name is not a valid vault path: {e}"),
                });
                continue;
            }
        };
        if file_type.is_symlink() {
            skipped(Skipped {
                path: shown,
                reason: "symbolic link (never followed)".into(),
            });
        } else if file_type.is_dir() {
            let sub = dir.open_dir_nofollow(name)?;
            found(disk_entry(path.clone(), &sub.dir_metadata()?))?;
            walk_dir(&sub, Some(&path), found, skipped)?;
        } else if file_type.is_file() {
            let meta = dir.symlink_metadata(name)?;
            if meta.nlink() > 1 {
                skipped(Skipped {
                    path: shown,
                    reason: "hard link (its content may belong outside the vault)".into(),
                });
                continue;
            }
            found(disk_entry(path, &meta))?;
        } else {
            skipped(Skipped {
                path: shown,
                reason: "special file (FIFO, socket or device)".into(),
            });
        }
    }
    Ok(())
}

/// A temporary file in `.staging/`. Dropping it without `VaultDir::commit` removes it,
/// so a failed or abandoned write leaves nothing behind.
pub struct StagedFile<'a> {
    staging: &'a Dir,
    name: String,
    file: Option<File>,
}

/// A complete, fsynced staging file kept by name (its descriptor closed) until an import
/// commits or discards it.
#[derive(Debug)]
pub struct KeptFile {
    name: String,
}

impl StagedFile<'_> {
    /// Rewinds a scratch file and lends it for reading.
    pub fn rewind(&mut self) -> io::Result<&mut File> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("staged file closed"))?;
        io::Seek::seek(file, io::SeekFrom::Start(0))?;
        Ok(file)
    }

    /// Closes the file and keeps it in `.staging/` under its name.
    pub fn keep(mut self) -> KeptFile {
        self.file.take();
        KeptFile {
            name: std::mem::take(&mut self.name),
        }
    }

    /// Flushes the data to disk. An error here fails the write for good: it is never
    /// retried (the kernel may have dropped the dirty pages).
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_all(),
            None => Ok(()),
        }
    }
}

impl Write for StagedFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("staged file already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for StagedFile<'_> {
    fn drop(&mut self) {
        self.file.take();
        if !self.name.is_empty() {
            let _ = self.staging.remove_file(&self.name);
        }
    }
}
