-- Usage metering (P16): billing records that outlive a vault (P15), kept per tenant,
-- day and metric: API calls per feature (`api.<permission>`), AI tokens reported by an
-- integration (`ai.input_tokens`, `ai.output_tokens`). No content, no names.
CREATE TABLE usage (
    tenant_id TEXT NOT NULL,
    day       TEXT NOT NULL,                 -- YYYY-MM-DD (UTC)
    metric    TEXT NOT NULL,
    value     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, metric)
) WITHOUT ROWID;

-- When each person was a member of each tenant, so that a tenant's login history keeps
-- the logins of members since removed.
CREATE TABLE membership_periods (
    tenant_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    since     TEXT NOT NULL,
    until     TEXT,                          -- NULL: still a member
    PRIMARY KEY (tenant_id, user_id, since)
) WITHOUT ROWID;
INSERT INTO membership_periods (tenant_id, user_id, since)
    SELECT tenant_id, user_id, created_at FROM memberships;

-- Extra permissions of an API token beyond its role: 'ai-usage' lets an integration report
-- AI token consumption and nothing else it could not already do.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
