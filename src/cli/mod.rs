//! The operator command line (`coffer ...`). Names and arguments are a contract that
//! operators' scripts rely on; the README documents every command.
//!
//! Every command parses its arguments into Coffer's types first (slugs, e-mails, vault
//! paths), so a bad argument is one clear line on standard error and a non-zero exit,
//! before anything is opened. Operators act through `Auth::operator_access` and the
//! control plane's rules like everyone else, audited as `operator:cli:<user>`. This
//! module prints; it holds no logic of its own beyond choosing what to call. One file
//! per command group.

mod accounts;
mod audit;
mod backup;
mod files;
mod lifecycle;
mod placements;
mod portability;
mod progress;
mod serve;
mod tenant;

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};

use crate::audit::{Actor, Caller};
use crate::auth::TenantAccess;
use crate::coffer::Coffer;
use crate::config::Config;
use crate::control::{Role, Tenant};
use crate::names::TenantSlug;
use crate::vault::path::VaultPath;

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
        /// Address to listen on (default: from the config, 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Where the demo fixtures are (default: the repository's fixtures/).
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Manage API tokens.
    #[command(subcommand)]
    Token(accounts::TokenCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Which node serves each tenant (PostgreSQL control plane), and HAProxy's map of it.
    #[command(subcommand)]
    Placements(placements::PlacementsCommand),
    /// Manage user accounts.
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// Manage tenant memberships.
    #[command(subcommand)]
    Member(tenant::MemberCommand),
    /// Operator access to a tenant's files (audited).
    #[command(subcommand)]
    Files(files::FilesCommand),
    /// Rebuild a vault's derived index from its files.
    Reindex {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// Export a whole vault as one ZIP archive, or check an archive against its manifest.
    Export(portability::ExportArgs),
    /// Restore an archive (a Coffer export or a plain ZIP of folders) into a vault.
    Import(portability::ImportArgs),
    /// Write a consistent backup set (and rotate old ones), or check one with --verify.
    Backup(backup::BackupArgs),
    /// Restore a backup set into a new data root (--data-dir).
    Restore {
        /// The backup set directory (coffer-backup-...).
        from: PathBuf,
    },
    /// Usage metering: reconcile counters with a recount.
    #[command(subcommand)]
    Usage(lifecycle::UsageCommand),
    /// Lifecycle work: purges, trash expiry, pruning.
    #[command(subcommand)]
    Lifecycle(lifecycle::LifecycleCommand),
    /// Audit-log and isolation checks.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or with DIR write one page per command there
    /// (coffer.1, coffer-tenant.1, coffer-tenant-create.1, ...).
    Man {
        /// Write one page per command into this directory instead of printing the main page.
        dir: Option<PathBuf>,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, std::env::args().any(|a| a == "--json")),
    };
    let json = cli.global.json;
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One clear line: the error and its causes, without a backtrace.
            // A cause that only repeats what is said already is left out.
            let mut message = e.to_string();
            for cause in e.chain().skip(1).map(|c| c.to_string()) {
                if !message.contains(&cause) {
                    message.push_str(&format!(": {cause}"));
                }
            }
            if json {
                print_json_error(error_code(e), &message);
            } else {
                eprintln!("coffer: {message}");
            }
            1
        }
    }
}

/// `coffer tenant list | head -1`: when the reader goes away, a command ends quietly
/// with the status a shell gives a process killed by SIGPIPE (128 + 13), instead of
/// panicking on the next print. (Not for the server: there a closed socket is normal.)
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// `{"error": {"code", "message"}}` on standard error, for `--json` callers.
fn print_json_error(code: &str, message: &str) {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    eprintln!("{body}");
}

/// The stable code of a failed command: the API's code for the same condition (one
/// mapping, `http::error`), `not-found` or `io-error` for the local filesystem, `error`
/// for the command line's own refusals.
fn error_code(e: anyhow::Error) -> &'static str {
    use crate::http::error::ApiError;
    macro_rules! via_api {
        ($e:expr, $($ty:ty),*) => {{
            let e = $e;
            $(let e = match e.downcast::<$ty>() {
                Ok(known) => return ApiError::from(known).code.as_str(),
                Err(other) => other,
            };)*
            e
        }};
    }
    let e = via_api!(
        e,
        crate::coffer::CofferError,
        crate::vault::VaultError,
        crate::control::ControlError,
        crate::auth::AuthError,
        crate::export::ExportError,
        crate::export::import::ImportError,
        crate::vault::path::PathError,
        crate::names::NameError,
        crate::auth::password::PasswordError
    );
    if e.downcast_ref::<Missing>().is_some() {
        return "not-found";
    }
    match e.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::NotFound => "not-found",
        Some(_) => "io-error",
        None => "error",
    }
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if !matches!(cli.command, Command::Serve { .. } | Command::Demo { .. }) {
        quiet_on_closed_pipe();
    }
    let g = &cli.global;
    match cli.command {
        Command::Init => serve::init(g)?,
        Command::Serve { listen } => serve::serve_command(g, listen)?,
        Command::Demo { listen, fixtures } => serve::demo(g, listen, fixtures)?,
        Command::Token(cmd) => accounts::token_command(g, cmd)?,
        Command::Tenant(cmd) => tenant::tenant_command(g, cmd)?,
        Command::Placements(cmd) => placements::placements_command(g, cmd)?,
        Command::User(cmd) => accounts::user_command(g, cmd)?,
        Command::Member(cmd) => tenant::member_command(g, cmd)?,
        Command::Files(cmd) => files::files_command(g, cmd)?,
        Command::Reindex { slug } => files::reindex(g, &slug)?,
        Command::Export(args) => portability::export_command(g, args)?,
        Command::Import(args) => portability::import_command(g, args)?,
        Command::Audit(cmd) => audit::audit_command(g, cmd)?,
        Command::Lifecycle(cmd) => lifecycle::lifecycle_command(g, cmd)?,
        Command::Usage(cmd) => lifecycle::usage_command(g, cmd)?,
        Command::Backup(args) => backup::backup_command(g, args)?,
        Command::Restore { from } => backup::restore_command(g, from)?,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "coffer", &mut std::io::stdout());
        }
        Command::Man { dir } => man(dir)?,
    }
    Ok(0)
}

/// A command line clap refused: help and version as clap prints them; a mistake as one
/// line, like every other error (what is wrong, the accepted values, where to look),
/// without clap's usage block and tips. Exit code 2, as clap's own.
fn usage_error(e: clap::Error, json: bool) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return e.exit_code();
    }
    // clap's message, folded into one line: the error, what it lists (missing arguments,
    // accepted values), its tip, and the help of the command that refused.
    let rendered = e.render().to_string();
    let mut line = String::from("coffer:");
    let mut help = String::from("coffer --help");
    let mut in_error = false;
    for raw in rendered.lines() {
        let part = raw.trim();
        if let Some(what) = part.strip_prefix("error:") {
            line.push_str(what);
            in_error = true;
        } else if part.is_empty() {
            in_error = false;
        } else if let Some(tip) = part.strip_prefix("tip:") {
            line.push_str(&format!(";{tip}"));
        } else if let Some(usage) = part.strip_prefix("Usage:") {
            let command: Vec<&str> = usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect();
            help = format!("{} --help", command.join(" "));
        } else if in_error || part.starts_with("[possible values:") {
            line.push(' ');
            line.push_str(part);
        }
    }
    if json {
        print_json_error("usage", line.trim_start_matches("coffer:").trim());
    } else {
        eprintln!("{line} ({help})");
    }
    2
}

/// The man page on standard output, or every command's page written into `dir`.
fn man(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let command = <Cli as clap::CommandFactory>::command();
    match dir {
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout())?,
        Some(dir) => {
            #[allow(
                clippy::disallowed_methods,
                reason = "the operator's own directory for man pages, not tenant data"
            )]
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
        }
    }
    Ok(())
}

/// The operator at this terminal, as an audit actor.
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

fn slug(raw: &str) -> anyhow::Result<TenantSlug> {
    TenantSlug::parse(raw).with_context(|| format!("tenant {raw:?}"))
}

fn tenant(coffer: &Coffer, raw: &str) -> anyhow::Result<Tenant> {
    let slug = slug(raw)?;
    coffer
        .control()
        .tenant_by_slug(&slug)?
        .ok_or_else(|| no_tenant(&slug))
}

/// Something a command names that does not exist: said in words, coded `not-found`
/// for `--json`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Missing(String);

fn missing(what: String) -> anyhow::Error {
    Missing(what).into()
}

/// A slug no tenant has.
fn no_tenant(slug: &TenantSlug) -> anyhow::Error {
    missing(format!("no tenant with slug {slug}"))
}

/// The operator's access to a tenant's vault.
fn access(coffer: &Coffer, raw: &str) -> anyhow::Result<TenantAccess> {
    let slug = slug(raw)?;
    coffer
        .auth()
        .operator_access(&operator(), &slug)
        .map_err(|e| match e {
            crate::auth::AuthError::NotFound => no_tenant(&slug),
            other => other.into(),
        })
}

fn role(raw: &str) -> anyhow::Result<Role> {
    Role::parse(raw)
        .ok_or_else(|| anyhow!("unknown role {raw:?} (owner, admin, member, viewer, auditor)"))
}

fn vault_path(raw: &str) -> anyhow::Result<VaultPath> {
    VaultPath::parse(raw).with_context(|| format!("vault path {raw:?}"))
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
