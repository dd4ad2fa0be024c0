//! What an operator sees of a running Coffer: Prometheus metrics and the access log,
//! both fed by one middleware around every request (`observe`).
//!
//! Labels are bounded: route templates (never paths, tenant ids or names), methods,
//! status classes, transfer kinds and problem codes (a closed set). Latency is a
//! histogram with fixed buckets, so scrapers can aggregate it and its memory is
//! constant. The access log has one INFO line per request with ids only (tenant and
//! user ids, the request id), never names, e-mails, paths or query text. A transfer
//! (upload, download, export, import) is measured to its last byte: its log line and
//! metrics are written when its body ends, or is dropped by a client that went away.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;
use super::error::{ApiError, ErrorCode};

/// Latency buckets, in seconds: from a cached authorization to a long export.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 1800.0,
];

/// The process-wide Prometheus recorder (installed once, on first use), with every
/// family described (`# HELP`, `# TYPE`).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            process_collector().describe();
            // Counters an alert watches exist from the start, at 0, not only after
            // their first event.
            for name in [
                "coffer_auth_failures_total",
                "coffer_logins_throttled_total",
                "coffer_quota_refusals_total",
            ] {
                counter!(name).absolute(0);
            }
            Some(handle)
        })
        .clone()
}

fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| metrics_process::Collector::new("coffer_"))
}

fn describe() {
    describe_counter!(
        "coffer_http_requests_total",
        Unit::Count,
        "HTTP requests answered, by route template, method and status class"
    );
    describe_histogram!(
        "coffer_http_request_duration_seconds",
        Unit::Seconds,
        "Time to the response headers, by route template, method and status class (transfers to their last byte: coffer_transfer_duration_seconds)"
    );
    describe_counter!(
        "coffer_http_received_bytes_total",
        Unit::Bytes,
        "Request body bytes (as declared by Content-Length), by route template"
    );
    describe_counter!(
        "coffer_http_sent_bytes_total",
        Unit::Bytes,
        "Response body bytes sent, by route template"
    );
    describe_counter!(
        "coffer_transfers_total",
        Unit::Count,
        "Uploads, downloads, exports and imports, by kind and status class"
    );
    describe_counter!(
        "coffer_transfer_bytes_total",
        Unit::Bytes,
        "Bytes moved by uploads and imports (received) and downloads and exports (sent), by kind"
    );
    describe_histogram!(
        "coffer_transfer_duration_seconds",
        Unit::Seconds,
        "Transfer time to the last byte, by kind"
    );
    describe_counter!(
        "coffer_http_errors_total",
        Unit::Count,
        "Error answers by problem code (quota-exceeded, too-many-attempts, too-many-uploads, ...)"
    );
    describe_counter!(
        "coffer_auth_failures_total",
        Unit::Count,
        "Requests refused for missing, expired or invalid credentials (401)"
    );
    describe_counter!(
        "coffer_logins_throttled_total",
        Unit::Count,
        "Sign-ins, password resets and sign-ups refused by the throttle"
    );
    describe_counter!(
        "coffer_quota_refusals_total",
        Unit::Count,
        "Writes refused because the tenant's quota is used up"
    );
    describe_gauge!(
        "coffer_open_vaults",
        Unit::Count,
        "Vaults open in the cache"
    );
    describe_gauge!(
        "coffer_upload_slots_in_use",
        Unit::Count,
        "Uploads and imports streaming now (of max_concurrent_uploads)"
    );
    describe_gauge!(
        "coffer_export_slots_in_use",
        Unit::Count,
        "Exports streaming now (of max_concurrent_exports)"
    );
    describe_gauge!(
        "coffer_blocking_jobs_in_flight",
        Unit::Count,
        "Requests' file and database work queued or running on the blocking pool"
    );
    describe_gauge!(
        "coffer_password_hash_slots_in_use",
        Unit::Count,
        "Password hashes running now (of max_concurrent_password_hashes)"
    );
    describe_gauge!(
        "coffer_tokio_alive_tasks",
        Unit::Count,
        "Tasks alive in the runtime (connections and background work)"
    );
    describe_gauge!(
        "coffer_tokio_global_queue_depth",
        Unit::Count,
        "Tasks waiting in the runtime's global queue (a growing queue means starved workers)"
    );
}

/// `GET /metrics`: the gauges read now, the process metrics, then the text format.
#[utoipa::path(get, path = "/metrics",
    responses(
        (status = 200, description = "Prometheus text exposition: aggregate counts by route template, never tenant names or ids", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 503, description = "Metrics are not enabled on this server (`metrics-unavailable`)"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let config = state.coffer.config();
    gauge!("coffer_open_vaults").set(state.coffer.open_vaults() as f64);
    gauge!("coffer_upload_slots_in_use")
        .set(state.bodies.slots().in_use(config.max_concurrent_uploads) as f64);
    gauge!("coffer_export_slots_in_use").set(
        state
            .bodies
            .export_slots()
            .in_use(config.max_concurrent_exports) as f64,
    );
    let runtime = tokio::runtime::Handle::current().metrics();
    gauge!("coffer_tokio_alive_tasks").set(runtime.num_alive_tasks() as f64);
    gauge!("coffer_tokio_global_queue_depth").set(runtime.global_queue_depth() as f64);
    gauge!("coffer_blocking_jobs_in_flight").set(super::extract::blocking_in_flight() as f64);
    gauge!("coffer_password_hash_slots_in_use").set(state.passwords.in_use() as f64);
    process_collector().collect();
    match &state.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            )],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::MetricsUnavailable,
            "no metrics recorder",
        )
        .into_response(),
    }
}

/// Who a request was for, filled in by `authorize` once it knows (ids only).
#[derive(Clone, Default)]
pub struct LogIds(Arc<OnceLock<(Option<String>, Option<String>)>>);

impl LogIds {
    /// Records the tenant and user ids of this request (first call wins).
    pub fn set(&self, tenant: Option<String>, user: Option<String>) {
        let _ = self.0.set((tenant, user));
    }

    fn get(&self) -> (Option<&str>, Option<&str>) {
        self.0
            .get()
            .map_or((None, None), |(t, u)| (t.as_deref(), u.as_deref()))
    }
}

/// The four transfers measured to their last byte.
#[derive(Clone, Copy)]
enum Transfer {
    Upload,
    Download,
    Export,
    Import,
}

impl Transfer {
    fn of(method: &Method, route: &str) -> Option<Transfer> {
        match (method.as_str(), route) {
            ("PUT", "/api/v1/tenants/{tenant}/files/{*path}") => Some(Transfer::Upload),
            ("GET", "/api/v1/tenants/{tenant}/files/{*path}") => Some(Transfer::Download),
            ("GET", "/api/v1/tenants/{tenant}/export") => Some(Transfer::Export),
            ("POST", "/api/v1/tenants/{tenant}/import") => Some(Transfer::Import),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transfer::Upload => "upload",
            Transfer::Download => "download",
            Transfer::Export => "export",
            Transfer::Import => "import",
        }
    }

    /// Whether the bytes that count are the response's (sent) rather than the request's.
    fn sends(self) -> bool {
        matches!(self, Transfer::Download | Transfer::Export)
    }
}

/// One request's facts; its access-log line and transfer metrics are written when it
/// is dropped: at once for a plain response, at the end of the body for a streamed one.
struct Finished {
    method: Method,
    route: String,
    status: StatusCode,
    request_id: String,
    ids: LogIds,
    start: Instant,
    /// Request body bytes: counted as the handler reads them for uploads and imports,
    /// declared (Content-Length or an exact size) for the rest.
    received: Arc<AtomicU64>,
    sent: u64,
    transfer: Option<Transfer>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        let received = self.received.load(Ordering::Relaxed);
        counter!("coffer_http_received_bytes_total", "route" => self.route.clone())
            .increment(received);
        counter!("coffer_http_sent_bytes_total", "route" => self.route.clone())
            .increment(self.sent);
        if let Some(kind) = self.transfer {
            let class = status_class(self.status);
            counter!("coffer_transfers_total", "kind" => kind.name(), "status" => class)
                .increment(1);
            let bytes = if kind.sends() { self.sent } else { received };
            // By status class too: a refused import's body or a 404's problem text is
            // not counted as the traffic of a transfer that happened.
            counter!("coffer_transfer_bytes_total", "kind" => kind.name(), "status" => class)
                .increment(bytes);
            histogram!("coffer_transfer_duration_seconds", "kind" => kind.name(), "status" => class)
                .record(elapsed.as_secs_f64());
        }
        let (tenant, user) = self.ids.get();
        tracing::info!(
            target: "coffer::access",
            method = %self.method,
            route = %self.route,
            status = self.status.as_u16(),
            ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            bytes_in = received,
            bytes_out = self.sent,
            request_id = %self.request_id,
            tenant = tenant.unwrap_or("-"),
            user = user.unwrap_or("-"),
            "request"
        );
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// A method as a label: the standard ones by name, anything else a client invents as
/// `other`, so a stream of made-up methods cannot grow the series without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The middleware: counts, times and logs every request.
pub async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let transfer = Transfer::of(&method, &route);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| axum::body::HttpBody::size_hint(req.body()).exact())
        .unwrap_or(0);
    let received = Arc::new(AtomicU64::new(0));
    let req = match transfer {
        Some(kind) if !kind.sends() => {
            let tally = received.clone();
            req.map(|body| {
                Body::from_stream(body.into_data_stream().map(move |chunk| {
                    if let Ok(bytes) = &chunk {
                        tally.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    }
                    chunk
                }))
            })
        }
        _ => {
            received.store(declared, Ordering::Relaxed);
            req
        }
    };
    let mut req = req;
    let ids = LogIds::default();
    req.extensions_mut().insert(ids.clone());
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status();
    let class = status_class(status);
    let method_label = method_label(&method);
    counter!("coffer_http_requests_total", "route" => route.clone(), "method" => method_label, "status" => class)
        .increment(1);
    histogram!("coffer_http_request_duration_seconds", "route" => route.clone(), "method" => method_label, "status" => class)
        .record(start.elapsed().as_secs_f64());
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        counter!("coffer_http_errors_total", "code" => code.as_str()).increment(1);
        match code {
            ErrorCode::TooManyAttempts => counter!("coffer_logins_throttled_total").increment(1),
            ErrorCode::QuotaExceeded => counter!("coffer_quota_refusals_total").increment(1),
            _ => {}
        }
    }
    if status == StatusCode::UNAUTHORIZED {
        counter!("coffer_auth_failures_total").increment(1);
    }
    let mut finished = Finished {
        method,
        route,
        status,
        request_id,
        ids,
        start,
        received,
        sent: 0,
        transfer,
    };
    // A streamed body is counted as it goes; the line is written when it ends.
    let exact = axum::body::HttpBody::size_hint(response.body()).exact();
    match (transfer, exact) {
        (Some(kind), _) if kind.sends() => {
            let (parts, body) = response.into_parts();
            let counted = body.into_data_stream().map(move |chunk| {
                // The whole `finished` moves into the stream (not just its `sent`
                // field), so its line is written when the stream is dropped.
                let tally = &mut finished;
                if let Ok(bytes) = &chunk {
                    tally.sent += bytes.len() as u64;
                }
                chunk
            });
            Response::from_parts(parts, Body::from_stream(counted))
        }
        (_, exact) => {
            finished.sent = exact.unwrap_or(0);
            response
        }
    }
}
