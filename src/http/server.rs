//! The server loop: accepting connections and serving them with hyper, with the limits
//! that keep one client (or many) from starving the rest.
//!
//! - A client must send a request's complete headers within `header_read_timeout_secs`
//!   of the connection opening or of its previous response: silent, trickling and idle
//!   kept-alive connections are closed.
//! - At most `max_connections` connections are open; past it, new ones wait in the
//!   listen backlog rather than take descriptors the vaults need. At most
//!   `max_connections_per_ip` come from one client address.
//! - The soft descriptor limit is raised to the hard one at start, and the connection cap
//!   derived from it leaves room for the vault cache and the databases. One address (an
//!   IPv6 /64) holds at most a quarter of the connections.
//! - An accept error (descriptors exhausted) backs off instead of spinning.
//! - A client that takes nothing of a response for `response_write_timeout_secs` is
//!   disconnected (`WriteDeadline`), so an unread download or export holds nothing.
//!
//! - Under TLS (`tls_cert_file`), a client must finish its handshake within the header
//!   timeout too; ALPN then chooses HTTP/2 or HTTP/1.1. HTTP/2 streams per connection are
//!   capped (`H2_MAX_STREAMS`), so one connection cannot multiply itself.
//!
//! Plain HTTP speaks HTTP/1.1 only (browsers use HTTP/2 over TLS, where ALPN chooses it
//! up front), so no connection is held in protocol detection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppState;
use super::tls::Certificates;
use super::write_deadline::WriteDeadline;
use crate::config::Config;
use crate::db;

/// Descriptors kept free for what is not a connection: the vault cache (about 7 per open
/// vault), the databases, the spool and export files.
fn reserved_descriptors(config: &Config) -> usize {
    config.vault_cache_capacity() * crate::config::DESCRIPTORS_PER_VAULT + 256
}

/// Raises the soft descriptor limit to the hard one and returns the connection cap:
/// the configured one, or what the limit leaves after the reserve.
pub fn connection_cap(config: &Config) -> usize {
    let limit = crate::config::descriptor_limit();
    let derived = limit.saturating_sub(reserved_descriptors(config)).max(16);
    match config.max_connections {
        0 => derived,
        n => n.min(derived),
    }
}

/// Open connections per client address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One accepted connection's share of the caps; released when the connection ends.
struct ConnectionSlot {
    _global: OwnedSemaphorePermit,
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut map = db::lock(&self.per_ip.0);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// How long open requests may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs the server on `listener` until `shutdown` completes, then stops accepting and
/// lets open requests finish.
/// Concurrent requests on one HTTP/2 connection.
const H2_MAX_STREAMS: u32 = 64;

/// Serves `listener` until `shutdown`: plain HTTP/1.1, or TLS with `tls`.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    tls: Option<Arc<Certificates>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.coffer().config().clone();
    let acceptor = match &tls {
        Some(certs) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
            certs
                .server_config(config.tls_allow_tls12)
                .map_err(std::io::Error::other)?,
        ))),
        None => None,
    };
    // Always: SIGHUP (`systemctl reload`) must never end the process, TLS or not.
    let reloader = spawn_certificate_reloader(tls);
    let cap = connection_cap(&config);
    let global = Arc::new(Semaphore::new(cap));
    let per_ip = Arc::new(PerIp::default());
    let proxies: Vec<ipnet::IpNet> = state.trusted_proxies().to_vec();
    let touches = spawn_touch_flusher(state.coffer().auth().clone());
    let upkeep = spawn_metrics_upkeep();
    let auth = state.coffer().auth().clone();
    let router = super::app(state);
    let header_timeout = Duration::from_secs(config.header_read_timeout_secs.max(1));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(Some(header_timeout))
        .keep_alive_timeout(header_timeout);
    let write_deadline = Duration::from_secs(config.response_write_timeout_secs.max(1));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // One address (an IPv6 /64) never holds more than a quarter of all connections,
    // whatever the configured per-address cap.
    let per_ip_cap = config.max_connections_per_ip.min((cap / 4).max(1));
    if cap < 256 {
        tracing::warn!(
            max_connections = cap,
            "few connections fit in the descriptor limit; raise it (LimitNOFILE) or lower vault_cache_capacity"
        );
    }
    tracing::info!(
        max_connections = cap,
        max_per_address = per_ip_cap,
        "accepting connections"
    );
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(10);
    loop {
        // Wait for room before accepting: a connection over the cap stays in the backlog
        // and costs no descriptor.
        let permit = tokio::select! {
            p = global.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener, &mut backoff) => match accepted {
                Some(a) => a,
                None => continue,
            },
            () = &mut shutdown => break,
        };
        // A trusted proxy carries many clients: only the global cap applies to it (the
        // client address is not known before the headers are read).
        let max_per_ip = if proxies.iter().any(|net| net.contains(&peer.ip())) {
            usize::MAX
        } else {
            per_ip_cap
        };
        let client = crate::auth::throttle::client_group(peer.ip());
        let Some(slot) = admit(&per_ip, permit, client, max_per_ip) else {
            continue;
        };
        // Small responses on a keep-alive connection must not wait for a delayed ACK.
        let _ = stream.set_nodelay(true);
        let service = connection_service(router.clone(), peer);
        let stream = WriteDeadline::new(stream, write_deadline);
        let Some(acceptor) = &acceptor else {
            let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
            continue;
        };
        let (acceptor, watcher) = (acceptor.clone(), graceful.watcher());
        let (http, http2) = (http.clone(), http2.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(tls);
            let ended = if h2 {
                watcher.watch(http2.serve_connection(io, service)).await
            } else {
                watcher.watch(http.serve_connection(io, service)).await
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Open requests get a while to finish; a client that never reads does not hold the
    // shutdown (nor the final flush below) forever.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing");
    }
    touches.abort();
    upkeep.abort();
    reloader.abort();
    flush_touches(auth).await;
    Ok(())
}

/// Serves `/metrics` alone on the separate `metrics_listen` address (loopback or a
/// private network, where the scraper is): no other route answers there.
pub async fn serve_metrics(state: AppState, listener: TcpListener) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", axum::routing::get(super::telemetry::metrics))
        .with_state(state);
    axum::serve(listener, router).await
}

/// One accepted connection, or `None` after an accept error (descriptors exhausted and
/// the like), having backed off first: the condition clears as connections end, and the
/// loop must not spin meanwhile. The back-off doubles up to a second and resets on
/// success.
async fn accept(
    listener: &TcpListener,
    backoff: &mut Duration,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(accepted) => {
            *backoff = Duration::from_millis(10);
            Some(accepted)
        }
        Err(e) => {
            tracing::warn!(error = %e, "accept failed; backing off");
            tokio::time::sleep(*backoff).await;
            *backoff = (*backoff * 2).min(Duration::from_secs(1));
            None
        }
    }
}

/// How often the certificate files are checked for a change (a renewal by certbot or
/// an ACME client is picked up without a signal).
const CERTIFICATE_POLL: Duration = Duration::from_secs(30);

/// Handles SIGHUP (the default action would end the process) and reloads the
/// certificate on it and when its files change. A pair that does not load is logged
/// and the previous one stays in service. Without TLS, SIGHUP is only logged.
fn spawn_certificate_reloader(certs: Option<Arc<Certificates>>) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed before the task first runs: a SIGHUP right after start is handled too.
    let mut hangup = signal(SignalKind::hangup()).ok();
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(CERTIFICATE_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                Some(()) = async { match &mut hangup { Some(h) => h.recv().await, None => None } } => true,
                _ = poll.tick() => false,
            };
            let Some(certs) = certs.clone() else {
                if forced {
                    tracing::info!("SIGHUP: no TLS certificate configured, nothing to reload");
                }
                continue;
            };
            let outcome = tokio::task::spawn_blocking(move || {
                let reloaded = if forced {
                    certs.reload().map(|()| true)
                } else {
                    certs.reload_if_changed()
                };
                (reloaded, certs.fingerprint())
            })
            .await;
            match outcome {
                Ok((Ok(true), fingerprint)) => {
                    tracing::info!(%fingerprint, "TLS certificate loaded");
                }
                Ok((Ok(false), _)) => {}
                Ok((Err(e), fingerprint)) => tracing::error!(
                    error = %e,
                    %fingerprint,
                    "TLS certificate not reloaded; the previous one stays in service"
                ),
                Err(e) => tracing::error!(error = %e, "certificate reload panicked"),
            }
        }
    })
}

/// Drains the metrics recorder's histogram samples into its summaries every few
/// seconds. The recorder keeps every latency sample until then, so without this a
/// server nobody scrapes would grow by every request it answers.
fn spawn_metrics_upkeep() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(handle) = super::telemetry::metrics_handle() else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

/// How often noted session and token usage is written.
const TOUCH_FLUSH_EVERY: Duration = Duration::from_secs(5);

async fn flush_touches(auth: Arc<crate::auth::Auth>) {
    match tokio::task::spawn_blocking(move || auth.flush_touches()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not record session and token usage"),
        Err(e) => tracing::warn!(error = %e, "usage flush panicked"),
    }
}

/// Writes noted usage (sessions seen, tokens used) every few seconds, off the request
/// path.
fn spawn_touch_flusher(auth: Arc<crate::auth::Auth>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TOUCH_FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            flush_touches(auth.clone()).await;
        }
    })
}

/// Counts the connection against its address, or refuses it (dropped at once) when that
/// address has too many open.
fn admit(
    per_ip: &Arc<PerIp>,
    permit: OwnedSemaphorePermit,
    ip: IpAddr,
    max_per_ip: usize,
) -> Option<ConnectionSlot> {
    let mut map = db::lock(&per_ip.0);
    let n = map.entry(ip).or_insert(0);
    if *n >= max_per_ip {
        // Debug, not warn: a client at its cap would otherwise flood the log.
        tracing::debug!(%ip, "too many connections from one address; refused");
        return None;
    }
    *n += 1;
    Some(ConnectionSlot {
        _global: permit,
        per_ip: per_ip.clone(),
        ip,
    })
}

/// The router as a hyper service for one connection, with the peer address attached to
/// every request (`ConnectInfo`).
fn connection_service(
    router: Router,
    peer: SocketAddr,
) -> hyper_util::service::TowerToHyperService<
    impl tower::Service<
        axum::http::Request<hyper::body::Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone,
> {
    let service = tower::util::MapRequest::new(
        router,
        move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.map(axum::body::Body::new)
        },
    );
    hyper_util::service::TowerToHyperService::new(service)
}
