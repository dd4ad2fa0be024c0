//! The web UI's files, embedded in the binary from `src/http/ui/` (plain ES modules and
//! one stylesheet: no build step beyond cargo, no CDN, nothing fetched at run time).
//!
//! The page at `/` names its files under `/ui/<version>/`, where `<version>` is a digest
//! of every embedded file: a new build gets new addresses, so the files themselves can be
//! cached for a year (`immutable`) and the page (a few hundred bytes, revalidated by its
//! ETag) is the only thing a returning browser asks for. Modules import each other by
//! relative names, which resolve under the same version. Everything is served under a
//! CSP that allows this origin only: no inline script or style, previews of a user's
//! files through `blob:` addresses the page makes itself.

use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ErrorCode};

#[derive(Embed)]
#[folder = "src/http/ui/"]
struct Files;

/// The page's policy: scripts, styles, images and requests from this origin; previews of
/// stored files as `blob:` images, media and frames (made by the page from downloaded
/// bytes, typed from a fixed list, so never HTML); no plugins, no forms elsewhere, never
/// framed.
pub const UI_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob:; media-src 'self' blob:; frame-src blob:; object-src 'none'; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the versioned files live.
const UI_ROOT: &str = "/ui/";

/// The page's stand-in for the version, replaced when the bundle is built.
const VERSION_MARK: &str = "%VERSION%";

/// One file, ready to send: its bytes, a gzip copy when that is smaller, its type and tag
/// (`Bytes`, so a response shares them instead of copying).
struct Asset {
    bytes: Bytes,
    gzipped: Option<Bytes>,
    content_type: String,
    etag: String,
}

impl Asset {
    fn new(name: &str, bytes: Vec<u8>) -> Asset {
        let digest = hex::encode(Sha256::digest(&bytes));
        let content_type = match mime_guess::from_path(name).first_raw() {
            Some(t) if t.starts_with("text/") || t == "application/javascript" => {
                format!("{t}; charset=utf-8")
            }
            Some(t) => t.to_owned(),
            None => "application/octet-stream".to_owned(),
        };
        let gzipped = gzip(&bytes)
            .filter(|z| z.len() + 64 < bytes.len())
            .map(Bytes::from);
        Asset {
            bytes: Bytes::from(bytes),
            gzipped,
            content_type,
            etag: format!("\"{}\"", &digest[..32]),
        }
    }

    /// The file, gzipped when the client takes it; `304` for a tag it already holds.
    fn respond(&self, request: &HeaderMap, cache_control: &'static str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(UI_CSP),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        // Each encoding is its own representation, with its own tag (RFC 9110 8.8.3).
        let gzipped = self.gzipped.as_ref().filter(|_| accepts_gzip(request));
        let etag = match gzipped {
            Some(_) => format!("{}-gz\"", self.etag.trim_end_matches('"')),
            None => self.etag.clone(),
        };
        if let Ok(tag) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, tag);
        }
        let held = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        if held {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        if let Ok(t) = HeaderValue::from_str(&self.content_type) {
            headers.insert(header::CONTENT_TYPE, t);
        }
        match gzipped {
            Some(z) => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                (headers, z.clone()).into_response()
            }
            _ => (headers, self.bytes.clone()).into_response(),
        }
    }
}

/// Every embedded file under its name, and the page.
struct Bundle {
    version: String,
    page: Asset,
    files: HashMap<String, Asset>,
}

static BUNDLE: LazyLock<Bundle> = LazyLock::new(|| {
    let mut names: Vec<String> = Files::iter().map(|n| n.into_owned()).collect();
    names.sort();
    let mut digest = Sha256::new();
    let mut files = HashMap::new();
    for name in names {
        let Some(file) = Files::get(&name) else {
            continue;
        };
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(file.metadata.sha256_hash());
        files.insert(name.clone(), file.data.into_owned());
    }
    let version = hex::encode(digest.finalize())[..16].to_owned();
    let page = files.remove("index.html").unwrap_or_default();
    let page = String::from_utf8_lossy(&page).replace(VERSION_MARK, &version);
    Bundle {
        page: Asset::new("index.html", page.into_bytes()),
        files: files
            .into_iter()
            .map(|(name, bytes)| {
                let asset = Asset::new(&name, bytes);
                (name, asset)
            })
            .collect(),
        version,
    }
});

/// The web UI's page: everything else is the files it names.
#[utoipa::path(get, path = "/",
    responses(
        (status = 200, description = "The web UI (sign-in page when signed out)", body = String, content_type = "text/html"),
        (status = 304, description = "The page the browser holds is current (`If-None-Match`)"),
    ))]
pub async fn index(request: HeaderMap) -> Response {
    BUNDLE.page.respond(&request, "no-cache")
}

/// One of the web UI's files, by version and name; long-cached, since a new build has a
/// new version.
#[utoipa::path(get, path = "/ui/{file}",
    params(("file" = String, Path, description = "`<version>/<name>` of one of the web UI's files", example = "0123456789abcdef/app.css")),
    responses(
        (status = 200, description = "The file", body = String, content_type = "*/*"),
        (status = 304, description = "The file the browser holds is current (`If-None-Match`)"),
    ))]
pub async fn file(Path(file): Path<String>, request: HeaderMap) -> Result<Response, ApiError> {
    let found = file
        .split_once('/')
        .filter(|(version, _)| *version == BUNDLE.version)
        .and_then(|(_, name)| BUNDLE.files.get(name));
    match found {
        Some(asset) => Ok(asset.respond(&request, "public, max-age=31536000, immutable")),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("not found: {UI_ROOT}{file} (the page names this build's files)"),
        )),
    }
}

fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|q| matches!(q.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_this_builds_files_and_each_exists() {
        let page = String::from_utf8(BUNDLE.page.bytes.to_vec()).unwrap();
        assert!(!page.contains(VERSION_MARK));
        let prefix = format!("{UI_ROOT}{}/", BUNDLE.version);
        let named: Vec<&str> = page
            .split('"')
            .filter_map(|s| s.strip_prefix(prefix.as_str()))
            .collect();
        assert!(
            named.len() >= 2,
            "the page names its script and stylesheet: {page}"
        );
        for name in named {
            assert!(BUNDLE.files.contains_key(name), "{name} is not embedded");
        }
    }

    #[test]
    fn each_encoding_has_its_own_tag_and_revalidates() {
        let script = &BUNDLE.files["js/app.js"];
        let mut plain = HeaderMap::new();
        let mut zipped = HeaderMap::new();
        zipped.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let tag = |r: &Response| r.headers()[header::ETAG].to_str().unwrap().to_owned();
        let (a, b) = (script.respond(&plain, "x"), script.respond(&zipped, "x"));
        assert_eq!(b.headers()[header::CONTENT_ENCODING], "gzip");
        assert_ne!(tag(&a), tag(&b));
        plain.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&tag(&a)).unwrap(),
        );
        zipped.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&tag(&a)).unwrap(),
        );
        assert_eq!(
            script.respond(&plain, "x").status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(script.respond(&zipped, "x").status(), StatusCode::OK);
    }

    #[test]
    fn gzip_is_taken_only_when_offered() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
    }
}
