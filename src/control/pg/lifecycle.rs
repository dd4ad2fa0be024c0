//! The PostgreSQL statements behind `LifecycleTx`, `PlacementTx`, `RightsTx` and
//! `UsageTx`: tenant states, purges, leases and pruning; placements; profile corrections
//! and login history; usage rows.

use super::tables::{Tx, login_from};
use crate::control::ControlError;
use crate::control::model::{Lifecycle, LoginEvent, Placement, PurgeRecord, TenantState, UsageRow};
use crate::control::store::{LifecycleTx, PlacementTx, RightsTx, UsageTx};
use crate::names::{Email, TenantId, UserId};
use crate::signing::Signed;

fn count(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

impl LifecycleTx for Tx<'_> {
    fn set_lifecycle(
        &self,
        id: TenantId,
        state: TenantState,
        l: &Lifecycle,
    ) -> Result<(), ControlError> {
        let changed = self.exec(
            "UPDATE tenants SET state = $2, state_changed_at = $3, cancelled_at = $4,
                 purge_after = $5, legal_hold_at = $6, purged_at = $7
             WHERE id = $1",
            &[
                &id.to_string(),
                &state.as_str(),
                &l.state_changed_at,
                &l.cancelled_at,
                &l.purge_after,
                &l.legal_hold_at,
                &l.purged_at,
            ],
        )?;
        if changed == 0 {
            return Err(ControlError::NotFound);
        }
        Ok(())
    }

    fn tombstone_tenant(&self, id: TenantId) -> Result<(), ControlError> {
        self.exec(
            "UPDATE tenants SET slug = 'purged-' || id, name = '' WHERE id = $1",
            &[&id.to_string()],
        )?;
        Ok(())
    }

    fn delete_tenant_access(&self, id: TenantId, now: &str) -> Result<Vec<UserId>, ControlError> {
        let tenant = id.to_string();
        self.exec(
            "UPDATE membership_periods SET until = $2 WHERE tenant_id = $1 AND until IS NULL",
            &[&tenant, &now],
        )?;
        let members = self.all(
            "SELECT user_id FROM memberships WHERE tenant_id = $1 ORDER BY user_id",
            &[&tenant],
            |r| Ok(UserId::parse(r.try_get(0)?).ok()),
        )?;
        self.exec("DELETE FROM api_tokens WHERE tenant_id = $1", &[&tenant])?;
        self.exec("DELETE FROM memberships WHERE tenant_id = $1", &[&tenant])?;
        Ok(members.into_iter().flatten().collect())
    }

    fn insert_purge(&self, p: &PurgeRecord) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO purges (tenant_id, started_at, files, directories, records, bytes)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &p.tenant.to_string(),
                &p.started_at,
                &count(p.files),
                &count(p.directories),
                &count(p.records),
                &count(p.bytes),
            ],
        )?;
        Ok(())
    }

    fn purge(&self, id: TenantId) -> Result<Option<PurgeRecord>, ControlError> {
        self.one(
            "SELECT started_at, files, directories, records, bytes, finished_at, receipt,
                    signature, public_key
             FROM purges WHERE tenant_id = $1",
            &[&id.to_string()],
            |r| {
                let n = |i: usize| r.try_get::<_, i64>(i).map(|n| n.max(0) as u64);
                let receipt: Option<String> = r.try_get(6)?;
                let signature: Option<String> = r.try_get(7)?;
                let public_key: Option<String> = r.try_get(8)?;
                Ok(PurgeRecord {
                    tenant: id,
                    started_at: r.try_get(0)?,
                    files: n(1)?,
                    directories: n(2)?,
                    records: n(3)?,
                    bytes: n(4)?,
                    finished_at: r.try_get(5)?,
                    receipt: match (receipt, signature, public_key) {
                        (Some(document), Some(signature), Some(public_key)) => Some(Signed {
                            document,
                            signature,
                            public_key,
                        }),
                        _ => None,
                    },
                })
            },
        )
    }

    fn finish_purge(&self, id: TenantId, receipt: &Signed, now: &str) -> Result<(), ControlError> {
        self.exec(
            "UPDATE purges SET finished_at = $2, receipt = $3, signature = $4, public_key = $5
             WHERE tenant_id = $1",
            &[
                &id.to_string(),
                &now,
                &receipt.document,
                &receipt.signature,
                &receipt.public_key,
            ],
        )?;
        Ok(())
    }

    fn lease(&self, name: &str) -> Result<Option<(String, String)>, ControlError> {
        self.one(
            "SELECT holder, expires_at FROM leases WHERE name = $1",
            &[&name],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
    }

    fn put_lease(&self, name: &str, holder: &str, expires_at: &str) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                 expires_at = excluded.expires_at",
            &[&name, &holder, &expires_at],
        )?;
        Ok(())
    }

    fn delete_lease(&self, name: &str, holder: &str) -> Result<(), ControlError> {
        self.exec(
            "DELETE FROM leases WHERE name = $1 AND holder = $2",
            &[&name, &holder],
        )?;
        Ok(())
    }

    fn prune_sessions(&self, before: &str) -> Result<usize, ControlError> {
        self.exec(
            "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1",
            &[&before],
        )
    }

    fn prune_resets(&self, before: &str) -> Result<usize, ControlError> {
        self.exec(
            "DELETE FROM password_resets WHERE expires_at < $1 OR used_at < $1",
            &[&before],
        )
    }

    fn backup_roots(&self) -> Result<Vec<String>, ControlError> {
        self.all(
            "SELECT path FROM backup_roots ORDER BY path COLLATE \"C\"",
            &[],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn add_backup_root(&self, path: &str, now: &str) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO backup_roots (path, registered_at) VALUES ($1, $2)
             ON CONFLICT (path) DO NOTHING",
            &[&path, &now],
        )?;
        Ok(())
    }
}

impl PlacementTx for Tx<'_> {
    fn place_tenant(&self, id: TenantId, node: &str, now: &str) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO placements (tenant_id, node, epoch, updated_at) VALUES ($1, $2, 1, $3)",
            &[&id.to_string(), &node, &now],
        )?;
        Ok(())
    }

    fn fence_placement(
        &self,
        id: TenantId,
        from: &Placement,
        now: &str,
    ) -> Result<bool, ControlError> {
        Ok(self.exec(
            "UPDATE placements
             SET epoch = CASE WHEN fenced_at IS NULL THEN epoch + 1 ELSE epoch END,
                 fenced_at = COALESCE(fenced_at, $4), updated_at = $4
             WHERE tenant_id = $1 AND node = $2 AND epoch = $3",
            &[&id.to_string(), &from.node, &from.epoch, &now],
        )? == 1)
    }

    fn replace_placement(
        &self,
        id: TenantId,
        from: &Placement,
        to: &str,
        now: &str,
    ) -> Result<bool, ControlError> {
        Ok(self.exec(
            "UPDATE placements SET node = $4, epoch = epoch + 1, fenced_at = NULL, updated_at = $5
             WHERE tenant_id = $1 AND node = $2 AND epoch = $3
               AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = $1
                           AND t.state NOT IN ('purging', 'purged'))",
            &[&id.to_string(), &from.node, &from.epoch, &to, &now],
        )? == 1)
    }

    fn unfence_placement(
        &self,
        id: TenantId,
        from: &Placement,
        now: &str,
    ) -> Result<bool, ControlError> {
        Ok(self.exec(
            "UPDATE placements SET epoch = epoch + 1, fenced_at = NULL, updated_at = $4
             WHERE tenant_id = $1 AND node = $2 AND epoch = $3 AND fenced_at IS NOT NULL",
            &[&id.to_string(), &from.node, &from.epoch, &now],
        )? == 1)
    }

    fn register_node(&self, name: &str, url: &str, now: &str) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO nodes (name, url, started_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET url = $2, started_at = $3",
            &[&name, &url, &now],
        )?;
        Ok(())
    }

    fn node_url(&self, name: &str) -> Result<Option<String>, ControlError> {
        self.one("SELECT url FROM nodes WHERE name = $1", &[&name], |row| {
            Ok(row.try_get(0)?)
        })
    }
}

impl RightsTx for Tx<'_> {
    fn update_profile(
        &self,
        id: UserId,
        name: Option<&str>,
        email: Option<&Email>,
    ) -> Result<(), ControlError> {
        self.exec_unique(
            "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email)
             WHERE id = $1",
            &[&id.to_string(), &name, &email.map(Email::as_str)],
            ControlError::EmailTaken,
        )?;
        Ok(())
    }

    fn user_logins(&self, id: UserId, limit: u32) -> Result<Vec<LoginEvent>, ControlError> {
        self.all(
            "SELECT l.user_id, u.email, l.at, l.ip, l.success FROM login_events l
             JOIN users u ON u.id = l.user_id
             WHERE l.user_id = $1 ORDER BY l.id DESC LIMIT $2",
            &[&id.to_string(), &i64::from(limit)],
            login_from,
        )
    }
}

impl UsageTx for Tx<'_> {
    fn add_usage(
        &self,
        tenant: TenantId,
        day: &str,
        metric: &str,
        n: u64,
    ) -> Result<(), ControlError> {
        self.exec(
            "INSERT INTO usage (tenant_id, day, metric, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, day, metric) DO UPDATE SET value = usage.value + excluded.value",
            &[&tenant.to_string(), &day, &metric, &count(n)],
        )?;
        Ok(())
    }

    fn usage(&self, tenant: TenantId, from_day: &str) -> Result<Vec<UsageRow>, ControlError> {
        self.all(
            "SELECT day, metric, value FROM usage WHERE tenant_id = $1 AND day >= $2
             ORDER BY day, metric COLLATE \"C\"",
            &[&tenant.to_string(), &from_day],
            |r| {
                Ok(UsageRow {
                    day: r.try_get(0)?,
                    metric: r.try_get(1)?,
                    value: r.try_get::<_, i64>(2)?.max(0) as u64,
                })
            },
        )
    }

    fn prune_usage(&self, before: &str) -> Result<usize, ControlError> {
        let day = &before[..before.len().min(10)];
        let mut gone = self.exec("DELETE FROM usage WHERE day < $1", &[&day])?;
        gone += self.exec(
            "DELETE FROM membership_periods WHERE until IS NOT NULL AND until < $1",
            &[&before],
        )?;
        gone += self.exec("DELETE FROM login_events WHERE at < $1", &[&before])?;
        Ok(gone)
    }
}
