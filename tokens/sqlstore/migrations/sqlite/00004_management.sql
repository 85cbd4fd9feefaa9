-- Indexes of token management (the admin API, the console, the remote
-- command line): every listing is a keyset page in (created_at, id) order
-- within an org and a kind, optionally of one owner or one status, with
-- owners joined by primary key; the seats report counts active people and
-- an org's service users; the audit trail is read by org and action.

-- +goose Up
CREATE INDEX tokens_listing ON tokens (org_id, kind, created_at, id);
CREATE INDEX tokens_status_listing ON tokens (org_id, kind, status, created_at, id);
CREATE INDEX tokens_owner_listing ON tokens (org_id, kind, owner_id, created_at, id);
CREATE INDEX users_active ON users (org_id) WHERE active AND NOT removed;
CREATE INDEX service_users_org ON service_users (org_id);
CREATE INDEX audit_events_org_action ON audit_events (org_id, action, id);

-- +goose Down
DROP INDEX audit_events_org_action;
DROP INDEX service_users_org;
DROP INDEX users_active;
DROP INDEX tokens_owner_listing;
DROP INDEX tokens_status_listing;
DROP INDEX tokens_listing;
