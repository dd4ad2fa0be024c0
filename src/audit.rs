//! The append-only, hash-chained audit log (`<data-root>/audit.db`).
//!
//! Every mutation and security event becomes one `AuditEvent` with a closed `AuditAction`.
//! Each row carries the SHA-256 of the previous row, so a deleted, inserted or edited row
//! breaks the chain and `verify` finds it. The log outlives vaults, so it must never hold
//! vault content: a target (a path, a record id) enters the hash only through its own
//! SHA-256 and can be redacted when the tenant is purged without breaking the chain.
//! This module depends on nothing above it; it never decides whether an action is allowed.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::{self, DbError, Migration, migration};
use crate::vault::path::{TenantId, UserId};

pub const MIGRATIONS: &[Migration] = &[migration!(1, "audit", "0001_audit.sql")];

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

macro_rules! actions {
    ($($variant:ident => $name:literal,)*) => {
        /// What happened. A closed set: the names are stable and documented in the layout
        /// spec, because auditors and the export's `audit.jsonl` rely on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum AuditAction { $($variant,)* }

        impl AuditAction {
            pub const ALL: &[AuditAction] = &[$(AuditAction::$variant,)*];
            pub fn as_str(&self) -> &'static str {
                match self { $(AuditAction::$variant => $name,)* }
            }
            pub fn parse(name: &str) -> Option<AuditAction> {
                match name { $($name => Some(AuditAction::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    DataRootInit => "data_root.init",
    TenantCreate => "tenant.create",
    TenantUpdate => "tenant.update",
    TenantStateChange => "tenant.state_change",
    UserCreate => "user.create",
    UserUpdate => "user.update",
    UserDelete => "user.delete",
    PasswordChange => "user.password_change",
    PasswordUpgrade => "user.password_upgrade",
    MemberAdd => "member.add",
    MemberRoleChange => "member.role_change",
    MemberRemove => "member.remove",
    FileWrite => "file.write",
    FileRead => "file.read",
    FileMove => "file.move",
    FileDelete => "file.delete",
    FileRestore => "file.restore",
    FilePurge => "file.purge",
    DirCreate => "dir.create",
    RecordCreate => "record.create",
    RecordUpdate => "record.update",
    RecordDelete => "record.delete",
    VaultReindex => "vault.reindex",
    VaultReconcile => "vault.reconcile",
    Login => "auth.login",
    LoginFailed => "auth.login_failed",
    Logout => "auth.logout",
    SessionRevoke => "auth.session_revoke",
    TokenCreate => "token.create",
    TokenRevoke => "token.revoke",
    AccessDenied => "access.denied",
    ExportStart => "export.start",
    ExportFinish => "export.finish",
    Import => "vault.import",
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User(UserId),
    /// A program using an API token (by token id).
    Token(String),
    /// An operator at the command line (with the OS user name when known).
    Operator(Option<String>),
    /// Coffer itself (lifecycle workers, reconcile).
    System,
    /// Nobody authenticated (failed logins).
    Anonymous,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::Token(id) => write!(f, "token:{id}"),
            Actor::Operator(Some(name)) => write!(f, "operator:cli:{name}"),
            Actor::Operator(None) => write!(f, "operator:cli"),
            Actor::System => f.write_str("system"),
            Actor::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// Who is acting and from where: what every mutation passes down so that its audit
/// event names the right actor. The auth layer (or the operator CLI) builds it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub ip: Option<String>,
}

impl Caller {
    pub fn new(actor: Actor) -> Self {
        Caller { actor, ip: None }
    }
    pub fn system() -> Self {
        Caller::new(Actor::System)
    }
    /// An event of this caller, with its actor and IP filled in.
    pub fn event(&self, action: AuditAction) -> AuditEvent {
        AuditEvent::new(action, self.actor.clone()).ip(self.ip.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub tenant: Option<TenantId>,
    pub actor: Actor,
    pub ip: Option<String>,
    pub action: AuditAction,
    pub target: Option<String>,
    pub outcome: Outcome,
    /// A small JSON object of non-content facts (sizes, roles, counts).
    pub detail: Option<serde_json::Value>,
}

impl AuditEvent {
    pub fn new(action: AuditAction, actor: Actor) -> Self {
        AuditEvent {
            tenant: None,
            actor,
            ip: None,
            action,
            target: None,
            outcome: Outcome::Success,
            detail: None,
        }
    }
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// A stored event, as read back (for `audit.jsonl` and the auditor role).
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: String,
    pub tenant_id: Option<String>,
    pub actor: String,
    pub ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<serde_json::Value>,
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("audit database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub events: u64,
    /// The first broken row and why, or `None` if the chain is intact.
    pub broken: Option<(i64, String)>,
}

/// Handle to the audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    conn: Arc<Mutex<Connection>>,
}

impl AuditLog {
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        Ok(AuditLog {
            conn: Arc::new(Mutex::new(db::open(path, MIGRATIONS)?)),
        })
    }

    pub fn open_in_memory() -> Result<AuditLog, AuditError> {
        Ok(AuditLog {
            conn: Arc::new(Mutex::new(db::open_in_memory(MIGRATIONS)?)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-written row (SQLite rolls back an
        // unfinished transaction), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one event and returns its sequence number. The read of the previous hash
    /// and the insert share one `BEGIN IMMEDIATE` transaction, so two processes appending
    /// at once still form one chain.
    pub fn append(&self, event: &AuditEvent) -> Result<i64, AuditError> {
        let conn = self.lock();
        let tx =
            rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let row = Row {
            seq,
            at: db::now(),
            tenant_id: event.tenant.map(|t| t.to_string()),
            actor: event.actor.to_string(),
            ip: event.ip.clone(),
            action: event.action.as_str().to_owned(),
            target_hash: event.target.as_deref().map(sha256_hex),
            outcome: event.outcome.as_str().to_owned(),
            detail: event.detail.as_ref().map(|d| d.to_string()),
            prev_hash,
        };
        let hash = row.hash();
        tx.execute(
            "INSERT INTO events (seq, at, tenant_id, actor, ip, action, target, target_hash,
                                 outcome, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                row.seq,
                row.at,
                row.tenant_id,
                row.actor,
                row.ip,
                row.action,
                event.target,
                row.target_hash,
                row.outcome,
                row.detail,
                row.prev_hash,
                hash
            ],
        )?;
        tx.commit()?;
        Ok(seq)
    }

    /// Walks the whole chain and reports the first row that does not match.
    pub fn verify(&self) -> Result<ChainReport, AuditError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT seq, at, tenant_id, actor, ip, action, target, target_hash, outcome, detail,
                    prev_hash, hash FROM events ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut expected_prev = GENESIS_HASH.to_owned();
        let mut expected_seq = 1i64;
        let mut count = 0u64;
        while let Some(r) = rows.next()? {
            count += 1;
            let target: Option<String> = r.get(6)?;
            let stored_hash: String = r.get(11)?;
            let row = Row {
                seq: r.get(0)?,
                at: r.get(1)?,
                tenant_id: r.get(2)?,
                actor: r.get(3)?,
                ip: r.get(4)?,
                action: r.get(5)?,
                target_hash: r.get(7)?,
                outcome: r.get(8)?,
                detail: r.get(9)?,
                prev_hash: r.get(10)?,
            };
            let problem = if row.seq != expected_seq {
                Some(format!("expected sequence number {expected_seq}"))
            } else if row.prev_hash != expected_prev {
                Some("previous-hash link does not match the previous row".to_owned())
            } else if row.hash() != stored_hash {
                Some("row content does not match its hash".to_owned())
            } else if let Some(t) = &target {
                (row.target_hash.as_deref() != Some(sha256_hex(t).as_str()))
                    .then(|| "target does not match its hash".to_owned())
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok(ChainReport {
                    events: count,
                    broken: Some((row.seq, problem)),
                });
            }
            expected_prev = stored_hash;
            expected_seq += 1;
        }
        Ok(ChainReport {
            events: count,
            broken: None,
        })
    }

    /// A tenant's events in order, starting after `after_seq`, at most `limit`.
    pub fn events_for_tenant(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AuditError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, tenant_id, actor, ip, action, target, outcome, detail, hash
             FROM events WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![tenant.to_string(), after_seq, limit], |r| {
            let detail: Option<String> = r.get(8)?;
            Ok(StoredEvent {
                seq: r.get(0)?,
                at: r.get(1)?,
                tenant_id: r.get(2)?,
                actor: r.get(3)?,
                ip: r.get(4)?,
                action: r.get(5)?,
                target: r.get(6)?,
                outcome: r.get(7)?,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                hash: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The sequence number of the tenant's newest event (0 if none).
    pub fn last_seq_for_tenant(&self, tenant: TenantId) -> Result<i64, AuditError> {
        let conn = self.lock();
        Ok(conn
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = ?1")?
            .query_row([tenant.to_string()], |r| r.get(0))?)
    }

    /// The time of event `seq`, if it exists.
    pub fn event_time(&self, seq: i64) -> Result<Option<String>, AuditError> {
        let conn = self.lock();
        Ok(conn
            .prepare_cached("SELECT at FROM events WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))
            .optional()?)
    }

    /// Removes the targets (paths, record ids) of a purged tenant's events; the chain still
    /// verifies because only `target_hash` is hashed. Returns the number of rows redacted.
    pub fn redact_tenant_targets(&self, tenant: TenantId) -> Result<usize, AuditError> {
        let conn = self.lock();
        Ok(conn.execute(
            "UPDATE events SET target = NULL WHERE tenant_id = ?1 AND target IS NOT NULL",
            [tenant.to_string()],
        )?)
    }

    /// Test and drill support: direct access to the connection, to show that tampering is
    /// detected. Not used by the service.
    #[doc(hidden)]
    pub fn raw_connection_unchecked(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.lock()
    }
}

/// The fields that enter a row's hash.
struct Row {
    seq: i64,
    at: String,
    tenant_id: Option<String>,
    actor: String,
    ip: Option<String>,
    action: String,
    target_hash: Option<String>,
    outcome: String,
    detail: Option<String>,
    prev_hash: String,
}

impl Row {
    /// SHA-256 over the JSON array of the fields in a fixed order: unambiguous (JSON quotes
    /// and escapes every string) and reproducible by an auditor without Coffer.
    fn hash(&self) -> String {
        let canonical = serde_json::json!([
            self.seq,
            self.at,
            self.tenant_id,
            self.actor,
            self.ip,
            self.action,
            self.target_hash,
            self.outcome,
            self.detail,
            self.prev_hash
        ]);
        sha256_hex(&canonical.to_string())
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(n: usize) -> AuditLog {
        let log = AuditLog::open_in_memory().unwrap();
        let tenant = TenantId::generate();
        for i in 0..n {
            log.append(
                &AuditEvent::new(AuditAction::FileWrite, Actor::System)
                    .tenant(tenant)
                    .target(format!("docs/{i}.txt")),
            )
            .unwrap();
        }
        log
    }

    #[test]
    fn intact_chain_verifies() {
        let log = log_with(5);
        assert_eq!(
            log.verify().unwrap(),
            ChainReport {
                events: 5,
                broken: None
            }
        );
    }

    #[test]
    fn update_and_delete_are_refused_by_the_database() {
        let log = log_with(3);
        let conn = log.raw_connection_unchecked();
        assert!(
            conn.execute("DELETE FROM events WHERE seq = 2", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE events SET actor = 'x' WHERE seq = 2", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE events SET target = 'other' WHERE seq = 2", [])
                .is_err()
        );
    }

    #[test]
    fn tampering_is_detected() {
        let log = log_with(4);
        {
            let conn = log.raw_connection_unchecked();
            conn.execute_batch(
                "DROP TRIGGER events_no_update; UPDATE events SET outcome = 'denied' WHERE seq = 3;",
            )
            .unwrap();
        }
        let report = log.verify().unwrap();
        assert_eq!(report.broken.as_ref().map(|b| b.0), Some(3));

        let log = log_with(4);
        {
            let conn = log.raw_connection_unchecked();
            conn.execute_batch("DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq = 2;")
                .unwrap();
        }
        assert_eq!(log.verify().unwrap().broken.map(|b| b.0), Some(3));
    }

    #[test]
    fn redaction_keeps_the_chain() {
        let log = AuditLog::open_in_memory().unwrap();
        let a = TenantId::generate();
        let b = TenantId::generate();
        for t in [a, b, a] {
            log.append(
                &AuditEvent::new(AuditAction::FileWrite, Actor::System)
                    .tenant(t)
                    .target("secret-plans.pdf"),
            )
            .unwrap();
        }
        assert_eq!(log.redact_tenant_targets(a).unwrap(), 2);
        assert!(log.verify().unwrap().broken.is_none());
        let b_events = log.events_for_tenant(b, 0, 10).unwrap();
        assert_eq!(b_events.len(), 1);
        assert_eq!(b_events[0].target.as_deref(), Some("secret-plans.pdf"));
        assert!(
            log.events_for_tenant(a, 0, 10)
                .unwrap()
                .iter()
                .all(|e| e.target.is_none())
        );
    }

    #[test]
    fn action_names_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
    }
}
