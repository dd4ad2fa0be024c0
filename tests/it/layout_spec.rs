//! `vault-layout/README.md` is the spec of the data root; the code's layout module must
//! name exactly the paths it lists, and a freshly created vault must hold exactly them.

use coffer::names::TenantId;
use coffer::vault::layout::{DataRootPath, VaultEntry};

use crate::support::World;

/// The backticked paths in the first column of the spec's "Tree" table.
fn spec_paths() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/vault-layout/README.md"
    ))
    .unwrap();
    let table = text
        .split("## Tree")
        .nth(1)
        .expect("spec has a '## Tree' section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut out: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split('`').nth(1).unwrap().to_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn code_and_spec_name_the_same_paths() {
    let placeholder = TenantId::parse("0123456789abcdef0123456789abcdef").unwrap();
    let tenant_dir = DataRootPath::Tenant(placeholder)
        .path()
        .display()
        .to_string()
        .replace(&placeholder.to_string(), "<tenant-id>");
    let mut code: Vec<String> = DataRootPath::FIXED
        .iter()
        .map(|p| p.path().display().to_string())
        .collect();
    code.push(tenant_dir.clone());
    for e in VaultEntry::ALL {
        code.push(format!("{tenant_dir}/{}", e.path()));
    }
    code.sort();
    assert_eq!(spec_paths(), code);
}

#[test]
fn a_new_vault_holds_exactly_the_spec_entries() {
    let w = World::new();
    let mut names: Vec<String> = std::fs::read_dir(w.vault_dir(&w.alpha))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !coffer::vault::layout::INDEX_COMPANIONS.contains(&n.as_str()))
        .collect();
    names.sort();
    let mut expect: Vec<String> = VaultEntry::ALL
        .iter()
        .map(|e| e.path().to_owned())
        .collect();
    expect.sort();
    assert_eq!(names, expect);
}
