//! `coffer backup [--to DIR]`, `coffer backup --verify DIR` and `coffer restore FROM-DIR`
//! (see the README, "Backups").

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::progress::Progress;
use super::{Global, load_config, open, print_json};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Write the set under this directory (default: the config's backup_dir, else
    /// <data-root>/backups).
    #[arg(long, conflicts_with = "verify")]
    to: Option<PathBuf>,
    /// Check an existing set instead (every file's size and SHA-256, both databases, the
    /// audit chain); non-zero on any problem.
    #[arg(long, value_name = "SET-DIR")]
    verify: Option<PathBuf>,
}

pub fn backup_command(g: &Global, args: BackupArgs) -> anyhow::Result<()> {
    if let Some(set) = args.verify {
        let spinner = Progress::spinner(g, format!("checking {}", set.display()));
        let check = crate::coffer::verify_backup(&set)?;
        drop(spinner);
        if g.json {
            print_json(&check)?;
        } else {
            println!(
                "backup of {}: {} tenants, {} files, {} bytes, {} audit events",
                check.created_at, check.tenants, check.files, check.bytes, check.audit_events
            );
            for problem in &check.problems {
                println!("problem: {problem}");
            }
        }
        if !check.problems.is_empty() {
            bail!(
                "the backup at {} has {} problems",
                set.display(),
                check.problems.len()
            );
        }
        return Ok(());
    }
    let coffer = open(g)?;
    let spinner = Progress::spinner(g, "writing a backup set");
    let report = coffer.backup(args.to.as_deref())?;
    drop(spinner);
    if g.json {
        return print_json(&report);
    }
    println!(
        "backup {}: {} tenants, {} files, {} bytes ({} linked from the previous set, {} bytes copied)",
        report.set.display(),
        report.tenants,
        report.files,
        report.bytes,
        report.linked,
        report.copied_bytes
    );
    for old in &report.rotated {
        println!("rotated out: {}", old.display());
    }
    Ok(())
}

/// `coffer restore FROM-DIR` into `--data-dir` (which must be new or empty).
pub fn restore_command(g: &Global, from: PathBuf) -> anyhow::Result<()> {
    if !from.is_dir() {
        return Err(anyhow::Error::new(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("not found: {} (a backup set directory)", from.display()),
        )));
    }
    let spinner = Progress::spinner(g, format!("restoring {}", from.display()));
    let report = crate::coffer::restore_backup(&from, &g.data_dir, load_config(g)?)?;
    drop(spinner);
    if g.json {
        return print_json(&report);
    }
    println!(
        "restored {} into {}: {} tenants, {} files, audit chain of {} events verified",
        from.display(),
        report.data_dir.display(),
        report.tenants,
        report.files,
        report.audit_events
    );
    Ok(())
}
