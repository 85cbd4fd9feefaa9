-- Large orgs (issue 14): SCIM filters, sorting and paging answered by index.
--
-- Indexes of users that are not removed (what every listing reads) are
-- partial, so that reading them never needs the table to check "removed".
-- The lower-cased columns are written by the store in Go (so that both
-- databases agree on lower case); rows older than this migration get them
-- from Store.Migrate, which fills every NULL after migrating.

-- +goose Up
-- displayName lower-cased, for filters and sorting without letter case.
ALTER TABLE users ADD COLUMN display_name_lower TEXT;
-- Every address of the user lower-cased, joined by U+001F: "emails co".
ALTER TABLE users ADD COLUMN emails_lower TEXT;
-- The org of the address, for "emails eq/sw" within one org.
ALTER TABLE user_emails ADD COLUMN org_id TEXT;

CREATE INDEX users_derived_missing ON users (id) WHERE display_name_lower IS NULL OR emails_lower IS NULL;
CREATE INDEX user_emails_org ON user_emails (org_id, email);

-- Default order (creation), meta.lastModified (delta queries, sortBy),
-- displayName (filters, sortBy) and emails (co scans this, not the table).
-- userName uses users_user_name_uniq (org_id, user_name_lower) WHERE NOT removed.
CREATE INDEX users_live_created ON users (org_id, created_at, id) WHERE NOT removed;
CREATE INDEX users_live_modified ON users (org_id, updated_at, id) WHERE NOT removed;
CREATE INDEX users_live_display_name ON users (org_id, display_name_lower, id) WHERE NOT removed;
CREATE INDEX users_live_emails ON users (org_id, emails_lower) WHERE NOT removed;

-- Groups by meta.lastModified; by displayName uses groups_display_name_uniq.
CREATE INDEX groups_modified ON groups (org_id, updated_at, id);

-- +goose Down
DROP INDEX groups_modified;
DROP INDEX users_live_emails;
DROP INDEX users_live_display_name;
DROP INDEX users_live_modified;
DROP INDEX users_live_created;
DROP INDEX user_emails_org;
DROP INDEX users_derived_missing;
ALTER TABLE user_emails DROP COLUMN org_id;
ALTER TABLE users DROP COLUMN emails_lower;
ALTER TABLE users DROP COLUMN display_name_lower;
