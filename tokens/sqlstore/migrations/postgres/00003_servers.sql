-- The scimgate servers that follow this database's change log, so that a
-- command that revokes a token can wait until every running server has
-- applied the change, and say so. Each serve process keeps its row fresh
-- (seen_at) and removes it when it stops.

-- +goose Up
CREATE TABLE servers (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    version     TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL,
    applied_seq BIGINT NOT NULL
);

-- +goose Down
DROP TABLE servers;
