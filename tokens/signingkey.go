package tokens

import "time"

// SigningKey is a private key that signs the identity assertions the proxy
// sends upstream. The keys live in the store, so that every replica of a
// fleet signs with the same ones and publishes the same key set.
//
// A key is published (in the JWKS) from CreatedAt, signs from ActiveFrom
// until a key with a later ActiveFrom is active, and never after NotAfter.
type SigningKey struct {
	// ID is the key ID (JWK "kid"): the key's RFC 7638 thumbprint.
	ID string
	// Algorithm is the JWS algorithm, "ES256" or "EdDSA".
	Algorithm string
	// PrivateKey is the key in PKCS #8 DER.
	PrivateKey []byte
	CreatedAt  time.Time
	ActiveFrom time.Time
	NotAfter   time.Time
}
