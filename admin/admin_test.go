package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The admin API's tests: every permission rule and refusal through a real
// HTTP server, on SQLite and on PostgreSQL when SCIMGATE_TEST_POSTGRES_DSN
// is set. Every exchange is checked against openapi.json.

// fixture is an org with three people and three service tokens:
//
//   - alice is in "Token Admins": platform.tokens and api.read
//   - bob is in no group: no permission
//   - carol is in "HR": platform.users
//   - bootstrap holds the built-in permissions; reader holds api.read;
//     tokadmin holds platform.tokens only
type fixture struct {
	t    *testing.T
	svc  *tokens.Service
	auth *tokens.Authenticator
	org  *tokens.Org
	srv  *httptest.Server
	http *http.Client
	now  atomic.Pointer[time.Time]

	alice, bob, carol           *tokens.User
	aliceTok, bobTok, carolTok  string
	bootstrap, reader, tokadmin string
	bootstrapID, readerID       string
}

func newFixture(t *testing.T, dialect string, opts Options) *fixture {
	t.Helper()
	ctx := context.Background()
	store := sqltest.Open(t, dialect)
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{
		Permissions: []string{"api.read", "api.write"},
		Sets:        map[string][]string{"reader": {"api.read"}, "writer": {"api.read", "api.write"}},
		GroupSets:   map[string][]string{"Token Admins": {tokens.PermTokens, "reader"}, "HR": {tokens.PermUsers}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, svc: tokens.NewService(store, policy)}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.now.Store(&start)
	clock := func() time.Time { return *f.now.Load() }
	f.svc.Now = clock
	f.auth = tokens.NewAuthenticator(store, policy, tokens.AuthOptions{Now: clock})
	f.svc.OnCommit = f.auth.Apply
	if f.org, err = f.svc.CreateOrg(ctx, tokens.Operator, "acme", 0); err != nil {
		t.Fatal(err)
	}
	f.alice, f.bob, f.carol = f.person("alice"), f.person("bob"), f.person("carol")
	f.group("Token Admins", f.alice)
	f.group("HR", f.carol)
	f.aliceTok, f.bobTok, f.carolTok = f.userToken(f.alice, "alice laptop"), f.userToken(f.bob, "bob laptop"), f.userToken(f.carol, "carol laptop")
	f.bootstrapID, f.bootstrap = f.serviceToken("bootstrap", tokens.BuiltinPermissions...)
	f.readerID, f.reader = f.serviceToken("reader", "reader")
	_, f.tokadmin = f.serviceToken("tokadmin", tokens.PermTokens)

	if opts.Now == nil {
		opts.Now = clock
	}
	h, err := New(f.svc, f.auth, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	f.http = &http.Client{Transport: newValidatingTransport(t)}
	return f
}

func (f *fixture) person(name string) *tokens.User {
	u := &tokens.User{OrgID: f.org.ID, UserName: name, Active: true}
	if err := f.svc.CreateUser(context.Background(), tokens.Operator, u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) group(name string, members ...*tokens.User) {
	g := &tokens.Group{OrgID: f.org.ID, DisplayName: name}
	for _, m := range members {
		g.MemberIDs = append(g.MemberIDs, m.ID)
	}
	if err := f.svc.CreateGroup(context.Background(), tokens.Operator, g); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) advance(d time.Duration) {
	next := f.now.Load().Add(d)
	f.now.Store(&next)
}

func (f *fixture) userToken(u *tokens.User, name string) string {
	f.advance(time.Millisecond)
	_, sec, err := f.svc.CreateUserToken(context.Background(), tokens.Operator, f.org.ID, u.ID, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return sec.Plaintext()
}

func (f *fixture) serviceToken(name string, sets ...string) (id, plaintext string) {
	f.advance(time.Millisecond)
	st, sec, err := f.svc.CreateServiceToken(context.Background(), tokens.Operator, f.org.ID, tokens.ServiceTokenSpec{Name: name, PermissionSets: sets})
	if err != nil {
		f.t.Fatal(err)
	}
	return st.ID, sec.Plaintext()
}

// tokenID finds a token's ID by its plaintext.
func (f *fixture) tokenID(plaintext string) string {
	info, err := f.svc.InspectToken(context.Background(), plaintext)
	if err != nil {
		f.t.Fatal(err)
	}
	return info.ID
}

// response is an answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r *response) problem(t *testing.T) problem {
	t.Helper()
	var p problem
	r.decode(t, &p)
	return p
}

// call makes a request with a bearer token ("" for none) and a body: nil,
// a string sent as is, or a value sent as JSON.
func (f *fixture) call(token, method, path string, body any, headers ...string) *response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.http.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}
}

// want checks a status and, for a problem, its reason and that its detail
// says each of says.
func (f *fixture) want(r *response, status int, reason string, says ...string) {
	f.t.Helper()
	if r.status != status {
		f.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if reason == "" {
		return
	}
	p := r.problem(f.t)
	if p.Reason != reason {
		f.t.Errorf("reason %q, want %q (%s)", p.Reason, reason, p.Detail)
	}
	for _, s := range says {
		if !strings.Contains(p.Detail, s) {
			f.t.Errorf("detail %q does not say %q", p.Detail, s)
		}
	}
}

func TestAPI(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Authentication", testAuthentication},
		{"Me", testMe},
		{"UserTokensOfAPerson", testUserTokensOfAPerson},
		{"UserTokenLimit", testUserTokenLimit},
		{"UserTokensOfTheOrg", testUserTokensOfTheOrg},
		{"ServiceTokensNeedPermTokens", testServiceTokensNeedPermTokens},
		{"ServiceTokenLifecycle", testServiceTokenLifecycle},
		{"NoEscalation", testNoEscalation},
		{"TokenStopsItself", testTokenStopsItself},
		{"Seats", testSeats},
		{"Audit", testAudit},
		{"Pagination", testPagination},
		{"OtherOrg", testOtherOrg},
		{"BadRequests", testBadRequests},
		{"LeakReport", testLeakReport},
		{"GitHubSecretScanning", testGitHubSecretScanning},
		{"Inspect", testInspect},
	}
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, newFixture(t, dialect, Options{AnonymousLeakReportsPerSecond: 1}))
				})
			}
		})
	}
}

func testAuthentication(t *testing.T, f *fixture) {
	tests := []struct {
		name, header, tokenError string
	}{
		{"no header", "", "missing"},
		{"another scheme", "Basic YWxpY2U6c2VjcmV0", "malformed"},
		{"not a token", "Bearer hello", "malformed"},
		{"unknown token", "Bearer " + tokens.NewSecret(tokens.KindUser).Plaintext(), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.header != "" {
				headers = []string{"Authorization", tt.header}
			}
			r := f.call("", "GET", "/api/v1/me", nil, headers...)
			f.want(r, 401, "unauthenticated")
			if p := r.problem(t); p.TokenError != tt.tokenError {
				t.Errorf("token_error %q, want %q", p.TokenError, tt.tokenError)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
	// The scheme is case-insensitive; responses are never cached.
	r := f.call("", "GET", "/api/v1/me", nil, "Authorization", "bearer "+f.bobTok)
	f.want(r, 200, "")
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", r.header.Get("Cache-Control"))
	}
	// The OpenAPI document needs no token.
	f.want(f.call("", "GET", "/api/v1/openapi.json", nil), 200, "")
}

func testMe(t *testing.T, f *fixture) {
	var me Me
	r := f.call(f.aliceTok, "GET", "/api/v1/me", nil)
	f.want(r, 200, "")
	r.decode(t, &me)
	if me.Kind != "user" || me.Name != "alice" || me.Org != "acme" || me.UserTokens == nil || *me.UserTokens != (UserTokenCount{Active: 1, Max: 10}) {
		t.Errorf("alice's me = %+v", me)
	}
	if strings.Join(me.Groups, ",") != "Token Admins" || strings.Join(me.Permissions, ",") != "api.read,platform.tokens" || me.Token == nil || me.Token.Name != "alice laptop" {
		t.Errorf("alice's groups %v, permissions %v, token %+v", me.Groups, me.Permissions, me.Token)
	}
	r = f.call(f.reader, "GET", "/api/v1/me", nil)
	f.want(r, 200, "")
	me = Me{}
	r.decode(t, &me)
	if me.Kind != "service" || me.Name != "reader" || me.UserTokens != nil || strings.Join(me.PermissionSets, ",") != "reader" {
		t.Errorf("reader's me = %+v", me)
	}
}

func testUserTokensOfAPerson(t *testing.T, f *fixture) {
	r := f.call(f.bobTok, "POST", "/api/v1/user-tokens", map[string]string{"name": "ci"})
	f.want(r, 201, "")
	var nt NewToken
	r.decode(t, &nt)
	if !strings.HasPrefix(nt.Secret, "sgu_") || nt.Owner != "bob" || nt.Kind != "user" || nt.ExpiresAt == nil || nt.PermissionSets != nil {
		t.Errorf("created %+v", nt)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/user-tokens/"+nt.ID {
		t.Errorf("Location %q", loc)
	}
	f.want(f.call(nt.Secret, "GET", "/api/v1/me", nil), 200, "")

	// A service token never creates a user token.
	f.want(f.call(f.bootstrap, "POST", "/api/v1/user-tokens", map[string]string{"name": "x"}), 403, "forbidden", "only a person")

	var list TokenList
	r = f.call(f.bobTok, "GET", "/api/v1/user-tokens", nil)
	f.want(r, 200, "")
	r.decode(t, &list)
	if len(list.Tokens) != 2 || list.NextCursor != nil {
		t.Fatalf("bob lists %+v, want his 2 tokens", list)
	}
	for _, tok := range list.Tokens {
		if tok.Owner != "bob" || tok.DisplayPrefix == "" || tok.CreatedAt.IsZero() || tok.ExpiresAt == nil || tok.Status != "active" {
			t.Errorf("listed %+v", tok)
		}
	}
	f.want(f.call(f.bobTok, "GET", "/api/v1/user-tokens?owner=alice", nil), 403, "forbidden", "platform.tokens", `user "bob"`)
	aliceID := f.tokenID(f.aliceTok)
	f.want(f.call(f.bobTok, "GET", "/api/v1/user-tokens/"+aliceID, nil), 403, "forbidden", "platform.tokens")
	f.want(f.call(f.bobTok, "DELETE", "/api/v1/user-tokens/"+aliceID, nil), 403, "forbidden", "another person's user token")
	f.want(f.call(f.aliceTok, "GET", "/api/v1/me", nil), 200, "")

	// Bob deletes his new token; it is refused at once.
	r = f.call(f.bobTok, "DELETE", "/api/v1/user-tokens/"+nt.ID, nil)
	f.want(r, 200, "")
	var done Done
	r.decode(t, &done)
	if done.Result != "deleted" || done.Self {
		t.Errorf("delete: %+v", done)
	}
	f.want(f.call(nt.Secret, "GET", "/api/v1/me", nil), 401, "unauthenticated")
	f.want(f.call(f.bobTok, "GET", "/api/v1/user-tokens/"+nt.ID, nil), 404, "not_found")
}

func testUserTokenLimit(t *testing.T, f *fixture) {
	for i := 2; i <= 10; i++ {
		f.want(f.call(f.bobTok, "POST", "/api/v1/user-tokens", map[string]string{"name": fmt.Sprint("t", i)}), 201, "")
	}
	f.want(f.call(f.bobTok, "POST", "/api/v1/user-tokens", map[string]string{"name": "eleventh"}), 403, "limit_reached", "10 active tokens", "delete one first")
	var me Me
	f.call(f.bobTok, "GET", "/api/v1/me", nil).decode(t, &me)
	if me.UserTokens.Active != 10 {
		t.Errorf("me: %d active user tokens, want 10", me.UserTokens.Active)
	}
}

func testUserTokensOfTheOrg(t *testing.T, f *fixture) {
	for _, admin := range []string{f.aliceTok, f.tokadmin} {
		var list TokenList
		r := f.call(admin, "GET", "/api/v1/user-tokens", nil)
		f.want(r, 200, "")
		r.decode(t, &list)
		var owners []string
		for _, tok := range list.Tokens {
			owners = append(owners, tok.Owner)
		}
		if strings.Join(owners, ",") != "alice,bob,carol" {
			t.Errorf("owners %v, want alice,bob,carol", owners)
		}
	}
	var list TokenList
	f.call(f.aliceTok, "GET", "/api/v1/user-tokens?owner=bob&status=active&name_prefix=bob", nil).decode(t, &list)
	if len(list.Tokens) != 1 || list.Tokens[0].Owner != "bob" {
		t.Fatalf("filtered: %+v", list)
	}
	f.want(f.call(f.aliceTok, "GET", "/api/v1/user-tokens?owner_id="+f.bob.ID+"&name_prefix=x", nil), 200, "")
	r := f.call(f.aliceTok, "DELETE", "/api/v1/user-tokens/"+list.Tokens[0].ID, nil)
	f.want(r, 200, "")
	f.want(f.call(f.bobTok, "GET", "/api/v1/me", nil), 401, "unauthenticated")
	f.want(f.call(f.reader, "GET", "/api/v1/user-tokens", nil), 403, "forbidden", "platform.tokens", `service user "reader"`)
	f.want(f.call(f.aliceTok, "GET", "/api/v1/user-tokens?owner=nobody", nil), 404, "not_found", "nobody")
	f.want(f.call(f.aliceTok, "GET", "/api/v1/user-tokens?status=dead", nil), 400, "invalid_request", "active, revoked or expired")
}

func testServiceTokensNeedPermTokens(t *testing.T, f *fixture) {
	id := f.bootstrapID
	calls := []struct{ method, path string }{
		{"GET", "/api/v1/service-tokens"},
		{"POST", "/api/v1/service-tokens"},
		{"GET", "/api/v1/service-tokens/" + id},
		{"PATCH", "/api/v1/service-tokens/" + id},
		{"DELETE", "/api/v1/service-tokens/" + id},
		{"POST", "/api/v1/service-tokens/" + id + "/revoke"},
		{"POST", "/api/v1/service-tokens/" + id + "/regenerate"},
		{"GET", "/api/v1/permission-sets"},
		{"GET", "/api/v1/audit-events"},
	}
	for _, who := range []struct{ token, name string }{{f.bobTok, `user "bob"`}, {f.carolTok, `user "carol"`}, {f.reader, `service user "reader"`}} {
		for _, c := range calls {
			var body any
			switch c.method {
			case "POST":
				if strings.HasSuffix(c.path, "tokens") {
					body = map[string]any{"name": "x"}
				}
			case "PATCH":
				body = map[string]any{"name": "x"}
			}
			t.Run(who.name+" "+c.method+" "+c.path, func(t *testing.T) {
				f.want(f.call(who.token, c.method, c.path, body), 403, "forbidden", "platform.tokens", who.name)
			})
		}
	}
	f.want(f.call(f.bootstrap, "GET", "/api/v1/me", nil), 200, "")
}

func testServiceTokenLifecycle(t *testing.T, f *fixture) {
	r := f.call(f.aliceTok, "POST", "/api/v1/service-tokens", map[string]any{"name": "sync", "inactivity_days": 60, "permission_sets": []string{"reader"}})
	f.want(r, 201, "")
	var created NewToken
	r.decode(t, &created)
	if !strings.HasPrefix(created.Secret, "sgs_") || created.InactivityDays != 60 || strings.Join(created.PermissionSets, ",") != "reader" || created.Owner != "sync" {
		t.Errorf("created %+v", created)
	}
	path := "/api/v1/service-tokens/" + created.ID
	f.want(f.call(f.aliceTok, "GET", path, nil), 200, "")
	f.want(f.call(f.aliceTok, "POST", path+"/regenerate", nil), 409, "wrong_state", "only a revoked token")
	f.want(f.call(f.aliceTok, "DELETE", path, nil), 409, "wrong_state", "revoke it before deleting")

	var edited Token
	r = f.call(f.aliceTok, "PATCH", path, map[string]any{"name": "sync2", "inactivity_days": 180, "permission_sets": []string{}})
	f.want(r, 200, "")
	r.decode(t, &edited)
	if edited.Name != "sync2" || edited.InactivityDays != 180 || len(edited.PermissionSets) != 0 {
		t.Errorf("edited %+v", edited)
	}
	f.want(f.call(f.aliceTok, "PATCH", path, map[string]any{"inactivity_days": 30}), 400, "invalid_request", "31, 45, 60 or 180")
	f.want(f.call(f.aliceTok, "PATCH", path, map[string]any{}), 400, "invalid_request", "nothing to change")

	r = f.call(f.aliceTok, "POST", path+"/revoke", nil)
	f.want(r, 200, "")
	var done Done
	r.decode(t, &done)
	if done.Result != "revoked" || done.Self {
		t.Errorf("revoke: %+v", done)
	}
	f.want(f.call(created.Secret, "GET", "/api/v1/me", nil), 401, "unauthenticated")
	f.want(f.call(f.aliceTok, "POST", path+"/revoke", nil), 409, "wrong_state", "already revoked")

	var regen NewToken
	r = f.call(f.aliceTok, "POST", path+"/regenerate", nil)
	f.want(r, 200, "")
	r.decode(t, &regen)
	if regen.Secret == created.Secret || regen.Status != "active" || regen.ID != created.ID {
		t.Errorf("regenerated %+v", regen)
	}
	f.want(f.call(regen.Secret, "GET", "/api/v1/me", nil), 200, "")
	if p := f.call(created.Secret, "GET", "/api/v1/me", nil).problem(t); p.TokenError != "unknown" {
		t.Errorf("old secret: %+v", p)
	}
	f.want(f.call(f.aliceTok, "POST", path+"/revoke", nil), 200, "")
	f.want(f.call(f.aliceTok, "DELETE", path, nil), 200, "")
	f.want(f.call(f.aliceTok, "GET", path, nil), 404, "not_found")

	// A service token's list shows its permission sets.
	var list TokenList
	f.call(f.aliceTok, "GET", "/api/v1/service-tokens?status=active", nil).decode(t, &list)
	if len(list.Tokens) != 3 || list.Tokens[0].Name != "bootstrap" || list.Tokens[0].PermissionSets == nil {
		t.Errorf("service tokens: %+v", list)
	}
	f.want(f.call(f.aliceTok, "GET", "/api/v1/service-tokens?owner=bob", nil), 400, "invalid_request", "unknown query parameter")
}

func testNoEscalation(t *testing.T, f *fixture) {
	f.want(f.call(f.aliceTok, "POST", "/api/v1/service-tokens", map[string]any{"name": "w", "permission_sets": []string{"writer"}}), 403, "forbidden", "api.write", `user "alice"`)
	f.want(f.call(f.tokadmin, "POST", "/api/v1/service-tokens", map[string]any{"name": "r", "permission_sets": []string{"reader"}}), 403, "forbidden", "api.read", `service user "tokadmin"`)
	f.want(f.call(f.aliceTok, "PATCH", "/api/v1/service-tokens/"+f.readerID, map[string]any{"permission_sets": []string{"writer"}}), 403, "forbidden", "api.write")
	f.want(f.call(f.aliceTok, "PATCH", "/api/v1/service-tokens/"+f.bootstrapID, map[string]any{"name": "mine"}), 403, "forbidden", "platform.groups")
	f.want(f.call(f.aliceTok, "POST", "/api/v1/service-tokens/"+f.bootstrapID+"/revoke", nil), 200, "")
	f.want(f.call(f.aliceTok, "POST", "/api/v1/service-tokens/"+f.bootstrapID+"/regenerate", nil), 403, "forbidden", "platform.groups")

	// The defaults are what the caller may grant.
	var sets PermissionSetList
	f.call(f.aliceTok, "GET", "/api/v1/permission-sets", nil).decode(t, &sets)
	var grantable []string
	for _, s := range sets.PermissionSets {
		if s.Grantable {
			grantable = append(grantable, s.Name)
		}
	}
	if strings.Join(grantable, ",") != "api.read,platform.tokens,reader" {
		t.Errorf("grantable %v", grantable)
	}
	var nt NewToken
	r := f.call(f.aliceTok, "POST", "/api/v1/service-tokens", map[string]any{"name": "defaults"})
	f.want(r, 201, "")
	r.decode(t, &nt)
	if strings.Join(nt.PermissionSets, ",") != "api.read,platform.tokens,reader" || nt.InactivityDays != 45 {
		t.Errorf("defaults: %+v", nt)
	}
}

func testTokenStopsItself(t *testing.T, f *fixture) {
	f.want(f.call(f.reader, "POST", "/api/v1/service-tokens/"+f.bootstrapID+"/revoke", nil), 403, "forbidden", "platform.tokens")
	r := f.call(f.reader, "POST", "/api/v1/service-tokens/"+f.readerID+"/revoke", nil)
	f.want(r, 200, "")
	var done Done
	r.decode(t, &done)
	if !done.Self || !strings.Contains(done.Message, "no longer works") {
		t.Errorf("self revoke: %+v", done)
	}
	f.want(f.call(f.reader, "GET", "/api/v1/me", nil), 401, "unauthenticated")

	r = f.call(f.bobTok, "DELETE", "/api/v1/me/token", nil)
	f.want(r, 200, "")
	r.decode(t, &done)
	if !done.Self || done.Result != "deleted" || !strings.Contains(done.Message, "no longer works") {
		t.Errorf("DELETE /me/token: %+v", done)
	}
	f.want(f.call(f.bobTok, "GET", "/api/v1/me", nil), 401, "unauthenticated")
	r = f.call(f.tokadmin, "DELETE", "/api/v1/me/token", nil)
	f.want(r, 200, "")
	r.decode(t, &done)
	if done.Result != "revoked" || !done.Self {
		t.Errorf("service DELETE /me/token: %+v", done)
	}
	// Deleting one's own user token by ID says it was the request's own.
	r = f.call(f.carolTok, "DELETE", "/api/v1/user-tokens/"+f.tokenID(f.carolTok), nil)
	f.want(r, 200, "")
	r.decode(t, &done)
	if !done.Self {
		t.Errorf("carol deletes her own token by ID: %+v", done)
	}
}

func testSeats(t *testing.T, f *fixture) {
	dave := f.person("dave")
	_ = dave
	var seats Seats
	r := f.call(f.carolTok, "GET", "/api/v1/seats", nil)
	f.want(r, 200, "")
	r.decode(t, &seats)
	if seats != (Seats{Org: "acme", Seats: 4, ActivePeople: 4, PeopleWithActiveTokens: 3, ServiceUsers: 3, ActiveServiceTokens: 3}) {
		t.Errorf("seats %+v", seats)
	}
	f.want(f.call(f.aliceTok, "GET", "/api/v1/seats", nil), 403, "forbidden", "platform.users")
	f.want(f.call(f.tokadmin, "GET", "/api/v1/seats", nil), 403, "forbidden", "platform.users")
	f.want(f.call(f.bootstrap, "GET", "/api/v1/seats", nil), 200, "")
}

func testAudit(t *testing.T, f *fixture) {
	var nt NewToken
	f.call(f.aliceTok, "POST", "/api/v1/service-tokens", map[string]any{"name": "audited", "permission_sets": []string{"reader"}}).decode(t, &nt)
	f.want(f.call(f.tokadmin, "POST", "/api/v1/service-tokens/"+nt.ID+"/revoke", nil), 200, "")
	var list AuditList
	r := f.call(f.aliceTok, "GET", "/api/v1/audit-events?target="+nt.ID, nil)
	f.want(r, 200, "")
	r.decode(t, &list)
	if len(list.Events) != 2 {
		t.Fatalf("events %+v", list.Events)
	}
	if e := list.Events[0]; e.Action != "token.revoke" || !strings.HasPrefix(e.Actor, "service user tokadmin (token ") || e.Org != "acme" {
		t.Errorf("revoke event %+v", e)
	}
	if e := list.Events[1]; e.Action != "token.create" || !strings.HasPrefix(e.Actor, "user alice (token ") {
		t.Errorf("create event %+v", e)
	}
	f.want(f.call(f.aliceTok, "GET", "/api/v1/audit-events?action=token.create&limit=1", nil), 200, "")
	f.want(f.call(f.aliceTok, "GET", "/api/v1/audit-events?limit=0", nil), 400, "invalid_request", "limit must be 1 to 1000")
	f.want(f.call(f.aliceTok, "GET", "/api/v1/audit-events?limit=5000", nil), 400, "invalid_request", "limit must be 1 to 1000")
}

func testPagination(t *testing.T, f *fixture) {
	for i := range 12 {
		f.userToken([]*tokens.User{f.alice, f.bob, f.carol}[i%3], fmt.Sprintf("bulk %02d", i))
	}
	seen := map[string]bool{}
	path := "/api/v1/user-tokens?limit=4"
	pages := 0
	for {
		var list TokenList
		r := f.call(f.aliceTok, "GET", path, nil)
		f.want(r, 200, "")
		r.decode(t, &list)
		pages++
		for _, tok := range list.Tokens {
			if seen[tok.ID] {
				t.Fatalf("token %s twice", tok.ID)
			}
			seen[tok.ID] = true
		}
		if list.NextCursor == nil {
			break
		}
		path = "/api/v1/user-tokens?limit=4&cursor=" + *list.NextCursor
	}
	if pages != 4 || len(seen) != 15 {
		t.Errorf("%d pages, %d tokens; want 4 pages of 15 tokens", pages, len(seen))
	}
	f.want(f.call(f.aliceTok, "GET", "/api/v1/user-tokens?cursor=nonsense", nil), 400, "invalid_request", "start again without it")
	f.want(f.call(f.aliceTok, "GET", "/api/v1/user-tokens?limit=many", nil), 400, "invalid_request", "whole number")
	f.want(f.call(f.aliceTok, "GET", "/api/v1/user-tokens?limit=1&limit=2", nil), 400, "invalid_request", "give it once")
}

func testOtherOrg(t *testing.T, f *fixture) {
	ctx := context.Background()
	other, err := f.svc.CreateOrg(ctx, tokens.Operator, "other", 0)
	if err != nil {
		t.Fatal(err)
	}
	st, sec, err := f.svc.CreateServiceToken(ctx, tokens.Operator, other.ID, tokens.ServiceTokenSpec{Name: "theirs", PermissionSets: tokens.BuiltinPermissions})
	if err != nil {
		t.Fatal(err)
	}
	f.want(f.call(f.aliceTok, "POST", "/api/v1/service-tokens/"+st.ID+"/revoke", nil), 404, "not_found")
	f.want(f.call(sec.Plaintext(), "DELETE", "/api/v1/user-tokens/"+f.tokenID(f.bobTok), nil), 404, "not_found")
	var list TokenList
	f.call(sec.Plaintext(), "GET", "/api/v1/user-tokens", nil).decode(t, &list)
	if len(list.Tokens) != 0 {
		t.Errorf("another org lists %+v", list.Tokens)
	}
}

func testBadRequests(t *testing.T, f *fixture) {
	tests := []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
		reason       string
		says         []string
	}{
		{"unknown field", "POST", "/api/v1/user-tokens", `{"nme": "x"}`, nil, 400, "invalid_request", []string{`"nme"`, "name"}},
		{"wrong type", "POST", "/api/v1/service-tokens", `{"name": "x", "inactivity_days": "45"}`, nil, 400, "invalid_request", []string{"inactivity_days", "a number"}},
		{"not JSON", "POST", "/api/v1/user-tokens", `{"name": `, nil, 400, "invalid_request", []string{"not valid JSON"}},
		{"two values", "POST", "/api/v1/user-tokens", `{"name": "a"} {"name": "b"}`, nil, 400, "invalid_request", []string{"more than one JSON value"}},
		{"empty body", "POST", "/api/v1/user-tokens", ``, nil, 400, "invalid_request", []string{"empty"}},
		{"array body", "POST", "/api/v1/user-tokens", `[]`, nil, 400, "invalid_request", []string{"an object"}},
		{"empty name", "POST", "/api/v1/user-tokens", `{"name": " "}`, nil, 400, "invalid_request", []string{"must not be empty"}},
		{"form body", "POST", "/api/v1/user-tokens", `name=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", []string{"application/json"}},
		{"too large", "POST", "/api/v1/user-tokens", `{"name": "` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, "body_too_large", []string{"65536"}},
		{"unknown query", "GET", "/api/v1/me?verbose=1", nil, nil, 400, "invalid_request", []string{`"verbose"`}},
		{"unknown path", "GET", "/api/v1/nothing", nil, nil, 404, "not_found", []string{"openapi.json"}},
		{"wrong method", "PUT", "/api/v1/user-tokens", `{}`, nil, 405, "method_not_allowed", []string{"GET", "POST"}},
		{"permission sets not a list", "PATCH", "/api/v1/service-tokens/x", `{"permission_sets": "reader"}`, nil, 400, "invalid_request", []string{"permission_sets", "array"}},
		{"bad permission sets", "PATCH", "/api/v1/service-tokens/x", `{"permission_sets": null}`, nil, 400, "invalid_request", []string{"not null"}},
		{"unknown set", "POST", "/api/v1/service-tokens", `{"name": "x", "permission_sets": ["nope"]}`, nil, 400, "invalid_request", []string{`"nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.call(f.aliceTok, tt.method, tt.path, tt.body, tt.headers...)
			f.want(r, tt.status, tt.reason, tt.says...)
			if tt.status == 405 && r.header.Get("Allow") != "GET, HEAD, POST" {
				t.Errorf("Allow %q", r.header.Get("Allow"))
			}
		})
	}
	// The refused requests changed nothing.
	var list TokenList
	f.call(f.aliceTok, "GET", "/api/v1/user-tokens?owner=alice", nil).decode(t, &list)
	if len(list.Tokens) != 1 {
		t.Errorf("alice holds %d tokens after refused requests, want 1", len(list.Tokens))
	}
}

func testLeakReport(t *testing.T, f *fixture) {
	var dead NewToken
	f.call(f.aliceTok, "POST", "/api/v1/service-tokens", map[string]any{"name": "old", "permission_sets": []string{"reader"}}).decode(t, &dead)
	f.want(f.call(f.aliceTok, "POST", "/api/v1/service-tokens/"+dead.ID+"/revoke", nil), 200, "")
	report := map[string]any{
		"tokens":   []string{f.reader, f.bobTok, dead.Secret, tokens.NewSecret(tokens.KindUser).Plaintext(), "sgs_nope"},
		"found_at": "https://github.com/acme/app/blob/main/.env",
	}
	r := f.call("", "POST", "/api/v1/tokens/report", report)
	f.want(r, 200, "")
	var res LeakReportResult
	r.decode(t, &res)
	var outcomes []string
	for _, fd := range res.Findings {
		outcomes = append(outcomes, fd.Outcome)
		if fd.Token != nil {
			t.Errorf("an anonymous reporter sees %+v", fd.Token)
		}
	}
	if strings.Join(outcomes, ",") != "revoked,deleted,already_dead,unknown,malformed" || res.Live != 2 || res.AlreadyDead != 1 || res.Unknown != 1 || res.Malformed != 1 {
		t.Errorf("report: %+v", res)
	}
	f.want(f.call(f.reader, "GET", "/api/v1/me", nil), 401, "unauthenticated")
	f.want(f.call(f.bobTok, "GET", "/api/v1/me", nil), 401, "unauthenticated")
	var events AuditList
	f.call(f.aliceTok, "GET", "/api/v1/audit-events?action=token.leak_report", nil).decode(t, &events)
	if len(events.Events) != 3 || !strings.HasPrefix(events.Events[0].Actor, "anonymous report from 127.0.0.1") ||
		!strings.Contains(events.Events[2].Detail, "found at https://github.com/acme/app/blob/main/.env") {
		t.Errorf("leak events %+v", events.Events)
	}

	// Without a token: ten seconds' worth at 1 a second, then 429.
	for i := 0; i < 9; i++ {
		f.want(f.call("", "POST", "/api/v1/tokens/report", map[string]any{"tokens": []string{"x"}}), 200, "")
	}
	r = f.call("", "POST", "/api/v1/tokens/report", map[string]any{"tokens": []string{"x"}})
	f.want(r, 429, "rate_limited", "try again")
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	f.advance(2 * time.Second)
	f.want(f.call("", "POST", "/api/v1/tokens/report", map[string]any{"tokens": []string{"x"}}), 200, "")

	// With a token: not rate-limited, and the details the caller may see.
	aliceSecond := f.userToken(f.alice, "second")
	r = f.call(f.aliceTok, "POST", "/api/v1/tokens/report", map[string]any{"tokens": []string{aliceSecond}})
	f.want(r, 200, "")
	res = LeakReportResult{}
	r.decode(t, &res)
	if res.Findings[0].Token == nil || res.Findings[0].Token.Owner != "alice" || !res.Findings[0].WasLive {
		t.Errorf("alice's report: %+v", res.Findings[0])
	}
	// A bad token is not taken for an anonymous report.
	f.want(f.call("garbage", "POST", "/api/v1/tokens/report", map[string]any{"tokens": []string{"x"}}), 401, "unauthenticated")
	f.advance(10 * time.Second)
	f.want(f.call("", "POST", "/api/v1/tokens/report", map[string]any{"tokens": []string{}}), 400, "invalid_request", "at least one")
	many := make([]string, 101)
	f.want(f.call("", "POST", "/api/v1/tokens/report", map[string]any{"tokens": many}), 400, "invalid_request", "split the report")
}

func TestAnonymousLeakReportsOff(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	f.want(f.call("", "POST", "/api/v1/tokens/report", map[string]any{"tokens": []string{f.reader}}), 401, "unauthenticated", "anonymous_leak_reports_per_second")
	f.want(f.call(f.reader, "GET", "/api/v1/me", nil), 200, "")
	f.want(f.call(f.bobTok, "POST", "/api/v1/tokens/report", map[string]any{"tokens": []string{f.reader}}), 200, "")
	f.want(f.call(f.reader, "GET", "/api/v1/me", nil), 401, "unauthenticated")
}

func testGitHubSecretScanning(t *testing.T, f *fixture) {
	body := `[{"token":"` + f.reader + `","type":"scimgate_service_token","url":"https://github.com/acme/app/blob/abc/.env","source":"content","extra":"ignored"},
		{"token":"sgu_00000000000000000000000000000000000000","type":"scimgate_user_token","url":"","source":"commit"}]`
	r := f.call("", "POST", "/api/v1/tokens/report/github", body)
	f.want(r, 200, "")
	var feedback []GitHubFeedback
	r.decode(t, &feedback)
	if len(feedback) != 2 || feedback[0].Label != "true_positive" || feedback[1].Label != "false_positive" ||
		feedback[0].TokenType != "scimgate_service_token" || len(feedback[0].TokenHash) != 64 {
		t.Errorf("feedback %+v", feedback)
	}
	f.want(f.call(f.reader, "GET", "/api/v1/me", nil), 401, "unauthenticated")
	var events AuditList
	f.call(f.aliceTok, "GET", "/api/v1/audit-events?action=token.leak_report", nil).decode(t, &events)
	if len(events.Events) != 1 || !strings.Contains(events.Events[0].Detail, "https://github.com/acme/app/blob/abc/.env (content, reported by GitHub secret scanning)") {
		t.Errorf("events %+v", events.Events)
	}
}

func testInspect(t *testing.T, f *fixture) {
	var tok Token
	r := f.call(f.bobTok, "POST", "/api/v1/tokens/inspect", map[string]string{"token": f.bobTok})
	f.want(r, 200, "")
	r.decode(t, &tok)
	if tok.Owner != "bob" || tok.Org != "acme" || tok.Kind != "user" || tok.Status != "active" {
		t.Errorf("inspect %+v", tok)
	}
	f.want(f.call(f.bobTok, "POST", "/api/v1/tokens/inspect", map[string]string{"token": f.aliceTok}), 403, "forbidden", "platform.tokens")
	f.want(f.call(f.aliceTok, "POST", "/api/v1/tokens/inspect", map[string]string{"token": f.bootstrap}), 200, "")
	f.want(f.call(f.aliceTok, "POST", "/api/v1/tokens/inspect", map[string]string{"token": "sgs_x"}), 400, "invalid_request", "not a scimgate token")
	f.want(f.call(f.aliceTok, "POST", "/api/v1/tokens/inspect", map[string]string{"token": tokens.NewSecret(tokens.KindService).Plaintext()}), 404, "not_found")
	f.want(f.call("", "POST", "/api/v1/tokens/inspect", map[string]string{"token": f.bobTok}), 401, "unauthenticated")
}
