//! The holding node's side of a move: checking a node token and a pull, announcing the
//! copy's size, and sending it (a live copy while the tenant takes writes, or the fenced
//! copy after the vault is shut, with the files the taking node already holds only
//! listed). The taking node's side is in `mod.rs`.

use std::io::Write;

use super::token::NodeClaims;
use super::{outgoing_prefix, refuse, sent_name};
use crate::audit::Caller;
use crate::auth::AuthError;
use crate::coffer::{Coffer, CofferError};
use crate::control::{ControlError, Tenant};
use crate::names::TenantId;
use crate::vault::dir::{private_dir, sync_dir};
use crate::vault::layout::DataRootPath;
use crate::vault::transfer::{Held, TransferManifest};

/// A checked pull: the tenant, fenced on this node at the token's epoch.
pub struct MovePull {
    tenant: Tenant,
    claims: NodeClaims,
}

impl Coffer {
    /// The claims of a node token signed with the cluster's node key and in time; with
    /// the embedded control plane there are no other nodes, so no token is one.
    pub fn verify_node_token(&self, token: &str) -> Result<NodeClaims, CofferError> {
        if self.control.node().is_none() {
            return Err(AuthError::Unauthenticated.into());
        }
        Ok(self
            .node_keys()?
            .verify(token, self.clock.now().unix_timestamp())
            .ok_or(AuthError::Unauthenticated)?)
    }

    /// On the node holding a tenant: checks a pull of `tenant` by the node `claims`
    /// speak for. The tenant must be placed here at the token's epoch, and fenced
    /// unless the token is a live copy's. `fenced_pull`: the pull lists held files,
    /// which only a fenced pull may.
    pub fn check_move_pull(
        &self,
        claims: NodeClaims,
        tenant: TenantId,
        fenced_pull: bool,
    ) -> Result<MovePull, CofferError> {
        if claims.tenant != tenant.to_string() {
            return Err(AuthError::Unauthenticated.into());
        }
        if fenced_pull && claims.live {
            return Err(refuse(
                "a live copy's token cannot take the fenced copy".into(),
            ));
        }
        let tenant = self
            .control
            .tenant(tenant)?
            .filter(|t| !t.state.is_gone())
            .ok_or(ControlError::NotFound)?;
        let placement = tenant.placement.as_ref();
        let ready = placement.is_some_and(|p| {
            Some(p.node.as_str()) == self.control.node()
                && (p.fenced_at.is_some() || claims.live)
                && p.epoch == claims.epoch
        });
        if !ready {
            return Err(refuse(format!(
                "tenant {} is not {} on this node at epoch {} (its placement: {})",
                tenant.slug,
                if claims.live { "placed" } else { "fenced" },
                claims.epoch,
                placement.map_or("none".to_owned(), |p| format!(
                    "node {} epoch {}{}",
                    p.node,
                    p.epoch,
                    if p.fenced_at.is_some() { " fenced" } else { "" }
                ))
            )));
        }
        Ok(MovePull { tenant, claims })
    }

    /// On the node holding a tenant: what its copy is announced at, in bytes (files and
    /// trash as the index charges them, and the index itself).
    pub fn move_copy_bytes(&self, pull: &MovePull) -> Result<u64, CofferError> {
        let vault = self.vaults.open(pull.tenant.id)?;
        let (charged, _) = vault.space()?;
        let index = self
            .root
            .dir()
            .open_dir(DataRootPath::TenantsDir.path())?
            .metadata(format!(
                "{}/{}",
                pull.tenant.id,
                crate::vault::layout::VaultEntry::IndexDb.path()
            ))?
            .len();
        Ok(charged + index)
    }

    /// On the node holding a tenant: writes its copy into `out` (see the module docs).
    /// A live copy's pull gets the files as they are, the vault still taking changes.
    /// A fenced pull shuts the vault to changes first and gets the whole copy, with the
    /// files the taking node already `held` (unchanged since) only listed; the index
    /// copy it sends is removed when this returns.
    pub fn send_move_copy(
        &self,
        pull: &MovePull,
        held: &Held,
        out: impl Write,
    ) -> Result<TransferManifest, CofferError> {
        let id = pull.tenant.id;
        if pull.claims.live {
            // On the record before a byte leaves (a reader may drop the stream early).
            self.audit.append(
                &Caller::system()
                    .event(crate::audit::AuditAction::TenantPlace)
                    .tenant(id)
                    .detail(serde_json::json!({
                        "sending_live_copy_to": pull.claims.sub, "epoch": pull.claims.epoch })),
            )?;
            tracing::info!(tenant = %pull.tenant.slug, to = %pull.claims.sub,
                "sending a live copy of a tenant to the node about to take it");
            return Ok(self.vaults.open(id)?.send_live_copy(out)?);
        }
        // Shut to changes before the copy: a write already past authorization meets the
        // mark under the commit lock the copy takes, so it commits before the copy or not
        // at all, and no stale cache of the control plane can open the vault again.
        let vault = self.vaults.mark_sent(id, pull.claims.epoch)?;
        let vaults = self.root.dir().open_dir(DataRootPath::TenantsDir.path())?;
        // A name of its own: two sends of one tenant (a rerun while an earlier send still
        // drains) never touch each other's scratch. One left by a process that died is
        // removed by the lifecycle pass once the tenant is no longer fenced here.
        let outgoing = format!(
            "{}{}-{}",
            outgoing_prefix(id),
            pull.claims.epoch,
            uuid::Uuid::new_v4().simple()
        );
        vaults.create_dir_with(&outgoing, &private_dir())?;
        let cleanup = RemoveOnDrop {
            dir: &vaults,
            name: &outgoing,
        };
        tracing::info!(tenant = %pull.tenant.slug, to = %pull.claims.sub,
            "sending a tenant's copy to the node taking it");
        let manifest = vault.send_copy(
            &vaults.open_dir(&outgoing)?,
            &self
                .data_root_path()
                .join(DataRootPath::TenantsDir.path())
                .join(&outgoing),
            held,
            out,
        )?;
        drop(cleanup);
        // What lets the lifecycle pass remove this node's copy once the tenant has moved
        // (a copy left behind by a recovery elsewhere is not sent, and is kept).
        let mut marker = cap_std::fs::OpenOptions::new();
        cap_std::fs::OpenOptionsExt::mode(marker.write(true).create(true), 0o600);
        vaults.open_with(sent_name(id), &marker)?.sync_all()?;
        sync_dir(&vaults)?;
        // A whole copy of the tenant left this node: on its record, with where it went.
        self.audit.append(
            &Caller::system()
                .event(crate::audit::AuditAction::TenantPlace)
                .tenant(id)
                .detail(serde_json::json!({
                    "sent_copy_to": pull.claims.sub, "epoch": pull.claims.epoch,
                    "files": manifest.files.len(), "bytes": manifest.bytes(),
                    "already_held": held.len() })),
        )?;
        Ok(manifest)
    }
}

/// Removes a send's scratch directory when the send ends, however it ends.
struct RemoveOnDrop<'a> {
    dir: &'a cap_std::fs::Dir,
    name: &'a str,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.dir.remove_dir_all(self.name) {
            tracing::warn!(error = %e, dir = self.name, "cannot remove a move's scratch copy");
        }
    }
}
