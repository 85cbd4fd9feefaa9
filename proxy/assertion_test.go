package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/scimgate/scimgate/proxy"
	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// verifyingUpstream is an upstream that verifies every assertion it gets
// with the README's example code and the proxy's JWKS.
type verifyingUpstream struct {
	*httptest.Server
	jwks     string
	audience string
	mu       sync.Mutex
	callers  []*Caller
	raw      []string
	errs     []error
}

func newVerifyingUpstream(t *testing.T, jwks http.Handler, basePath string) *verifyingUpstream {
	keys := httptest.NewServer(jwks)
	t.Cleanup(keys.Close)
	u := &verifyingUpstream{jwks: keys.URL + "/.well-known/jwks.json"}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, err := FetchKeys(u.jwks)
		var c *Caller
		if err == nil {
			c, err = VerifyCaller(r, keys, "scimgate", u.audience)
		}
		u.mu.Lock()
		u.callers = append(u.callers, c)
		u.raw = append(u.raw, r.Header.Get("X-Scimgate-Assertion"))
		u.errs = append(u.errs, err)
		u.mu.Unlock()
		io.WriteString(w, "verified")
	}))
	t.Cleanup(u.Close)
	u.audience = u.URL
	return u
}

func (u *verifyingUpstream) last(t *testing.T) (*Caller, string, error) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.callers) == 0 {
		t.Fatal("no request reached the upstream")
	}
	n := len(u.callers) - 1
	return u.callers[n], u.raw[n], u.errs[n]
}

// signedClaims checks the signature of an assertion with the JWKS, and
// only that, and returns its claims.
func (u *verifyingUpstream) signedClaims(t *testing.T, raw string) *Caller {
	t.Helper()
	keys, err := FetchKeys(u.jwks)
	must(t, err)
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	must(t, err)
	var c Caller
	if err := tok.Claims(keys, &c); err != nil {
		t.Fatalf("the assertion's signature does not verify with the JWKS: %v", err)
	}
	return &c
}

// assertionFixture is a fixture whose proxy signs assertions, in front of
// a verifying upstream.
func assertionFixture(t *testing.T, dialect string, o proxy.AssertionOptions, basePath string) (*fixture, *verifyingUpstream, *httptest.Server) {
	t.Helper()
	f := newFixture(t, dialect, proxy.Options{Assertion: &proxy.AssertionOptions{}, PublicPaths: []string{"/public/"}})
	up := newVerifyingUpstream(t, f.keyring, basePath)
	target, _ := url.Parse(up.URL + basePath)
	o.Keyring = f.keyring
	p, err := proxy.New(f.auth, proxy.Options{Upstream: target, HeaderPrefix: "X-Scimgate-", Assertion: &o,
		PublicPaths: []string{"/public/"}, Now: func() time.Time { return *f.now.Load() }})
	must(t, err)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return f, up, srv
}

func call(t *testing.T, method, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Scimgate-Assertion", "forged.by.client")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestAssertionVerifiesWithTheJWKS(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f, up, srv := assertionFixture(t, dialect, proxy.AssertionOptions{}, "")
			now := f.now.Load().Unix()
			tests := []struct {
				name, token string
				want        Caller
			}{
				{"user token", f.userTok, Caller{Kind: "user", Name: "alice@acme.test", Org: "acme", OrgID: f.org.ID, TokenID: f.userID,
					Permissions: []string{"orders.read", "orders.write"}, Groups: []string{"Order Desk"}, Sites: []string{"Sydney"}}},
				{"service token", f.svcTok, Caller{Kind: "service", Name: "billing-sync", Org: "acme", OrgID: f.org.ID, TokenID: f.svcID,
					Permissions: []string{"orders.read"}}},
			}
			for _, tt := range tests {
				if status := call(t, "GET", srv.URL+"/orders", tt.token); status != 200 {
					t.Fatalf("%s: status %d", tt.name, status)
				}
				c, _, err := up.last(t)
				if err != nil {
					t.Fatalf("%s: the upstream could not verify the assertion: %v", tt.name, err)
				}
				got := *c
				if got.Issuer != "scimgate" || !slices.Equal(got.Audience, []string{up.URL}) || got.IssuedAt == nil || int64(*got.IssuedAt) != now ||
					got.Expiry == nil || int64(*got.Expiry) != now+120 {
					t.Errorf("%s: iss %q aud %v iat %v exp %v; want scimgate, %s, now and now+2m", tt.name, got.Issuer, got.Audience, got.IssuedAt, got.Expiry, up.URL)
				}
				want := tt.want
				want.Claims = got.Claims
				if tt.token == f.userTok && got.Subject != f.alice.ID {
					t.Errorf("%s: sub %q, want the person's ID %q", tt.name, got.Subject, f.alice.ID)
				}
				if got.Kind != want.Kind || got.Name != want.Name || got.Org != want.Org || got.OrgID != want.OrgID || got.TokenID != want.TokenID ||
					!slices.Equal(got.Permissions, want.Permissions) || !slices.Equal(got.Groups, want.Groups) || !slices.Equal(got.Sites, want.Sites) || got.Method != "" || got.PathHash != "" {
					t.Errorf("%s: claims %+v, want %+v", tt.name, got, want)
				}
			}
			// A service token's assertion has no groups or sites claim at all.
			_, raw, _ := up.last(t)
			var claims map[string]any
			tok, _ := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
			json.Unmarshal(tok.UnsafePayloadWithoutVerification(), &claims)
			for _, claim := range []string{"groups", "sites"} {
				if _, ok := claims[claim]; ok {
					t.Errorf("a service token's assertion has a %s claim: %v", claim, claims)
				}
			}
			// A public path gets no assertion, and the client's is gone.
			if status := call(t, "GET", srv.URL+"/public/x", ""); status != 200 {
				t.Fatalf("public path: status %d", status)
			}
			if _, raw, _ := up.last(t); raw != "" {
				t.Errorf("a public request reached the upstream with an assertion %q", raw)
			}
		})
	}
}

func TestAssertionIsSignedOncePerIdentity(t *testing.T) {
	ctx := context.Background()
	f, up, srv := assertionFixture(t, "sqlite", proxy.AssertionOptions{}, "")
	var first string
	for i := range 20 {
		if status := call(t, "GET", srv.URL+"/orders", f.svcTok); status != 200 {
			t.Fatalf("status %d", status)
		}
		_, raw, err := up.last(t)
		must(t, err)
		if i == 0 {
			first = raw
		} else if raw != first {
			// ECDSA signatures are randomized: another string is another signature.
			t.Fatalf("request %d carried a new assertion: signed per request, not per identity", i)
		}
	}
	// Half the lifetime later it is signed again, valid for the whole
	// lifetime. (The proxy's clock is ahead of the upstream's now, so only
	// the signature is checked.)
	f.advance(61 * time.Second)
	call(t, "GET", srv.URL+"/orders", f.svcTok)
	_, raw, _ := up.last(t)
	c := up.signedClaims(t, raw)
	if raw == first || int64(*c.IssuedAt) != f.now.Load().Unix() || int64(*c.Expiry) != f.now.Load().Unix()+120 {
		t.Errorf("after half the lifetime: the same assertion (%v), or iat %v exp %v, want now and now+2m", raw == first, c.IssuedAt, c.Expiry)
	}
	// A change of permissions is a new identity: a new assertion at once.
	st, err := f.svc.ServiceTokens(ctx, f.org.ID)
	must(t, err)
	_, err = f.svc.EditServiceToken(ctx, tokens.Operator, f.org.ID, st[0].ID, tokens.ServiceTokenEdit{PermissionSets: []string{"writers"}})
	must(t, err)
	call(t, "GET", srv.URL+"/orders", f.svcTok)
	_, raw, _ = up.last(t)
	if c := up.signedClaims(t, raw); !slices.Equal(c.Permissions, []string{"orders.read", "orders.write"}) {
		t.Errorf("after the permissions changed the assertion says %v, want orders.read and orders.write", c.Permissions)
	}
}

func TestAssertionBoundToTheRequest(t *testing.T) {
	f, up, srv := assertionFixture(t, "sqlite", proxy.AssertionOptions{BindRequest: true}, "/api/")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/orders/7"},
		{"DELETE", "//orders/./8"},
		{"GET", "/caf%C3%A9"},
	} {
		if status := call(t, tc.method, srv.URL+tc.path, f.userTok); status != 200 {
			t.Fatalf("%s %s: status %d", tc.method, tc.path, status)
		}
		// VerifyCaller checks method and path_hash against what it received.
		if c, _, err := up.last(t); err != nil || c.Method != tc.method || c.PathHash == "" {
			t.Errorf("%s %s: bound assertion %+v, %v", tc.method, tc.path, c, err)
		}
	}
	// Two requests, two assertions.
	_, a, _ := up.last(t)
	call(t, "GET", srv.URL+"/caf%C3%A9", f.userTok)
	if _, b, _ := up.last(t); a == b {
		t.Errorf("a bound assertion was reused")
	}
}

func TestAssertionWithoutAKeyIs503(t *testing.T) {
	f, up, srv := assertionFixture(t, "sqlite", proxy.AssertionOptions{}, "")
	// Far past the key's NotAfter, without a refresh (the store was away).
	f.advance(30 * 24 * time.Hour)
	req, _ := http.NewRequest("GET", srv.URL+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+f.svcTok)
	f.auth.Purge()
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var body struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || body.Reason != "assertion_unavailable" {
		t.Errorf("no signing key: %d %q, want 503 assertion_unavailable", resp.StatusCode, body.Reason)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.callers) != 0 {
		t.Errorf("a request without an assertion reached the upstream")
	}
}

func TestAssertionCostsNoAllocationWhenCached(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{Assertion: &proxy.AssertionOptions{}})
	req := httptest.NewRequest("GET", "/orders", nil)
	authorization := []string{"Bearer " + f.svcTok}
	admit := func() {
		req.Header = http.Header{"Authorization": authorization}
		if _, err := f.proxy.Admit(req); err != nil {
			t.Fatal(err)
		}
	}
	admit()
	if n := testing.AllocsPerRun(200, func() {
		req.Header["Authorization"] = authorization
		if _, err := f.proxy.Admit(req); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("admit with a cached assertion: %v allocations, want at most 1 (the identity headers)", n)
	}
	if req.Header.Get("X-Scimgate-Assertion") == "" {
		t.Errorf("no assertion set")
	}
}

// Keyring rotation, as a fleet sees it: replicas share the store.

type replica struct {
	keys *proxy.Keyring
	now  *time.Time
}

func TestKeyRotationWithOverlap(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			store := sqltest.Open(t, dialect)
			var mu sync.Mutex
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
			opts := proxy.KeyringOptions{RotateEvery: 24 * time.Hour, PublishAhead: time.Hour, AssertionTTL: 2 * time.Minute, Now: clock}

			// Replicas starting together create one key between them.
			fleet := make([]*proxy.Keyring, 4)
			var wg sync.WaitGroup
			errs := make([]error, len(fleet))
			for i := range fleet {
				wg.Go(func() { fleet[i], errs[i] = proxy.NewKeyring(ctx, store, opts) })
			}
			wg.Wait()
			must(t, errors.Join(errs...))
			stored, err := store.SigningKeys(ctx)
			must(t, err)
			if len(stored) != 1 {
				t.Fatalf("4 replicas starting at once stored %d keys, want 1", len(stored))
			}
			first := stored[0].ID
			for i, k := range fleet {
				if ids := k.KeyIDs(); !slices.Equal(ids, []string{first}) {
					t.Errorf("replica %d publishes %v, want [%s]", i, ids, first)
				}
			}
			a, b := fleet[0], fleet[1]
			signer := func(k *proxy.Keyring) string { return proxy.SigningKeyID(k, clock()) }
			if signer(a) != first {
				t.Fatalf("the first key does not sign")
			}

			// An hour before its time is up the next key is published, by
			// one replica, all of them rotating at once; it does not sign yet.
			advance(23*time.Hour + time.Second)
			for _, k := range fleet {
				wg.Go(func() { must(t, k.Refresh(ctx)) })
			}
			wg.Wait()
			stored, _ = store.SigningKeys(ctx)
			if len(stored) != 2 {
				t.Fatalf("after a rotation by 4 replicas at once %d keys are stored, want 2", len(stored))
			}
			next := stored[1].ID
			for i, k := range fleet {
				if ids := k.KeyIDs(); !slices.Equal(ids, []string{first, next}) {
					t.Errorf("replica %d publishes %v, want both keys", i, ids)
				}
				if signer(k) != first {
					t.Errorf("replica %d signs with the next key before its time", i)
				}
			}

			// At its time every replica signs with it, without a refresh.
			advance(time.Hour)
			if signer(a) != next || signer(b) != next {
				t.Errorf("at the switch, replicas sign with %s and %s, want %s", signer(a), signer(b), next)
			}
			// The old key stays published while an assertion it signed (or
			// that a replica without news of the next key signed) may live:
			// an hour more, the lifetime and a minute of clock skew.
			advance(time.Hour + 2*time.Minute)
			must(t, a.Refresh(ctx))
			if ids := a.KeyIDs(); !slices.Contains(ids, first) {
				t.Errorf("the old key was withdrawn while its assertions could still be valid")
			}
			advance(time.Minute + time.Second)
			must(t, a.Refresh(ctx))
			must(t, b.Refresh(ctx))
			if ids := b.KeyIDs(); !slices.Equal(ids, []string{next}) {
				t.Errorf("after its last assertion expired the JWKS has %v, want only %s", ids, next)
			}
		})
	}
}

func TestKeyringStartsAfreshWhenEveryKeyLapsed(t *testing.T) {
	ctx := context.Background()
	store := sqltest.Open(t, "sqlite")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := proxy.KeyringOptions{Now: func() time.Time { return now }}
	k, err := proxy.NewKeyring(ctx, store, opts)
	must(t, err)
	old := proxy.SigningKeyID(k, now)
	now = now.Add(365 * 24 * time.Hour) // nobody ran for a year
	must(t, k.Refresh(ctx))
	if id := proxy.SigningKeyID(k, now); id == "" || id == old {
		t.Errorf("after a year off the signing key is %q (was %q), want a new one at once", id, old)
	}
	// An algorithm change is published ahead, then takes over.
	opts.Algorithm = proxy.EdDSA
	e, err := proxy.NewKeyring(ctx, store, opts)
	must(t, err)
	if ids := e.KeyIDs(); len(ids) != 2 || proxy.SigningKeyID(e, now) != ids[0] {
		t.Fatalf("after a switch to EdDSA: keys %v, signing %s; want the EdDSA key published, not signing", ids, proxy.SigningKeyID(e, now))
	}
	now = now.Add(time.Hour)
	if ids := e.KeyIDs(); proxy.SigningKeyID(e, now) != ids[1] {
		t.Errorf("an hour later the EdDSA key does not sign")
	}
}
