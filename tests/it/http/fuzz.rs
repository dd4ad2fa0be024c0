//! Nothing a client sends produces a 5xx: random hostile path fragments, queries, bodies
//! and content types against every route, as the tenant's owner (so that requests get
//! past authorization into the handlers).

use axum::body::Body;
use coffer::http::ROUTES;
use proptest::prelude::*;

use super::{TestApp, Who};

const FRAGMENTS: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "%2f",
    "%00",
    "%c0%ae",
    "%ff",
    "\\",
    "CON",
    "a",
    "b.txt",
    "%20",
    "~",
    "é",
    "%e2%80%ae",
    "%2e",
    "..;",
    "%252e",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "{}",
    "%7B%7D",
];
const BODIES: &[&str] = &[
    "",
    "{}",
    "[]",
    "null",
    "{\"path\": \"..\"}",
    "{\"from\": \"a\", \"to\": \"/etc\"}",
    "{\"role\": \"owner\", \"email\": 1}",
    "{\"tenant\": \"alpha\", \"role\": \"god\"}",
    "{",
    "\u{0}",
    "{\"a\":",
    "PK\u{3}\u{4}garbage",
    "{\"id\": \"../x\"}",
];
const TYPES: &[&str] = &[
    "application/json",
    "text/plain",
    "application/zip",
    "application/merge-patch+json",
    "",
];

fn fill(path: &str, fragment: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let name = &rest[start + 1..end];
        out.push_str(match name {
            "tenant" => "alpha",
            _ => fragment,
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn no_input_produces_a_server_error(
        route in 0..ROUTES.len(),
        fragments in prop::collection::vec(prop::sample::select(FRAGMENTS), 1..4),
        body in prop::sample::select(BODIES),
        content_type in prop::sample::select(TYPES),
        query in prop::sample::select(&["", "?limit=-1", "?after=%00", "?q=%22", "?conflict=%ff", "?id=..", "?eq.x=%7B", "?cursor=a"][..]),
    ) {
        thread_local!(static APP: (TestApp, tokio::runtime::Runtime) =
            (TestApp::new(), tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()));
        APP.with(|(t, rt)| {
            let r = &ROUTES[route];
            let uri = format!("{}{query}", fill(r.path, &fragments.join("/")));
            let Ok(req) = t
                .request(r.method.clone(), &uri, Some(Who::Owner))
                .header("content-type", content_type)
                .body(Body::from(body.to_owned()))
            else {
                // Not even a valid HTTP request line: nothing to send.
                return Ok(());
            };
            let reply = rt.block_on(t.send(req));
            prop_assert!(!reply.status.is_server_error(), "{} {uri} ({content_type}, {body:?}): {} {:?}", r.method, reply.status, reply.json());
            if reply.status.is_client_error() {
                prop_assert_eq!(reply.header("content-type"), "application/problem+json");
            }
            Ok(())
        })?;
    }
}
