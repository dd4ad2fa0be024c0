//! Reading the audit log: one query shape for every reader. Owners and auditors read
//! their tenant's events, operators all events, a person their own account's events (the
//! ones without a tenant: logins, password and profile changes); each with optional
//! filters (time range, action, actor) and cursor pagination by sequence number. The
//! SQL is written here once, for both stores; only the placeholder style differs.

use super::{EVENT_COLUMNS, sha256_hex};
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

/// A value bound to a query, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(i64),
    Text(String),
}

impl EventQuery<'_> {
    /// The SELECT for this query, its placeholders numbered by `mark` (`?1` for SQLite,
    /// `$1` for PostgreSQL), and the values to bind in order.
    pub fn to_sql(&self, mark: fn(usize) -> String) -> (String, Vec<Arg>) {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Arg> = Vec::new();
        let mut bind = |clause: &str, value: Arg| {
            values.push(value);
            clause.replace('?', &mark(values.len()))
        };
        clauses.push(bind("seq > ?", Arg::Int(self.after_seq)));
        match self.scope {
            Scope::All => {}
            Scope::Tenant(t) => clauses.push(bind("tenant_id = ?", Arg::Text(t.to_string()))),
            Scope::Account(u) => {
                let actor = bind("actor = ?", Arg::Text(format!("user:{u}")));
                let target = bind("target_hash = ?", Arg::Text(sha256_hex(&u.to_string())));
                clauses.push(format!("tenant_id IS NULL AND ({actor} OR {target})"));
            }
        }
        for (clause, value) in [
            ("at >= ?", self.since),
            ("at < ?", self.until),
            ("action = ?", self.action),
            ("actor = ?", self.actor),
        ] {
            if let Some(value) = value {
                clauses.push(bind(clause, Arg::Text(value.to_owned())));
            }
        }
        let limit = bind("?", Arg::Int(i64::from(self.limit)));
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY seq LIMIT {limit}",
            clauses.join(" AND ")
        );
        (sql, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_values_in_order() {
        let user = UserId::generate();
        let q = EventQuery {
            scope: Scope::Account(user),
            after_seq: 7,
            limit: 10,
            action: Some("auth.login"),
            ..Default::default()
        };
        let (sql, values) = q.to_sql(|n| format!("${n}"));
        assert!(
            sql.ends_with(
                "WHERE seq > $1 AND tenant_id IS NULL AND (actor = $2 OR target_hash = $3) \
                 AND action = $4 ORDER BY seq LIMIT $5"
            ),
            "{sql}"
        );
        assert_eq!(values.len(), 5);
        assert_eq!(values[0], Arg::Int(7));
        assert_eq!(values[3], Arg::Text("auth.login".into()));
        assert_eq!(values[4], Arg::Int(10));
    }
}
