//! Placements as this node sees them: which tenants it serves. With the embedded control
//! plane it serves them all; nodes sharing a PostgreSQL control plane each serve the
//! tenants placed on them (created there, or moved there), and leave the others alone:
//! no lifecycle pass, backup or isolation audit of a node touches another node's tenant.

use std::collections::BTreeMap;

use super::{ControlError, ControlPlane, Tenant};

impl ControlPlane {
    /// This node's name in placements (`None`: the embedded control plane).
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Whether this node serves `tenant`.
    pub fn serves(&self, tenant: &Tenant) -> bool {
        match &tenant.placement {
            None => true,
            Some(p) => self.node.as_deref() == Some(p.node.as_str()),
        }
    }

    /// Tenant slug to node, for every live placed tenant: what a proxy routes by.
    pub fn placement_map(&self) -> Result<BTreeMap<String, String>, ControlError> {
        Ok(self
            .tenants()?
            .into_iter()
            .filter(|t| !t.state.is_gone())
            .filter_map(|t| Some((t.slug, t.placement?.node)))
            .collect())
    }

    /// Every tenant this node serves (with the embedded control plane: every tenant).
    pub fn local_tenants(&self) -> Result<Vec<Tenant>, ControlError> {
        Ok(self
            .tenants()?
            .into_iter()
            .filter(|t| self.serves(t))
            .collect())
    }
}
