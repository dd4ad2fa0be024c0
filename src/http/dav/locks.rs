//! WebDAV locks: one lock table per tenant (a lock root is a path inside one vault, so
//! tables are never shared), each lock with a bounded timeout that is enforced.
//!
//! dav-server's `MemLs` keeps the lock state (conflicts, depth, shared and exclusive)
//! but never expires a lock; `TenantLocks` wraps it, records each lock's deadline on the
//! server's clock (injected, so tests advance time instead of sleeping) and releases
//! expired locks before every lock-table operation. A lock asks for at most
//! `MAX_TIMEOUT` (an `Infinite` request gets it too); one without a timeout gets
//! `DEFAULT_TIMEOUT`. A tenant holds at most `MAX_LOCKS_PER_TENANT` locks, each with an
//! owner of at most `MAX_OWNER_BYTES`, so no client can grow the server's memory by
//! locking without end. Locks live in memory: a restart
//! releases them, which clients survive by locking again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use dav_server::memls::MemLs;
use futures_util::FutureExt;
use time::OffsetDateTime;
use xmltree::Element;

use crate::clock::SharedClock;
use crate::db;
use crate::names::TenantId;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60 * 60);
pub const MAX_LOCKS_PER_TENANT: usize = 1000;
/// Bytes of a lock's owner element (a name or a URL in practice), so that a tenant's
/// locks hold at most about 4 MiB.
pub const MAX_OWNER_BYTES: usize = 4096;

/// Every tenant's lock table, made on first use.
#[derive(Clone)]
pub struct DavLocks {
    clock: SharedClock,
    tables: Arc<Mutex<HashMap<TenantId, TenantLocks>>>,
}

impl DavLocks {
    pub fn new(clock: SharedClock) -> DavLocks {
        DavLocks {
            clock,
            tables: Arc::default(),
        }
    }

    /// `tenant`'s lock table.
    pub fn of(&self, tenant: TenantId) -> TenantLocks {
        db::lock(&self.tables)
            .entry(tenant)
            .or_insert_with(|| TenantLocks {
                inner: *MemLs::new(),
                deadlines: Arc::default(),
                clock: self.clock.clone(),
            })
            .clone()
    }
}

/// One tenant's locks with their deadlines.
#[derive(Clone)]
pub struct TenantLocks {
    inner: MemLs,
    /// Lock token → (lock root, deadline).
    deadlines: Arc<Mutex<HashMap<String, (DavPath, OffsetDateTime)>>>,
    clock: SharedClock,
}

impl std::fmt::Debug for TenantLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantLocks")
    }
}

fn bounded(timeout: Option<Duration>) -> Duration {
    timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT)
}

impl TenantLocks {
    fn deadline(&self, timeout: Duration) -> OffsetDateTime {
        self.clock.now() + timeout
    }

    /// Releases every lock whose deadline has passed.
    async fn expire(&self) {
        let now = self.clock.now();
        let expired: Vec<(String, DavPath)> = {
            let mut deadlines = db::lock(&self.deadlines);
            let gone: Vec<String> = deadlines
                .iter()
                .filter(|(_, (_, at))| *at <= now)
                .map(|(token, _)| token.clone())
                .collect();
            gone.into_iter()
                .filter_map(|t| deadlines.remove(&t).map(|(path, _)| (t, path)))
                .collect()
        };
        for (token, path) in expired {
            // Already gone if its resource was deleted meanwhile.
            let _ = self.inner.unlock(&path, &token).await;
        }
    }

    /// Whether the tenant holds no lock at all (expired ones released first).
    pub async fn none_held(&self) -> bool {
        self.expire().await;
        db::lock(&self.deadlines).is_empty()
    }

    fn full(&self) -> bool {
        db::lock(&self.deadlines).len() >= MAX_LOCKS_PER_TENANT
    }
}

impl DavLockSystem for TenantLocks {
    fn lock(
        &self,
        path: &DavPath,
        principal: Option<&str>,
        owner: Option<&Element>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> LsFuture<'_, Result<DavLock, DavLock>> {
        let (path, principal, owner) = (path.clone(), principal.map(str::to_owned), owner.cloned());
        async move {
            self.expire().await;
            let timeout = bounded(timeout);
            let owner_bytes = owner.as_ref().map_or(0, |o| {
                let mut xml = Vec::new();
                o.write(&mut xml).map_or(usize::MAX, |()| xml.len())
            });
            if self.full() || owner_bytes > MAX_OWNER_BYTES {
                // Refused as if locked: the client sees 423 and may try again later.
                return Err(DavLock {
                    token: String::new(),
                    path: Box::new(path),
                    principal: None,
                    owner: None,
                    timeout_at: None,
                    timeout: None,
                    shared: false,
                    deep: false,
                });
            }
            let lock = self
                .inner
                .lock(
                    &path,
                    principal.as_deref(),
                    owner.as_ref(),
                    Some(timeout),
                    shared,
                    deep,
                )
                .await?;
            db::lock(&self.deadlines).insert(lock.token.clone(), (path, self.deadline(timeout)));
            Ok(lock)
        }
        .boxed()
    }

    fn unlock(&self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let (path, token) = (path.clone(), token.to_owned());
        async move {
            self.expire().await;
            // Only a lock actually released loses its deadline: an UNLOCK aimed at
            // another URL fails and leaves the lock, and its expiry, as they were.
            self.inner.unlock(&path, &token).await?;
            db::lock(&self.deadlines).remove(&token);
            Ok(())
        }
        .boxed()
    }

    fn refresh(
        &self,
        path: &DavPath,
        token: &str,
        timeout: Option<Duration>,
    ) -> LsFuture<'_, Result<DavLock, ()>> {
        let (path, token) = (path.clone(), token.to_owned());
        async move {
            self.expire().await;
            let timeout = bounded(timeout);
            let lock = self.inner.refresh(&path, &token, Some(timeout)).await?;
            if let Some(entry) = db::lock(&self.deadlines).get_mut(&token) {
                entry.1 = self.deadline(timeout);
            }
            Ok(lock)
        }
        .boxed()
    }

    fn check(
        &self,
        path: &DavPath,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        submitted_tokens: &[String],
    ) -> LsFuture<'_, Result<(), DavLock>> {
        let (path, principal) = (path.clone(), principal.map(str::to_owned));
        let tokens = submitted_tokens.to_vec();
        async move {
            self.expire().await;
            self.inner
                .check(&path, principal.as_deref(), ignore_principal, deep, &tokens)
                .await
        }
        .boxed()
    }

    fn discover(&self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let path = path.clone();
        async move {
            self.expire().await;
            self.inner.discover(&path).await
        }
        .boxed()
    }

    fn delete(&self, path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        let path = path.clone();
        async move {
            self.expire().await;
            // The locks at and under `path` go with it, deadlines too.
            let root = path
                .as_bytes()
                .strip_suffix(b"/")
                .unwrap_or(path.as_bytes());
            db::lock(&self.deadlines).retain(|_, (locked, _)| {
                let p = locked.as_bytes();
                !(p.starts_with(root) && matches!(p.get(root.len()), None | Some(b'/')))
            });
            self.inner.delete(&path).await
        }
        .boxed()
    }
}
