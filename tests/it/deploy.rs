//! `deploy/` held to the code: the example configuration names every setting at its
//! default (so an operator reading it sees what they get), and the systemd unit keeps
//! the hardening the README promises.

use coffer::config::Config;

fn deploy_file(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("deploy/{name}: {e}"))
}

/// The settings' names, read from the configuration's own `Debug` (top-level fields).
fn setting_names() -> Vec<String> {
    let text = format!("{:?}", Config::default());
    let body = text.strip_prefix("Config { ").unwrap();
    let mut names = Vec::new();
    for part in body.split(", ") {
        if let Some((name, _)) = part.split_once(": ")
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn the_example_configuration_names_every_setting_at_its_default() {
    let text = deploy_file("coffer.toml.example");
    // Parsed as it is (commented settings stay absent): exactly the defaults.
    let parsed: Config = toml::from_str(&text).unwrap();
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
    // Every setting appears, set or commented out with an example.
    let names = setting_names();
    assert!(names.len() >= 30, "{names:?}");
    for name in names {
        let set = text.lines().any(|l| {
            let l = l.trim_start_matches("# ").trim_start();
            l.starts_with(&format!("{name} ="))
        });
        assert!(set, "deploy/coffer.toml.example does not mention `{name}`");
    }
}

#[test]
fn the_placements_sync_unit_keeps_its_hardening() {
    let unit = deploy_file("systemd/coffer-placements-sync.service");
    for line in [
        "User=coffer",
        "Group=haproxy",
        "UMask=0027",
        "ProtectSystem=strict",
        "ReadWritePaths=/etc/haproxy/coffer\n",
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "--map /etc/haproxy/coffer/tenants.map",
        "LimitCORE=0",
    ] {
        assert!(
            unit.contains(line),
            "coffer-placements-sync.service lacks {line:?}"
        );
    }
    // The map it writes is the one the example HAProxy configuration reads.
    let haproxy = deploy_file("haproxy/haproxy.cfg");
    assert!(haproxy.contains("map(/etc/haproxy/coffer/tenants.map,"));
    assert!(haproxy.contains("admin.sock mode 660 group haproxy"));
}

#[test]
fn the_systemd_unit_keeps_its_hardening() {
    let unit = deploy_file("systemd/coffer.service");
    for line in [
        "User=coffer",
        "UMask=0077",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/coffer",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
        "PrivateDevices=true",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "LimitNOFILE=",
        "ExecStartPre=/usr/local/bin/coffer audit deployment\n",
        "LimitCORE=0",
    ] {
        assert!(unit.contains(line), "coffer.service lacks {line:?}");
    }
}
