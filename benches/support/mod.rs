//! Helpers shared by the benchmarks: arguments, memory readings, throughput.
#![allow(dead_code)] // each benchmark uses a subset

/// The numeric value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM:` is the peak RSS, `VmRSS:` the current).
pub fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Peak RSS of another process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(&pid.to_string(), "VmHWM:")
}

pub fn mib_s(bytes: u64, d: std::time::Duration) -> f64 {
    bytes as f64 / 1048576.0 / d.as_secs_f64()
}

/// Starts the release `coffer serve` on a free port of 127.0.0.1 and returns the process
/// and the address it printed.
pub fn start_server(data: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    start_server_with_config(data, None)
}

/// `start_server` with a configuration file.
pub fn start_server_with_config(
    data: &std::path::Path,
    config: Option<&std::path::Path>,
) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    // COFFER_BENCH_WRAP runs the server under a profiler, e.g. `heaptrack`;
    // COFFER_BENCH_BIN replaces the binary (another build, for a before/after run).
    let binary =
        std::env::var_os("COFFER_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_coffer").into());
    let mut command = match std::env::var_os("COFFER_BENCH_WRAP") {
        Some(wrapper) => {
            let mut c = std::process::Command::new(wrapper);
            c.arg(binary);
            c
        }
        None => std::process::Command::new(binary),
    };
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The banner is the first line naming the address (a wrapper may print its own
    // first); the rest of stdout is drained so the server never blocks on it.
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split("http://")
                .nth(1)
                .and_then(|s| s.split('/').next())
                .and_then(|s| s.parse().ok())
        })
        .expect("the server printed no banner");
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// A fresh data root at `data` with tenant `bench`, its owner, and an owner API token.
pub struct Seeded {
    pub coffer: coffer::coffer::Coffer,
    pub tenant: coffer::control::Tenant,
    pub op: coffer::audit::Caller,
    pub token: String,
}

/// A tenant to create, named by its slug.
#[allow(dead_code)]
pub fn new_tenant(slug: &str) -> coffer::control::NewTenant {
    coffer::control::NewTenant {
        slug: coffer::names::TenantSlug::parse(slug).unwrap(),
        name: slug.to_owned(),
        quota_bytes: None,
        owner: None,
    }
}

/// A tenant's vault as the operator reaches it (`Auth::operator_access`).
pub struct VaultHandle(pub coffer::auth::TenantAccess);

impl std::ops::Deref for VaultHandle {
    type Target = coffer::vault::Vault;
    fn deref(&self) -> &coffer::vault::Vault {
        self.0.vault()
    }
}

/// The operator's access to a tenant's vault.
#[allow(dead_code)]
pub fn open_vault(
    coffer: &coffer::coffer::Coffer,
    op: &coffer::audit::Caller,
    tenant: &coffer::control::Tenant,
) -> VaultHandle {
    let slug = coffer::names::TenantSlug::parse(&tenant.slug).unwrap();
    VaultHandle(coffer.auth().operator_access(op, &slug).unwrap())
}

pub fn seed_tenant_with_token(data: &std::path::Path) -> Seeded {
    use coffer::control::{MemberChange, NewUser, Role};
    let (coffer, _) =
        coffer::coffer::Coffer::init(data, coffer::config::Config::default()).unwrap();
    let op = coffer::audit::Caller::new(coffer::audit::Actor::Operator(Some("bench".into())));
    let tenant = coffer.create_tenant(&op, new_tenant("bench")).unwrap();
    let user = coffer
        .control()
        .create_user(
            &op,
            &NewUser {
                email: coffer::names::Email::parse("b@bench.example").unwrap(),
                name: "B".into(),
                password_hash: None,
                is_operator: false,
            },
        )
        .unwrap();
    open_vault(&coffer, &op, &tenant)
        .0
        .change_member(coffer.control(), user.id, Role::Owner, MemberChange::Add)
        .unwrap();
    let token = coffer
        .auth()
        .issue_token(user.id, &tenant, Role::Owner, "bench", None, &op)
        .unwrap()
        .0;
    Seeded {
        coffer,
        tenant,
        op,
        token,
    }
}

#[path = "load.rs"]
pub mod load;
