-- Web console sessions (issue 12), kept in the database so that every
-- replica knows them and any of them can end one. Only the SHA-256 of the
-- session secret (the cookie's value) is stored.

-- +goose Up
CREATE TABLE console_sessions (
    id           TEXT PRIMARY KEY, -- public: for logs, never the cookie
    hash         BYTEA NOT NULL UNIQUE CHECK (length(hash) = 32),
    org_id       TEXT NOT NULL REFERENCES orgs (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    token_id     TEXT NOT NULL DEFAULT '', -- the user token signed in with; '' for single sign-on
    method       TEXT NOT NULL CHECK (method IN ('sso', 'token')),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL -- the absolute end, whatever the activity
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
CREATE INDEX console_sessions_seen ON console_sessions (last_seen_at);

-- +goose Down
DROP TABLE console_sessions;
