//! File endpoints: streamed upload and download, listings, directories, moves, trash.
//!
//! Every path from the URL or a JSON body goes through `VaultPath::parse`. Uploads stream
//! from the socket into the vault on a blocking thread (never buffered whole); downloads
//! stream from the opened file. Downloads are served as attachments with `nosniff` and a
//! sandboxing CSP, so tenant content never runs as a page of the API's origin.

use std::io::SeekFrom;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::authorize::Access;
use super::bodies::Bodies;
use super::dto::{EntriesPage, EntryOut, MkdirIn, MoveIn, RestoreIn, TrashOut, TrashedOut};
use super::error::{ApiError, ErrorCode};
use super::extract::{JsonBody, blocking};
use super::ranges;
use crate::auth::TenantAccess;
use crate::coffer::Coffer;
use crate::vault::Precondition;
use crate::vault::index::Entry;
use crate::vault::path::VaultPath;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;
const DOWNLOAD_CHUNK: usize = 256 * 1024;

/// Files up to this size are read whole in the blocking call that opens them: one
/// hand-off to the blocking pool per small download instead of one more per read.
const READ_WHOLE_MAX: u64 = 64 * 1024;

/// A download's opened file: read whole when small, else streamed from the descriptor.
enum Opened {
    Whole(Vec<u8>),
    Stream(std::fs::File),
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Entries after this name (the `next` of the previous page).
    #[param(max_length = 255, example = "site-photo.jpg")]
    after: Option<String>,
    /// Entries per page (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    limit: Option<u32>,
}

fn etag(entry: &Entry) -> Option<String> {
    entry.sha256.as_ref().map(|s| format!("\"{s}\""))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `If-None-Match: *` and `If-Match: "<sha256>"` as a vault precondition.
fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    // An empty If-None-Match is an empty list of tags (RFC 9110 `#entity-tag`): it matches
    // nothing, so the condition holds and the upload proceeds.
    if let Some(v) = header_str(headers, header::IF_NONE_MATCH).filter(|v| !v.trim().is_empty()) {
        if v.trim() == "*" {
            return Ok(Precondition::IfAbsent);
        }
        return Err(ApiError::bad_request(
            ErrorCode::UnsupportedPrecondition,
            "on uploads, If-None-Match accepts only *",
        ));
    }
    if let Some(v) = header_str(headers, header::IF_MATCH) {
        let tag = v.trim().trim_matches('"');
        if tag.len() != 64 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                ErrorCode::PreconditionFailed,
                "If-Match names no current version",
            ));
        }
        return Ok(Precondition::IfMatch(tag.to_ascii_lowercase()));
    }
    Ok(Precondition::None)
}

async fn list(
    access: TenantAccess,
    dir: Option<VaultPath>,
    page: Page,
) -> Result<Json<EntriesPage>, ApiError> {
    let limit = super::rights::page_limit(page.limit, DEFAULT_PAGE, MAX_PAGE)?;
    if page.after.as_ref().is_some_and(|a| a.chars().count() > 255) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "after is a name (at most 255 characters)",
        )
        .with_pointer("/after"));
    }
    let entries = blocking(move || {
        Ok(access
            .vault()
            .list(dir.as_ref(), page.after.as_deref(), limit)?)
    })
    .await?;
    let next = (entries.len() as u32 == limit)
        .then(|| entries.last().map(|e| e.name.clone()))
        .flatten();
    Ok(Json(EntriesPage {
        entries: entries.iter().map(Into::into).collect(),
        next,
    }))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tree", params(Page),
    responses((status = 200, description = "One page of the root directory, by name", body = EntriesPage)))]
pub async fn list_root(
    Access(access): Access,
    Query(page): Query<Page>,
) -> Result<Json<EntriesPage>, ApiError> {
    list(access, None, page).await
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tree/{path}", params(Page),
    responses(
        (status = 200, description = "One page of the directory, by name", body = EntriesPage),
        (status = 409, description = "The path is a file (`not-a-directory`)"),
    ))]
pub async fn list_dir(
    Access(access): Access,
    Path((_, raw)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Json<EntriesPage>, ApiError> {
    let dir = VaultPath::parse_dir(&raw)?;
    list(access, dir, page).await
}

#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/files/{path}",
    params(
        ("If-Match" = Option<String>, Header, description = "Replace only this version (its ETag: the quoted SHA-256)", example = "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\""),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only, never overwrite", pattern = "^\\*$", example = "*"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes, streamed. Written durably (fsync) and indexed before the answer."),
    responses(
        (status = 201, description = "Created", body = EntryOut, headers(("etag" = String, description = "The new version's quoted SHA-256"))),
        (status = 200, description = "Replaced", body = EntryOut, headers(("etag" = String, description = "The new version's quoted SHA-256"))),
        (status = 409, description = "A directory is in the way, or a name differing only in case exists"),
        (status = 412, description = "The `If-Match` or `If-None-Match` condition failed"),
        (status = 413, description = "Larger than the file size limit (`file-too-large`)"),
        (status = 507, description = "Over the tenant's quota (`quota-exceeded`, with `used`, `limit` and `attempted`), or the server's disk is full (`disk-full`); nothing was kept"),
    ))]
pub async fn upload(
    State(coffer): State<Coffer>,
    State(bodies): State<Bodies>,
    Access(access): Access,
    Path((_, raw)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = VaultPath::parse(&raw)?;
    let precondition = precondition(&headers)?;
    let max = coffer.config().max_file_bytes;
    if let Some(len) =
        header_str(&headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::FileTooLarge,
            format!("file is larger than the limit of {max} bytes"),
        ));
    }
    // A stalled or trickling client is cut off; the vault then discards the staged bytes.
    let (slot, mut reader) = bodies.admit(access.tenant().id, body)?;
    let written = blocking(move || {
        let _slot = slot;
        Ok(access
            .vault()
            .write_file(access.caller(), &path, &mut reader, &precondition)?)
    })
    .await?;
    // The write itself says whether the path was new: no racy look before it.
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let entry = written.entry;
    let mut response = (status, Json(EntryOut::from(&entry))).into_response();
    if let Some(tag) = etag(&entry).and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

/// Content types a browser could run as active content are served as plain bytes.
pub(super) fn safe_content_type(stored: Option<&str>) -> String {
    let ct = stored.unwrap_or("application/octet-stream");
    let active = [
        "text/html",
        "application/xhtml",
        "image/svg",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
    ];
    if active.iter().any(|a| ct.starts_with(a)) {
        "application/octet-stream".to_owned()
    } else {
        ct.to_owned()
    }
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn http_date(rfc3339: &str) -> Option<String> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(httpdate::fmt_http_date(t.into()))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/files/{path}",
    params(
        ("Range" = Option<String>, Header, description = "One byte range", example = "bytes=0-1023"),
        ("If-Range" = Option<String>, Header, description = "Honour `Range` only if this is still the file's ETag", example = "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\""),
        ("If-None-Match" = Option<String>, Header, description = "Answer 304 if this is the file's ETag", example = "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\""),
    ),
    responses(
        (status = 200, description = "The file, as an attachment, with its stored type (active types such as HTML and SVG as `application/octet-stream`)", content_type = "*/*", body = Vec<u8>,
            headers(("etag" = String), ("content-disposition" = String), ("accept-ranges" = String))),
        (status = 206, description = "The requested range", content_type = "*/*", body = Vec<u8>,
            headers(("content-range" = String))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 409, description = "The path is a directory (`is-a-directory`)"),
        (status = 416, description = "The range is outside the file"),
    ))]
pub async fn download(
    Access(access): Access,
    Path((_, raw)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = VaultPath::parse(&raw)?;
    let (entry, size, opened) = blocking(move || {
        let read = access.vault().open_file(&path)?;
        let mut file = read.file.into_std();
        // The size of the version actually opened (fstat), not the index's.
        let size = file.metadata().map_err(ApiError::internal)?.len();
        let opened = if size <= READ_WHOLE_MAX {
            let mut bytes = Vec::with_capacity(size as usize);
            std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, size), &mut bytes)
                .map_err(ApiError::internal)?;
            Opened::Whole(bytes)
        } else {
            Opened::Stream(file)
        };
        // Vault files are replaced by rename, never changed in place, so what was read is
        // the whole version opened; its length is the size either way.
        let size = match &opened {
            Opened::Whole(bytes) => bytes.len() as u64,
            Opened::Stream(_) => size,
        };
        Ok((read.entry, size, opened))
    })
    .await?;
    let tag = etag(&entry);
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(
            header::CONTENT_TYPE,
            safe_content_type(entry.content_type.as_deref()),
        )
        .header(
            header::CONTENT_DISPOSITION,
            content_disposition(&entry.name),
        )
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        )
        .header(header::CACHE_CONTROL, "private, no-cache");
    if let Some(t) = &tag {
        builder = builder.header(header::ETAG, t.as_str());
    }
    if let Some(date) = http_date(&entry.modified_at) {
        builder = builder.header(header::LAST_MODIFIED, date);
    }
    if let (Some(t), Some(inm)) = (&tag, header_str(&headers, header::IF_NONE_MATCH))
        && inm.split(',').any(|c| c.trim() == t || c.trim() == "*")
    {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(ApiError::internal);
    }
    // A Range is honoured only if If-Range (when sent) still names this version.
    let if_range_ok =
        header_str(&headers, header::IF_RANGE).is_none_or(|v| tag.as_deref() == Some(v.trim()));
    let range = if if_range_ok {
        ranges::resolve(header_str(&headers, header::RANGE), size)?
    } else {
        None
    };
    let (status, start, len) = match range {
        Some((start, end)) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        None => (StatusCode::OK, 0, size),
    };
    let body = match opened {
        Opened::Whole(mut bytes) => {
            bytes.truncate((start + len) as usize);
            bytes.drain(..start as usize);
            Body::from(bytes)
        }
        Opened::Stream(std_file) => {
            let mut file = tokio::fs::File::from_std(std_file);
            if start > 0 {
                file.seek(SeekFrom::Start(start))
                    .await
                    .map_err(ApiError::internal)?;
            }
            Body::from_stream(ReaderStream::with_capacity(file.take(len), DOWNLOAD_CHUNK))
        }
    };
    builder
        .status(status)
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .map_err(ApiError::internal)
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/files/{path}",
    responses((status = 200, description = "Moved to the trash", body = TrashedOut)))]
pub async fn remove(
    Access(access): Access,
    Path((_, raw)): Path<(String, String)>,
) -> Result<Json<TrashedOut>, ApiError> {
    let path = VaultPath::parse(&raw)?;
    let item = blocking(move || Ok(access.vault().delete(access.caller(), &path)?)).await?;
    Ok(Json(TrashedOut {
        trashed: (&item).into(),
    }))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/dirs", request_body = MkdirIn,
    responses(
        (status = 201, description = "Created (with any missing parents)", body = EntryOut),
        (status = 409, description = "Something exists at that path"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn mkdir(
    Access(access): Access,
    JsonBody(body): JsonBody<MkdirIn>,
) -> Result<(StatusCode, Json<EntryOut>), ApiError> {
    let path = VaultPath::parse(&body.path).map_err(|e| ApiError::from(e).with_pointer("/path"))?;
    let entry = blocking(move || Ok(access.vault().mkdir(access.caller(), &path)?)).await?;
    Ok((StatusCode::CREATED, Json((&entry).into())))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/move", request_body = MoveIn,
    responses(
        (status = 200, description = "Moved", body = EntryOut),
        (status = 409, description = "The destination exists, or a directory would move into itself"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn rename(
    Access(access): Access,
    JsonBody(body): JsonBody<MoveIn>,
) -> Result<Json<EntryOut>, ApiError> {
    let from = VaultPath::parse(&body.from).map_err(|e| ApiError::from(e).with_pointer("/from"))?;
    let to = VaultPath::parse(&body.to).map_err(|e| ApiError::from(e).with_pointer("/to"))?;
    let entry = blocking(move || Ok(access.vault().rename(access.caller(), &from, &to)?)).await?;
    Ok(Json((&entry).into()))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/trash",
    responses((status = 200, description = "Items in the trash, newest first", body = TrashOut)))]
pub async fn trash_list(Access(access): Access) -> Result<Json<TrashOut>, ApiError> {
    let items = blocking(move || Ok(access.vault().trash_list()?)).await?;
    Ok(Json(TrashOut {
        items: items.iter().map(Into::into).collect(),
    }))
}

fn trash_id(raw: &str) -> Result<String, ApiError> {
    if raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::bad_request(
            ErrorCode::InvalidTrashId,
            "trash ids are 32 hexadecimal digits",
        ))
    }
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/trash/{id}/restore",
    params(("id" = String, Path, description = "The trash item's id", pattern = "^[0-9a-fA-F]{32}$", example = "e7ddc96b07f04a4e925a8df0bb04a3d9")),
    request_body(content = Option<RestoreIn>, description = "Optional: where to restore", example = json!({"to": "jobs/restored/site.jpg"})),
    responses(
        (status = 200, description = "Restored", body = EntryOut),
        (status = 409, description = "Something exists where it would be restored"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn trash_restore(
    State(coffer): State<Coffer>,
    Access(access): Access,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EntryOut>, ApiError> {
    let id = trash_id(&id)?;
    // The body is optional; when present it must be JSON like any other.
    let bytes = super::extract::read_small_body(body, coffer.config()).await?;
    let restore: RestoreIn = if bytes.is_empty() {
        RestoreIn::default()
    } else if super::extract::is_json(header_str(&headers, header::CONTENT_TYPE)) {
        // `null` is JSON's "nothing", like an empty body.
        super::extract::parse_json::<Option<RestoreIn>>(&bytes)?.unwrap_or_default()
    } else {
        return Err(super::extract::unsupported_media_type());
    };
    let to = match restore.to {
        Some(raw) => {
            Some(VaultPath::parse(&raw).map_err(|e| ApiError::from(e).with_pointer("/to"))?)
        }
        None => None,
    };
    let entry =
        blocking(move || Ok(access.vault().restore(access.caller(), &id, to.as_ref())?)).await?;
    Ok(Json((&entry).into()))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/trash/{id}",
    params(("id" = String, Path, description = "The trash item's id", pattern = "^[0-9a-fA-F]{32}$", example = "e7ddc96b07f04a4e925a8df0bb04a3d9")),
    responses((status = 204, description = "Deleted for good")))]
pub async fn trash_purge(
    Access(access): Access,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = trash_id(&id)?;
    blocking(move || Ok(access.vault().purge(access.caller(), &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_never_render_as_pages() {
        assert_eq!(
            safe_content_type(Some("text/html")),
            "application/octet-stream"
        );
        assert_eq!(
            safe_content_type(Some("image/svg+xml")),
            "application/octet-stream"
        );
        assert_eq!(safe_content_type(Some("image/jpeg")), "image/jpeg");
        let v = content_disposition("Résumé \"final\".pdf");
        let s = v.to_str().unwrap();
        assert!(s.starts_with("attachment; filename=\"R_sum_ _final_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf"), "{s}");
    }
}
