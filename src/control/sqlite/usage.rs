//! The SQLite side of usage metering (`UsageTx`).

use rusqlite::params;

use super::Tx;
use crate::control::ControlError;
use crate::control::model::UsageRow;
use crate::control::store::UsageTx;
use crate::names::TenantId;

impl UsageTx for Tx<'_> {
    fn add_usage(
        &self,
        tenant: TenantId,
        day: &str,
        metric: &str,
        n: u64,
    ) -> Result<(), ControlError> {
        self.conn.execute(
            "INSERT INTO usage (tenant_id, day, metric, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, day, metric) DO UPDATE SET value = value + excluded.value",
            params![tenant.to_string(), day, metric, n as i64],
        )?;
        Ok(())
    }

    fn usage(&self, tenant: TenantId, from_day: &str) -> Result<Vec<UsageRow>, ControlError> {
        self.all(
            "SELECT day, metric, value FROM usage WHERE tenant_id = ?1 AND day >= ?2
             ORDER BY day, metric",
            params![tenant.to_string(), from_day],
            |r| {
                Ok(UsageRow {
                    day: r.get(0)?,
                    metric: r.get(1)?,
                    value: r.get::<_, i64>(2)?.max(0) as u64,
                })
            },
        )
    }

    fn prune_usage(&self, before: &str) -> Result<usize, ControlError> {
        let day = &before[..before.len().min(10)];
        let mut gone = self
            .conn
            .execute("DELETE FROM usage WHERE day < ?1", [day])?;
        gone += self.conn.execute(
            "DELETE FROM membership_periods WHERE until IS NOT NULL AND until < ?1",
            [before],
        )?;
        gone += self
            .conn
            .execute("DELETE FROM login_events WHERE at < ?1", [before])?;
        Ok(gone)
    }
}
