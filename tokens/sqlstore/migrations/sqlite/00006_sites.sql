-- Sites: places or units of an org that people are members of, pushed by
-- the identity provider in the scimgate User extension or managed with
-- "scimgate site". A user token carries its owner's sites upstream.

-- +goose Up
CREATE TABLE sites (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    name_lower  TEXT NOT NULL, -- lower-cased by Go, as users.user_name_lower
    external_id TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX sites_name_uniq ON sites (org_id, name_lower);
CREATE UNIQUE INDEX sites_external_id_uniq ON sites (org_id, external_id) WHERE external_id <> '';

CREATE TABLE site_members (
    site_id TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (site_id, user_id)
) STRICT;
-- The credential lookup and user reads find a user's sites by user.
CREATE INDEX site_members_user ON site_members (user_id);

-- +goose Down
DROP TABLE site_members;
DROP TABLE sites;
