//! Parsed names: every user-supplied name becomes one of these types at the edge.
//!
//! `VaultPath` is the only way to name something inside a vault; `CollectionName` and
//! `RecordId` name records. (Tenant and user names and ids live in `crate::names`.) Parsing normalises first (NFC) and validates after,
//! and never transforms after validating. This module does no I/O and must never accept
//! a name that could leave a vault, collide with another spelling of itself, or fail to
//! unpack from a ZIP on Windows or macOS.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

pub use crate::names::NameError;

/// Longest name of one path component, in bytes (the common filesystem limit).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest whole vault path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// Why a user-supplied vault path was refused. Messages are meant for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path must be relative to the vault root (no leading '/')")]
    Absolute,
    #[error("path has an empty component ('//' or a trailing '/')")]
    EmptyComponent,
    #[error("path components '.' and '..' are not allowed")]
    DotComponent,
    #[error("backslashes are not allowed in paths")]
    Backslash,
    #[error("NUL bytes are not allowed in paths")]
    Nul,
    #[error("control characters are not allowed in paths")]
    ControlChar,
    #[error("bidirectional-text control characters are not allowed in paths")]
    BidiControl,
    #[error("character {0:?} is not allowed in names (it cannot be unpacked on Windows)")]
    ForbiddenChar(char),
    #[error("names may not end with a dot or a space")]
    TrailingDotOrSpace,
    #[error("names may not start with a space")]
    LeadingSpace,
    #[error("{0:?} is a reserved device name on Windows")]
    ReservedName(String),
    #[error("a path component is longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong,
    #[error("path is longer than {MAX_PATH_BYTES} bytes")]
    PathTooLong,
    #[error("a path component decodes to a path separator or '..' (encoded traversal)")]
    EncodedTraversal,
    #[error("a path component contains a look-alike of '/', '\\', ':' or '..'")]
    LookalikeSeparator,
}

/// A normalised, validated path of a file or directory inside one vault, relative to the
/// vault's `files/` root, components joined by `/`. The root itself is not a `VaultPath`
/// (an `Option<VaultPath>` of `None` stands for it).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VaultPath(String);

impl VaultPath {
    /// Parses a user-supplied path: NFC-normalises it, then checks every rule of
    /// ARCHITECTURE.md ("Names").
    pub fn parse(input: &str) -> Result<Self, PathError> {
        if input.is_empty() {
            return Err(PathError::Empty);
        }
        // Refuse the raw-byte classes before normalising, so that no normalisation step can
        // hide them.
        check_raw_chars(input)?;
        if input.starts_with('/') {
            return Err(PathError::Absolute);
        }
        let normalised: String = input.nfc().collect();
        if normalised.len() > MAX_PATH_BYTES {
            return Err(PathError::PathTooLong);
        }
        for component in normalised.split('/') {
            check_component(component)?;
        }
        Ok(VaultPath(normalised))
    }

    /// Parses an optional directory argument where the empty string and `/` mean the root.
    pub fn parse_dir(input: &str) -> Result<Option<Self>, PathError> {
        match input.trim_end_matches('/') {
            "" => Ok(None),
            trimmed => Self::parse(trimmed).map(Some),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The containing directory, `None` for a top-level entry.
    pub fn parent(&self) -> Option<VaultPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| VaultPath(parent.to_owned()))
    }

    /// The parent as the string the index stores (`""` for the root).
    pub fn parent_str(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(parent, _)| parent)
    }

    /// Every ancestor directory, outermost first (not including `self`).
    pub fn ancestors(&self) -> Vec<VaultPath> {
        self.0
            .match_indices('/')
            .map(|(i, _)| VaultPath(self.0[..i].to_owned()))
            .collect()
    }

    /// `self` followed by one more component, which is validated like any other.
    pub fn join(&self, name: &str) -> Result<VaultPath, PathError> {
        VaultPath::parse(&format!("{}/{}", self.0, name))
    }

    /// True if `self` is `other` or lies inside it.
    pub fn starts_with(&self, other: &VaultPath) -> bool {
        self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// The key under which two names that differ only by case collide (see
    /// `fold_name`).
    pub fn fold_key(&self) -> String {
        fold_name(self.file_name())
    }
}

/// The case-folding policy: two names in one directory may not be equal after this
/// function, so that an export unpacks on case-insensitive filesystems (Windows, macOS).
/// Names are already NFC; Unicode lower-casing approximates what those filesystems fold.
pub fn fold_name(name: &str) -> String {
    name.to_lowercase()
}

impl fmt::Display for VaultPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VaultPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultPath({:?})", self.0)
    }
}

impl AsRef<std::path::Path> for VaultPath {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

fn check_raw_chars(input: &str) -> Result<(), PathError> {
    for c in input.chars() {
        match c {
            '\0' => return Err(PathError::Nul),
            '\\' => return Err(PathError::Backslash),
            c if c.is_control() => return Err(PathError::ControlChar),
            c if is_bidi_control(c) => return Err(PathError::BidiControl),
            _ => {}
        }
    }
    Ok(())
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters Windows refuses in names (besides `\` and controls, refused earlier).
const WINDOWS_FORBIDDEN: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

fn check_component(component: &str) -> Result<(), PathError> {
    if component.is_empty() {
        return Err(PathError::EmptyComponent);
    }
    if component == "." || component == ".." {
        return Err(PathError::DotComponent);
    }
    if component.len() > MAX_NAME_BYTES {
        return Err(PathError::NameTooLong);
    }
    if let Some(c) = component.chars().find(|c| WINDOWS_FORBIDDEN.contains(c)) {
        return Err(PathError::ForbiddenChar(c));
    }
    if component.ends_with('.') || component.ends_with(' ') {
        return Err(PathError::TrailingDotOrSpace);
    }
    if component.starts_with(' ') {
        return Err(PathError::LeadingSpace);
    }
    if is_windows_reserved(component) {
        return Err(PathError::ReservedName(component.to_owned()));
    }
    // Compatibility forms (fullwidth `．．／`, `＼`, `：`) are harmless to Coffer itself but
    // become separators under NFKC or Windows "best fit" code-page mapping in other tools.
    let compat: String = component.nfkc().collect();
    if compat == "."
        || compat == ".."
        || compat.contains(['/', '\\', ':'])
        || (compat != component && is_windows_reserved(&compat))
    {
        return Err(PathError::LookalikeSeparator);
    }
    if decodes_to_traversal(component) {
        return Err(PathError::EncodedTraversal);
    }
    Ok(())
}

/// Windows device names, with or without an extension, with trailing spaces, and with the
/// superscript digits Windows also treats as reserved (`COM¹`).
fn is_windows_reserved(component: &str) -> bool {
    let stem = component.split('.').next().unwrap_or(component).trim_end();
    let upper = stem.to_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let mut chars = upper.chars();
            let prefix: String = chars.by_ref().take(3).collect();
            let rest: Vec<char> = chars.collect();
            (prefix == "COM" || prefix == "LPT")
                && rest.len() == 1
                && matches!(rest[0], '0'..='9' | '¹' | '²' | '³')
        }
    }
}

/// True if percent-decoding the component (up to three rounds, covering single, double
/// and triple encoding) yields a separator, a NUL, or a dot component. A literal `%` in a
/// name is fine ("50% off.pdf"); an encoded `../` never is, because some other tool may
/// decode it again.
fn decodes_to_traversal(component: &str) -> bool {
    let mut current = component.to_owned();
    for _ in 0..3 {
        let Some(decoded) = percent_decode_once(&current) else {
            return false;
        };
        if decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0']) {
            return true;
        }
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    false
}

/// One round of percent-decoding, or `None` if nothing was encoded. Invalid UTF-8 after
/// decoding (overlong forms such as `%c0%ae`) is replaced, so `%c0%ae%c0%ae` is not a dot
/// component; `check_raw_chars` already refused the decoded bytes of real input.
fn percent_decode_once(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Byte-level: `%` may be followed by a multi-byte character (`%2é`), so the
        // string must never be sliced at `i + 3`.
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|b| hex_value(*b)),
                bytes.get(i + 2).and_then(|b| hex_value(*b)),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Overlong encodings of '.' and '/' (C0 AE, C0 AF, E0 80 AE...) are what old decoders
    // turned into traversal: treat them as what they pretend to be.
    let text = String::from_utf8_lossy(&out).into_owned();
    let overlong = out
        .windows(2)
        .any(|w| w[0] == 0xC0 && (w[1] == 0xAE || w[1] == 0xAF))
        || out
            .windows(3)
            .any(|w| w[0] == 0xE0 && w[1] == 0x80 && (w[2] == 0xAE || w[2] == 0xAF));
    if overlong {
        return Some("..".to_owned());
    }
    Some(text)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The name of a record collection (`clients`, `invoices`). Collection names are bound as
/// SQL parameters, never spliced into SQL, but they are also file names in an export, so
/// they are allow-listed here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionName(String);

impl CollectionName {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let mut chars = input.chars();
        let ok = (1..=64).contains(&input.len())
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(CollectionName(input.to_owned()))
        } else {
            Err(NameError::InvalidCollection)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a record inside a collection: server-generated by default, or supplied by a
/// client that imports from another system.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(String);

impl RecordId {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let ok = (1..=128).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(RecordId(input.to_owned()))
        } else {
            Err(NameError::InvalidRecordId)
        }
    }
    pub fn generate() -> Self {
        RecordId(uuid::Uuid::now_v7().simple().to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<&str, PathError>) {
        let got = VaultPath::parse(input);
        assert_eq!(
            got.as_ref().map(|p| p.as_str()).map_err(Clone::clone),
            expect,
            "input {input:?}"
        );
    }

    #[test]
    fn accepts_ordinary_names() {
        check("invoices/2026/inv-001.pdf", Ok("invoices/2026/inv-001.pdf"));
        check("Job photos/site 3.jpg", Ok("Job photos/site 3.jpg"));
        check("50% off.pdf", Ok("50% off.pdf"));
        check(".hidden", Ok(".hidden"));
        check("..foo", Ok("..foo"));
        check("ünïcödé/日本語.txt", Ok("ünïcödé/日本語.txt"));
        check("console.log", Ok("console.log"));
        check("COM10", Ok("COM10"));
    }

    #[test]
    fn normalises_to_nfc() {
        // "é" as e + combining acute becomes the single precomposed character.
        check("cafe\u{301}.txt", Ok("caf\u{e9}.txt"));
    }

    #[test]
    fn rejects_each_hostile_class() {
        use PathError::*;
        let table: &[(&str, PathError)] = &[
            ("", Empty),
            ("..", DotComponent),
            ("../etc/passwd", DotComponent),
            ("a/../../b", DotComponent),
            ("a/./b", DotComponent),
            ("/etc/passwd", Absolute),
            ("a//b", EmptyComponent),
            ("a/", EmptyComponent),
            ("..\\windows", Backslash),
            ("\\\\?\\C:\\x", Backslash),
            ("\\\\server\\share", Backslash),
            ("a/C:/b", ForbiddenChar(':')),
            ("C:", ForbiddenChar(':')),
            ("file.txt\0.jpg", Nul),
            ("a\u{1}b", ControlChar),
            ("a\u{7f}", ControlChar),
            ("a\nb", ControlChar),
            ("evil\u{202E}gpj.exe", BidiControl),
            ("CON", ReservedName("CON".into())),
            ("nul.txt", ReservedName("nul.txt".into())),
            ("dir/Com1.tar.gz", ReservedName("Com1.tar.gz".into())),
            ("LPT\u{b9}", ReservedName("LPT\u{b9}".into())),
            ("aux .txt", ReservedName("aux .txt".into())),
            ("trailing.", TrailingDotOrSpace),
            ("trailing ", TrailingDotOrSpace),
            (" leading", LeadingSpace),
            ("a<b", ForbiddenChar('<')),
            ("a|b", ForbiddenChar('|')),
            ("what?", ForbiddenChar('?')),
            ("star*", ForbiddenChar('*')),
            ("quote\"", ForbiddenChar('"')),
            ("\u{ff0e}\u{ff0e}", LookalikeSeparator),
            ("a\u{ff0f}b", LookalikeSeparator),
            ("a\u{ff3c}b", LookalikeSeparator),
            ("c\u{ff1a}x", LookalikeSeparator),
            ("%2e%2e", EncodedTraversal),
            ("..%2fetc", EncodedTraversal),
            ("..%5cetc", EncodedTraversal),
            ("%252e%252e", EncodedTraversal),
            ("%25252e%25252e", EncodedTraversal),
            ("a%00b", EncodedTraversal),
            ("%c0%ae%c0%ae", EncodedTraversal),
        ];
        for (input, err) in table {
            check(input, Err(err.clone()));
        }
        check(&"a".repeat(256), Err(NameTooLong));
        // Regression (found by the property test): `%` before a multi-byte character.
        check("%2e\u{301}", Ok("%2\u{e9}"));
        check("%\u{e9}", Ok("%\u{e9}"));
        check(&"a".repeat(255), Ok(&"a".repeat(255)));
        let long = vec!["d".repeat(200); 21].join("/");
        check(&long, Err(PathTooLong));
    }

    /// `..;/` (a Tomcat path-parameter trick) is a plain name to Coffer: it cannot climb,
    /// because `..;` is not `..`. It is accepted as the literal name it is.
    #[test]
    fn semicolon_dot_dot_is_literal() {
        check("..;/x", Ok("..;/x"));
    }

    #[test]
    fn ancestors_and_parent() {
        let p = VaultPath::parse("a/b/c.txt").unwrap();
        let names: Vec<String> = p.ancestors().iter().map(|a| a.to_string()).collect();
        assert_eq!(names, ["a", "a/b"]);
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
        assert_eq!(p.parent_str(), "a/b");
        assert_eq!(p.file_name(), "c.txt");
        assert!(p.starts_with(&VaultPath::parse("a/b").unwrap()));
        assert!(!p.starts_with(&VaultPath::parse("a/bc").unwrap()));
        assert_eq!(VaultPath::parse("top").unwrap().parent(), None);
    }

    #[test]
    fn collections_and_record_ids() {
        assert!(CollectionName::parse("clients").is_ok());
        for bad in ["", "Clients", "1x", "a-b", "a b", "x;drop", &"a".repeat(65)] {
            assert!(CollectionName::parse(bad).is_err(), "{bad}");
        }
        assert!(RecordId::parse("abc-123_X").is_ok());
        assert!(RecordId::parse("a/b").is_err());
    }
}
