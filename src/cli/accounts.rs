//! `coffer user ...` and `coffer token ...`.

use std::io::{self, IsTerminal, Read};

use anyhow::{Context, bail};
use clap::Subcommand;

use super::{Global, missing, open, operator, print_json, role, tenant};
use crate::auth::password;
use crate::control::{NewUser, TokenScope};
use crate::http::dto::UserOut;
use crate::names::Email;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user account.
    Create {
        /// The user's e-mail address.
        email: String,
        /// The person's name (default: the part of the e-mail address before the @).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (first line). Without it the password
        /// is asked for on a terminal; elsewhere the user gets none and sets one by a
        /// password reset.
        #[arg(long)]
        password_stdin: bool,
        /// Make the user a platform operator.
        #[arg(long)]
        operator: bool,
    },
    /// List every user.
    List,
    /// Everything held about a person (their access request, P9), as JSON.
    Show {
        /// The user's e-mail address.
        email: String,
    },
    /// Delete an account: name, e-mail and password hash anonymised at once, sessions and
    /// tokens revoked; tenants it owned alone are purged (prints their receipts' ids).
    Delete {
        /// The user's e-mail address.
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a new API token (Bearer) for a member, scoped to the tenant; shown once.
    Create {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The user's e-mail address.
        email: String,
        /// Role of the token (default: the member's role); never above the member's.
        #[arg(long)]
        role: Option<String>,
        /// A name to recognise the token by (default: "cli token").
        #[arg(long)]
        name: Option<String>,
        /// Days until the token stops working (default: never).
        #[arg(long)]
        expires: Option<u32>,
        /// An extra permission: `ai-usage` (an AI integration reports tokens consumed).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List a tenant's API tokens (all members', or one member's): ids, names, roles,
    /// dates; never the secrets.
    List {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// Only this member's tokens.
        email: Option<String>,
    },
    /// Revoke a token by its id (from `token list`); takes effect on its next request.
    Revoke {
        /// The token's id (from `token list`).
        id: String,
    },
}

pub fn user_command(g: &Global, cmd: UserCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        UserCommand::Create {
            email,
            name,
            password_stdin,
            operator: is_operator,
        } => {
            let email = Email::parse(&email).with_context(|| format!("e-mail {email:?}"))?;
            let password_hash = if password_stdin {
                let mut line = String::new();
                io::stdin()
                    .take(password::MAX_PASSWORD_BYTES as u64 + 2)
                    .read_to_string(&mut line)?;
                let pw = line.lines().next().unwrap_or("");
                Some(password::hash(pw)?)
            } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
                Some(password::hash(&ask_new_password(&email)?)?)
            } else {
                None
            };
            let name = crate::names::display_name(
                &name.unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("").to_owned()),
            )?;
            let password_hash_set = password_hash.as_ref().map(|_| ());
            let user = coffer.control().create_user(
                &operator(),
                &NewUser {
                    email,
                    name,
                    password_hash,
                    is_operator,
                },
            )?;
            if g.json {
                print_json(&UserOut::from(&user))?;
            } else {
                println!("created user {} ({})", user.email, user.id);
                if password_hash_set.is_none() {
                    println!(
                        "no password yet: {} sets one with a password reset (POST \
                         /api/v1/auth/password-reset leaves a reset token for them in the data root's outbox/ for your mailer), or give one now with \
                         --password-stdin",
                        user.email
                    );
                }
            }
        }
        UserCommand::List => {
            let users = coffer.control().users()?;
            if g.json {
                print_json(&users.iter().map(UserOut::from).collect::<Vec<_>>())?;
            } else {
                for u in users {
                    let flag = if u.is_operator { "\toperator" } else { "" };
                    println!("{}\t{}\t{}{flag}", u.email, u.id, u.name);
                }
            }
        }
        UserCommand::Show { email } => {
            let parsed = Email::parse(&email).with_context(|| format!("e-mail {email:?}"))?;
            let user = coffer
                .control()
                .user_by_email(&parsed)?
                .ok_or_else(|| missing(format!("no user {email}")))?;
            let document = crate::http::rights::personal_data(&coffer, &user, None)
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            print_json(&document)?;
        }
        UserCommand::Delete { email } => delete_user(g, &coffer, &email)?,
    }
    Ok(())
}

/// `coffer user delete EMAIL`: the account is erased at once; the tenants it owned
/// alone are cancelled (their other members may export them until the purge date, then
/// the lifecycle pass purges them).
fn delete_user(g: &Global, coffer: &crate::coffer::Coffer, email: &str) -> anyhow::Result<()> {
    let parsed = Email::parse(email).with_context(|| format!("e-mail {email:?}"))?;
    let user = coffer
        .control()
        .user_by_email(&parsed)?
        .ok_or_else(|| missing(format!("no user {email}")))?;
    let orphaned = coffer
        .auth()
        .erase_account(&operator(), &user, coffer.purge_grace())?;
    let mut cancelled = Vec::new();
    for id in &orphaned {
        let tenant = coffer.control().tenant(*id)?.context("tenant row")?;
        cancelled.push(serde_json::json!({ "tenant": id.to_string(),
            "slug": tenant.slug, "purge_after": tenant.lifecycle.purge_after }));
    }
    if g.json {
        print_json(&serde_json::json!({ "deleted": user.id.to_string(),
            "tenants_cancelled": cancelled }))?;
    } else {
        println!("deleted account {} ({})", email, user.id);
        for c in &cancelled {
            println!(
                "cancelled tenant {} ({}): purged after {}",
                c["slug"].as_str().unwrap_or(""),
                c["tenant"].as_str().unwrap_or(""),
                c["purge_after"].as_str().unwrap_or("(held)")
            );
        }
    }
    Ok(())
}

pub fn token_command(g: &Global, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            slug,
            email,
            role,
            name,
            expires,
            scopes,
        } => create_token(g, &slug, &email, role, name, expires, &scopes),
        TokenCommand::List { slug, email } => list_tokens(g, &slug, email.as_deref()),
        TokenCommand::Revoke { id } => {
            let coffer = open(g)?;
            let token = coffer
                .control()
                .token(&id)?
                .ok_or_else(|| missing(format!("no token with id {id}")))?;
            if token.revoked_at.is_some() {
                bail!("token {id} is already revoked");
            }
            coffer
                .control()
                .revoke_token(&operator(), token.user_id, &id)?;
            if g.json {
                print_json(&serde_json::json!({ "revoked": id }))?;
            } else {
                println!("revoked token {id} ({})", token.name);
            }
            Ok(())
        }
    }
}

/// Prints the tokens of `slug` (of one member with `email`).
fn list_tokens(g: &Global, slug: &str, email: Option<&str>) -> anyhow::Result<()> {
    let coffer = open(g)?;
    let t = tenant(&coffer, slug)?;
    let mut members = coffer.control().members(t.id)?;
    if let Some(email) = email {
        members.retain(|m| m.email.eq_ignore_ascii_case(email));
        if members.is_empty() {
            bail!("{email} is not a member of {}", t.slug);
        }
    }
    let mut rows = Vec::new();
    for member in &members {
        for token in coffer.control().tokens_of(member.user_id)? {
            if token.tenant_id == t.id {
                rows.push(serde_json::json!({
                    "id": token.id,
                    "email": member.email,
                    "name": token.name,
                    "role": token.role.as_str(),
                    "created_at": token.created_at,
                    "last_used_at": token.last_used_at,
                    "expires_at": token.expires_at,
                    "revoked_at": token.revoked_at,
                }));
            }
        }
    }
    if g.json {
        return print_json(&rows);
    }
    for r in &rows {
        let state = match (&r["revoked_at"], &r["expires_at"]) {
            (serde_json::Value::String(at), _) => format!("revoked {at}"),
            (_, serde_json::Value::String(at)) => format!("expires {at}"),
            _ => "no expiry".to_owned(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}",
            r["id"].as_str().unwrap_or(""),
            r["email"].as_str().unwrap_or(""),
            r["role"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or(""),
            state
        );
    }
    println!("{} tokens", rows.len());
    Ok(())
}

fn create_token(
    g: &Global,
    slug: &str,
    email: &str,
    raw_role: Option<String>,
    name: Option<String>,
    expires: Option<u32>,
    scopes: &[String],
) -> anyhow::Result<()> {
    let scopes = scopes
        .iter()
        .map(|s| TokenScope::parse(s).with_context(|| format!("unknown scope {s:?} (ai-usage)")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let coffer = open(g)?;
    let t = tenant(&coffer, slug)?;
    let parsed = Email::parse(email).with_context(|| format!("e-mail {email:?}"))?;
    let user = coffer
        .control()
        .user_by_email(&parsed)?
        .ok_or_else(|| missing(format!("no user {email}")))?;
    let Some(member_role) = coffer.control().membership(user.id, t.id)? else {
        bail!("{email} is not a member of {}", t.slug);
    };
    let role = match raw_role {
        Some(r) => role(&r)?,
        None => member_role,
    };
    let (secret, token) = coffer.auth().issue_scoped_token(
        user.id,
        &t,
        role,
        name.as_deref().unwrap_or("cli token"),
        expires,
        &scopes,
        &operator(),
    )?;
    if g.json {
        return print_json(&serde_json::json!({
            "token": secret,
            "id": token.id,
            "tenant": t.slug,
            "email": user.email,
            "role": token.role.as_str(),
            "expires_at": token.expires_at,
        }));
    }
    println!("{secret}");
    Ok(())
}

/// Asks for a new password twice on the terminal, without echoing it.
fn ask_new_password(email: &Email) -> anyhow::Result<String> {
    let first = read_hidden(&format!("Password for {email}: "))?;
    let second = read_hidden("Again: ")?;
    if first != second {
        bail!("the two passwords differ; nothing was created");
    }
    Ok(first)
}

/// One line from the terminal with echo off (restored even on error).
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = io::stdin();
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    eprint!("{prompt}");
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    tcsetattr(&stdin, OptionalActions::Now, &saved)?;
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
