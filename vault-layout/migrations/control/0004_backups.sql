-- Backups (P12): every directory a backup set was written under, so that a purge removes
-- the tenant from every set Coffer manages, and rotation finds every set.
CREATE TABLE backup_roots (
    path          TEXT PRIMARY KEY NOT NULL,  -- absolute path
    registered_at TEXT NOT NULL
) WITHOUT ROWID;
