package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// AssertionOptions configure the signed identity assertion: a compact JWT
// in a header of every authenticated request, which an upstream verifies
// with the keys at the JWKS endpoint, so that it can trust who called even
// if someone reaches it around the proxy.
type AssertionOptions struct {
	// Keyring signs; required.
	Keyring *Keyring
	// Header carries the assertion, default "X-Scimgate-Assertion". A
	// client-sent header of that name is deleted.
	Header string
	// Issuer is the "iss" claim, default "scimgate".
	Issuer string
	// Audience is the "aud" claim, default the upstream's URL.
	Audience string
	// TTL is the assertion's lifetime (exp - iat), default 2m; at most the
	// keyring's AssertionTTL. An assertion is cached per identity and
	// signed again once half of it has passed, so an upstream always gets
	// one valid for at least TTL/2.
	TTL time.Duration
	// BindRequest adds the request's method and the SHA-256 of its path
	// to the claims. Such an assertion cannot be reused for another
	// request, but it costs a signature per request.
	BindRequest bool
}

// DefaultAssertionHeader carries the assertion when AssertionOptions.Header
// is empty.
const DefaultAssertionHeader = "X-Scimgate-Assertion"

// assertionClaims are the claims of the identity assertion.
type assertionClaims struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"`
	// Subject is the owner's ID: the person's, or the service user's.
	Subject  string `json:"sub"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	Kind     string `json:"kind"`
	// Name is the user name, or the service user's name.
	Name        string   `json:"name"`
	Org         string   `json:"org"`
	OrgID       string   `json:"org_id"`
	TokenID     string   `json:"token_id"`
	Permissions []string `json:"permissions"`
	// Groups are a person's groups; absent for service tokens.
	Groups []string `json:"groups,omitzero"`
	// Sites are a person's sites; absent for service tokens.
	Sites []string `json:"sites,omitzero"`
	// With BindRequest: the method and the unpadded base64url SHA-256 of
	// the path the upstream receives (decoded, without the query).
	Method   string `json:"method,omitempty"`
	PathHash string `json:"path_hash,omitempty"`
}

// claimsFor are the claims that say who id is.
func (a *asserter) claimsFor(id *tokens.Identity, now time.Time) assertionClaims {
	c := assertionClaims{
		Issuer:      a.issuer,
		Audience:    a.audience,
		Subject:     id.OwnerID,
		IssuedAt:    now.Unix(),
		Expiry:      now.Add(a.ttl).Unix(),
		Kind:        string(id.Kind),
		Name:        id.OwnerName,
		Org:         id.OrgName,
		OrgID:       id.OrgID,
		TokenID:     id.TokenID,
		Permissions: orEmpty(id.Permissions),
	}
	if id.Kind == tokens.KindUser {
		// What a person has through their memberships; a service token
		// has none, so the claims are absent rather than empty.
		c.Groups = orEmpty(id.Groups)
		c.Sites = orEmpty(id.Sites)
	}
	return c
}

// orEmpty is list, or an empty list for nil, so that a claim is [] and
// not null.
func orEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// asserter signs assertions and caches them per identity. The
// authenticator hands out one *tokens.Identity per cached token, replaced
// whenever what it says changes, so the pointer is the cache key: a cached
// token costs a map read and no signature.
type asserter struct {
	keys     *Keyring
	header   string
	issuer   string
	audience string
	ttl      time.Duration
	bind     bool

	cache   sync.Map // *tokens.Identity → *signedAssertion
	entries atomic.Int64
	sweepAt atomic.Int64
}

type signedAssertion struct {
	value     []string // the header's one value, capacity 1
	key       *signingKey
	refreshAt int64 // Unix nanoseconds: sign again from then on
	expires   int64
}

// assertionUnavailable is an assertion that could not be made.
type assertionUnavailable struct{ err error }

func (e *assertionUnavailable) Error() string { return "sign identity assertion: " + e.err.Error() }
func (e *assertionUnavailable) Unwrap() error { return e.err }

func newAsserter(o *AssertionOptions, upstream string) (*asserter, error) {
	if o.Keyring == nil {
		return nil, errors.New("assertion: a keyring is required")
	}
	a := &asserter{keys: o.Keyring, header: o.Header, issuer: o.Issuer, audience: o.Audience, ttl: o.TTL, bind: o.BindRequest}
	if a.header == "" {
		a.header = DefaultAssertionHeader
	}
	if a.issuer == "" {
		a.issuer = "scimgate"
	}
	if a.audience == "" {
		a.audience = upstream
	}
	if a.ttl <= 0 {
		a.ttl = 2 * time.Minute
	}
	if a.ttl < 2*time.Second {
		return nil, fmt.Errorf("assertion lifetime %s is too short: at least 2s", a.ttl)
	}
	if a.ttl > o.Keyring.opts.AssertionTTL {
		return nil, fmt.Errorf("assertion lifetime %s is longer than the keyring keeps keys published for (%s)", a.ttl, o.Keyring.opts.AssertionTTL)
	}
	a.sweepAt.Store(1024)
	return a, nil
}

// value returns the assertion header's value for id. For a request-bound
// assertion, method and path are the request's, as the upstream receives
// them.
func (a *asserter) value(id *tokens.Identity, now time.Time, method, path string) ([]string, error) {
	nowNano := now.UnixNano()
	key := a.keys.current(nowNano)
	if key == nil {
		return nil, &assertionUnavailable{errNoSigningKey}
	}
	if a.bind {
		c := a.claimsFor(id, now)
		c.Method = method
		sum := sha256.Sum256([]byte(path))
		c.PathHash = base64.RawURLEncoding.EncodeToString(sum[:])
		jwt, err := sign(key, &c)
		if err != nil {
			return nil, err
		}
		return []string{jwt}, nil
	}
	if v, ok := a.cache.Load(id); ok {
		if s := v.(*signedAssertion); nowNano < s.refreshAt && s.key == key {
			return s.value, nil
		}
	}
	c := a.claimsFor(id, now)
	jwt, err := sign(key, &c)
	if err != nil {
		return nil, err
	}
	s := &signedAssertion{value: []string{jwt}, key: key, refreshAt: nowNano + int64(a.ttl/2), expires: nowNano + int64(a.ttl)}
	if _, replaced := a.cache.Swap(id, s); !replaced && a.entries.Add(1) > a.sweepAt.Load() {
		a.sweep(nowNano)
	}
	return s.value, nil
}

// sweep forgets the assertions that have expired: those of identities no
// longer in use (a token evicted, revoked, or changed).
func (a *asserter) sweep(now int64) {
	var live int64
	a.cache.Range(func(k, v any) bool {
		if v.(*signedAssertion).expires <= now {
			if a.cache.CompareAndDelete(k, v) {
				a.entries.Add(-1)
			}
		} else {
			live++
		}
		return true
	})
	a.sweepAt.Store(max(1024, 2*live))
}

func sign(key *signingKey, c *assertionClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", &assertionUnavailable{err}
	}
	jws, err := key.signer.Sign(payload)
	if err != nil {
		return "", &assertionUnavailable{err}
	}
	jwt, err := jws.CompactSerialize()
	if err != nil {
		return "", &assertionUnavailable{err}
	}
	return jwt, nil
}
