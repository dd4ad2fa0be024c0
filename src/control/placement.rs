//! Placements as this node sees them: which tenants it serves. With the embedded control
//! plane it serves them all; nodes sharing a PostgreSQL control plane each serve the
//! tenants placed on them (created there, or moved there), and leave the others alone:
//! no lifecycle pass, backup or isolation audit of a node touches another node's tenant.

use std::collections::BTreeMap;

use super::store::ControlTx;
use super::{ControlError, ControlPlane, Placement, Tenant};
use crate::audit::{AuditAction, Caller};
use crate::names::TenantId;

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

    /// Tenant slug and tenant id to node, for every live placed tenant: what a proxy
    /// routes by (tenant routes name the slug; operators' routes take either).
    pub fn placement_map(&self) -> Result<BTreeMap<String, String>, ControlError> {
        let mut map = BTreeMap::new();
        for t in self.tenants()?.into_iter().filter(|t| !t.state.is_gone()) {
            if let Some(p) = t.placement {
                map.insert(t.id.to_string(), p.node.clone());
                map.insert(t.slug, p.node);
            }
        }
        Ok(map)
    }

    /// Every tenant this node serves (with the embedded control plane: every tenant).
    pub fn local_tenants(&self) -> Result<Vec<Tenant>, ControlError> {
        Ok(self
            .tenants()?
            .into_iter()
            .filter(|t| self.serves(t))
            .collect())
    }

    /// Fences `tenant` where it is placed (still `from`, epoch checked), at the next epoch
    /// (already fenced: as it is): every node stops taking its writes as soon as it hears
    /// of the change, and the vault freezes on its next use. Audited as `tenant.place`
    /// with `why`.
    pub fn fence_placement(
        &self,
        caller: &Caller,
        tenant: TenantId,
        from: &Placement,
        why: serde_json::Value,
    ) -> Result<Tenant, ControlError> {
        let detail = serde_json::json!({ "node": from.node, "fenced": true, "why": why });
        self.change_placement(caller, tenant, from, detail, |tx, now| {
            tx.fence_placement(tenant, from, now)
        })
    }

    /// Hands `tenant` to node `to`: only if its placement is still `from` (the epoch
    /// checked, so two recoveries or a recovery racing a move cannot both win), at the
    /// next epoch, unfenced. Audited as `tenant.place` with `why` in its detail. Every
    /// node hears of it as a change, so the node it left answers 421 from then on.
    pub fn replace_placement(
        &self,
        caller: &Caller,
        tenant: TenantId,
        from: &Placement,
        to: &str,
        why: serde_json::Value,
    ) -> Result<Tenant, ControlError> {
        let detail = serde_json::json!({ "from": from.node, "to": to, "why": why });
        self.change_placement(caller, tenant, from, detail, |tx, now| {
            tx.replace_placement(tenant, from, to, now)
        })
    }

    /// Lifts the fence of `tenant`, still placed at `from` (a move rolled back): it takes
    /// writes again where it is, at the next epoch, so a move still running elsewhere
    /// cannot flip it with the copy it took. Audited as `tenant.place` with `why`.
    pub fn unfence_placement(
        &self,
        caller: &Caller,
        tenant: TenantId,
        from: &Placement,
        why: serde_json::Value,
    ) -> Result<Tenant, ControlError> {
        let detail = serde_json::json!({ "node": from.node, "fenced": false, "why": why });
        self.change_placement(caller, tenant, from, detail, |tx, now| {
            tx.unfence_placement(tenant, from, now)
        })
    }

    /// One placement change made against `from` (`change` answers false when the
    /// placement is no longer that), audited as `tenant.place` with `detail` and the
    /// epoch the change left.
    fn change_placement(
        &self,
        caller: &Caller,
        tenant: TenantId,
        from: &Placement,
        mut detail: serde_json::Value,
        change: impl FnOnce(&dyn ControlTx, &str) -> Result<bool, ControlError>,
    ) -> Result<Tenant, ControlError> {
        self.write(|tx, now| {
            if !change(tx, now)? {
                return Err(changed_meanwhile(from));
            }
            let changed = tx.tenant(tenant)?.ok_or(ControlError::NotFound)?;
            detail["epoch"] = changed
                .placement
                .as_ref()
                .map_or(from.epoch, |p| p.epoch)
                .into();
            let event = caller
                .event(AuditAction::TenantPlace)
                .tenant(tenant)
                .detail(detail);
            Ok((changed, vec![event]))
        })
    }
}

impl ControlPlane {
    /// Records the address the other nodes reach this node at (`node_url`), as `coffer
    /// serve` starts. Changes no authorization fact: nothing is announced or audited.
    pub fn register_node(&self, url: &str) -> Result<(), ControlError> {
        let Some(node) = self.node.clone() else {
            return Ok(());
        };
        self.write_bookkeeping(|tx, now| {
            tx.register_node(&node, url, now)?;
            Ok(((), vec![]))
        })
    }

    /// The address node `name` registered as it last started.
    pub fn node_url(&self, name: &str) -> Result<Option<String>, ControlError> {
        self.read(|tx| tx.node_url(name))
    }
}

/// The refusal of a placement change made against a placement that is no longer current.
fn changed_meanwhile(from: &Placement) -> ControlError {
    ControlError::Forbidden(format!(
        "the tenant's placement changed meanwhile (it was on {} at epoch {}); look again \
         before retrying",
        from.node, from.epoch
    ))
}
