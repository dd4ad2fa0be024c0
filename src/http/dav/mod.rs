//! WebDAV at `/dav/{tenant}/`: each tenant's files as a drive that Windows Explorer,
//! macOS Finder, davfs2, rclone or Cyberduck can map.
//!
//! The protocol is dav-server's; everything that touches tenant data is Coffer's. Each
//! request passes the same `authorize` guard as the API, with the permission its method
//! needs (`routes::DAV_ROUTES`: reads need `FilesRead`, changes `FilesWrite`), so viewers
//! read, members write and auditors see nothing. Desktop clients cannot send bearer
//! tokens, so `authorize` also takes HTTP Basic with the e-mail address and an API token
//! as the password (never the account password). Before dav-server sees the request,
//! every path it carries (URL, `Destination:`, `If:` tags) is parsed into a `VaultPath`
//! or refused (`paths`), `PROPFIND` with `Depth: infinity` is refused (403, RFC 4918
//! `propfind-finite-depth`), and an upload takes a slot and a pace like an API upload
//! (`Bodies`). dav-server then works on `fs::VaultFs`, the vault layer behind its
//! filesystem trait, with the tenant's own lock table (`locks`).

mod fs;
mod locks;
pub mod paths;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dav_server::DavHandler;
use futures_util::{StreamExt, TryStreamExt};

pub use locks::{DEFAULT_TIMEOUT, DavLocks, MAX_LOCKS_PER_TENANT, MAX_TIMEOUT};

use super::AppState;
use super::authorize::Access;
use super::error::{ApiError, ErrorCode};
use super::routes::DAV_ROUTES;

/// Bytes read from a file per step of a GET (dav-server's default, 16 KiB, costs a
/// blocking read and a chunk per 16 KiB); the API's downloads use the same.
const READ_CHUNK: usize = 256 * 1024;

/// What a 401 on a WebDAV path asks for, so that desktop clients prompt for credentials.
const CHALLENGE: &str =
    "Basic realm=\"Coffer WebDAV (your e-mail and an API token)\", charset=\"UTF-8\"";

/// The guard of the WebDAV routes: the permission of the request's method from
/// `DAV_ROUTES` (405 with `Allow` for any other method), then `authorize` as for the API.
pub async fn guard(state: State<AppState>, req: Request, next: Next) -> Response {
    let Some(route) = DAV_ROUTES
        .iter()
        .find(|r| r.method == req.method().as_str())
    else {
        let mut refused = ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED).into_response();
        refused
            .headers_mut()
            .insert(header::ALLOW, allowed_methods());
        return refused;
    };
    let mut response = super::authorize::authorize(state, route.permission, req, next).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
    }
    response
}

fn allowed_methods() -> HeaderValue {
    let list: Vec<&str> = DAV_ROUTES.iter().map(|r| r.method).collect();
    HeaderValue::from_str(&list.join(", ")).expect("method names are valid header text")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header that carries paths: at most once, and visible ASCII (which is all a URL
/// needs), so that what is checked here is exactly what dav-server reads.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    match (value.to_str(), values.next()) {
        (Ok(text), None) => Ok(Some(text)),
        _ => Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            format!("{name}: must be given once, in visible ASCII"),
        )),
    }
}

/// RFC 4918 9.1: a server may refuse `Depth: infinity`, with this precondition.
fn finite_depth() -> Response {
    let mut refused = ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::InfiniteDepth,
        "PROPFIND with Depth: infinity is refused; list one level at a time (Depth: 1)",
    )
    .into_response();
    *refused.body_mut() = Body::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n",
    );
    refused.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    refused
}

/// DELETE of a folder as one trash item, as the API and the web UI delete it (dav-server
/// deletes a folder depth first, which would leave one trash item per file, each to be
/// restored on its own). Taken only when nothing could make dav-server's answer differ:
/// no lock held anywhere in the tenant and no conditional header; otherwise `None`, and
/// dav-server deletes with its lock and condition checks.
async fn delete_folder_whole(
    state: &AppState,
    access: &crate::auth::TenantAccess,
    path: crate::vault::path::VaultPath,
) -> Result<Option<Response>, ApiError> {
    if !state.dav_locks.of(access.tenant().id).none_held().await {
        return Ok(None);
    }
    let access = access.clone();
    let deleted = super::extract::blocking(move || {
        let vault = access.vault();
        if vault.stat(&path)?.kind != crate::vault::index::EntryKind::Dir {
            return Ok(false);
        }
        vault.delete(access.caller(), &path)?;
        Ok(true)
    })
    .await?;
    Ok(deleted.then(|| StatusCode::NO_CONTENT.into_response()))
}

/// The target of a DELETE without conditions (`If`, `If-Match`, ...) at the default depth,
/// which `delete_folder_whole` may take; `None` for the root or any other DELETE.
fn unconditional_delete(
    req: &Request,
    prefix: &str,
) -> Result<Option<crate::vault::path::VaultPath>, ApiError> {
    let headers = req.headers();
    let conditional = ["if", "if-match", "if-none-match", "if-unmodified-since"]
        .iter()
        .any(|h| headers.contains_key(*h));
    let infinite =
        header_str(headers, "depth").is_none_or(|d| d.trim().eq_ignore_ascii_case("infinity"));
    if conditional || !infinite {
        return Ok(None);
    }
    paths::target(req.uri().path(), prefix)
}

/// Every WebDAV request to a tenant's files, once `guard` has let it through.
pub async fn serve(
    State(state): State<AppState>,
    Access(access): Access,
    req: Request,
) -> Response {
    match serve_checked(state, access, req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn serve_checked(
    state: AppState,
    access: crate::auth::TenantAccess,
    req: Request,
) -> Result<Response, ApiError> {
    let prefix = format!("/dav/{}", access.tenant().slug);
    let headers = req.headers();
    // HTTP/2 names the server in `:authority`, not `Host`.
    let host = header_str(headers, "host")
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .map(str::to_owned);
    paths::target(req.uri().path(), &prefix)?;
    if let Some(destination) = single_header(headers, "destination")? {
        paths::same_vault_url(destination, host.as_deref(), &prefix)?;
    }
    let checked_if = match single_header(headers, "if")? {
        Some(tags) => Some(paths::check_if_header(tags, host.as_deref(), &prefix)?),
        None => None,
    };
    let method = req.method().clone();
    if method == Method::DELETE
        && let Some(path) = unconditional_delete(&req, &prefix)?
        && let Some(done) = delete_folder_whole(&state, &access, path).await?
    {
        return Ok(done);
    }
    if method.as_str() == "PROPFIND"
        && header_str(headers, "depth").is_some_and(|d| d.trim().eq_ignore_ascii_case("infinity"))
    {
        return Ok(finite_depth());
    }
    // The vault's root is not a resource to delete or move (dav-server would trash its
    // entries one by one before refusing the root itself).
    if matches!(method.as_str(), "DELETE" | "MOVE" | "COPY")
        && paths::target(req.uri().path(), &prefix)?.is_none()
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "the vault's root cannot be deleted, moved or copied",
        ));
    }
    let (mut parts, body) = req.into_parts();
    // An announced length without Content-Length (Finder's chunked uploads) is dropped:
    // dav-server would stop at it and commit a short file before answering 400. The body
    // is taken whole, as sent; size and quota are enforced while it streams.
    if !parts.headers.contains_key(header::CONTENT_LENGTH) {
        parts.headers.remove("x-expected-entity-length");
    }
    if let Some(tags) = checked_if {
        let value = HeaderValue::from_str(&tags).map_err(ApiError::internal)?;
        parts.headers.insert("if", value);
    }
    // An upload holds a slot and keeps a pace, exactly as through the API.
    let (slot, body) = if method == Method::PUT {
        let (slot, body) = state.bodies.admit_body(access.tenant().id, body)?;
        (Some(slot), body)
    } else {
        (None, body)
    };
    let vault_fs = fs::VaultFs::new(access.clone(), state.coffer.config().max_file_bytes);
    let listing_failed = vault_fs.listing_failed();
    let handler = DavHandler::builder()
        .filesystem(Box::new(vault_fs))
        .locksystem(Box::new(state.dav_locks.of(access.tenant().id)))
        .principal(access.caller().actor.to_string())
        .read_buf_size(READ_CHUNK)
        .strip_prefix(prefix)
        .build_handler();
    let response = handler.handle(Request::from_parts(parts, body)).await;
    drop(slot);
    let mut response = response.map(Body::new);
    if method.as_str() == "PROPFIND" {
        // A listing that failed part way ends in a transfer error, never a short 207.
        let tail = futures_util::stream::once(async move {
            listing_failed
                .load(std::sync::atomic::Ordering::SeqCst)
                .then(|| Err(std::io::Error::other("a listing page could not be read")))
        })
        .filter_map(std::future::ready);
        response = response.map(|body| {
            Body::from_stream(
                body.into_data_stream()
                    .map_err(std::io::Error::other)
                    .chain(tail),
            )
        });
    }
    if matches!(method, Method::GET | Method::HEAD) {
        // Tenant bytes never run as a page of this origin, whatever their name says.
        let stored = header_str(response.headers(), "content-type").map(str::to_owned);
        let safe = super::files::safe_content_type(stored.as_deref());
        if let Ok(v) = HeaderValue::from_str(&safe) {
            response.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        );
    }
    Ok(response)
}
