//! `coffer export`, `coffer import` and `coffer audit ...`.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::Args;

use super::progress::Progress;
use super::{Global, access, open, print_json};
use crate::export::ExportOptions;
use crate::export::import::ConflictPolicy;
use crate::http::dto::ImportOut;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The tenant to export (not with --verify).
    #[arg(required_unless_present = "verify")]
    slug: Option<String>,
    /// Where to write the archive.
    #[arg(short = 'o', long = "output", required_unless_present = "verify")]
    output: Option<PathBuf>,
    /// Check this archive against its manifest instead of exporting.
    #[arg(long, conflicts_with_all = ["slug", "output"])]
    verify: Option<PathBuf>,
    /// Reproduce an earlier export: include audit events up to this sequence number.
    #[arg(long)]
    audit_until: Option<i64>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The tenant's slug (its name in URLs, e.g. acme).
    slug: String,
    /// The ZIP archive: a Coffer export or a plain ZIP of folders.
    archive: PathBuf,
    /// What to do with paths and records that exist already: fail or skip.
    #[arg(long, default_value = "fail")]
    conflict: String,
}

/// Opens the operator's own archive (not tenant data).
fn open_archive(path: &Path) -> anyhow::Result<std::io::BufReader<std::fs::File>> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the operator's own archive, not tenant data"
    )]
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(std::io::BufReader::new(file))
}

pub fn export_command(g: &Global, args: ExportArgs) -> anyhow::Result<()> {
    match (args.verify, args.slug, args.output) {
        (Some(archive), _, _) => verify(g, &archive),
        (None, Some(slug), Some(output)) => export(g, &slug, &output, args.audit_until),
        _ => bail!("give a tenant and -o FILE.zip, or --verify FILE.zip"),
    }
}

/// The archive to read, behind a progress bar over its size.
fn archive_with_progress(
    g: &Global,
    label: &str,
    path: &Path,
) -> anyhow::Result<(Progress, impl std::io::Read + std::io::Seek)> {
    let reader = open_archive(path)?;
    let size = reader.get_ref().metadata()?.len();
    let progress = Progress::bytes(g, label, size);
    let reader = progress.bar().wrap_read(reader);
    Ok((progress, reader))
}

fn verify(g: &Global, archive: &Path) -> anyhow::Result<()> {
    let (progress, reader) = archive_with_progress(g, "verifying", archive)?;
    let report = crate::export::verify(reader)?;
    drop(progress);
    if g.json {
        print_json(&report)?;
    }
    if !report.problems.is_empty() {
        for p in &report.problems {
            eprintln!("{p}");
        }
        bail!(
            "{} does not match its manifest ({} problems)",
            archive.display(),
            report.problems.len()
        );
    }
    if !g.json {
        println!(
            "{}: {} entries, {} bytes, all match the manifest",
            archive.display(),
            report.entries,
            report.bytes
        );
    }
    Ok(())
}

/// Writes the archive to a temporary name beside `output`, fsyncs, then renames: a
/// half-written export never sits under the final name.
fn export(g: &Global, slug: &str, output: &Path, audit_until: Option<i64>) -> anyhow::Result<()> {
    let coffer = open(g)?;
    let access = access(&coffer, slug)?;
    let snapshot = coffer.snapshot(&access, audit_until)?;
    let total: u64 = snapshot.entries.iter().map(|e| e.size).sum();
    let partial = output.with_extension("zip.partial");
    #[allow(
        clippy::disallowed_methods,
        reason = "the operator's own output file, not tenant data"
    )]
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let bar = Progress::bytes(g, format!("exporting {slug}"), total);
    let mut progress = |done: u64| bar.bar().set_position(done);
    let options = ExportOptions {
        strict: audit_until.is_some(),
        stored: false,
        progress: Some(&mut progress),
    };
    let result = coffer
        .export(&access, &snapshot, &mut out, options, 0)
        .map_err(anyhow::Error::from)
        .and_then(|m| {
            let file = out.into_inner().map_err(|e| anyhow!(e.to_string()))?;
            file.sync_all()?;
            Ok(m)
        });
    drop(bar);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            #[allow(clippy::disallowed_methods, reason = "removing our own partial output")]
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    #[allow(
        clippy::disallowed_methods,
        reason = "the operator's own output file, not tenant data"
    )]
    std::fs::rename(&partial, output)?;
    if g.json {
        print_json(
            &serde_json::json!({ "archive": output, "entries": manifest.entries.len(),
            "audit_until_seq": manifest.audit_until_seq, "etag": snapshot.etag }),
        )?;
    } else {
        println!(
            "exported {slug} to {} ({} entries, audit events up to {})",
            output.display(),
            manifest.entries.len(),
            manifest.audit_until_seq
        );
    }
    Ok(())
}

pub fn import_command(g: &Global, args: ImportArgs) -> anyhow::Result<()> {
    let policy = ConflictPolicy::parse(&args.conflict)
        .ok_or_else(|| anyhow!("unknown conflict policy {:?} (fail, skip)", args.conflict))?;
    let coffer = open(g)?;
    let access = access(&coffer, &args.slug)?;
    let label = format!("importing into {}", access.tenant().slug);
    let (progress, reader) = archive_with_progress(g, &label, &args.archive)?;
    let report = coffer.import(&access, reader, policy)?;
    drop(progress);
    if g.json {
        print_json(&ImportOut::from(&report))?;
    } else {
        println!(
            "imported {} ({}) into {}: {} files, {} directories, {} bytes, {} records, {} skipped",
            args.archive.display(),
            report.kind,
            access.tenant().slug,
            report.summary.files,
            report.summary.dirs,
            report.summary.bytes,
            report.summary.records,
            report.summary.skipped.len()
        );
    }
    Ok(())
}
