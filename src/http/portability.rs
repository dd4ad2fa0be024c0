//! Export and import over HTTP.
//!
//! An export streams from a blocking task into the response body (`streaming`), so
//! failure mid-stream is never silent: the client sees a transfer error, never a short
//! archive that looks complete. Resume works because archives are deterministic: the ETag names the snapshot
//! (vault state plus audit cursor); a `Range` request whose `If-Range` still matches
//! regenerates the same bytes, skips to the offset, and fails rather than splice two
//! different archives if the vault changed meanwhile.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::ExportSizes;
use super::authorize::Access;
use super::bodies::{Bodies, StreamSlot};
use super::dto::ImportOut;
use super::error::{ApiError, ErrorCode};
use super::extract::blocking;
use super::ranges::{RangeRequest, unsatisfiable};
use super::streaming::blocking_body;
use crate::auth::TenantAccess;
use crate::coffer::Coffer;
use crate::export::import::ConflictPolicy;
use crate::export::{CountingSink, ExportError, ExportOptions, Snapshot};

/// The full size of the archive `snapshot` names: known from an earlier complete
/// download, or counted by a dry run of the same deterministic archive.
async fn archive_size(
    coffer: &Coffer,
    access: &TenantAccess,
    snapshot: &Snapshot,
    sizes: &ExportSizes,
    stored: bool,
) -> Result<u64, ApiError> {
    if let Some(size) = sizes.get(&snapshot.etag) {
        return Ok(size);
    }
    let (coffer, access) = (coffer.clone(), access.clone());
    let (tag, cursor) = (snapshot.etag.clone(), snapshot.audit_until_seq);
    blocking(move || {
        let mut snap = coffer.snapshot(&access, Some(cursor))?;
        if stored {
            snap.etag = stored_tag(&snap.etag);
        }
        if snap.etag != tag {
            return Err(ExportError::Changed.into());
        }
        Ok(coffer.archive_size(&access, &snap, stored)?)
    })
    .await
}

/// How the export is compressed.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `none`: store every entry as it is (an archive as large as the vault, written at
    /// the speed of the disk); `deflate` (the default): deflate what pays.
    #[param(pattern = "^(none|deflate)$", example = "none")]
    compress: Option<String>,
}

impl ExportQuery {
    /// Whether the archive stores everything.
    fn stored(&self) -> Result<bool, ApiError> {
        match self.compress.as_deref() {
            None | Some("deflate") => Ok(false),
            Some("none") => Ok(true),
            Some(_) => Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "compress is none or deflate",
            )),
        }
    }
}

/// The ETag of a stored archive of a snapshot: another representation of the same vault
/// state, so a resume never mixes the bytes of the two.
fn stored_tag(tag: &str) -> String {
    format!("{}-stored\"", tag.trim_end_matches('"'))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/export",
    params(ExportQuery,
        ("Range" = Option<String>, Header, description = "Resume: one byte range of the archive", example = "bytes=1048576-"),
        ("If-Range" = Option<String>, Header, description = "Resume only if the vault is still at this ETag", example = "\"export-51-d704b32c6fb0fee25ea40f964db4259d\""),
    ),
    responses(
        (status = 200, description = "The whole vault as a ZIP: files, records, manifest with hashes", content_type = "application/zip", body = Vec<u8>,
            headers(("etag" = String, description = "Names this state of the vault"))),
        (status = 206, description = "The rest of an interrupted download", content_type = "application/zip", body = Vec<u8>),
        (status = 412, description = "The vault changed since the ETag in `If-Range`"),
        (status = 416, description = "The range is outside the archive"),
    ))]
pub async fn export(
    State(coffer): State<Coffer>,
    State(sizes): State<ExportSizes>,
    State(bodies): State<Bodies>,
    Access(access): Access,
    Query(query): Query<ExportQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let stored = query.stored()?;
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let range = match RangeRequest::parse(header(header::RANGE).as_deref()) {
        RangeRequest::One(r) => Some(r),
        _ => None,
    };
    let if_range = header(header::IF_RANGE);
    // A resume names its snapshot through If-Range; only then is a Range honoured.
    let resume_cursor = match (&range, &if_range) {
        (Some(_), Some(tag)) => Snapshot::cursor_of_etag(tag),
        _ => None,
    };
    // The slot comes first: a snapshot holds every entry and record of the vault in
    // memory, and so does the dry run that sizes a resumed range.
    let slot = bodies.admit_export(access.tenant().id)?;
    let mut snapshot = {
        let (coffer, access) = (coffer.clone(), access.clone());
        blocking(move || Ok(coffer.snapshot(&access, resume_cursor)?)).await?
    };
    if stored {
        snapshot.etag = stored_tag(&snapshot.etag);
    }
    let resuming =
        range.is_some() && if_range.as_deref().map(str::trim) == Some(snapshot.etag.as_str());
    let date = snapshot.as_of.get(..10).unwrap_or("export").to_owned();
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}-{date}.zip\"",
                access.tenant().slug
            ),
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

    let (skip, limit, status) = match range.filter(|_| resuming) {
        Some(range) => {
            let size = archive_size(&coffer, &access, &snapshot, &sizes, stored).await?;
            let (start, end) = range.resolve(size).map_err(|_| unsatisfiable(size))?;
            builder = builder
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"))
                .header(header::CONTENT_LENGTH, end - start + 1);
            (start, Some(end - start + 1), StatusCode::PARTIAL_CONTENT)
        }
        None => (0, None, StatusCode::OK),
    };

    let job = ExportJob {
        slot,
        coffer,
        access,
        snapshot,
        sizes,
        skip,
        limit,
        strict: resuming,
        stored,
    };
    builder
        .status(status)
        .body(Body::from_stream(job.spawn()))
        .map_err(ApiError::internal)
}

/// The producer of an export's body: writes the archive on a blocking thread into a
/// bounded channel, and ends the stream with an error (aborting the response) on any
/// failure, also if the producer vanishes without its final "done".
struct ExportJob {
    /// Held until the archive is written (or the client has gone).
    slot: StreamSlot,
    coffer: Coffer,
    access: TenantAccess,
    snapshot: Snapshot,
    sizes: ExportSizes,
    /// Bytes of the archive to skip (a resumed download's offset).
    skip: u64,
    /// Bytes to send at most (a range's length).
    limit: Option<u64>,
    /// Fail if anything differs from the snapshot (a resume must be the same bytes).
    strict: bool,
    /// Store every entry (`?compress=none`).
    stored: bool,
}

impl ExportJob {
    fn spawn(self) -> impl futures_util::Stream<Item = io::Result<Bytes>> {
        let ExportJob {
            slot,
            coffer,
            access,
            snapshot,
            sizes,
            skip,
            limit,
            strict,
            stored,
        } = self;
        blocking_body(skip, limit, move |writer| {
            let mut counter = CountingSink::default();
            let result = {
                let mut tee = Tee {
                    a: writer,
                    b: &mut counter,
                };
                let options = ExportOptions {
                    strict,
                    stored,
                    progress: None,
                };
                coffer
                    .export(&access, &snapshot, &mut tee, options, skip)
                    .and_then(|m| tee.flush().map(|()| m).map_err(ExportError::Io))
            };
            // Free the slot before the client can see the end, so that a client that
            // reads the whole archive may start another export at once.
            drop(slot);
            match result {
                Ok(_) => {
                    if skip == 0 && limit.is_none() {
                        sizes.insert(snapshot.etag.clone(), counter.bytes());
                    }
                    Ok(())
                }
                // A client that went away or stopped reading is its own business (and
                // must not flood the log); anything else is the server's.
                Err(ExportError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::TimedOut
                    ) =>
                {
                    tracing::debug!(error = %e, "export ended: the client went away");
                    Err(e.to_string())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "export failed mid-stream; aborting the response");
                    Err(e.to_string())
                }
            }
        })
    }
}

/// Writes to two sinks (the response and a byte counter).
struct Tee<'a, A: Write + ?Sized, B: Write> {
    a: &'a mut A,
    b: &'a mut B,
}

impl<A: Write + ?Sized, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.a.write_all(data)?;
        self.b.write_all(data)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.a.flush()
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// What to do when a path exists: `fail` (default: refuse the whole import) or
    /// `skip` (keep the existing one and list it in `skipped`).
    #[param(pattern = "^(fail|skip)$", example = "skip")]
    conflict: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/import", params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/zip", description = "A Coffer export or any ZIP of files"),
    responses(
        (status = 200, description = "Imported: what was written and what was skipped", body = ImportOut),
        (status = 409, description = "A path in the archive exists already (`conflict=fail`)"),
        (status = 413, description = "Larger than the import limits (`archive-too-large`)"),
        (status = 415, description = "The body is not `application/zip`"),
        (status = 422, description = "The archive is refused (`archive-refused`, `reason` says why)"),
        (status = 507, description = "Over the tenant's quota (`quota-exceeded`), or the server's disk is full; nothing was kept"),
    ))]
pub async fn import(
    State(coffer): State<Coffer>,
    State(bodies): State<Bodies>,
    Access(access): Access,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ImportOut>, ApiError> {
    let policy = match q.conflict.as_deref() {
        None => ConflictPolicy::Fail,
        Some(p) => ConflictPolicy::parse(p).ok_or_else(|| {
            ApiError::bad_request(ErrorCode::InvalidQuery, "conflict is fail or skip")
        })?,
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
            ErrorCode::UnsupportedMediaType,
            "send the archive as application/zip",
        ));
    }
    let max_archive = coffer.config().import_max_total_bytes;
    let (slot, mut reader) = bodies.admit(access.tenant().id, body)?;
    let report = blocking(move || {
        let _slot = slot;
        // The archive is spooled inside the tenant's staging area, counted against its
        // quota; its entries are staged (and counted) as they are unpacked.
        let result = access
            .vault()
            .with_spooled(&mut reader, max_archive, |file| {
                coffer.import(&access, io::BufReader::new(file), policy)
            })?;
        Ok(result?)
    })
    .await?;
    Ok(axum::Json((&report).into()))
}
