//! Export and import over HTTP.
//!
//! An export streams from a blocking task through a bounded channel into the response
//! body. Failure mid-stream is never silent: the body stream then yields an error (also
//! when the producer disappears without its final "done"), so hyper aborts the chunked
//! response and the client sees a transfer error, never a short archive that looks
//! complete. Resume works because archives are deterministic: the ETag names the snapshot
//! (vault state plus audit cursor); a `Range` request whose `If-Range` still matches
//! regenerates the same bytes, skips to the offset, and fails rather than splice two
//! different archives if the vault changed meanwhile.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::AppState;
use super::error::ApiError;
use super::extract::blocking;
use crate::audit::{AuditAction, Outcome};
use crate::auth::TenantAccess;
use crate::export::import::{ConflictPolicy, ImportError, import_archive};
use crate::export::{ExportError, ExportOptions, Snapshot, write_archive};

const CHUNK: usize = 256 * 1024;
/// Chunks buffered between the archive writer and the socket: bounds memory.
const CHANNEL_CHUNKS: usize = 8;

enum Msg {
    Data(Bytes),
    Done,
    Failed(String),
}

/// A `Write` into the response channel that drops the first `skip` bytes and stops after
/// `limit` bytes (for ranges), in chunks.
struct ChannelWriter {
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

/// Counts bytes (for the size of an archive that must be known before a range).
struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0 += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn export_error(e: ExportError) -> ApiError {
    match e {
        ExportError::Vault(v) => v.into(),
        ExportError::Changed => {
            ApiError::new(StatusCode::CONFLICT, "export-changed", e.to_string())
        }
        other => ApiError::internal(other),
    }
}

/// `bytes=X-` or `bytes=X-Y` (a single range).
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start, end))
}

pub async fn export(
    State(state): State<AppState>,
    Extension(access): Extension<TenantAccess>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let range = header(header::RANGE).and_then(|r| parse_range(&r));
    let if_range = header(header::IF_RANGE);
    // A resume names its snapshot through If-Range; only then is a Range honoured.
    let resume_cursor = match (&range, &if_range) {
        (Some(_), Some(tag)) => Snapshot::cursor_of_etag(tag),
        _ => None,
    };
    let coffer = state.coffer.clone();
    let snap_access = access.clone();
    let snapshot = blocking(move || {
        Snapshot::take(
            &snap_access.vault,
            &snap_access.tenant,
            &coffer.audit,
            resume_cursor,
        )
        .map_err(export_error)
    })
    .await?;
    let resuming =
        range.is_some() && if_range.as_deref().map(str::trim) == Some(snapshot.etag.as_str());
    let date = snapshot.as_of.get(..10).unwrap_or("export").to_owned();
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}-{date}.zip\"", access.tenant.slug),
        )
        .header(header::ETAG, snapshot.etag.as_str())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-store");
    if method == Method::HEAD {
        return builder
            .status(StatusCode::OK)
            .body(Body::empty())
            .map_err(ApiError::internal);
    }

    let (skip, limit, status) = if resuming {
        // The full size is known from the first download, or counted by a dry run.
        let cached = state
            .export_sizes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&snapshot.etag)
            .copied();
        let size = match cached {
            Some(size) => size,
            None => {
                let (a, coffer, tag) =
                    (access.clone(), state.coffer.clone(), snapshot.etag.clone());
                let cursor = snapshot.audit_until_seq;
                blocking(move || {
                    let snap = Snapshot::take(&a.vault, &a.tenant, &coffer.audit, Some(cursor))
                        .map_err(export_error)?;
                    if snap.etag != tag {
                        return Err(export_error(ExportError::Changed));
                    }
                    let mut sink = CountingSink(0);
                    write_archive(
                        &snap,
                        &a.vault,
                        &coffer.audit,
                        &mut sink,
                        ExportOptions {
                            strict: true,
                            progress: None,
                        },
                    )
                    .map_err(export_error)?;
                    Ok(sink.0)
                })
                .await?
            }
        };
        let (start, end) = range.unwrap_or((0, None));
        let end = end.unwrap_or(size - 1).min(size.saturating_sub(1));
        if start >= size || start > end {
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "the range is outside the archive",
            )
            .with_content_range_size(size));
        }
        builder = builder
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"))
            .header(header::CONTENT_LENGTH, end - start + 1);
        (start, Some(end - start + 1), StatusCode::PARTIAL_CONTENT)
    } else {
        (0, None, StatusCode::OK)
    };

    let (tx, rx) = mpsc::channel::<Msg>(CHANNEL_CHUNKS);
    let coffer = state.coffer.clone();
    let sizes = state.export_sizes.clone();
    let caller = access.caller.clone();
    tokio::task::spawn_blocking(move || {
        let _ = coffer.audit.append(
            &caller
                .event(AuditAction::ExportStart)
                .tenant(access.tenant.id)
                .detail(serde_json::json!({ "audit_until_seq": snapshot.audit_until_seq, "offset": skip })),
        );
        let mut writer = ChannelWriter {
            tx: tx.clone(),
            skip,
            remaining: limit,
            buf: Vec::with_capacity(CHUNK),
        };
        let mut counter = CountingSink(0);
        let result = {
            let mut tee = Tee {
                a: &mut writer,
                b: &mut counter,
            };
            write_archive(
                &snapshot,
                &access.vault,
                &coffer.audit,
                &mut tee,
                ExportOptions {
                    strict: resuming,
                    progress: None,
                },
            )
            .and_then(|m| tee.flush().map(|()| m).map_err(ExportError::Io))
        };
        let outcome = match result {
            Ok(_) => {
                if skip == 0 && limit.is_none() {
                    let mut map = sizes.lock().unwrap_or_else(|p| p.into_inner());
                    if map.len() > 256 {
                        map.clear();
                    }
                    map.insert(snapshot.etag.clone(), counter.0);
                }
                let _ = tx.blocking_send(Msg::Done);
                Outcome::Success
            }
            Err(e) => {
                tracing::warn!(error = %e, "export failed mid-stream; aborting the response");
                let _ = tx.blocking_send(Msg::Failed(e.to_string()));
                Outcome::Failure
            }
        };
        let _ = coffer.audit.append(
            &caller
                .event(AuditAction::ExportFinish)
                .tenant(access.tenant.id)
                .outcome(outcome),
        );
    });
    let stream = futures_util::stream::unfold((rx, false), |(mut rx, finished)| async move {
        if finished {
            return None;
        }
        match rx.recv().await {
            Some(Msg::Data(bytes)) => Some((Ok(bytes), (rx, false))),
            Some(Msg::Done) => None,
            Some(Msg::Failed(why)) => Some((Err(io::Error::other(why)), (rx, true))),
            // The producer vanished without "done" (a panic): never end the body cleanly.
            None => Some((Err(io::Error::other("export aborted")), (rx, true))),
        }
    });
    builder
        .status(status)
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}

/// Writes to two sinks (the response and a byte counter).
struct Tee<'a, A: Write, B: Write> {
    a: &'a mut A,
    b: &'a mut B,
}

impl<A: Write, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.a.write_all(data)?;
        self.b.write_all(data)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.a.flush()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    conflict: Option<String>,
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::Refused(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "archive-refused", m)
        }
        ImportError::TooLarge(m) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "archive-too-large", m)
        }
        ImportError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "import-conflict", m),
        ImportError::Vault(v) => v.into(),
        ImportError::Io(e) => ApiError::internal(e),
    }
}

pub async fn import(
    State(state): State<AppState>,
    Extension(access): Extension<TenantAccess>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let policy = match q.conflict.as_deref() {
        None => ConflictPolicy::Fail,
        Some(p) => ConflictPolicy::parse(p)
            .ok_or_else(|| ApiError::bad_request("invalid-query", "conflict is fail or skip"))?,
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !matches!(
        ct.split(';').next().unwrap_or("").trim(),
        "application/zip" | "application/octet-stream"
    ) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the archive as application/zip",
        ));
    }
    let limits = state.coffer.config.import_limits();
    // The spooled archive sits in the tenant's staging area: never let it exceed what the
    // tenant may store at all (an archive that fits the quota is not larger than it).
    let spool_cap = access
        .tenant
        .quota_bytes
        .map_or(limits.max_total_bytes, |q| q.min(limits.max_total_bytes));
    let stream = body.into_data_stream().map(|r| r.map_err(io::Error::other));
    let mut reader = SyncIoBridge::new(StreamReader::new(Box::pin(stream)));
    let report = blocking(move || {
        let result = access
            .vault
            .with_spooled(&mut reader, spool_cap, |file| {
                import_archive(
                    &access.vault,
                    &access.caller,
                    io::BufReader::new(file),
                    &limits,
                    policy,
                )
            })
            .map_err(ApiError::from)?;
        result.map_err(import_error)
    })
    .await?;
    Ok(axum::Json(
        serde_json::to_value(report).map_err(ApiError::internal)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_channel_skipping() {
        assert_eq!(parse_range("bytes=100-"), Some((100, None)));
        assert_eq!(parse_range("bytes=5-9"), Some((5, Some(9))));
        assert_eq!(parse_range("bytes=-5"), None);
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
