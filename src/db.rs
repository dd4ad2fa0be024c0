//! SQLite plumbing shared by the three kinds of database (control plane, audit log,
//! tenant index): opening with the same flags and pragmas, and applying the numbered
//! migrations embedded from `vault-layout/migrations/`.
//!
//! This module knows nothing of what the databases hold. It must never open a database
//! that is a symbolic link, and never edit or reorder a released migration: a database
//! records the number of the last migration applied (`PRAGMA user_version`) and only
//! later ones run.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// One embedded migration: its number (from its file name) and its SQL.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:expr, $dir:literal, $file:literal) => {
        $crate::db::Migration {
            version: $version,
            name: $file,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/vault-layout/migrations/",
                $dir,
                "/",
                $file
            )),
        }
    };
}
pub(crate) use migration;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database schema version {found} is newer than this build of Coffer knows ({known})")]
    SchemaTooNew { found: u32, known: u32 },
}

/// Whether an error means the disk (or the database's quota of it) is full: the client
/// gets 507, not 500, and the operator a clear message.
pub fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

/// Whether an I/O error means the filesystem is full (or over a disk quota).
pub fn io_is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == libc::ENOSPC || c == libc::EDQUOT)
        || e.kind() == std::io::ErrorKind::StorageFull
}

/// How long a writer waits for another connection's write lock before giving up. Writes
/// are short transactions, so a few seconds means something is wrong.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if absent) a database at `path` with Coffer's flags: no symlink
/// following, no shared cache, WAL journal, foreign keys on, and `synchronous=FULL` so a
/// commit that returned is on disk (acknowledged means durable).
pub fn open(path: &Path, migrations: &[Migration]) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_PRIVATE_CACHE;
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn)?;
    migrate(&conn, migrations)?;
    Ok(conn)
}

/// Opens a database read-only as it is (no migration, no WAL switch): for checking copies.
pub fn open_read_only(path: &Path) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_PRIVATE_CACHE;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    Ok(conn)
}

/// An in-memory database with the same schema, for tests of pure logic.
pub fn open_in_memory(migrations: &[Migration]) -> Result<Connection, DbError> {
    let conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migrate(&conn, migrations)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<(), DbError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    Ok(())
}

/// Applies every migration newer than the database's `user_version`, each in its own
/// `BEGIN IMMEDIATE` transaction together with the version bump.
pub fn migrate(conn: &Connection, migrations: &[Migration]) -> Result<(), DbError> {
    let known = migrations.last().map_or(0, |m| m.version);
    let current: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current > known {
        return Err(DbError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > current) {
        // A table rebuild (SQLite's way to change a constraint) must run with foreign
        // keys off, or dropping the old table cascades; the setting cannot change inside
        // a transaction, and the keys are checked before the commit instead.
        let rebuild = migration.sql.starts_with(FOREIGN_KEYS_OFF);
        if rebuild {
            conn.pragma_update(None, "foreign_keys", "OFF")?;
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let applied = conn
            .execute_batch(migration.sql)
            .and_then(|()| conn.pragma_update(None, "user_version", migration.version))
            .and_then(|()| {
                if rebuild {
                    foreign_key_check(conn)
                } else {
                    Ok(())
                }
            });
        let outcome = match applied {
            Ok(()) => conn.execute_batch("COMMIT"),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        };
        if rebuild {
            conn.pragma_update(None, "foreign_keys", "ON")?;
        }
        outcome?;
    }
    Ok(())
}

/// The first line of a migration that rebuilds a table (see `migrate`).
const FOREIGN_KEYS_OFF: &str = "-- coffer: foreign-keys-off";

/// Fails if any row references a missing parent.
fn foreign_key_check(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let mut rows = stmt.query([])?;
    match rows.next()? {
        None => Ok(()),
        Some(row) => {
            let table: String = row.get(0)?;
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                Some(format!("migration broke a foreign key of {table}")),
            ))
        }
    }
}

/// Writes a consistent copy of the database behind `conn` to `path` (a new file), as of
/// one read transaction: SQLite's `VACUUM INTO`. Writers on other connections go on.
pub fn snapshot_into(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let text = path
        .to_str()
        .ok_or_else(|| rusqlite::Error::InvalidPath(path.to_owned()))?;
    conn.execute("VACUUM INTO ?1", [text])?;
    Ok(())
}

/// Locks a mutex, ignoring poisoning: the one place that decision is written down. Every
/// mutex in Coffer guards state that is consistent whenever it is unlocked (a SQLite
/// connection rolls back an unfinished transaction; the caches and counters change in
/// single steps), so a panic in another thread while it held the lock leaves nothing
/// half-done to protect against.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The current UTC time as RFC 3339 with millisecond precision: the one timestamp format
/// in every database, sortable as text.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let millis = at.millisecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        millis
    )
}

/// `timestamp` of now.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_without_gaps() {
        for set in [
            crate::control::MIGRATIONS,
            crate::audit::MIGRATIONS,
            crate::vault::index::MIGRATIONS,
        ] {
            for (i, m) in set.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1, "{}", m.name);
                assert!(
                    m.name.starts_with(&format!("{:04}_", m.version)),
                    "{}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn refuses_a_newer_schema() {
        let conn = open_in_memory(crate::audit::MIGRATIONS).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            migrate(&conn, crate::audit::MIGRATIONS),
            Err(DbError::SchemaTooNew { found: 99, .. })
        ));
    }

    #[test]
    fn timestamps_sort_as_text() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.678 UTC);
        assert_eq!(timestamp(t), "2026-01-02T03:04:05.678Z");
    }
}
