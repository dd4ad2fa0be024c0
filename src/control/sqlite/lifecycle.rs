//! The SQLite side of the tenant lifecycle: states and dates, tombstones, purge rows,
//! leases and pruning (`LifecycleTx`).

use rusqlite::{OptionalExtension, params};

use super::Tx;
use crate::control::ControlError;
use crate::control::model::{Lifecycle, PurgeRecord, TenantState};
use crate::control::store::LifecycleTx;
use crate::names::{TenantId, UserId};
use crate::signing::Signed;

impl LifecycleTx for Tx<'_> {
    fn set_lifecycle(
        &self,
        id: TenantId,
        state: TenantState,
        l: &Lifecycle,
    ) -> Result<(), ControlError> {
        let changed = self.conn.execute(
            "UPDATE tenants SET state = ?2, state_changed_at = ?3, cancelled_at = ?4,
                 purge_after = ?5, legal_hold_at = ?6, purged_at = ?7
             WHERE id = ?1",
            params![
                id.to_string(),
                state.as_str(),
                l.state_changed_at,
                l.cancelled_at,
                l.purge_after,
                l.legal_hold_at,
                l.purged_at
            ],
        )?;
        if changed == 0 {
            return Err(ControlError::NotFound);
        }
        Ok(())
    }

    fn tombstone_tenant(&self, id: TenantId) -> Result<(), ControlError> {
        self.conn.execute(
            "UPDATE tenants SET slug = 'purged-' || id, name = '' WHERE id = ?1",
            params![id.to_string()],
        )?;
        Ok(())
    }

    fn delete_tenant_access(&self, id: TenantId, now: &str) -> Result<Vec<UserId>, ControlError> {
        let tenant = id.to_string();
        self.conn.execute(
            "UPDATE membership_periods SET until = ?2 WHERE tenant_id = ?1 AND until IS NULL",
            params![tenant, now],
        )?;
        let members: Vec<String> = self
            .conn
            .prepare("SELECT user_id FROM memberships WHERE tenant_id = ?1 ORDER BY user_id")?
            .query_map(params![tenant], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        self.conn.execute(
            "DELETE FROM api_tokens WHERE tenant_id = ?1",
            params![tenant],
        )?;
        self.conn.execute(
            "DELETE FROM memberships WHERE tenant_id = ?1",
            params![tenant],
        )?;
        Ok(members
            .iter()
            .filter_map(|m| UserId::parse(m).ok())
            .collect())
    }

    fn insert_purge(&self, p: &PurgeRecord) -> Result<(), ControlError> {
        self.conn.execute(
            "INSERT INTO purges (tenant_id, started_at, files, directories, records, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                p.tenant.to_string(),
                p.started_at,
                p.files as i64,
                p.directories as i64,
                p.records as i64,
                p.bytes as i64
            ],
        )?;
        Ok(())
    }

    fn purge(&self, id: TenantId) -> Result<Option<PurgeRecord>, ControlError> {
        Ok(self
            .conn
            .query_row(
                "SELECT started_at, files, directories, records, bytes, finished_at, receipt,
                        signature, public_key
                 FROM purges WHERE tenant_id = ?1",
                params![id.to_string()],
                |r| {
                    let count = |i: usize| r.get::<_, i64>(i).map(|n| n.max(0) as u64);
                    let receipt: Option<String> = r.get(6)?;
                    let signature: Option<String> = r.get(7)?;
                    let public_key: Option<String> = r.get(8)?;
                    Ok(PurgeRecord {
                        tenant: id,
                        started_at: r.get(0)?,
                        files: count(1)?,
                        directories: count(2)?,
                        records: count(3)?,
                        bytes: count(4)?,
                        finished_at: r.get(5)?,
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
            .optional()?)
    }

    fn finish_purge(&self, id: TenantId, receipt: &Signed, now: &str) -> Result<(), ControlError> {
        self.conn.execute(
            "UPDATE purges SET finished_at = ?2, receipt = ?3, signature = ?4, public_key = ?5
             WHERE tenant_id = ?1",
            params![
                id.to_string(),
                now,
                receipt.document,
                receipt.signature,
                receipt.public_key
            ],
        )?;
        Ok(())
    }

    fn lease(&self, name: &str) -> Result<Option<(String, String)>, ControlError> {
        Ok(self
            .conn
            .query_row(
                "SELECT holder, expires_at FROM leases WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn put_lease(&self, name: &str, holder: &str, expires_at: &str) -> Result<(), ControlError> {
        self.conn.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                 expires_at = excluded.expires_at",
            params![name, holder, expires_at],
        )?;
        Ok(())
    }

    fn delete_lease(&self, name: &str, holder: &str) -> Result<(), ControlError> {
        self.conn.execute(
            "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
            params![name, holder],
        )?;
        Ok(())
    }

    fn prune_sessions(&self, before: &str) -> Result<usize, ControlError> {
        Ok(self.conn.execute(
            "DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1",
            params![before],
        )?)
    }

    fn prune_resets(&self, before: &str) -> Result<usize, ControlError> {
        Ok(self.conn.execute(
            "DELETE FROM password_resets WHERE expires_at < ?1 OR used_at < ?1",
            params![before],
        )?)
    }

    fn backup_roots(&self) -> Result<Vec<String>, ControlError> {
        Ok(self
            .conn
            .prepare("SELECT path FROM backup_roots ORDER BY path")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn add_backup_root(&self, path: &str, now: &str) -> Result<(), ControlError> {
        self.conn.execute(
            "INSERT INTO backup_roots (path, registered_at) VALUES (?1, ?2)
             ON CONFLICT (path) DO NOTHING",
            params![path, now],
        )?;
        Ok(())
    }
}
