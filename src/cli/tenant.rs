//! `coffer tenant ...` and `coffer member ...`.

use anyhow::{Context, bail};
use clap::Subcommand;

use super::lifecycle::{Step, tenant_step};
use super::{Global, access, missing, open, operator, print_json, role, slug, tenant};
use crate::control::rules::Transition;
use crate::control::{MemberChange, NewTenant, TenantOwner};
use crate::http::dto::{MemberOut, TenantOut};
use crate::names::Email;

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant and its vault.
    Create {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The tenant's display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// E-mail of an existing user who becomes the owner.
        #[arg(long)]
        owner: Option<String>,
        /// Storage quota in bytes (default: the configured default).
        #[arg(long)]
        quota_bytes: Option<u64>,
    },
    /// Rename a tenant or change its quota (takes effect on its next request).
    Update {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The tenant's new display name.
        #[arg(long)]
        name: Option<String>,
        /// New storage quota in bytes.
        #[arg(long)]
        quota_bytes: Option<u64>,
    },
    /// List every tenant.
    List,
    /// Show a tenant, its members and its usage.
    Show {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// Restrict processing (GDPR Art. 18): readable and exportable, no writes by programs.
    Restrict {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// Lift a restriction.
    Unrestrict {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// End the subscription: read-only, exportable, purged after the grace period.
    Cancel {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// Undo a cancellation before the purge.
    Reactivate {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// Delete at once: cancel and purge now; prints the signed deletion receipt.
    Delete {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// Place a legal hold: purge and trash expiry wait until it is released.
    Hold {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// Release a legal hold.
    Release {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
    },
    /// Bring a lost node's tenant back on this node from the newest backup set holding it
    /// (PostgreSQL control plane). Changes since that backup are lost: the window is
    /// printed.
    Recover {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// This node's name (as a check that the recovery runs where the tenant goes).
        #[arg(long)]
        to: String,
        /// The backup directory holding the sets (default: the configured backup_dir).
        #[arg(long)]
        from: Option<std::path::PathBuf>,
    },
    /// Move a tenant onto this node from the node holding it (PostgreSQL control plane):
    /// writes are refused while it is copied, reads go on; nothing acknowledged is lost.
    /// Run again to resume an interrupted move, or with --abort to roll it back.
    Move {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// This node's name (as a check that the move runs where the tenant goes).
        #[arg(long, required_unless_present = "abort", conflicts_with = "abort")]
        to: Option<String>,
        /// Roll an interrupted move back: the tenant takes writes again where it is.
        #[arg(long)]
        abort: bool,
    },
    /// A purged tenant's signed deletion receipt (by tenant id).
    Receipt {
        /// The purged tenant's id (32 hexadecimal digits).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Add a member, or change an existing member's role.
    Add {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The user's e-mail address.
        email: String,
        /// owner, admin, member, viewer or auditor.
        role: String,
    },
    /// Remove a member (the last owner cannot be removed).
    Remove {
        /// The tenant's slug (its name in URLs, e.g. acme).
        slug: String,
        /// The user's e-mail address.
        email: String,
    },
}

pub fn tenant_command(g: &Global, cmd: TenantCommand) -> anyhow::Result<()> {
    let coffer = open(g)?;
    match cmd {
        TenantCommand::Update {
            slug: raw,
            name,
            quota_bytes,
        } => {
            if name.is_none() && quota_bytes.is_none() {
                bail!("nothing to change: give --name or --quota-bytes");
            }
            let t = tenant(&coffer, &raw)?;
            let name = name.map(|n| crate::names::display_name(&n)).transpose()?;
            let updated =
                coffer
                    .control()
                    .update_tenant(&operator(), t.id, name.as_deref(), quota_bytes)?;
            if g.json {
                print_json(&serde_json::json!({
                    "slug": updated.slug, "name": updated.name, "quota_bytes": updated.quota_bytes
                }))?;
            } else {
                println!(
                    "tenant {}: name {:?}, quota {}",
                    updated.slug,
                    updated.name,
                    updated
                        .quota_bytes
                        .map_or("unlimited".to_owned(), |q| format!("{q} bytes"))
                );
            }
        }
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
                        .ok_or_else(|| missing(format!("no user {email}")))?;
                    Some(TenantOwner::Existing(user.id))
                }
                None => None,
            };
            let name = crate::names::display_name(&name.unwrap_or_else(|| slug.to_string()))?;
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
        TenantCommand::Restrict { slug } => {
            tenant_step(g, &coffer, &slug, Step::Change(Transition::Restrict))?
        }
        TenantCommand::Unrestrict { slug } => {
            tenant_step(g, &coffer, &slug, Step::Change(Transition::Unrestrict))?
        }
        TenantCommand::Cancel { slug } => {
            tenant_step(g, &coffer, &slug, Step::Change(Transition::Cancel))?
        }
        TenantCommand::Reactivate { slug } => {
            tenant_step(g, &coffer, &slug, Step::Change(Transition::Reactivate))?
        }
        TenantCommand::Delete { slug } => tenant_step(g, &coffer, &slug, Step::Delete)?,
        TenantCommand::Hold { slug } => tenant_step(g, &coffer, &slug, Step::Hold)?,
        TenantCommand::Release { slug } => tenant_step(g, &coffer, &slug, Step::Release)?,
        TenantCommand::Receipt { id } => super::lifecycle::receipt(g, &id)?,
        TenantCommand::Move {
            slug: raw,
            to,
            abort,
        } => move_tenant(g, &coffer, &slug(&raw)?, to.as_deref(), abort)?,
        TenantCommand::Recover {
            slug: raw,
            to,
            from,
        } => {
            let report = coffer.recover_tenant(&operator(), &slug(&raw)?, &to, from.as_deref())?;
            if g.json {
                print_json(&report)?;
            } else {
                println!(
                    "{} recovered on {} (epoch {}) from {} made {}: {} files, {} bytes",
                    report.tenant,
                    report.to_node,
                    report.epoch,
                    report.set.display(),
                    report.backup_created_at,
                    report.files,
                    report.bytes
                );
                println!(
                    "changes made in the {} seconds since that backup are lost",
                    report.loss_window_secs
                );
            }
        }
    }
    Ok(())
}

fn move_tenant(
    g: &Global,
    coffer: &crate::coffer::Coffer,
    slug: &crate::names::TenantSlug,
    to: Option<&str>,
    abort: bool,
) -> anyhow::Result<()> {
    let Some(to) = to.filter(|_| !abort) else {
        let report = coffer.abort_move(&operator(), slug)?;
        if g.json {
            return print_json(&report);
        }
        println!(
            "move of {} rolled back: it takes writes again on {} (epoch {}){}",
            report.tenant,
            report.node,
            report.epoch,
            if report.removed_debris {
                "; this node's partial copy removed"
            } else {
                ""
            }
        );
        return Ok(());
    };
    let report = coffer.move_tenant(&operator(), slug, to)?;
    if g.json {
        return print_json(&report);
    }
    if report.already_here {
        println!(
            "{} is already on {} (epoch {})",
            report.tenant, report.to_node, report.epoch
        );
        return Ok(());
    }
    println!(
        "{} moved from {} to {} (epoch {}): {} files, {} bytes, copied in {:.1} s",
        report.tenant,
        report.from_node,
        report.to_node,
        report.epoch,
        report.files,
        report.bytes,
        report.copy_secs
    );
    println!(
        "writes were refused for {:.1} s; {} keeps its copy for move_grace_hours, then removes it",
        report.fenced_secs, report.from_node
    );
    Ok(())
}

fn show(g: &Global, coffer: &crate::coffer::Coffer, raw: &str) -> anyhow::Result<()> {
    let gone = super::tenant(coffer, raw)?;
    if gone.state.is_gone() {
        // No vault any more: the tombstone and, once finished, the receipt.
        let purge = coffer.control().purge_record(gone.id)?;
        let receipt = purge.and_then(|p| p.receipt);
        if g.json {
            return print_json(
                &serde_json::json!({ "tenant": TenantOut::from(&gone), "receipt": receipt }),
            );
        }
        println!("id:      {}\nstate:   {}", gone.id, gone.state.as_str());
        if let Some(receipt) = receipt {
            println!("receipt: {}", receipt.document);
        }
        return Ok(());
    }
    let access = access(coffer, raw)?;
    let t = access.tenant();
    let members = coffer.control().members(t.id)?;
    let report = coffer.usage_report(t)?;
    if g.json {
        print_json(&serde_json::json!({
            "tenant": TenantOut::from(t),
            "members": members.iter().map(MemberOut::from).collect::<Vec<_>>(),
            "usage": report.counters.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "metered": report.metered.iter().map(|u| serde_json::json!({
                "day": u.day, "metric": u.metric, "value": u.value })).collect::<Vec<_>>(),
            "recent_logins": report.logins.iter().map(|l| serde_json::json!({
                "email": l.email, "at": l.at, "ip": l.ip, "success": l.success }))
                .collect::<Vec<_>>(),
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
    for (name, value) in &report.counters {
        println!("usage:   {name} = {value}");
    }
    for m in members {
        println!("member:  {} ({})", m.email, m.role.as_str());
    }
    for u in &report.metered {
        println!("metered: {} {} = {}", u.day, u.metric, u.value);
    }
    for l in &report.logins {
        let outcome = if l.success { "ok" } else { "failed" };
        println!(
            "login:   {} {} from {} ({outcome})",
            l.at,
            l.email,
            l.ip.as_deref().unwrap_or("unknown")
        );
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
            .ok_or_else(|| missing(format!("no user {email}")))
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
            if g.json {
                print_json(&serde_json::json!({
                    "tenant": access.tenant().slug, "email": user.email, "role": role.as_str(),
                }))?;
            } else {
                println!(
                    "{} is {} of {}",
                    user.email,
                    role.as_str(),
                    access.tenant().slug
                );
            }
        }
        MemberCommand::Remove { slug, email } => {
            let access = access(&coffer, &slug)?;
            let user = user_of(&email)?;
            access.remove_member(coffer.control(), user.id)?;
            if g.json {
                print_json(&serde_json::json!({
                    "tenant": access.tenant().slug, "removed": user.email,
                }))?;
            } else {
                println!("removed {} from {}", user.email, access.tenant().slug);
            }
        }
    }
    Ok(())
}
