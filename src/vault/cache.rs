//! `VaultStore`: opens the vaults of one data root and keeps at most `cache_capacity` of
//! them open, so descriptors and SQLite connections stay bounded whatever the number of
//! tenants.
//!
//! Opening a vault (SQLite, migrations, crash repair that may hash files) happens outside
//! the cache's lock, in a per-tenant slot: one cold or damaged tenant never delays a
//! request for another. Only one thread opens a given tenant at a time, and a vault still
//! in use after its eviction is reused rather than opened twice (two instances would not
//! share a commit lock). A vault evicted to make room is closed by a background thread,
//! off the request that opened another (closing an index ends its SQLite connection with
//! a WAL checkpoint). Whole-data-root passes (the lifecycle's trash expiry) open vaults
//! without keeping them, so a pass over every tenant does not push out the ones in use.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use cap_fs_ext::DirExt;
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt};

use super::dir::{self, VaultDir};
use super::layout::{DataRoot, DataRootPath, LAYOUT_VERSION};
use super::{Vault, VaultError, VaultLimits, VaultMarker};
use crate::audit::AuditLog;
use crate::clock::{self, SharedClock};
use crate::db;
use crate::names::TenantId;

/// Evicted vaults waiting for the closing thread, at most.
pub const CLOSING_MAX: usize = 2;

/// Called at the start of every real (uncached) vault open: a seam for tests that must
/// hold one open in progress while another tenant is served.
pub type OpenHook = Arc<dyn Fn(TenantId) + Send + Sync>;

pub struct VaultStore {
    root: Arc<DataRoot>,
    tenants: Dir,
    audit: AuditLog,
    clock: SharedClock,
    limits: VaultLimits,
    cache: Mutex<VaultCache>,
    open_count: AtomicUsize,
    open_hook: Mutex<Option<OpenHook>>,
    /// Evicted vaults on their way to the closing thread.
    closer: Mutex<std::sync::mpsc::SyncSender<Arc<Vault>>>,
    /// Tenants whose copy a move took, with the fenced epoch (see `mark_sent`).
    sent: Mutex<HashMap<TenantId, i64>>,
}

#[derive(Default)]
struct VaultCache {
    tick: u64,
    /// Vaults kept open, with the tick of their last use.
    open: HashMap<TenantId, (Arc<Vault>, u64)>,
    /// Every vault handed out, so that one still in use after eviction is reused.
    handed_out: HashMap<TenantId, Weak<Vault>>,
    /// One lock per tenant being opened right now.
    opening: HashMap<TenantId, Arc<Mutex<()>>>,
}

/// Whether an open keeps the vault in the cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// A request: the vault joins the cache as the most recently used.
    Cached,
    /// A pass over many tenants: a vault already open is used as it is, one opened for the
    /// pass is closed when the pass drops it.
    Transient,
}

impl VaultCache {
    /// A cached (or still handed-out) vault; with `Keep::Cached`, marked as just used.
    fn hit(&mut self, tenant: TenantId, keep: Keep) -> Option<Arc<Vault>> {
        self.tick += 1;
        let tick = self.tick;
        if let Some((vault, used)) = self.open.get_mut(&tenant) {
            if keep == Keep::Cached {
                *used = tick;
            }
            return Some(vault.clone());
        }
        let vault = self.handed_out.get(&tenant).and_then(Weak::upgrade)?;
        if keep == Keep::Cached {
            self.open.insert(tenant, (vault.clone(), tick));
        }
        Some(vault)
    }
}

impl VaultStore {
    pub fn new(
        root: Arc<DataRoot>,
        audit: AuditLog,
        clock: SharedClock,
        limits: VaultLimits,
    ) -> io::Result<Self> {
        let tenants_name = DataRootPath::TenantsDir.path();
        let mut private = DirBuilder::new();
        private.mode(0o700);
        match root.dir().create_dir_with(&tenants_name, &private) {
            Ok(()) => dir::sync_dir(root.dir())?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let tenants = root.dir().open_dir_nofollow(&tenants_name)?;
        // Bounded: when closing falls behind, the opener waits (at most `CLOSING_MAX`
        // queued plus the one being closed are open beyond the cache's capacity).
        let (closer, evicted) = std::sync::mpsc::sync_channel::<Arc<Vault>>(CLOSING_MAX);
        std::thread::Builder::new()
            .name("vault-closer".into())
            .spawn(move || evicted.into_iter().for_each(drop))?;
        Ok(VaultStore {
            root,
            tenants,
            audit,
            clock,
            limits,
            cache: Mutex::new(VaultCache::default()),
            open_count: AtomicUsize::new(0),
            open_hook: Mutex::new(None),
            closer: Mutex::new(closer),
            sent: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self) -> &VaultLimits {
        &self.limits
    }

    /// Installs a hook called at the start of every uncached open (tests only).
    #[cfg(feature = "test-hooks")]
    pub fn set_open_hook(&self, hook: Option<OpenHook>) {
        *db::lock(&self.open_hook) = hook;
    }

    /// Creates the vault directory and index of a new tenant.
    pub fn create(&self, tenant: TenantId) -> Result<Arc<Vault>, VaultError> {
        let marker = VaultMarker {
            layout_version: LAYOUT_VERSION,
            tenant_id: tenant.to_string(),
            created_at: clock::stamp(self.clock.as_ref()),
        };
        let marker = serde_json::to_string_pretty(&marker).map_err(io::Error::other)?;
        VaultDir::create(&self.tenants, &tenant.to_string(), &marker)?;
        self.open(tenant)
    }

    /// Removes a vault directory that was created but never registered (a tenant whose
    /// creation failed after its vault existed). Descriptor-based, never follows links.
    pub fn remove_unregistered(&self, tenant: TenantId) -> Result<(), VaultError> {
        self.evict(tenant);
        db::lock(&self.cache).handed_out.remove(&tenant);
        self.tenants.remove_dir_all(tenant.to_string())?;
        dir::sync_dir(&self.tenants)?;
        Ok(())
    }

    /// First step of destroying a purged tenant's vault: closed, forgotten, and renamed
    /// to `<id>.purging`, so that no open finds it again, even after a crash. Idempotent;
    /// returns whether the live directory was still there.
    pub fn retire(&self, tenant: TenantId) -> Result<bool, VaultError> {
        self.evict(tenant);
        db::lock(&self.cache).handed_out.remove(&tenant);
        let live = tenant.to_string();
        if self.tenants.symlink_metadata(&live).is_err() {
            return Ok(false);
        }
        self.tenants
            .rename(&live, &self.tenants, purge_marker(tenant))?;
        dir::sync_dir(&self.tenants)?;
        Ok(true)
    }

    /// Second step: removes the retired directory through the capability layer
    /// (descriptor-based: a symlink inside is removed, never followed). Idempotent;
    /// returns whether anything was left to remove.
    pub fn remove_retired(&self, tenant: TenantId) -> Result<bool, VaultError> {
        let marker = purge_marker(tenant);
        if self.tenants.symlink_metadata(&marker).is_err() {
            return Ok(false);
        }
        self.tenants.remove_dir_all(&marker)?;
        dir::sync_dir(&self.tenants)?;
        Ok(true)
    }

    /// The vault of `tenant`, from the cache or freshly opened (which runs recovery).
    pub fn open(&self, tenant: TenantId) -> Result<Arc<Vault>, VaultError> {
        self.open_keeping(tenant, Keep::Cached)
    }

    /// The vault of `tenant` for a pass over many tenants: the one open if any, else
    /// opened without entering the cache (closed when the caller drops it), so the pass
    /// evicts nobody.
    pub fn open_transient(&self, tenant: TenantId) -> Result<Arc<Vault>, VaultError> {
        self.open_keeping(tenant, Keep::Transient)
    }

    fn open_keeping(&self, tenant: TenantId, keep: Keep) -> Result<Arc<Vault>, VaultError> {
        let slot = {
            let mut cache = db::lock(&self.cache);
            if let Some(v) = cache.hit(tenant, keep) {
                return Ok(v);
            }
            cache.opening.entry(tenant).or_default().clone()
        };
        // Only this tenant's openers wait here; the cache stays free for everyone else.
        let _opening = db::lock(&slot);
        if let Some(v) = db::lock(&self.cache).hit(tenant, keep) {
            return Ok(v);
        }
        let hook = db::lock(&self.open_hook).clone();
        if let Some(hook) = hook {
            hook(tenant);
        }
        let opened = Vault::open(
            &self.root,
            &self.tenants,
            tenant,
            self.audit.clone(),
            self.clock.clone(),
            self.limits.clone(),
        );
        let vault = Arc::new(opened?);
        if let Some(epoch) = db::lock(&self.sent).get(&tenant) {
            vault.mark_sent(*epoch);
        }
        let mut cache = db::lock(&self.cache);
        // Only a successful open retires the slot: after a failure, the threads waiting on
        // it try in turn, never two at once.
        cache.opening.remove(&tenant);
        cache.tick += 1;
        let tick = cache.tick;
        cache.handed_out.insert(tenant, Arc::downgrade(&vault));
        if keep == Keep::Transient {
            return Ok(vault);
        }
        cache.open.insert(tenant, (vault.clone(), tick));
        let mut evicted = None;
        let capacity = self.limits.cache_capacity.max(1);
        if cache.open.len() > capacity {
            // Evict the least recently used. O(capacity), only on a miss at capacity.
            if let Some(oldest) = cache
                .open
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| *id)
            {
                evicted = cache.open.remove(&oldest);
            }
            if cache.handed_out.len() > 2 * capacity {
                cache.handed_out.retain(|_, w| w.strong_count() > 0);
            }
        }
        self.open_count.store(cache.open.len(), Ordering::Relaxed);
        drop(cache);
        if let Some((evicted, _)) = evicted {
            // Closed by the closing thread, or here if it is gone.
            if let Err(unsent) = db::lock(&self.closer).send(evicted) {
                drop(unsent);
            }
        }
        Ok(vault)
    }

    /// The vault of `tenant` if it is open now, without opening it (no I/O, no waiting
    /// beyond the cache's short lock): for the request path's fast authorization.
    pub fn cached(&self, tenant: TenantId) -> Option<Arc<Vault>> {
        db::lock(&self.cache).hit(tenant, Keep::Cached)
    }

    /// How many vaults are open in the cache now (without taking its lock).
    pub fn open_count(&self) -> usize {
        self.open_count.load(Ordering::Relaxed)
    }

    /// Drops a vault from the cache. One still in use elsewhere stays the one instance
    /// (it is found again through `handed_out`), so its commit lock stays unique.
    pub fn evict(&self, tenant: TenantId) {
        let evicted = {
            let mut cache = db::lock(&self.cache);
            let v = cache.open.remove(&tenant);
            self.open_count.store(cache.open.len(), Ordering::Relaxed);
            v
        };
        drop(evicted);
    }
}

impl VaultStore {
    /// Marks `tenant`'s vault as sent away by a move at fenced `epoch`: it takes no change
    /// from now on, in this instance and in any opened after its eviction, until
    /// `fit_placement` sees the move rolled back. Returns the vault.
    pub fn mark_sent(&self, tenant: TenantId, epoch: i64) -> Result<Arc<Vault>, VaultError> {
        db::lock(&self.sent).insert(tenant, epoch);
        let vault = self.open(tenant)?;
        vault.mark_sent(epoch);
        Ok(vault)
    }

    /// Lifts the sent mark of `vault` (of `tenant`) if the placement now known is a move
    /// rolled back: here, not fenced, at a later epoch than the move's.
    pub fn fit_placement(
        &self,
        tenant: TenantId,
        vault: &Vault,
        here: bool,
        fenced: bool,
        epoch: i64,
    ) {
        if vault.fit_placement(here, fenced, epoch) {
            db::lock(&self.sent).remove(&tenant);
        }
    }

    /// `vault` if it is still the directory at `tenants/<id>`, else the tenant's vault
    /// opened afresh. Checked only when the placement's `epoch` differs from the one the
    /// instance was last checked at (epochs change when a tenant is fenced, moved or
    /// unfenced: one `stat` per change): a tenant that moved away and back has a new
    /// directory, and the instance cached from before must never take its requests.
    pub fn current_at(
        &self,
        tenant: TenantId,
        vault: Arc<Vault>,
        epoch: i64,
    ) -> Result<Arc<Vault>, VaultError> {
        use cap_std::fs::MetadataExt;
        if vault.checked_epoch() == epoch {
            return Ok(vault);
        }
        let on_disk = self
            .tenants
            .symlink_metadata(tenant.to_string())
            .map(|m| (m.dev(), m.ino()));
        if let (Ok(open), Ok(now)) = (vault.dir_identity(), on_disk)
            && open == now
        {
            vault.set_checked_epoch(epoch);
            return Ok(vault);
        }
        let stale = {
            let mut cache = db::lock(&self.cache);
            cache.handed_out.remove(&tenant);
            let stale = cache.open.remove(&tenant);
            self.open_count.store(cache.open.len(), Ordering::Relaxed);
            stale
        };
        drop(stale);
        let fresh = self.open(tenant)?;
        fresh.set_checked_epoch(epoch);
        Ok(fresh)
    }

    /// Forgets a sent mark: the copy it guarded is gone from this node.
    pub fn forget_sent(&self, tenant: TenantId) {
        db::lock(&self.sent).remove(&tenant);
    }
}

/// The name a vault directory takes while it is being purged (see the layout spec).
pub fn purge_marker(tenant: TenantId) -> String {
    format!("{tenant}.purging")
}
