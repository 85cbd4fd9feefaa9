-- Large orgs (issue 14): SCIM filters, sorting and paging answered by index.
--
-- Indexes of users hold only those not removed (what every listing reads).
-- Text that is sorted or compared by range is indexed COLLATE "C"
-- (byte order, the order SQLite's BINARY gives), whatever the database's
-- collation: the store's queries say COLLATE "C" too. The lower-cased
-- columns are written by the store in Go (so that both databases agree on
-- lower case); rows older than this migration get them from
-- Store.Migrate, which fills every NULL after migrating.

-- +goose Up
-- displayName lower-cased, for filters and sorting without letter case.
ALTER TABLE users ADD COLUMN display_name_lower TEXT;
-- Every address of the user lower-cased, joined by U+001F: "emails co".
-- Not indexed: a B-tree entry is limited to about 2.7 kB, and a person may
-- have many addresses; "co" reads the org's rows from the table.
ALTER TABLE users ADD COLUMN emails_lower TEXT;
-- The org of the address, for "emails eq/sw" within one org.
ALTER TABLE user_emails ADD COLUMN org_id TEXT;

CREATE INDEX users_derived_missing ON users (id) WHERE display_name_lower IS NULL OR emails_lower IS NULL;
CREATE INDEX user_emails_org ON user_emails (org_id, email COLLATE "C") INCLUDE (user_id);

-- The INCLUDE columns let a query read an index alone (an index-only
-- scan): a count or a deep offset then never touches the table. The
-- listing, in the default order (creation), holds the names that "co" and
-- "ew" search. A display name is at most 1 kB (the domain keeps it so),
-- well within an index entry's limit.
CREATE INDEX users_live_listing ON users (org_id, created_at, id)
    INCLUDE (user_name_lower, display_name_lower) WHERE NOT removed;
-- userName eq/sw/gt…, and sortBy=userName.
CREATE INDEX users_live_user_name ON users (org_id, user_name_lower COLLATE "C") INCLUDE (created_at, id) WHERE NOT removed;
-- displayName eq/sw/gt…, and sortBy=displayName.
CREATE INDEX users_live_display_name ON users (org_id, display_name_lower COLLATE "C", id) INCLUDE (created_at) WHERE NOT removed;
-- meta.lastModified gt/ge/lt/le (delta queries), and sortBy=meta.lastModified.
CREATE INDEX users_live_modified ON users (org_id, updated_at, id) INCLUDE (created_at) WHERE NOT removed;

CREATE INDEX groups_display_name_c ON groups (org_id, display_name_lower COLLATE "C", id);
CREATE INDEX groups_modified ON groups (org_id, updated_at, id);

-- How many users of the org are not removed: the total of a list without a
-- filter (an identity provider's import pages through every user, each
-- page with its total) is read here instead of counted. Kept by
-- statement-level triggers (one update of the org per statement, however
-- many rows it writes), so that every writer keeps it right.
ALTER TABLE orgs ADD COLUMN live_users BIGINT NOT NULL DEFAULT 0;
UPDATE orgs SET live_users = (SELECT count(*) FROM users WHERE users.org_id = orgs.id AND NOT users.removed);
-- +goose StatementBegin
CREATE FUNCTION users_count_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The net change of each org: an update that leaves "removed" and the
    -- org as they were writes nothing, and takes no lock on the org.
    IF TG_OP = 'INSERT' THEN
        UPDATE orgs SET live_users = live_users + d.n
        FROM (SELECT org_id, count(*) AS n FROM new_rows WHERE NOT removed GROUP BY org_id) AS d
        WHERE orgs.id = d.org_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE orgs SET live_users = live_users - d.n
        FROM (SELECT org_id, count(*) AS n FROM old_rows WHERE NOT removed GROUP BY org_id) AS d
        WHERE orgs.id = d.org_id;
    ELSE
        UPDATE orgs SET live_users = live_users + d.n
        FROM (SELECT org_id, sum(n) AS n FROM (
                SELECT org_id, -1 AS n FROM old_rows WHERE NOT removed
                UNION ALL
                SELECT org_id, 1 AS n FROM new_rows WHERE NOT removed) AS c
              GROUP BY org_id HAVING sum(n) <> 0) AS d
        WHERE orgs.id = d.org_id;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER users_live_insert AFTER INSERT ON users REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_count_live();
CREATE TRIGGER users_live_delete AFTER DELETE ON users REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_count_live();
CREATE TRIGGER users_live_update AFTER UPDATE ON users REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_count_live();

-- +goose Down
DROP TRIGGER users_live_update ON users;
DROP TRIGGER users_live_delete ON users;
DROP TRIGGER users_live_insert ON users;
DROP FUNCTION users_count_live();
ALTER TABLE orgs DROP COLUMN live_users;
DROP INDEX groups_modified;
DROP INDEX groups_display_name_c;
DROP INDEX users_live_modified;
DROP INDEX users_live_display_name;
DROP INDEX users_live_user_name;
DROP INDEX users_live_listing;
DROP INDEX user_emails_org;
DROP INDEX users_derived_missing;
ALTER TABLE user_emails DROP COLUMN org_id;
ALTER TABLE users DROP COLUMN emails_lower;
ALTER TABLE users DROP COLUMN display_name_lower;
