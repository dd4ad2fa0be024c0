//! A consistent copy of a PostgreSQL control plane written as an SQLite `control.db`, so a
//! backup set has the same self-contained format whichever backend the node runs (and a
//! restore reads it the same way). The copy is taken in one `REPEATABLE READ` snapshot.

use std::path::Path;

use tokio_postgres::types::Type;

use super::wait;
use rusqlite::types::Value;

use crate::control::ControlError;
use crate::control::MIGRATIONS;
use crate::db;

/// Every table of the control plane, parents before children (foreign keys).
const TABLES: &[&str] = &[
    "tenants",
    "users",
    "memberships",
    "sessions",
    "api_tokens",
    "password_resets",
    "login_events",
    "purges",
    "leases",
    "backup_roots",
    "usage",
    "membership_periods",
];

pub fn copy_into_sqlite(
    tx: tokio_postgres::Transaction<'_>,
    path: &Path,
) -> Result<(), ControlError> {
    let mut conn = db::open(path, MIGRATIONS)?;
    let out = conn.transaction()?;
    for table in TABLES {
        let rows = wait(tx.query(&format!("SELECT * FROM {table}"), &[]))?;
        let Some(first) = rows.first() else { continue };
        let columns: Vec<&str> = first.columns().iter().map(|c| c.name()).collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let mut insert = out.prepare(&format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            marks.join(", ")
        ))?;
        for row in &rows {
            let values = (0..row.len())
                .map(|i| value(row, i))
                .collect::<Result<Vec<_>, _>>()?;
            insert.execute(rusqlite::params_from_iter(values))?;
        }
    }
    out.commit()?;
    wait(tx.commit())?;
    Ok(())
}

/// One column as SQLite stores it (the schemas use only these types).
fn value(row: &tokio_postgres::Row, i: usize) -> Result<Value, ControlError> {
    let ty = row.columns()[i].type_();
    Ok(match *ty {
        Type::TEXT | Type::VARCHAR => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|n| Value::Integer(n.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|b| Value::Integer(b.into())),
        _ => {
            return Err(ControlError::Postgres(format!(
                "column {} has type {ty}, which a backup cannot copy",
                row.columns()[i].name()
            )));
        }
    }
    .unwrap_or(Value::Null))
}
