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

pub use locks::{DEFAULT_TIMEOUT, DavLocks, MAX_LOCKS_PER_TENANT, MAX_TIMEOUT};

use super::AppState;
use super::authorize::Access;
use super::error::{ApiError, ErrorCode};
use super::routes::DAV_ROUTES;

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
    let host = header_str(headers, "host");
    paths::target(req.uri().path(), &prefix)?;
    if let Some(destination) = header_str(headers, "destination") {
        paths::same_vault_url(destination, host, &prefix)?;
    }
    if let Some(tags) = header_str(headers, "if") {
        paths::check_if_header(tags, host, &prefix)?;
    }
    let method = req.method().clone();
    if method.as_str() == "PROPFIND"
        && header_str(headers, "depth").is_some_and(|d| d.trim().eq_ignore_ascii_case("infinity"))
    {
        return Ok(finite_depth());
    }
    let (parts, body) = req.into_parts();
    // An upload holds a slot and keeps a pace, exactly as through the API.
    let (slot, body) = if method == Method::PUT {
        let (slot, body) = state.bodies.admit_body(access.tenant().id, body)?;
        (Some(slot), body)
    } else {
        (None, body)
    };
    let handler = DavHandler::builder()
        .filesystem(Box::new(fs::VaultFs::new(
            access.clone(),
            state.coffer.config().max_file_bytes,
        )))
        .locksystem(Box::new(state.dav_locks.of(access.tenant().id)))
        .principal(access.caller().actor.to_string())
        .strip_prefix(prefix)
        .build_handler();
    let response = handler.handle(Request::from_parts(parts, body)).await;
    drop(slot);
    let mut response = response.map(Body::new);
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
