//! Seeding a fresh data root for `coffer demo` from `fixtures/`: tenants of different
//! trades, one user per role, records, and documents and photos stored through the vault
//! layer like any upload. The fixture files are the operator's own files, read with
//! ambient authority; they reach tenants only through `Vault::write_file`.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::audit::{Actor, Caller};
use crate::auth::password;
use crate::coffer::Coffer;
use crate::control::{MemberChange, NewTenant, NewUser, Role};
use crate::names::{Email, TenantSlug};
use crate::vault::Precondition;
use crate::vault::path::{CollectionName, RecordId, VaultPath};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoFile {
    pub password: String,
    pub operator: DemoUser,
    pub tenants: Vec<DemoTenant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoUser {
    pub email: String,
    pub name: String,
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoTenant {
    pub slug: String,
    pub name: String,
    pub quota_bytes: Option<u64>,
    pub members: Vec<DemoUser>,
    pub records: std::collections::BTreeMap<String, Vec<DemoRecord>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoRecord {
    pub id: String,
    pub body: serde_json::Value,
}

/// Reads `fixtures/demo.json`.
#[allow(
    clippy::disallowed_methods,
    reason = "the operator's fixture files, not tenant data"
)]
pub fn load(fixtures: &Path) -> anyhow::Result<DemoFile> {
    let path = fixtures.join("demo.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("invalid {}", path.display()))
}

/// The first tenant's slug: its presence tells that a data root was already seeded.
pub fn seeded(coffer: &Coffer, demo: &DemoFile) -> anyhow::Result<bool> {
    let Some(first) = demo.tenants.first() else {
        bail!("demo.json has no tenants")
    };
    Ok(coffer
        .control()
        .tenant_by_slug(&TenantSlug::parse(&first.slug)?)?
        .is_some())
}

/// Seeds tenants, users, memberships, records and files.
#[allow(
    clippy::disallowed_methods,
    reason = "the operator's fixture files, not tenant data"
)]
pub fn seed(coffer: &Coffer, demo: &DemoFile, fixtures: &Path) -> anyhow::Result<()> {
    let op = Caller::new(Actor::Operator(Some("demo".into())));
    let hash = password::hash(&demo.password)?;
    let new_user = |who: &DemoUser, is_operator| -> anyhow::Result<NewUser> {
        Ok(NewUser {
            email: Email::parse(&who.email)?,
            name: who.name.clone(),
            password_hash: Some(hash.clone()),
            is_operator,
        })
    };
    coffer
        .control()
        .create_user(&op, &new_user(&demo.operator, true)?)?;
    for t in &demo.tenants {
        let slug = TenantSlug::parse(&t.slug)?;
        coffer.create_tenant(
            &op,
            NewTenant {
                slug: slug.clone(),
                name: t.name.clone(),
                quota_bytes: t.quota_bytes,
                owner: None,
            },
        )?;
        let access = coffer.auth().operator_access(&op, &slug)?;
        for m in &t.members {
            let user = coffer.control().create_user(&op, &new_user(m, false)?)?;
            let role = m.role.unwrap_or(Role::Member);
            access.change_member(coffer.control(), user.id, role, MemberChange::Add)?;
        }
        let vault = access.vault();
        for (collection, records) in &t.records {
            let collection = CollectionName::parse(collection)?;
            for r in records {
                vault.create_record(&op, &collection, Some(RecordId::parse(&r.id)?), &r.body)?;
            }
        }
        let root = fixtures.join("files").join(&t.slug);
        if root.is_dir() {
            for entry in walkdir::WalkDir::new(&root)
                .follow_links(false)
                .sort_by_file_name()
            {
                let entry = entry?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let rel = entry
                    .path()
                    .strip_prefix(&root)?
                    .to_string_lossy()
                    .replace('\\', "/");
                let path = VaultPath::parse(&rel).with_context(|| format!("fixture {rel}"))?;
                let mut file = std::fs::File::open(entry.path())?;
                vault.write_file(&op, &path, &mut file, &Precondition::None)?;
            }
        }
    }
    Ok(())
}

/// The lines `coffer demo` prints: where to go and who can sign in.
pub fn logins(demo: &DemoFile) -> Vec<String> {
    let mut out = vec![format!("  {:<28} platform operator", demo.operator.email)];
    for t in &demo.tenants {
        for m in &t.members {
            let role = m.role.map_or("member", |r| r.as_str());
            out.push(format!("  {:<28} {:<8} of {}", m.email, role, t.slug));
        }
    }
    out.push(format!("  password for all of them: {}", demo.password));
    out
}
