//! RBAC on every route: the route table is complete, and every route × actor cell gets
//! exactly the expected status. The expectations (each route's permission, and what each
//! role may do) are written here from the role descriptions, never read from the server's
//! own route table or matrix: changing a route's permission there fails this test.
//! WebDAV's routes (`DAV_ROUTES`, one path, a permission per method) have their own
//! method × actor matrix in `http::dav`, written the same way.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use coffer::auth::permission::{Permission, TenantPermission as TP};
use coffer::http::{ROUTES, Route};
use coffer::vault::Precondition;
use coffer::vault::path::{CollectionName, RecordId, VaultPath};

use super::{TestApp, Who};
use crate::support::operator;

/// Everyone a route can be asked by: anonymous, each role, a non-member, an operator.
pub(super) const ACTORS: [Option<Who>; 8] = [
    None,
    Some(Who::Owner),
    Some(Who::Admin),
    Some(Who::Member),
    Some(Who::Viewer),
    Some(Who::Auditor),
    Some(Who::Stranger),
    Some(Who::Operator),
];

/// Independent statement of who may do what inside a tenant.
fn expected_allowed(who: Who, p: TP) -> bool {
    use Who::*;
    let list: &[Who] = match p {
        TP::TenantRead => &[Owner, Admin, Member, Viewer, Auditor],
        TP::MembersRead | TP::MembersManage | TP::TrashPurge | TP::Export => &[Owner, Admin],
        TP::FilesRead | TP::RecordsRead | TP::Search => &[Owner, Admin, Member, Viewer],
        TP::FilesWrite | TP::RecordsWrite => &[Owner, Admin, Member],
        TP::AuditRead | TP::UsageRead => &[Owner, Admin, Auditor],
        TP::Import | TP::Lifecycle => &[Owner],
        // Only an integration's token with the ai-usage scope, never a person.
        TP::UsageReport => &[],
    };
    list.contains(&who)
}

/// Independent statement of what each route needs, written from the API's description.
fn expected_permission(method: &str, path: &str) -> Option<Permission> {
    use Permission::{Authenticated, Metrics, Node, Platform, Public, Tenant};
    let tenant_route = path.strip_prefix("/api/v1/tenants/{tenant}");
    Some(match (method, path, tenant_route) {
        (_, "/" | "/healthz" | "/readyz" | "/api/v1/openapi.json", _) => Public,
        (_, p, _) if p.starts_with("/api/v1/docs") || p.starts_with("/ui/") => Public,
        (_, "/metrics", _) => Metrics,
        ("GET" | "POST", "/api/v1/nodes/moves/{tenant}", _) => Node,
        (
            "POST",
            "/api/v1/auth/signup"
            | "/api/v1/auth/login"
            | "/api/v1/auth/password-reset"
            | "/api/v1/auth/password-reset/confirm",
            _,
        ) => Public,
        (_, p, _) if p.starts_with("/api/v1/auth/") => Authenticated,
        (_, p, _) if p.starts_with("/api/v1/admin/") => Platform,
        ("GET", _, Some("")) => Tenant(TP::TenantRead),
        ("GET", _, Some("/members")) => Tenant(TP::MembersRead),
        (_, _, Some("/members" | "/members/{user}")) => Tenant(TP::MembersManage),
        ("GET", _, Some("/audit")) => Tenant(TP::AuditRead),
        ("GET", _, Some("/usage")) => Tenant(TP::UsageRead),
        ("POST", _, Some("/usage/ai")) => Tenant(TP::UsageReport),
        ("GET", _, Some("/search")) => Tenant(TP::Search),
        ("GET", _, Some("/tree" | "/tree/{*path}" | "/files/{*path}" | "/trash")) => {
            Tenant(TP::FilesRead)
        }
        ("DELETE", _, Some("/trash/{id}")) => Tenant(TP::TrashPurge),
        (_, _, Some("/files/{*path}" | "/dirs" | "/move" | "/trash/{id}/restore")) => {
            Tenant(TP::FilesWrite)
        }
        ("GET", _, Some("/export")) => Tenant(TP::Export),
        ("POST", _, Some("/lifecycle")) => Tenant(TP::Lifecycle),
        ("POST", _, Some("/import")) => Tenant(TP::Import),
        ("GET", _, Some(r)) if r.starts_with("/records") => Tenant(TP::RecordsRead),
        (_, _, Some(r)) if r.starts_with("/records/") => Tenant(TP::RecordsWrite),
        _ => return None,
    })
}

/// A side-effect-free request for `route` and the status it gets when authorized.
struct Probe {
    uri: String,
    body: Option<serde_json::Value>,
    headers: Vec<(&'static str, &'static str)>,
    authorized: StatusCode,
}

fn probe(route: &Route) -> Option<Probe> {
    use StatusCode as S;
    let t = "/api/v1/tenants/alpha";
    let p = |uri: &str, authorized| Probe {
        uri: uri.to_owned(),
        body: None,
        headers: vec![],
        authorized,
    };
    let with_body = |uri: &str, body: serde_json::Value, authorized| Probe {
        uri: uri.to_owned(),
        body: Some(body),
        headers: vec![],
        authorized,
    };
    let unknown_field = serde_json::json!({ "unexpected": true });
    let missing_trash = "0123456789abcdef0123456789abcdef";
    Some(match (route.method.as_str(), route.path) {
        ("GET", "/healthz" | "/readyz" | "/metrics" | "/api/v1/openapi.json" | "/api/v1/docs/") => {
            p(route.path, S::OK)
        }
        ("GET", "/api/v1/docs") => p(route.path, S::PERMANENT_REDIRECT),
        ("GET", "/") => p(route.path, S::OK),
        // Another build's file: the same answer for everyone (this build's files are
        // checked through the page, in `web_ui`).
        ("GET", "/ui/{*file}") => p("/ui/0000000000000000/app.css", S::NOT_FOUND),
        ("GET", "/api/v1/docs/{*file}") => p("/api/v1/docs/swagger-ui.css", S::OK),
        ("POST", "/api/v1/auth/signup") => with_body(route.path, unknown_field, S::BAD_REQUEST),
        ("POST", "/api/v1/auth/login") => with_body(route.path, unknown_field, S::BAD_REQUEST),
        ("POST", "/api/v1/auth/logout") => p(route.path, S::NO_CONTENT),
        (
            "GET",
            "/api/v1/auth/me"
            | "/api/v1/auth/me/data"
            | "/api/v1/auth/me/events"
            | "/api/v1/auth/sessions",
        ) => p(route.path, S::OK),
        ("PATCH", "/api/v1/auth/me") => {
            with_body(route.path, unknown_field.clone(), S::BAD_REQUEST)
        }
        ("DELETE", "/api/v1/auth/sessions/{id}") => {
            p("/api/v1/auth/sessions/nosuchsession", S::NOT_FOUND)
        }
        ("GET", "/api/v1/admin/audit") => p(route.path, S::OK),
        ("GET", "/api/v1/admin/audit/isolation") => p(route.path, S::OK),
        ("POST", "/api/v1/auth/me/delete") => with_body(route.path, unknown_field, S::BAD_REQUEST),
        ("POST", "/api/v1/auth/password") => with_body(route.path, unknown_field, S::BAD_REQUEST),
        ("POST", "/api/v1/auth/password-reset") => {
            // A fresh address each time: requests for one account are limited.
            static ASKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = ASKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            with_body(
                route.path,
                serde_json::json!({ "email": format!("nobody{n}@nowhere.example") }),
                S::ACCEPTED,
            )
        }
        ("POST", "/api/v1/auth/password-reset/confirm") => with_body(
            route.path,
            serde_json::json!({ "token": "nope", "new_password": "a long enough password" }),
            S::BAD_REQUEST,
        ),
        ("GET", "/api/v1/auth/tokens") => p(route.path, S::OK),
        ("POST", "/api/v1/auth/tokens") => with_body(route.path, unknown_field, S::BAD_REQUEST),
        ("DELETE", "/api/v1/auth/tokens/{id}") => {
            p("/api/v1/auth/tokens/nosuchtoken", S::NOT_FOUND)
        }
        ("GET", "/api/v1/admin/tenants" | "/api/v1/admin/users") => p(route.path, S::OK),
        ("POST", "/api/v1/admin/tenants") => with_body(route.path, unknown_field, S::BAD_REQUEST),
        ("POST", "/api/v1/admin/tenants/{tenant}/lifecycle") => with_body(
            "/api/v1/admin/tenants/alpha/lifecycle",
            serde_json::json!({ "action": "explode" }),
            S::BAD_REQUEST,
        ),
        ("GET", "/api/v1/admin/tenants/{tenant}/usage") => {
            p("/api/v1/admin/tenants/alpha/usage", S::OK)
        }
        // Users' credentials never open a node route (the node token's own checks are
        // in `moves`).
        ("GET", "/api/v1/nodes/moves/{tenant}") => p(
            "/api/v1/nodes/moves/0123456789abcdef0123456789abcdef",
            S::UNAUTHORIZED,
        ),
        ("POST", "/api/v1/nodes/moves/{tenant}") => with_body(
            "/api/v1/nodes/moves/0123456789abcdef0123456789abcdef",
            serde_json::json!({ "held": {} }),
            S::UNAUTHORIZED,
        ),
        ("GET", "/api/v1/admin/tenants/{tenant}/receipt") => p(
            "/api/v1/admin/tenants/0123456789abcdef0123456789abcdef/receipt",
            S::NOT_FOUND,
        ),
        ("POST", "/api/v1/tenants/{tenant}/lifecycle") => with_body(
            &format!("{t}/lifecycle"),
            serde_json::json!({ "action": "explode" }),
            S::BAD_REQUEST,
        ),
        ("GET", "/api/v1/tenants/{tenant}") => p(t, S::OK),
        ("GET", "/api/v1/tenants/{tenant}/members") => p(&format!("{t}/members"), S::OK),
        ("POST", "/api/v1/tenants/{tenant}/members") => with_body(
            &format!("{t}/members"),
            serde_json::json!({ "email": "not-an-email", "role": "viewer" }),
            S::BAD_REQUEST,
        ),
        ("PATCH", "/api/v1/tenants/{tenant}/members/{user}") => with_body(
            &format!("{t}/members/zz"),
            serde_json::json!({ "role": "viewer" }),
            S::BAD_REQUEST,
        ),
        ("DELETE", "/api/v1/tenants/{tenant}/members/{user}") => {
            p(&format!("{t}/members/zz"), S::BAD_REQUEST)
        }
        ("GET", "/api/v1/tenants/{tenant}/audit") => p(&format!("{t}/audit"), S::OK),
        ("GET", "/api/v1/tenants/{tenant}/usage") => p(&format!("{t}/usage"), S::OK),
        ("POST", "/api/v1/tenants/{tenant}/usage/ai") => with_body(
            &format!("{t}/usage/ai"),
            unknown_field.clone(),
            S::BAD_REQUEST,
        ),
        ("GET", "/api/v1/tenants/{tenant}/search") => p(&format!("{t}/search?q=quote"), S::OK),
        ("GET", "/api/v1/tenants/{tenant}/tree") => p(&format!("{t}/tree"), S::OK),
        ("GET", "/api/v1/tenants/{tenant}/tree/{*path}") => p(&format!("{t}/tree/docs"), S::OK),
        ("GET", "/api/v1/tenants/{tenant}/files/{*path}") => {
            p(&format!("{t}/files/docs/a.txt"), S::OK)
        }
        ("PUT", "/api/v1/tenants/{tenant}/files/{*path}") => Probe {
            uri: format!("{t}/files/docs/a.txt"),
            body: None,
            headers: vec![("if-none-match", "*")],
            authorized: S::PRECONDITION_FAILED,
        },
        ("DELETE", "/api/v1/tenants/{tenant}/files/{*path}") => {
            p(&format!("{t}/files/CON"), S::BAD_REQUEST)
        }
        ("POST", "/api/v1/tenants/{tenant}/dirs") => with_body(
            &format!("{t}/dirs"),
            serde_json::json!({ "path": "CON" }),
            S::BAD_REQUEST,
        ),
        ("POST", "/api/v1/tenants/{tenant}/move") => with_body(
            &format!("{t}/move"),
            serde_json::json!({ "from": "CON", "to": "x" }),
            S::BAD_REQUEST,
        ),
        ("GET", "/api/v1/tenants/{tenant}/trash") => p(&format!("{t}/trash"), S::OK),
        ("POST", "/api/v1/tenants/{tenant}/trash/{id}/restore") => with_body(
            &format!("{t}/trash/{missing_trash}/restore"),
            serde_json::json!({ "to": "CON" }),
            S::BAD_REQUEST,
        ),
        ("DELETE", "/api/v1/tenants/{tenant}/trash/{id}") => {
            p(&format!("{t}/trash/zz"), S::BAD_REQUEST)
        }
        ("GET", "/api/v1/tenants/{tenant}/export") => p(&format!("{t}/export"), S::OK),
        ("POST", "/api/v1/tenants/{tenant}/import") => {
            p(&format!("{t}/import?conflict=bogus"), S::BAD_REQUEST)
        }
        ("GET", "/api/v1/tenants/{tenant}/records") => p(&format!("{t}/records"), S::OK),
        ("GET", "/api/v1/tenants/{tenant}/records/{collection}") => {
            p(&format!("{t}/records/clients"), S::OK)
        }
        ("POST", "/api/v1/tenants/{tenant}/records/{collection}") => with_body(
            &format!("{t}/records/clients"),
            serde_json::json!([1]),
            S::BAD_REQUEST,
        ),
        ("GET", "/api/v1/tenants/{tenant}/records/{collection}/{id}") => {
            p(&format!("{t}/records/clients/c1"), S::OK)
        }
        ("PUT", "/api/v1/tenants/{tenant}/records/{collection}/{id}") => with_body(
            &format!("{t}/records/clients/c1"),
            serde_json::json!({}),
            S::PRECONDITION_REQUIRED,
        ),
        ("PATCH", "/api/v1/tenants/{tenant}/records/{collection}/{id}") => with_body(
            &format!("{t}/records/clients/c1"),
            serde_json::json!([1]),
            S::BAD_REQUEST,
        ),
        ("DELETE", "/api/v1/tenants/{tenant}/records/{collection}/{id}") => Probe {
            uri: format!("{t}/records/clients/c1"),
            body: None,
            headers: vec![("if-match", "\"not-a-version\"")],
            authorized: S::PRECONDITION_FAILED,
        },
        _ => return None,
    })
}

fn expected(route: &Route, actor: Option<Who>, authorized: StatusCode) -> StatusCode {
    let need = expected_permission(route.method.as_str(), route.path)
        .expect("every route has an expected permission");
    match (need, actor) {
        (Permission::Public, _) => authorized,
        // No metrics token in this configuration, and this is not the metrics address:
        // the route does not exist for anyone, signed in or not.
        (Permission::Metrics, _) => StatusCode::NOT_FOUND,
        // Only a node token opens a node route: no user's credentials, whoever they are.
        (Permission::Node, _) => StatusCode::UNAUTHORIZED,
        (_, None) => StatusCode::UNAUTHORIZED,
        (Permission::Authenticated, Some(_)) => authorized,
        (Permission::Platform, Some(Who::Operator)) => authorized,
        (Permission::Platform, Some(_)) => StatusCode::FORBIDDEN,
        // Not a member: exactly the answer for a tenant that does not exist.
        (Permission::Tenant(_), Some(Who::Stranger | Who::Operator)) => StatusCode::NOT_FOUND,
        (Permission::Tenant(p), Some(role)) => {
            if expected_allowed(role, p) {
                authorized
            } else {
                StatusCode::FORBIDDEN
            }
        }
    }
}

#[test]
fn route_table_is_complete_and_consistent() {
    let mut seen = std::collections::HashSet::new();
    for r in ROUTES {
        assert!(
            seen.insert((r.method.clone(), r.path)),
            "duplicate route {} {}",
            r.method,
            r.path
        );
        assert!(
            probe(r).is_some(),
            "route {} {} has no RBAC probe: add one to the matrix",
            r.method,
            r.path
        );
        assert_eq!(
            Some(r.permission),
            expected_permission(r.method.as_str(), r.path),
            "route {} {} does not need what the API description says",
            r.method,
            r.path
        );
        let tenant_scoped = r.path.starts_with("/api/v1/tenants/{tenant}");
        assert_eq!(
            tenant_scoped,
            matches!(r.permission, Permission::Tenant(_)),
            "{} {}",
            r.method,
            r.path
        );
        if r.path.starts_with("/api/v1/admin/") {
            assert_eq!(r.permission, Permission::Platform, "{}", r.path);
        }
    }
    let doc = coffer::http::openapi_document();
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations,
        ROUTES.len(),
        "every route is in the OpenAPI document"
    );
}

#[tokio::test]
async fn every_route_for_every_actor() {
    let t = TestApp::new();
    // Resources the probes refer to.
    let vault = t.world.vault(&t.world.alpha);
    vault
        .write_file(
            &operator(),
            &VaultPath::parse("docs/a.txt").unwrap(),
            &mut &b"a quote"[..],
            &Precondition::None,
        )
        .unwrap();
    vault
        .create_record(
            &operator(),
            &CollectionName::parse("clients").unwrap(),
            Some(RecordId::parse("c1").unwrap()),
            &serde_json::json!({ "name": "Ada" }),
        )
        .unwrap();
    let before = t.world.coffer.audit().verify().unwrap().events;

    // Actor-major, logout last, so that no probe ends a session another probe needs.
    let mut routes: Vec<&Route> = ROUTES.iter().collect();
    routes.sort_by_key(|r| r.path == "/api/v1/auth/logout");
    let mut failures = Vec::new();
    let mut cells = 0;
    for actor in ACTORS {
        for route in &routes {
            let probe = probe(route).unwrap();
            let mut req = t.request(route.method.clone(), &probe.uri, actor);
            for (k, v) in &probe.headers {
                req = req.header(*k, *v);
            }
            let req = match &probe.body {
                Some(b) => req
                    .header("content-type", "application/json")
                    .body(Body::from(b.to_string())),
                None => req.body(Body::empty()),
            }
            .unwrap();
            let reply = t.send(req).await;
            let want = expected(route, actor, probe.authorized);
            cells += 1;
            if reply.status != want {
                failures.push(format!(
                    "{} {} as {}: got {} ({}), want {}",
                    route.method,
                    probe.uri,
                    actor.map_or("anonymous", Who::name),
                    reply.status,
                    reply.code(),
                    want
                ));
            }
            assert!(
                !reply.status.is_server_error(),
                "5xx for {} {}",
                route.method,
                probe.uri
            );
            if reply.status.is_client_error() {
                assert_eq!(
                    reply.header("content-type"),
                    "application/problem+json",
                    "{} {}",
                    route.method,
                    probe.uri
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cells, ROUTES.len() * ACTORS.len());
    // The probes changed nothing in the vault.
    let v = t.world.vault(&t.world.alpha);
    assert_eq!(
        v.stat(&VaultPath::parse("docs/a.txt").unwrap())
            .unwrap()
            .size,
        7
    );
    assert_eq!(
        v.record(
            &CollectionName::parse("clients").unwrap(),
            &RecordId::parse("c1").unwrap()
        )
        .unwrap()
        .version,
        1
    );
    // Denials inside a tenant were audited.
    let denied = t
        .world
        .coffer
        .audit()
        .events_for_tenant(t.world.alpha.id, 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "access.denied")
        .count();
    assert!(denied > 0 && t.world.coffer.audit().verify().unwrap().events > before);
}

/// API tokens: scoped to one tenant, never above the member's current role.
#[tokio::test]
async fn bearer_tokens_follow_the_same_rules() {
    let t = TestApp::new();
    let reply = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(Who::Member),
            serde_json::json!({ "tenant": "alpha", "role": "viewer", "name": "sync" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    let token = reply.json()["token"].as_str().unwrap().to_owned();
    assert!(
        !reply.json()["details"].to_string().contains(&token),
        "secret only once, in `token`"
    );
    let bearer = |method: Method, uri: &str| {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
    };
    let r = t
        .send(
            bearer(Method::GET, "/api/v1/tenants/alpha/tree")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Viewer token: no writes, even though the member could (and no CSRF needed for reads or bearer).
    let r = t
        .send(
            bearer(Method::PUT, "/api/v1/tenants/alpha/files/x.txt")
                .body(Body::from("x"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another tenant: as if it did not exist.
    let r = t
        .send(
            bearer(Method::GET, "/api/v1/tenants/bravo/tree")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Tokens cannot mint tokens or use operator routes.
    let r = t
        .send(
            bearer(Method::POST, "/api/v1/auth/tokens")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"tenant":"alpha","role":"viewer"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A token above one's role is refused.
    let r = t
        .json(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(Who::Member),
            serde_json::json!({ "tenant": "alpha", "role": "owner" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Removing the member ends the token's access at once.
    let member = t.actor(Who::Member).user_id.clone();
    let r = t
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/alpha/members/{member}"),
            Some(Who::Owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t
        .send(
            bearer(Method::GET, "/api/v1/tenants/alpha/tree")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A revoked or forged token is unauthenticated.
    let r = t
        .send(
            axum::http::Request::builder()
                .uri("/api/v1/auth/me")
                .header("authorization", "Bearer cft_forged_0000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// Admins manage members but never owners.
#[tokio::test]
async fn admins_cannot_touch_owners() {
    let t = TestApp::new();
    let owner = t.actor(Who::Owner).user_id.clone();
    let viewer = t.actor(Who::Viewer).user_id.clone();
    let patch = |who: Who, user: String, role: &'static str| {
        let t = &t;
        async move {
            t.json(
                Method::PATCH,
                &format!("/api/v1/tenants/alpha/members/{user}"),
                Some(who),
                serde_json::json!({ "role": role }),
            )
            .await
            .status
        }
    };
    assert_eq!(
        patch(Who::Admin, owner.clone(), "viewer").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        patch(Who::Admin, viewer.clone(), "owner").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        patch(Who::Admin, viewer.clone(), "member").await,
        StatusCode::NO_CONTENT
    );
    let r = t
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/alpha/members/{owner}"),
            Some(Who::Admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The last owner cannot be demoted or removed, even by themselves.
    assert_eq!(
        patch(Who::Owner, owner.clone(), "admin").await,
        StatusCode::CONFLICT
    );
    let r = t
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/alpha/members/{owner}"),
            Some(Who::Owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "last-owner");
    // Adding: an existing account, once.
    let r = t
        .json(
            Method::POST,
            "/api/v1/tenants/alpha/members",
            Some(Who::Admin),
            serde_json::json!({ "email": "stranger@test.example", "role": "viewer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = t
        .json(
            Method::POST,
            "/api/v1/tenants/alpha/members",
            Some(Who::Admin),
            serde_json::json!({ "email": "stranger@test.example", "role": "viewer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Someone without an account is invited instead (http::invitations).
}
