-- The tenant this index belongs to: written on the first open after this migration,
-- checked on every open (an index that names another tenant is refused) and by
-- `coffer audit isolation`. One row.
CREATE TABLE vault_identity (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    tenant_id TEXT NOT NULL
);
