-- The change log also announces token hashes that start or stop existing
-- (creation, regeneration, deletion), so that every process keeps its index
-- of live tokens (tokens.Change.Added/Removed) without reading the tokens:
-- the first 8 bytes of the SHA-256, as a signed BIGINT; 0 for none.

-- +goose Up
ALTER TABLE changes ADD COLUMN hash_added BIGINT NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN hash_removed BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE changes DROP COLUMN hash_removed;
ALTER TABLE changes DROP COLUMN hash_added;
