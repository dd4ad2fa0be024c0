//! Configuration: defaults, overridden by an optional TOML file (`--config`), overridden
//! by command-line flags. This module only describes settings and the limits derived from
//! them (the one place a default limit is written down); it opens nothing and imports
//! nothing from the rest of Coffer.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Every setting of a Coffer instance. Unknown keys in a file are an error, so a typo
/// never silently leaves a limit at its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address `coffer serve` listens on.
    pub listen: String,
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Storage quota given to new tenants, in bytes (absent: unlimited).
    pub default_quota_bytes: Option<u64>,
    /// How many tenant vaults (directory handles plus an SQLite connection each) stay open.
    pub vault_cache_capacity: usize,
    /// Age after which a file left in a vault's `.staging/` is treated as crash debris.
    pub staging_grace_secs: u64,
    /// Whether anyone may sign up (creating a user and a tenant they own).
    pub signup_enabled: bool,
    /// Take the client IP from the last `X-Forwarded-For` hop (only behind a proxy that
    /// sets it; otherwise clients could forge their IP and dodge login throttling).
    pub trust_forwarded_for: bool,
    /// Largest JSON request body (records, account requests), in bytes.
    pub max_json_bytes: usize,
    /// Imports: most entries in one archive.
    pub import_max_entries: usize,
    /// Imports: most bytes inflated from one archive (and largest uploaded archive).
    pub import_max_total_bytes: u64,
    /// Imports: largest inflated/compressed ratio of one entry (zip-bomb guard).
    pub import_max_ratio: u64,
}

/// Largest single file by default: 16 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 * 1024 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".to_owned(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            default_quota_bytes: None,
            vault_cache_capacity: 256,
            staging_grace_secs: 3600,
            signup_enabled: true,
            trust_forwarded_for: false,
            max_json_bytes: 1024 * 1024,
            import_max_entries: 200_000,
            import_max_total_bytes: 256 * 1024 * 1024 * 1024,
            import_max_ratio: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
}

/// Limits that apply to every vault of a data root.
#[derive(Debug, Clone)]
pub struct VaultLimits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// How old a staging file must be before an open treats it as left by a crash.
    pub staging_grace: Duration,
    /// How many vaults stay open in the cache.
    pub cache_capacity: usize,
}

impl Default for VaultLimits {
    fn default() -> Self {
        Config::default().vault_limits()
    }
}

/// Limits on what an imported archive may make Coffer inflate and store.
#[derive(Debug, Clone)]
pub struct ImportLimits {
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
    /// Largest inflated/compressed ratio of one entry (beyond the first MiB).
    pub max_ratio: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Config::default().import_limits()
    }
}

impl Config {
    /// The import limits this configuration sets.
    pub fn import_limits(&self) -> ImportLimits {
        ImportLimits {
            max_entries: self.import_max_entries,
            max_entry_bytes: self.max_file_bytes,
            max_total_bytes: self.import_max_total_bytes,
            max_ratio: self.import_max_ratio,
        }
    }

    /// The vault limits this configuration sets.
    pub fn vault_limits(&self) -> VaultLimits {
        VaultLimits {
            max_file_bytes: self.max_file_bytes,
            staging_grace: Duration::from_secs(self.staging_grace_secs),
            cache_capacity: self.vault_cache_capacity,
        }
    }

    /// Reads a TOML file over the defaults.
    #[allow(
        clippy::disallowed_methods,
        reason = "the operator's config file, not tenant data"
    )]
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.message().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("max_file_byte = 5").is_err());
        let c: Config = toml::from_str("max_file_bytes = 5").unwrap();
        assert_eq!(c.max_file_bytes, 5);
        assert_eq!(c.vault_cache_capacity, 256);
    }
}
