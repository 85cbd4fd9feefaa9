-- Large orgs (issue 14): SCIM filters, sorting and paging answered by index.
--
-- Indexes of users hold only those not removed (what every listing reads).
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
CREATE INDEX user_emails_org ON user_emails (org_id, email, user_id);

-- Every index below ends with the columns a query of it reads, "removed"
-- included: SQLite reads an index alone (a covering index) only when it
-- holds every column the query names, and then a count or a deep offset
-- never touches the table.
--
-- The listing, in the default order (creation), also holds the text that
-- "co" and "ew" search: such a filter is one ordered scan of it, for the
-- page (skipping the offset) and for the count.
CREATE INDEX users_live_listing ON users
    (org_id, created_at, id, removed, user_name_lower, display_name_lower, emails_lower) WHERE NOT removed;
-- userName eq/sw/gt…, and sortBy=userName.
CREATE INDEX users_live_user_name ON users (org_id, user_name_lower, created_at, id, removed) WHERE NOT removed;
-- displayName eq/sw/gt…, and sortBy=displayName.
CREATE INDEX users_live_display_name ON users (org_id, display_name_lower, id, created_at, removed) WHERE NOT removed;
-- meta.lastModified gt/ge/lt/le (delta queries), and sortBy=meta.lastModified.
CREATE INDEX users_live_modified ON users (org_id, updated_at, id, created_at, removed) WHERE NOT removed;

-- Groups by meta.lastModified; by displayName uses groups_display_name_uniq.
CREATE INDEX groups_modified ON groups (org_id, updated_at, id);

-- How many users of the org are not removed: the total of a list without a
-- filter (an identity provider's import pages through every user, each
-- page with its total) is read here instead of counted. Kept by triggers,
-- so that every writer (the bulk loader included) keeps it right.
ALTER TABLE orgs ADD COLUMN live_users INTEGER NOT NULL DEFAULT 0;
UPDATE orgs SET live_users = (SELECT count(*) FROM users WHERE users.org_id = orgs.id AND NOT users.removed);
-- +goose StatementBegin
CREATE TRIGGER users_live_insert AFTER INSERT ON users WHEN NOT NEW.removed
BEGIN
    UPDATE orgs SET live_users = live_users + 1 WHERE id = NEW.org_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER users_live_delete AFTER DELETE ON users WHEN NOT OLD.removed
BEGIN
    UPDATE orgs SET live_users = live_users - 1 WHERE id = OLD.org_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER users_live_update AFTER UPDATE OF removed, org_id ON users
WHEN OLD.removed IS NOT NEW.removed OR OLD.org_id IS NOT NEW.org_id
BEGIN
    UPDATE orgs SET live_users = live_users - 1 WHERE id = OLD.org_id AND NOT OLD.removed;
    UPDATE orgs SET live_users = live_users + 1 WHERE id = NEW.org_id AND NOT NEW.removed;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER users_live_update;
DROP TRIGGER users_live_delete;
DROP TRIGGER users_live_insert;
ALTER TABLE orgs DROP COLUMN live_users;
DROP INDEX groups_modified;
DROP INDEX users_live_modified;
DROP INDEX users_live_display_name;
DROP INDEX users_live_user_name;
DROP INDEX users_live_listing;
DROP INDEX user_emails_org;
DROP INDEX users_derived_missing;
ALTER TABLE user_emails DROP COLUMN org_id;
ALTER TABLE users DROP COLUMN emails_lower;
ALTER TABLE users DROP COLUMN display_name_lower;
