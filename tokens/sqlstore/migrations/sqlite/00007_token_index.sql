-- The change log also announces token hashes that start or stop existing
-- (creation, regeneration, deletion), so that every process keeps its index
-- of live tokens (tokens.Change.Added/Removed) without reading the tokens:
-- the first 8 bytes of the SHA-256, as a signed INTEGER; 0 for none.

-- The authenticator's lookup reads a user's groups by user_id; with
-- group_id in the index too, it reads no table row for them.

-- +goose Up
ALTER TABLE changes ADD COLUMN hash_added INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN hash_removed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX group_members_user_group ON group_members (user_id, group_id);
DROP INDEX group_members_user;

-- +goose Down
CREATE INDEX group_members_user ON group_members (user_id);
DROP INDEX group_members_user_group;
ALTER TABLE changes DROP COLUMN hash_removed;
ALTER TABLE changes DROP COLUMN hash_added;
