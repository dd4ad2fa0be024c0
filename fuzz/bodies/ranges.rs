//! Fuzz body: `Range`, `If-Range` and `If-None-Match` on a download, and the range parser
//! on its own. The input is `[selector, size_hi, size_lo]` then up to three header values
//! separated by newlines. Whatever they say: the parser resolves only to a range inside
//! the representation (or a 416 naming its size), and the app answers 200 with the whole
//! file, 206 with exactly the bytes its `Content-Range` names, 304 only when the ETag was
//! named, or a 416 problem; never anything else.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use coffer::http::ranges;

use super::world::{World, with_world};

/// The two files every run downloads: one empty, one of `DOC_LEN` known bytes.
const DOC_LEN: usize = 1000;

fn doc() -> Vec<u8> {
    (0..DOC_LEN).map(|i| (i % 251) as u8).collect()
}

pub fn run(data: &[u8]) {
    let [selector, hi, lo, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut lines = text.split('\n');
    let (range, if_range, if_none_match) = (lines.next(), lines.next(), lines.next());
    check_parser(range, u64::from(u16::from_be_bytes([*hi, *lo])));
    with_world(|world| {
        let (name, content) = if selector % 2 == 0 {
            ("doc.txt", doc())
        } else {
            ("empty.txt", Vec::new())
        };
        ensure_file(world, name, &content);
        download(world, name, &content, [range, if_range, if_none_match]);
    });
}

fn check_parser(range: Option<&str>, size: u64) {
    match ranges::resolve(range, size) {
        Ok(None) => {}
        Ok(Some((start, end))) => assert!(start <= end && end < size, "{range:?} on {size}"),
        Err(e) => assert_eq!(e.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range:?}"),
    }
}

fn ensure_file(world: &World, name: &str, content: &[u8]) {
    let uri = format!("/api/v1/tenants/alpha/files/{name}");
    let put = world
        .owner_request(Method::PUT, &uri)
        .header("if-none-match", "*")
        .body(Body::from(content.to_vec()))
        .expect("request");
    let reply = world.send(put);
    assert!(
        reply.status == StatusCode::CREATED || reply.status == StatusCode::PRECONDITION_FAILED,
        "seeding {name}: {}",
        reply.status
    );
}

fn download(world: &World, name: &str, content: &[u8], headers: [Option<&str>; 3]) {
    let uri = format!("/api/v1/tenants/alpha/files/{name}");
    let mut request = world.owner_request(Method::GET, &uri);
    for (header, value) in ["range", "if-range", "if-none-match"].iter().zip(headers) {
        if let Some(value) = value {
            request = request.header(*header, value);
        }
    }
    // A value that is not a valid header never reaches the app.
    let Ok(request) = request.body(Body::empty()) else {
        return;
    };
    let reply = world.send(request);
    reply.assert_well_formed(&format!("GET {name} with {headers:?}"));
    let etag = reply.header("etag").map(str::to_owned);
    match reply.status {
        StatusCode::OK => assert_eq!(&reply.body[..], content, "200 is the whole file"),
        StatusCode::PARTIAL_CONTENT => {
            let named = reply.header("content-range").expect("206 names its range");
            let (start, end) = parse_content_range(named, content.len());
            assert_eq!(
                &reply.body[..],
                &content[start..=end],
                "206 body is {named}"
            );
        }
        StatusCode::NOT_MODIFIED => {
            let sent = headers[2].expect("304 only with If-None-Match");
            let etag = etag.expect("304 carries the ETag");
            assert!(
                sent.split(',').any(|c| c.trim() == etag || c.trim() == "*"),
                "304 though {sent:?} does not name {etag}"
            );
            assert!(reply.body.is_empty());
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            assert!(headers[0].is_some(), "416 without a Range");
            let expected = format!("bytes */{}", content.len());
            assert_eq!(reply.header("content-range"), Some(expected.as_str()));
        }
        other => panic!("GET {name} with {headers:?}: unexpected {other}"),
    }
}

/// `bytes a-b/size` → `(a, b)`, checked against the size.
fn parse_content_range(value: &str, size: usize) -> (usize, usize) {
    let spec = value.strip_prefix("bytes ").expect("bytes unit");
    let (range, total) = spec.split_once('/').expect("a total");
    assert_eq!(total.parse::<usize>().ok(), Some(size), "{value}");
    let (start, end) = range.split_once('-').expect("a range");
    let (start, end) = (start.parse().expect("start"), end.parse().expect("end"));
    assert!(start <= end && end < size, "{value} outside the file");
    (start, end)
}
