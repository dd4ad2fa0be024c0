//! Session tokens: the signed JWT carried in the session cookie, and the CSRF token
//! derived from the session.
//!
//! The JWT only *names* a server-side session (`sid`); the session row decides whether it
//! is still alive, so logout, password change and account deletion end it at once. The
//! algorithm is pinned to HS256 with a 256-bit key, `iss`, `aud`, `nbf` and `exp` are all
//! required and checked with a small leeway, and no header (`kid`, `jku`, `jwk`) is
//! trusted. The token is never logged and never put in a response body.

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Longest life of a session (P7: at most 7 days).
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;
const ISSUER: &str = "coffer";
const AUDIENCE: &str = "coffer-session";
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the session secret must be at least 256 bits")]
    WeakSecret,
    #[error("invalid session token")]
    Invalid,
}

/// What every JWT Coffer signs must be: HS256 only (no header picks the algorithm or
/// key), this issuer and audience, `exp`, `nbf` and `sub` present. Times are checked by
/// the caller against the injected clock, not the library's reading of the system clock.
pub(crate) fn pinned_hs256(issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = vec![Algorithm::HS256];
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = false;
    validation.validate_exp = false;
    validation
}

/// Keys for signing session tokens and deriving CSRF tokens.
#[derive(Clone)]
pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    csrf_key: Vec<u8>,
}

impl SessionKeys {
    pub fn new(secret: &[u8]) -> Result<SessionKeys, TokenError> {
        if secret.len() < 32 {
            return Err(TokenError::WeakSecret);
        }
        let validation = pinned_hs256(ISSUER, AUDIENCE);
        // A separate key for CSRF tokens, so the two uses of the secret never mix.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .map_err(|_| TokenError::WeakSecret)?;
        mac.update(b"coffer csrf key v1");
        Ok(SessionKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            csrf_key: mac.finalize().into_bytes().to_vec(),
        })
    }

    /// Signs a token naming session `sid` of user `sub`, valid from `now` until `exp`.
    pub fn issue(&self, sub: &str, sid: &str, now: i64, exp: i64) -> Result<String, TokenError> {
        let claims = Claims {
            sub: sub.to_owned(),
            sid: sid.to_owned(),
            iat: now,
            nbf: now,
            exp,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)
    }

    /// Verifies signature, algorithm, issuer, audience, and that `now` (Unix seconds) is
    /// within `nbf..exp` (with a few seconds of leeway), and that the token claims no
    /// longer a life than sessions may have.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > 4096 {
            return Err(TokenError::Invalid);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)?;
        let leeway = LEEWAY_SECS as i64;
        let in_time = claims.nbf <= now + leeway
            && now < claims.exp + leeway
            && claims.exp - claims.nbf <= SESSION_TTL_SECS;
        if in_time {
            Ok(claims)
        } else {
            Err(TokenError::Invalid)
        }
    }

    /// The CSRF token of a session: HMAC of its id. A page of the Coffer origin learns it
    /// from the login response or `GET /auth/me` and echoes it in `X-CSRF-Token`.
    pub fn csrf_token(&self, sid: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.csrf_key).expect("any key length");
        mac.update(sid.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Constant-time check of an echoed CSRF token.
    pub fn csrf_ok(&self, sid: &str, presented: &str) -> bool {
        let Ok(presented) = hex::decode(presented) else {
            return false;
        };
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.csrf_key).expect("any key length");
        mac.update(sid.as_bytes());
        mac.verify_slice(&presented).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys::new(&[7u8; 32]).unwrap()
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn round_trip_and_times() {
        let k = keys();
        let t = k.issue("u1", "s1", NOW, NOW + 60).unwrap();
        let c = k.verify(&t, NOW).unwrap();
        assert_eq!((c.sub.as_str(), c.sid.as_str()), ("u1", "s1"));
        assert!(k.verify(&t, NOW + 120).is_err(), "expired");
        assert!(k.verify(&t, NOW - 600).is_err(), "not yet valid (nbf)");
        let week = k.issue("u1", "s1", NOW, NOW + SESSION_TTL_SECS).unwrap();
        assert!(k.verify(&week, NOW + SESSION_TTL_SECS - 1).is_ok());
        assert!(k.verify(&week, NOW + SESSION_TTL_SECS + 10).is_err());
        let too_long = k
            .issue("u1", "s1", NOW, NOW + SESSION_TTL_SECS + 3600)
            .unwrap();
        assert!(k.verify(&too_long, NOW).is_err(), "longer than 7 days");
        assert!(SessionKeys::new(&[1u8; 16]).is_err());
        assert!(k.verify(&"a".repeat(5000), NOW).is_err());
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let k = keys();
        let t = k.csrf_token("s1");
        assert!(k.csrf_ok("s1", &t));
        assert!(!k.csrf_ok("s2", &t));
        assert!(!k.csrf_ok("s1", "zz"));
    }
}
