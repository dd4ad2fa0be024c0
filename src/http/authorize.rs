//! The per-route guard: authentication, cross-site and CSRF defences, and for tenant
//! routes the `TenantAccess` that is a handler's only way to a vault.
//!
//! A bearer token is tried first (the scheme is case-insensitive, RFC 9110), else the
//! session cookie. On WebDAV paths, HTTP Basic carries a bearer token too: the e-mail
//! address as the user name and an API token as the password, which must belong to
//! that address; a password that is not a token is refused without being checked, so
//! an account password is never accepted (or tried) over Basic. Unsafe requests authenticated by the cookie must echo the session's
//! CSRF token, and no unsafe request without a bearer token may come from another site.
//! The tenant comes from the path, and is resolved through the caller's memberships:
//! a tenant one is not a member of answers like one that does not exist.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorCode};
use super::extract::{ClientIp, blocking};
use super::{AppState, CSRF_HEADER};
use crate::auth::permission::Permission;
use crate::auth::{AuthError, Principal, TenantAccess};

/// Methods that change nothing (WebDAV's PROPFIND reads properties).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || method.as_str() == "PROPFIND"
}

/// Reads the session token from the `Cookie` header.
pub fn session_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The credentials of `Authorization: Bearer <token>`, with the scheme matched without
/// regard to case.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The e-mail address and API token of `Authorization: Basic` (RFC 7617), for WebDAV
/// clients, which cannot send bearer tokens. `Err` for Basic credentials that are not
/// an address and a token.
fn basic_token(headers: &HeaderMap) -> Option<Result<(String, String), ApiError>> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::BadCredentials,
            "WebDAV signs in with your e-mail address and an API token as the password \
             (create one under Tokens); account passwords are not accepted here",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some((email, token)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Some(Err(refused()));
    };
    if !token.starts_with(crate::auth::TOKEN_PREFIX) {
        return Some(Err(refused()));
    }
    Some(Ok((email.to_owned(), token.to_owned())))
}

/// Cross-site request checks that apply to every unsafe request, signed in or not: a
/// browser's `Sec-Fetch-Site` and `Origin` must not say another site sent it.
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        return origin == "null" || origin_host != host;
    }
    false
}

/// The `{tenant}` segment of `/api/v1/tenants/{tenant}/...` or `/dav/{tenant}/...`.
fn tenant_slug(path: &str) -> Option<String> {
    let rest = path
        .strip_prefix("/api/v1/tenants/")
        .or_else(|| path.strip_prefix("/dav/"))?;
    let slug = rest.split('/').next()?;
    (!slug.is_empty()).then(|| slug.to_owned())
}

/// `/metrics` on the main address: only for the holder of `metrics_token`. Without a
/// token configured it answers 404, as if there were no route. (The `metrics_listen`
/// address has a router of its own with this one route, `serve_metrics`.)
fn scraper_allowed(state: &AppState, req: Request) -> Result<Request, ApiError> {
    let Some(expected) = &state.coffer.config().metrics_token else {
        return Err(ApiError::not_found());
    };
    let presented = bearer_token(req.headers()).unwrap_or("");
    // Digests compared, so the comparison's time says nothing about the token.
    let digest = crate::digest::sha256_hex;
    if digest(presented) == digest(expected) {
        Ok(req)
    } else {
        Err(AuthError::Unauthenticated.into())
    }
}

/// A node-to-node route: only a valid node token passes; its claims go to the handler.
async fn node_allowed(state: &AppState, mut req: Request) -> Result<Request, ApiError> {
    let token = bearer_token(req.headers())
        .ok_or(AuthError::Unauthenticated)?
        .to_owned();
    let coffer = state.coffer.clone();
    let claims = blocking(move || Ok(coffer.verify_node_token(&token)?)).await?;
    req.extensions_mut().insert(claims);
    Ok(req)
}

/// The guard made from a `ROUTES` entry.
pub async fn authorize(
    State(state): State<AppState>,
    permission: Permission,
    req: Request,
    next: Next,
) -> Response {
    match authorize_inner(&state, permission, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn authorize_inner(
    state: &AppState,
    permission: Permission,
    req: Request,
) -> Result<Request, ApiError> {
    if permission == Permission::Metrics {
        return scraper_allowed(state, req);
    }
    if permission == Permission::Node {
        return node_allowed(state, req).await;
    }
    let (mut parts, body) = req.into_parts();
    let ip = ClientIp::from_parts(&parts, state.trusted_proxies());
    let mut bearer = bearer_token(&parts.headers).map(str::to_owned);
    // Only an explicit bearer header exempts from the cross-site check: a browser sends
    // Basic credentials it has cached on its own.
    let explicit_bearer = bearer.is_some();
    // Basic is WebDAV's: the token's owner must be the address given with it.
    let mut basic_email = None;
    if bearer.is_none()
        && parts.uri.path().starts_with("/dav/")
        && let Some(basic) = basic_token(&parts.headers)
    {
        let (email, token) = basic?;
        basic_email = Some(email);
        bearer = Some(token);
    }
    let cookie = session_cookie(&parts.headers, state.cookie_name).map(str::to_owned);
    if !is_safe(&parts.method) && !explicit_bearer && cross_site(&parts.headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CrossSiteRequest,
            "cross-site requests are refused",
        ));
    }
    let slug = match permission {
        Permission::Tenant(_) => {
            Some(tenant_slug(parts.uri.path()).ok_or_else(ApiError::not_found)?)
        }
        _ => None,
    };
    let auth = state.coffer.auth().clone();
    let tenant = match (permission, &slug) {
        (Permission::Tenant(p), Some(slug)) => Some((p, slug.as_str())),
        _ => None,
    };
    // No credentials, or credentials seen since the last control-plane change: answered
    // here, without a database read or a blocking thread.
    let cached = match (&bearer, &cookie) {
        (None, None) => Some(Ok((None, None))),
        _ => auth.authorize_cached(bearer.as_deref(), cookie.as_deref(), tenant, ip.0.clone()),
    };
    let (principal, access) = match cached {
        Some(answer) => answer?,
        None => {
            let ip_for_check = ip.0.clone();
            blocking(move || {
                // The facts may be cached with only the vault to open (no database read).
                if bearer.is_some() || cookie.is_some() {
                    let tenant = match (permission, &slug) {
                        (Permission::Tenant(p), Some(slug)) => Some((p, slug.as_str())),
                        _ => None,
                    };
                    let cached = auth.authorize_cached_opening(
                        bearer.as_deref(),
                        cookie.as_deref(),
                        tenant,
                        ip_for_check.clone(),
                    );
                    if let Some(answer) = cached {
                        return Ok(answer?);
                    }
                }
                let principal = match (&bearer, &cookie) {
                    (Some(token), _) => Some(auth.authenticate_bearer(token)?),
                    (None, Some(token)) => auth.authenticate_session(token).ok(),
                    (None, None) => None,
                };
                let access = match (permission, &principal, slug) {
                    (Permission::Tenant(p), Some(principal), Some(slug)) => {
                        Some(auth.tenant_access(principal, &slug, p, ip_for_check)?)
                    }
                    _ => None,
                };
                Ok((principal, access))
            })
            .await?
        }
    };
    if let (Some(email), Some(p)) = (&basic_email, &principal)
        && !p.user().email.eq_ignore_ascii_case(email.trim())
    {
        return Err(AuthError::Unauthenticated.into());
    }
    match (permission, &principal) {
        (Permission::Public, _) => {}
        (_, None) => return Err(AuthError::Unauthenticated.into()),
        (Permission::Platform, Some(p)) if !p.user().is_operator || p.session_id().is_none() => {
            return Err(AuthError::Forbidden("platform operators only".into()).into());
        }
        _ => {}
    }
    if let Some(sid) = principal.as_ref().and_then(|p| p.session_id())
        && !is_safe(&parts.method)
    {
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !state.coffer.auth().keys().csrf_ok(sid, presented) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::CsrfTokenMissing,
                "cookie-authenticated requests that change state need the X-CSRF-Token header",
            ));
        }
    }
    // A public route's ids, if any, are the handler's to record (sign-in knows the user
    // only once it succeeds).
    if let Some(ids) = parts.extensions.get::<super::telemetry::LogIds>()
        && (access.is_some() || principal.is_some())
    {
        ids.set(
            access.as_ref().map(|a| a.tenant().id.to_string()),
            principal.as_ref().map(|p| p.user().id.to_string()),
        );
    }
    if let (Permission::Tenant(feature), Some(access)) = (permission, &access) {
        state.meter().count(access.tenant().id, feature);
    }
    parts.extensions.insert(ip);
    if let Some(p) = principal {
        parts.extensions.insert(p);
    }
    if let Some(a) = access {
        parts.extensions.insert(a);
    }
    Ok(Request::from_parts(parts, body))
}

/// A handler's access to the tenant of its route, as checked by `authorize`. Only routes
/// with a tenant permission have one; asking for it elsewhere is a server bug (500).
pub struct Access(pub TenantAccess);

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .remove::<TenantAccess>()
            .map(Access)
            .ok_or_else(|| ApiError::internal("a tenant route without its TenantAccess"))
    }
}

/// The authenticated caller, as checked by `authorize`.
pub struct Signed(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Signed)
            .ok_or_else(|| AuthError::Unauthenticated.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue7_bearer_scheme_is_case_insensitive() {
        let mut h = HeaderMap::new();
        for (value, expect) in [
            ("Bearer cft_x", Some("cft_x")),
            ("bearer cft_x", Some("cft_x")),
            ("BEARER  cft_x ", Some("cft_x")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_token(&h), expect, "{value}");
        }
    }
}
