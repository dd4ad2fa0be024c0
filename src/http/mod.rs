//! The HTTP API (`/api/v1`): axum routes, authorization on every route, and the server.
//!
//! `ROUTES` is the single table of every route with the permission it needs; the router
//! is built from it, and each route gets an `authorize` layer made from its entry, so a
//! route cannot exist without a permission. `authorize` authenticates (session cookie or
//! API token), enforces CSRF defences on cookie-authenticated unsafe requests, and for
//! tenant routes resolves the tenant through the caller's memberships and attaches a
//! `TenantAccess`: the only way a handler reaches a vault. Only this module knows status
//! codes; the handlers call the sync core on blocking threads.

mod account;
mod admin;
pub mod error;
pub mod extract;
mod files;
pub(crate) mod ops;
mod portability;
mod records;
mod tenants;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::permission::{Permission, TenantPermission as TP};
use crate::auth::{Auth, AuthError, Principal};
use crate::coffer::Coffer;
use error::{ApiError, PROBLEM_JSON};
use extract::ClientIp;

/// Shared state: cheap-to-clone handles.
#[derive(Clone)]
pub struct AppState {
    pub coffer: Coffer,
    pub auth: Arc<Auth>,
    pub metrics: Option<PrometheusHandle>,
    /// Cookie name: `__Host-coffer_session` when served over TLS.
    pub cookie_name: &'static str,
    /// Sizes of complete export archives by ETag, so a resumed download can say
    /// `Content-Range` without generating the archive twice.
    pub export_sizes: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
}

impl AppState {
    pub fn new(coffer: Coffer) -> Result<AppState, AuthError> {
        let metrics = ops::metrics_handle();
        let mailer = Arc::new(crate::auth::mailer::OutboxMailer::new(coffer.root.clone()));
        Ok(AppState {
            auth: Arc::new(Auth::new(coffer.clone(), mailer)?),
            coffer,
            metrics,
            cookie_name: SESSION_COOKIE,
            export_sizes: Arc::default(),
        })
    }
}

pub use ops::openapi_document;

pub const SESSION_COOKIE: &str = "coffer_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// One route: method, path, the permission it needs, and what it does.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub permission: Permission,
    pub summary: &'static str,
}

macro_rules! routes {
    ($($method:ident $path:literal, $perm:expr, $summary:literal => $handler:expr;)*) => {
        /// Every route of the API with its permission. `GET` routes also answer `HEAD`.
        pub const ROUTES: &[Route] = &[$(Route {
            method: Method::$method,
            path: $path,
            permission: $perm,
            summary: $summary,
        },)*];

        fn handlers() -> Vec<MethodRouter<AppState>> {
            vec![$(routes!(@method $method)($handler),)*]
        }
    };
    (@method GET) => { get };
    (@method PUT) => { put };
    (@method POST) => { post };
    (@method PATCH) => { patch };
    (@method DELETE) => { delete };
}

use Permission::{Authenticated, Platform, Public, Tenant};

routes! {
    GET "/healthz", Public, "Liveness: the process is up" => ops::healthz;
    GET "/readyz", Public, "Readiness: databases answer" => ops::readyz;
    GET "/metrics", Public, "Prometheus metrics (aggregate counts only)" => ops::metrics;
    GET "/api/v1/openapi.json", Public, "This API's OpenAPI 3.1 description" => ops::openapi;
    GET "/api/v1/docs", Public, "Browsable API documentation" => ops::docs;

    POST "/api/v1/auth/signup", Public, "Create a user and a tenant they own; signs in" => account::signup;
    POST "/api/v1/auth/login", Public, "Sign in with e-mail and password; sets the session cookie" => account::login;
    POST "/api/v1/auth/logout", Authenticated, "End this session" => account::logout;
    GET "/api/v1/auth/me", Authenticated, "The signed-in user, memberships and CSRF token" => account::me;
    POST "/api/v1/auth/me/delete", Authenticated, "Delete your own account" => account::delete_me;
    POST "/api/v1/auth/password", Authenticated, "Change password (ends every session)" => account::change_password;
    POST "/api/v1/auth/password-reset", Public, "Ask for a password-reset token" => account::request_reset;
    POST "/api/v1/auth/password-reset/confirm", Public, "Set a new password with a reset token" => account::confirm_reset;
    GET "/api/v1/auth/tokens", Authenticated, "Your API tokens" => account::list_tokens;
    POST "/api/v1/auth/tokens", Authenticated, "Create an API token (secret shown once)" => account::create_token;
    DELETE "/api/v1/auth/tokens/{id}", Authenticated, "Revoke an API token" => account::revoke_token;

    GET "/api/v1/admin/tenants", Platform, "All tenants (operators)" => admin::list_tenants;
    POST "/api/v1/admin/tenants", Platform, "Create a tenant (operators)" => admin::create_tenant;
    GET "/api/v1/admin/users", Platform, "All users (operators)" => admin::list_users;

    GET "/api/v1/tenants/{tenant}", Tenant(TP::TenantRead), "A tenant and your role in it" => tenants::show;
    GET "/api/v1/tenants/{tenant}/members", Tenant(TP::MembersRead), "Members and roles" => tenants::members;
    POST "/api/v1/tenants/{tenant}/members", Tenant(TP::MembersManage), "Add a member" => tenants::add_member;
    PATCH "/api/v1/tenants/{tenant}/members/{user}", Tenant(TP::MembersManage), "Change a member's role" => tenants::change_member;
    DELETE "/api/v1/tenants/{tenant}/members/{user}", Tenant(TP::MembersManage), "Remove a member" => tenants::remove_member;
    GET "/api/v1/tenants/{tenant}/audit", Tenant(TP::AuditRead), "The tenant's audit events" => tenants::audit;
    GET "/api/v1/tenants/{tenant}/usage", Tenant(TP::UsageRead), "Usage counters and logins" => tenants::usage;
    GET "/api/v1/tenants/{tenant}/search", Tenant(TP::Search), "Full-text search over records and file names" => tenants::search;

    GET "/api/v1/tenants/{tenant}/tree", Tenant(TP::FilesRead), "List the root directory" => files::list_root;
    GET "/api/v1/tenants/{tenant}/tree/{*path}", Tenant(TP::FilesRead), "List a directory" => files::list_dir;
    GET "/api/v1/tenants/{tenant}/files/{*path}", Tenant(TP::FilesRead), "Download a file (Range, ETag)" => files::download;
    PUT "/api/v1/tenants/{tenant}/files/{*path}", Tenant(TP::FilesWrite), "Upload a file (streamed; If-Match, If-None-Match)" => files::upload;
    DELETE "/api/v1/tenants/{tenant}/files/{*path}", Tenant(TP::FilesWrite), "Move a file or directory to the trash" => files::remove;
    POST "/api/v1/tenants/{tenant}/dirs", Tenant(TP::FilesWrite), "Create a directory" => files::mkdir;
    POST "/api/v1/tenants/{tenant}/move", Tenant(TP::FilesWrite), "Move or rename a file or directory" => files::rename;
    GET "/api/v1/tenants/{tenant}/trash", Tenant(TP::FilesRead), "Items in the trash" => files::trash_list;
    POST "/api/v1/tenants/{tenant}/trash/{id}/restore", Tenant(TP::FilesWrite), "Restore a trash item" => files::trash_restore;
    DELETE "/api/v1/tenants/{tenant}/trash/{id}", Tenant(TP::TrashPurge), "Delete a trash item for good" => files::trash_purge;

    GET "/api/v1/tenants/{tenant}/export", Tenant(TP::Export), "The whole vault as one ZIP (streamed; Range resume with If-Range)" => portability::export;
    POST "/api/v1/tenants/{tenant}/import", Tenant(TP::Import), "Restore a ZIP archive into the vault (?conflict=fail|skip)" => portability::import;

    GET "/api/v1/tenants/{tenant}/records", Tenant(TP::RecordsRead), "Collections with record counts" => records::collections;
    GET "/api/v1/tenants/{tenant}/records/{collection}", Tenant(TP::RecordsRead), "List records (newest first, filters)" => records::list;
    POST "/api/v1/tenants/{tenant}/records/{collection}", Tenant(TP::RecordsWrite), "Create a record" => records::create;
    GET "/api/v1/tenants/{tenant}/records/{collection}/{id}", Tenant(TP::RecordsRead), "Get a record" => records::get_one;
    PUT "/api/v1/tenants/{tenant}/records/{collection}/{id}", Tenant(TP::RecordsWrite), "Replace a record (If-Match required)" => records::replace;
    PATCH "/api/v1/tenants/{tenant}/records/{collection}/{id}", Tenant(TP::RecordsWrite), "JSON merge-patch a record" => records::merge_patch;
    DELETE "/api/v1/tenants/{tenant}/records/{collection}/{id}", Tenant(TP::RecordsWrite), "Delete a record" => records::remove;
}

/// The application: every route of `ROUTES` behind its `authorize` layer, plus the
/// cross-cutting layers (request ids, tracing, metrics, security headers, problem bodies).
pub fn app(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for (route, handler) in ROUTES.iter().zip(handlers()) {
        let permission = route.permission;
        let guarded = handler.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |st: State<AppState>, req: Request, next: Next| {
                authorize(st, permission, req, next)
            },
        ));
        router = router.route(route.path, guarded);
    }
    router
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(middleware::from_fn(problem_bodies))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(ops::track_metrics))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The route template, never the raw path (file names) or query (search text).
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or("unmatched", |m| m.as_str())
                .to_owned();
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            tracing::info_span!("request", method = %req.method(), route, request_id = id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
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

/// The per-route guard made from a `ROUTES` entry.
async fn authorize(
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
    let (mut parts, body) = req.into_parts();
    let ip = ClientIp::from_parts(&parts, state.coffer.config.trust_forwarded_for);
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let cookie = session_cookie(&parts.headers, state.cookie_name).map(str::to_owned);
    if !is_safe(&parts.method) && bearer.is_none() && cross_site(&parts.headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site-request",
            "cross-site requests are refused",
        ));
    }
    let slug = match permission {
        Tenant(_) => Some(tenant_slug(parts.uri.path()).ok_or_else(ApiError::not_found)?),
        _ => None,
    };
    let auth = state.auth.clone();
    let ip_for_check = ip.0.clone();
    let (principal, access) = extract::blocking(move || {
        let principal = match (&bearer, &cookie) {
            (Some(token), _) => Some(auth.authenticate_bearer(token)?),
            (None, Some(token)) => auth.authenticate_session(token).ok(),
            (None, None) => None,
        };
        let access = match (permission, &principal, slug) {
            (Tenant(p), Some(principal), Some(slug)) => {
                Some(auth.tenant_access(principal, &slug, p, ip_for_check)?)
            }
            _ => None,
        };
        Ok((principal, access))
    })
    .await?;
    match (permission, &principal) {
        (Public, _) => {}
        (_, None) => return Err(AuthError::Unauthenticated.into()),
        (Platform, Some(p)) if !p.user().is_operator || p.session_id().is_none() => {
            return Err(AuthError::Forbidden.into());
        }
        _ => {}
    }
    if let Some(Principal::Session { sid, .. }) = &principal
        && !is_safe(&parts.method)
    {
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !state.auth.keys().csrf_ok(sid, presented) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf-token-missing",
                "cookie-authenticated requests that change state need the X-CSRF-Token header",
            ));
        }
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

/// The `{tenant}` segment of `/api/v1/tenants/{tenant}/...`.
fn tenant_slug(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v1/tenants/")?;
    let slug = rest.split('/').next()?;
    (!slug.is_empty()).then(|| slug.to_owned())
}

/// Security headers on every response. API responses are JSON that no browser should
/// render or frame; file downloads set a stricter policy of their own.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Turns error responses made outside our handlers (axum's own rejections) into
/// problem+json, so every error a client sees has the same shape.
async fn problem_bodies(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if (status.is_client_error() || status.is_server_error()) && !is_problem {
        let mut replaced = ApiError::from_status(status).into_response();
        for name in [header::ALLOW, header::RETRY_AFTER] {
            if let Some(v) = response.headers().get(&name) {
                replaced.headers_mut().insert(name, v.clone());
            }
        }
        return replaced;
    }
    response
}

/// Runs the server on `listener` until `shutdown` completes, then drains requests.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small responses on a keep-alive connection must not wait for a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Upload streams that make no progress for this long are cut off.
pub const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
