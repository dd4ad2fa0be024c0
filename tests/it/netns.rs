//! Three Coffer nodes, their PostgreSQL and HAProxy as five hosts: each in its own
//! network namespace with a veth link to a bridge on this one (root only; `.ci/run` runs
//! as root and makes a skip a failure). HAProxy routes by the placements; every node's
//! traffic (to the database, between nodes for a move, from the proxy) and every
//! client's (to the proxy) crosses the links; the filesystem is shared, each node
//! keeping to its own data root. Every tenant's requests land on its node through the
//! proxy, a node asked directly for another node's tenant answers 421; a tenant moved
//! from host to host (the copy crossing the links) while a client writes and another
//! reads through the proxy loses no acknowledged write and is then served by its new
//! host; a move whose old host is killed as it starts leaves the tenant whole and
//! finishes once it is back; a move whose run on the taking host is killed once the
//! tenant is fenced leaves it whole and read-only until the rerun finishes it; and the
//! cluster's one audit chain verifies after all of it, the same from every node.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::{MemberChange, NewUser, Role};
use coffer::names::{Email, TenantSlug, UserId};

use crate::haproxy::{Running, exchange, get_status, haproxy_installed, send, start_proxy_on};
use crate::nodes::files_on;
use crate::support::{new_tenant, operator, postgres};

const NODES: usize = 3;
const TENANTS_PER_NODE: usize = 4;
const PORT: u16 = 8080;

/// The namespaces and links of one run, removed (with the processes in them) on drop:
/// one per node, one for the database and one for the proxy, each with a veth link to a
/// bridge here, all on 10.S.0.0/24 (this host 10.S.0.1, node `i` 10.S.0.(10+i), the
/// database 10.S.0.20, the proxy 10.S.0.30).
struct Hosts {
    names: Vec<String>,
    bridge: String,
    subnet: u8,
    children: Vec<Child>,
    /// The database's cluster directory, once started.
    database: Option<PathBuf>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The database host's namespace (after the nodes' in `Hosts::names`), and the proxy's.
const DATABASE: usize = NODES + 1;
const PROXY: usize = NODES + 2;

impl Hosts {
    fn new() -> Hosts {
        let id = std::process::id() % 10_000;
        let subnet = 200 + (std::process::id() % 50) as u8;
        let bridge = format!("cf{id}br");
        ip(&["link", "add", "name", &bridge, "type", "bridge"]);
        let mut hosts = Hosts {
            names: Vec::new(),
            bridge: bridge.clone(),
            subnet,
            children: Vec::new(),
            database: None,
        };
        ip(&[
            "addr",
            "add",
            &format!("10.{subnet}.0.1/24"),
            "dev",
            &bridge,
        ]);
        ip(&["link", "set", &bridge, "up"]);
        for i in 1..=PROXY {
            let ns = format!("cf{id}n{i}");
            let (host_end, ns_end) = (format!("{ns}h"), format!("{ns}e"));
            ip(&["netns", "add", &ns]);
            hosts.names.push(ns.clone());
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
            ]);
            ip(&["link", "set", &ns_end, "netns", &ns]);
            ip(&["link", "set", &host_end, "master", &bridge]);
            ip(&["link", "set", &host_end, "up"]);
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &ns, "ip"];
                all.extend_from_slice(args);
                ip(&all);
            };
            let addr = format!("{}/24", hosts.host_ip(i));
            inside(&["addr", "add", &addr, "dev", &ns_end]);
            inside(&["link", "set", &ns_end, "up"]);
            inside(&["link", "set", "lo", "up"]);
        }
        hosts
    }

    /// Host `i`'s address (`DATABASE`: the database's, `PROXY`: the proxy's).
    fn host_ip(&self, i: usize) -> String {
        let last = match i {
            DATABASE => 20,
            PROXY => 30,
            node => 10 + node,
        };
        format!("10.{}.0.{last}", self.subnet)
    }

    /// A throwaway PostgreSQL (`.ci/postgres`) on the database host; its URL.
    fn start_database(&mut self) -> String {
        let dir = PathBuf::from(format!("/tmp/coffer-netns-db-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.names[DATABASE - 1]])
            .arg(script)
            .arg("start")
            .arg(&dir)
            .arg("5432")
            .env("COFFER_PG_LISTEN", self.host_ip(DATABASE))
            .output()
            .unwrap();
        self.database = Some(dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn node_addr(&self, i: usize) -> String {
        format!("{}:{PORT}", self.host_ip(i))
    }

    /// `coffer serve` for node `i`, inside its namespace; returns once it listens.
    fn serve(&mut self, i: usize, data: &Path, config: &Path) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.names[i - 1]])
            .arg(env!("CARGO_BIN_EXE_coffer"))
            .arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", &self.node_addr(i)])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        assert!(banner.contains(&self.node_addr(i)), "{banner}");
        self.children.push(child);
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.database {
            let _ = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres"))
                .arg("stop")
                .arg(dir)
                .output();
            let _ = std::fs::remove_dir_all(dir);
        }
        for ns in &self.names {
            // Removing the namespace removes its end of the link, and so the pair.
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            let _ = Command::new("ip")
                .args(["link", "del", &format!("{ns}h")])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

#[test]
fn tenants_land_on_their_nodes_across_three_hosts() {
    let Some(base) = postgres::base_url("netns") else {
        return;
    };
    if !haproxy_installed() {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("COFFER_REQUIRE_ROOT_TESTS").is_err(),
            "COFFER_REQUIRE_ROOT_TESTS is set but network namespaces need root"
        );
        eprintln!("netns test: skipped (network namespaces need root, as .ci/run has)");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let _ = base; // the database runs on a host of its own here
    let mut hosts = Hosts::new();
    let schema = postgres::fresh_schema(&hosts.start_database());

    // Each node's data root, tenants made on it (so placed there), one owner of all.
    let op = operator();
    let mut tenants: Vec<(String, usize, String)> = Vec::new(); // slug, node, token
    let mut nodes: Vec<PathBuf> = Vec::new();
    let mut owner: Option<UserId> = None;
    for i in 1..=NODES {
        let data = dir.join(format!("node-{i}"));
        let config = Config {
            control: Some(schema.clone()),
            node: Some(format!("node-{i}")),
            ..Config::default()
        };
        let (coffer, _) = Coffer::init(&data, config).unwrap();
        let user = *owner.get_or_insert_with(|| {
            coffer
                .control()
                .create_user(
                    &op,
                    &NewUser {
                        email: Email::parse("owner@hosts.example").unwrap(),
                        name: "Owner".into(),
                        password_hash: None,
                        is_operator: false,
                    },
                )
                .unwrap()
                .id
        });
        for t in 0..TENANTS_PER_NODE {
            let slug = format!("n{i}-t{t}");
            let tenant = coffer.create_tenant(&op, new_tenant(&slug, None)).unwrap();
            coffer
                .auth()
                .operator_access(&op, &TenantSlug::parse(&slug).unwrap())
                .unwrap()
                .change_member(coffer.control(), user, Role::Owner, MemberChange::Add)
                .unwrap();
            let (token, _) = coffer
                .auth()
                .issue_token(user, &tenant, Role::Owner, "hosts", None, &op)
                .unwrap();
            tenants.push((slug, i, token));
        }
        let file = dir.join(format!("node-{i}.toml"));
        std::fs::write(
            &file,
            format!(
                "control = {schema:?}\nnode = \"node-{i}\"\nnode_url = \"http://{}\"\n",
                hosts.node_addr(i)
            ),
        )
        .unwrap();
        nodes.push(data.clone());
        drop(coffer);
        hosts.serve(i, &data, &file);
    }

    // HAProxy on its own host, with the example configuration and a backend per node
    // host; clients reach it from here over the bridge, and `coffer placements sync`
    // (here) talks to it through its runtime API's socket.
    let proxy = start_proxy_on(
        dir,
        &(1..=NODES).map(|i| hosts.node_addr(i)).collect::<Vec<_>>(),
        Some((&hosts.names[PROXY - 1], &hosts.host_ip(PROXY))),
    );
    let (listen, map) = (&proxy.listen, &proxy.map);
    let control_config = dir.join("proxy-host.toml");
    std::fs::write(
        &control_config,
        format!("control = {schema:?}\nnode = \"node-1\"\n"),
    )
    .unwrap();
    let sync = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--config")
        .arg(&control_config)
        .args(["placements", "sync", "--haproxy"])
        .arg(format!("unix:{}", proxy.socket.display()))
        .arg("--map")
        .arg(map)
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );

    // Through the proxy, every tenant reaches its own host, every time.
    for (slug, _, token) in &tenants {
        for _ in 0..2 {
            let path = format!("/api/v1/tenants/{slug}/tree");
            assert_eq!(get_status(listen, &path, token), 200, "{path}");
        }
    }
    // Asked directly, a host that does not hold a tenant says where it lives.
    for (slug, node, token) in &tenants {
        let path = format!("/api/v1/tenants/{slug}/tree");
        for other in (1..=NODES).filter(|other| other != node) {
            assert_eq!(
                get_status(&hosts.node_addr(other), &path, token),
                421,
                "{slug} on node-{other}"
            );
        }
        assert_eq!(
            get_status(&hosts.node_addr(*node), &path, token),
            200,
            "{slug} on node-{node}"
        );
    }
    // The proxy follows placements as they change from here on.
    let _sync = Running(
        Command::new(env!("CARGO_BIN_EXE_coffer"))
            .arg("--config")
            .arg(&control_config)
            .args(["placements", "sync", "--haproxy"])
            .arg(format!("unix:{}", proxy.socket.display()))
            .arg("--map")
            .arg(map)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config_of = |i: usize| dir.join(format!("node-{i}.toml"));
    move_under_writes(dir, &hosts, listen, &tenants[0], &config_of(2));
    move_with_a_node_killed(dir, &mut hosts, listen, &tenants[1], &config_of);
    move_with_the_taking_run_killed(dir, &hosts, listen, &tenants[2], &config_of);
    // The cluster's one audit chain verifies after all of it, the same from every node,
    // and holds the placement events the moving nodes (2 and 3) appended.
    let mut reports = Vec::new();
    for (i, data) in nodes.iter().enumerate() {
        let config = Config {
            control: Some(schema.clone()),
            node: Some(format!("node-{}", i + 1)),
            ..Config::default()
        };
        let node = Coffer::open(data, config).unwrap();
        let chain = node.verify_audit().unwrap();
        assert!(chain.broken.is_none(), "node-{}: {chain:?}", i + 1);
        reports.push(chain);
        for (slug, _, _) in &tenants[..2] {
            let slug = coffer::names::TenantSlug::parse(slug).unwrap();
            let id = node.control().tenant_by_slug(&slug).unwrap().unwrap().id;
            let placed = node
                .audit()
                .query(&coffer::audit::EventQuery {
                    scope: coffer::audit::Scope::Tenant(id),
                    action: Some("tenant.place"),
                    limit: 100,
                    ..Default::default()
                })
                .unwrap();
            assert!(!placed.is_empty(), "no tenant.place event for {slug}");
        }
    }
    assert!(reports.windows(2).all(|w| w[0] == w[1]), "{reports:?}");
    drop(hosts);
    drop(proxy);
}

/// `coffer ARGS` on node host `i` (in its namespace), with its configuration and data
/// root (`dir/node-i.toml`, `dir/node-i`).
fn coffer_cli(hosts: &Hosts, i: usize, config: &Path, args: &[&str]) -> Command {
    let data = config.with_extension("");
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &hosts.names[i - 1]])
        .arg(env!("CARGO_BIN_EXE_coffer"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(args);
    command
}

fn put_through(listen: &str, slug: &str, path: &str, token: &str, body: &str) -> u16 {
    send(
        listen,
        "PUT",
        &format!("/api/v1/tenants/{slug}/files/{path}"),
        &format!("Authorization: Bearer {token}\r\n"),
        body,
    )
}

/// The files of tenant `slug` as node `i` (data root `dir/node-i`) holds them.
fn files_of(dir: &Path, i: usize, schema_config: &Path, slug: &str) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(schema_config).unwrap();
    let config: Config = toml::from_str(&text).unwrap();
    let coffer = Coffer::open(&dir.join(format!("node-{i}")), config).unwrap();
    let mut files = files_on(&coffer, slug);
    files.sort();
    files
}

/// Moves `tenant` (on node-1) to node-2 while a client writes to it and another reads it
/// through the proxy: every acknowledged write is on node-2, which then serves it
/// through the proxy, and reads never stopped (a 421 only while the proxy's map lags
/// the flip).
fn move_under_writes(
    dir: &Path,
    hosts: &Hosts,
    listen: &str,
    (slug, _, token): &(String, usize, String),
    config2: &Path,
) {
    let done = std::sync::atomic::AtomicBool::new(false);
    let (acked, out) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let (mut acked, mut after) = (Vec::new(), 0);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            for n in 0.. {
                assert!(std::time::Instant::now() < deadline, "writes never resumed");
                let (path, body) = (format!("live/{n}.txt"), format!("write {n}"));
                let moved = done.load(std::sync::atomic::Ordering::SeqCst);
                // 503 while fenced, 421 while the proxy's map lags: not written.
                match put_through(listen, slug, &path, token, &body) {
                    201 => {
                        acked.push((path, body.into_bytes()));
                        after += usize::from(moved);
                    }
                    503 | 421 => {}
                    other => panic!("a write through the proxy got {other}"),
                }
                if after >= 3 {
                    return acked;
                }
            }
            unreachable!()
        });
        while put_through(listen, slug, "warm-up.txt", token, "before") != 201 {}
        let reader = s.spawn(|| {
            let path = format!("/api/v1/tenants/{slug}/files/warm-up.txt");
            let (mut served, mut lagged, mut after) = (0u32, 0u32, 0u32);
            loop {
                let moved = done.load(std::sync::atomic::Ordering::SeqCst);
                match get_status(listen, &path, token) {
                    200 => {
                        served += 1;
                        after += u32::from(moved);
                    }
                    421 => lagged += 1,
                    other => panic!("a read through the proxy got {other}"),
                }
                if after >= 3 {
                    return (served, lagged);
                }
            }
        });
        let out = coffer_cli(
            hosts,
            2,
            config2,
            &["--json", "tenant", "move", slug, "--to", "node-2"],
        )
        .output()
        .unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let (served, lagged) = reader.join().unwrap();
        eprintln!("netns move under writes: {served} reads served, {lagged} answered 421");
        assert!(served > 3, "reads went on during the move");
        (writer.join().unwrap(), out)
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("netns move under writes: {report}");
    let on_2: std::collections::HashMap<_, _> =
        files_of(dir, 2, config2, slug).into_iter().collect();
    for (path, body) in &acked {
        assert_eq!(on_2.get(path), Some(body), "{path} was acknowledged");
    }
    let tree = format!("/api/v1/tenants/{slug}/tree");
    assert_eq!(get_status(&hosts.node_addr(1), &tree, token), 421);
    assert_eq!(get_status(&hosts.node_addr(2), &tree, token), 200);
    // Through the proxy once the sync has the new placement (a fraction of a second).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while get_status(listen, &tree, token) != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy never followed the move"
        );
    }
}

/// Moves `tenant` (on node-1, 20 MiB) to node-3 and kills the move run on node-3 (the
/// taking side) the moment the tenant is fenced: the tenant is whole on one side
/// (node-1, fenced: reads go on, writes wait; or node-3, if the flip came first), and
/// running the move again finishes it with every file intact.
fn move_with_the_taking_run_killed(
    dir: &Path,
    hosts: &Hosts,
    listen: &str,
    (slug, _, token): &(String, usize, String),
    config_of: &dyn Fn(usize) -> PathBuf,
) {
    let mib: String = "t".repeat(1 << 20);
    for n in 0..20 {
        let path = format!("taken/{n}.bin");
        assert_eq!(put_through(listen, slug, &path, token, &mib), 201);
    }
    let before = files_of(dir, 1, &config_of(1), slug);
    let text = std::fs::read_to_string(config_of(3)).unwrap();
    let node3 = Coffer::open(&dir.join("node-3"), toml::from_str(&text).unwrap()).unwrap();
    let tenant = TenantSlug::parse(slug).unwrap();
    let placement = || {
        node3
            .control()
            .tenant_by_slug(&tenant)
            .unwrap()
            .unwrap()
            .placement
            .unwrap()
    };
    let mut mover = coffer_cli(
        hosts,
        3,
        &config_of(3),
        &["tenant", "move", slug, "--to", "node-3"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let placed = placement();
        if placed.fenced_at.is_some() || placed.node == "node-3" {
            break;
        }
        assert!(
            mover.try_wait().unwrap().is_none(),
            "the move ended unfenced"
        );
        assert!(std::time::Instant::now() < deadline, "never fenced");
    }
    mover.kill().unwrap();
    mover.wait().unwrap();
    let placed = placement();
    eprintln!(
        "netns move with the taking run killed: the tenant was {}",
        if placed.node == "node-3" {
            "already moved"
        } else {
            "fenced on node-1"
        }
    );
    let tree = format!("/api/v1/tenants/{slug}/tree");
    if placed.node == "node-1" {
        assert!(placed.fenced_at.is_some());
        assert_eq!(files_of(dir, 1, &config_of(1), slug), before);
        assert_eq!(get_status(&hosts.node_addr(1), &tree, token), 200);
        let status = put_through(listen, slug, "while-stuck.txt", token, "refused");
        assert_eq!(status, 503, "a write to a fenced tenant");
        let again = coffer_cli(
            hosts,
            3,
            &config_of(3),
            &["tenant", "move", slug, "--to", "node-3"],
        )
        .output()
        .unwrap();
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
    drop(node3);
    assert_eq!(files_of(dir, 3, &config_of(3), slug), before);
    assert_eq!(get_status(&hosts.node_addr(3), &tree, token), 200);
    assert_eq!(get_status(&hosts.node_addr(1), &tree, token), 421);
}

/// Moves `tenant` (on node-1, 40 MiB) to node-3 and kills node-1 as the live copy
/// starts: the tenant stays whole on one side (node-1, not even fenced, with nothing of
/// it left on node-3; or node-3 if the move had already finished); with node-1 back,
/// running the move again finishes it with every file intact. (A node lost during the
/// fenced copy is `tests/it/moves/`'s cut-off relay.)
fn move_with_a_node_killed(
    dir: &Path,
    hosts: &mut Hosts,
    listen: &str,
    (slug, _, token): &(String, usize, String),
    config_of: &dyn Fn(usize) -> PathBuf,
) {
    let mib: String = "m".repeat(1 << 20);
    for n in 0..40 {
        assert_eq!(
            put_through(listen, slug, &format!("big/{n}.bin"), token, &mib),
            201
        );
    }
    let before = files_of(dir, 1, &config_of(1), slug);
    let id = {
        let answer = exchange(
            listen,
            "GET",
            &format!("/api/v1/tenants/{slug}"),
            &format!("Authorization: Bearer {token}\r\n"),
            "",
        );
        answer
            .split("\"id\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned()
    };
    let incoming = dir.join("node-3/tenants").join(format!(".incoming-{id}"));
    let mut mover = coffer_cli(
        hosts,
        3,
        &config_of(3),
        &["tenant", "move", slug, "--to", "node-3"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !incoming.exists() && mover.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the move never started its copy"
        );
        std::thread::yield_now();
    }
    hosts.children[0].kill().unwrap();
    hosts.children[0].wait().unwrap();
    let first = mover.wait_with_output().unwrap();
    eprintln!(
        "netns move with node-1 killed: first run {}",
        if first.status.success() {
            "had finished before the kill".to_owned()
        } else {
            format!("failed: {}", String::from_utf8_lossy(&first.stderr).trim())
        }
    );
    if !first.status.success() {
        // Whole on node-1; node-3 serves nothing of it. Killed in the live copy (as a
        // rule), the tenant was never fenced and node-3 keeps nothing; killed in the
        // fenced copy (the live one was quicker), it stays fenced for the rerun.
        let tree = format!("/api/v1/tenants/{slug}/tree");
        assert_eq!(get_status(&hosts.node_addr(3), &tree, token), 421);
        assert_eq!(files_of(dir, 1, &config_of(1), slug), before);
        let text = std::fs::read_to_string(config_of(3)).unwrap();
        let node3 = Coffer::open(&dir.join("node-3"), toml::from_str(&text).unwrap()).unwrap();
        let placed = node3
            .control()
            .tenant_by_slug(&TenantSlug::parse(slug).unwrap())
            .unwrap()
            .unwrap()
            .placement
            .unwrap();
        assert_eq!(placed.node, "node-1");
        if placed.fenced_at.is_none() {
            assert!(!incoming.exists(), "the live copy was left on node-3");
        }
        eprintln!(
            "netns move with node-1 killed: the tenant was {}",
            if placed.fenced_at.is_some() {
                "fenced"
            } else {
                "never fenced"
            }
        );
        drop(node3);
        // node-1 back; the move run again finishes.
        hosts.serve(1, &dir.join("node-1"), &config_of(1));
        let again = coffer_cli(
            hosts,
            3,
            &config_of(3),
            &["tenant", "move", slug, "--to", "node-3"],
        )
        .output()
        .unwrap();
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
    } else {
        hosts.serve(1, &dir.join("node-1"), &config_of(1));
    }
    assert_eq!(files_of(dir, 3, &config_of(3), slug), before);
    let tree = format!("/api/v1/tenants/{slug}/tree");
    assert_eq!(get_status(&hosts.node_addr(3), &tree, token), 200);
    assert_eq!(get_status(&hosts.node_addr(1), &tree, token), 421);
}
