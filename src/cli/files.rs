//! `coffer files ...` and `coffer reindex`: an operator's access to a tenant's files,
//! every read and write audited with the operator as its actor.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use super::progress::Progress;
use super::{Global, access, open, print_json, vault_path};
use crate::http::dto::EntryOut;
use crate::vault::Precondition;
use crate::vault::index::EntryKind;
use crate::vault::path::VaultPath;

#[derive(Subcommand, Debug)]
pub enum FilesCommand {
    /// Store a file (`-` reads standard input).
    Put {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The path inside the vault (e.g. jobs/2026/site.jpg).
        vault_path: String,
        /// The local file to store (`-` reads standard input).
        local_file: PathBuf,
    },
    /// Write a file to standard output, or to `-o FILE`.
    Get {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The path inside the vault (e.g. jobs/2026/site.jpg).
        vault_path: String,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// List a directory (the root by default).
    Ls {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The directory to list (default: the root).
        dir: Option<String>,
    },
    /// Move a file or directory to the trash.
    Rm {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The path inside the vault (e.g. jobs/2026/site.jpg).
        vault_path: String,
    },
}

pub fn files_command(g: &Global, cmd: FilesCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        FilesCommand::Put {
            slug,
            vault_path: raw,
            local_file,
        } => {
            let path = vault_path(&raw)?;
            let access = access(&coffer, &slug)?;
            let (vault, caller) = (access.vault(), access.caller());
            let written = if local_file == Path::new("-") {
                vault.write_file(caller, &path, &mut io::stdin().lock(), &Precondition::None)?
            } else {
                // The operator's own file, read with the operator's ambient authority; it
                // enters the vault only through the vault layer.
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the operator's own file, not tenant data"
                )]
                let f = std::fs::File::open(&local_file)
                    .with_context(|| format!("cannot open {}", local_file.display()))?;
                let progress = Progress::bytes(g, format!("storing {path}"), f.metadata()?.len());
                let mut reader = progress.bar().wrap_read(f);
                vault.write_file(caller, &path, &mut reader, &Precondition::None)?
            };
            let entry = written.entry;
            if g.json {
                print_json(&EntryOut::from(&entry))?;
            } else {
                println!(
                    "stored {} ({} bytes, sha256 {})",
                    entry.path,
                    entry.size,
                    entry.sha256.as_deref().unwrap_or("")
                );
            }
        }
        FilesCommand::Get {
            slug,
            vault_path: raw,
            output,
        } => get(g, &coffer, &slug, &raw, output)?,
        FilesCommand::Ls { slug, dir } => ls(g, &coffer, &slug, dir)?,
        FilesCommand::Rm {
            slug,
            vault_path: raw,
        } => {
            let path = vault_path(&raw)?;
            let access = access(&coffer, &slug)?;
            let item = access
                .vault()
                .delete(access.caller(), &path)
                .map_err(|e| about(path.as_str(), e))?;
            if g.json {
                print_json(&crate::http::dto::TrashItemOut::from(&item))?;
            } else {
                println!("moved {} to trash ({})", item.original_path, item.id);
            }
        }
    }
    Ok(())
}

/// A vault error about `path`, said with it: `not found: jobs/x.jpg`, or `PATH: what`.
fn about(path: &str, e: crate::vault::VaultError) -> anyhow::Error {
    match e {
        crate::vault::VaultError::NotFound => {
            anyhow::Error::new(e).context(format!("not found: {path}"))
        }
        other => anyhow::Error::new(other).context(path.to_owned()),
    }
}

fn get(
    g: &Global,
    coffer: &crate::coffer::Coffer,
    slug: &str,
    raw: &str,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    let path = vault_path(raw)?;
    let access = access(coffer, slug)?;
    let mut read = access
        .vault()
        .open_file(&path)
        .map_err(|e| about(path.as_str(), e))?;
    access
        .vault()
        .audit_operator_read(access.caller(), path.as_str())?;
    match output {
        Some(out) => {
            #[allow(
                clippy::disallowed_methods,
                reason = "the operator's own file, not tenant data"
            )]
            let mut f = std::fs::File::create(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let progress = Progress::bytes(g, format!("fetching {path}"), read.entry.size);
            io::copy(&mut read.file, &mut progress.bar().wrap_write(&mut f))?;
            f.sync_all()?;
        }
        None => {
            let stdout = io::stdout();
            let mut lock = stdout.lock();
            io::copy(&mut read.file, &mut lock)?;
            lock.flush()?;
        }
    }
    Ok(())
}

fn ls(
    g: &Global,
    coffer: &crate::coffer::Coffer,
    slug: &str,
    dir: Option<String>,
) -> anyhow::Result<()> {
    let dir = match dir.as_deref() {
        Some(raw) => VaultPath::parse_dir(raw).with_context(|| format!("directory {raw:?}"))?,
        None => None,
    };
    let access = access(coffer, slug)?;
    let vault = access.vault();
    vault.audit_operator_read(access.caller(), dir.as_ref().map_or("", |d| d.as_str()))?;
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = vault
            .list(dir.as_ref(), after.as_deref(), 1000)
            .map_err(|e| about(dir.as_ref().map_or("/", |d| d.as_str()), e))?;
        let Some(last) = page.last() else { break };
        after = Some(last.name.clone());
        all.extend(page);
    }
    if g.json {
        print_json(&all.iter().map(EntryOut::from).collect::<Vec<_>>())?;
    } else {
        for e in all {
            let kind = if e.kind == EntryKind::Dir { "d" } else { "-" };
            println!("{kind} {:>12} {} {}", e.size, e.modified_at, e.name);
        }
    }
    Ok(())
}

pub fn reindex(g: &Global, slug: &str) -> anyhow::Result<()> {
    let coffer = open(g)?;
    let access = access(&coffer, slug)?;
    let spinner = Progress::spinner(g, format!("reindexing {}", access.tenant().slug));
    let report = access.vault().reindex(access.caller())?;
    drop(spinner);
    if g.json {
        print_json(&report)?;
    } else {
        println!(
            "reindexed {}: {} files, {} directories, {} bytes",
            access.tenant().slug,
            report.files,
            report.dirs,
            report.bytes
        );
        for s in &report.skipped {
            println!("skipped {}: {}", s.path, s.reason);
        }
    }
    Ok(())
}
