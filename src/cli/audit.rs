//! `coffer audit verify [--checkpoint FILE]` and `coffer audit checkpoint -o FILE`: the
//! auditor's hold on the log; `coffer audit isolation [--deep]`: the isolation report
//! over the whole data root (see the README, "Audit").

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::{Global, open, print_json};
use crate::audit::Checkpoint;
use crate::inspect::deployment::{self, Severity, Status};

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain (from the newest pruning checkpoint) and every signed
    /// checkpoint; with --checkpoint, also that the log still holds a saved one.
    Verify {
        /// Also check the log against this signed checkpoint (from `audit checkpoint`).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Sign a checkpoint of the chain's newest row and write it to FILE, for an auditor to
    /// keep and hold the log to later (`verify --checkpoint FILE`).
    Checkpoint {
        /// Where to write the signed checkpoint.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// Check tenant isolation over the whole data root (read-only); one line per
    /// finding, non-zero exit on any. --deep also rehashes every file.
    Isolation {
        /// Also rehash every file against the index (slow on a large data root).
        #[arg(long)]
        deep: bool,
    },
    /// Check the deployment before it takes traffic (the unit's ExecStartPre): one line
    /// per check with its severity, result and fix; non-zero exit when a check at or
    /// above --fail-on fails.
    Deployment {
        /// Lowest severity whose failure fails the command.
        #[arg(long, value_enum, default_value = "low")]
        fail_on: Severity,
    },
}

pub fn audit_command(g: &Global, cmd: AuditCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        AuditCommand::Verify { checkpoint } => {
            let report = coffer.verify_audit()?;
            if g.json {
                print_json(&report)?;
            }
            if let Some((seq, why)) = report.broken {
                bail!("audit chain broken at event {seq}: {why}");
            }
            if let Some(path) = checkpoint {
                let saved: Checkpoint = serde_json::from_str(&read_operator_file(&path)?)
                    .with_context(|| format!("{} is not a Coffer checkpoint", path.display()))?;
                if let Err(why) = coffer.holds_checkpoint(&saved)? {
                    bail!("the log does not hold checkpoint {}: {why}", saved.seq);
                }
            }
            if !g.json {
                println!(
                    "audit chain intact: {} events from {} on, {} signed checkpoints",
                    report.events, report.first_seq, report.checkpoints
                );
            }
        }
        AuditCommand::Checkpoint { output } => {
            let checkpoint = coffer
                .checkpoint_audit()?
                .context("the audit log is empty: nothing to checkpoint")?;
            write_operator_file(&output, &serde_json::to_string_pretty(&checkpoint)?)?;
            if g.json {
                print_json(&checkpoint)?;
            } else {
                println!(
                    "checkpoint of event {} written to {} (key {})",
                    checkpoint.seq,
                    output.display(),
                    coffer.signing_key().key_id()
                );
            }
        }
        AuditCommand::Isolation { deep } => isolation(g, &coffer, deep)?,
        AuditCommand::Deployment { fail_on } => deployment(g, &coffer, fail_on)?,
    }
    Ok(())
}

/// Prints the isolation report; fails when it has findings.
fn isolation(g: &Global, coffer: &crate::coffer::Coffer, deep: bool) -> anyhow::Result<()> {
    let report = coffer.isolation_audit(deep)?;
    if g.json {
        print_json(&report)?;
    } else {
        for f in &report.findings {
            println!(
                "{}\t{}\t{}\t{} (fix: {})",
                f.tenant.as_deref().unwrap_or("(data root)"),
                f.check,
                f.path,
                f.detail,
                f.hint
            );
        }
        println!(
            "{} tenants, {} files checked{}: {} findings",
            report.tenants_checked,
            report.files_checked,
            if deep { " (hashes included)" } else { "" },
            report.findings.len()
        );
    }
    if !report.findings.is_empty() {
        bail!("{} isolation findings", report.findings.len());
    }
    Ok(())
}

/// Prints the deployment report; fails when a check at `fail_on` or above failed.
fn deployment(g: &Global, coffer: &crate::coffer::Coffer, fail_on: Severity) -> anyhow::Result<()> {
    let mut state = crate::http::AppState::new(coffer.clone())?;
    if coffer.config().serves_tls() {
        state = state.with_tls();
    }
    let edge = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(crate::http::probe_edge(state));
    let report = deployment::evaluate(&deployment::Facts::gather(coffer, edge)?);
    if g.json {
        print_json(&report)?;
    } else {
        for c in &report.checks {
            let status = match c.status {
                Status::Pass => "pass",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            println!(
                "{status}\t{:<8}\t{:<24}\t{}",
                format!("{:?}", c.severity).to_lowercase(),
                c.id,
                c.detail
            );
            if c.status != Status::Pass {
                println!("\t\t\t\tfix: {}", c.fix);
            }
        }
        println!(
            "{} checks: {} passed, {} warnings, {} failed",
            report.checks.len(),
            report.passed,
            report.warnings,
            report.failed
        );
    }
    let failing = report.failures_at_least(fail_on);
    if failing > 0 {
        bail!("{failing} deployment checks failed at {fail_on:?} severity or above");
    }
    Ok(())
}

/// Reads the operator's own file (not tenant data).
fn read_operator_file(path: &std::path::Path) -> anyhow::Result<String> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the operator's own file, not tenant data"
    )]
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes the operator's own file (not tenant data).
fn write_operator_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the operator's own file, not tenant data"
    )]
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
