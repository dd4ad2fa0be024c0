//! The operator command line (`coffer ...`). Names and arguments follow
//! `CLI-CONTRACT.md`: operators' scripts rely on them.
//!
//! Every command parses its arguments into Coffer's types first (slugs, e-mails, vault
//! paths), so a bad argument is one clear line on standard error and a non-zero exit,
//! before anything is opened. Operator actions are audited as `operator:cli:<user>`.
//! This module prints; it holds no logic of its own beyond choosing what to call.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand};

use crate::audit::{Actor, Caller};
use crate::auth::password;
use crate::coffer::Coffer;
use crate::config::Config;
use crate::control::{Role, Tenant};
use crate::vault::Precondition;
use crate::vault::path::{Email, TenantSlug, VaultPath};

#[derive(Parser, Debug)]
#[command(
    name = "coffer",
    version,
    about = "Multi-tenant filesystem vault service"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The data root.
    #[arg(
        long,
        global = true,
        env = "COFFER_DATA_DIR",
        default_value = "./coffer-data"
    )]
    pub data_dir: PathBuf,
    /// A TOML configuration file.
    #[arg(long, global = true, env = "COFFER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print reports as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a data root (control plane, audit log, secret) if absent.
    Init,
    /// Run the HTTP service.
    Serve {
        /// Address to listen on (default: from the config, 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Seed a fresh data root from fixtures/ and serve it; prints the URL and the logins.
    Demo {
        #[arg(long)]
        listen: Option<String>,
        /// Where the demo fixtures are (default: the repository's fixtures/).
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage tenant memberships.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Operator access to a tenant's files (audited).
    #[command(subcommand)]
    Files(FilesCommand),
    /// Rebuild a vault's derived index from its files.
    Reindex { slug: String },
    /// Export a whole vault as one ZIP archive, or check an archive against its manifest.
    Export {
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
    },
    /// Restore an archive (a Coffer export or a plain ZIP of folders) into a vault.
    Import {
        slug: String,
        archive: PathBuf,
        /// What to do with paths and records that exist already: fail or skip.
        #[arg(long, default_value = "fail")]
        conflict: String,
    },
    /// Audit-log and isolation checks.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant and its vault.
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        /// E-mail of an existing user who becomes the owner.
        #[arg(long)]
        owner: Option<String>,
        /// Storage quota in bytes (default: the configured default).
        #[arg(long)]
        quota_bytes: Option<u64>,
    },
    List,
    Show {
        slug: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user account.
    Create {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
        /// Make the user a platform operator.
        #[arg(long)]
        operator: bool,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Add a member, or change an existing member's role.
    Add {
        slug: String,
        email: String,
        /// owner, admin, member, viewer or auditor.
        role: String,
    },
    Remove {
        slug: String,
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum FilesCommand {
    /// Store a file (`-` reads standard input).
    Put {
        slug: String,
        vault_path: String,
        local_file: PathBuf,
    },
    /// Write a file to standard output, or to `-o FILE`.
    Get {
        slug: String,
        vault_path: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// List a directory (the root by default).
    Ls { slug: String, dir: Option<String> },
    /// Move a file or directory to the trash.
    Rm { slug: String, vault_path: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a new API token (Bearer) for a member, scoped to the tenant; shown once.
    Create {
        slug: String,
        email: String,
        /// Role of the token (default: the member's role); never above the member's.
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit log's hash chain.
    Verify,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One clear line: the error and its causes, without a backtrace.
            let mut line = format!("coffer: {e}");
            for cause in e.chain().skip(1) {
                line.push_str(&format!(": {cause}"));
            }
            eprintln!("{line}");
            1
        }
    }
}

fn operator() -> Caller {
    let name = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    Caller::new(Actor::Operator(name))
}

fn load_config(global: &Global) -> anyhow::Result<Config> {
    match &global.config {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

fn open(global: &Global) -> anyhow::Result<Coffer> {
    Ok(Coffer::open(&global.data_dir, load_config(global)?)?)
}

fn tenant(coffer: &Coffer, slug: &str) -> anyhow::Result<Tenant> {
    let slug = TenantSlug::parse(slug).with_context(|| format!("tenant {slug:?}"))?;
    coffer
        .control
        .store()
        .tenant_by_slug(&slug)?
        .ok_or_else(|| anyhow!("no tenant with slug {slug}"))
}

fn vault_path(raw: &str) -> anyhow::Result<VaultPath> {
    VaultPath::parse(raw).with_context(|| format!("vault path {raw:?}"))
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    match cli.command {
        Command::Init => {
            let (coffer, created) = Coffer::init(&g.data_dir, load_config(g)?)?;
            let path = coffer.root.ambient_path().display().to_string();
            if g.json {
                print_json(&serde_json::json!({ "data_root": path, "created": created }))?;
            } else if created {
                println!("initialised data root {path}");
            } else {
                println!("data root {path} already initialised");
            }
        }
        Command::Serve { listen } => {
            let coffer = open(g)?;
            let listen = listen.unwrap_or_else(|| coffer.config.listen.clone());
            serve(coffer, &listen, None)?;
        }
        Command::Demo { listen, fixtures } => {
            let fixtures = fixtures.unwrap_or_else(default_fixtures);
            let demo = crate::demo::load(&fixtures)?;
            let fresh = !g.data_dir.join("COFFER").exists();
            let (coffer, _) = Coffer::init(&g.data_dir, load_config(g)?)?;
            if fresh {
                crate::demo::seed(&coffer, &demo, &fixtures)?;
            } else if !crate::demo::seeded(&coffer, &demo)? {
                bail!(
                    "{} already holds a data root that is not a demo; pass --data-dir with a new directory",
                    g.data_dir.display()
                );
            }
            let listen = listen.unwrap_or_else(|| coffer.config.listen.clone());
            serve(coffer, &listen, Some(crate::demo::logins(&demo)))?;
        }
        Command::Token(TokenCommand::Create {
            slug,
            email,
            role,
            name,
        }) => {
            let coffer = open(g)?;
            let t = tenant(&coffer, &slug)?;
            let user = coffer
                .control
                .user_by_email(&Email::parse(&email)?)
                .with_context(|| format!("user {email}"))?;
            let member_role = coffer
                .control
                .store()
                .membership(user.id, t.id)?
                .ok_or_else(|| anyhow!("{email} is not a member of {}", t.slug))?;
            let role = match role {
                Some(r) => Role::parse(&r).ok_or_else(|| {
                    anyhow!("unknown role {r:?} (owner, admin, member, viewer, auditor)")
                })?,
                None => member_role,
            };
            if !crate::auth::permission::may_grant(member_role, role) {
                bail!(
                    "{email} is {} of {} and cannot hold a {} token",
                    member_role.as_str(),
                    t.slug,
                    role.as_str()
                );
            }
            let auth = crate::auth::Auth::new(
                coffer.clone(),
                std::sync::Arc::new(crate::auth::mailer::OutboxMailer::new(coffer.root.clone())),
            )?;
            let (secret, _) = auth.issue_token(
                user.id,
                &t,
                role,
                name.as_deref().unwrap_or("cli token"),
                operator(),
            )?;
            println!("{secret}");
        }
        Command::Tenant(cmd) => tenant_command(g, cmd)?,
        Command::User(cmd) => user_command(g, cmd)?,
        Command::Member(cmd) => member_command(g, cmd)?,
        Command::Files(cmd) => files_command(g, cmd)?,
        Command::Reindex { slug } => {
            let coffer = open(g)?;
            let t = tenant(&coffer, &slug)?;
            let report = coffer.vault(&t)?.reindex(&operator())?;
            if g.json {
                print_json(&report)?;
            } else {
                println!(
                    "reindexed {}: {} files, {} directories, {} bytes",
                    t.slug, report.files, report.dirs, report.bytes
                );
                for s in &report.skipped {
                    println!("skipped {}: {}", s.path, s.reason);
                }
            }
        }
        Command::Export {
            slug,
            output,
            verify,
            audit_until,
        } => match (verify, slug, output) {
            (Some(archive), _, _) => {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the operator's own archive, not tenant data"
                )]
                let file = std::fs::File::open(&archive)
                    .with_context(|| format!("cannot open {}", archive.display()))?;
                let report = crate::export::verify(std::io::BufReader::new(file))?;
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
            }
            (None, Some(slug), Some(output)) => export_command(g, &slug, &output, audit_until)?,
            _ => bail!("give a tenant and -o FILE.zip, or --verify FILE.zip"),
        },
        Command::Import {
            slug,
            archive,
            conflict,
        } => {
            let policy = crate::export::import::ConflictPolicy::parse(&conflict)
                .ok_or_else(|| anyhow!("unknown conflict policy {conflict:?} (fail, skip)"))?;
            let coffer = open(g)?;
            let t = tenant(&coffer, &slug)?;
            let vault = coffer.vault(&t)?;
            #[allow(
                clippy::disallowed_methods,
                reason = "the operator's own archive, not tenant data"
            )]
            let file = std::fs::File::open(&archive)
                .with_context(|| format!("cannot open {}", archive.display()))?;
            let report = crate::export::import::import_archive(
                &vault,
                &operator(),
                std::io::BufReader::new(file),
                &coffer.config.import_limits(),
                policy,
            )?;
            if g.json {
                print_json(&report)?;
            } else {
                println!(
                    "imported {} ({}) into {}: {} files, {} directories, {} bytes, {} records, {} skipped",
                    archive.display(),
                    report.kind,
                    t.slug,
                    report.summary.files,
                    report.summary.dirs,
                    report.summary.bytes,
                    report.summary.records,
                    report.summary.skipped.len()
                );
            }
        }
        Command::Audit(AuditCommand::Verify) => {
            let coffer = open(g)?;
            let report = coffer.audit.verify()?;
            if g.json {
                print_json(&report)?;
            }
            match report.broken {
                None => {
                    if !g.json {
                        println!("audit chain intact: {} events", report.events);
                    }
                }
                Some((seq, why)) => bail!("audit chain broken at event {seq}: {why}"),
            }
        }
    }
    Ok(0)
}

/// Writes the archive to a temporary name beside `output`, fsyncs, then renames: a
/// half-written export never sits under the final name.
fn export_command(
    g: &Global,
    slug: &str,
    output: &Path,
    audit_until: Option<i64>,
) -> anyhow::Result<()> {
    use crate::audit::AuditAction;
    use std::io::IsTerminal;
    let coffer = open(g)?;
    let t = tenant(&coffer, slug)?;
    let vault = coffer.vault(&t)?;
    let snapshot = crate::export::Snapshot::take(&vault, &t, &coffer.audit, audit_until)?;
    let total: u64 = snapshot.entries.iter().map(|e| e.size).sum();
    let caller = operator();
    coffer.audit.append(
        &caller
            .event(AuditAction::ExportStart)
            .tenant(t.id)
            .detail(serde_json::json!({ "audit_until_seq": snapshot.audit_until_seq })),
    )?;
    let partial = output.with_extension("zip.partial");
    #[allow(
        clippy::disallowed_methods,
        reason = "the operator's own output file, not tenant data"
    )]
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let show = std::io::stderr().is_terminal() && !g.json;
    let mut last = std::time::Instant::now();
    let mut progress = |done: u64| {
        if show && last.elapsed() > std::time::Duration::from_millis(200) {
            last = std::time::Instant::now();
            eprint!(
                "\rexporting {}: {:>5.1}% of {} MiB",
                t.slug,
                done as f64 * 100.0 / total.max(1) as f64,
                total >> 20
            );
        }
    };
    let result = crate::export::write_archive(
        &snapshot,
        &vault,
        &coffer.audit,
        &mut out,
        crate::export::ExportOptions {
            strict: audit_until.is_some(),
            progress: Some(&mut progress),
        },
    )
    .and_then(|m| {
        let file = out
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        file.sync_all()?;
        Ok(m)
    });
    if show {
        eprintln!();
    }
    let outcome = if result.is_ok() {
        crate::audit::Outcome::Success
    } else {
        crate::audit::Outcome::Failure
    };
    coffer.audit.append(
        &caller
            .event(AuditAction::ExportFinish)
            .tenant(t.id)
            .outcome(outcome),
    )?;
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            #[allow(clippy::disallowed_methods, reason = "removing our own partial output")]
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
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
            "exported {} to {} ({} entries, audit events up to {})",
            t.slug,
            output.display(),
            manifest.entries.len(),
            manifest.audit_until_seq
        );
    }
    Ok(())
}

/// The repository's `fixtures/` (for `cargo run -- demo`), else `./fixtures`.
fn default_fixtures() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    if repo.join("demo.json").is_file() {
        repo
    } else {
        PathBuf::from("fixtures")
    }
}

/// Starts logging and the runtime, binds, and serves until Ctrl-C or SIGTERM.
fn serve(coffer: Coffer, listen: &str, banner: Option<Vec<String>>) -> anyhow::Result<()> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let state = crate::http::AppState::new(coffer)?;
        println!("Coffer is serving on http://{addr}/ (API docs: http://{addr}/api/v1/docs)");
        if let Some(lines) = banner {
            println!("Demo logins:");
            for line in lines {
                println!("{line}");
            }
        }
        tracing::info!(%addr, "listening");
        crate::http::serve(state, listener, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Structured logs to standard error; `RUST_LOG` filters, `COFFER_LOG_FORMAT=json` for
/// JSON lines.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("COFFER_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn tenant_command(g: &Global, cmd: TenantCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        TenantCommand::Create {
            slug,
            name,
            owner,
            quota_bytes,
        } => {
            let slug = TenantSlug::parse(&slug).with_context(|| format!("tenant {slug:?}"))?;
            let owner = match owner {
                Some(email) => Some(
                    coffer
                        .control
                        .user_by_email(&Email::parse(&email)?)
                        .with_context(|| format!("owner {email}"))?,
                ),
                None => None,
            };
            let caller = operator();
            let name = name.unwrap_or_else(|| slug.to_string());
            let t = coffer.create_tenant(&caller, &slug, &name, quota_bytes)?;
            if let Some(owner) = owner {
                coffer
                    .control
                    .set_member(&caller, t.id, owner.id, Role::Owner)?;
            }
            if g.json {
                print_json(&t)?;
            } else {
                println!("created tenant {} ({})", t.slug, t.id);
            }
        }
        TenantCommand::List => {
            let tenants = coffer.control.store().tenants()?;
            if g.json {
                print_json(&tenants)?;
            } else {
                for t in tenants {
                    println!("{}\t{}\t{}\t{}", t.slug, t.state.as_str(), t.id, t.name);
                }
            }
        }
        TenantCommand::Show { slug } => {
            let t = tenant(&coffer, &slug)?;
            let members = coffer.control.store().members(t.id)?;
            let usage = coffer.vault(&t)?.usage()?;
            if g.json {
                print_json(&serde_json::json!({
                    "tenant": t, "members": members,
                    "usage": usage.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                }))?;
            } else {
                println!(
                    "slug:    {}\nname:    {}\nid:      {}\nstate:   {}\nplan:    {}\nquota:   {}\ncreated: {}",
                    t.slug,
                    t.name,
                    t.id,
                    t.state.as_str(),
                    t.plan,
                    t.quota_bytes
                        .map_or("unlimited".to_owned(), |q| format!("{q} bytes")),
                    t.created_at
                );
                for (name, value) in usage {
                    println!("usage:   {name} = {value}");
                }
                for m in members {
                    println!("member:  {} ({})", m.email, m.role.as_str());
                }
            }
        }
    }
    Ok(())
}

fn user_command(g: &Global, cmd: UserCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        UserCommand::Create {
            email,
            name,
            password_stdin,
            operator: is_operator,
        } => {
            let email = Email::parse(&email).with_context(|| format!("e-mail {email:?}"))?;
            let hash = if password_stdin {
                let mut line = String::new();
                io::stdin()
                    .take(password::MAX_PASSWORD_BYTES as u64 + 2)
                    .read_to_string(&mut line)?;
                let pw = line.lines().next().unwrap_or("");
                Some(password::hash(pw)?)
            } else {
                None
            };
            let name =
                name.unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("").to_owned());
            let user = coffer.control.create_user(
                &operator(),
                &email,
                &name,
                hash.as_deref(),
                is_operator,
            )?;
            if g.json {
                print_json(&user)?;
            } else {
                println!("created user {} ({})", user.email, user.id);
            }
        }
        UserCommand::List => {
            let users = coffer.control.store().users()?;
            if g.json {
                print_json(&users)?;
            } else {
                for u in users {
                    let flag = if u.is_operator { "\toperator" } else { "" };
                    println!("{}\t{}\t{}{flag}", u.email, u.id, u.name);
                }
            }
        }
    }
    Ok(())
}

fn member_command(g: &Global, cmd: MemberCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        MemberCommand::Add { slug, email, role } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow!("unknown role {role:?} (owner, admin, member, viewer, auditor)")
            })?;
            let t = tenant(&coffer, &slug)?;
            let user = coffer
                .control
                .user_by_email(&Email::parse(&email)?)
                .with_context(|| format!("user {email}"))?;
            coffer
                .control
                .set_member(&operator(), t.id, user.id, role)?;
            println!("{} is {} of {}", user.email, role.as_str(), t.slug);
        }
        MemberCommand::Remove { slug, email } => {
            let t = tenant(&coffer, &slug)?;
            let user = coffer
                .control
                .user_by_email(&Email::parse(&email)?)
                .with_context(|| format!("user {email}"))?;
            coffer.control.remove_member(&operator(), t.id, user.id)?;
            println!("removed {} from {}", user.email, t.slug);
        }
    }
    Ok(())
}

fn files_command(g: &Global, cmd: FilesCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        FilesCommand::Put {
            slug,
            vault_path: raw,
            local_file,
        } => {
            let path = vault_path(&raw)?;
            let t = tenant(&coffer, &slug)?;
            let vault = coffer.vault(&t)?;
            let entry = if local_file == Path::new("-") {
                vault.write_file(
                    &operator(),
                    &path,
                    &mut io::stdin().lock(),
                    &Precondition::None,
                )?
            } else {
                // The operator's own file, read with the operator's ambient authority; it
                // enters the vault only through the vault layer.
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the operator's own file, not tenant data"
                )]
                let mut f = std::fs::File::open(&local_file)
                    .with_context(|| format!("cannot open {}", local_file.display()))?;
                vault.write_file(&operator(), &path, &mut f, &Precondition::None)?
            };
            if g.json {
                print_json(&entry)?;
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
        } => {
            let path = vault_path(&raw)?;
            let t = tenant(&coffer, &slug)?;
            let vault = coffer.vault(&t)?;
            let mut read = vault.open_file(&path)?;
            vault.audit_operator_read(&operator(), path.as_str())?;
            match output {
                Some(out) => {
                    #[allow(
                        clippy::disallowed_methods,
                        reason = "the operator's own file, not tenant data"
                    )]
                    let mut f = std::fs::File::create(&out)
                        .with_context(|| format!("cannot create {}", out.display()))?;
                    io::copy(&mut read.file, &mut f)?;
                    f.sync_all()?;
                }
                None => {
                    let stdout = io::stdout();
                    let mut lock = stdout.lock();
                    io::copy(&mut read.file, &mut lock)?;
                    lock.flush()?;
                }
            }
        }
        FilesCommand::Ls { slug, dir } => {
            let dir = match dir.as_deref() {
                Some(raw) => {
                    VaultPath::parse_dir(raw).with_context(|| format!("directory {raw:?}"))?
                }
                None => None,
            };
            let t = tenant(&coffer, &slug)?;
            let vault = coffer.vault(&t)?;
            vault.audit_operator_read(&operator(), dir.as_ref().map_or("", |d| d.as_str()))?;
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = vault.list(dir.as_ref(), after.as_deref(), 1000)?;
                let Some(last) = page.last() else { break };
                after = Some(last.name.clone());
                all.extend(page);
            }
            if g.json {
                print_json(&all)?;
            } else {
                for e in all {
                    let kind = if e.kind == crate::vault::index::EntryKind::Dir {
                        "d"
                    } else {
                        "-"
                    };
                    println!("{kind} {:>12} {} {}", e.size, e.modified_at, e.name);
                }
            }
        }
        FilesCommand::Rm {
            slug,
            vault_path: raw,
        } => {
            let path = vault_path(&raw)?;
            let t = tenant(&coffer, &slug)?;
            let item = coffer.vault(&t)?.delete(&operator(), &path)?;
            println!("moved {} to trash ({})", item.original_path, item.id);
        }
    }
    Ok(())
}
