//! `coffer placements ...`: which node serves each tenant, as HAProxy's map needs it.
//! These commands read only the shared control plane (no data root): they run on the
//! proxy's host.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;

use super::{Global, load_config, print_json};
use crate::control::ControlPlane;
use crate::haproxy::RuntimeApi;

#[derive(Subcommand, Debug)]
pub enum PlacementsCommand {
    /// Print the map from tenant slug to node, one `slug node` line each (HAProxy's map
    /// file format).
    Map,
    /// Keep a map HAProxy has loaded equal to the placements, through its runtime API,
    /// from now on (or once, with --once).
    Sync {
        /// HAProxy's runtime API: unix:/run/haproxy/admin.sock or host:port.
        #[arg(long)]
        haproxy: String,
        /// The map file as HAProxy names it (its path in haproxy.cfg).
        #[arg(long)]
        map: String,
        /// Sync once and exit.
        #[arg(long)]
        once: bool,
    },
}

/// A full comparison even when no change notice came (a notice lost with its
/// connection, an entry edited by hand on the proxy).
const FULL_SYNC_EVERY: Duration = Duration::from_secs(60);
/// How often the change stamp (in memory, no query) is looked at.
const WATCH_EVERY: Duration = Duration::from_millis(20);

pub fn placements_command(g: &Global, cmd: PlacementsCommand) -> anyhow::Result<()> {
    let config = load_config(g)?;
    let Some(url) = &config.control else {
        bail!(
            "placements exist only with a PostgreSQL control plane (control = \"postgres://...\")"
        );
    };
    let (control, _audit) = ControlPlane::open_postgres(
        url,
        config.control_ca_file.as_deref(),
        None,
        crate::clock::system(),
    )?;
    match cmd {
        PlacementsCommand::Map => {
            let map = control.placement_map()?;
            if g.json {
                print_json(&map)?;
            } else {
                for (slug, node) in &map {
                    println!("{slug} {node}");
                }
            }
        }
        PlacementsCommand::Sync { haproxy, map, once } => {
            let api = RuntimeApi::parse(&haproxy);
            if once {
                let changed = sync(&control, &api, &map)?;
                println!("{changed} entries changed");
                return Ok(());
            }
            watch(&control, &api, &map);
        }
    }
    Ok(())
}

/// Makes HAProxy's map equal to the placements, then writes the same entries to the map
/// file (when it is on this host), so a restarted HAProxy starts from current routes.
fn sync(control: &ControlPlane, api: &RuntimeApi, map: &str) -> anyhow::Result<usize> {
    let wanted: BTreeMap<String, String> = control.placement_map()?;
    let changed = api
        .sync_map(map, &wanted)
        .with_context(|| format!("syncing HAProxy's map {map}"))?;
    if let Err(e) = write_map_file(Path::new(map), &wanted) {
        tracing::warn!(error = %e, map, "HAProxy's map file not rewritten (its running copy is current)");
    }
    Ok(changed)
}

/// Replaces the map file whole (a new file renamed over it), if its directory is here.
#[allow(
    clippy::disallowed_methods,
    reason = "HAProxy's map file on the proxy's host, never tenant data"
)]
fn write_map_file(path: &Path, entries: &BTreeMap<String, String>) -> std::io::Result<()> {
    let text: String = entries.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    if std::fs::read_to_string(path).is_ok_and(|now| now == text) {
        return Ok(());
    }
    let temp = path.with_extension("coffer-new");
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path)
}

/// Syncs whenever the control plane announces a change, and every `FULL_SYNC_EVERY`;
/// a failure (HAProxy restarting, the database away) is logged and retried.
fn watch(control: &ControlPlane, api: &RuntimeApi, map: &str) -> ! {
    loop {
        let stamp = control.change_stamp();
        match sync(control, api, map) {
            Ok(0) => {}
            Ok(changed) => tracing::info!(changed, map, "HAProxy map synced"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "HAProxy map not synced; retrying"),
        }
        let full = Instant::now() + FULL_SYNC_EVERY;
        while Instant::now() < full && stamp.is_some() && control.change_stamp() == stamp {
            std::thread::sleep(WATCH_EVERY);
        }
        if stamp.is_none() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}
