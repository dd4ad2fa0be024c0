//! API calls per feature (P16): every request authorized on a tenant route counts one for
//! its permission's feature (`api.files_read`, ...), in memory, without a database write
//! on the request's path; the counts are flushed into the control plane's usage table by
//! `coffer serve` every minute, once more when it stops (and by tests on demand). A crash
//! (not a stop) loses at most the last minute's counts, never a request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::permission::TenantPermission;
use crate::coffer::Coffer;
use crate::control::UsageIncrement;
use crate::db;
use crate::names::TenantId;

/// How often `serve` writes the counts.
const FLUSH_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Default)]
pub struct UsageMeter {
    counts: Arc<Mutex<HashMap<(TenantId, TenantPermission), u64>>>,
}

impl UsageMeter {
    /// Counts one authorized call.
    pub fn count(&self, tenant: TenantId, feature: TenantPermission) {
        *db::lock(&self.counts).entry((tenant, feature)).or_default() += 1;
    }

    /// Writes the counts so far as today's usage (blocking: call off the async threads).
    /// On failure the counts are kept for the next flush.
    pub fn flush(&self, coffer: &Coffer) -> Result<(), crate::control::ControlError> {
        let taken = std::mem::take(&mut *db::lock(&self.counts));
        let day = coffer.control().today();
        let increments: Vec<UsageIncrement> = taken
            .iter()
            .map(|((tenant, feature), n)| UsageIncrement {
                tenant: *tenant,
                day: day.clone(),
                metric: format!("api.{}", feature.as_str()),
                n: *n,
            })
            .collect();
        if let Err(e) = coffer.control().record_usage(&increments) {
            let mut counts = db::lock(&self.counts);
            for (key, n) in taken {
                *counts.entry(key).or_default() += n;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Flushes every `FLUSH_EVERY` in the background, off the async threads.
    pub fn spawn_flusher(&self, coffer: Coffer) {
        let meter = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(FLUSH_EVERY);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let (meter, coffer) = (meter.clone(), coffer.clone());
                match tokio::task::spawn_blocking(move || meter.flush(&coffer)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "usage counts not written yet"),
                    Err(e) => tracing::error!(error = %e, "usage flush panicked"),
                }
            }
        });
    }
}
