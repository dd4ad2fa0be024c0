//! `coffer tenant ...` and `coffer member ...`.

use anyhow::Context;
use clap::Subcommand;

use super::{Global, access, open, operator, print_json, role, slug};
use crate::control::{MemberChange, NewTenant, TenantOwner};
use crate::http::dto::{MemberOut, TenantOut};
use crate::names::Email;

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
    /// List every tenant.
    List,
    /// Show a tenant, its members and its usage.
    Show { slug: String },
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
    /// Remove a member (the last owner cannot be removed).
    Remove { slug: String, email: String },
}

pub fn tenant_command(g: &Global, cmd: TenantCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        TenantCommand::Create {
            slug: raw,
            name,
            owner,
            quota_bytes,
        } => {
            let slug = slug(&raw)?;
            let owner = match owner {
                Some(email) => {
                    let parsed = Email::parse(&email).with_context(|| format!("owner {email}"))?;
                    let user = coffer
                        .control()
                        .user_by_email(&parsed)?
                        .with_context(|| format!("no user {email}"))?;
                    Some(TenantOwner::Existing(user.id))
                }
                None => None,
            };
            let name = name.unwrap_or_else(|| slug.to_string());
            let new = NewTenant {
                slug,
                name,
                quota_bytes,
                owner,
            };
            let t = coffer.create_tenant(&operator(), new)?;
            if g.json {
                print_json(&TenantOut::from(&t))?;
            } else {
                println!("created tenant {} ({})", t.slug, t.id);
            }
        }
        TenantCommand::List => {
            let tenants = coffer.control().tenants()?;
            if g.json {
                print_json(&tenants.iter().map(TenantOut::from).collect::<Vec<_>>())?;
            } else {
                for t in tenants {
                    println!("{}\t{}\t{}\t{}", t.slug, t.state.as_str(), t.id, t.name);
                }
            }
        }
        TenantCommand::Show { slug } => show(g, &coffer, &slug)?,
    }
    Ok(())
}

fn show(g: &Global, coffer: &crate::coffer::Coffer, raw: &str) -> anyhow::Result<()> {
    let access = access(coffer, raw)?;
    let t = access.tenant();
    let members = coffer.control().members(t.id)?;
    let usage = access.vault().usage()?;
    if g.json {
        print_json(&serde_json::json!({
            "tenant": TenantOut::from(t),
            "members": members.iter().map(MemberOut::from).collect::<Vec<_>>(),
            "usage": usage.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        }))?;
        return Ok(());
    }
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
    Ok(())
}

pub fn member_command(g: &Global, cmd: MemberCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    let user_of = |email: &str| -> anyhow::Result<crate::control::User> {
        let parsed = Email::parse(email).with_context(|| format!("e-mail {email:?}"))?;
        coffer
            .control()
            .user_by_email(&parsed)?
            .with_context(|| format!("no user {email}"))
    };
    match cmd {
        MemberCommand::Add {
            slug,
            email,
            role: raw_role,
        } => {
            let role = role(&raw_role)?;
            let access = access(&coffer, &slug)?;
            let user = user_of(&email)?;
            access.change_member(coffer.control(), user.id, role, MemberChange::Upsert)?;
            println!(
                "{} is {} of {}",
                user.email,
                role.as_str(),
                access.tenant().slug
            );
        }
        MemberCommand::Remove { slug, email } => {
            let access = access(&coffer, &slug)?;
            let user = user_of(&email)?;
            access.remove_member(coffer.control(), user.id)?;
            println!("removed {} from {}", user.email, access.tenant().slug);
        }
    }
    Ok(())
}
