//! A vault's WebDAV dead properties (`index::properties`), with their limits and audit
//! event: set and removed in one index transaction with the event appended inside it.

use super::index::properties::{Property, PropertyChange};
use super::path::VaultPath;
use super::{Caller, Vault, VaultError, index};
use crate::audit::AuditAction;

/// Properties one file or folder may carry.
pub const MAX_PROPERTIES_PER_ENTRY: usize = 64;
/// Bytes of one property's XML (Windows' times are about 100).
pub const MAX_PROPERTY_BYTES: usize = 4096;
/// Bytes of a property's namespace or name.
const MAX_PROPERTY_NAME_BYTES: usize = 255;

fn key(path: Option<&VaultPath>) -> &str {
    path.map_or("", VaultPath::as_str)
}

impl Vault {
    /// The properties stored on `path` (`None`: the vault's root).
    pub fn properties(&self, path: Option<&VaultPath>) -> Result<Vec<Property>, VaultError> {
        Ok(self.index().properties(key(path))?)
    }

    /// The properties of each of `entries` (one listing page), by path.
    pub fn properties_of(
        &self,
        entries: &[super::index::Entry],
    ) -> Result<Vec<(String, Property)>, VaultError> {
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        Ok(self.index().properties_of(&paths)?)
    }

    /// Sets and removes properties of an existing file or folder (`None`: the root), all
    /// or none, audited as `file.properties`.
    pub fn change_properties(
        &self,
        caller: &Caller,
        path: Option<&VaultPath>,
        changes: &[PropertyChange],
    ) -> Result<(), VaultError> {
        self.check_not_frozen()?;
        for change in changes {
            let (namespace, name, xml) = match change {
                PropertyChange::Set(p) => (&p.namespace, &p.name, p.xml.len()),
                PropertyChange::Remove { namespace, name } => (namespace, name, 0),
            };
            if xml > MAX_PROPERTY_BYTES
                || namespace.len() > MAX_PROPERTY_NAME_BYTES
                || name.len() > MAX_PROPERTY_NAME_BYTES
            {
                return Err(VaultError::PropertiesTooLarge(format!(
                    "a property is at most {MAX_PROPERTY_BYTES} bytes, its name and namespace \
                     {MAX_PROPERTY_NAME_BYTES}"
                )));
            }
        }
        let (_commit, mut index) = self.begin_commit()?;
        if let Some(p) = path
            && index.entry(p)?.is_none()
        {
            return Err(VaultError::NotFound);
        }
        let set = changes
            .iter()
            .filter(|c| matches!(c, PropertyChange::Set(_)))
            .count();
        let event = self
            .event(caller, AuditAction::FileProperties, key(path))
            .detail(serde_json::json!({ "set": set, "removed": changes.len() - set }));
        let applied = index.change_properties(
            key(path),
            changes,
            MAX_PROPERTIES_PER_ENTRY,
            self.quota(),
            &mut || self.audit.append(&event).map(|_| ()),
        );
        match applied {
            Err(index::IndexError::TooManyProperties { limit }) => Err(
                VaultError::PropertiesTooLarge(format!("at most {limit} properties per entry")),
            ),
            Err(index::IndexError::PropertiesOverQuota) => Err(VaultError::PropertiesTooLarge(
                "the properties would take the vault over its quota".into(),
            )),
            other => Ok(other?),
        }
    }
}
