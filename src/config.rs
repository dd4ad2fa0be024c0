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
    /// How many tenant vaults (directory handles plus an SQLite connection each) stay open
    /// (0: derived from the descriptor limit, see `Config::vault_cache_capacity`).
    pub vault_cache_capacity: usize,
    /// Age after which a file left in a vault's `.staging/` is treated as crash debris.
    pub staging_grace_secs: u64,
    /// Whether anyone may sign up (creating a user and a tenant they own).
    pub signup_enabled: bool,
    /// Quota of a tenant made by sign-up when `default_quota_bytes` is not set: anyone can
    /// sign up, so no self-service tenant is unlimited.
    pub signup_quota_bytes: u64,
    /// Networks of the reverse proxies in front of Coffer (`["127.0.0.1/32", "10.0.0.0/8"]`).
    /// Only a request whose peer is in one of them has its client IP taken from
    /// `X-Forwarded-For` (the nearest hop that is not a trusted proxy); from anyone else
    /// the header is ignored, so clients cannot forge their IP to dodge throttling. Behind
    /// a proxy that is not listed, every client shares the proxy's IP, and so its login
    /// throttle.
    pub trusted_proxies: Vec<String>,
    /// A client that has not sent a request's complete headers this long after the
    /// connection opened (or after its previous response, on a kept-alive connection) is
    /// disconnected. Covers silent and idle connections.
    pub header_read_timeout_secs: u64,
    /// Most connections open at once (0: derived from the descriptor limit, leaving room
    /// for vaults and databases). Beyond it, new connections wait in the listen backlog.
    pub max_connections: usize,
    /// Most connections open at once from one client IP.
    pub max_connections_per_ip: usize,
    /// Most uploads and imports streaming at once, across all tenants. Beyond it, 503
    /// with `Retry-After`.
    pub max_concurrent_uploads: usize,
    /// Most uploads and imports streaming at once into one tenant.
    pub max_concurrent_uploads_per_tenant: usize,
    /// An upload or import that sends nothing for this long is cut off.
    pub upload_idle_timeout_secs: u64,
    /// After the first `upload_min_rate_grace_secs`, an upload or import must average at
    /// least this many bytes per second, or it is cut off (a client trickling one byte
    /// now and then cannot hold a slot forever).
    pub upload_min_bytes_per_sec: u64,
    pub upload_min_rate_grace_secs: u64,
    /// Most exports streaming at once, across all tenants (each holds a thread while it
    /// writes its archive). Beyond it, 503 with `Retry-After`.
    pub max_concurrent_exports: usize,
    /// Most exports streaming at once from one tenant.
    pub max_concurrent_exports_per_tenant: usize,
    /// A connection whose client takes nothing of a response for this long is closed (a
    /// download nobody reads holds no connection, descriptor or export forever).
    pub response_write_timeout_secs: u64,
    /// A JSON request body must arrive whole within this time.
    pub json_body_timeout_secs: u64,
    /// Password hashes (argon2id, 19 MiB each) computed at once (0: the number of CPUs).
    /// Logins beyond it queue for at most `password_queue_secs`, then get 503.
    pub max_concurrent_password_hashes: usize,
    pub password_queue_secs: u64,
    /// Largest JSON request body (records, account requests), in bytes.
    pub max_json_bytes: usize,
    /// Imports: most entries in one archive.
    pub import_max_entries: usize,
    /// Imports: most bytes inflated from one archive (and largest uploaded archive).
    pub import_max_total_bytes: u64,
    /// Imports: largest inflated/compressed ratio of one entry (zip-bomb guard).
    pub import_max_ratio: u64,
    /// Days a cancelled tenant stays exportable before it is purged (P14).
    pub purge_grace_days: u32,
    /// Days an item stays in a vault's trash before the lifecycle purges it.
    pub trash_retention_days: u32,
    /// Days audit events are kept (P15: 7 years); older ones are pruned behind a signed
    /// checkpoint.
    pub audit_retention_days: u32,
    /// Days a backup set is kept (P12: backups holding deleted data are gone within 90).
    pub backup_retention_days: u32,
    /// Where `coffer backup` writes sets (default: `<data-root>/backups`; put it on
    /// another disk in production).
    pub backup_dir: Option<std::path::PathBuf>,
    /// How often `coffer serve` runs the lifecycle pass (0: never; use
    /// `coffer lifecycle run` from cron instead).
    pub lifecycle_interval_secs: u64,
    /// PEM certificate chain (leaf first) for TLS on `listen`. With `tls_key_file`,
    /// `coffer serve` terminates TLS itself; both are re-read on SIGHUP and when their
    /// modification times change. Without them, put Coffer behind a TLS proxy.
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`. Mode 0600 or 0400.
    pub tls_key_file: Option<std::path::PathBuf>,
    /// Also accept TLS 1.2 (only for clients that cannot do 1.3; off by default).
    pub tls_allow_tls12: bool,
    /// `Strict-Transport-Security` max-age sent under TLS (0: none).
    pub hsts_max_age_secs: u64,
    /// A separate address serving only `/metrics` (keep it on loopback or a private
    /// network). Without it and without `metrics_token`, `/metrics` is not served.
    pub metrics_listen: Option<String>,
    /// A bearer token (at least 32 characters) that lets a scraper read `/metrics` on
    /// the main address.
    pub metrics_token: Option<String>,
    /// Days a browser session lasts (1 to 7).
    pub session_days: u32,
    /// The address people open Coffer at (`https://files.example.com`), for the links
    /// in invitation and password-reset messages; without it, a message carries its
    /// code and says where to enter it.
    pub public_url: Option<String>,
    /// Where the control plane (tenants, users, memberships, sessions, tokens) lives:
    /// absent, the embedded SQLite `<data-root>/control.db`; a `postgres://` URL, a
    /// PostgreSQL database shared by every node that names it (README, "Scaling out").
    pub control: Option<String>,
    /// This node's name among the nodes sharing a PostgreSQL control plane (required with
    /// `control`): tenants created here are placed on it, and it serves only the tenants
    /// placed on it (others get 421). Also its server name in the HAProxy map.
    pub node: Option<String>,
    /// PEM certificate(s) of the authority that signed the PostgreSQL server's
    /// certificate. Set, every connection to `control` is TLS, and the server must prove
    /// the URL's host name with a certificate it signed; unset, connections are plain
    /// (a private network only).
    pub control_ca_file: Option<std::path::PathBuf>,
    /// The address the other nodes reach this node's `coffer serve` at
    /// (`http://10.0.0.1:8080`, or `https://...` when it serves TLS): where a node
    /// taking one of this node's tenants (`coffer tenant move`) pulls its copy from.
    /// Registered in the control plane as the node starts.
    pub node_url: Option<String>,
    /// PEM certificate(s) of the authority that signed the other nodes' certificates,
    /// for pulling a tenant from an `https://` node URL (the URL's host must match).
    pub node_ca_file: Option<std::path::PathBuf>,
    /// Hours a node keeps its copy of a tenant moved away from it before the lifecycle
    /// pass removes it (1 to 720): time to look at the old copy if the move is in doubt.
    pub move_grace_hours: u32,
}

/// A node's address for the other nodes: scheme, host and port (required), nothing else.
pub fn valid_node_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|authority| {
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let port = authority
            .rsplit_once(':')
            .and_then(|(host, port)| (!host.is_empty()).then(|| port.parse::<u16>().ok()))
            .flatten();
        port.is_some_and(|p| p > 0)
            && authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
    })
}

/// A node name: what HAProxy and a DNS label accept alike.
fn valid_node_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// Shortest `metrics_token` accepted (a guessable token would make metrics public).
pub const MIN_METRICS_TOKEN_CHARS: usize = 32;

/// Descriptors an open vault holds: its directory handles and its index's database, WAL
/// and shared-memory files (7 measured), rounded up.
pub const DESCRIPTORS_PER_VAULT: usize = 8;

/// Bounds of the vault cache derived from the descriptor limit: below the minimum the
/// limit is too low to serve anyway (the server warns); the maximum bounds memory (an
/// open vault holds its SQLite connection with its schema and page cache).
const AUTO_VAULT_CACHE_MIN: usize = 64;
const AUTO_VAULT_CACHE_MAX: usize = 16_384;

/// The process's descriptor limit, after raising the soft limit to the hard one (as
/// nginx and Go do: the hard limit is what the operator allowed). Where raising is not
/// allowed (a sandbox filtering setrlimit), the current limit stands: systemd's
/// LimitNOFILE has usually set it already.
pub fn descriptor_limit() -> usize {
    rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(1024) as usize
}

/// Longest browser session a configuration may set (the policy's ceiling).
pub const MAX_SESSION_DAYS: u32 = 7;

/// Largest single file by default: 16 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 * 1024 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".to_owned(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            default_quota_bytes: None,
            vault_cache_capacity: 0,
            staging_grace_secs: 3600,
            signup_enabled: true,
            signup_quota_bytes: 1024 * 1024 * 1024,
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: 30,
            max_connections: 0,
            max_connections_per_ip: 256,
            max_concurrent_uploads: 64,
            max_concurrent_uploads_per_tenant: 8,
            upload_idle_timeout_secs: 60,
            upload_min_bytes_per_sec: 4096,
            upload_min_rate_grace_secs: 60,
            max_concurrent_exports: 16,
            max_concurrent_exports_per_tenant: 2,
            response_write_timeout_secs: 60,
            json_body_timeout_secs: 30,
            max_concurrent_password_hashes: 0,
            password_queue_secs: 10,
            max_json_bytes: 1024 * 1024,
            import_max_entries: 200_000,
            import_max_total_bytes: 256 * 1024 * 1024 * 1024,
            import_max_ratio: 1000,
            purge_grace_days: 30,
            trash_retention_days: 30,
            audit_retention_days: 7 * 365 + 2,
            backup_retention_days: 90,
            backup_dir: None,
            lifecycle_interval_secs: 600,
            tls_cert_file: None,
            tls_key_file: None,
            tls_allow_tls12: false,
            hsts_max_age_secs: 2 * 365 * 24 * 3600,
            metrics_listen: None,
            metrics_token: None,
            session_days: 7,
            public_url: None,
            control: None,
            node: None,
            control_ca_file: None,
            node_url: None,
            node_ca_file: None,
            move_grace_hours: 24,
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
    #[error("invalid config file {path}{message}")]
    Parse { path: String, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
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

    /// `trusted_proxies` parsed (a bare address is a one-address network).
    pub fn trusted_proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::Invalid(format!(
                            "trusted_proxies: {text:?} is not an IP network (like 10.0.0.0/8)"
                        ))
                    })
            })
            .collect()
    }

    /// Checks what the types cannot: networks parse, limits are not zero where zero
    /// would refuse everything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.trusted_proxy_networks()?;
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert_file and tls_key_file go together: set both or neither".into(),
            ));
        }
        if let Some(token) = &self.metrics_token
            && token.len() < MIN_METRICS_TOKEN_CHARS
        {
            return Err(ConfigError::Invalid(format!(
                "metrics_token must be at least {MIN_METRICS_TOKEN_CHARS} characters"
            )));
        }
        if let Some(url) = &self.public_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok
                || url.chars().any(|c| c.is_whitespace() || c.is_control())
                || url.contains('#')
            {
                return Err(ConfigError::Invalid(
                    "public_url must be an http:// or https:// address, such as https://files.example.com".into(),
                ));
            }
        }
        if let Some(url) = &self.control
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "control must be a postgres:// URL (leave it out for the embedded SQLite control plane)".into(),
            ));
        }
        match (&self.control, &self.node) {
            (Some(_), None) => {
                return Err(ConfigError::Invalid(
                    "a PostgreSQL control plane needs node: this node's name, such as node = \"node-1\"".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "node only applies with a PostgreSQL control plane (control = \"postgres://...\")".into(),
                ));
            }
            (None, None) if self.control_ca_file.is_some() => {
                return Err(ConfigError::Invalid(
                    "control_ca_file only applies with a PostgreSQL control plane".into(),
                ));
            }
            (None, None) if self.node_url.is_some() || self.node_ca_file.is_some() => {
                return Err(ConfigError::Invalid(
                    "node_url and node_ca_file only apply with a PostgreSQL control plane".into(),
                ));
            }
            (_, Some(node)) if !valid_node_name(node) => {
                return Err(ConfigError::Invalid(
                    "node must be 1 to 63 lower-case letters, digits and hyphens".into(),
                ));
            }
            _ => {}
        }
        if let Some(url) = &self.node_url
            && !valid_node_url(url)
        {
            return Err(ConfigError::Invalid(
                "node_url must be http://HOST:PORT or https://HOST:PORT, with no path".into(),
            ));
        }
        if !(1..=720).contains(&self.move_grace_hours) {
            return Err(ConfigError::Invalid(
                "move_grace_hours must be 1 to 720".into(),
            ));
        }
        if !(1..=MAX_SESSION_DAYS).contains(&self.session_days) {
            return Err(ConfigError::Invalid(format!(
                "session_days must be 1 to {MAX_SESSION_DAYS}"
            )));
        }
        for (name, value) in [
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("max_concurrent_uploads", self.max_concurrent_uploads),
            (
                "max_concurrent_uploads_per_tenant",
                self.max_concurrent_uploads_per_tenant,
            ),
            ("max_concurrent_exports", self.max_concurrent_exports),
            (
                "max_concurrent_exports_per_tenant",
                self.max_concurrent_exports_per_tenant,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }

    /// How many vaults stay open: the configured number, or by default half of the
    /// descriptor limit at `DESCRIPTORS_PER_VAULT` each (the other half is for
    /// connections), at most `AUTO_VAULT_CACHE_MAX`. Every tenant kept open is a request
    /// that does not pay for opening its index (schema parse, WAL map) and closing it.
    pub fn vault_cache_capacity(&self) -> usize {
        self.vault_cache_capacity_under(descriptor_limit())
    }

    /// `vault_cache_capacity` under a given descriptor limit.
    pub fn vault_cache_capacity_under(&self, descriptor_limit: usize) -> usize {
        match self.vault_cache_capacity {
            0 => (descriptor_limit / 2 / DESCRIPTORS_PER_VAULT)
                .clamp(AUTO_VAULT_CACHE_MIN, AUTO_VAULT_CACHE_MAX),
            n => n,
        }
    }

    /// Whether `coffer serve` terminates TLS itself.
    pub fn serves_tls(&self) -> bool {
        self.tls_cert_file.is_some()
    }

    /// The vault limits this configuration sets.
    pub fn vault_limits(&self) -> VaultLimits {
        VaultLimits {
            max_file_bytes: self.max_file_bytes,
            staging_grace: Duration::from_secs(self.staging_grace_secs),
            cache_capacity: self.vault_cache_capacity(),
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
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: parse_message(&text, &e),
        })?;
        config.validate()?;
        Ok(config)
    }
}

/// `:LINE:COLUMN: what` from a TOML error (the line and column of its span, 1-based),
/// one line instead of toml's multi-line excerpt.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let what = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!(":{line}:{column}: {what}")
        }
        None => format!(": {what}"),
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
        assert_eq!(c.vault_cache_capacity, 0);
        assert!(c.vault_cache_capacity() >= AUTO_VAULT_CACHE_MIN);
        assert_eq!(c.vault_cache_capacity_under(20_000), 1_250);
        assert_eq!(c.vault_cache_capacity_under(1 << 20), AUTO_VAULT_CACHE_MAX);
        assert_eq!(c.vault_cache_capacity_under(256), AUTO_VAULT_CACHE_MIN);
        let c: Config = toml::from_str("vault_cache_capacity = 5").unwrap();
        assert_eq!(c.vault_cache_capacity_under(20_000), 5);
        let c: Config = toml::from_str(r#"trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]"#).unwrap();
        assert_eq!(c.trusted_proxy_networks().unwrap().len(), 2);
        let bad: Config = toml::from_str(r#"trusted_proxies = ["everyone"]"#).unwrap();
        assert!(bad.validate().is_err());
    }
}
