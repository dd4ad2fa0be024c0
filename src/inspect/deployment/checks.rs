//! The deployment audit's rules: one entry per check, in the order the report prints
//! them. Each rule reads `Facts` only, so it has one home and a test can drive it both
//! ways. Thresholds are named constants next to the rules that use them.

use std::net::IpAddr;

use super::facts::{Encryption, Facts, FileFacts};
use super::{Check, Severity, Verdict};
use crate::config::MAX_SESSION_DAYS;

/// OWASP Password Storage Cheat Sheet, argon2id minimum.
const ARGON2_MIN_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_MIN_ITERATIONS: u32 = 2;
/// A backup older than this means the nightly job is not running.
const BACKUP_MAX_AGE_HOURS: i64 = 26;
/// P12: a backup holding deleted data is gone within 90 days.
const BACKUP_MAX_RETENTION_DAYS: u32 = 90;
/// Below this share of the disk free, writes are near `507 disk-full`.
const DISK_MIN_FREE_PERCENT: u64 = 5;
const DISK_WARN_FREE_PERCENT: u64 = 20;
const DISK_MIN_FREE_BYTES: u64 = 1024 * 1024 * 1024;
/// An audit event this far in the future means the clock went back.
const CLOCK_MAX_SKEW_SECS: i64 = 300;
/// HSTS shorter than a year is not preloadable and leaves returning users exposed.
const HSTS_MIN_SECS: u64 = 365 * 24 * 3600;
/// Descriptors a busy server needs beyond its reserve (vault cache, databases).
const DESCRIPTOR_HEADROOM: u64 = 1024;

pub const CHECKS: &[Check] = &[
    Check {
        id: "process-not-root",
        explains: "the service runs as a dedicated unprivileged user, not root",
        severity: Severity::Critical,
        fix: "run as the `coffer` user (deploy/systemd/coffer.service: User=coffer)",
        run: |f| Verdict::expect(f.euid != 0, format!("uid {}", f.euid), "running as root"),
    },
    Check {
        id: "data-root-mode",
        explains: "the data root is mode 0700 and owned by the service user",
        severity: Severity::Critical,
        fix: "chown coffer: <data-root> && chmod 0700 <data-root>",
        run: |f| owned_private(f, "data root", &f.data_root),
    },
    Check {
        id: "data-root-entries-mode",
        explains: "databases, markers and vault directories: files 0600, directories 0700, owned by the service user",
        severity: Severity::High,
        fix: "chown -R coffer: <data-root>; chmod 0600 on files and 0700 on directories at its top",
        run: |f| {
            let bad: Vec<String> = f
                .root_entries
                .iter()
                .filter(|(_, e)| !private_enough(f.euid, e))
                .map(|(name, e)| format!("{name} ({:o}, uid {})", e.mode, e.uid))
                .collect();
            Verdict::expect(
                bad.is_empty(),
                format!("{} entries private", f.root_entries.len()),
                format!(
                    "open to others or owned by another user: {}",
                    bad.join(", ")
                ),
            )
        },
    },
    Check {
        id: "secret-strength",
        explains: "the session-signing secret holds at least 256 random bits",
        severity: Severity::Critical,
        fix: "stop Coffer, move secret.key away and let `coffer init` make a new one (signs everyone out)",
        run: |f| {
            Verdict::expect(
                f.secret_bits >= 256,
                format!("{} bits", f.secret_bits),
                format!("{} bits (unreadable or short)", f.secret_bits),
            )
        },
    },
    Check {
        id: "key-files-mode",
        explains: "secret.key and signing.key are readable by the service user alone (0600 or 0400)",
        severity: Severity::Critical,
        fix: "chmod 0600 secret.key signing.key && chown coffer: secret.key signing.key; rotate the secret if others could read it",
        run: |f| {
            let bad: Vec<String> = f
                .key_files
                .iter()
                .filter(|(_, k)| k.mode & 0o077 != 0 || k.uid != f.euid)
                .map(|(name, k)| format!("{name} ({:o}, uid {})", k.mode, k.uid))
                .collect();
            if f.key_files.is_empty() {
                return Verdict::fail("no key files found");
            }
            Verdict::expect(
                bad.is_empty(),
                format!("{} key files private", f.key_files.len()),
                format!("readable by others: {}", bad.join(", ")),
            )
        },
    },
    Check {
        id: "transport-tls",
        explains: "clients reach Coffer over TLS: it terminates TLS itself, or listens on loopback behind a trusted reverse proxy",
        severity: Severity::Critical,
        fix: "set tls_cert_file and tls_key_file, or listen on 127.0.0.1 behind a TLS proxy listed in trusted_proxies (deploy/nginx)",
        run: |f| {
            let loopback = listen_is_loopback(&f.config.listen);
            match (
                f.config.serves_tls(),
                loopback,
                f.config.trusted_proxies.is_empty(),
            ) {
                (true, _, _) => Verdict::pass("TLS terminated by Coffer"),
                (false, true, false) => Verdict::pass("loopback behind a trusted proxy"),
                (false, true, true) => Verdict::warn(
                    "loopback without trusted_proxies: a proxy in front works, but every client shares its address (and its login throttle)",
                ),
                // A proxy on another host (or a container's published port): plain HTTP
                // on a private or wildcard address, which only the proxy must reach.
                (false, false, false) if listen_is_private_or_wildcard(&f.config.listen) => {
                    Verdict::warn(format!(
                        "plain HTTP on {} behind a trusted proxy: make sure only the proxy can reach it",
                        f.config.listen
                    ))
                }
                (false, false, _) => Verdict::fail(format!(
                    "plain HTTP on {} without a trusted proxy: passwords and cookies cross the network in clear",
                    f.config.listen
                )),
            }
        },
    },
    Check {
        id: "tls-version",
        explains: "TLS 1.3 only (1.2 only when the operator opted in for old clients)",
        severity: Severity::High,
        fix: "remove tls_allow_tls12 from the config; behind a proxy, set `ssl_protocols TLSv1.3` there",
        run: |f| match (f.config.serves_tls(), f.config.tls_allow_tls12) {
            (true, false) => Verdict::pass("TLS 1.3 only"),
            (true, true) => Verdict::fail("TLS 1.2 accepted (tls_allow_tls12)"),
            (false, _) => {
                Verdict::pass("TLS at the proxy: deploy/nginx/coffer.conf allows 1.3 only")
            }
        },
    },
    Check {
        id: "tls-certificate",
        explains: "the certificate and key load and match, and the key file is private",
        severity: Severity::Critical,
        fix: "point tls_cert_file/tls_key_file at the full chain and its key; chmod 0600 the key",
        run: |f| match &f.tls {
            None => Verdict::pass("no TLS files configured"),
            Some(tls) => match (&tls.loads, tls.key_file) {
                (Err(why), _) => Verdict::fail(why.clone()),
                (Ok(_), Some(key)) if key.mode & 0o077 != 0 => {
                    Verdict::fail(format!("key file mode {:o}: readable by others", key.mode))
                }
                (Ok(_), None) => Verdict::fail("key file cannot be examined"),
                (Ok(fingerprint), Some(_)) => Verdict::pass(format!("leaf sha256 {fingerprint}")),
            },
        },
    },
    Check {
        id: "session-cookie",
        explains: "the session cookie is HttpOnly, Secure, SameSite=Strict, Path=/, and `__Host-` prefixed under TLS",
        severity: Severity::High,
        fix: "a build that changed the cookie: do not deploy it",
        run: |f| {
            let cookie = &f.edge.session_cookie;
            let mut missing: Vec<&str> = ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"]
                .into_iter()
                .filter(|attr| !cookie.split("; ").any(|a| a.eq_ignore_ascii_case(attr)))
                .collect();
            if f.config.serves_tls() && !cookie.starts_with("__Host-") {
                missing.push("__Host- prefix");
            }
            if cookie.to_ascii_lowercase().contains("domain=") {
                missing.push("no Domain");
            }
            Verdict::expect(
                missing.is_empty() && !cookie.is_empty(),
                cookie.split('=').next().unwrap_or("").to_owned(),
                format!("missing: {}", missing.join(", ")),
            )
        },
    },
    Check {
        id: "session-lifetime",
        explains: "a browser session lasts at most 7 days",
        severity: Severity::Medium,
        fix: "set session_days to 7 or less",
        run: |f| {
            Verdict::expect(
                (1..=MAX_SESSION_DAYS).contains(&f.config.session_days),
                format!("{} days", f.config.session_days),
                format!("{} days", f.config.session_days),
            )
        },
    },
    Check {
        id: "password-hashing",
        explains: "passwords are hashed with argon2id at or above OWASP's minimum (19 MiB, 2 passes)",
        severity: Severity::High,
        fix: "a build with weaker hashing: do not deploy it",
        run: |f| {
            let p = &f.password;
            let detail = format!(
                "{} m={} KiB t={} p={}",
                p.algorithm, p.memory_kib, p.iterations, p.parallelism
            );
            Verdict::expect(
                p.algorithm == "argon2id"
                    && p.memory_kib >= ARGON2_MIN_MEMORY_KIB
                    && p.iterations >= ARGON2_MIN_ITERATIONS
                    && p.parallelism >= 1,
                detail.clone(),
                detail,
            )
        },
    },
    Check {
        id: "login-throttle",
        explains: "failed sign-ins are limited per account and per address",
        severity: Severity::High,
        fix: "a build without throttling: do not deploy it",
        run: |f| {
            let t = &f.throttle;
            let detail = format!(
                "{} per account, {} per address, per {} s",
                t.per_account, t.per_address, t.window_secs
            );
            Verdict::expect(
                (1..=20).contains(&t.per_account)
                    && (1..=100).contains(&t.per_address)
                    && t.window_secs >= 60,
                detail.clone(),
                detail,
            )
        },
    },
    Check {
        id: "request-limits",
        explains: "body sizes, timeouts and connection caps are set so a slow or greedy client cannot hold the server",
        severity: Severity::High,
        fix: "restore the defaults in deploy/coffer.toml.example for the limits named",
        run: |f| {
            let c = &f.config;
            let bad: Vec<&str> = [
                ("header_read_timeout_secs", c.header_read_timeout_secs <= 60),
                (
                    "response_write_timeout_secs",
                    c.response_write_timeout_secs <= 300,
                ),
                (
                    "upload_idle_timeout_secs",
                    c.upload_idle_timeout_secs <= 300,
                ),
                ("upload_min_bytes_per_sec", c.upload_min_bytes_per_sec > 0),
                ("json_body_timeout_secs", c.json_body_timeout_secs <= 120),
                ("max_json_bytes", c.max_json_bytes <= 16 * 1024 * 1024),
                ("max_connections_per_ip", c.max_connections_per_ip <= 1024),
                (
                    "max_concurrent_uploads_per_tenant",
                    c.max_concurrent_uploads_per_tenant < c.max_concurrent_uploads,
                ),
                (
                    "max_concurrent_exports_per_tenant",
                    c.max_concurrent_exports_per_tenant < c.max_concurrent_exports,
                ),
                ("import_max_ratio", c.import_max_ratio <= 10_000),
            ]
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| name)
            .collect();
            Verdict::expect(
                bad.is_empty(),
                "within bounds",
                format!("too loose: {}", bad.join(", ")),
            )
        },
    },
    Check {
        id: "trusted-proxies-narrow",
        explains: "only named proxies may set X-Forwarded-For (no network wider than /8 or /32 for IPv6)",
        severity: Severity::Critical,
        fix: "list the proxies' own addresses in trusted_proxies, never 0.0.0.0/0",
        run: |f| match f.config.trusted_proxy_networks() {
            Err(e) => Verdict::fail(e.to_string()),
            Ok(nets) => {
                let wide: Vec<String> = nets
                    .iter()
                    .filter(|n| match n.addr() {
                        IpAddr::V4(_) => n.prefix_len() < 8,
                        IpAddr::V6(_) => n.prefix_len() < 32,
                    })
                    .map(ToString::to_string)
                    .collect();
                Verdict::expect(
                    wide.is_empty(),
                    format!("{} networks", nets.len()),
                    format!(
                        "anyone could forge their address through {}",
                        wide.join(", ")
                    ),
                )
            }
        },
    },
    Check {
        id: "cors",
        explains: "no cross-origin read is allowed (no Access-Control-Allow-Origin on a foreign origin's request)",
        severity: Severity::High,
        fix: "remove the CORS layer or proxy rule that adds Access-Control-Allow-Origin",
        run: |f| match f.edge.headers.get("access-control-allow-origin") {
            None => Verdict::pass("no CORS headers"),
            Some(origin) => Verdict::fail(format!(
                "Access-Control-Allow-Origin: {origin}{}",
                if f.edge
                    .headers
                    .contains_key("access-control-allow-credentials")
                {
                    " with credentials"
                } else {
                    ""
                }
            )),
        },
    },
    Check {
        id: "security-headers",
        explains: "every response has nosniff, a CSP with frame-ancestors 'none', X-Frame-Options, no-referrer, and HSTS (1 year+) under TLS",
        severity: Severity::High,
        fix: "keep hsts_max_age_secs at a year or more; a build missing the others: do not deploy it",
        run: |f| {
            let h = &f.edge.headers;
            let has = |name: &str, want: &str| {
                h.get(name)
                    .is_some_and(|v| v.to_ascii_lowercase().contains(want))
            };
            let mut missing = Vec::new();
            for (name, want) in [
                ("x-content-type-options", "nosniff"),
                ("content-security-policy", "frame-ancestors 'none'"),
                ("x-frame-options", "deny"),
                ("referrer-policy", "no-referrer"),
            ] {
                if !has(name, want) {
                    missing.push(name.to_owned());
                }
            }
            if f.config.serves_tls() {
                let max_age = h
                    .get("strict-transport-security")
                    .and_then(|v| v.split(';').find_map(|d| d.trim().strip_prefix("max-age=")))
                    .and_then(|v| v.parse::<u64>().ok());
                if max_age.is_none_or(|s| s < HSTS_MIN_SECS) {
                    missing.push(format!("strict-transport-security (max-age {max_age:?})"));
                }
            }
            Verdict::expect(
                missing.is_empty(),
                "all present",
                format!("missing: {}", missing.join(", ")),
            )
        },
    },
    Check {
        id: "metrics-not-public",
        explains: "/metrics is not served to anonymous clients on the main address, and its own address is loopback or private",
        severity: Severity::High,
        fix: "leave metrics_token unset or long and secret; set metrics_listen to 127.0.0.1:9090 or a private address",
        run: |f| {
            if !matches!(f.edge.metrics_status, 401 | 404) {
                return Verdict::fail(format!(
                    "anonymous GET /metrics answered {}",
                    f.edge.metrics_status
                ));
            }
            match &f.config.metrics_listen {
                Some(addr) if !listen_is_private(addr) => {
                    Verdict::fail(format!("metrics_listen {addr} is a public address"))
                }
                Some(addr) => Verdict::pass(format!("on {addr} only")),
                None => Verdict::pass(format!("anonymous request: {}", f.edge.metrics_status)),
            }
        },
    },
    Check {
        id: "debug-logging-off",
        explains: "logs are not at debug or trace level (they would record more than operations need)",
        severity: Severity::Medium,
        fix: "unset RUST_LOG or set it to info",
        run: |f| {
            let filter = f.log_filter.as_deref().unwrap_or("info");
            let verbose = filter.to_ascii_lowercase();
            Verdict::expect(
                !(verbose.contains("debug") || verbose.contains("trace")),
                format!("RUST_LOG={filter}"),
                format!("RUST_LOG={filter}"),
            )
        },
    },
    Check {
        id: "audit-chain",
        explains: "the audit log's hash chain and its signed checkpoints verify",
        severity: Severity::Critical,
        fix: "do not start: keep the data root as evidence and restore audit.db from the latest backup",
        run: |f| match &f.audit_chain {
            Ok(events) => Verdict::pass(format!("{events} events intact")),
            Err(why) => Verdict::fail(why.clone()),
        },
    },
    Check {
        id: "database-integrity",
        explains: "the control plane, the audit log and every vault index pass SQLite's quick check",
        severity: Severity::Critical,
        fix: "restore the damaged database from the latest backup (`coffer restore`), or rebuild a vault index with `coffer reindex`",
        run: |f| {
            let bad: Vec<String> = f
                .databases
                .iter()
                .filter(|d| d.integrity != "ok")
                .map(|d| format!("{}: {}", d.name, d.integrity))
                .collect();
            Verdict::expect(
                bad.is_empty(),
                format!("{} databases sound", f.databases.len()),
                bad.join("; "),
            )
        },
    },
    Check {
        id: "migrations-current",
        explains: "no database is newer than this binary (a rollback), and pending migrations are named",
        severity: Severity::High,
        fix: "newer: deploy the release that wrote it (see deploy/README.md, Upgrade); pending: take a backup, they apply on first open",
        run: |f| {
            let newer: Vec<String> = f
                .databases
                .iter()
                .filter(|d| d.version > d.latest)
                .map(|d| format!("{} v{} > v{}", d.name, d.version, d.latest))
                .collect();
            let pending = f.databases.iter().filter(|d| d.version < d.latest).count();
            if !newer.is_empty() {
                Verdict::fail(format!("written by a newer Coffer: {}", newer.join(", ")))
            } else if pending > 0 {
                Verdict::warn(format!("{pending} databases will migrate on first open"))
            } else {
                Verdict::pass(format!("{} databases current", f.databases.len()))
            }
        },
    },
    Check {
        id: "backups-recent",
        explains: "a complete backup set is less than 26 hours old, and rotation keeps them at most 90 days",
        severity: Severity::High,
        fix: "run `coffer backup` nightly (deploy/README.md, Backup) and keep backup_retention_days at 90 or less",
        run: |f| {
            if f.config.backup_retention_days > BACKUP_MAX_RETENTION_DAYS {
                return Verdict::fail(format!(
                    "backup_retention_days {} > {BACKUP_MAX_RETENTION_DAYS}: deleted data outlives the promise",
                    f.config.backup_retention_days
                ));
            }
            // A stale or unreachable backup warns rather than fails: this audit runs
            // before every start, and a restart after a crash must not wait for the
            // nightly job. The warning is in the journal and the pipeline's report.
            match &f.newest_backup {
                Err(why) => Verdict::warn(why.clone()),
                Ok(None) => Verdict::warn("no backup yet"),
                Ok(Some(at)) => {
                    let hours = (f.now - *at).whole_hours();
                    if hours < BACKUP_MAX_AGE_HOURS {
                        Verdict::pass(format!("newest set {hours} h old"))
                    } else {
                        Verdict::warn(format!(
                            "newest set {hours} h old: the nightly backup is not running"
                        ))
                    }
                }
            }
        },
    },
    Check {
        id: "backup-location",
        explains: "backups are written to another filesystem than the data root",
        severity: Severity::Medium,
        fix: "set backup_dir to a mount on another disk",
        run: |f| match f.backup_same_filesystem {
            Some(true) => Verdict::warn(
                "the backup root is on the data root's filesystem: one disk loss takes both",
            ),
            Some(false) => Verdict::pass("another filesystem"),
            None => Verdict::warn("no backup root yet"),
        },
    },
    Check {
        id: "disk-free",
        explains: "the data root's filesystem has at least 5% and 1 GiB free (warning below 20%)",
        severity: Severity::High,
        fix: "free space or grow the volume before writes start failing with 507",
        run: |f| match f.disk {
            None => Verdict::warn("free space cannot be read"),
            Some(d) => {
                let percent = d.available_bytes.saturating_mul(100) / d.total_bytes.max(1);
                let detail = format!("{} MiB free ({percent}%)", d.available_bytes >> 20);
                if percent < DISK_MIN_FREE_PERCENT || d.available_bytes < DISK_MIN_FREE_BYTES {
                    Verdict::fail(detail)
                } else if percent < DISK_WARN_FREE_PERCENT {
                    Verdict::warn(detail)
                } else {
                    Verdict::pass(detail)
                }
            }
        },
    },
    Check {
        id: "clock-sane",
        explains: "the clock has not gone back: no audit event is dated in the future (several \
                   nodes: this host's clock agrees with the control database's)",
        severity: Severity::High,
        fix: "enable time synchronisation (systemd-timesyncd or chrony) and check the host clock",
        run: |f| match f.newest_audit_event {
            _ if f
                .database_clock
                .is_some_and(|db| (f.now - db).whole_seconds().abs() > CLOCK_MAX_SKEW_SECS) =>
            {
                let db = f.database_clock.expect("checked");
                Verdict::fail(format!(
                    "this host's clock is {} s off the control database's",
                    (f.now - db).whole_seconds()
                ))
            }
            Some(last) if (last - f.now).whole_seconds() > CLOCK_MAX_SKEW_SECS => {
                Verdict::fail(format!(
                    "the newest audit event is {} s in the future",
                    (last - f.now).whole_seconds()
                ))
            }
            _ if f.now.year() < 2025 => Verdict::fail(format!("the clock says {}", f.now.year())),
            _ => Verdict::pass(crate::db::timestamp(f.now)),
        },
    },
    Check {
        id: "signup-policy",
        explains: "public sign-up is off unless the operator means to let anyone create a tenant",
        severity: Severity::Low,
        fix: "set signup_enabled = false for an invitation-only service",
        run: |f| {
            if f.config.signup_enabled {
                Verdict::warn(format!(
                    "anyone can sign up (each tenant gets {} MiB)",
                    f.config
                        .default_quota_bytes
                        .unwrap_or(f.config.signup_quota_bytes)
                        >> 20
                ))
            } else {
                Verdict::pass("sign-up off")
            }
        },
    },
    Check {
        id: "encryption-at-rest",
        explains: "the data root is on an encrypted block device (dm-crypt/LUKS)",
        severity: Severity::High,
        fix: "put the data root on a LUKS volume (deploy/README.md, Encrypted volume), or confirm the provider encrypts the disk",
        run: |f| match &f.encryption {
            Encryption::Encrypted(dev) => Verdict::pass(format!("dm-crypt ({dev})")),
            Encryption::Plain(dev) => Verdict::warn(format!("{dev} is not dm-crypt")),
            Encryption::Unknown(why) => Verdict::warn(why.clone()),
        },
    },
    Check {
        id: "core-dumps-off",
        explains: "the process cannot write core dumps (they would hold the session secret and tenant data)",
        severity: Severity::Medium,
        fix: "LimitCORE=0 in the unit (deploy/systemd/coffer.service), or ulimit -c 0",
        run: |f| match f.core_dump_limit {
            Some(0) => Verdict::pass("RLIMIT_CORE 0"),
            Some(n) => Verdict::fail(format!("RLIMIT_CORE {n}")),
            None => Verdict::warn("RLIMIT_CORE cannot be read"),
        },
    },
    Check {
        id: "descriptor-limit",
        explains: "the descriptor limit leaves room for connections after the vault cache and databases",
        severity: Severity::Medium,
        fix: "LimitNOFILE=65536 in the unit, or lower vault_cache_capacity",
        run: |f| match f.descriptor_limit {
            Some(n) => {
                let vaults = f.config.vault_cache_capacity_under(n as usize);
                let reserve = (vaults * crate::config::DESCRIPTORS_PER_VAULT) as u64 + 256;
                Verdict::expect(
                    n >= reserve + DESCRIPTOR_HEADROOM,
                    format!("{n} (reserve {reserve})"),
                    format!("{n}, but {reserve} are reserved for vaults and databases"),
                )
            }
            None => Verdict::warn("RLIMIT_NOFILE cannot be read"),
        },
    },
];

/// Private to the service user: no group or other bits, owned by `euid`.
fn private_enough(euid: u32, e: &FileFacts) -> bool {
    e.mode & 0o077 == 0 && e.uid == euid
}

fn owned_private(f: &Facts, what: &str, e: &FileFacts) -> Verdict {
    Verdict::expect(
        e.mode & 0o077 == 0 && e.uid == f.euid,
        format!("{what} {:o}, uid {}", e.mode, e.uid),
        format!(
            "{what} mode {:o} owned by uid {} (the service runs as {})",
            e.mode, e.uid, f.euid
        ),
    )
}

fn listen_host(listen: &str) -> Option<IpAddr> {
    listen
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .ok()
        .or_else(|| {
            let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
            (host == "localhost").then_some(IpAddr::from([127, 0, 0, 1]))
        })
}

fn listen_is_loopback(listen: &str) -> bool {
    listen_host(listen).is_some_and(|ip| ip.is_loopback())
}

fn listen_is_private_or_wildcard(listen: &str) -> bool {
    listen_is_private(listen) || listen_host(listen).is_some_and(|ip| ip.is_unspecified())
}

/// Loopback, RFC 1918, or IPv6 unique-local.
fn listen_is_private(listen: &str) -> bool {
    listen_host(listen).is_some_and(|ip| match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    })
}
