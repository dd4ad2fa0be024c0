//! Copying tenant bytes while hashing them: the one streaming loop of every write into a
//! vault (uploads, imports), and the one read loop that hashes a stored file.
//!
//! Memory is bounded per stream whatever its size: small files are hashed inline in a
//! 64 KiB buffer; past 4 MiB, hashing moves to a second thread fed with a fixed set of
//! 1 MiB buffers that circulate between the copy and the hasher.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::VaultError;
use super::dir::StagedFile;

/// Read and write size of large streams: big enough that syscalls and hand-offs to the
/// hashing thread are a small part of the cost.
const COPY_BUFFER: usize = 1024 * 1024;
/// The first (and for most files, only) buffer of a stream.
pub const FIRST_BUFFER: usize = 64 * 1024;
/// Streams hashed inline until this many bytes; past it, hashing moves to a second
/// thread so that it overlaps the copy (small files avoid the thread's start-up cost).
const HASH_THREAD_AFTER: u64 = 4 * 1024 * 1024;
/// Buffers in flight between the copy and the hashing thread: bounds memory per write.
const HASH_BUFFERS: usize = 8;

/// SHA-256 (hex) and length of everything `reader` yields: the one loop that hashes a
/// stored file (reindex, repair, export verification).
pub fn sha256_of(reader: &mut dyn Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; FIRST_BUFFER];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

type HashWorker = (
    std::sync::mpsc::SyncSender<(Vec<u8>, usize)>,
    std::sync::mpsc::Receiver<Vec<u8>>,
    std::thread::JoinHandle<Sha256>,
);

/// SHA-256 of a stream, computed while it is copied. Buffers circulate between the copy
/// loop and the hasher, so memory stays at `HASH_BUFFERS` buffers whatever the size.
struct StreamHasher {
    inline: Option<Sha256>,
    worker: Option<HashWorker>,
    hashed: u64,
    spare: Vec<Vec<u8>>,
    allocated: usize,
}

impl StreamHasher {
    fn new() -> Self {
        StreamHasher {
            inline: Some(Sha256::new()),
            worker: None,
            hashed: 0,
            spare: Vec::new(),
            allocated: 0,
        }
    }

    /// A buffer to read into: a spare one, one the hasher has finished with, or a new one
    /// while fewer than `HASH_BUFFERS` exist.
    fn take_buffer(&mut self) -> Vec<u8> {
        if let Some((_, returned, _)) = &self.worker {
            self.spare.extend(returned.try_iter());
            if self.spare.is_empty()
                && self.allocated >= HASH_BUFFERS
                && let Ok(buf) = returned.recv()
            {
                return buf;
            }
        }
        self.spare.pop().unwrap_or_else(|| {
            // Most files are small: the first buffer is too, so a 4 KiB write does not
            // allocate and zero a full copy buffer.
            let size = if self.allocated == 0 {
                FIRST_BUFFER
            } else {
                COPY_BUFFER
            };
            self.allocated += 1;
            vec![0u8; size]
        })
    }

    /// Hashes `buf[..n]` (already written) and takes the buffer back.
    fn consume(&mut self, buf: Vec<u8>, n: usize) {
        self.hashed += n as u64;
        if self.worker.is_none() && self.hashed > HASH_THREAD_AFTER {
            let mut state = self.inline.take().unwrap_or_default();
            let (to_hasher, from_copy) =
                std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(HASH_BUFFERS);
            let (to_copy, returned) = std::sync::mpsc::channel();
            let handle = std::thread::spawn(move || {
                for (buf, n) in from_copy {
                    state.update(&buf[..n]);
                    // The copy loop may have finished and dropped its receiver.
                    let _ = to_copy.send(buf);
                }
                state
            });
            self.worker = Some((to_hasher, returned, handle));
        }
        match (&mut self.inline, &self.worker) {
            (_, Some((to_hasher, _, _))) => {
                // A send fails only if the hasher thread died; `finish` reports that.
                let _ = to_hasher.send((buf, n));
            }
            (Some(state), None) => {
                state.update(&buf[..n]);
                self.spare.push(buf);
            }
            (None, None) => {}
        }
    }

    fn finish(self) -> io::Result<String> {
        let state = match self.worker {
            Some((to_hasher, _, handle)) => {
                drop(to_hasher);
                handle
                    .join()
                    .map_err(|_| io::Error::other("hashing thread panicked"))?
            }
            None => self.inline.unwrap_or_default(),
        };
        Ok(hex::encode(state.finalize()))
    }
}

/// Copies `body` into a staged file while hashing it, refusing more than `max` bytes,
/// calling `on_chunk` with each chunk's length (for quota checks), then fsyncs. Returns
/// the SHA-256 and the size.
pub fn copy_hashed(
    body: &mut dyn Read,
    staged: &mut StagedFile<'_>,
    max: u64,
    mut on_chunk: impl FnMut(u64) -> Result<(), VaultError>,
) -> Result<(String, u64), VaultError> {
    let mut hasher = StreamHasher::new();
    let mut size: u64 = 0;
    loop {
        let mut buf = hasher.take_buffer();
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(VaultError::Upload(e)),
        };
        size += n as u64;
        if size > max {
            return Err(VaultError::TooLarge { limit: max });
        }
        on_chunk(n as u64)?;
        io::Write::write_all(staged, &buf[..n])?;
        hasher.consume(buf, n);
    }
    staged.sync()?;
    Ok((hasher.finish()?, size))
}
