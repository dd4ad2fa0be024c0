//! The OpenAPI 3.1 document, generated: each handler's `#[utoipa::path]` describes its
//! parameters, bodies and responses from the handler's own wire types (`dto`), and
//! `ROUTES` adds what only the route table knows: the path and method actually served,
//! the permission, the security schemes that satisfy it, the summary and the tag.
//!
//! `reconcile` refuses any difference between the two (a route without a description, a
//! description without a route, another method, an undeclared path parameter), so the
//! document cannot drift from the router. The rules every operation shares are written
//! once here: the shared path parameters, the error responses each kind of route can
//! give (all `application/problem+json` with the `Problem` schema), and the CSRF header
//! that cookie-authenticated writes need.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::error::{ErrorCode, PROBLEM_JSON};
use super::routes::{Described, ROUTES, Route};
use super::{CSRF_HEADER, SESSION_COOKIE};
use crate::auth::permission::{Permission, TenantPermission, role_allows};
use crate::control::Role;

/// The served document, built once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let described = serde_json::to_value(Described::openapi()).expect("a document serialises");
    let mismatches = reconcile(&described, ROUTES);
    assert!(
        mismatches.is_empty(),
        "the handlers' descriptions and ROUTES disagree: {mismatches:#?}"
    );
    assemble(described, ROUTES)
});

/// The OpenAPI 3.1 document of the API.
pub fn openapi_document() -> &'static Value {
    &DOCUMENT
}

/// OpenAPI paths write every parameter `{name}`, wildcards included.
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The `{name}` parameters of a path template.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split('}').next())
        .map(|s| s.trim_start_matches('*'))
        .collect()
}

/// Every difference between the handlers' descriptions and the route table; empty when
/// they describe the same API.
pub fn reconcile(described: &Value, routes: &[Route]) -> Vec<String> {
    let mut problems = Vec::new();
    let paths = described["paths"].as_object().cloned().unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for route in routes {
        let path = openapi_path(route.path);
        let method = route.method.as_str().to_ascii_lowercase();
        seen.insert((path.clone(), method.clone()));
        let Some(operation) = paths.get(&path).and_then(|item| item.get(&method)) else {
            let described_as: Vec<String> = paths
                .get(&path)
                .and_then(Value::as_object)
                .map(|item| item.keys().cloned().collect())
                .unwrap_or_default();
            problems.push(format!(
                "{} {}: not described (described methods on this path: {described_as:?})",
                route.method, route.path
            ));
            continue;
        };
        let declared: Vec<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in path_parameters(route.path) {
            if !declared.contains(&name) && shared_path_parameter(name).is_none() {
                problems.push(format!(
                    "{} {}: path parameter {name} is not described",
                    route.method, route.path
                ));
            }
        }
        for name in &declared {
            if !path_parameters(route.path).contains(name) {
                problems.push(format!(
                    "{} {}: describes a path parameter {name} the path does not have",
                    route.method, route.path
                ));
            }
        }
    }
    for (path, item) in &paths {
        for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
            if !seen.contains(&(path.clone(), method.clone())) {
                problems.push(format!("{method} {path}: described but not routed"));
            }
        }
    }
    problems
}

/// A safe subset of the vault paths `VaultPath::parse` accepts (ASCII letters, digits,
/// `_`, `-` and inner dots, components of at most 255 bytes): a generated path that
/// matches it is always accepted. The full rules are in the descriptions.
pub const VAULT_PATH_PATTERN: &str = "^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,253}[A-Za-z0-9_])?(/[A-Za-z0-9_]([A-Za-z0-9_.-]{0,253}[A-Za-z0-9_])?)*$";

/// A vault path in a request body: described like the `path` parameter.
pub struct VaultPathText;

impl utoipa::PartialSchema for VaultPathText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(4096))
            .pattern(Some(VAULT_PATH_PATTERN))
            .description(Some(
                "A path inside the vault, relative to its root (see the `path` parameter for the rules).",
            ))
            .examples(["jobs/2026/site-photo.jpg"])
            .into()
    }
}

impl utoipa::ToSchema for VaultPathText {}

/// The path parameters many routes share, described once.
fn shared_path_parameter(name: &str) -> Option<Value> {
    let (description, schema) = match name {
        "tenant" => (
            "The tenant's slug.",
            json!({ "type": "string", "minLength": 2, "maxLength": 63,
                    "pattern": "^[a-z][a-z0-9]*(-[a-z0-9]+)*$", "examples": ["acme"] }),
        ),
        "path" => (
            "A path inside the vault, relative to its root, components joined by `/`. \
             Refused: `.` and `..`, empty components, backslashes, control and \
             bidirectional-text characters, characters Windows cannot store \
             (`<>:\"|?*`), names ending in a dot or a space, Windows device names (`CON`, \
             `NUL`, ...), look-alikes of separators, and components over 255 bytes or paths \
             over 4096. The pattern below is a safe subset of what is accepted.",
            json!({ "type": "string", "minLength": 1, "maxLength": 4096,
                    "pattern": VAULT_PATH_PATTERN, "examples": ["jobs/2026/site-photo.jpg"] }),
        ),
        "collection" => (
            "A record collection: a lower-case letter, then lower-case letters, digits or `_`.",
            json!({ "type": "string", "minLength": 1, "maxLength": 64,
                    "pattern": "^[a-z][a-z0-9_]*$", "examples": ["clients"] }),
        ),
        "user" => (
            "A user id.",
            json!({ "type": "string", "pattern": "^[0-9a-f]{32}$",
                    "examples": ["0193b3c4d5e6f708192a3b4c5d6e7f80"] }),
        ),
        _ => return None,
    };
    Some(json!({ "name": name, "in": "path", "required": true,
                 "description": description, "schema": schema }))
}

/// The area an operation belongs to, for the documentation's grouping.
fn tag_of(path: &str) -> &'static str {
    let tenant_area = path
        .strip_prefix("/api/v1/tenants/{tenant}/")
        .map(|rest| rest.split('/').next().unwrap_or(""));
    match tenant_area {
        Some("tree" | "files" | "dirs" | "move" | "trash") => "files",
        Some("records") => "records",
        Some("search") => "search",
        Some("export" | "import") => "portability",
        Some(_) => "tenants",
        None if path == "/api/v1/tenants/{tenant}" => "tenants",
        None if path.starts_with("/api/v1/auth/") => "account",
        None if path.starts_with("/api/v1/admin/") => "operators",
        None if path.starts_with("/api/v1/nodes/") => "nodes",
        None => "operations",
    }
}

const TAGS: &[(&str, &str)] = &[
    (
        "account",
        "Signing in and out, your profile, sessions, API tokens and personal data.",
    ),
    (
        "tenants",
        "A tenant: members, roles, lifecycle, audit trail and usage.",
    ),
    (
        "files",
        "The vault's files and directories, and its trash. Every write is durable before it is acknowledged.",
    ),
    (
        "records",
        "Structured records (clients, jobs, invoices, ...) in named collections, with optimistic concurrency.",
    ),
    ("search", "Full-text search over records and file names."),
    (
        "portability",
        "The whole vault as one ZIP, and importing one.",
    ),
    ("operators", "The platform operator's console."),
    (
        "nodes",
        "Between the nodes sharing a PostgreSQL control plane: a tenant's copy for a move.",
    ),
    ("operations", "Health, metrics and this description."),
];

fn roles_for(p: TenantPermission) -> Vec<&'static str> {
    Role::ALL
        .into_iter()
        .filter(|r| role_allows(*r, p))
        .map(|r| r.as_str())
        .collect()
}

/// Who may call a route, in words.
pub fn describe_permission(permission: Permission) -> String {
    match permission {
        Permission::Public => "public".to_owned(),
        Permission::Metrics => "metrics scraper (metrics address or metrics token)".to_owned(),
        Permission::Node => "another node of the cluster (node token)".to_owned(),
        Permission::Authenticated => "any signed-in user".to_owned(),
        Permission::Platform => "platform operator".to_owned(),
        Permission::Tenant(p) if roles_for(p).is_empty() => {
            format!("{p:?}: an API token with the `ai-usage` scope, of any member")
        }
        Permission::Tenant(p) => format!("{p:?}: {}", roles_for(p).join(", ")),
    }
}

/// The security requirements that satisfy a route's permission: a session cookie (plus
/// the CSRF header on a write) or a bearer token; operators' routes take sessions only.
fn security(route: &Route) -> Value {
    let write = !matches!(route.method.as_str(), "GET" | "HEAD");
    let cookie = if write {
        json!({ "sessionCookie": [], "csrfHeader": [] })
    } else {
        json!({ "sessionCookie": [] })
    };
    match route.permission {
        Permission::Public => json!([]),
        Permission::Metrics => json!([{ "metricsToken": [] }]),
        Permission::Node => json!([{ "nodeToken": [] }]),
        Permission::Platform => json!([cookie]),
        Permission::Authenticated | Permission::Tenant(_) => {
            json!([cookie, { "bearerToken": [] }])
        }
    }
}

/// The error responses a route can give because of what kind of route it is, besides
/// the ones its handler describes.
fn shared_errors(route: &Route, has_input: bool) -> Vec<(&'static str, &'static str)> {
    let mut errors = vec![];
    if has_input {
        errors.push((
            "400",
            "The request is malformed; `code` and `pointer` say what.",
        ));
    }
    if route.permission != Permission::Public {
        errors.push((
            "401",
            "Not signed in, or the session or token is not valid.",
        ));
    }
    if matches!(
        route.permission,
        Permission::Platform | Permission::Tenant(_) | Permission::Authenticated
    ) {
        errors.push((
            "403",
            "Not allowed for your role, a write without the CSRF header, or the tenant's state refuses it.",
        ));
    }
    if matches!(route.permission, Permission::Tenant(_)) || !path_parameters(route.path).is_empty()
    {
        errors.push((
            "404",
            "No such tenant (or you are not a member), or no such resource.",
        ));
    }
    errors.push((
        "429",
        "Too many requests from this client; retry after `Retry-After` seconds.",
    ));
    errors.push((
        "500",
        "An internal error; the `x-request-id` header identifies it in the server log.",
    ));
    errors.push((
        "503",
        "The server is busy or shutting down; retry after `Retry-After` seconds.",
    ));
    errors
}

fn problem_content() -> Value {
    json!({ PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } } })
}

/// A parameter is absent or a string: an optional one is not "nullable" (a header or a
/// query cannot carry JSON's `null`), so `["string", "null"]` becomes `"string"`.
fn not_null(schema: &mut Value) {
    if let Some(types) = schema["type"].as_array() {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        schema["type"] = match kept.as_slice() {
            [one] => one.clone(),
            _ => Value::Array(kept),
        };
    }
    if let Some(one_of) = schema.get("oneOf").and_then(Value::as_array).cloned() {
        let kept: Vec<Value> = one_of.into_iter().filter(|s| s["type"] != "null").collect();
        if let [one] = kept.as_slice() {
            *schema = one.clone();
        }
    }
}

/// Bodies that are not JSON (files, archives) are bytes: `format: binary`, so that a
/// client generator streams them and the reference offers a file picker (the handlers
/// write `Vec<u8>`, which would otherwise read as an array of integers).
fn bytes_as_binary(content: &mut Map<String, Value>) {
    for (media_type, media) in content.iter_mut() {
        if !media_type.contains("json") && media["schema"]["type"] == "array" {
            media["schema"] = json!({ "type": "string", "format": "binary" });
        }
    }
}

/// Every `*_at` field is an RFC 3339 time.
fn timestamps_as_date_time(schema: &mut Value) {
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            if name.ends_with("_at") && property["format"].is_null() {
                property["format"] = json!("date-time");
            }
        }
    }
}

/// Examples of the response headers operations describe.
fn header_example(name: &str) -> Option<&'static str> {
    Some(match name {
        "etag" => "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"",
        "location" => "/api/v1/tenants/acme/records/clients/client-0042",
        "set-cookie" => {
            "coffer_session=eyJ...; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=604800"
        }
        "content-range" => "bytes 0-1023/204800",
        "content-disposition" => "attachment; filename=\"site.jpg\"; filename*=UTF-8''site.jpg",
        "accept-ranges" => "bytes",
        "retry-after" => "30",
        "x-coffer-copy-bytes" => "1073741824",
        _ => return None,
    })
}

/// The handlers' descriptions joined to `ROUTES`.
fn assemble(mut doc: Value, routes: &[Route]) -> Value {
    for route in routes {
        let path = openapi_path(route.path);
        let method = route.method.as_str().to_ascii_lowercase();
        let operation = &mut doc["paths"][&path][&method];
        let handler_notes = operation["description"].as_str().unwrap_or("").to_owned();
        operation["summary"] = json!(route.summary);
        operation["operationId"] = json!(route.operation_id);
        operation["tags"] = json!([tag_of(&path)]);
        operation["description"] = json!(
            format!(
                "{handler_notes}\n\n**Permission:** {}.",
                describe_permission(route.permission)
            )
            .trim_start()
        );
        operation["security"] = security(route);
        if let Permission::Tenant(p) = route.permission {
            operation["x-coffer-permission"] =
                json!({ "name": format!("{p:?}"), "roles": roles_for(p) });
        }
        // The shared path parameters, in path order, before the handler's own.
        let own: Vec<Value> = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut parameters: Vec<Value> = path_parameters(route.path)
            .into_iter()
            .filter(|name| !own.iter().any(|p| p["in"] == "path" && p["name"] == *name))
            .filter_map(shared_path_parameter)
            .collect();
        parameters.extend(own);
        for parameter in &mut parameters {
            not_null(&mut parameter["schema"]);
        }
        let has_input = !parameters.is_empty() || operation.get("requestBody").is_some();
        if parameters.is_empty() {
            operation.as_object_mut().map(|o| o.remove("parameters"));
        } else {
            operation["parameters"] = Value::Array(parameters);
        }
        // (`get_mut`, not indexing: indexing a missing key would add it as `null`.)
        if let Some(content) = operation
            .get_mut("requestBody")
            .and_then(|b| b.get_mut("content"))
            .and_then(Value::as_object_mut)
        {
            bytes_as_binary(content);
        }
        let responses = operation["responses"]
            .as_object_mut()
            .expect("every operation describes its responses");
        for (status, description) in shared_errors(route, has_input) {
            responses
                .entry(status)
                .or_insert_with(|| json!({ "description": description }));
        }
        for response in responses.values_mut() {
            if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                bytes_as_binary(content);
            }
            if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
                for (name, header) in headers.iter_mut() {
                    if let Some(example) = header_example(name) {
                        header["example"] = json!(example);
                    }
                }
            }
        }
        // Every error answers problem+json; a 429, 503 or 507 says when to come back.
        for (status, response) in responses.iter_mut() {
            if !status.starts_with(['4', '5']) {
                continue;
            }
            if response.get("content").is_none() {
                response["content"] = problem_content();
            }
            if matches!(status.as_str(), "429" | "503" | "507") {
                response["headers"]["retry-after"] = json!({
                    "description": "Seconds to wait before retrying.",
                    "example": "30",
                    "schema": { "type": "integer", "minimum": 0 }
                });
            }
        }
    }
    doc["openapi"] = json!("3.1.0");
    doc["info"] = json!({
        "title": "Coffer API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Coffer is a multi-tenant vault for a small business's files and records. \
            Every tenant's data is isolated; every write is durable before it is acknowledged \
            and recorded in an append-only audit log.\n\n\
            **Authentication.** A browser signs in with `POST /api/v1/auth/login` and gets an \
            httpOnly session cookie; a request that changes something with that cookie must \
            also send the `X-CSRF-Token` header from the login response. A program uses an \
            API token (`POST /api/v1/auth/tokens`) as `Authorization: Bearer <token>`.\n\n\
            **Errors** are RFC 9457 `application/problem+json` with a stable `code`.",
        "license": { "name": env!("CARGO_PKG_LICENSE"), "identifier": env!("CARGO_PKG_LICENSE") }
    });
    doc["tags"] = Value::Array(
        TAGS.iter()
            .map(|(name, description)| json!({ "name": name, "description": description }))
            .collect(),
    );
    let components = doc["components"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut components = Value::Object(components);
    components["securitySchemes"] = json!({
        "sessionCookie": { "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
            "description": "The session cookie set by sign-in (`__Host-coffer_session` when served over TLS)." },
        "csrfHeader": { "type": "apiKey", "in": "header", "name": "X-CSRF-Token",
            "description": "The `csrf_token` of the session, echoed on cookie-authenticated requests that change state." },
        "bearerToken": { "type": "http", "scheme": "bearer",
            "description": "An API token, created with `POST /api/v1/auth/tokens` or `coffer token create`." },
        "metricsToken": { "type": "http", "scheme": "bearer",
            "description": "The `metrics_token` of the configuration (or no token on the `metrics_listen` address)." },
        "nodeToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "A node token: what a node taking a tenant (`coffer tenant move`) shows the node holding it, signed with the key the nodes of one control plane share." },
    });
    components["schemas"]["Problem"] = problem_schema();
    if let Some(schemas) = components["schemas"].as_object_mut() {
        for schema in schemas.values_mut() {
            timestamps_as_date_time(schema);
        }
    }
    doc["components"] = components;
    debug_assert_eq!(CSRF_HEADER, "x-csrf-token");
    doc
}

/// RFC 9457 problem details with Coffer's stable codes.
fn problem_schema() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(ErrorCode::as_str).collect();
    let mut properties = Map::new();
    properties.insert(
        "type".into(),
        json!({ "type": "string", "description": "A URI naming the problem type (`urn:coffer:problem:<code>`)." }),
    );
    properties.insert(
        "title".into(),
        json!({ "type": "string", "description": "The status's reason phrase." }),
    );
    properties.insert(
        "status".into(),
        json!({ "type": "integer", "minimum": 400, "maximum": 599 }),
    );
    properties.insert(
        "code".into(),
        json!({ "type": "string", "enum": codes, "description": "Stable: clients branch on it." }),
    );
    properties.insert(
        "detail".into(),
        json!({ "type": "string", "description": "What went wrong, for a person." }),
    );
    properties.insert("pointer".into(), json!({ "type": "string", "description": "JSON Pointer to the offending part of the request body." }));
    properties.insert("reason".into(), json!({ "type": "string", "description": "A finer reason inside `code` (an archive refusal's own code)." }));
    properties.insert(
        "state".into(),
        json!({ "type": "string", "description": "For lifecycle refusals: the tenant's state." }),
    );
    properties.insert("used".into(), json!({ "type": "integer", "minimum": 0, "description": "For quota refusals: bytes stored." }));
    properties.insert("limit".into(), json!({ "type": "integer", "minimum": 0, "description": "For quota refusals: the quota in bytes." }));
    properties.insert("attempted".into(), json!({ "type": "integer", "minimum": 0, "description": "For quota refusals: the bytes the request needed." }));
    json!({
        "type": "object",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": properties,
        "examples": [{ "type": "urn:coffer:problem:quota-exceeded", "title": "Insufficient Storage",
                       "status": 507, "code": "quota-exceeded",
                       "detail": "the storage quota would be exceeded: 10737418000 of 10737418240 bytes used, 204800 more attempted",
                       "used": 10_737_418_000_u64, "limit": 10_737_418_240_u64, "attempted": 204_800 }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_and_the_handlers_agree() {
        let described = serde_json::to_value(Described::openapi()).unwrap();
        assert_eq!(reconcile(&described, ROUTES), Vec::<String>::new());
    }

    #[test]
    fn a_missing_route_or_another_method_is_refused() {
        let mut described = serde_json::to_value(Described::openapi()).unwrap();
        let upload = described["paths"]["/api/v1/tenants/{tenant}/files/{path}"]
            .as_object_mut()
            .unwrap()
            .remove("put")
            .unwrap();
        described["paths"]["/api/v1/tenants/{tenant}/files/{path}"]["post"] = upload;
        described["paths"]["/api/v1/auth/login"]
            .as_object_mut()
            .unwrap()
            .remove("post");
        let problems = reconcile(&described, ROUTES);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].contains("POST /api/v1/auth/login: not described"),
            "{problems:#?}"
        );
        assert!(problems[1].contains("PUT /api/v1/tenants/{tenant}/files/{*path}: not described (described methods on this path: [\"get\", \"delete\", \"post\"])") || problems[1].contains("PUT /api/v1/tenants/{tenant}/files/{*path}: not described"), "{problems:#?}");
        assert!(
            problems[2]
                .contains("post /api/v1/tenants/{tenant}/files/{path}: described but not routed"),
            "{problems:#?}"
        );
    }
}
