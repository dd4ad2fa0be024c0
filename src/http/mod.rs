//! The HTTP API (`/api/v1`): axum routes, authorization on every route, and the server.
//!
//! `routes::ROUTES` is the single table of every route with the permission it needs; the
//! router is built from it, each route behind an `authorize` layer made from its entry.
//! Handlers get typed state (`State<Coffer>`, `State<Arc<Auth>>`) and, on tenant routes,
//! the `Access` that `authorize` checked: the only way a handler reaches a vault. Only
//! this module knows status codes and wire types (`dto`); handlers call the sync core on
//! blocking threads.

mod account;
mod admin;
mod authorize;
pub mod bodies;
pub mod dav;
pub mod dto;
pub mod error;
pub mod extract;
mod files;
mod lifecycle;
pub mod meter;
mod nodes;
pub mod openapi;
pub(crate) mod ops;
mod portability;
pub mod ranges;
mod records;
pub mod rights;
pub mod routes;
mod server;
mod streaming;
pub mod telemetry;
mod tenants;
pub mod tls;
mod ui;
mod write_deadline;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::Auth;
use crate::coffer::Coffer;
pub use authorize::{bearer_token, session_cookie};
use error::{ApiError, PROBLEM_JSON};
pub use openapi::openapi_document;
pub use routes::{ROUTES, Route};
pub use server::{connection_cap, serve, serve_metrics};

pub const SESSION_COOKIE: &str = "coffer_session";
/// The session cookie's name under TLS: the `__Host-` prefix makes browsers refuse it
/// unless it is `Secure`, has `Path=/` and no `Domain`, so no sibling host can set it.
pub const TLS_SESSION_COOKIE: &str = "__Host-coffer_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Sizes of complete export archives by ETag, so a resumed download can say
/// `Content-Range` without generating the archive twice.
#[derive(Clone, Default)]
pub struct ExportSizes(Arc<Mutex<HashMap<String, u64>>>);

impl ExportSizes {
    const MAX: usize = 256;

    pub fn get(&self, etag: &str) -> Option<u64> {
        crate::db::lock(&self.0).get(etag).copied()
    }

    pub fn insert(&self, etag: String, size: u64) {
        let mut map = crate::db::lock(&self.0);
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(etag, size);
    }
}

/// Shared state: cheap-to-clone handles; handlers take the part they need (`FromRef`).
#[derive(Clone)]
pub struct AppState {
    coffer: Coffer,
    metrics: Option<PrometheusHandle>,
    /// Cookie name: `__Host-coffer_session` when served over TLS.
    cookie_name: &'static str,
    /// `Strict-Transport-Security` value, when served over TLS.
    hsts: Option<HeaderValue>,
    export_sizes: ExportSizes,
    trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    bodies: bodies::Bodies,
    passwords: bodies::PasswordGate,
    meter: meter::UsageMeter,
    dav_locks: dav::DavLocks,
}

impl AppState {
    /// The state of the API over `coffer`. Fails on a configuration that cannot be
    /// served (a `trusted_proxies` entry that is not a network).
    pub fn new(coffer: Coffer) -> Result<AppState, crate::config::ConfigError> {
        let trusted_proxies = Arc::new(coffer.config().trusted_proxy_networks()?);
        Ok(AppState {
            bodies: bodies::Bodies::new(coffer.config()),
            dav_locks: dav::DavLocks::new(coffer.clock().clone()),
            passwords: bodies::PasswordGate::new(coffer.config()),
            coffer,
            metrics: telemetry::metrics_handle(),
            cookie_name: SESSION_COOKIE,
            hsts: None,
            export_sizes: ExportSizes::default(),
            trusted_proxies,
            meter: meter::UsageMeter::default(),
        })
    }

    /// The state for a server that terminates TLS itself: the `__Host-` cookie and,
    /// unless `hsts_max_age_secs` is 0, HSTS on every response.
    pub fn with_tls(mut self) -> AppState {
        self.cookie_name = TLS_SESSION_COOKIE;
        let max_age = self.coffer.config().hsts_max_age_secs;
        self.hsts = (max_age > 0).then(|| {
            HeaderValue::from_str(&format!("max-age={max_age}; includeSubDomains"))
                .expect("digits are a valid header value")
        });
        self
    }

    /// API calls counted per tenant and feature, not yet written.
    pub fn meter(&self) -> &meter::UsageMeter {
        &self.meter
    }

    pub fn coffer(&self) -> &Coffer {
        &self.coffer
    }

    /// The networks whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &[ipnet::IpNet] {
        &self.trusted_proxies
    }
}

impl FromRef<AppState> for Coffer {
    fn from_ref(state: &AppState) -> Coffer {
        state.coffer.clone()
    }
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(state: &AppState) -> Arc<Auth> {
        state.coffer.auth().clone()
    }
}

impl FromRef<AppState> for bodies::Bodies {
    fn from_ref(state: &AppState) -> bodies::Bodies {
        state.bodies.clone()
    }
}

impl FromRef<AppState> for bodies::PasswordGate {
    fn from_ref(state: &AppState) -> bodies::PasswordGate {
        state.passwords.clone()
    }
}

impl FromRef<AppState> for ExportSizes {
    fn from_ref(state: &AppState) -> ExportSizes {
        state.export_sizes.clone()
    }
}

/// The name of the session cookie in this deployment.
#[derive(Clone, Copy)]
pub struct CookieName(pub &'static str);

impl FromRef<AppState> for CookieName {
    fn from_ref(state: &AppState) -> CookieName {
        CookieName(state.cookie_name)
    }
}

/// What the deployment audit asks of this edge, in-process: the headers of an
/// anonymous cross-origin request, what an anonymous `/metrics` answers, and the
/// `Set-Cookie` a sign-in sends.
pub async fn probe_edge(state: AppState) -> crate::inspect::deployment::facts::EdgeFacts {
    use tower::ServiceExt;
    let cookie = account::session_cookie(CookieName(state.cookie_name), "probe", 60);
    let router = app(state);
    let get = |path: &str| {
        axum::http::Request::get(path)
            .header(header::HOST, "coffer.invalid")
            .header(header::ORIGIN, "https://deployment-audit.invalid")
            .body(axum::body::Body::empty())
            .expect("a static request")
    };
    let health = router.clone().oneshot(get("/healthz")).await;
    let metrics = router.oneshot(get("/metrics")).await;
    let headers = health
        .map(|r| {
            r.headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    crate::inspect::deployment::facts::EdgeFacts {
        headers,
        metrics_status: metrics.map_or(0, |r| r.status().as_u16()),
        session_cookie: String::from_utf8_lossy(cookie.as_bytes()).into_owned(),
    }
}

/// The application: every route of `ROUTES` behind its `authorize` layer, plus the
/// cross-cutting layers (request ids, tracing, metrics, security headers, problem bodies).
pub fn app(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for (route, handler) in ROUTES.iter().zip(routes::handlers()) {
        let permission = route.permission;
        let guarded = handler.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |st: State<AppState>, req: Request, next: Next| {
                authorize::authorize(st, permission, req, next)
            },
        ));
        router = router.route(route.path, guarded);
    }
    // WebDAV's methods are not axum's: one route per path, the guard picks the
    // permission by method from `DAV_ROUTES`.
    for path in routes::DAV_PATHS {
        // `layer`, not `route_layer`: an `any` route is all fallback, which only `layer`
        // wraps.
        let guarded = axum::routing::any(dav::serve)
            .layer(middleware::from_fn_with_state(state.clone(), dav::guard));
        router = router.route(path, guarded);
    }
    router
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        // Innermost, so that a panicking handler's 500 is counted, logged and given the
        // security headers like every other answer.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn(problem_bodies))
        .layer(middleware::from_fn_with_state(
            state.hsts.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn(telemetry::observe))
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

/// Security headers on every response. API responses are JSON that no browser should
/// render or frame; file downloads set a stricter policy of their own.
async fn security_headers(
    State(hsts): State<Option<HeaderValue>>,
    req: Request,
    next: Next,
) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if let Some(hsts) = hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
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
    // WebDAV's XML error bodies (RFC 4918 16) are kept: clients read their preconditions.
    let is_xml = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/xml"));
    if (status.is_client_error() || status.is_server_error()) && !is_problem && !is_xml {
        let mut replaced = ApiError::from_status(status).into_response();
        for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
            if let Some(v) = response.headers().get(&name) {
                replaced.headers_mut().insert(name, v.clone());
            }
        }
        return replaced;
    }
    response
}
