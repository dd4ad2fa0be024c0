//! A vault's copy as a byte stream, for moving a tenant between nodes: a tar stream of
//! the vault's directory tree as of one moment (its marker, a consistent copy of its
//! index, and exactly the files and trash items that index names; every entry under
//! `vault/`), ended by `manifest.json`, which lists every file with its size and
//! SHA-256 as the sender read it, or, for a file the receiver already holds from a live
//! copy (sent only the files, while the vault still took changes), as its index records
//! it, without its bytes. Files are read in place, so the copy costs no disk on the
//! sending node (hard links would: a vault refuses to serve a linked file).
//!
//! The receiver trusts nothing in the stream: each path must be plain (no `..`, no
//! absolute path, no link, device or other entry type), everything is written through
//! the capability handle of an empty staging directory with private modes and made
//! durable, and the result must match the manifest exactly (same files, sizes and
//! hashes, nothing more). A stream cut short has no manifest and is refused; so is one
//! with anything after it. What the copy holds is then checked again against the
//! vault's own index by the caller, before it is used.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use std::path::Path;

use super::dir::{private_dir, sync_dir};
use super::index::EntryKind;
use super::layout::VaultEntry;
use super::path::VaultPath;
use super::{Vault, VaultError};

/// The top directory of every vault entry in the stream.
const TOP: &str = "vault";
/// The stream's last entry.
const MANIFEST: &str = "manifest.json";
/// The largest manifest a receiver reads (about a million files).
const MAX_MANIFEST: u64 = 256 << 20;
const FORMAT: u32 = 1;

/// What a transfer carried: every file (path below `vault/`) with its size and hash.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TransferManifest {
    pub format: u32,
    pub files: BTreeMap<String, FileDigest>,
    pub dirs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileDigest {
    pub size: u64,
    pub sha256: String,
}

impl TransferManifest {
    pub fn bytes(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }
}

/// Writes a transfer stream: entries (paths below `vault/`, parents before what they
/// hold), then `finish` appends the manifest.
pub struct TransferWriter<W: Write> {
    tar: tar::Builder<W>,
    manifest: TransferManifest,
}

impl<W: Write> TransferWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        let mut tar = tar::Builder::new(out);
        append_dir(&mut tar, TOP)?;
        Ok(TransferWriter {
            tar,
            manifest: TransferManifest {
                format: FORMAT,
                ..TransferManifest::default()
            },
        })
    }

    /// A directory (`rel` below `vault/`).
    pub fn dir(&mut self, rel: &str) -> io::Result<()> {
        self.manifest.dirs += 1;
        append_dir(&mut self.tar, &format!("{TOP}/{rel}"))
    }

    /// The regular file `name` in `from` (never followed if a link), as `rel`.
    pub fn file(&mut self, from: &Dir, name: &str, rel: &str) -> io::Result<()> {
        let file = open_regular(from, name)?
            .ok_or_else(|| io::Error::other(format!("{rel} is not a regular file")))?;
        self.opened(file, rel)
    }

    /// `file`, for a copy of a vault still taking changes: a file that cannot be opened
    /// as one now (deleted, or replaced by a folder, or its folder by a file) is left
    /// out. Nothing of it is written before it is open, so the stream stays whole.
    pub fn file_if_there(&mut self, from: &Dir, name: &str, rel: &str) -> io::Result<()> {
        match open_regular(from, name) {
            Ok(Some(file)) => self.opened(file, rel),
            Ok(None) | Err(_) => Ok(()),
        }
    }

    fn opened(&mut self, file: cap_std::fs::File, rel: &str) -> io::Result<()> {
        let size = file.metadata()?.len();
        let mut header = entry_header(tar::EntryType::Regular, 0o600);
        header.set_size(size);
        let mut hashing = Hashing::new(file.take(size));
        self.tar
            .append_data(&mut header, format!("{TOP}/{rel}"), &mut hashing)?;
        let (sha256, read) = hashing.finish();
        if read != size {
            return Err(io::Error::other(format!("{rel} changed while it was sent")));
        }
        self.manifest
            .files
            .insert(rel.to_owned(), FileDigest { size, sha256 });
        Ok(())
    }

    /// A file the receiver already holds with this size and hash (from a pre-copy):
    /// listed in the manifest, its bytes not sent.
    pub fn kept(&mut self, rel: &str, digest: FileDigest) {
        self.manifest.files.insert(rel.to_owned(), digest);
    }

    /// `name` in `from` as `rel`: a regular file, or a directory and everything in it
    /// (regular files and directories only; links and anything else are never sent).
    pub fn tree(&mut self, from: &Dir, name: &str, rel: &str) -> io::Result<()> {
        let meta = from.symlink_metadata(name)?;
        if meta.is_file() {
            return self.file(from, name, rel);
        }
        if !meta.is_dir() {
            return Ok(());
        }
        self.dir(rel)?;
        self.contents(&from.open_dir_nofollow(name)?, rel)
    }

    /// Everything in `dir`, below `rel` (empty: at the top).
    fn contents(&mut self, dir: &Dir, rel: &str) -> io::Result<()> {
        let mut names: Vec<String> = dir
            .entries()?
            .map(|e| {
                e?.file_name()
                    .into_string()
                    .map_err(|_| io::Error::other("a name in the copy is not UTF-8"))
            })
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            self.tree(dir, &name, &child)?;
        }
        Ok(())
    }

    /// Appends the manifest and ends the stream.
    pub fn finish(mut self) -> io::Result<TransferManifest> {
        let json = serde_json::to_vec(&self.manifest).map_err(io::Error::other)?;
        let mut header = entry_header(tar::EntryType::Regular, 0o600);
        header.set_size(json.len() as u64);
        self.tar
            .append_data(&mut header, MANIFEST, json.as_slice())?;
        self.tar.into_inner()?.flush()?;
        Ok(self.manifest)
    }
}

/// The regular file `name` in `from`, opened without following a link; `None` if it is
/// something else.
fn open_regular(from: &Dir, name: &str) -> io::Result<Option<cap_std::fs::File>> {
    let mut read = OpenOptions::new();
    read.read(true).follow(FollowSymlinks::No);
    let file = from.open_with(name, &read)?;
    Ok(file.metadata()?.is_file().then_some(file))
}

/// Writes the tree `name` in `from` (its contents at the top) as a transfer stream.
pub fn send_tree(from: &Dir, name: &str, out: impl Write) -> io::Result<TransferManifest> {
    let mut writer = TransferWriter::new(out)?;
    writer.contents(&from.open_dir_nofollow(name)?, "")?;
    writer.finish()
}

fn entry_header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_size(0);
    header
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut header = entry_header(tar::EntryType::Directory, 0o700);
    tar.append_data(&mut header, format!("{path}/"), io::empty())
}

/// What a receiver already holds: files (paths below `vault/`) with the size and hash it
/// computed as it received them.
pub type Held = BTreeMap<String, FileDigest>;

impl Vault {
    /// Writes this vault's copy as a transfer stream into `out`: its index as of one
    /// moment (written to `scratch` first, as `index.db`; `scratch_ambient` is that
    /// directory's path) and exactly the files and trash items it names, read in place.
    /// A file the receiver already `held` with the size and hash the index records is
    /// only listed (the receiver checks every file against the index it is sent).
    /// The caller has shut the vault to changes (`VaultStore::mark_sent`); the commit
    /// lock is held throughout, so a change already past its check has committed before
    /// and nothing (not even a repair) lands during the copy. Reads go on meanwhile.
    pub fn send_copy(
        &self,
        scratch: &Dir,
        scratch_ambient: &Path,
        held: &Held,
        out: impl Write,
    ) -> Result<TransferManifest, VaultError> {
        let (_commit, index) = self.begin_repair()?;
        let index_copy = VaultEntry::IndexDb.path();
        index.snapshot_into(&scratch_ambient.join(index_copy))?;
        let entries = index.all_entries()?;
        let trash_items = index.trash_list()?;
        drop(index);
        let (root, files, trash) = self.dir.parts();
        let mut writer = TransferWriter::new(out)?;
        writer.file(root, VaultEntry::Marker.path(), VaultEntry::Marker.path())?;
        writer.file(scratch, index_copy, index_copy)?;
        for dir in [
            VaultEntry::FilesDir,
            VaultEntry::StagingDir,
            VaultEntry::TrashDir,
        ] {
            writer.dir(dir.path())?;
        }
        let files_dir = VaultEntry::FilesDir.path();
        for entry in entries {
            let path =
                VaultPath::parse(&entry.path).map_err(|e| VaultError::Damaged(e.to_string()))?;
            let rel = format!("{files_dir}/{}", path.as_str());
            if entry.kind == EntryKind::Dir {
                writer.dir(&rel)?;
                continue;
            }
            let recorded = entry.sha256.map(|sha256| FileDigest {
                size: entry.size,
                sha256,
            });
            match recorded {
                Some(digest) if held.get(&rel) == Some(&digest) => writer.kept(&rel, digest),
                _ => writer.file(files, path.as_str(), &rel)?,
            }
        }
        let trash_dir = VaultEntry::TrashDir.path();
        for item in trash_items {
            writer.tree(trash, &item.id, &format!("{trash_dir}/{}", item.id))?;
        }
        Ok(writer.finish()?)
    }
}

impl Vault {
    /// Writes a live copy of this vault's files as a transfer stream into `out`, while it
    /// goes on taking changes: the pre-copy of a move. The files the index names as this
    /// begins, each read in place as it is when opened (a file replaced meanwhile is sent
    /// as it is then; one deleted, or no longer a file, is left out). Nothing else: no
    /// marker, index or trash.
    /// What the receiver got is only a head start; the fenced copy lists every file and
    /// sends the ones the receiver does not hold as the index now records them.
    pub fn send_live_copy(&self, out: impl Write) -> Result<TransferManifest, VaultError> {
        let entries = self.all_entries()?;
        let (_, files, _) = self.dir.parts();
        let mut writer = TransferWriter::new(out)?;
        let files_dir = VaultEntry::FilesDir.path();
        writer.dir(files_dir)?;
        for entry in entries {
            let path =
                VaultPath::parse(&entry.path).map_err(|e| VaultError::Damaged(e.to_string()))?;
            let rel = format!("{files_dir}/{}", path.as_str());
            // Whatever changed since the listing is left to the fenced copy.
            match entry.kind {
                EntryKind::Dir => writer.dir(&rel)?,
                _ => writer.file_if_there(files, path.as_str(), &rel)?,
            }
        }
        Ok(writer.finish()?)
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a received stream was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("the copy's stream is malformed: {0}")]
    Malformed(String),
    #[error("the copy does not match its manifest: {0}")]
    Mismatch(String),
    #[error("the copy's stream failed: {0}")]
    Io(#[from] io::Error),
}

fn malformed(why: impl Into<String>) -> TransferError {
    TransferError::Malformed(why.into())
}

/// Files received earlier (by a pre-copy) under `dir` in the same directory, with the
/// digests computed as they arrived: a stream may list one of them without its bytes.
pub struct Kept<'a> {
    pub dir: &'a str,
    pub files: &'a Held,
}

/// What a stream brought: the copy's manifest, and how many of its bytes were already
/// held (taken from `Kept`, not carried by the stream).
#[derive(Debug)]
pub struct Received {
    pub manifest: TransferManifest,
    pub kept_bytes: u64,
}

/// Reads a transfer stream into `into` (an empty directory), as `name`, and checks it
/// against its manifest; refused as soon as its files would pass `max_bytes` in all. A
/// file the manifest lists but the stream did not carry is taken from `kept` (moved,
/// not copied) if it is there with exactly the manifest's size and hash.
/// Everything written is durable when this returns.
pub fn receive_tree(
    input: impl Read,
    into: &Dir,
    name: &str,
    max_bytes: u64,
    kept: Option<Kept<'_>>,
) -> Result<Received, TransferError> {
    let mut total: u64 = 0;
    let mut archive = tar::Archive::new(input);
    let mut got = TransferManifest {
        format: FORMAT,
        ..TransferManifest::default()
    };
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut manifest: Option<TransferManifest> = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if manifest.is_some() {
            return Err(malformed("entries after the manifest"));
        }
        let raw = entry.path_bytes().into_owned();
        let path = std::str::from_utf8(&raw)
            .map_err(|_| malformed("a path that is not UTF-8"))?
            .trim_end_matches('/')
            .to_owned();
        let kind = entry.header().entry_type();
        if path == MANIFEST && kind == tar::EntryType::Regular {
            if entry.size() > MAX_MANIFEST {
                return Err(malformed("an oversized manifest"));
            }
            let mut json = vec![];
            entry.read_to_end(&mut json)?;
            manifest = Some(
                serde_json::from_slice(&json)
                    .map_err(|e| malformed(format!("the manifest does not parse: {e}")))?,
            );
            continue;
        }
        let rel = plain_relative(&path)?;
        let local = match rel {
            None => name.to_owned(),
            Some(rel) => format!("{name}/{rel}"),
        };
        match kind {
            tar::EntryType::Directory => {
                if rel.is_some() {
                    got.dirs += 1;
                }
                make_dirs(into, &local, &mut dirs)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let Some(rel) = rel else {
                    return Err(malformed("the top of the copy is not a directory"));
                };
                total = total.saturating_add(entry.size());
                if total > max_bytes {
                    return Err(malformed(format!(
                        "more than the {max_bytes} bytes the copy was announced at"
                    )));
                }
                if let Some((parent, _)) = local.rsplit_once('/') {
                    make_dirs(into, parent, &mut dirs)?;
                }
                let mut options = OpenOptions::new();
                options
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .follow(FollowSymlinks::No);
                let file = into.open_with(&local, &options)?;
                let mut out = HashingWriter {
                    inner: file,
                    hasher: Sha256::new(),
                    count: 0,
                };
                io::copy(&mut entry, &mut out)?;
                out.inner.sync_all()?;
                let digest = FileDigest {
                    size: out.count,
                    sha256: hex::encode(out.hasher.finalize()),
                };
                got.files.insert(rel.to_owned(), digest);
            }
            other => return Err(malformed(format!("an entry of type {other:?} at {path}"))),
        }
    }
    let manifest = manifest.ok_or_else(|| malformed("the stream ended before its manifest"))?;
    if manifest.format != FORMAT {
        return Err(malformed(format!(
            "manifest format {} (this build reads {FORMAT})",
            manifest.format
        )));
    }
    let mut kept_bytes = 0;
    if let Some(kept) = kept {
        for (rel, digest) in &manifest.files {
            if got.files.contains_key(rel) || kept.files.get(rel) != Some(digest) {
                continue;
            }
            // Plain, as every received path (the kept names came from a stream too).
            plain_relative(&format!("{TOP}/{rel}"))?;
            let local = format!("{name}/{rel}");
            if let Some((parent, _)) = local.rsplit_once('/') {
                make_dirs(into, parent, &mut dirs)?;
            }
            into.rename(format!("{}/{rel}", kept.dir), into, &local)?;
            got.files.insert(rel.clone(), digest.clone());
            kept_bytes += digest.size;
        }
    }
    if manifest != got {
        let missing = manifest.files.keys().find(|k| !got.files.contains_key(*k));
        let extra = got.files.keys().find(|k| !manifest.files.contains_key(*k));
        let differs = got
            .files
            .iter()
            .find(|(k, v)| manifest.files.get(*k).is_some_and(|m| m != *v));
        let why = match (missing, extra, differs) {
            (Some(path), _, _) => format!("{path} is missing"),
            (_, Some(path), _) => format!("{path} is not in the manifest"),
            (_, _, Some((path, _))) => format!("{path} differs"),
            _ => format!(
                "{} directories, the manifest says {}",
                got.dirs, manifest.dirs
            ),
        };
        return Err(TransferError::Mismatch(why));
    }
    // Deepest first, so each directory's own entry is durable after its contents'.
    let mut dirs: Vec<String> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for dir in &dirs {
        sync_dir(&into.open_dir_nofollow(dir)?)?;
    }
    sync_dir(into)?;
    Ok(Received {
        manifest: got,
        kept_bytes,
    })
}

/// Creates directory `path` in `into` and any parent it lacks, private (0700) whatever
/// the umask; each one created is remembered, to be made durable at the end.
fn make_dirs(into: &Dir, path: &str, made: &mut BTreeSet<String>) -> io::Result<()> {
    let mut at = String::new();
    for part in path.split('/') {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        if made.contains(&at) {
            continue;
        }
        match into.create_dir_with(&at, &private_dir()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && into.is_dir(&at) => {}
            Err(e) => return Err(e),
        }
        made.insert(at.clone());
    }
    Ok(())
}

/// The part of `path` below `vault/` (`None`: `vault` itself), if every component is a
/// plain name.
fn plain_relative(path: &str) -> Result<Option<&str>, TransferError> {
    let rel = match path.strip_prefix(TOP) {
        Some("") => return Ok(None),
        Some(rest) => rest
            .strip_prefix('/')
            .ok_or_else(|| malformed(format!("an entry outside the copy: {path}")))?,
        None => return Err(malformed(format!("an entry outside the copy: {path}"))),
    };
    let plain = rel
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    if plain {
        Ok(Some(rel))
    } else {
        Err(malformed(format!("a path that is not plain: {path}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().unwrap();
        let root = crate::vault::layout::DataRoot::open_ambient(tmp.path(), false).unwrap();
        let dir = root.dir().try_clone().unwrap();
        (tmp, dir)
    }

    fn sample(dir: &Dir) {
        dir.create_dir_all("v/files/a/b").unwrap();
        dir.create_dir("v/staging").unwrap();
        dir.write("v/VAULT", b"1").unwrap();
        dir.write("v/files/a/b/c.txt", b"hello").unwrap();
        dir.write("v/files/top", vec![7u8; 70_000]).unwrap();
    }

    #[test]
    fn a_tree_round_trips_with_its_manifest() {
        let (_a, from) = scratch();
        sample(&from);
        let mut stream = vec![];
        let sent = send_tree(&from, "v", &mut stream).unwrap();
        assert_eq!(sent.files.len(), 3);
        assert_eq!(sent.bytes(), 70_006);
        let (_b, into) = scratch();
        let got = receive_tree(stream.as_slice(), &into, "copy", u64::MAX, None).unwrap();
        assert_eq!((got.manifest, got.kept_bytes), (sent, 0));
        assert_eq!(into.read("copy/files/a/b/c.txt").unwrap(), b"hello");
        assert!(into.is_dir("copy/staging"));
    }

    #[test]
    fn a_cut_or_altered_stream_is_refused() {
        let (_a, from) = scratch();
        sample(&from);
        let mut stream = vec![];
        send_tree(&from, "v", &mut stream).unwrap();
        // Cut short anywhere: no manifest (or a torn entry).
        for cut in [stream.len() / 3, stream.len() - 1024 - 600] {
            let (_b, into) = scratch();
            assert!(
                receive_tree(&stream[..cut], &into, "copy", u64::MAX, None).is_err(),
                "cut at {cut}"
            );
        }
        // One byte of one file flipped: the manifest says otherwise.
        let at = stream
            .windows(5)
            .position(|w| w == b"hello")
            .expect("the file's bytes");
        let mut altered = stream.clone();
        altered[at] = b'j';
        let (_b, into) = scratch();
        let err = receive_tree(altered.as_slice(), &into, "copy", u64::MAX, None).unwrap_err();
        assert!(matches!(err, TransferError::Mismatch(_)), "{err}");
    }

    #[test]
    fn files_held_from_a_live_copy_are_listed_not_sent_and_must_match() {
        let (_a, from) = scratch();
        sample(&from);
        let mut live = vec![];
        send_tree(&from, "v", &mut live).unwrap();
        let (_b, into) = scratch();
        let held = receive_tree(live.as_slice(), &into, "live", u64::MAX, None)
            .unwrap()
            .manifest;
        // Meanwhile c.txt changed; the big file did not.
        from.write("v/files/a/b/c.txt", b"hello again").unwrap();
        let fenced = |claimed: FileDigest| {
            let mut out = vec![];
            let mut w = TransferWriter::new(&mut out).unwrap();
            w.file(&from, "v/VAULT", "VAULT").unwrap();
            w.file(&from, "v/files/a/b/c.txt", "files/a/b/c.txt")
                .unwrap();
            w.kept("files/top", claimed);
            w.finish().unwrap();
            out
        };
        let stream = fenced(held.files["files/top"].clone());
        assert!(stream.len() < 70_000, "the held file's bytes were not sent");
        let got = receive_tree(
            stream.as_slice(),
            &into,
            "copy",
            u64::MAX,
            Some(Kept {
                dir: "live",
                files: &held.files,
            }),
        )
        .unwrap();
        assert_eq!(got.kept_bytes, 70_000);
        assert_eq!(into.read("copy/files/top").unwrap(), vec![7u8; 70_000]);
        assert_eq!(into.read("copy/files/a/b/c.txt").unwrap(), b"hello again");
        // A file listed as held with another hash than the receiver's is missing.
        let (_c, into) = scratch();
        receive_tree(live.as_slice(), &into, "live", u64::MAX, None).unwrap();
        let lie = fenced(FileDigest {
            size: 70_000,
            sha256: "0".repeat(64),
        });
        let err = receive_tree(
            lie.as_slice(),
            &into,
            "copy",
            u64::MAX,
            Some(Kept {
                dir: "live",
                files: &held.files,
            }),
        )
        .unwrap_err();
        assert!(err.to_string().contains("files/top is missing"), "{err}");
    }

    #[test]
    fn a_copy_larger_than_announced_is_refused() {
        let (_a, from) = scratch();
        sample(&from);
        let mut stream = vec![];
        send_tree(&from, "v", &mut stream).unwrap();
        let (_b, into) = scratch();
        let err = receive_tree(stream.as_slice(), &into, "copy", 70_000, None).unwrap_err();
        assert!(err.to_string().contains("announced"), "{err}");
        let (_c, into) = scratch();
        receive_tree(stream.as_slice(), &into, "copy", 70_006, None).unwrap();
    }

    #[test]
    fn hostile_entries_are_refused() {
        for (path, kind) in [
            ("vault/../escape", tar::EntryType::Regular),
            ("/etc/passwd", tar::EntryType::Regular),
            ("other/file", tar::EntryType::Regular),
            ("vault/link", tar::EntryType::Symlink),
            ("vault/dev", tar::EntryType::Char),
        ] {
            let mut tar = tar::Builder::new(vec![]);
            append_dir(&mut tar, TOP).unwrap();
            let mut header = entry_header(kind, 0o600);
            header.set_size(0);
            if kind == tar::EntryType::Symlink {
                header.set_link_name("/etc").unwrap();
            }
            // Written raw: the tar crate refuses `..` in the paths it is given.
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_cksum();
            tar.append(&header, io::empty()).unwrap();
            let stream = tar.into_inner().unwrap();
            let (tmp, into) = scratch();
            let err = receive_tree(stream.as_slice(), &into, "copy", u64::MAX, None).unwrap_err();
            assert!(matches!(err, TransferError::Malformed(_)), "{path}: {err}");
            assert!(!tmp.path().join("escape").exists());
        }
    }
}
