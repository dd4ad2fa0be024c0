//! Usage metering in the control plane (P16): API calls per feature and AI tokens, per
//! tenant and day. Billing records outlive the vault (P15): they are kept here, not in
//! the vault's index, so a purge leaves them (they hold no content and no names), and
//! they are pruned with the audit log's retention.

use super::model::UsageRow;
use super::{ControlError, ControlPlane};
use crate::audit::{AuditAction, Caller};
use crate::names::TenantId;

/// One increment: `n` more of `metric` for `tenant` on `day` (YYYY-MM-DD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIncrement {
    pub tenant: TenantId,
    pub day: String,
    pub metric: String,
    pub n: u64,
}

impl ControlPlane {
    /// Adds metered counts (bookkeeping: no audit event; the requests they count are
    /// audited where they change anything).
    pub fn record_usage(&self, increments: &[UsageIncrement]) -> Result<(), ControlError> {
        if increments.is_empty() {
            return Ok(());
        }
        self.write_bookkeeping(|tx, _| {
            for i in increments {
                tx.add_usage(i.tenant, &i.day, &i.metric, i.n)?;
            }
            Ok(((), Vec::new()))
        })
    }

    /// An AI integration reports tokens it consumed for the tenant; audited as
    /// `usage.ai_report` with the figures (never prompts or answers).
    pub fn report_ai_usage(
        &self,
        caller: &Caller,
        tenant: TenantId,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Result<(), ControlError> {
        let day = self.today();
        self.write_bookkeeping(|tx, _| {
            tx.add_usage(tenant, &day, "ai.input_tokens", input_tokens)?;
            tx.add_usage(tenant, &day, "ai.output_tokens", output_tokens)?;
            let event = caller
                .event(AuditAction::UsageAiReport)
                .tenant(tenant)
                .detail(
                    serde_json::json!({ "model": model, "input_tokens": input_tokens,
                    "output_tokens": output_tokens }),
                );
            Ok(((), vec![event]))
        })
    }

    /// A tenant's usage from `from_day` on.
    pub fn usage(&self, tenant: TenantId, from_day: &str) -> Result<Vec<UsageRow>, ControlError> {
        self.read(|tx| tx.usage(tenant, from_day))
    }

    /// Deletes usage data older than `before` (a timestamp), with one event.
    pub fn prune_usage(&self, caller: &Caller, before: &str) -> Result<usize, ControlError> {
        self.write(|tx, _| {
            let gone = tx.prune_usage(before)?;
            let events = if gone > 0 {
                vec![
                    caller
                        .event(AuditAction::MaintenancePrune)
                        .detail(serde_json::json!({ "usage_rows": gone, "before": before })),
                ]
            } else {
                Vec::new()
            };
            Ok((gone, events))
        })
    }

    /// Today's date (UTC) on the control plane's clock.
    pub fn today(&self) -> String {
        self.now()[..10].to_owned()
    }
}
