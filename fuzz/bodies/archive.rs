//! Fuzz body: the archive judge and importer, through `POST /import`. The input is the
//! archive. Whatever it holds: a refusal is a 4xx problem with a reason and leaves the
//! vault exactly as it was (all or nothing); an import that succeeds leaves every entry
//! readable, and nothing is ever written outside the data root.

use axum::body::Body;
use axum::http::{Method, StatusCode};

use super::world::with_world;

pub fn run(data: &[u8]) {
    // Odd lengths exercise the `skip` policy, even ones `fail`.
    let conflict = if data.len() % 2 == 1 { "skip" } else { "fail" };
    with_world(|world| {
        let before = world.entries();
        let request = world
            .owner_request(
                Method::POST,
                &format!("/api/v1/tenants/alpha/import?conflict={conflict}"),
            )
            .header("content-type", "application/zip")
            .body(Body::from(data.to_vec()))
            .expect("request");
        let reply = world.send(request);
        reply.assert_well_formed("import");
        let after = world.entries();
        if reply.status == StatusCode::OK {
            for entry in after.iter().filter(|e| e.sha256.is_some()) {
                let uri = format!("/api/v1/tenants/alpha/files/{}", encode(&entry.path));
                let read = world.send(
                    world
                        .owner_request(Method::GET, &uri)
                        .body(Body::empty())
                        .expect("request"),
                );
                assert_eq!(
                    read.status,
                    StatusCode::OK,
                    "imported {} is not readable",
                    entry.path
                );
                assert_eq!(read.body.len() as u64, entry.size, "{}: size", entry.path);
            }
        } else {
            assert_eq!(
                before,
                after,
                "a refused import changed the vault: {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
        world.assert_nothing_outside();
    });
}

/// Percent-encodes everything but unreserved characters and `/`.
fn encode(path: &str) -> String {
    let mut out = String::new();
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
