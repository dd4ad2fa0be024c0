//! The server's signing key (Ed25519, `<data-root>/signing.key`, mode 0600): it signs
//! deletion receipts and audit checkpoints, so that a customer or an auditor holding the
//! public key can check them later without trusting the database they were kept in (the
//! session secret, an HMAC key, could not serve: checking with it means holding it).
//!
//! A signed document is a JSON text and the hex signature over exactly its bytes; the
//! public key travels with it, and its `key_id` (the first 16 hex digits of its SHA-256)
//! names it in logs and reports.

use std::io;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The server's key pair.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public_hex: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

/// A JSON document and the server's signature over its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Signed {
    /// The signed JSON text, kept as text so that its bytes never change.
    #[schema(examples(
        "{\"tenant\":\"01939a1e0c4b7d2e8f10a2b3c4d5e6f7\",\"purged_at\":\"2026-12-30T12:00:00.000Z\"}"
    ))]
    pub document: String,
    /// Ed25519 signature, hex.
    #[schema(examples(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    ))]
    pub signature: String,
    /// The public key that checks it, hex.
    #[schema(examples("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"))]
    pub public_key: String,
}

impl Signed {
    /// True if the signature is the public key's over the document.
    pub fn verifies(&self) -> bool {
        let (Ok(public), Ok(signature)) =
            (hex::decode(&self.public_key), hex::decode(&self.signature))
        else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, public)
            .verify(self.document.as_bytes(), &signature)
            .is_ok()
    }

    /// True if it verifies and was signed by `public_key_hex`.
    pub fn verifies_with(&self, public_key_hex: &str) -> bool {
        self.public_key == public_key_hex && self.verifies()
    }
}

impl SigningKey {
    /// A new key pair, as the PKCS#8 document to store.
    pub fn generate_pkcs8() -> io::Result<Vec<u8>> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| io::Error::other("cannot generate a signing key"))
    }

    pub fn from_pkcs8(der: &[u8]) -> io::Result<SigningKey> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "signing.key is not an Ed25519 key",
            )
        })?;
        let public_hex = hex::encode(pair.public_key().as_ref());
        Ok(SigningKey { pair, public_hex })
    }

    pub fn public_key_hex(&self) -> &str {
        &self.public_hex
    }

    /// A short name for the public key.
    pub fn key_id(&self) -> String {
        key_id(&self.public_hex)
    }

    /// Signs `document` (its exact JSON text).
    pub fn sign(&self, document: String) -> Signed {
        let signature = hex::encode(self.pair.sign(document.as_bytes()).as_ref());
        Signed {
            document,
            signature,
            public_key: self.public_hex.clone(),
        }
    }
}

/// The first 16 hex digits of the SHA-256 of a hex public key.
pub fn key_id(public_key_hex: &str) -> String {
    crate::digest::sha256_hex(public_key_hex)[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_checks_only_its_own_document_and_key() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let signed = key.sign(r#"{"files":3}"#.into());
        assert!(signed.verifies() && signed.verifies_with(key.public_key_hex()));
        assert!(!signed.verifies_with(other.public_key_hex()));
        let mut tampered = signed.clone();
        tampered.document = r#"{"files":4}"#.into();
        assert!(!tampered.verifies());
        let mut forged = other.sign(signed.document.clone());
        forged.public_key = key.public_key_hex().to_owned();
        assert!(!forged.verifies());
    }
}
