//! Placements with the embedded control plane (`PlacementTx`): there are none, its one
//! node serves every tenant; moving a placement needs the PostgreSQL control plane.

use super::Tx;
use crate::control::ControlError;
use crate::control::model::Placement;
use crate::control::store::PlacementTx;
use crate::names::TenantId;

/// One node serves every tenant of an embedded control plane: nothing to record.
impl PlacementTx for Tx<'_> {
    fn place_tenant(&self, _id: TenantId, _node: &str, _now: &str) -> Result<(), ControlError> {
        Ok(())
    }

    fn fence_placement(
        &self,
        _id: TenantId,
        _from: &Placement,
        _now: &str,
    ) -> Result<bool, ControlError> {
        Err(needs_postgres())
    }

    fn replace_placement(
        &self,
        _id: TenantId,
        _from: &Placement,
        _to: &str,
        _now: &str,
    ) -> Result<bool, ControlError> {
        Err(needs_postgres())
    }

    fn unfence_placement(
        &self,
        _id: TenantId,
        _from: &Placement,
        _now: &str,
    ) -> Result<bool, ControlError> {
        Err(needs_postgres())
    }

    fn register_node(&self, _name: &str, _url: &str, _now: &str) -> Result<(), ControlError> {
        Ok(())
    }

    fn node_url(&self, _name: &str) -> Result<Option<String>, ControlError> {
        Ok(None)
    }
}

/// The refusal of a placement change on one node.
fn needs_postgres() -> ControlError {
    ControlError::Forbidden("placements need a PostgreSQL control plane (several nodes)".into())
}
