//! `coffer tenant restrict|unrestrict|cancel|reactivate|delete|hold|release|receipt` and
//! `coffer lifecycle run [--now TIME]`: the operator's side of the tenant lifecycle (see
//! the README, "Your data").

use anyhow::{Context, anyhow};
use clap::Subcommand;

use super::{Global, load_config, open, operator, print_json, tenant};
use crate::coffer::Coffer;
use crate::http::dto::{LifecycleOut, TenantOut};
use crate::names::TenantId;

pub use crate::coffer::OperatorStep as Step;

#[derive(Subcommand, Debug)]
pub enum LifecycleCommand {
    /// Run due lifecycle work once: purges, trash expiry, pruning (idempotent; safe next
    /// to a running server).
    Run {
        /// Run as if the time were this (RFC 3339), for drills and tests.
        #[arg(long)]
        now: Option<String>,
    },
}

pub fn tenant_step(g: &Global, coffer: &Coffer, raw_slug: &str, step: Step) -> anyhow::Result<()> {
    let t = tenant(coffer, raw_slug)?;
    let (changed, receipt) = coffer.operator_step(&operator(), t.id, step)?;
    if g.json {
        return print_json(&LifecycleOut {
            tenant: TenantOut::from(&changed),
            receipt,
        });
    }
    println!(
        "tenant {} ({}): {}",
        raw_slug,
        changed.id,
        changed.state.as_str()
    );
    if let Some(due) = &changed.lifecycle.purge_after {
        println!("purge after: {due}");
    }
    if changed.lifecycle.legal_hold_at.is_some() {
        println!("legal hold: in place");
    }
    if let Some(receipt) = receipt {
        println!(
            "deletion receipt (signed):\n{}",
            serde_json::to_string_pretty(&receipt)?
        );
    }
    Ok(())
}

/// `coffer tenant receipt TENANT-ID`: a purged tenant's signed deletion receipt.
pub fn receipt(g: &Global, raw_id: &str) -> anyhow::Result<()> {
    let coffer = open(g)?;
    let id = TenantId::parse(raw_id).with_context(|| format!("tenant id {raw_id:?}"))?;
    let record = coffer
        .control()
        .purge_record(id)?
        .ok_or_else(|| anyhow!("tenant {id} has not been purged"))?;
    let receipt = record.receipt.ok_or_else(|| {
        anyhow!("the purge of {id} has not finished (the next lifecycle run finishes it)")
    })?;
    if !receipt.verifies_with(coffer.signing_key().public_key_hex()) {
        anyhow::bail!("the receipt of {id} does not verify with this server's key");
    }
    let _ = g; // the receipt is JSON either way
    print_json(&receipt)
}

pub fn lifecycle_command(g: &Global, cmd: LifecycleCommand) -> anyhow::Result<()> {
    let LifecycleCommand::Run { now } = cmd;
    let coffer = match now {
        None => open(g)?,
        Some(text) => {
            let at = crate::clock::parse_stamp(&text)
                .with_context(|| format!("--now {text:?} is not an RFC 3339 time"))?;
            Coffer::open_with_clock(
                &g.data_dir,
                load_config(g)?,
                crate::clock::ManualClock::new(at),
            )?
        }
    };
    let report = coffer.run_lifecycle()?;
    if g.json {
        return print_json(&report);
    }
    if !report.ran {
        println!("another lifecycle run holds the lease; nothing done");
        return Ok(());
    }
    println!(
        "lifecycle at {}: {} purged, {} trash items expired, {} sessions and {} reset tokens pruned",
        report.now,
        report.purged.len(),
        report.trash_items_expired,
        report.sessions_pruned,
        report.password_resets_pruned
    );
    for id in &report.purged {
        println!("purged: {id}");
    }
    for (id, why) in &report.failures {
        eprintln!("failed: {id}: {why}");
    }
    if !report.failures.is_empty() {
        anyhow::bail!(
            "{} tenants failed; the next run retries them",
            report.failures.len()
        );
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum UsageCommand {
    /// Recount every vault's usage counters (bytes, files, trash, records) and repair
    /// any drift (audited); prints what drifted.
    Reconcile {
        /// Only this tenant (its slug; default: every tenant).
        slug: Option<String>,
    },
}

pub fn usage_command(g: &Global, cmd: UsageCommand) -> anyhow::Result<()> {
    let UsageCommand::Reconcile { slug } = cmd;
    let coffer = open(g)?;
    let tenants = match slug {
        Some(raw) => vec![tenant(&coffer, &raw)?],
        None => coffer.control().local_tenants()?,
    };
    let mut report = Vec::new();
    for t in tenants.into_iter().filter(|t| !t.state.is_gone()) {
        let access = super::access(&coffer, &t.slug)?;
        let drift = access.vault().reconcile_usage(&operator(), true)?;
        if !g.json {
            if drift.is_empty() {
                println!("{}: counters equal a recount", t.slug);
            }
            for d in &drift {
                println!(
                    "{}: {} was {}, recounted {} (repaired)",
                    t.slug, d.counter, d.stored, d.counted
                );
            }
        }
        report.push(serde_json::json!({ "tenant": t.slug, "drift": drift }));
    }
    if g.json {
        print_json(&report)?;
    }
    Ok(())
}
