//! Operational endpoints: liveness, readiness, and the API description (metrics are
//! `telemetry`'s). The OpenAPI document and the docs page are generated from `ROUTES`, the
//! same table the router is built from, so they cannot drift from what is served.

use axum::Json;
use axum::extract::State;
use axum::response::Html;

use super::ROUTES;
use super::error::ApiError;
use super::extract::blocking;
use crate::auth::permission::{Permission, TenantPermission, role_allows};
use crate::coffer::Coffer;
use crate::control::Role;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(coffer): State<Coffer>) -> Result<&'static str, ApiError> {
    blocking(move || {
        coffer.check_ready().map_err(ApiError::internal)?;
        Ok("ready\n")
    })
    .await
}

fn roles_for(p: TenantPermission) -> Vec<&'static str> {
    Role::ALL
        .into_iter()
        .filter(|r| role_allows(*r, p))
        .map(|r| r.as_str())
        .collect()
}

fn describe(permission: Permission) -> String {
    match permission {
        Permission::Public => "public".to_owned(),
        Permission::Metrics => "metrics scraper (metrics address or metrics token)".to_owned(),
        Permission::Authenticated => "any signed-in user".to_owned(),
        Permission::Platform => "platform operator".to_owned(),
        Permission::Tenant(p) => format!("{p:?}: {}", roles_for(p).join(", ")),
    }
}

/// OpenAPI paths use `{name}` for every parameter, wildcards included.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The OpenAPI 3.1 document of `ROUTES`.
pub fn openapi_document() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let path = openapi_path(route.path);
        let params: Vec<serde_json::Value> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .map(|name| serde_json::json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let security = match route.permission {
            Permission::Public => serde_json::json!([]),
            Permission::Metrics => serde_json::json!([{ "bearerAuth": [] }]),
            Permission::Platform => serde_json::json!([{ "cookieAuth": [] }]),
            _ => serde_json::json!([{ "cookieAuth": [] }, { "bearerAuth": [] }]),
        };
        let method = route.method.as_str().to_ascii_lowercase();
        let mut op = serde_json::json!({
            "summary": route.summary,
            "operationId": format!("{method}{}", path.replace(['/', '{', '}', '-', '.', '*'], "_")),
            "description": format!("Permission: {}.", describe(route.permission)),
            "parameters": params,
            "security": security,
            "responses": {
                "2XX": { "description": "Success" },
                "4XX": { "description": "Client error", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
                "5XX": { "description": "Server error", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
            }
        });
        if matches!(route.method.as_str(), "POST" | "PUT" | "PATCH") {
            let content = if route.path.contains("/files/") {
                serde_json::json!({ "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } })
            } else {
                serde_json::json!({ "application/json": { "schema": { "type": "object" } } })
            };
            op["requestBody"] = serde_json::json!({ "required": route.method.as_str() != "POST" || !route.path.ends_with("/restore"), "content": content });
        }
        let entry = paths.entry(path).or_insert_with(|| serde_json::json!({}));
        entry[method] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": { "title": "Coffer API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Multi-tenant filesystem vault service. Cookie-authenticated requests that change state must send X-CSRF-Token." },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "cookieAuth": { "type": "apiKey", "in": "cookie", "name": super::SESSION_COOKIE },
                "bearerAuth": { "type": "http", "scheme": "bearer" }
            },
            "schemas": {
                "Problem": { "type": "object", "required": ["type", "title", "status", "code", "detail"], "properties": {
                    "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
                    "code": { "type": "string" }, "detail": { "type": "string" }, "pointer": { "type": "string" } } }
            }
        }
    })
}

pub async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained page (no scripts, no CDN) listing every route and its permission.
pub async fn docs() -> Html<String> {
    let mut rows = String::new();
    for r in ROUTES {
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
            r.method,
            escape(&openapi_path(r.path)),
            escape(r.summary),
            escape(&describe(r.permission))
        ));
    }
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Coffer API</title></head><body>\
         <h1>Coffer API v1</h1><p>Machine-readable: <a href=\"/api/v1/openapi.json\">openapi.json</a>. \
         Errors are RFC 9457 <code>application/problem+json</code>. Cookie-authenticated requests that \
         change state must send the <code>X-CSRF-Token</code> header from the login response.</p>\
         <table border=1 cellpadding=4><tr><th>method</th><th>path</th><th>what</th><th>permission</th></tr>\n{rows}</table></body></html>"
    ))
}
