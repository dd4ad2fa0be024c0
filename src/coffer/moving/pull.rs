//! The node-to-node pull of a tenant's copy: one `GET` to the node holding the tenant,
//! over HTTP/1.1 (hyper's client), TLS when the node's address is `https://` (rustls,
//! verified against `node_ca_file` and the address's host). The body is handed to the
//! caller as a blocking `Read`: the request runs on its own thread and runtime, so a
//! caller on any thread (the CLI, a test inside a runtime) can read it, and a bounded
//! channel keeps at most a few chunks in memory.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header;
use tokio::net::TcpStream;

/// Chunks buffered between the socket and the reader.
const CHANNEL_CHUNKS: usize = 16;
/// How long reaching the other node, and its answer, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the copy may stall between two chunks before the pull gives up (a node gone
/// silent must not keep the tenant fenced for ever; running the move again resumes).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest error body read from the other node.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// The body of a pull, as it arrives.
pub struct PullBody {
    chunks: Receiver<io::Result<Bytes>>,
    current: Bytes,
    /// The bytes the other node announced its files at (`COPY_BYTES_HEADER`).
    pub announced: Option<u64>,
}

/// The header a node announces a copy's size in: its files and trash, as its index
/// counts them, plus the index itself.
pub const COPY_BYTES_HEADER: &str = "x-coffer-copy-bytes";

impl Read for PullBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => return Err(e),
                // The sender ends the stream only after the body's last frame.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Starts `GET {base}{path}` (or, with a JSON `body`, `POST`) with `token` as bearer;
/// returns the body once the other node answered 200, or its refusal (status and
/// message) as an error.
pub fn pull(
    base: &str,
    path: &str,
    token: &str,
    ca_file: Option<&Path>,
    body: Option<Vec<u8>>,
) -> io::Result<PullBody> {
    let (https, authority) = match (base.strip_prefix("https://"), base.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (_, Some(rest)) => (false, rest),
        _ => {
            return Err(io::Error::other(format!(
                "{base} is not an http(s) address"
            )));
        }
    };
    let authority = authority.trim_end_matches('/').to_owned();
    let tls = if https {
        let Some(ca_file) = ca_file else {
            return Err(io::Error::other(
                "pulling from an https:// node needs node_ca_file: the authority that signed \
                 the nodes' certificates",
            ));
        };
        Some(client_config(ca_file)?)
    } else {
        None
    };
    let request = match &body {
        None => hyper::Request::get(path),
        Some(_) => hyper::Request::post(path).header(header::CONTENT_TYPE, "application/json"),
    };
    let request = request
        .header(header::HOST, &authority)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::USER_AGENT,
            concat!("coffer/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(io::Error::other)?;
    let (tx, rx) = sync_channel(CHANNEL_CHUNKS);
    let (head_tx, head_rx) = sync_channel(1);
    std::thread::Builder::new()
        .name("coffer-pull".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = head_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(run(authority, tls, request, head_tx, tx));
        })?;
    let announced = head_rx
        .recv()
        .map_err(|_| io::Error::other("the pull ended before an answer"))??;
    Ok(PullBody {
        chunks: rx,
        current: Bytes::new(),
        announced,
    })
}

async fn run(
    authority: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    request: hyper::Request<Full<Bytes>>,
    head: SyncSender<io::Result<Option<u64>>>,
    chunks: SyncSender<io::Result<Bytes>>,
) {
    let answered = tokio::time::timeout(CONNECT_TIMEOUT, send(&authority, tls, request)).await;
    let response = match answered {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            let _ = head.send(Err(e));
            return;
        }
        Err(_) => {
            let _ = head.send(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("node {authority} did not answer within {CONNECT_TIMEOUT:?}"),
            )));
            return;
        }
    };
    let status = response.status();
    let announced = response
        .headers()
        .get(COPY_BYTES_HEADER)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut body = response.into_body();
    if !status.is_success() {
        let mut message = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                message.extend_from_slice(&data);
            }
            if message.len() > MAX_ERROR_BODY {
                break;
            }
        }
        let message = serde_json::from_slice::<serde_json::Value>(&message)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&message).into_owned());
        let _ = head.send(Err(io::Error::other(format!(
            "node {authority} answered {status}: {message}"
        ))));
        return;
    }
    let _ = head.send(Ok(announced));
    loop {
        let Ok(frame) = tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await else {
            let _ = chunks.send(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the copy's transfer from {authority} stalled for {IDLE_TIMEOUT:?}"),
            )));
            return;
        };
        match frame {
            None => return,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && chunks.send(Ok(data)).is_err()
                {
                    return; // the reader gave up
                }
            }
            Some(Err(e)) => {
                let _ = chunks.send(Err(io::Error::other(format!(
                    "the copy's transfer from {authority} broke off: {e}"
                ))));
                return;
            }
        }
    }
}

async fn send(
    authority: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    request: hyper::Request<Full<Bytes>>,
) -> io::Result<hyper::Response<hyper::body::Incoming>> {
    let tcp = TcpStream::connect(authority)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot reach node at {authority}: {e}")))?;
    tcp.set_nodelay(true)?;
    match tls {
        None => exchange(hyper_util::rt::TokioIo::new(tcp), request).await,
        Some(config) => {
            let host = authority
                .rsplit_once(':')
                .map_or(authority, |(host, _)| host)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| io::Error::other(format!("{host}: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            exchange(hyper_util::rt::TokioIo::new(stream), request).await
        }
    }
}

async fn exchange<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> io::Result<hyper::Response<hyper::body::Incoming>>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "node-to-node connection ended");
        }
    });
    sender.send_request(request).await.map_err(io::Error::other)
}

/// TLS to the other nodes: their certificates must chain to the authority in `ca_file`.
fn client_config(ca_file: &Path) -> io::Result<Arc<rustls::ClientConfig>> {
    crate::http::tls::client_config(ca_file)
        .map(Arc::new)
        .map_err(|e| io::Error::other(format!("node_ca_file {e}")))
}
