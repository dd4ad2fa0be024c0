//! Every path a WebDAV request carries, checked before dav-server sees the request: the
//! request URL, `Destination:` (MOVE, COPY), and the resource tags of `If:` (which name
//! lock roots). Each is percent-decoded once and parsed by `VaultPath::parse`, the one
//! parser of every path input; the filesystem layer parses dav-server's paths again
//! (`vault_path`), so nothing reaches the vault unparsed.
//!
//! dav-server reduces an absolute `Destination` URL to its path and ignores the host, so
//! the host is checked here: another server is 502 (RFC 4918 9.8.5), another tenant's
//! prefix (or anything outside this vault's) 403 `destination-elsewhere`.

use axum::http::StatusCode;
use percent_encoding::percent_decode_str;

use crate::http::error::{ApiError, ErrorCode};
use crate::vault::path::VaultPath;

/// A decoded path below a vault's WebDAV prefix (`/`, `/a/b`, `/a/b/`; empty for the
/// root) as a vault path (`None`: the root).
pub fn vault_path(decoded: &[u8]) -> Result<Option<VaultPath>, ApiError> {
    let text = std::str::from_utf8(decoded).map_err(|_| {
        ApiError::bad_request(ErrorCode::InvalidPath, "paths must be UTF-8 once decoded")
    })?;
    let relative = text.strip_prefix('/').unwrap_or(text);
    Ok(VaultPath::parse_dir(relative)?)
}

/// The vault path of a URL path (still percent-encoded) under `prefix` (`/dav/<slug>`).
pub fn target(url_path: &str, prefix: &str) -> Result<Option<VaultPath>, ApiError> {
    let rest = url_path
        .strip_prefix(prefix)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(elsewhere)?;
    let decoded: Vec<u8> = percent_decode_str(rest).collect();
    vault_path(&decoded)
}

fn elsewhere() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::DestinationElsewhere,
        "the destination is outside this vault (WebDAV never moves or copies between vaults)",
    )
}

fn other_server() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        ErrorCode::DestinationElsewhere,
        "the destination is on another server",
    )
}

/// A URL of this vault, as `Destination:` and `If:` tags give them: an absolute path, or
/// an absolute `http(s)` URL whose host is this server's (`host`, the request's `Host`).
pub fn same_vault_url(
    value: &str,
    host: Option<&str>,
    prefix: &str,
) -> Result<Option<VaultPath>, ApiError> {
    let value = value.trim();
    if value.contains(['?', '#']) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidPath,
            "a WebDAV URL has no query or fragment",
        ));
    }
    let path = if value.starts_with('/') {
        value
    } else {
        let (scheme, rest) = value.split_once("://").ok_or_else(|| {
            ApiError::bad_request(ErrorCode::InvalidPath, "not a path or an http(s) URL")
        })?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(other_server());
        }
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        // Credentials in the authority, or another host, are never this server.
        let same_host = host.is_some_and(|h| h.eq_ignore_ascii_case(authority));
        if authority.contains('@') || !same_host {
            return Err(other_server());
        }
        path
    };
    target(path, prefix)
}

/// Checks an `If:` header (RFC 4918 10.4) before dav-server parses it: every `<...>` and
/// `[...]` token is closed, with no white space and balanced quotes inside (dav-server's
/// own scanner indexes past the end of an unclosed one), and every resource tag (a
/// `<url>` outside parentheses; inside them are lock tokens) names this vault.
pub fn check_if_header(value: &str, host: Option<&str>, prefix: &str) -> Result<(), ApiError> {
    let malformed = || ApiError::bad_request(ErrorCode::BadRequest, "the If: header is malformed");
    let bytes = value.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth = depth.checked_sub(1).ok_or_else(malformed)?,
            open @ (b'<' | b'[') => {
                let close = if open == b'<' { b'>' } else { b']' };
                let mut quoted = false;
                let mut end = i + 1;
                while quoted || bytes.get(end) != Some(&close) {
                    match bytes.get(end) {
                        None => return Err(malformed()),
                        Some(c) if c.is_ascii_whitespace() => return Err(malformed()),
                        Some(b'"') => quoted = !quoted,
                        Some(_) => {}
                    }
                    end += 1;
                }
                if open == b'<' && depth == 0 {
                    same_vault_url(&value[i + 1..end], host, prefix)?;
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err(malformed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/dav/alpha";
    const HOST: Option<&str> = Some("coffer.test");

    fn code(r: Result<Option<VaultPath>, ApiError>) -> (u16, &'static str) {
        let e = r.expect_err("refused");
        (e.status.as_u16(), e.code.as_str())
    }

    #[test]
    fn request_urls_decode_once_and_parse_as_vault_paths() {
        assert_eq!(target("/dav/alpha", PREFIX).unwrap(), None);
        assert_eq!(target("/dav/alpha/", PREFIX).unwrap(), None);
        assert_eq!(
            target("/dav/alpha/a%20b/c%C3%A9/", PREFIX)
                .unwrap()
                .unwrap()
                .as_str(),
            "a b/cé"
        );
        for hostile in [
            "/dav/alpha/..%2f..%2fetc",
            "/dav/alpha/a/%2e%2e/%2e%2e/x",
            "/dav/alpha/a%5c..%5cx",
            "/dav/alpha/x%00.txt",
            "/dav/alpha/%c0%ae%c0%ae/x",
            "/dav/alpha/CON",
            "/dav/alpha/%252e%252e/x",
        ] {
            assert_eq!(code(target(hostile, PREFIX)).0, 400, "{hostile}");
        }
        assert_eq!(
            code(target("/dav/alphabet/x", PREFIX)),
            (403, "destination-elsewhere")
        );
    }

    #[test]
    fn destinations_stay_in_this_vault_on_this_server() {
        let ok = |v: &str| same_vault_url(v, HOST, PREFIX).unwrap().unwrap();
        assert_eq!(ok("/dav/alpha/b.txt").as_str(), "b.txt");
        assert_eq!(
            ok("http://coffer.test/dav/alpha/d/b.txt").as_str(),
            "d/b.txt"
        );
        assert_eq!(ok("HTTPS://COFFER.TEST/dav/alpha/b").as_str(), "b");
        let refused = |v: &str| code(same_vault_url(v, HOST, PREFIX));
        assert_eq!(refused("/dav/bravo/b.txt"), (403, "destination-elsewhere"));
        assert_eq!(
            refused("http://evil.test/dav/alpha/b"),
            (502, "destination-elsewhere")
        );
        assert_eq!(
            refused("http://x@coffer.test/dav/alpha/b"),
            (502, "destination-elsewhere")
        );
        assert_eq!(
            refused("file:///etc/passwd"),
            (502, "destination-elsewhere")
        );
        assert_eq!(refused("/dav/alpha/../bravo/b").0, 400);
        assert_eq!(refused("/dav/alpha/b?x=1").0, 400);
        assert_eq!(refused("b.txt").0, 400);
    }

    #[test]
    fn if_headers_name_only_this_vault() {
        let ok = |v: &str| check_if_header(v, HOST, PREFIX);
        ok("(<opaquelocktoken:abc> [\"e<t>ag\"])").unwrap();
        ok("(<urn:uuid:1> [\"0123\"]) (Not <DAV:no-lock> [W/\"0123\"])").unwrap();
        ok("</dav/alpha/a.txt> (<urn:uuid:1>)").unwrap();
        ok("<http://coffer.test/dav/alpha/a> (Not <urn:uuid:1>)").unwrap();
        assert_eq!(
            ok("</dav/bravo/a.txt> (<urn:uuid:1>)").unwrap_err().status,
            403
        );
        assert_eq!(
            ok("</dav/alpha/..%2f..%2fx> (<urn:uuid:1>)")
                .unwrap_err()
                .status,
            400
        );
        // Unclosed tokens, as a client with a fixed-size buffer cuts them.
        for cut in [
            "</dav/alpha/a",
            "(<urn:uuid:1> [\"abc",
            "(<urn:uuid:1> [\"a]",
            "(<urn:uuid:1>",
            "(<urn:uuid:1>))",
            "(<urn: uuid:1>)",
        ] {
            assert_eq!(ok(cut).unwrap_err().status, 400, "{cut}");
        }
    }
}
