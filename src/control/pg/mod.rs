//! The PostgreSQL implementation of the control-plane store (`control = "postgres://..."`),
//! for several Coffer nodes sharing one set of accounts, sessions and memberships.
//!
//! It keeps the guarantees the rules rely on with SQLite:
//! - every write transaction first takes one transaction-scoped advisory lock, so control
//!   writes from every node run one at a time, as SQLite's `BEGIN IMMEDIATE` makes them
//!   on one machine (two owners demoting each other from two nodes still leave one);
//! - a read runs in one `REPEATABLE READ` snapshot;
//! - a write that changes an authorization fact sends `NOTIFY coffer_control` inside its
//!   transaction (PostgreSQL delivers it only on commit), naming the schema so control
//!   planes sharing one database do not hear each other. A listener task counts the
//!   notifications: that count is the external version authorization caches compare, so
//!   a revocation on one node empties the caches of every node as soon as the
//!   notification arrives. While the listener is not connected there is no version, and
//!   the caches are bypassed (every request reads the database).
//!
//! Timestamps are text as in SQLite; orderings use the "C" collation so both backends
//! sort alike.

mod audit;
mod lifecycle;
mod pool;
mod snapshot;
mod tables;
mod tls;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, IsolationLevel};

use super::ControlError;
use super::store::{ControlStore, TxWork};
use pool::Pool;

/// The schema, in order (PostgreSQL runs DDL inside the migration's transaction).
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "0001_control.sql",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/vault-layout/migrations/control-postgres/0001_control.sql"
        )),
    ),
    (
        2,
        "0002_nodes.sql",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/vault-layout/migrations/control-postgres/0002_nodes.sql"
        )),
    ),
    (
        3,
        "0003_audit.sql",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/vault-layout/migrations/control-postgres/0003_audit.sql"
        )),
    ),
];

/// Connections for control-plane reads and writes.
const CONTROL_POOL_SIZE: usize = 8;
/// Connections for audit appends and reads: a pool of their own, because a control
/// write appends its events while it holds a control connection and the write lock;
/// sharing one pool, eight such writes could hold every connection and wait for a
/// ninth forever.
const AUDIT_POOL_SIZE: usize = 4;

/// The advisory locks: a class ("coffer" in ASCII, then 1 for control writes, 2 for
/// migrations and 3 for audit appends) and, as the second key, a hash of the schema, so that control planes
/// sharing one database (in different schemas) never wait for each other.
const WRITE_LOCK: i32 = 0x636f_0001;
const MIGRATION_LOCK: i32 = 0x636f_0002;
const AUDIT_LOCK: i32 = 0x636f_0003;
const TAKE_LOCK: &str = "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))";

/// The channel that announces committed changes to authorization facts.
const CHANNEL: &str = "coffer_control";

/// TCP keepalives on every connection (see `PostgresControl::open`).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// How long the listener waits before reconnecting after losing its connection.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Runs a database future to completion on the calling thread. The connections are
/// driven by the store's own runtime, so this works from any thread, inside a tokio
/// runtime or not, like the blocking SQLite calls it stands beside.
pub(super) fn wait<F: std::future::Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

pub struct PostgresControl {
    pool: Pool,
    listener: Arc<Listener>,
    audit: Arc<audit::PostgresAudit>,
}

/// What the listener task shares with the store.
#[derive(Default)]
struct Listener {
    /// Notifications seen (and connections made, each of which may have missed some).
    version: AtomicI64,
    connected: AtomicBool,
}

impl PostgresControl {
    /// Connects to `url` (a libpq URL or key=value string), brings the schema up to date
    /// and starts the change listener.
    pub fn open(url: &str, ca_file: Option<&Path>) -> Result<Self, ControlError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                ControlError::Postgres(format!("control URL: {e}"))
            })?;
        // A database that vanishes without closing its connections (a host down, a
        // firewall dropping idle flows) is noticed within about half a minute, by the
        // pool and by the change listener alike: the listener then counts itself
        // disconnected and caches are bypassed.
        config
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
        let tls = tls::connector(ca_file, &mut config)?;
        let pool = Pool::new(config.clone(), tls.clone(), CONTROL_POOL_SIZE)?;
        migrate(&mut *pool.get()?)?;
        let audit = Arc::new(audit::PostgresAudit::new(pool.sibling(AUDIT_POOL_SIZE)?));
        let listener = Arc::new(Listener::default());
        pool.runtime().spawn(listen(config, tls, listener.clone()));
        Ok(PostgresControl {
            pool,
            listener,
            audit,
        })
    }

    /// The cluster's one audit chain, in this database.
    pub fn audit_store(&self) -> Arc<dyn crate::audit::store::AuditStore> {
        self.audit.clone()
    }
}

/// Applies the migrations this build knows and the database lacks, one node at a time.
fn migrate(client: &mut tokio_postgres::Client) -> Result<(), ControlError> {
    wait(async {
        let tx = client.transaction().await?;
        tx.execute(TAKE_LOCK, &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS coffer_schema (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
        let found: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM coffer_schema", &[])
            .await?
            .try_get(0)?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if found as u32 > known {
            return Err(ControlError::Postgres(format!(
                "the control database's schema version {found} is newer than this build of \
                 Coffer knows ({known})"
            )));
        }
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found as u32) {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO coffer_schema (version, name) VALUES ($1, $2)",
                &[&(*version as i32), name],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    })
}

/// The listener task: counts change notifications while connected; when the connection
/// is lost it marks itself disconnected (caches bypassed), waits and reconnects. It ends
/// with the store's runtime.
async fn listen(config: tokio_postgres::Config, tls: tls::Tls, shared: Arc<Listener>) {
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let listening = async {
                    let mut messages =
                        std::pin::pin!(futures_util::stream::poll_fn(
                            |cx| connection.poll_message(cx)
                        ));
                    let subscribe = async {
                        let schema: String = client
                            .query_one("SELECT current_schema()", &[])
                            .await?
                            .try_get(0)?;
                        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
                        Ok::<_, tokio_postgres::Error>(schema)
                    };
                    let mut subscribe = std::pin::pin!(subscribe);
                    // The queries need the connection driven while they run.
                    let schema = loop {
                        tokio::select! {
                            done = &mut subscribe => break done?,
                            message = futures_util::StreamExt::next(&mut messages) => {
                                if message.transpose()?.is_none() { return Ok(()); }
                            }
                        }
                    };
                    // Anything committed while disconnected was not counted: count a change.
                    shared.version.fetch_add(1, Ordering::SeqCst);
                    shared.connected.store(true, Ordering::SeqCst);
                    while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                        // Only this control plane's: others may share the database.
                        if let AsyncMessage::Notification(n) = message?
                            && n.payload() == schema
                        {
                            shared.version.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok::<(), tokio_postgres::Error>(())
                };
                if let Err(e) = listening.await {
                    tracing::warn!(error = %e, "control-plane change listener disconnected");
                }
            }
            Err(e) => tracing::warn!(error = %e, "control-plane change listener cannot connect"),
        }
        shared.connected.store(false, Ordering::SeqCst);
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

/// A read-only transaction that sees one moment of the database throughout.
fn one_snapshot(
    client: &mut tokio_postgres::Client,
) -> Result<tokio_postgres::Transaction<'_>, ControlError> {
    Ok(wait(
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start(),
    )?)
}

impl ControlStore for PostgresControl {
    fn read(&self, work: &mut TxWork<'_>) -> Result<(), ControlError> {
        let mut client = self.pool.get()?;
        let tx = tables::Tx::new(one_snapshot(&mut client)?);
        work(&tx)?;
        tx.finish()
    }

    fn write(&self, announce: bool, work: &mut TxWork<'_>) -> Result<(), ControlError> {
        let mut client = self.pool.get()?;
        let tx = wait(async {
            let tx = client.transaction().await?;
            tx.execute(TAKE_LOCK, &[&WRITE_LOCK]).await?;
            if announce {
                tx.execute("SELECT pg_notify($1, current_schema())", &[&CHANNEL])
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(tx)
        })?;
        let tx = tables::Tx::new(tx);
        work(&tx)?;
        tx.finish()
    }

    fn shared_secret(&self, name: &str, candidate: &str) -> Result<Option<String>, ControlError> {
        let client = self.pool.get()?;
        wait(client.execute(
            "INSERT INTO cluster_secrets (name, value, created_at)
             VALUES ($1, $2, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))
             ON CONFLICT (name) DO NOTHING",
            &[&name, &candidate],
        ))?;
        let row = wait(client.query_one(
            "SELECT value FROM cluster_secrets WHERE name = $1",
            &[&name],
        ))?;
        Ok(Some(row.try_get(0)?))
    }

    fn database_time(&self) -> Result<Option<String>, ControlError> {
        let client = self.pool.get()?;
        let row = wait(client.query_one(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
            &[],
        ))?;
        Ok(Some(row.try_get(0)?))
    }

    fn schema_version(&self) -> Result<(u32, u32), ControlError> {
        let client = self.pool.get()?;
        let found: i32 =
            wait(client.query_one("SELECT MAX(version) FROM coffer_schema", &[]))?.try_get(0)?;
        Ok((found.max(0) as u32, MIGRATIONS.last().map_or(0, |m| m.0)))
    }

    fn snapshot_into(&self, path: &Path) -> Result<(), ControlError> {
        let mut client = self.pool.get()?;
        snapshot::copy_into_sqlite(one_snapshot(&mut client)?, path)
    }

    fn peek_external_version(&self) -> Option<i64> {
        self.listener
            .connected
            .load(Ordering::SeqCst)
            .then(|| self.listener.version.load(Ordering::SeqCst))
    }
}

/// Parameters of a statement.
type Params<'a> = [&'a (dyn ToSql + Sync)];
