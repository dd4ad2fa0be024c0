//! Response bodies written by blocking code (an export's archive, a tenant's copy for a
//! move): the producer runs on a blocking thread and writes through a bounded channel,
//! so memory stays at a few chunks whatever the size. Failure mid-stream is never
//! silent: the body stream then yields an error (also when the producer disappears
//! without its final "done", a panic), so hyper aborts the chunked response and the
//! client sees a transfer error, never a short body that looks complete.

use std::io::{self, Write};

use axum::body::Bytes;
use tokio::sync::mpsc;

const CHUNK: usize = 256 * 1024;
/// Chunks buffered between the producer and the socket: bounds memory.
const CHANNEL_CHUNKS: usize = 8;

enum Msg {
    Data(Bytes),
    Done,
    Failed(String),
}

/// A `Write` into the response channel that drops the first `skip` bytes and stops after
/// `limit` bytes (for ranges), in chunks. A client gone away is a `BrokenPipe` error.
pub struct ChannelWriter {
    tx: mpsc::Sender<Msg>,
    skip: u64,
    remaining: Option<u64>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Msg::Data(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let len = data.len();
        let mut data = data;
        if self.skip > 0 {
            let n = (self.skip as usize).min(data.len());
            self.skip -= n as u64;
            data = &data[n..];
        }
        if let Some(rem) = self.remaining.as_mut() {
            let n = (*rem as usize).min(data.len());
            *rem -= n as u64;
            data = &data[..n];
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(len)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// Runs `produce` on a blocking thread, its writes (less the first `skip` bytes, at most
/// `limit`) becoming the body; the body ends cleanly only if `produce` returns `Ok`
/// (after its writes are flushed), and with an error naming the failure otherwise.
pub fn blocking_body<F>(
    skip: u64,
    limit: Option<u64>,
    produce: F,
) -> impl futures_util::Stream<Item = io::Result<Bytes>>
where
    F: FnOnce(&mut ChannelWriter) -> Result<(), String> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Msg>(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            tx: tx.clone(),
            skip,
            remaining: limit,
            buf: Vec::with_capacity(CHUNK),
        };
        let end =
            match produce(&mut writer).and_then(|()| writer.flush().map_err(|e| e.to_string())) {
                Ok(()) => Msg::Done,
                Err(why) => Msg::Failed(why),
            };
        let _ = tx.blocking_send(end);
    });
    futures_util::stream::unfold((rx, false), |(mut rx, finished)| async move {
        if finished {
            return None;
        }
        match rx.recv().await {
            Some(Msg::Data(bytes)) => Some((Ok(bytes), (rx, false))),
            Some(Msg::Done) => None,
            Some(Msg::Failed(why)) => Some((Err(io::Error::other(why)), (rx, true))),
            // The producer vanished without "done" (a panic): never end the body cleanly.
            None => Some((Err(io::Error::other("stream aborted")), (rx, true))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_skipping() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut w = ChannelWriter {
            tx,
            skip: 3,
            remaining: Some(4),
            buf: Vec::new(),
        };
        w.write_all(b"abcdefghij").unwrap();
        w.flush().unwrap();
        match rx.try_recv().unwrap() {
            Msg::Data(b) => assert_eq!(&b[..], b"defg"),
            _ => panic!("expected data"),
        }
    }
}
