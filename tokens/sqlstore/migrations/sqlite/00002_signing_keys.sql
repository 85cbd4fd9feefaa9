-- The keys that sign the identity assertions the proxy sends upstream
-- (tokens.SigningKey). Every replica reads them, so that a fleet signs with
-- the same keys and publishes the same JWKS. Times are Unix microseconds.

-- +goose Up
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,  -- the key ID (JWK thumbprint)
    algorithm   TEXT NOT NULL,     -- ES256 or EdDSA
    private_key BLOB NOT NULL,     -- PKCS #8 DER
    created_at  INTEGER NOT NULL,  -- published from then on
    active_from INTEGER NOT NULL,  -- signs from then on
    not_after   INTEGER NOT NULL   -- never signs after this
) STRICT;

-- +goose Down
DROP TABLE signing_keys;
