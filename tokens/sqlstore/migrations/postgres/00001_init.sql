-- The scimgate schema on PostgreSQL. Every timestamp is a BIGINT of Unix
-- microseconds (UTC), as on SQLite, so that both drivers read plain integers.
-- Names that are unique case-insensitively are stored a second time
-- lower-cased (by Go, so that both databases agree on what lower case is)
-- under a unique index.

-- +goose Up
CREATE TABLE orgs (
    id                         TEXT PRIMARY KEY,
    name                       TEXT NOT NULL UNIQUE,
    user_token_inactivity_days INTEGER NOT NULL,
    created_at                 BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id),
    user_name       TEXT NOT NULL,
    user_name_lower TEXT NOT NULL,
    external_id     TEXT NOT NULL DEFAULT '',
    display_name    TEXT NOT NULL DEFAULT '',
    given_name      TEXT NOT NULL DEFAULT '',
    family_name     TEXT NOT NULL DEFAULT '',
    emails          TEXT NOT NULL DEFAULT '[]', -- JSON array of tokens.Email
    employee_number TEXT NOT NULL DEFAULT '',
    manager_id      TEXT NOT NULL DEFAULT '',
    active          BOOLEAN NOT NULL,
    removed         BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
-- A removed user keeps its row for the audit trail but frees its name.
CREATE UNIQUE INDEX users_user_name_uniq ON users (org_id, user_name_lower) WHERE NOT removed;
CREATE INDEX users_external_id ON users (org_id, external_id);
CREATE INDEX users_listing ON users (org_id, created_at, id);

-- The lower-cased addresses of each user, for the SCIM filter emails eq "…".
CREATE TABLE user_emails (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email   TEXT NOT NULL,
    PRIMARY KEY (user_id, email)
);
CREATE INDEX user_emails_email ON user_emails (email);

CREATE TABLE groups (
    id                 TEXT PRIMARY KEY,
    org_id             TEXT NOT NULL REFERENCES orgs (id),
    display_name       TEXT NOT NULL,
    display_name_lower TEXT NOT NULL,
    external_id        TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_display_name_uniq ON groups (org_id, display_name_lower);
CREATE INDEX groups_external_id ON groups (org_id, external_id);
CREATE INDEX groups_listing ON groups (org_id, created_at, id);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE service_users (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id),
    name            TEXT NOT NULL,
    permission_sets TEXT NOT NULL DEFAULT '[]', -- JSON array of set names
    created_at      BIGINT NOT NULL
);

CREATE TABLE tokens (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs (id),
    kind              TEXT NOT NULL CHECK (kind IN ('user', 'service')),
    owner_id          TEXT NOT NULL, -- users.id or service_users.id, by kind
    name              TEXT NOT NULL,
    display_prefix    TEXT NOT NULL,
    hash              BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32), -- SHA-256, never the token
    inactivity_days   INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'expired')),
    status_reason     TEXT NOT NULL DEFAULT '',
    status_changed_at BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_used_at      BIGINT, -- NULL until first use
    use_count         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_owner ON tokens (org_id, kind, owner_id, status);
CREATE INDEX tokens_status ON tokens (status);

CREATE TABLE audit_events (
    id     BIGSERIAL PRIMARY KEY,
    org_id TEXT NOT NULL,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_events_org ON audit_events (org_id, id);
CREATE INDEX audit_events_target ON audit_events (target, id);

-- The invalidation log every process follows (see tokens.Change).
-- Appends take an advisory lock (see AppendChange) so that sequence numbers
-- commit in order.
CREATE TABLE changes (
    seq      BIGSERIAL PRIMARY KEY,
    token_id TEXT NOT NULL DEFAULT '',
    owner_id TEXT NOT NULL DEFAULT '',
    at       BIGINT NOT NULL
);

-- +goose Down
DROP TABLE changes;
DROP TABLE audit_events;
DROP TABLE tokens;
DROP TABLE service_users;
DROP TABLE group_members;
DROP TABLE groups;
DROP TABLE user_emails;
DROP TABLE users;
DROP TABLE orgs;
