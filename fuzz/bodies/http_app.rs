//! Fuzz body: the whole HTTP app through its service. The input picks a route of
//! `ROUTES`, a caller (the tenant's owner, nobody, a forged bearer token, a cookie without
//! its CSRF header) and a content type, then supplies, separated by `0xFF` bytes, the text
//! for the route's parameters, the query, the body and one extra header. Whatever it is:
//! never a server error, every refusal a problem document with a code, nothing written
//! outside the data root, and nobody but the owner gets past authorization.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use coffer::auth::permission::Permission;
use coffer::http::ROUTES;
use coffer::http::Route;

use super::world::with_world;

const CONTENT_TYPES: [&str; 6] = [
    "application/json",
    "application/merge-patch+json",
    "application/zip",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Owner,
    Anonymous,
    ForgedBearer,
    CookieWithoutCsrf,
}

pub fn run(data: &[u8]) {
    let [route, caller, content_type, rest @ ..] = data else {
        return;
    };
    let route = &ROUTES[usize::from(*route) % ROUTES.len()];
    let caller = [
        Caller::Owner,
        Caller::Anonymous,
        Caller::ForgedBearer,
        Caller::CookieWithoutCsrf,
    ][usize::from(*caller % 4)];
    let content_type = CONTENT_TYPES[usize::from(*content_type) % CONTENT_TYPES.len()];
    let mut parts = rest.split(|b| *b == 0xFF);
    let (fragment, query, body, header) = (
        text(parts.next()),
        text(parts.next()),
        parts.next().unwrap_or_default().to_vec(),
        text(parts.next()),
    );
    let uri = format!(
        "{}{}{}",
        fill(route.path, &fragment),
        if query.is_empty() { "" } else { "?" },
        query
    );
    with_world(|world| {
        let mut request = match caller {
            Caller::Owner => world.owner_request(route.method.clone(), &uri),
            Caller::Anonymous | Caller::ForgedBearer | Caller::CookieWithoutCsrf => {
                world.anonymous_request(route.method.clone(), &uri)
            }
        };
        request = match caller {
            Caller::ForgedBearer => request.header("authorization", format!("Bearer {fragment}")),
            Caller::CookieWithoutCsrf => request.header("cookie", world.owner_cookie()),
            _ => request,
        };
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        if let Some((name, value)) = header.split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
        // Not a valid request line or header: it never reaches the app.
        let Ok(request) = request.body(Body::from(body)) else {
            return;
        };
        let reply = world.send(request);
        let what = format!("{caller:?} {} {uri}", route.method);
        reply.assert_well_formed(&what);
        check_authorization(caller, route, reply.status, &what);
        world.assert_nothing_outside();
    });
}

/// Beyond the public routes, only the owner's requests may succeed (a cookie without
/// its CSRF header may read, never change).
fn check_authorization(caller: Caller, route: &Route, status: StatusCode, what: &str) {
    let public = route.permission == Permission::Public;
    let reads = route.method == Method::GET;
    let authorized = match caller {
        Caller::Owner => true,
        Caller::CookieWithoutCsrf => reads,
        Caller::Anonymous | Caller::ForgedBearer => false,
    };
    if !public && !authorized {
        assert!(
            !status.is_success(),
            "{what}: {status} without authorization"
        );
    }
}

fn text(bytes: Option<&[u8]>) -> String {
    String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
}

/// The route's path with `{tenant}` as `alpha` (or the fragment, when it looks like a
/// slug) and every other parameter as the fragment.
fn fill(path: &str, fragment: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| e + start);
        let name = &rest[start + 1..end];
        out.push_str(if name == "tenant" && !fragment.starts_with('@') {
            "alpha"
        } else {
            fragment
        });
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}
