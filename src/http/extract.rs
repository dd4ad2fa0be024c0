//! Request extractors: a strict JSON body, the client IP, and running sync work off the
//! async threads.
//!
//! `JsonBody` refuses anything but a JSON media type (415: this also refuses the "simple"
//! content types a cross-site form can send), bodies over the configured limit (413), and
//! malformed JSON with a 400 whose `pointer` names the offending place.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::{ApiError, ErrorCode};

/// Requests' blocking work queued or running now (tokio's own pool figures are not
/// stable API): what `/metrics` reports as the blocking pool's use.
static BLOCKING_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

pub fn blocking_in_flight() -> usize {
    BLOCKING_IN_FLIGHT.load(Ordering::Relaxed)
}

/// Runs blocking work (SQLite, cap-std) on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            BLOCKING_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        }
    }
    BLOCKING_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    let counted = InFlight;
    let result = tokio::task::spawn_blocking(work).await;
    drop(counted);
    result?
}

/// Whether a `Content-Type` is JSON (`application/json` or `application/*+json`).
pub fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Maximum nesting of JSON bodies.
pub const MAX_JSON_DEPTH: usize = 32;

/// A JSON request body deserialised into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !is_json(content_type) {
            return Err(unsupported_media_type());
        }
        let bytes = read_small_body(req.into_body(), state.coffer().config()).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The 415 of every endpoint that takes JSON.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::UnsupportedMediaType,
        "this endpoint takes application/json",
    )
}

/// Reads a small request body whole (JSON, a restore request): at most `max_json_bytes`
/// (413 beyond), and within `json_body_timeout_secs` (408 otherwise), so a client that
/// stops sending cannot hold the connection.
pub async fn read_small_body(
    body: Body,
    config: &crate::config::Config,
) -> Result<axum::body::Bytes, ApiError> {
    let limit = config.max_json_bytes;
    let deadline = std::time::Duration::from_secs(config.json_body_timeout_secs.max(1));
    let read = axum::body::to_bytes(body, limit);
    match tokio::time::timeout(deadline, read).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            "the request body did not arrive in time",
        )),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Parses JSON into `T`, naming where it failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let depth = json_depth(bytes);
    if depth > MAX_JSON_DEPTH {
        return Err(ApiError::bad_request(
            ErrorCode::JsonTooDeep,
            format!("JSON nesting deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let pointer = json_pointer(e.path());
        let inner = e.into_inner();
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!("{inner} (line {}, column {})", inner.line(), inner.column()),
        )
        .with_pointer(&pointer)
    })?;
    // One JSON text and nothing after it (`{}{` is not a document: found by fuzzing).
    de.end().map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!("{e} (line {}, column {})", e.line(), e.column()),
        )
    })?;
    Ok(value)
}

/// Nesting depth of a JSON text, counted without parsing (strings are skipped), so that a
/// deeply nested body is refused before the parser recurses into it.
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// The client's IP: the socket peer, or, when the peer is one of the trusted proxies, the
/// nearest hop of `X-Forwarded-For` (or `Forwarded: for=`) that is not itself a trusted
/// proxy. A header from anyone else is ignored: clients cannot choose their own IP.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

/// The hops a proxy chain reports, client first.
fn forwarded_hops(parts: &Parts) -> Vec<std::net::IpAddr> {
    let xff: Vec<std::net::IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    parts
        .headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
        .filter_map(|(_, v)| {
            let v = v.trim().trim_matches('"');
            // `[2001:db8::1]:4711`, `192.0.2.1:4711` or a bare address.
            let host = match v.strip_prefix('[') {
                Some(rest) => rest.split(']').next().unwrap_or(""),
                None => v
                    .rsplit_once(':')
                    .filter(|(h, _)| !h.contains(':'))
                    .map_or(v, |(h, _)| h),
            };
            host.parse().ok()
        })
        .collect()
}

impl ClientIp {
    pub fn from_parts(parts: &Parts, trusted: &[ipnet::IpNet]) -> ClientIp {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip());
        let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
        let client = match peer {
            Some(peer) if is_trusted(&peer) => {
                let hops = forwarded_hops(parts);
                hops.iter()
                    .rev()
                    .find(|hop| !is_trusted(hop))
                    .or(hops.first())
                    .copied()
                    .or(Some(peer))
            }
            other => other,
        };
        ClientIp(client.map(|ip| ip.to_string()))
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::from_parts(parts, state.trusted_proxies()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("application/json; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        for simple in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "",
        ] {
            assert!(!is_json(Some(simple)), "{simple}");
        }
        assert!(!is_json(None));
    }

    #[test]
    fn errors_point_at_the_problem() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Login {
            email: String,
            tags: Vec<u32>,
        }
        let e = parse_json::<Login>(br#"{"email": "a", "tags": [1, "x"]}"#).unwrap_err();
        assert_eq!(e.pointer(), Some("/tags/1"));
        let e = parse_json::<Login>(br#"{"email": "a", "tags": [], "admin": true}"#).unwrap_err();
        assert!(e.detail.contains("unknown field"), "{}", e.detail);
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(
            parse_json::<serde_json::Value>(deep.as_bytes())
                .unwrap_err()
                .code,
            ErrorCode::JsonTooDeep
        );
        assert_eq!(json_depth(br#"{"a": "[[[[[["}"#), 1);
    }

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (mut parts, _) = b.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo(
            format!("{peer}:1234").parse::<SocketAddr>().unwrap(),
        ));
        parts
    }

    #[test]
    fn a_json_body_is_one_document_and_nothing_after_it() {
        assert!(parse_json::<serde_json::Value>(b"{} \n").is_ok());
        for bad in [&b"{}{"[..], b"{} x", b"[1] [2]", b"{}\0"] {
            let e = parse_json::<serde_json::Value>(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidJson, "{bad:?}");
        }
    }

    #[test]
    fn client_ip_believes_only_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |peer, headers: &[(&str, &str)]| {
            ClientIp::from_parts(&parts(peer, headers), &trusted)
                .0
                .unwrap()
        };
        // A client cannot choose its IP.
        assert_eq!(
            ip("203.0.113.9", &[("x-forwarded-for", "1.2.3.4")]),
            "203.0.113.9"
        );
        // Behind the proxy: the nearest hop that is not a proxy.
        assert_eq!(
            ip(
                "10.0.0.2",
                &[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.5")]
            ),
            "198.51.100.7"
        );
        assert_eq!(ip("10.0.0.2", &[]), "10.0.0.2");
        assert_eq!(
            ip(
                "10.0.0.2",
                &[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")]
            ),
            "2001:db8::1"
        );
        assert_eq!(
            ip("10.0.0.2", &[("forwarded", "for=192.0.2.60:8080")]),
            "192.0.2.60"
        );
    }
}
