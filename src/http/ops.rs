//! Operational endpoints: liveness, readiness, the API description (`openapi` builds
//! it) and its browsable reference, Swagger UI, whose files are embedded in the binary
//! (vendored by `utoipa-swagger-ui` at build time: no CDN, nothing fetched at run time)
//! and served under a CSP that allows only this origin. Metrics are `telemetry`'s.

use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::{ApiError, ErrorCode};
use super::extract::blocking;
use crate::coffer::Coffer;

/// The docs pages' policy: scripts, styles and requests to this origin only; Swagger
/// UI's icons are `data:` images in its stylesheet.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Where the reference lives; its files are relative to it.
const DOCS_ROOT: &str = "/api/v1/docs/";

#[utoipa::path(get, path = "/healthz",
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain", example = "ok\n")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/readyz",
    responses((status = 200, description = "The databases answer", body = String, content_type = "text/plain", example = "ready\n")))]
pub async fn readyz(State(coffer): State<Coffer>) -> Result<&'static str, ApiError> {
    blocking(move || {
        coffer.check_ready().map_err(ApiError::internal)?;
        Ok("ready\n")
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object, content_type = "application/json")))]
pub async fn openapi() -> Json<&'static serde_json::Value> {
    Json(super::openapi::openapi_document())
}

/// Swagger UI's settings: the document above, try-it-out on, and no validator badge (it
/// would send the document to a third party).
static SWAGGER: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        utoipa_swagger_ui::Config::new(["/api/v1/openapi.json"])
            .try_it_out_enabled(true)
            .display_request_duration(true)
            .filter(true)
            .deep_linking(true)
            .show_extensions(true)
            .persist_authorization(false)
            .validator_url("none"),
    )
});

/// Sends `/api/v1/docs` to the reference's root, where its relative file names resolve.
#[utoipa::path(get, path = "/api/v1/docs",
    responses((status = 308, description = "To `/api/v1/docs/`, the API reference", headers(("location" = String)))))]
pub async fn docs() -> Redirect {
    Redirect::permanent(DOCS_ROOT)
}

/// The reference's page.
#[utoipa::path(get, path = "/api/v1/docs/",
    responses((status = 200, description = "The API reference (Swagger UI)", body = String, content_type = "text/html")))]
pub async fn docs_index() -> Result<Response, ApiError> {
    docs_file_named("index.html")
}

/// One of the reference's files (scripts, styles, its settings).
#[utoipa::path(get, path = "/api/v1/docs/{file}",
    params(("file" = String, Path, description = "A file of Swagger UI", example = "swagger-ui.css")),
    responses((status = 200, description = "The file", body = String, content_type = "*/*")))]
pub async fn docs_file(Path(file): Path<String>) -> Result<Response, ApiError> {
    docs_file_named(&file)
}

fn docs_file_named(file: &str) -> Result<Response, ApiError> {
    // Only the distribution's own files, by exact name: nothing else is reachable.
    let found = utoipa_swagger_ui::serve(file, SWAGGER.clone()).map_err(ApiError::internal)?;
    let Some(found) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("not found: {DOCS_ROOT}{file}"),
        ));
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, found.content_type),
            (header::CONTENT_SECURITY_POLICY, DOCS_CSP.to_owned()),
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
        ],
        found.bytes.into_owned(),
    )
        .into_response();
    if found.gzpipped {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}
