//! Fuzz body: record JSON and JSON merge patch (RFC 7386) through the app. The input is a
//! document, a `0xFF` byte, and a patch. A document the app accepts comes back exactly as
//! sent; a patch it accepts gives exactly what the RFC's own algorithm gives (written
//! again here, independently of the app's); a patch it refuses leaves the record as it
//! was. Never a server error.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::world::{Reply, World, with_world};

const COLLECTION: &str = "/api/v1/tenants/alpha/records/notes";

pub fn run(data: &[u8]) {
    let (document, patch) = match data.iter().position(|b| *b == 0xFF) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    with_world(|world| {
        let created = send_json(world, Method::POST, COLLECTION, None, document);
        created.assert_well_formed("create");
        if created.status != StatusCode::CREATED {
            return;
        }
        let sent: Value = serde_json::from_slice(document).expect("the app accepted JSON");
        let record = created.json();
        assert_eq!(record["body"], sent, "a created record is stored as sent");
        if let Some(patch) = patch {
            check_patch(world, &record, patch);
        }
    });
}

fn check_patch(world: &World, record: &Value, patch: &[u8]) {
    let id = record["id"].as_str().expect("id");
    let uri = format!("{COLLECTION}/{id}");
    let version = record["version"].as_i64().expect("version");
    let patched = send_json(world, Method::PATCH, &uri, Some(version), patch);
    patched.assert_well_formed("patch");
    let now = get(world, &uri);
    if patched.status == StatusCode::OK {
        let patch: Value = serde_json::from_slice(patch).expect("the app accepted JSON");
        let mut expected = record["body"].clone();
        merge_patch(&mut expected, &patch);
        assert_eq!(
            patched.json()["body"],
            expected,
            "PATCH answer follows RFC 7386"
        );
        assert_eq!(now["body"], expected, "stored body follows RFC 7386");
        assert_eq!(now["version"].as_i64(), Some(version + 1));
    } else {
        assert_eq!(
            now["body"], record["body"],
            "a refused patch changed the record"
        );
        assert_eq!(now["version"].as_i64(), Some(version));
    }
}

/// RFC 7386, section 2, as written there.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(map) = target else {
        unreachable!("made an object above")
    };
    for (name, value) in members {
        if value.is_null() {
            map.remove(name);
        } else {
            merge_patch(map.entry(name.clone()).or_insert(Value::Null), value);
        }
    }
}

fn send_json(world: &World, method: Method, uri: &str, version: Option<i64>, body: &[u8]) -> Reply {
    let content_type = if method == Method::PATCH {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let mut request = world
        .owner_request(method, uri)
        .header("content-type", content_type);
    if let Some(version) = version {
        request = request.header("if-match", format!("\"{version}\""));
    }
    world.send(request.body(Body::from(body.to_vec())).expect("request"))
}

fn get(world: &World, uri: &str) -> Value {
    let reply = world.send(
        world
            .owner_request(Method::GET, uri)
            .body(Body::empty())
            .expect("request"),
    );
    assert_eq!(reply.status, StatusCode::OK, "GET {uri}");
    reply.json()
}
