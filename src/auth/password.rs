//! Password hashing: argon2id for everything new; bcrypt hashes from an older system are
//! accepted and flagged for an upgrade on the next successful login.
//!
//! Nothing here stores or logs a password. Length is capped before hashing, so a
//! megabyte-long "password" cannot turn a login into a denial of service, and so that
//! bcrypt's silent truncation at 72 bytes is never relied on for new hashes.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Longest password ever hashed or checked, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest accepted new password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted new password, in characters (at most 4 bytes each, so always within
/// `MAX_PASSWORD_BYTES`): a rule a person and the API description can state.
pub const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("password hashing failed")]
    Hashing,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Correct, and the stored hash is current.
    Ok,
    /// Correct, but the stored hash is legacy (bcrypt) or weaker than today's parameters:
    /// store `hash(password)` now.
    OkNeedsUpgrade,
    Mismatch,
}

/// OWASP's argon2id minimum: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, parameters())
}

/// The argon2id parameters of every new hash (the deployment audit reads them).
pub fn parameters() -> Params {
    Params::DEFAULT
}

/// Hashes a new password (checking its length first) into a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    hash_unchecked(password)
}

/// Hashes without the minimum-length policy: for upgrading a legacy hash at login, where
/// the password was accepted under an older policy.
pub fn hash_unchecked(password: &str) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// Checks a password against a stored argon2 PHC string or bcrypt hash.
pub fn verify(password: &str, stored: &str) -> Verified {
    if password.len() > MAX_PASSWORD_BYTES {
        return Verified::Mismatch;
    }
    if is_bcrypt(stored) {
        // bcrypt only reads 72 bytes: a longer password must not match on its prefix.
        if password.len() > 72 {
            return Verified::Mismatch;
        }
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verified::OkNeedsUpgrade,
            _ => Verified::Mismatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::Mismatch;
    };
    if argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verified::Mismatch;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() >= Params::DEFAULT_M_COST && p.t_cost() >= Params::DEFAULT_T_COST
        });
    if current {
        Verified::Ok
    } else {
        Verified::OkNeedsUpgrade
    }
}

/// Spends about as long as a real verification, for logins of unknown users, so response
/// time does not reveal whether an account exists.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("dummy-password-for-timing").unwrap_or_default());
    let _ = verify(password, stored);
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(verify("correct horse battery", &h), Verified::Ok);
        assert_eq!(verify("wrong horse battery", &h), Verified::Mismatch);
        assert_ne!(hash("correct horse battery").unwrap(), h, "salted");
    }

    #[test]
    fn bcrypt_is_accepted_and_flagged_for_upgrade() {
        let legacy = bcrypt::hash("legacy password", 4).unwrap();
        assert_eq!(verify("legacy password", &legacy), Verified::OkNeedsUpgrade);
        assert_eq!(verify("legacy passwore", &legacy), Verified::Mismatch);
        let long = "x".repeat(80);
        let truncated = bcrypt::hash(&long[..72], 4).unwrap();
        assert_eq!(verify(&long, &truncated), Verified::Mismatch);
    }

    #[test]
    fn length_limits() {
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
        assert_eq!(hash(&"x".repeat(1025)), Err(PasswordError::TooLong));
        assert_eq!(
            verify(&"x".repeat(5000), "$argon2id$garbage"),
            Verified::Mismatch
        );
        assert_eq!(verify("anything at all", "not a hash"), Verified::Mismatch);
    }
}
