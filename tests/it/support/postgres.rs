//! The PostgreSQL the tests put control planes on: `COFFER_TEST_POSTGRES` names a
//! database (`.ci/postgres start` makes one); each control plane gets a fresh schema in
//! it, so tests running at once never see each other's rows.
//!
//! `COFFER_TEST_CONTROL=postgres` puts every `World` of the suite on PostgreSQL (CI runs
//! the suite once per backend). Without `COFFER_TEST_POSTGRES` the PostgreSQL-only tests
//! say they were skipped, unless `COFFER_REQUIRE_POSTGRES` is set (CI), where that is a
//! failure.

use std::sync::atomic::{AtomicU64, Ordering};

/// The base URL, or `None` (after saying so) when PostgreSQL tests are not possible here.
pub fn base_url(test: &str) -> Option<String> {
    match std::env::var("COFFER_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("COFFER_REQUIRE_POSTGRES").is_none(),
                "{test}: COFFER_TEST_POSTGRES is not set but PostgreSQL tests are required"
            );
            eprintln!("{test}: skipped (set COFFER_TEST_POSTGRES; .ci/postgres start makes one)");
            None
        }
    }
}

/// The certificate authority of the test database's TLS certificate
/// (`COFFER_TEST_POSTGRES_CA`, `.ci/postgres start` makes `DIR/ca.pem`).
pub fn ca_file(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os("COFFER_TEST_POSTGRES_CA") {
        Some(path) if !path.is_empty() => Some(path.into()),
        _ => {
            assert!(
                std::env::var_os("COFFER_REQUIRE_POSTGRES").is_none(),
                "{test}: COFFER_TEST_POSTGRES_CA is not set but PostgreSQL tests are required"
            );
            eprintln!(
                "{test}: skipped (set COFFER_TEST_POSTGRES_CA to DIR/ca.pem of .ci/postgres)"
            );
            None
        }
    }
}

/// Whether the whole suite runs its control planes on PostgreSQL.
pub fn suite_on_postgres() -> bool {
    std::env::var("COFFER_TEST_CONTROL").is_ok_and(|v| v == "postgres")
}

/// A `control` URL for a new, empty schema in the test database.
pub fn fresh_schema(base: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        coffer::names::TenantId::generate()
    );
    execute(base, &format!("CREATE SCHEMA {schema}"));
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!("{base}{joiner}options=-csearch_path%3D{schema}")
}

/// Runs `sql` (one or more statements) against `url`, as an operator with `psql` would.
pub fn execute(url: &str, sql: &str) {
    query_text(url, &format!("{sql}; SELECT ''"));
}

/// The text of the first column of the last row `sql` returns.
pub fn query_text(url: &str, sql: &str) -> String {
    try_query_text(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `query_text`, with the database's refusal as an error (the message it sent).
pub fn try_query_text(url: &str, sql: &str) -> Result<String, String> {
    // On a thread of its own: the caller may be inside a runtime (async tests).
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {url}: {e}"));
            tokio::spawn(connection);
            let messages = client
                .simple_query(&sql)
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(db) => db.message().to_owned(),
                    None => e.to_string(),
                })?;
            Ok(messages
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => {
                        Some(row.get(0).unwrap_or("").to_owned())
                    }
                    _ => None,
                })
                .last()
                .unwrap_or_default())
        })
    })
    .join()
    .unwrap()
}

/// How many notifications on `channel` for `url`'s schema the commits of `action` sent. A connection listens
/// before `action` runs; afterwards it sends itself a marker and counts what arrives
/// before the marker (PostgreSQL delivers notifications in commit order), so the count
/// needs no waiting and no guessing.
pub fn notices_during(url: &str, channel: &str, action: impl FnOnce()) -> usize {
    use std::sync::mpsc;
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (url, channel) = (url.to_owned(), channel.to_owned());
    let listener = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, mut connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let (notes_tx, mut notes_rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                let mut messages = std::pin::pin!(futures_util::stream::poll_fn(
                    |cx| connection.poll_message(cx)
                ));
                while let Some(Ok(message)) = futures_util::StreamExt::next(&mut messages).await {
                    if let tokio_postgres::AsyncMessage::Notification(n) = message {
                        let _ = notes_tx.send(n.payload().to_owned());
                    }
                }
            });
            let schema: String = client
                .query_one("SELECT current_schema()", &[])
                .await
                .unwrap()
                .get(0);
            client
                .batch_execute(&format!("LISTEN {channel}"))
                .await
                .unwrap();
            ready_tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || go_rx.recv().unwrap())
                .await
                .unwrap();
            client
                .batch_execute(&format!("NOTIFY {channel}, 'test-marker'"))
                .await
                .unwrap();
            let mut before_marker = 0;
            while let Some(payload) = notes_rx.recv().await {
                if payload == "test-marker" {
                    return before_marker;
                }
                if payload == schema {
                    before_marker += 1;
                }
            }
            panic!("the listening connection closed");
        })
    });
    ready_rx.recv().unwrap();
    action();
    go_tx.send(()).unwrap();
    listener.join().unwrap()
}
