//! WebDAV dead properties in the index: what clients store with PROPPATCH, kept per
//! entry path (`""` for the vault's root) in `dav_properties`. They follow their entry:
//! a move carries a subtree's properties along (`IndexChange::move_properties`) and every
//! subtree an `IndexChange` clears loses its own, in the same transaction as the entries.

use rusqlite::{Transaction, params};

use super::{BeforeCommit, Index, IndexError, subtree_bounds};

/// One stored property: its namespace (`""` for none), name and XML element as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub namespace: String,
    pub name: String,
    pub xml: Vec<u8>,
}

/// A PROPPATCH instruction.
#[derive(Debug, Clone)]
pub enum PropertyChange {
    Set(Property),
    Remove { namespace: String, name: String },
}

impl Index {
    /// The properties stored on `path`, by namespace and name.
    pub fn properties(&self, path: &str) -> Result<Vec<Property>, IndexError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT namespace, name, xml FROM dav_properties WHERE path = ?1
             ORDER BY namespace, name",
        )?;
        let rows = stmt.query_map([path], |r| {
            Ok(Property {
                namespace: r.get(0)?,
                name: r.get(1)?,
                xml: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The properties of every path of `paths` (a listing page), with their paths: one
    /// statement for the page instead of one per entry.
    pub fn properties_of(&self, paths: &[&str]) -> Result<Vec<(String, Property)>, IndexError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; paths.len()].join(", ");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT path, namespace, name, xml FROM dav_properties WHERE path IN ({marks})
             ORDER BY path, namespace, name"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(paths), |r| {
            Ok((
                r.get(0)?,
                Property {
                    namespace: r.get(1)?,
                    name: r.get(2)?,
                    xml: r.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies `changes` to `path`'s properties in one transaction, then checks that at
    /// most `max_count` remain and that the vault is within `quota` with them
    /// (`TooManyProperties`, `PropertiesOverQuota`: everything rolled back).
    pub fn change_properties(
        &mut self,
        path: &str,
        changes: &[PropertyChange],
        max_count: usize,
        quota: Option<u64>,
        before_commit: BeforeCommit<'_>,
    ) -> Result<(), IndexError> {
        let tx = self.write_tx()?;
        let charged = |tx: &Transaction<'_>| -> Result<u64, IndexError> {
            let sum: i64 = tx.query_row(
                "SELECT COALESCE(SUM(value), 0) FROM usage_counters
                 WHERE name IN ('bytes_stored', 'trash_bytes', 'property_bytes')",
                [],
                |r| r.get(0),
            )?;
            Ok(sum.max(0) as u64)
        };
        let before = charged(&tx)?;
        for change in changes {
            match change {
                PropertyChange::Set(p) => tx.execute(
                    "INSERT INTO dav_properties (path, namespace, name, xml)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (path, namespace, name) DO UPDATE SET xml = excluded.xml",
                    params![path, p.namespace, p.name, p.xml],
                )?,
                PropertyChange::Remove { namespace, name } => tx.execute(
                    "DELETE FROM dav_properties WHERE path = ?1 AND namespace = ?2 AND name = ?3",
                    params![path, namespace, name],
                )?,
            };
        }
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM dav_properties WHERE path = ?1",
            [path],
            |r| r.get(0),
        )?;
        if count as usize > max_count {
            return Err(IndexError::TooManyProperties { limit: max_count });
        }
        // Over the quota only by growing: a vault already over it may still shrink.
        let after = charged(&tx)?;
        if quota.is_some_and(|q| after > q && after > before) {
            return Err(IndexError::PropertiesOverQuota);
        }
        before_commit()?;
        tx.commit()?;
        Ok(())
    }
}

/// Re-keys the properties of `from` and everything below it to `to`.
pub(super) fn move_subtree(tx: &Transaction<'_>, from: &str, to: &str) -> Result<(), IndexError> {
    let (lo, hi) = subtree_bounds(from);
    tx.execute(
        "UPDATE dav_properties SET path = ?4 || substr(path, length(?1) + 1)
         WHERE path = ?1 OR (path >= ?2 AND path < ?3)",
        params![from, lo, hi, to],
    )?;
    Ok(())
}

/// Drops the properties of `root` and everything below it.
pub(super) fn drop_subtree(tx: &Transaction<'_>, root: &str) -> Result<(), IndexError> {
    let (lo, hi) = subtree_bounds(root);
    tx.execute(
        "DELETE FROM dav_properties WHERE path = ?1 OR (path >= ?2 AND path < ?3)",
        params![root, lo, hi],
    )?;
    Ok(())
}
