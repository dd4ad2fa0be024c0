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
    // On a thread of its own: the caller may be inside a runtime (async tests).
    let (url, statement) = (base.to_owned(), format!("CREATE SCHEMA {schema}"));
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
            client.batch_execute(&statement).await.unwrap();
        });
    })
    .join()
    .unwrap();
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!("{base}{joiner}options=-csearch_path%3D{schema}")
}
