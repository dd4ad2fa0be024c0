//! `coffer tenant move SLUG --to NODE`: a tenant changes node with nothing acknowledged
//! lost. Run on the node taking the tenant, it
//!
//! 1. pulls a live copy of the tenant's files from the node holding it (`GET
//!    /api/v1/nodes/moves/{id}` with a live node token), while the tenant still takes
//!    writes, into `tenants/.incoming-<id>/live/`; a node without room for it refuses
//!    here, before anything is fenced;
//! 2. fences the tenant where it is (at the next epoch): every node refuses its writes
//!    (503 `tenant-moving`) as soon as it hears of it, reads go on;
//! 3. pulls the fenced copy (`POST` to the same route, with a node token for that
//!    tenant and epoch, naming the files the live copy brought with the size and
//!    SHA-256 it computed). That node freezes the vault first, under its commit lock, so
//!    a write that passed authorization before the fence either commits before the copy
//!    is taken or is refused: never acknowledged and left out. The copy is streamed from
//!    the vault in place (only its index is copied first), as `vault::transfer`
//!    describes, and a file the taking node holds exactly as the index records it is
//!    listed, not sent: only what changed since the live copy crosses while writes wait;
//! 4. builds the copy under `tenants/.incoming-<id>/<id>` with private modes (the held
//!    files moved in from `live/`), checks it against the stream's manifest and then
//!    every file against the vault's own index (size and SHA-256), renames it into place
//!    and opens it;
//! 5. flips the placement to itself with the epoch checked (unfenced): from then on the
//!    old node answers 421 and a move or recovery that raced this one cannot win too;
//! 6. leaves the old copy to the old node's lifecycle pass, which removes it
//!    `move_grace_hours` after the move.
//!
//! Interrupted at any step it resumes or rolls back: before the fence nothing changed
//! (the live copy is removed); after it, the fence stays until the flip or an explicit
//! `--abort`, so a second run picks up where the first left off (the debris of an
//! interrupted copy is removed and the copy pulled again), and `--abort` lifts the
//! fence at the next epoch, so a move process still running somewhere cannot flip the
//! tenant with the copy it took.
//!
//! This file is the taking node's side (and the clean-up of what moves leave); the
//! holding node's side, which checks a pull and sends the copy, is `send`.

mod pull;
mod send;
pub use pull::COPY_BYTES_HEADER;
pub use send::MovePull;
pub mod token;

use std::time::Instant;

use serde::Serialize;

use super::{Coffer, CofferError};
use crate::audit::Caller;
use crate::control::{ControlError, Tenant};
use crate::names::{TenantId, TenantSlug};
use crate::vault::dir::{private_dir, sync_dir};
use crate::vault::layout::DataRootPath;
use crate::vault::transfer::{Held, Kept, Received, TransferManifest, receive_tree};
use token::NodeKeys;

/// The route a node pulls a tenant's copy from (`{id}`: the tenant's id).
pub const PULL_ROUTE_PREFIX: &str = "/api/v1/nodes/moves/";

/// What a move did.
#[derive(Debug, Serialize)]
pub struct MoveReport {
    pub tenant: String,
    pub from_node: String,
    pub to_node: String,
    /// The placement's epoch now.
    pub epoch: i64,
    /// The tenant was already on this node (a move finished earlier): nothing done.
    pub already_here: bool,
    pub files: u64,
    pub bytes: u64,
    /// Of those bytes, the ones sent while the tenant was fenced (the rest came with the
    /// live copy and had not changed).
    pub fenced_bytes: u64,
    /// Seconds spent on the live copy, before the fence.
    pub precopy_secs: f64,
    /// Seconds spent pulling, checking and placing the copy, both passes.
    pub copy_secs: f64,
    /// Seconds from the fence to the flip: writes were refused for this long.
    pub fenced_secs: f64,
}

/// What rolling a move back did.
#[derive(Debug, Serialize)]
pub struct AbortReport {
    pub tenant: String,
    pub node: String,
    pub epoch: i64,
    /// Whether this node had debris of the interrupted copy, now removed.
    pub removed_debris: bool,
}

/// Where a tenant is pulled from.
struct Source<'a> {
    url: &'a str,
    node: &'a str,
    slug: &'a TenantSlug,
    id: TenantId,
}

/// The body of a fenced pull: the files the taking node already holds from its live
/// copy (paths below `vault/`, with the size and SHA-256 it computed as they arrived).
#[derive(Debug, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeldFiles {
    /// Path below the copy's top → the size and SHA-256 (hex) the taking node computed.
    #[schema(value_type = Object, example = json!({"files/invoices/2026-001.pdf":
        {"size": 48213, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}))]
    pub held: Held,
}

/// The largest list of held files a node sends or reads (a few hundred thousand files):
/// a tenant with more moves without its live copy's head start.
pub const MAX_HELD_BODY: usize = 64 << 20;

/// Room left free on the taking node's disk whatever a copy turns out to need.
const KEEP_FREE: u64 = 64 << 20;

/// Where, inside `.incoming-<id>/`, the live copy goes.
const PRECOPY: &str = "live";

fn refuse(message: String) -> CofferError {
    ControlError::Forbidden(message).into()
}

fn incoming_name(id: TenantId) -> String {
    format!(".incoming-{id}")
}

fn outgoing_prefix(id: TenantId) -> String {
    format!(".outgoing-{id}-")
}

/// Written once a copy of the tenant was sent from this node (see `send_move_copy`).
fn sent_name(id: TenantId) -> String {
    format!(".sent-{id}")
}

impl Coffer {
    /// The keys nodes sign their pulls with (only with a PostgreSQL control plane), read
    /// once: a request with a made-up token costs no database work.
    fn node_keys(&self) -> Result<&NodeKeys, CofferError> {
        if let Some(keys) = self.node_keys.get() {
            return Ok(keys);
        }
        let candidate = super::random_secret_hex()?;
        let secret = self
            .control
            .shared_secret("node", &candidate)?
            .ok_or_else(|| refuse("moving tenants needs a PostgreSQL control plane".into()))?;
        let secret = hex::decode(secret.trim())
            .map_err(|e| std::io::Error::other(format!("shared node secret: {e}")))?;
        Ok(self.node_keys.get_or_init(|| NodeKeys::new(&secret)))
    }

    /// Moves tenant `slug` onto this node (`to` must name it); see the module docs.
    pub fn move_tenant(
        &self,
        caller: &Caller,
        slug: &TenantSlug,
        to: &str,
    ) -> Result<MoveReport, CofferError> {
        let here = self.check_here(to, "move")?;
        let id = self.live_tenant(slug)?.id;
        let vaults = self.root.dir().open_dir(DataRootPath::TenantsDir.path())?;
        let (vault_name, incoming) = (id.to_string(), incoming_name(id));
        // One run per tenant on this node at a time: a second run would remove the
        // first one's copy under it. The placement is read once the lock is held.
        let _lock = MoveLock::take(&vaults, id).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => refuse(format!(
                "another move of {slug} is running on this node; wait for it, or stop it first"
            )),
            _ => e.into(),
        })?;
        let tenant = self.live_tenant(slug)?;
        let Some(from) = tenant.placement.clone() else {
            return Err(refuse(format!("tenant {slug} has no placement")));
        };
        if from.node == here {
            if from.fenced_at.is_some() {
                return Err(refuse(format!(
                    "tenant {slug} is fenced on this node (a move away from it or a recovery \
                     is under way): finish or roll back that first"
                )));
            }
            // A move that finished (perhaps killed after its flip): only debris is left,
            // and the vault it placed must be whole here.
            self.vaults.open_transient(id)?;
            if vaults.is_dir(&incoming) {
                vaults.remove_dir_all(&incoming)?;
            }
            return Ok(MoveReport {
                tenant: slug.as_str().to_owned(),
                from_node: here.to_owned(),
                to_node: here.to_owned(),
                epoch: from.epoch,
                already_here: true,
                files: 0,
                bytes: 0,
                fenced_bytes: 0,
                precopy_secs: 0.0,
                copy_secs: 0.0,
                fenced_secs: 0.0,
            });
        }
        // An interrupted run of this move left `.incoming-<id>` (and perhaps the copy
        // already renamed into place): both are removed and the copy pulled again. A
        // vault here without it is the copy this node kept when the tenant left.
        if vaults.is_dir(&incoming) {
            if vaults.symlink_metadata(&vault_name).is_ok() {
                vaults.remove_dir_all(&vault_name)?;
            }
            vaults.remove_dir_all(&incoming)?;
            sync_dir(&vaults)?;
        } else if vaults.symlink_metadata(&vault_name).is_ok() {
            return Err(refuse(format!(
                "this node still holds an old copy of {slug} (kept when the tenant moved away, \
                 removed by the lifecycle pass {} hours after that move; or left by a \
                 recovery elsewhere, for an operator to look at): move the tenant here once \
                 it is gone, or move that copy out of the data root first",
                self.config.move_grace_hours
            )));
        }
        let url = self.control.node_url(&from.node)?.ok_or_else(|| {
            refuse(format!(
                "node {} has not registered its address: set node_url in its configuration \
                 (it registers as coffer serve starts)",
                from.node
            ))
        })?;

        // A live copy first, while the tenant still takes writes: the fenced pull below
        // then sends only what changed meanwhile (and the index), so writes wait for the
        // changes, not for the whole copy.
        let keys = self.node_keys()?;
        let copy_started = Instant::now();
        vaults.create_dir_with(&incoming, &private_dir())?;
        let into = vaults.open_dir(&incoming)?;
        let source = Source {
            url: &url,
            node: &from.node,
            slug,
            id,
        };
        // A rerun of a move that stopped after its fence: the tenant takes no writes
        // already, so a live copy would gain nothing.
        let live = if from.fenced_at.is_some() {
            TransferManifest::default()
        } else {
            let live_token = keys.issue_live(
                here,
                &vault_name,
                from.epoch,
                self.clock.now().unix_timestamp(),
            );
            match self.pull_into(&source, &live_token, None, &vaults, &into, PRECOPY) {
                Ok(live) => live.manifest,
                Err(e) => {
                    // Nothing fenced yet: nothing to resume, the tenant never stopped.
                    let _ = vaults.remove_dir_all(&incoming);
                    return Err(e);
                }
            }
        };
        let precopy_secs = copy_started.elapsed().as_secs_f64();

        let fenced_since = Instant::now();
        let why = serde_json::json!({ "reason": "move", "to": here });
        let fenced = match self.control.fence_placement(caller, id, &from, why) {
            Ok(fenced) => fenced
                .placement
                .ok_or_else(|| refuse(format!("tenant {slug} has no placement")))?,
            Err(e) => {
                // Fenced by someone else meanwhile (another move, a recovery): this run's
                // live copy is of no use.
                let _ = vaults.remove_dir_all(&incoming);
                return Err(e.into());
            }
        };
        let token = keys.issue(
            here,
            &vault_name,
            fenced.epoch,
            self.clock.now().unix_timestamp(),
        );
        let Received {
            manifest,
            kept_bytes,
        } = self.pull_into(
            &source,
            &token,
            Some(&live.files),
            &vaults,
            &into,
            &vault_name,
        )?;
        let staged = self
            .data_root_path()
            .join(DataRootPath::TenantsDir.path())
            .join(&incoming)
            .join(&vault_name);
        let (files, bytes) =
            check_against_index(&into, &vault_name, &staged, &manifest).map_err(|why| {
                refuse(format!(
                    "the copy of {slug} pulled from {} does not verify: {why}",
                    from.node
                ))
            })?;
        into.rename(&vault_name, &vaults, &vault_name)?;
        sync_dir(&vaults)?;
        if let Err(e) = self.vaults.open_transient(id) {
            return Err(e.into());
        }
        let copy_secs = copy_started.elapsed().as_secs_f64();

        let why = serde_json::json!({ "reason": "move", "files": manifest.files.len(),
            "bytes": manifest.bytes() });
        let placed = match self
            .control
            .replace_placement(caller, id, &fenced, here, why)
        {
            Ok(placed) => placed,
            Err(e) => {
                // The flip may have committed even though its answer was lost: only the
                // placement as it is now says whether this copy is the tenant's.
                let now = self.control.tenant(id).ok().flatten();
                let here_now = now
                    .as_ref()
                    .and_then(|t| t.placement.as_ref())
                    .is_some_and(|p| p.node == here && p.epoch > fenced.epoch);
                if here_now {
                    now.ok_or(ControlError::NotFound)?
                } else if matches!(e, ControlError::Forbidden(_)) {
                    // Rolled back or taken by another move meanwhile: this copy is not
                    // the tenant's.
                    let _ = vaults.remove_dir_all(&vault_name);
                    let _ = vaults.remove_dir_all(&incoming);
                    return Err(e.into());
                } else {
                    // Unknown (the control plane unreachable): the copy stays; running
                    // the move again finishes it or starts over.
                    return Err(e.into());
                }
            }
        };
        let fenced_secs = fenced_since.elapsed().as_secs_f64();
        match vaults.remove_dir_all(&incoming) {
            Ok(()) => sync_dir(&vaults)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(MoveReport {
            tenant: slug.as_str().to_owned(),
            from_node: from.node,
            to_node: here.to_owned(),
            epoch: placed.placement.map_or(0, |p| p.epoch),
            already_here: false,
            files,
            bytes,
            fenced_bytes: bytes.saturating_sub(kept_bytes),
            precopy_secs,
            copy_secs,
            fenced_secs,
        })
    }

    /// Pulls a copy of the tenant from `source` into `into` as `name`: the live copy
    /// (`held`: `None`) or the fenced one, which lists the files already `held` under
    /// `PRECOPY` without their bytes. Checks the room for it first.
    fn pull_into(
        &self,
        source: &Source<'_>,
        token: &str,
        held: Option<&Held>,
        vaults: &cap_std::fs::Dir,
        into: &cap_std::fs::Dir,
        name: &str,
    ) -> Result<Received, CofferError> {
        let Source {
            url,
            node,
            slug,
            id,
        } = source;
        let mut request = held
            .map(|files| {
                serde_json::to_vec(&HeldFiles {
                    held: files.clone(),
                })
            })
            .transpose()
            .map_err(std::io::Error::other)?;
        // Too many files to list: the fenced copy comes whole, as without a live copy.
        let held = match &request {
            Some(body) if body.len() > MAX_HELD_BODY => {
                let none = serde_json::to_vec(&HeldFiles::default());
                request = Some(none.map_err(std::io::Error::other)?);
                None
            }
            _ => held,
        };
        let body = pull::pull(
            url,
            &format!("{PULL_ROUTE_PREFIX}{id}"),
            token,
            self.config.node_ca_file.as_deref(),
            request,
        )
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("pulling {slug} from {node} at {url}: {e}"),
            )
        })?;
        // Room for the copy before a byte of it is written, and never more than it was
        // announced at (a margin for the index and directories): a node taking a tenant
        // must not fill the disk its other tenants live on. Files already held are
        // moved into the copy, not written again.
        let announced = body
            .announced
            .ok_or_else(|| refuse(format!("node {node} did not announce the copy's size")))?;
        let max_bytes = announced + announced / 100 + (64 << 20);
        let held_bytes: u64 = held.map_or(0, |h| h.values().map(|f| f.size).sum());
        let needed = max_bytes.saturating_sub(held_bytes);
        let free = rustix::fs::fstatvfs(vaults)
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .map_err(std::io::Error::from)?;
        if free < needed {
            return Err(refuse(format!(
                "not enough free space on this node for {slug}: its copy needs up to {needed} \
                 bytes, {free} are available"
            )));
        }
        // Held files renamed or moved since the live copy come again while their old
        // copies still take room: whatever the stream carries, it stops short of
        // filling the disk (the move then fails, to be resumed or rolled back).
        let max_bytes = max_bytes.min(free.saturating_sub(KEEP_FREE));
        let kept = held.map(|files| Kept {
            dir: PRECOPY,
            files,
        });
        Ok(receive_tree(body, into, name, max_bytes, kept)
            .map_err(|e| std::io::Error::other(format!("pulling {slug} from {node}: {e}")))?)
    }

    /// Rolls back an interrupted move of `slug`: lifts the fence (at the next epoch) so
    /// the tenant takes writes where it is, and removes this node's debris of the copy.
    pub fn abort_move(
        &self,
        caller: &Caller,
        slug: &TenantSlug,
    ) -> Result<AbortReport, CofferError> {
        let tenant = self.live_tenant(slug)?;
        let Some(from) = tenant.placement.clone() else {
            return Err(refuse(format!("tenant {slug} has no placement")));
        };
        if from.fenced_at.is_none() {
            return Err(refuse(format!(
                "tenant {slug} is not fenced (on node {}): no move to roll back",
                from.node
            )));
        }
        let why = serde_json::json!({ "reason": "move aborted" });
        let unfenced = self
            .control
            .unfence_placement(caller, tenant.id, &from, why)?;
        let removed_debris = self.remove_incoming_debris(tenant.id, false)?;
        Ok(AbortReport {
            tenant: slug.as_str().to_owned(),
            node: from.node,
            epoch: unfenced.placement.map_or(0, |p| p.epoch),
            removed_debris,
        })
    }

    /// Removes what an interrupted copy left on this node (`.incoming-<id>` and a copy
    /// already renamed from it), never the vault of a tenant this node serves. Leaves
    /// it while a run holds the tenant's move lock (that run removes its own copy when
    /// its flip is refused) and, with `only_if_ended`, while the tenant is still fenced
    /// (the move may resume). Returns whether it removed anything.
    fn remove_incoming_debris(
        &self,
        id: TenantId,
        only_if_ended: bool,
    ) -> Result<bool, CofferError> {
        let vaults = self.root.dir().open_dir(DataRootPath::TenantsDir.path())?;
        let Ok(_lock) = MoveLock::take(&vaults, id) else {
            return Ok(false);
        };
        let incoming = incoming_name(id);
        if !vaults.is_dir(&incoming) {
            return Ok(false);
        }
        // Read under the lock: no run can fence and start between the read and removal.
        let placed = self.control.tenant(id)?.and_then(|t| t.placement);
        if only_if_ended && placed.as_ref().is_some_and(|p| p.fenced_at.is_some()) {
            return Ok(false);
        }
        if placed.is_some_and(|p| Some(p.node.as_str()) != self.control.node())
            && vaults.symlink_metadata(id.to_string()).is_ok()
        {
            vaults.remove_dir_all(id.to_string())?;
        }
        vaults.remove_dir_all(&incoming)?;
        sync_dir(&vaults)?;
        Ok(true)
    }

    /// The lifecycle pass's part: removes the copies this node sent of tenants moved
    /// away, `move_grace_hours` after the move (at once for a tenant since purged: its
    /// deletion covers every copy), and what moves that ended or died left behind.
    pub(super) fn remove_moved_copies(&self, caller: &Caller) -> Result<Vec<String>, CofferError> {
        let Some(here) = self.control.node() else {
            return Ok(vec![]);
        };
        let vaults = self.root.dir().open_dir(DataRootPath::TenantsDir.path())?;
        let grace = time::Duration::hours(i64::from(self.config.move_grace_hours));
        let cutoff = crate::db::timestamp(self.clock.now() - grace);
        let mut removed = vec![];
        let names: Vec<String> = vaults
            .entries()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        for name in names {
            let id_after = |prefix: &str, suffix: &str| {
                name.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(suffix))
                    .and_then(|rest| TenantId::parse(rest.split('-').next()?).ok())
            };
            if let Some(id) = id_after(".outgoing-", "") {
                // The scratch of a send that died with its process.
                let sending = self
                    .control
                    .tenant(id)?
                    .and_then(|t| t.placement)
                    .is_some_and(|p| p.node == here && p.fenced_at.is_some());
                if !sending {
                    vaults.remove_dir_all(&name)?;
                }
                continue;
            }
            if let Some(id) = id_after(".moving-", ".lock") {
                // Left by a run that died: taking the lock and letting it go removes it.
                drop(MoveLock::take(&vaults, id));
                continue;
            }
            if let Some(id) = id_after(".sent-", "") {
                // Meaningless once the tenant is placed here again (a move rolled back).
                let placed = self.control.tenant(id)?.and_then(|t| t.placement);
                if placed.is_none_or(|p| p.node == here && p.fenced_at.is_none()) {
                    vaults.remove_file(&name)?;
                }
                continue;
            }
            if let Some(id) = id_after(".incoming-", "") {
                // A move onto this node that ended elsewhere (rolled back from another
                // node, or finished by a run that died before cleaning up): its debris.
                self.remove_incoming_debris(id, true)?;
                continue;
            }
            let Ok(id) = TenantId::parse(&name) else {
                continue;
            };
            let Some(tenant) = self.control.tenant(id)? else {
                continue;
            };
            let Some(placed) = tenant.placement.as_ref().filter(|p| p.node != here) else {
                continue;
            };
            let gone = tenant.state.is_gone();
            // A move onto this node under way: its copy, not a stale one.
            if !gone && vaults.is_dir(incoming_name(id)) {
                continue;
            }
            // Only a copy this node sent goes by itself: one a recovery elsewhere left
            // behind may hold the changes made after that backup, for an operator to
            // look at (the isolation audit names it). A purged tenant's goes regardless.
            let sent = vaults.symlink_metadata(sent_name(id)).is_ok();
            if !gone && (!sent || placed.changed_at.as_str() > cutoff.as_str()) {
                continue;
            }
            self.vaults.evict(id);
            self.vaults.forget_sent(id);
            vaults.remove_dir_all(&name)?;
            if sent {
                vaults.remove_file(sent_name(id))?;
            }
            sync_dir(&vaults)?;
            self.audit.append(
                &caller
                    .event(crate::audit::AuditAction::TenantPlace)
                    .tenant(id)
                    .detail(serde_json::json!({
                        "removed_copy": here, "node": placed.node, "epoch": placed.epoch })),
            )?;
            tracing::info!(tenant = %tenant.slug, node = %placed.node, "removed the copy of a tenant moved away");
            removed.push(name);
        }
        Ok(removed)
    }

    pub(super) fn check_here<'a>(&'a self, to: &str, what: &str) -> Result<&'a str, CofferError> {
        let Some(here) = self.control.node() else {
            return Err(refuse(format!(
                "a tenant {what} onto another node needs a PostgreSQL control plane"
            )));
        };
        if here != to {
            return Err(refuse(format!(
                "this is node {here}: run the {what} on node {to}, which takes the tenant"
            )));
        }
        Ok(here)
    }

    pub(super) fn live_tenant(&self, slug: &TenantSlug) -> Result<Tenant, CofferError> {
        Ok(self
            .control
            .tenant_by_slug(slug)?
            .filter(|t| !t.state.is_gone())
            .ok_or(ControlError::NotFound)?)
    }
}

/// Checks a received copy (`name` in `copy`, at `staged`) against its own index: the index is intact, and
/// every file and trash item it names arrived, each file with the size and SHA-256 the
/// index records (as the transfer's manifest says they were written, hashed on the way
/// to the disk, so the copy is not read a second time); the marker too. Returns the
/// files and bytes, or what is wrong.
fn check_against_index(
    copy: &cap_std::fs::Dir,
    name: &str,
    staged: &std::path::Path,
    manifest: &TransferManifest,
) -> Result<(u64, u64), String> {
    use crate::vault::index::{EntryKind, Index};
    use crate::vault::layout::VaultEntry;
    use cap_fs_ext::DirExt;
    let index = Index::open_read_only(&staged.join(VaultEntry::IndexDb.path()))
        .map_err(|e| e.to_string())?;
    match index.integrity_check().map_err(|e| e.to_string())?.as_str() {
        "ok" => {}
        other => return Err(format!("index: {other}")),
    }
    if !manifest.files.contains_key(VaultEntry::Marker.path()) {
        return Err("no VAULT marker".into());
    }
    let (files_dir, trash_dir) = (VaultEntry::FilesDir.path(), VaultEntry::TrashDir.path());
    let (mut files, mut bytes) = (0, 0);
    for entry in index.all_entries().map_err(|e| e.to_string())? {
        if entry.kind == EntryKind::Dir {
            continue;
        }
        let sent = manifest.files.get(&format!("{files_dir}/{}", entry.path));
        match sent {
            Some(f) if f.size == entry.size && Some(&f.sha256) == entry.sha256.as_ref() => {}
            Some(_) => return Err(format!("{} differs from its index entry", entry.path)),
            None => return Err(format!("{} is missing", entry.path)),
        }
        files += 1;
        bytes += entry.size;
    }
    // A trash item is a file or a folder (perhaps empty): it must be there.
    let trash = copy
        .open_dir_nofollow(format!("{name}/{trash_dir}"))
        .map_err(|e| format!("{trash_dir}: {e}"))?;
    for item in index.trash_list().map_err(|e| e.to_string())? {
        if trash.symlink_metadata(&item.id).is_err() {
            return Err(format!("trash item {} is missing", item.id));
        }
    }
    Ok((files, bytes))
}

/// The lock a move holds on the node taking the tenant, for the whole run:
/// `tenants/.moving-<id>.lock`, locked with `flock` (released by the kernel if the run
/// dies) and removed when the run ends.
struct MoveLock<'a> {
    dir: &'a cap_std::fs::Dir,
    name: String,
    _file: cap_std::fs::File,
}

impl<'a> MoveLock<'a> {
    /// Takes the lock, or `WouldBlock` if another run holds it.
    fn take(dir: &'a cap_std::fs::Dir, id: TenantId) -> std::io::Result<MoveLock<'a>> {
        use cap_std::fs::{MetadataExt, OpenOptions, OpenOptionsExt};
        let name = format!(".moving-{id}.lock");
        loop {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).mode(0o600);
            let file = dir.open_with(&name, &options)?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .map_err(std::io::Error::from)?;
            // The file may have been removed by the run that held it just before: a lock
            // on a file no longer at the name is no lock.
            let held = file.metadata()?;
            match dir.symlink_metadata(&name) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(MoveLock {
                        dir,
                        name,
                        _file: file,
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for MoveLock<'_> {
    fn drop(&mut self) {
        // Removed while still locked, so a run waiting on it retries on a new file.
        let _ = self.dir.remove_file(&self.name);
    }
}
