//! Reading the audit log: one query shape for every reader. Owners and auditors read
//! their tenant's events, operators all events, a person their own account's events (the
//! ones without a tenant: logins, password and profile changes); each with optional
//! filters (time range, action, actor) and cursor pagination by sequence number.

use rusqlite::types::ToSql;

use super::{AuditError, AuditLog, EVENT_COLUMNS, StoredEvent, sha256_hex, stored_from_row};
use crate::names::{TenantId, UserId};

/// Whose events.
#[derive(Debug, Clone, Copy, Default)]
pub enum Scope {
    /// Every event (operators).
    #[default]
    All,
    /// One tenant's events.
    Tenant(TenantId),
    /// One person's account events: no tenant, and they acted or were acted on.
    Account(UserId),
}

/// Which events to read: in sequence order, after `after_seq`, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery<'a> {
    pub scope: Scope,
    pub after_seq: i64,
    pub limit: u32,
    /// Events at or after this time (RFC 3339, as stored).
    pub since: Option<&'a str>,
    /// Events before this time.
    pub until: Option<&'a str>,
    /// One action name (`file.write`).
    pub action: Option<&'a str>,
    /// One actor (`user:<id>`, `token:<id>`, `operator:cli`, `system`).
    pub actor: Option<&'a str>,
}

impl AuditLog {
    /// The events `q` selects.
    pub fn query(&self, q: &EventQuery<'_>) -> Result<Vec<StoredEvent>, AuditError> {
        let mut clauses = vec!["seq > ?".to_owned()];
        let mut values: Vec<Box<dyn ToSql>> = vec![Box::new(q.after_seq)];
        match q.scope {
            Scope::All => {}
            Scope::Tenant(t) => {
                clauses.push("tenant_id = ?".into());
                values.push(Box::new(t.to_string()));
            }
            Scope::Account(u) => {
                clauses.push("tenant_id IS NULL AND (actor = ? OR target_hash = ?)".into());
                values.push(Box::new(format!("user:{u}")));
                values.push(Box::new(sha256_hex(&u.to_string())));
            }
        }
        for (clause, value) in [
            ("at >= ?", q.since),
            ("at < ?", q.until),
            ("action = ?", q.action),
            ("actor = ?", q.actor),
        ] {
            if let Some(value) = value {
                clauses.push(clause.into());
                values.push(Box::new(value.to_owned()));
            }
        }
        values.push(Box::new(q.limit));
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY seq LIMIT ?",
            clauses.join(" AND ")
        );
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            rusqlite::params_from_iter(values.iter().map(|v| v.as_ref())),
            stored_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
