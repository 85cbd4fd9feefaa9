package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimgate/scimgate/proxy"
	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// upstream is a real HTTP server that records what reaches it.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	hits    int
	headers http.Header
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits++
		u.headers = r.Header.Clone()
		u.mu.Unlock()
		io.WriteString(w, "hello from upstream")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last() (int, http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits, u.headers
}

// fixture is a proxy in front of an upstream, over a real store with an org,
// a person in a group, and tokens.
type fixture struct {
	store   *sqlstore.Store
	svc     *tokens.Service
	auth    *tokens.Authenticator
	up      *upstream
	front   *httptest.Server
	proxy   *proxy.Proxy
	org     *tokens.Org
	alice   *tokens.User
	userTok string // alice's token
	userID  string // its token ID
	svcTok  string
	svcID   string
	now     atomic.Pointer[time.Time]
	log     *bytes.Buffer
	logMu   sync.Mutex
	// keyring signs the assertions when the options ask for one.
	keyring *proxy.Keyring
}

func newFixture(t testing.TB, dialect string, opts proxy.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{store: sqltest.Open(t, dialect), up: newUpstream(t)}
	start := time.Now()
	f.now.Store(&start)
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{
		Permissions: []string{"orders.read", "orders.write"},
		Sets:        map[string][]string{"readers": {"orders.read"}, "writers": {"orders.read", "orders.write"}},
		GroupSets:   map[string][]string{"Order Desk": {"writers"}},
		DefaultSets: []string{"readers"},
	})
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return *f.now.Load() }
	f.svc = tokens.NewService(f.store, policy)
	f.svc.Now = clock
	f.auth = tokens.NewAuthenticator(f.store, policy, tokens.AuthOptions{Now: clock})
	f.svc.OnCommit = f.auth.Apply

	if f.org, err = f.svc.CreateOrg(ctx, tokens.Operator, "acme", 0); err != nil {
		t.Fatal(err)
	}
	f.alice = &tokens.User{OrgID: f.org.ID, UserName: "alice@acme.test", DisplayName: "Alice", Active: true}
	if err := f.svc.CreateUser(ctx, tokens.Operator, f.alice); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.CreateGroup(ctx, tokens.Operator, &tokens.Group{OrgID: f.org.ID, DisplayName: "Order Desk", MemberIDs: []string{f.alice.ID}}); err != nil {
		t.Fatal(err)
	}
	sydney := &tokens.Site{OrgID: f.org.ID, Name: "Sydney"}
	if err := f.svc.CreateSite(ctx, tokens.Operator, sydney); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.AddSiteMember(ctx, tokens.Operator, f.org.ID, sydney.ID, f.alice.ID); err != nil {
		t.Fatal(err)
	}
	tok, sec, err := f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, f.alice.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	f.userTok, f.userID = sec.Plaintext(), tok.ID
	st, sec, err := f.svc.CreateServiceToken(ctx, tokens.Operator, f.org.ID, tokens.ServiceTokenSpec{Name: "billing-sync", PermissionSets: []string{"readers"}})
	if err != nil {
		t.Fatal(err)
	}
	f.svcTok, f.svcID = sec.Plaintext(), st.ID

	if opts.Assertion != nil && opts.Assertion.Keyring == nil {
		if f.keyring, err = proxy.NewKeyring(ctx, f.store, proxy.KeyringOptions{Now: clock}); err != nil {
			t.Fatal(err)
		}
		opts.Assertion.Keyring = f.keyring
	}
	if opts.Now == nil {
		opts.Now = clock
	}
	opts.Upstream, _ = url.Parse(f.up.URL)
	if opts.HeaderPrefix == "" {
		opts.HeaderPrefix = "X-Scimgate-"
	}
	activity := proxy.NewActivityLog(1024)
	f.log = &bytes.Buffer{}
	actx, stop := context.WithCancel(context.Background())
	go activity.Run(actx, lockedWriter{&f.logMu, f.log})
	t.Cleanup(func() { stop(); activity.Wait() })
	opts.Activity = activity
	if f.proxy, err = proxy.New(f.auth, opts); err != nil {
		t.Fatal(err)
	}
	f.front = httptest.NewServer(f.proxy)
	t.Cleanup(f.front.Close)
	return f
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (f *fixture) proxyUpstream() *url.URL {
	u, _ := url.Parse(f.up.URL)
	return u
}

func (f *fixture) advance(d time.Duration) {
	t := f.now.Load().Add(d)
	f.now.Store(&t)
}

func (f *fixture) get(t *testing.T, path, token string, header http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", f.front.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v // as given: keep odd spellings such as X_Scimgate_Name
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestIdentityReachesUpstream(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newFixture(t, dialect, proxy.Options{})
			tests := []struct {
				name, token string
				want        map[string]string
			}{
				{"user token", f.userTok, map[string]string{
					"X-Scimgate-Kind":        "user",
					"X-Scimgate-Id":          f.alice.ID,
					"X-Scimgate-Name":        "alice@acme.test",
					"X-Scimgate-Org":         "acme",
					"X-Scimgate-Org-Id":      "", // not among the default headers
					"X-Scimgate-Groups":      "Order Desk",
					"X-Scimgate-Permissions": "orders.read,orders.write",
					"X-Scimgate-Token-Id":    f.userID,
				}},
				{"service token", f.svcTok, map[string]string{
					"X-Scimgate-Kind":        "service",
					"X-Scimgate-Name":        "billing-sync",
					"X-Scimgate-Org":         "acme",
					"X-Scimgate-Permissions": "orders.read",
					"X-Scimgate-Token-Id":    f.svcID,
					"X-Scimgate-Groups":      "",
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					resp := f.get(t, "/orders", tt.token, nil)
					if resp.StatusCode != 200 {
						t.Fatalf("GET /orders with a %s = %d, want 200", tt.name, resp.StatusCode)
					}
					_, h := f.up.last()
					for k, want := range tt.want {
						if got := h.Get(k); got != want {
							t.Errorf("upstream got %s: %q, want %q", k, got, want)
						}
					}
					if got := h.Get("Authorization"); got != "" {
						t.Errorf("upstream got Authorization %q: the bearer token must not be forwarded", got)
					}
					if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
						t.Errorf("upstream got X-Forwarded-For %q, want 127.0.0.1", got)
					}
					if got, want := h.Get("X-Forwarded-Host"), strings.TrimPrefix(f.front.URL, "http://"); got != want {
						t.Errorf("upstream got X-Forwarded-Host %q, want %q", got, want)
					}
					if got := h.Get("X-Forwarded-Proto"); got != "http" {
						t.Errorf("upstream got X-Forwarded-Proto %q, want http", got)
					}
				})
			}
		})
	}
}

func TestSpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{PublicPaths: []string{"/public/"}})
	spoofed := http.Header{
		"X-Scimgate-Name":           {"mallory"},
		"x-scimgate-kind":           {"service"},
		"X_Scimgate_Permissions":    {"orders.write"},
		"x_SCIMGATE_org":            {"evil"},
		"X-SCIMGATE-TOKEN-ID":       {"tok_forged"},
		"X-Scimgate-Something-New":  {"x"},
		"X-Forwarded-User":          {"mallory"},
		"X_Forwarded_Email":         {"mallory@evil.test"},
		"x-forwarded-groups":        {"admins"},
		"X-Auth-Request-User":       {"mallory"},
		"Remote-User":               {"mallory"},
		"Remote_User":               {"mallory"},
		"X-Forwarded-For":           {"6.6.6.6"},
		"X_Forwarded_For":           {"6.6.6.6"},
		"X-Real-Ip":                 {"6.6.6.6"},
		"X-Client-Ip":               {"6.6.6.6"},
		"Client-Ip":                 {"6.6.6.6"},
		"True-Client-Ip":            {"6.6.6.6"},
		"X-Cluster-Client-Ip":       {"6.6.6.6"},
		"Cf-Connecting-Ip":          {"6.6.6.6"},
		"Fastly-Client-Ip":          {"6.6.6.6"},
		"X-Original-Forwarded-For":  {"6.6.6.6"},
		"Forwarded":                 {"for=6.6.6.6"},
		"X-Pomerium-Jwt-Assertion":  {"forged"},
		"X-Harmless-Application-Id": {"kept"},
	}
	for _, tc := range []struct{ name, path, token string }{
		{"with a user token", "/orders", f.userTok},
		{"with a service token", "/orders", f.svcTok},
		{"on a public path", "/public/status", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.get(t, tc.path, tc.token, spoofed)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			_, h := f.up.last()
			for k, vs := range h {
				norm := strings.ReplaceAll(strings.ToLower(k), "_", "-")
				for _, v := range vs {
					if strings.Contains(v, "mallory") || strings.Contains(v, "evil") || strings.Contains(v, "forged") || strings.Contains(v, "6.6.6.6") || v == "admins" {
						t.Errorf("spoofed header reached the upstream: %s: %q", k, v)
					}
				}
				if strings.HasPrefix(norm, "x-scimgate-") && tc.token == "" {
					t.Errorf("a public request reached the upstream with identity header %s", k)
				}
			}
			if h.Get("X-Harmless-Application-Id") != "kept" {
				t.Errorf("an ordinary header was dropped")
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "sqlite", proxy.Options{
		Routes: []proxy.Route{{PathPrefix: "/orders", Methods: []string{"POST"}, Permission: "orders.write"}},
	})
	// Tokens to refuse, each made unusable the way the product does it.
	bob := &tokens.User{OrgID: f.org.ID, UserName: "bob", Active: true}
	carol := &tokens.User{OrgID: f.org.ID, UserName: "carol", Active: true}
	for _, u := range []*tokens.User{bob, carol} {
		if err := f.svc.CreateUser(ctx, tokens.Operator, u); err != nil {
			t.Fatal(err)
		}
	}
	_, bobSec, _ := f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, bob.ID, "bob")
	_, carolSec, _ := f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, carol.ID, "carol")
	deleted, delSec, _ := f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, f.alice.ID, "old")
	revoked, revSec, _ := f.svc.CreateServiceToken(ctx, tokens.Operator, f.org.ID, tokens.ServiceTokenSpec{Name: "old-sync"})
	// Cache every one of them first: refusals must not depend on a cache miss.
	for _, tok := range []string{bobSec.Plaintext(), carolSec.Plaintext(), delSec.Plaintext(), revSec.Plaintext()} {
		if resp := f.get(t, "/x", tok, nil); resp.StatusCode != 200 {
			t.Fatalf("before the change: status %d, want 200", resp.StatusCode)
		}
	}
	must(t, f.svc.DeleteUserToken(ctx, tokens.Operator, "", "", deleted.ID))
	must(t, f.svc.RevokeServiceToken(ctx, tokens.Operator, "", revoked.ID))
	_, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, bob.ID)
	must(t, err)
	_, err = f.svc.RemoveUser(ctx, tokens.Operator, f.org.ID, carol.ID)
	must(t, err)
	hitsBefore, _ := f.up.last()

	tests := []struct {
		name, auth string
		status     int
		reason     string
	}{
		{"no header", "", 401, "missing"},
		{"basic auth", "Basic YWxpY2U6cGFzc3dvcmQ=", 401, "malformed"},
		{"bearer with nothing", "Bearer ", 401, "malformed"},
		{"garbage", "Bearer not-a-token", 401, "malformed"},
		{"typo", "Bearer " + f.userTok[:20] + flip(f.userTok[20]) + f.userTok[21:], 401, "malformed"},
		{"unknown", "Bearer " + tokens.NewSecret(tokens.KindUser).Plaintext(), 401, "unknown"},
		{"deleted", "Bearer " + delSec.Plaintext(), 401, "unknown"},
		{"revoked", "Bearer " + revSec.Plaintext(), 401, "revoked"},
		{"owner deactivated", "Bearer " + bobSec.Plaintext(), 401, "owner_deactivated"},
		{"owner removed", "Bearer " + carolSec.Plaintext(), 401, "owner_removed"},
		{"lowercase scheme is fine, route needs orders.write", "bearer " + f.svcTok, 403, "missing_permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.front.URL+"/orders/7", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error, Reason, Message string }
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.status || body.Reason != tt.reason {
				t.Fatalf("POST with %s = %d %q, want %d %q", tt.name, resp.StatusCode, body.Reason, tt.status, tt.reason)
			}
			if body.Message == "" {
				t.Errorf("refusal has no message a caller can act on")
			}
			wantErr := `error="invalid_token"`
			if tt.status == 403 {
				wantErr = `error="insufficient_scope"`
			}
			if got := resp.Header.Get("Www-Authenticate"); !strings.Contains(got, wantErr) {
				t.Errorf("WWW-Authenticate = %q, want %s", got, wantErr)
			}
		})
	}
	if hits, _ := f.up.last(); hits != hitsBefore {
		t.Errorf("refused requests reached the upstream %d times", hits-hitsBefore)
	}
	// A person with orders.write (through the group) passes the same route.
	req, _ := http.NewRequest("POST", f.front.URL+"/orders/7", nil)
	req.Header.Set("Authorization", "Bearer "+f.userTok)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /orders/7 with orders.write = %d, want 200", resp.StatusCode)
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestInactiveTokenRefusedAtOnce(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	if resp := f.get(t, "/", f.svcTok, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	f.advance(44 * 24 * time.Hour) // within 45 days of the last use
	if resp := f.get(t, "/", f.svcTok, nil); resp.StatusCode != 200 {
		t.Fatalf("after 44 days: status %d, want 200", resp.StatusCode)
	}
	f.advance(46 * 24 * time.Hour) // 46 days without use
	if resp := f.get(t, "/", f.svcTok, nil); resp.StatusCode != 401 {
		t.Fatalf("after 46 idle days: status %d, want 401", resp.StatusCode)
	}
	// The sweeper makes it final, with reason inactivity.
	n, err := f.svc.ExpireInactive(context.Background(), 0)
	must(t, err)
	if n != 2 {
		t.Errorf("ExpireInactive = %d, want 2 (the user and the service token)", n)
	}
	toks, _ := f.svc.ServiceTokens(context.Background(), f.org.ID)
	if toks[0].Status != tokens.StatusExpired || toks[0].StatusReason != tokens.ReasonInactivity {
		t.Errorf("after the sweep: %s/%s, want expired/inactivity", toks[0].Status, toks[0].StatusReason)
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	f.up.Close()
	if resp := f.get(t, "/", f.svcTok, nil); resp.StatusCode != 502 {
		t.Fatalf("upstream down: status %d, want 502", resp.StatusCode)
	}
}

func TestStoreDownIs503NeverAPass(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	if resp := f.get(t, "/", f.svcTok, nil); resp.StatusCode != 200 { // now cached
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	hits, _ := f.up.last()
	f.store.Close()
	if resp := f.get(t, "/", f.userTok, nil); resp.StatusCode != 503 {
		t.Errorf("uncached token with the store down: status %d, want 503", resp.StatusCode)
	}
	if after, _ := f.up.last(); after != hits {
		t.Errorf("a request the store could not check reached the upstream")
	}
	if resp := f.get(t, "/", f.svcTok, nil); resp.StatusCode != 200 {
		t.Errorf("cached token with the store down: status %d, want 200", resp.StatusCode)
	}
}

func TestServerSentEventsFlushAtOnce(t *testing.T) {
	release := make(chan struct{})
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	}))
	defer sse.Close()
	defer close(release)
	f := newFixture(t, "sqlite", proxy.Options{})
	u, _ := url.Parse(sse.URL)
	p, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-"})
	must(t, err)
	front := httptest.NewServer(p)
	defer front.Close()
	req, _ := http.NewRequest("GET", front.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.svcTok)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(resp.Body).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if l != "data: first\n" {
			t.Errorf("first event = %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the upstream held the stream open")
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Scimgate-Name") != "billing-sync" {
			http.Error(w, "not an authenticated upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		msg, _ := brw.ReadString('\n')
		brw.WriteString("echo " + msg)
		brw.Flush()
	}))
	defer ws.Close()
	f := newFixture(t, "sqlite", proxy.Options{})
	u, _ := url.Parse(ws.URL)
	p, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-"})
	must(t, err)
	front := httptest.NewServer(p)
	defer front.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", f.svcTok)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade status %d, want 101", resp.StatusCode)
	}
	io.WriteString(conn, "ping\n")
	if got, _ := br.ReadString('\n'); got != "echo ping\n" {
		t.Errorf("over the upgraded connection got %q, want %q", got, "echo ping\n")
	}
}

// countingStore counts the writes of a real store.
type countingStore struct {
	*sqlstore.Store
	recordUsage atomic.Int64
}

func (c *countingStore) RecordUsage(ctx context.Context, uses []tokens.Usage) error {
	c.recordUsage.Add(1)
	return c.Store.RecordUsage(ctx, uses)
}

func TestTenThousandRequestsOneWrite(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "sqlite", proxy.Options{})
	counting := &countingStore{Store: f.store}
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	auth := tokens.NewAuthenticator(counting, policy, tokens.AuthOptions{})
	u, _ := url.Parse(f.up.URL)
	p, err := proxy.New(auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-"})
	must(t, err)
	for i := range 10000 {
		req := httptest.NewRequest("GET", "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+f.svcTok)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
	}
	if n := counting.recordUsage.Load(); n != 0 {
		t.Fatalf("%d usage writes before the flush, want 0", n)
	}
	n, err := auth.FlushUsage(ctx)
	must(t, err)
	if writes := counting.recordUsage.Load(); writes != 1 || n != 1 {
		t.Fatalf("flush after 10,000 requests: %d writes for %d tokens, want 1 write for 1 token", writes, n)
	}
	toks, _ := f.svc.ServiceTokens(ctx, f.org.ID)
	if toks[0].UseCount != 10000 || toks[0].LastUsedAt.IsZero() {
		t.Errorf("stored use count %d, last used %v; want 10000 and a time", toks[0].UseCount, toks[0].LastUsedAt)
	}
	if n, _ := auth.FlushUsage(ctx); n != 0 || counting.recordUsage.Load() != 1 {
		t.Errorf("a flush with nothing new wrote again")
	}
}

func TestActivityLogNamesOwnerNeverToken(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	f.get(t, "/orders?secret=x", f.userTok, nil)
	f.get(t, "/orders", f.svcTok, nil)
	f.get(t, "/orders", "sgs_garbage", nil)
	f.front.Close()
	var out string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		f.logMu.Lock()
		out = f.log.String()
		f.logMu.Unlock()
		if strings.Count(out, "\n") >= 3 {
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("activity log has %d lines, want 3:\n%s", len(lines), out)
	}
	var recs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("activity line is not JSON: %v: %s", err, l)
		}
		recs = append(recs, m)
	}
	if recs[0]["identity_name"] != "alice@acme.test" || recs[0]["kind"] != "user" || recs[0]["status"] != float64(200) || recs[0]["path"] != "/orders" {
		t.Errorf("user request logged as %v", recs[0])
	}
	if recs[1]["identity_name"] != "billing-sync" || recs[1]["kind"] != "service" || recs[1]["token_prefix"] != f.svcTok[:8] {
		t.Errorf("service request logged as %v", recs[1])
	}
	if recs[2]["refused"] != "malformed" || recs[2]["status"] != float64(401) {
		t.Errorf("refused request logged as %v", recs[2])
	}
	for _, secret := range []string{f.userTok, f.svcTok} {
		sec, _ := tokens.Parse(secret)
		h := sec.Hash()
		if strings.Contains(out, secret[8:]) || strings.Contains(out, hex.EncodeToString(h[:])) {
			t.Errorf("the activity log contains a token or its hash")
		}
	}
}

func TestRoutesFirstMatchDecides(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{Routes: []proxy.Route{
		{PathPrefix: "/orders/export", Permission: "platform.tokens"},
		{PathPrefix: "/orders", Methods: []string{"GET"}, Permission: "orders.read"},
	}})
	// The service token holds orders.read only (set "readers").
	for _, tt := range []struct {
		path string
		want int
	}{{"/orders/7", 200}, {"/orders/export", 403}, {"/elsewhere", 200}} {
		if resp := f.get(t, tt.path, f.svcTok, nil); resp.StatusCode != tt.want {
			t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}
}

func TestOnlyChosenIdentityHeadersAreForwarded(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{IdentityHeaders: []string{"id", "permissions"}})
	resp := f.get(t, "/", f.userTok, http.Header{"X-Scimgate-Name": {"mallory"}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, h := f.up.last()
	var got []string
	for k := range h {
		if strings.HasPrefix(k, "X-Scimgate-") {
			got = append(got, k)
		}
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "X-Scimgate-Id,X-Scimgate-Permissions" {
		t.Errorf("upstream got identity headers %v, want only Id and Permissions", got)
	}
	if _, err := proxy.New(f.auth, proxy.Options{Upstream: f.proxyUpstream(), HeaderPrefix: "X-", IdentityHeaders: []string{"email"}}); err == nil {
		t.Errorf("New with an unknown identity header succeeded")
	}
}
