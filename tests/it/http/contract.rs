//! The API contract: the OpenAPI document is valid OpenAPI 3.1, describes every route of
//! the table with its permission, parameters, bodies and responses, and its reference
//! (Swagger UI) is served from the binary under a CSP that allows only this origin.

use axum::http::{Method, StatusCode};
use coffer::auth::permission::Permission;
use coffer::http::{ROUTES, openapi_document};
use serde_json::Value;

use super::TestApp;

fn openapi_schema() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/openapi-3.1.schema.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn openapi_document_is_valid_openapi_3_1() {
    let validator = jsonschema::validator_for(&openapi_schema()).expect("the schema is valid");
    let doc = openapi_document();
    assert_eq!(errors(&validator, doc), Vec::<String>::new());
    // Every schema in it is a valid JSON Schema 2020-12 (the OpenAPI schema leaves them
    // unchecked).
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        assert!(
            jsonschema::meta::is_valid(schema),
            "components.schemas.{name} is not a valid JSON Schema"
        );
    }
    // Every reference resolves inside the document.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let pointer = target.strip_prefix('#').expect("local references only");
        assert!(
            doc.pointer(pointer).is_some(),
            "dangling reference {target}"
        );
    }
    // The validator is not a formality: a security scheme of a type that does not exist,
    // or a parameter in a place that does not exist, is refused.
    let mut broken = doc.clone();
    broken["components"]["securitySchemes"]["bearerToken"]["type"] = "password".into();
    assert!(!errors(&validator, &broken).is_empty());
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/tenants/{tenant}/search"]["get"]["parameters"][0]["in"] =
        "body".into();
    assert!(!errors(&validator, &broken).is_empty());
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in the document");
    op
}

fn parameter_names(op: &Value) -> Vec<(String, String)> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["in"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_route_is_described_with_its_permission_and_types() {
    let doc = openapi_document();
    let mut operation_ids = std::collections::HashSet::new();
    for route in ROUTES {
        let path = route.path.replace("{*", "{");
        let method = route.method.as_str().to_ascii_lowercase();
        let op = operation(doc, &method, &path);
        let what = format!("{} {}", route.method, route.path);
        assert_eq!(op["summary"], route.summary, "{what}");
        assert!(
            operation_ids.insert(op["operationId"].as_str().unwrap().to_owned()),
            "{what}: operation ids are unique"
        );
        assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{what}");
        // The security schemes say exactly what the permission accepts.
        let security = op["security"].to_string();
        let writes = !matches!(route.method.as_str(), "GET" | "HEAD");
        match route.permission {
            Permission::Public => assert_eq!(op["security"], serde_json::json!([]), "{what}"),
            Permission::Metrics => assert!(security.contains("metricsToken"), "{what}"),
            Permission::Node => assert_eq!(security, r#"[{"nodeToken":[]}]"#, "{what}"),
            Permission::Platform => {
                assert!(
                    security.contains("sessionCookie") && !security.contains("bearerToken"),
                    "{what}"
                )
            }
            Permission::Authenticated | Permission::Tenant(_) => {
                assert!(
                    security.contains("sessionCookie") && security.contains("bearerToken"),
                    "{what}"
                )
            }
        }
        if route.permission != Permission::Public {
            // Node routes take a node token only, never a cookie: no CSRF header.
            let cookie_write = writes && route.permission != Permission::Node;
            assert_eq!(
                cookie_write,
                security.contains("csrfHeader"),
                "{what}: cookie writes need the CSRF header"
            );
            assert!(op["responses"]["401"].is_object(), "{what}");
        }
        if let Permission::Tenant(p) = route.permission {
            assert_eq!(
                op["x-coffer-permission"]["name"],
                format!("{p:?}"),
                "{what}"
            );
            assert!(
                op["responses"]["403"].is_object() && op["responses"]["404"].is_object(),
                "{what}"
            );
        }
        // Every path parameter is declared, with a schema.
        for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
            assert!(
                op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["in"] == "path" && p["name"] == name && p["schema"].is_object()),
                "{what}: path parameter {name}"
            );
        }
        // Every success answer has a described body unless it has none by nature.
        let responses = op["responses"].as_object().unwrap();
        let successes: Vec<&String> = responses.keys().filter(|s| s.starts_with('2')).collect();
        assert!(
            !successes.is_empty() || matches!(route.path, "/" | "/api/v1/docs"),
            "{what}: no success response"
        );
        for status in successes {
            if status != "204"
                && status != "202"
                && !(status == "201" && route.path.ends_with("/members"))
                && route.path != "/api/v1/auth/logout"
            {
                assert!(
                    responses[status]["content"].is_object(),
                    "{what} {status}: no body described"
                );
            }
        }
        // Every error answers problem+json with the Problem schema.
        for (status, response) in responses.iter().filter(|(s, _)| s.starts_with(['4', '5'])) {
            assert_eq!(
                response["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{what} {status}"
            );
        }
        // A JSON body is typed, never a bare object (records are any object by design).
        if let Some(content) = op["requestBody"]["content"]["application/json"].as_object() {
            let schema = &content["schema"];
            let is_record = route.path.contains("/records/");
            let optional_named = schema["oneOf"]
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s.get("$ref").is_some()));
            assert!(
                schema.get("$ref").is_some() || optional_named || is_record,
                "{what}: request body is not a named type: {schema}"
            );
        }
    }
    // The parameters and bodies the old hand-made document left out.
    let has = |method: &str, path: &str, place: &str, name: &str| {
        parameter_names(operation(doc, method, path)).contains(&(place.to_owned(), name.to_owned()))
    };
    assert!(has("get", "/api/v1/tenants/{tenant}/search", "query", "q"));
    assert!(has(
        "post",
        "/api/v1/tenants/{tenant}/records/{collection}",
        "query",
        "id"
    ));
    assert!(has(
        "get",
        "/api/v1/tenants/{tenant}/records/{collection}",
        "query",
        "eq.status"
    ));
    assert!(has(
        "post",
        "/api/v1/tenants/{tenant}/import",
        "query",
        "conflict"
    ));
    assert!(has(
        "put",
        "/api/v1/tenants/{tenant}/records/{collection}/{id}",
        "header",
        "If-Match"
    ));
    assert!(has(
        "get",
        "/api/v1/tenants/{tenant}/files/{path}",
        "header",
        "Range"
    ));
    assert!(has(
        "get",
        "/api/v1/tenants/{tenant}/export",
        "header",
        "If-Range"
    ));
    let import = operation(doc, "post", "/api/v1/tenants/{tenant}/import");
    assert!(
        import["requestBody"]["content"]["application/zip"].is_object(),
        "{import}"
    );
    let patch = operation(
        doc,
        "patch",
        "/api/v1/tenants/{tenant}/records/{collection}/{id}",
    );
    assert!(patch["requestBody"]["content"]["application/merge-patch+json"].is_object());
    let login = operation(doc, "post", "/api/v1/auth/login");
    assert_eq!(
        login["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/LoginIn"
    );
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["SessionInfo"]["properties"]["csrf_token"].is_object());
    assert_eq!(
        schemas["Role"]["enum"],
        serde_json::json!(["owner", "admin", "member", "viewer", "auditor"])
    );
    let codes = schemas["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    assert!(codes.contains(&"quota-exceeded".into()) && codes.contains(&"not-found".into()));
}

#[tokio::test]
async fn the_reference_is_served_from_the_binary_under_a_strict_csp() {
    let t = TestApp::new();
    let served = t.call(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(&served.json(), openapi_document());

    let page = t.call(Method::GET, "/api/v1/docs/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    let csp = page.header("content-security-policy").to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe") && !csp.contains("http"),
        "no inline code, no other origin: {csp}"
    );
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(
        html.contains("swagger-ui-bundle.js") && html.contains("swagger-initializer.js"),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from another origin: {html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("<style>"),
        "no inline script or style: {html}"
    );

    let init = t
        .call(Method::GET, "/api/v1/docs/swagger-initializer.js", None)
        .await;
    assert_eq!(init.status, StatusCode::OK);
    let init = String::from_utf8_lossy(&init.body).into_owned();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
    assert!(
        init.contains("\"validatorUrl\": \"none\""),
        "no validator badge calling a third party: {init}"
    );
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "index.css"] {
        let r = t
            .call(Method::GET, &format!("/api/v1/docs/{asset}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
        assert!(r.body.len() > 100, "{asset}");
    }
    // Nothing but the distribution's own files.
    for missing in [
        "/api/v1/docs/nope.js",
        "/api/v1/docs/..%2F..%2FCargo.toml",
        "/api/v1/docs/%2Fetc%2Fpasswd",
    ] {
        let r = t.call(Method::GET, missing, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(r.header("content-type"), "application/problem+json");
    }
}

/// What the description says a request may be, the server takes; what it says it may
/// not be, the server refuses with a clear 400 (found by schemathesis, kept here).
#[tokio::test]
async fn the_server_takes_and_refuses_what_the_description_says() {
    use super::Who;
    let t = TestApp::new();
    let owner = Some(Who::Owner);
    // Page sizes outside the documented range are refused, not silently clamped.
    for uri in [
        "/api/v1/tenants/alpha/tree?limit=0",
        "/api/v1/tenants/alpha/tree?limit=1001",
        "/api/v1/tenants/alpha/records/clients?limit=501",
        "/api/v1/tenants/alpha/search?q=a&limit=101",
        "/api/v1/tenants/alpha/audit?limit=1001",
        "/api/v1/tenants/alpha/audit?after=-1",
    ] {
        let r = t.call(Method::GET, uri, owner).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(
            matches!(r.code().as_str(), "invalid-query" | "bad-request"),
            "{uri}"
        );
    }
    for uri in [
        "/api/v1/tenants/alpha/tree?limit=1000",
        "/api/v1/tenants/alpha/records/clients?limit=500",
        "/api/v1/tenants/alpha/search?q=a&limit=100",
        "/api/v1/tenants/alpha/audit?limit=1000&action=file.write&actor=operator:cli",
    ] {
        let r = t.call(Method::GET, uri, owner).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {:?}", r.json());
    }
    let long_after = format!("/api/v1/tenants/alpha/tree?after={}", "a".repeat(256));
    assert_eq!(
        t.call(Method::GET, &long_after, owner).await.status,
        StatusCode::BAD_REQUEST
    );
    // A whole number is a whole number however JSON spells it; a fraction is not.
    let token = |days: Value| serde_json::json!({ "tenant": "alpha", "role": "viewer", "expires_in_days": days });
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            owner,
            token(serde_json::json!(30.0)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            owner,
            token(serde_json::json!(30.5)),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["pointer"].as_str()),
        (StatusCode::BAD_REQUEST, Some("/expires_in_days"))
    );
    // A malformed address asking for a reset is a typo, said as such.
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            serde_json::json!({ "email": "no-at-sign" }),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["pointer"].as_str()),
        (StatusCode::BAD_REQUEST, Some("/email"))
    );
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            serde_json::json!({ "email": "nobody@example.com" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // New passwords: 10 to 256 characters, counted as characters.
    let signup = |password: String| serde_json::json!({ "email": "new@example.com", "password": password, "tenant_slug": "newco" });
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            signup("é".repeat(257)),
        )
        .await;
    assert_eq!(r.code(), "weak-password", "{:?}", r.json());
    // An empty If-None-Match lists no tags: it matches nothing, so the upload proceeds.
    let r = t
        .send(
            t.request(
                Method::PUT,
                "/api/v1/tenants/alpha/files/empty-inm.txt",
                owner,
            )
            .header("if-none-match", "")
            .body(axum::body::Body::from("x"))
            .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    // A record's body is checked before its precondition.
    let r = t
        .send(
            t.request(
                Method::PUT,
                "/api/v1/tenants/alpha/records/clients/c1",
                owner,
            )
            .header("if-match", "\"nope\"")
            .header("content-type", "application/json")
            .body(axum::body::Body::from("[1]"))
            .unwrap(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "not-an-object")
    );
}

/// Examples everywhere a reader looks for one: every parameter, every field of every
/// named type (or its enum), every record body, every described response header.
#[test]
fn every_parameter_field_and_header_has_an_example() {
    let doc = openapi_document();
    let has_example = |v: &Value| {
        v.get("example").is_some()
            || v.get("examples").is_some()
            || v.get("enum").is_some()
            || v.get("$ref").is_some()
    };
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if !has_example(p) && !has_example(&p["schema"]) {
                    missing.push(format!("{method} {path}: parameter {}", p["name"]));
                }
            }
            for (media, body) in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                let binary = body["schema"]["format"] == "binary";
                if !binary && !has_example(body) && !has_example(&body["schema"]) {
                    missing.push(format!("{method} {path}: {media} body"));
                }
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                for (name, header) in response["headers"].as_object().into_iter().flatten() {
                    if !has_example(header) && !has_example(&header["schema"]) {
                        missing.push(format!("{method} {path} {status}: header {name}"));
                    }
                }
            }
        }
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let nested = property["type"] == "array"
                || property["type"] == "object"
                || property.get("oneOf").is_some()
                || property.get("allOf").is_some()
                || property["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&"array".into()) || t.contains(&"object".into()))
                || property["type"] == "boolean"
                || property["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&"boolean".into()));
            if !nested && !has_example(property) && name != "Problem" {
                missing.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} without an example:\n{}",
        missing.len(),
        missing.join("\n")
    );
}
