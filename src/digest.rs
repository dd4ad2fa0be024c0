//! The one digest of text used for identifiers and for what the audit chain holds in
//! place of a name: SHA-256 as lowercase hex. A leaf: it imports nothing of Coffer's, so
//! `audit`, `signing` and `auth` can all use it without depending on each other.

use sha2::{Digest, Sha256};

pub fn sha256_hex(text: &str) -> String {
    sha256_hex_bytes(text.as_bytes())
}

pub fn sha256_hex_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
