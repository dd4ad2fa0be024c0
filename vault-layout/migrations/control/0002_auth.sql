-- Password-reset tokens and the login history (usage data: login time and IP, P16).

-- Only the SHA-256 of a reset token is stored; a token works once, before it expires.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) WITHOUT ROWID;

-- One row per login attempt against an existing account.
CREATE TABLE login_events (
    id      INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at      TEXT NOT NULL,
    ip      TEXT,
    success INTEGER NOT NULL
);
CREATE INDEX login_events_by_user ON login_events (user_id, at);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
