//! A tenant's usage as one report (P16), for the tenant's own managers and for operators
//! alike: the vault's counters while the tenant still has a vault, the metered usage the
//! control plane keeps for billing (which outlives a purge), and recent logins of its
//! members (including members since removed).
//!
//! Operators read it by tenant, never through a `TenantAccess`: the report holds numbers
//! only, so no access to content is issued for it.

use super::{Coffer, CofferError};
use crate::control::{LoginEvent, Tenant, TenantState, UsageRow};

/// How far back the metered usage of a report goes.
pub const USAGE_DAYS: i64 = 90;
/// How many recent logins a report lists.
pub const USAGE_LOGINS: u32 = 100;

/// Everything a usage report says about one tenant.
#[derive(Debug, Clone)]
pub struct UsageReport {
    /// The vault's counters (bytes, files, records...); empty once the vault is purged.
    pub counters: Vec<(String, i64)>,
    /// Metered figures per day and metric for the last `USAGE_DAYS` days.
    pub metered: Vec<UsageRow>,
    /// The most recent logins of the tenant's members, newest first.
    pub logins: Vec<LoginEvent>,
}

impl Coffer {
    /// The usage report of `tenant`, whatever its state (a purged tenant's billing
    /// records are still reported; it has no counters left).
    pub fn usage_report(&self, tenant: &Tenant) -> Result<UsageReport, CofferError> {
        let counters = match tenant.state {
            TenantState::Purging | TenantState::Purged => Vec::new(),
            // The counters live in the vault, on the node serving it.
            _ if !self.control.serves(tenant) => {
                let node = tenant.placement.as_ref().map(|p| p.node.clone());
                return Err(crate::auth::AuthError::Misdirected(node.unwrap_or_default()).into());
            }
            _ => self.vaults.open(tenant.id)?.usage()?,
        };
        let since = crate::db::timestamp(self.clock.now() - time::Duration::days(USAGE_DAYS));
        Ok(UsageReport {
            counters,
            metered: self.control.usage(tenant.id, &since[..10])?,
            logins: self.control.tenant_logins(tenant.id, USAGE_LOGINS)?,
        })
    }
}
