//! Node tokens: what a node taking a tenant shows the node that holds it when it pulls
//! the tenant's copy. A JWT (HS256, pinned) signed with a key derived from the cluster's
//! shared `node` secret, which only nodes sharing the control plane can read; it names
//! the node asking, the tenant and the placement's epoch (the fenced one's, or for a
//! live copy the one it was taken at), and lives five minutes.
//! The key is derived for this one use, so no session token can pass for a node token
//! or the other way round (their audiences differ too).

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const ISSUER: &str = "coffer-node";
const AUDIENCE: &str = "coffer-tenant-move";
/// How long a node token is good for: one pull of one copy.
pub const NODE_TOKEN_TTL_SECS: i64 = 300;
/// Clock skew tolerated between nodes.
const LEEWAY_SECS: i64 = 30;

/// What a node token says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeClaims {
    /// The node asking (the one taking the tenant).
    pub sub: String,
    /// The tenant's id.
    pub tenant: String,
    /// The placement's epoch the copy is for (fenced, unless `live`).
    pub epoch: i64,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// A pre-copy's token: it reads a copy of the tenant's files as they are (placed on
    /// the node asked, at `epoch`, fenced or not), which the fenced pull then only
    /// completes. It never shuts the vault and cannot take the fenced copy.
    #[serde(default)]
    pub live: bool,
}

/// Signs and checks node tokens.
pub struct NodeKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl NodeKeys {
    /// Keys derived from the cluster's shared `node` secret (hex, 256 bits or more).
    pub fn new(secret: &[u8]) -> NodeKeys {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
        mac.update(b"coffer node token key v1");
        let key = mac.finalize().into_bytes();
        NodeKeys {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation: crate::auth::session::pinned_hs256(ISSUER, AUDIENCE),
        }
    }

    /// A token for node `node` to pull `tenant`'s copy at `epoch`, from `now`.
    pub fn issue(&self, node: &str, tenant: &str, epoch: i64, now: i64) -> String {
        self.sign(node, tenant, epoch, now, false)
    }

    /// A token for node `node` to pull a live copy of `tenant` (a pre-copy) at `epoch`.
    pub fn issue_live(&self, node: &str, tenant: &str, epoch: i64, now: i64) -> String {
        self.sign(node, tenant, epoch, now, true)
    }

    fn sign(&self, node: &str, tenant: &str, epoch: i64, now: i64, live: bool) -> String {
        let claims = NodeClaims {
            sub: node.to_owned(),
            tenant: tenant.to_owned(),
            epoch,
            iat: now,
            nbf: now,
            exp: now + NODE_TOKEN_TTL_SECS,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            live,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing does not fail")
    }

    /// The claims of a token signed with this key, in time at `now`; `None` otherwise.
    pub fn verify(&self, token: &str, now: i64) -> Option<NodeClaims> {
        if token.len() > 4096 {
            return None;
        }
        let claims = jsonwebtoken::decode::<NodeClaims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        let in_time = claims.nbf <= now + LEEWAY_SECS
            && now < claims.exp + LEEWAY_SECS
            && claims.exp - claims.nbf <= NODE_TOKEN_TTL_SECS;
        in_time.then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_same_key_in_time() {
        let keys = NodeKeys::new(&[7; 32]);
        let token = keys.issue("node-2", "t-1", 4, 1_000);
        let claims = keys.verify(&token, 1_010).expect("in time");
        assert_eq!((claims.sub.as_str(), claims.epoch), ("node-2", 4));
        assert!(
            keys.verify(&token, 1_000 + NODE_TOKEN_TTL_SECS + LEEWAY_SECS)
                .is_none()
        );
        assert!(keys.verify(&token, 1_000 - LEEWAY_SECS - 1).is_none());
        assert!(NodeKeys::new(&[8; 32]).verify(&token, 1_010).is_none());
        // A session token signed with the raw secret is not a node token.
        let session = crate::auth::session::SessionKeys::new(&[7; 32])
            .unwrap()
            .issue("u", "s", 1_000, 1_100)
            .unwrap();
        assert!(keys.verify(&session, 1_010).is_none());
    }
}
