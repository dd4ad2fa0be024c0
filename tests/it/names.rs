//! Hostile names against a real vault: whatever a path parses to, nothing outside the
//! tenant's root changes, and what is written lands exactly at the parsed path.

use std::collections::BTreeMap;

use coffer::vault::Precondition;
use coffer::vault::path::VaultPath;
use proptest::prelude::*;

use crate::support::{World, operator, snapshot};

/// The tokens attackers combine: dots, separators of every kind, encodings, NUL, Unicode
/// look-alikes, reserved names, and ordinary letters.
const TOKENS: &[&str] = &[
    "..", ".", "/", "\\", "%2e", "%2f", "%252e", "\0", "\u{ff0e}", "\u{ff0f}", "\u{2024}", "a",
    "b", "CON", " ", ":", "C:", "~", "\u{301}", "e",
];

fn outside_state(w: &World) -> BTreeMap<String, String> {
    let mut all = snapshot(w.tmp.path());
    let alpha = format!("data/tenants/{}", w.alpha.id);
    // Alpha's own vault may change; the audit log grows; SQLite's shared-memory file of
    // the control plane changes with every read; everything else must not move.
    all.retain(|k, _| {
        !k.starts_with(&alpha) && !k.starts_with("data/audit.db") && k != "data/control.db-shm"
    });
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn nothing_outside_the_tenant_root_changes(
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 1..7),
    ) {
        thread_local!(static WORLD: World = World::new());
        WORLD.with(|w| {
            let raw: String = tokens.concat();
            let before = outside_state(w);
            let v = w.vault(&w.alpha);
            let op = operator();
            if let Ok(path) = VaultPath::parse(&raw) {
                // Whatever survives parsing is a plain relative path without dot parts.
                prop_assert!(path.components().all(|c| c != ".." && c != "." && !c.is_empty()));
                prop_assert!(!path.as_str().contains('\\') && !path.as_str().contains('\0'));
                match v.write_file(&op, &path, &mut &b"payload"[..], &Precondition::None) {
                    Ok(_) => {
                        let on_disk = w.vault_dir(&w.alpha).join("files").join(path.as_str());
                        prop_assert_eq!(std::fs::read(&on_disk).unwrap(), b"payload");
                        let _ = v.rename(&op, &path, &VaultPath::parse("moved-here").unwrap());
                        let _ = v.delete(&op, &VaultPath::parse("moved-here").unwrap());
                    }
                    Err(e) => {
                        // Refusals are clean ones (an existing directory, a case clash).
                        let ok = matches!(e, coffer::vault::VaultError::IsADirectory
                            | coffer::vault::VaultError::NotADirectory
                            | coffer::vault::VaultError::CaseConflict(..));
                        prop_assert!(ok, "unexpected error {e:?} for {raw:?}");
                    }
                }
                let _ = v.mkdir(&op, &path);
            }
            prop_assert_eq!(outside_state(w), before, "outside changed for {:?}", raw);
            Ok(())
        })?;
    }
}
