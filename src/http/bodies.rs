//! Bodies that stream between a client and a vault (uploads and imports in, exports
//! out): a bounded number at once, and each upload cut off when it stalls or trickles.
//!
//! Each streaming body holds a blocking thread while it is written into the vault (or
//! the archive is written out of it), so their number is capped globally and per tenant,
//! uploads and exports separately (`StreamSlots`, 503 with `Retry-After` beyond it):
//! however many clients stall, the blocking pool keeps room for everyone else, and
//! exports cannot crowd out uploads. An export whose client stops reading is cut by the
//! connection's write deadline (`server`), which frees its thread and slot. A body that sends nothing for `upload_idle_timeout_secs`, or averages less than
//! `upload_min_bytes_per_sec` after the grace period, ends with a timeout error, and the
//! vault discards what was staged.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ApiError, ErrorCode};
use crate::config::Config;
use crate::db;
use crate::names::TenantId;

/// How long a refused client is asked to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Slots for one kind of streaming body, globally and per tenant.
pub struct StreamSlots {
    global: Arc<Semaphore>,
    per_tenant: Arc<Mutex<HashMap<TenantId, usize>>>,
    per_tenant_max: usize,
    code: ErrorCode,
    what: &'static str,
}

/// One body's slot; released when dropped.
pub struct StreamSlot {
    _global: OwnedSemaphorePermit,
    per_tenant: Arc<Mutex<HashMap<TenantId, usize>>>,
    tenant: TenantId,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut map = db::lock(&self.per_tenant);
        if let Some(n) = map.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.tenant);
            }
        }
    }
}

impl StreamSlots {
    /// Slots for uploads and imports.
    pub fn uploads(config: &Config) -> StreamSlots {
        StreamSlots::new(
            config.max_concurrent_uploads,
            config.max_concurrent_uploads_per_tenant,
            ErrorCode::TooManyUploads,
            "uploads",
        )
    }

    /// Slots for exports.
    pub fn exports(config: &Config) -> StreamSlots {
        StreamSlots::new(
            config.max_concurrent_exports,
            config.max_concurrent_exports_per_tenant,
            ErrorCode::TooManyExports,
            "exports",
        )
    }

    fn new(global: usize, per_tenant: usize, code: ErrorCode, what: &'static str) -> Self {
        StreamSlots {
            global: Arc::new(Semaphore::new(global.max(1))),
            per_tenant: Arc::default(),
            per_tenant_max: per_tenant.max(1),
            code,
            what,
        }
    }

    /// A slot for a body of `tenant`, or 503 at once (never a wait: a waiting request
    /// would hold its connection anyway).
    pub fn try_acquire(&self, tenant: TenantId) -> Result<StreamSlot, ApiError> {
        let busy = |scope: &str| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                self.code,
                format!("too many {} in progress {scope}; retry shortly", self.what),
            )
            .with_retry_after(RETRY_AFTER)
        };
        let global = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy("on this server"))?;
        let mut map = db::lock(&self.per_tenant);
        let n = map.entry(tenant).or_insert(0);
        if *n >= self.per_tenant_max {
            return Err(busy("for this tenant"));
        }
        *n += 1;
        Ok(StreamSlot {
            _global: global,
            per_tenant: self.per_tenant.clone(),
            tenant,
        })
    }

    /// Slots in use now (for metrics).
    pub fn in_use(&self, capacity: usize) -> usize {
        capacity.saturating_sub(self.global.available_permits())
    }
}

/// The pace a streaming body must keep.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub idle: Duration,
    pub min_bytes_per_sec: u64,
    pub grace: Duration,
}

impl Pace {
    pub fn from_config(config: &Config) -> Pace {
        Pace {
            idle: Duration::from_secs(config.upload_idle_timeout_secs.max(1)),
            min_bytes_per_sec: config.upload_min_bytes_per_sec,
            grace: Duration::from_secs(config.upload_min_rate_grace_secs),
        }
    }
}

fn timed_out(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, why)
}

/// The body as a stream of chunks that ends in a `TimedOut` error when the client stalls
/// (`pace.idle` without a byte) or trickles (below `pace.min_bytes_per_sec` on average
/// after `pace.grace`).
pub fn paced(body: Body, pace: Pace) -> impl Stream<Item = io::Result<Bytes>> + Send {
    // tokio's clock, so that tests with paused time can drive the deadlines.
    let start = tokio::time::Instant::now();
    futures_util::stream::unfold(
        (body.into_data_stream(), 0u64, false),
        move |(mut s, total, failed)| async move {
            if failed {
                return None;
            }
            let next = match tokio::time::timeout(pace.idle, s.next()).await {
                Ok(Some(Ok(bytes))) => bytes,
                Ok(Some(Err(e))) => return Some((Err(io::Error::other(e)), (s, total, true))),
                Ok(None) => return None,
                Err(_) => return Some((Err(timed_out("upload stalled")), (s, total, true))),
            };
            let total = total + next.len() as u64;
            let elapsed = start.elapsed();
            if elapsed > pace.grace
                && pace.min_bytes_per_sec > 0
                && (total as f64) < pace.min_bytes_per_sec as f64 * elapsed.as_secs_f64()
            {
                return Some((Err(timed_out("upload too slow")), (s, total, true)));
            }
            Some((Ok(next), (s, total, false)))
        },
    )
}

/// The streaming-body limits of a server, as handlers take them (`State<Bodies>`).
#[derive(Clone)]
pub struct Bodies {
    slots: Arc<StreamSlots>,
    exports: Arc<StreamSlots>,
    pace: Pace,
}

impl Bodies {
    pub fn new(config: &Config) -> Bodies {
        Bodies {
            slots: Arc::new(StreamSlots::uploads(config)),
            exports: Arc::new(StreamSlots::exports(config)),
            pace: Pace::from_config(config),
        }
    }

    /// A slot for an export of `tenant` (or 503), held until its archive is written.
    pub fn admit_export(&self, tenant: TenantId) -> Result<StreamSlot, ApiError> {
        self.exports.try_acquire(tenant)
    }

    /// A slot for a body into `tenant` (or 503) and the body as a paced reader for the
    /// blocking thread that writes it into the vault. The slot must live until the
    /// reader is done.
    pub fn admit(
        &self,
        tenant: TenantId,
        body: Body,
    ) -> Result<(StreamSlot, impl io::Read + Send + 'static), ApiError> {
        let slot = self.slots.try_acquire(tenant)?;
        let stream = Box::pin(paced(body, self.pace));
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        Ok((slot, reader))
    }

    /// A slot for a body into `tenant` (or 503) and the body itself, paced, for a consumer
    /// that reads it asynchronously (WebDAV's PUT). The slot must live until it is read.
    pub fn admit_body(&self, tenant: TenantId, body: Body) -> Result<(StreamSlot, Body), ApiError> {
        let slot = self.slots.try_acquire(tenant)?;
        Ok((slot, Body::from_stream(paced(body, self.pace))))
    }

    pub fn slots(&self) -> &StreamSlots {
        &self.slots
    }

    pub fn export_slots(&self) -> &StreamSlots {
        &self.exports
    }
}

/// Password hashing is the one step whose memory (argon2id, 19 MiB each) a client can
/// make the server spend at will. At most `max_concurrent_password_hashes` run at once;
/// others wait at most `password_queue_secs`, then get 503 with `Retry-After`, so memory
/// stays bounded whatever the number of simultaneous logins.
#[derive(Clone)]
pub struct PasswordGate {
    permits: Arc<Semaphore>,
    capacity: usize,
    queue: Duration,
}

impl PasswordGate {
    pub fn new(config: &Config) -> PasswordGate {
        let n = match config.max_concurrent_password_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        PasswordGate {
            permits: Arc::new(Semaphore::new(n)),
            capacity: n,
            queue: Duration::from_secs(config.password_queue_secs),
        }
    }

    /// Hashing turns taken now.
    pub fn in_use(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// A turn to hash a password, held until dropped.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(self.queue, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TooManyLogins,
                "too many sign-ins at once; retry shortly",
            )
            .with_retry_after(RETRY_AFTER)),
        }
    }
}
