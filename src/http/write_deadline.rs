//! A connection whose writes must make progress: when the client has taken nothing of a
//! response for the deadline (its receive window full, the socket's send buffer full),
//! the next write fails with `TimedOut` and hyper closes the connection.
//!
//! hyper bounds how long a client may take to send its headers, but nothing bounds how
//! long it may take to read a response. Without this, a client that starts a download or
//! an export and never reads holds its connection, its descriptors and (for an export)
//! a blocking thread for as long as it likes. The deadline restarts with every write
//! that makes progress, so a slow but steady reader is never cut.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner` with a deadline on every write that cannot proceed.
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Running while a write is blocked; reset by any write that makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After the inner write answered `Pending`: still pending, or `TimedOut` once the
    /// deadline since the write first blocked has passed.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took nothing of the response within the write deadline",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const LIMIT: Duration = Duration::from_secs(60);

    /// A reader that takes nothing: the write that fills the pipe fails at the deadline,
    /// not before. Time is paused, so the deadline passes without waiting.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_is_cut_at_the_deadline() {
        let (server, _client) = tokio::io::duplex(1024);
        let mut conn = WriteDeadline::new(server, LIMIT);
        let start = tokio::time::Instant::now();
        let chunk = [7u8; 256];
        let err = loop {
            if let Err(e) = conn.write_all(&chunk).await {
                break e;
            }
            assert!(start.elapsed() < LIMIT * 10, "never cut");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= LIMIT, "cut before the deadline");
    }

    /// A reader that takes a little every 50 s (under the deadline each time) is slow but
    /// steady: every byte arrives, however long the whole takes.
    #[tokio::test(start_paused = true)]
    async fn a_slow_steady_reader_is_never_cut() {
        let (server, mut client) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                tokio::time::sleep(Duration::from_secs(50)).await;
                match client.read(&mut buf).await.unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let mut conn = WriteDeadline::new(server, LIMIT);
        let body: Vec<u8> = (0..16 * 1024).map(|i| i as u8).collect();
        conn.write_all(&body).await.unwrap();
        conn.shutdown().await.unwrap();
        drop(conn);
        assert_eq!(reader.await.unwrap(), body);
    }
}
