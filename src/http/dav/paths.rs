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
        let same_host = host.is_some_and(|h| normal_authority(h) == normal_authority(authority));
        if authority.contains('@') || !same_host {
            return Err(other_server());
        }
        path
    };
    target(path, prefix)
}

/// An authority without the default port of either scheme, lower-cased: `Host: a:443`
/// and `https://a/` name the same server.
fn normal_authority(authority: &str) -> String {
    let lower = authority.to_ascii_lowercase();
    match lower
        .strip_suffix(":443")
        .or_else(|| lower.strip_suffix(":80"))
    {
        Some(bare) => bare.to_owned(),
        None => lower,
    }
}

/// A space before the next word of a list, unless it opens the list.
fn spaced(out: &mut String) {
    if !out.ends_with('(') {
        out.push(' ');
    }
}

/// One token of an `If:` header.
enum IfToken<'a> {
    Open,
    Close,
    Not,
    /// `<...>`: a resource tag outside a list, a state token inside one.
    Angle(&'a str),
    /// `[...]`: an entity tag.
    Bracket(&'a str),
}

fn if_tokens(value: &str) -> Result<Vec<IfToken<'_>>, ApiError> {
    let malformed = || ApiError::bad_request(ErrorCode::BadRequest, "the If: header is malformed");
    // Visible ASCII and blanks only: dav-server reads the raw bytes and indexes past the
    // end of tokens it cannot close.
    if !value
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b))
    {
        return Err(malformed());
    }
    let bytes = value.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => {}
            b'(' => tokens.push(IfToken::Open),
            b')' => tokens.push(IfToken::Close),
            b'N' if value[i..].starts_with("Not") => {
                tokens.push(IfToken::Not);
                i += 2;
            }
            open @ (b'<' | b'[') => {
                let close = if open == b'<' { b'>' } else { b']' };
                let mut quoted = false;
                let mut end = i + 1;
                while quoted || bytes.get(end) != Some(&close) {
                    match bytes.get(end) {
                        None | Some(b' ' | b'\t') => return Err(malformed()),
                        Some(b'"') => quoted = !quoted,
                        Some(_) => {}
                    }
                    end += 1;
                }
                let inner = &value[i + 1..end];
                if inner.is_empty() {
                    return Err(malformed());
                }
                tokens.push(if open == b'<' {
                    IfToken::Angle(inner)
                } else {
                    IfToken::Bracket(inner)
                });
                i = end;
            }
            _ => return Err(malformed()),
        }
        i += 1;
    }
    Ok(tokens)
}

/// Checks an `If:` header (RFC 4918 10.4) against its whole grammar before dav-server
/// sees it, since dav-server ignores a header it cannot decode and would then act
/// unconditionally: lists of conditions (`Not`, state tokens, entity tags), optionally
/// after resource tags, which must name this vault. Returns the header to pass on, with
/// relative resource tags made absolute (dav-server reads tags as absolute URLs only).
pub fn check_if_header(value: &str, host: Option<&str>, prefix: &str) -> Result<String, ApiError> {
    let malformed = || ApiError::bad_request(ErrorCode::BadRequest, "the If: header is malformed");
    let tokens = if_tokens(value)?;
    let tagged = matches!(tokens.first(), Some(IfToken::Angle(_)));
    let mut out = String::with_capacity(value.len() + 32);
    let mut in_list = false;
    let mut conditions = 0;
    let mut negated = false;
    let mut lists_after_tag = 1;
    for token in &tokens {
        match token {
            IfToken::Open if !in_list => {
                (in_list, conditions) = (true, 0);
                lists_after_tag += 1;
                out.push_str(" (");
            }
            IfToken::Close if in_list && conditions > 0 && !negated => {
                in_list = false;
                out.push(')');
            }
            IfToken::Not if in_list && !negated => {
                negated = true;
                spaced(&mut out);
                out.push_str("Not");
            }
            // A state token is a URI (`urn:uuid:...`, `opaquelocktoken:...`, `DAV:no-lock`).
            IfToken::Angle(url) if in_list => {
                if !url.contains(':') {
                    return Err(malformed());
                }
                (conditions, negated) = (conditions + 1, false);
                spaced(&mut out);
                out.push_str(&format!("<{url}>"));
            }
            IfToken::Bracket(tag) if in_list => {
                let quoted = tag.strip_prefix("W/").unwrap_or(tag);
                let opaque = quoted
                    .strip_prefix('"')
                    .and_then(|q| q.strip_suffix('"'))
                    .ok_or_else(malformed)?;
                if opaque.contains('"') {
                    return Err(malformed());
                }
                (conditions, negated) = (conditions + 1, false);
                spaced(&mut out);
                out.push_str(&format!("[{tag}]"));
            }
            IfToken::Angle(url) if tagged && lists_after_tag > 0 => {
                same_vault_url(url, host, prefix)?;
                lists_after_tag = 0;
                if url.starts_with('/') {
                    // dav-server reads only the path of a tag; the authority just has to
                    // parse (the request's own may not, and is checked above anyway).
                    out.push_str(&format!(" <http://localhost{url}>"));
                } else {
                    out.push_str(&format!(" <{url}>"));
                }
            }
            _ => return Err(malformed()),
        }
    }
    if in_list || tokens.is_empty() || lists_after_tag == 0 {
        return Err(malformed());
    }
    Ok(out.trim_start().to_owned())
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
    fn if_headers_name_only_this_vault_and_follow_the_grammar() {
        let ok = |v: &str| check_if_header(v, HOST, PREFIX);
        ok("(<opaquelocktoken:abc> [\"e<t>ag\"])").unwrap();
        ok("(<urn:uuid:1> [\"0123\"]) (Not <DAV:no-lock> [W/\"0123\"])").unwrap();
        ok("<http://coffer.test:80/dav/alpha/a> (Not <urn:uuid:1>)").unwrap();
        // A relative tag is passed on absolute, as dav-server needs it.
        assert_eq!(
            ok("</dav/alpha/a.txt> ([\"e1\"])").unwrap(),
            "<http://localhost/dav/alpha/a.txt> ([\"e1\"])"
        );
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
        // Cut, unbalanced, outside the grammar, or not ASCII: all refused, never passed
        // on for dav-server to drop (and then act without the condition).
        for bad in [
            "</dav/alpha/a",
            "(<urn:uuid:1> [\"abc",
            "(<urn:uuid:1> [\"a]",
            "(<urn:uuid:1>",
            "(<urn:uuid:1>))",
            "(<urn: uuid:1>)",
            "()",
            "(Not Not <urn:uuid:1>)",
            "(Not)",
            "(word)",
            "</dav/alpha/a>",
            "(<urn:uuid:1>) </dav/alpha/a> (<urn:uuid:1>)",
            "([abc])",
            "(<urn:uuid:1> [\"\u{e9}\"])",
            "(<abc>)",
            "([\"a\"\"b\"])",
            "",
        ] {
            assert_eq!(ok(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn default_ports_name_the_same_server() {
        let ok = |v: &str, host: &str| same_vault_url(v, Some(host), PREFIX).map(|_| ());
        ok("https://coffer.test/dav/alpha/x", "coffer.test:443").unwrap();
        ok("http://coffer.test:80/dav/alpha/x", "Coffer.Test").unwrap();
        assert_eq!(
            ok("http://coffer.test:8080/dav/alpha/x", "coffer.test")
                .unwrap_err()
                .status,
            502
        );
    }
}
