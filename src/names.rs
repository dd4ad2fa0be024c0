//! Names and ids below everything: tenant slugs, e-mail addresses, and the server-chosen
//! `TenantId` and `UserId`. Every user-supplied name becomes one of these types at the
//! edge; nothing in this module does I/O or depends on any other part of Coffer, so
//! `audit`, `control` and `vault` can all name tenants and users without importing each
//! other.

use std::fmt;

/// Why a tenant slug, collection name, record id or e-mail address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "tenant slug must be 2-63 characters of a-z, 0-9 and '-', start with a letter and not end with '-'"
    )]
    InvalidSlug,
    #[error("tenant slug {0:?} is reserved")]
    ReservedSlug(String),
    #[error("collection name must be 1-64 characters of a-z, 0-9 and '_', starting with a letter")]
    InvalidCollection,
    #[error("record id must be 1-128 characters of A-Z, a-z, 0-9, '-' and '_'")]
    InvalidRecordId,
    #[error("not a valid e-mail address")]
    InvalidEmail,
    #[error("not a valid identifier")]
    InvalidId,
    #[error(
        "a name has at most {MAX_DISPLAY_NAME_CHARS} characters, none of them control characters"
    )]
    InvalidDisplayName,
}

/// Longest display name (a person's, a tenant's, a token's), in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// A display name as typed, checked at the edge: trimmed, at most
/// `MAX_DISPLAY_NAME_CHARS` characters, no control characters (no NUL, no line breaks in
/// a log line or a mail header).
pub fn display_name(text: &str) -> Result<String, NameError> {
    let trimmed = text.trim();
    if trimmed.chars().count() > MAX_DISPLAY_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(NameError::InvalidDisplayName);
    }
    Ok(trimmed.to_owned())
}

/// The human-chosen, URL-safe name of a tenant (`acme-landscaping`). Never used on disk:
/// the vault directory is named by the server-chosen `TenantId`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantSlug(String);

const RESERVED_SLUGS: &[&str] = &["api", "admin", "static", "www", "health", "metrics"];

impl TenantSlug {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let ok_len = (2..=63).contains(&input.len());
        let mut chars = input.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = input
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !(ok_len && first_ok && rest_ok) || input.ends_with('-') || input.contains("--") {
            return Err(NameError::InvalidSlug);
        }
        if RESERVED_SLUGS.contains(&input) {
            return Err(NameError::ReservedSlug(input.to_owned()));
        }
        Ok(TenantSlug(input.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lower-cased e-mail address. Deliberately permissive beyond the basic shape: the
/// mailer, not the parser, is the judge of deliverability.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let trimmed = input.trim();
        let ok = trimmed.len() <= 254
            && trimmed.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            })
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Email(trimmed.to_lowercase()))
        } else {
            Err(NameError::InvalidEmail)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! server_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new random id (UUID v4: no creation order leaks through it).
            pub fn generate() -> Self {
                $name(uuid::Uuid::new_v4())
            }
            /// Parses the 32-hex-digit form only, the one used on disk and in tokens.
            pub fn parse(input: &str) -> Result<Self, NameError> {
                if input.len() != 32 || !input.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(NameError::InvalidId);
                }
                uuid::Uuid::try_parse(input).map($name).map_err(|_| NameError::InvalidId)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.simple())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

server_id!(
    /// The server-chosen id of a tenant; also the name of its vault directory.
    TenantId
);
server_id!(
    /// The server-chosen id of a user account.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_emails_ids() {
        assert!(TenantSlug::parse("acme-landscaping").is_ok());
        for bad in [
            "A", "a", "-a", "a-", "a--b", "a_b", "1abc", "api", "ab/cd", "ab..cd",
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in ["ann", "@x.com", "a@b", "a b@c.com", "a@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        let id = TenantId::generate();
        assert_eq!(TenantId::parse(&id.to_string()).unwrap(), id);
        assert!(TenantId::parse("../../etc").is_err());
        assert!(TenantId::parse(&id.to_string().to_uppercase()).is_err());
    }
}
