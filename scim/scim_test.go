package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// fixture is a real store, service and authenticator behind the SCIM
// handler, mounted on a mux at /scim/v2/ as the binary mounts it.
type fixture struct {
	t       testing.TB
	svc     *tokens.Service
	auth    *tokens.Authenticator
	org     *tokens.Org
	handler http.Handler
	server  *httptest.Server
	// token is a service token holding PermUsers and PermGroups: what an
	// identity provider is given.
	token   string
	tokenID string
	logs    *logRecorder
}

// The policy: members of group "Engineering" may read orders.
var testPolicy = tokens.PolicyConfig{
	Permissions: []string{"orders.read"},
	Sets:        map[string][]string{"readers": {"orders.read"}},
	GroupSets:   map[string][]string{"Engineering": {"readers"}},
}

func newFixture(t testing.TB, dialect string) *fixture {
	t.Helper()
	store := sqltest.Open(t, dialect)
	policy, err := tokens.NewPolicy(testPolicy)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, logs: &logRecorder{}}
	f.svc = tokens.NewService(store, policy)
	f.auth = tokens.NewAuthenticator(store, policy, tokens.AuthOptions{})
	f.svc.OnCommit = f.auth.Apply
	ctx := context.Background()
	if f.org, err = f.svc.CreateOrg(ctx, tokens.Operator, "acme", 0); err != nil {
		t.Fatal(err)
	}
	f.token, f.tokenID = f.serviceToken("okta", tokens.PermUsers, tokens.PermGroups)
	f.handler, err = New(f.svc, f.auth, Options{Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", f.handler)
	f.server = httptest.NewServer(mux)
	t.Cleanup(f.server.Close)
	return f
}

func (f *fixture) serviceToken(name string, sets ...string) (plaintext, id string) {
	f.t.Helper()
	st, secret, err := f.svc.CreateServiceToken(context.Background(), tokens.Operator, f.org.ID,
		tokens.ServiceTokenSpec{Name: name, PermissionSets: sets})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret.Plaintext(), st.ID
}

// userToken creates a token for a user, as the user would, and checks that
// it works.
func (f *fixture) userToken(userID string) string {
	f.t.Helper()
	_, secret, err := f.svc.CreateUserToken(context.Background(), tokens.Operator, f.org.ID, userID, "laptop")
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.auth.Authenticate(context.Background(), secret.Plaintext()); err != nil {
		f.t.Fatalf("a new user token is refused: %v", err)
	}
	return secret.Plaintext()
}

// response is what a test reads of an answer.
type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends a request with the IdP's token. headers are name, value pairs;
// an "Authorization" among them replaces the token.
func (f *fixture) do(method, path, body string, headers ...string) *response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.server.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("User-Agent", "Okta SCIM Client 1.0.0")
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.server.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			f.t.Fatalf("%s %s: the body is not a JSON object: %v\n%s", method, path, err, raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != contentType {
			f.t.Errorf("%s %s: Content-Type %q, want %q", method, path, ct, contentType)
		}
	}
	if r.status >= 500 {
		f.t.Errorf("%s %s: status %d: %s", method, path, r.status, raw)
	}
	return r
}

// createUser provisions a user as Okta does and returns its id.
func (f *fixture) createUser(userName string) string {
	f.t.Helper()
	r := f.do("POST", "/scim/v2/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":%q,"name":{"givenName":"Test","familyName":"User"},"active":true}`, userName))
	if r.status != http.StatusCreated {
		f.t.Fatalf("create user %s: status %d: %s", userName, r.status, r.raw)
	}
	return r.body["id"].(string)
}

// get reads a JSON value at a dotted path, with [i] for array elements and
// URNs spelled whole: "emails[0].value", "meta.version".
func get(v any, path string) any {
	for _, part := range splitJSONPath(path) {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			var i int
			if _, err := fmt.Sscanf(part, "%d", &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

var jsonPathPart = regexp.MustCompile(`urn:[^.\[]*(?:\.\d[^.\[]*)*|[^.\[\]]+`)

func splitJSONPath(p string) []string { return jsonPathPart.FindAllString(p, -1) }

// logRecorder keeps what the handler logs, to show with a failure.
type logRecorder struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// checkError checks a SCIM error response (RFC 7644 3.12).
func checkError(t testing.TB, r *response, status int, scimType string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if got := get(r.body, "schemas[0]"); got != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Errorf("schemas %v, want the Error message URN: %s", r.body["schemas"], r.raw)
	}
	if got := r.body["status"]; got != fmt.Sprint(status) {
		t.Errorf("status member %#v, want the string %q", got, fmt.Sprint(status))
	}
	if got, _ := r.body["scimType"].(string); got != scimType {
		t.Errorf("scimType %q, want %q: %s", got, scimType, r.raw)
	}
	if d, _ := r.body["detail"].(string); d == "" {
		t.Errorf("no detail: %s", r.raw)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, "sqlite")
	usersOnly, _ := f.serviceToken("users-only", tokens.PermUsers)
	groupsOnly, _ := f.serviceToken("groups-only", tokens.PermGroups)
	revoked, revokedID := f.serviceToken("revoked", tokens.PermUsers, tokens.PermGroups)
	if err := f.svc.RevokeServiceToken(context.Background(), tokens.Operator, f.org.ID, revokedID); err != nil {
		t.Fatal(err)
	}
	unknown := tokens.NewSecret(tokens.KindService).Plaintext()

	tests := []struct {
		name          string
		authorization string // "-" sends none
		status        int
		detail        string
	}{
		{"no header", "-", 401, tokens.ErrNoToken.Message},
		{"basic scheme", "Basic dXNlcjpwYXNz", 401, tokens.ErrMalformedToken.Message},
		{"bearer with nothing", "Bearer ", 401, tokens.ErrMalformedToken.Message},
		{"garbage", "Bearer not-a-token", 401, tokens.ErrMalformedToken.Message},
		{"unknown token", "Bearer " + unknown, 401, tokens.ErrUnknownToken.Message},
		{"revoked token", "Bearer " + revoked, 401, tokens.ErrRevokedToken.Message},
		{"lacks platform.groups", "Bearer " + usersOnly, 403, "platform.groups"},
		{"lacks platform.users", "Bearer " + groupsOnly, 403, "platform.users"},
		{"scheme in any case", "bEaReR " + f.token, 200, ""},
	}
	for _, tt := range tests {
		for _, path := range []string{"/scim/v2/Users", "/scim/v2/Groups/x", "/scim/v2/ServiceProviderConfig", "/scim/v2/Schemas"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				req, _ := http.NewRequest("GET", f.server.URL+path, nil)
				if tt.authorization != "-" {
					req.Header.Set("Authorization", tt.authorization)
				}
				resp, err := f.server.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body map[string]any
				json.NewDecoder(resp.Body).Decode(&body)
				if tt.status == 200 {
					if resp.StatusCode == 401 || resp.StatusCode == 403 {
						t.Fatalf("status %d: %v", resp.StatusCode, body)
					}
					return
				}
				r := &response{status: resp.StatusCode, body: body}
				checkError(t, r, tt.status, "")
				if d, _ := body["detail"].(string); !strings.Contains(d, tt.detail) {
					t.Errorf("detail %q, want it to contain %q", d, tt.detail)
				}
				challenge := resp.Header.Get("WWW-Authenticate")
				if tt.status == 401 && !strings.HasPrefix(challenge, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", challenge)
				}
				if ct := resp.Header.Get("Content-Type"); ct != contentType {
					t.Errorf("Content-Type %q, want %q", ct, contentType)
				}
			})
		}
	}
}

// failingAuthenticator cannot reach its store.
type failingAuthenticator struct{}

func (failingAuthenticator) Authenticate(context.Context, string) (*tokens.Identity, error) {
	return nil, fmt.Errorf("lookup token: %w", tokens.ErrUnavailable)
}

func TestStoreUnavailableIs503(t *testing.T) {
	f := newFixture(t, "sqlite")
	h, err := New(f.svc, failingAuthenticator{}, Options{Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/scim/v2/Users", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	h.ServeHTTP(rec, req)
	var body map[string]any
	json.Unmarshal(rec.Body.Bytes(), &body)
	checkError(t, &response{status: rec.Code, body: body}, 503, "")
	if strings.Contains(rec.Body.String(), "lookup token") {
		t.Errorf("the body tells an internal error: %s", rec.Body)
	}
}

func TestMountedWithPrefixStripped(t *testing.T) {
	f := newFixture(t, "sqlite")
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", http.StripPrefix(Prefix, f.handler))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f.server = srv
	id := f.createUser("stripped@example.com")
	r := f.do("GET", "/scim/v2/Users/"+id, "")
	if r.status != 200 || r.body["userName"] != "stripped@example.com" {
		t.Fatalf("GET through StripPrefix: %d %s", r.status, r.raw)
	}
	if loc := get(r.body, "meta.location"); loc != "/scim/v2/Users/"+id {
		t.Errorf("meta.location %v, want /scim/v2/Users/%s", loc, id)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	f := newFixture(t, "sqlite")
	if _, err := New(f.svc, f.auth, Options{BaseURL: "https://"}); err == nil {
		t.Error("New accepted base URL https://")
	}
	if _, err := New(nil, f.auth, Options{}); err == nil {
		t.Error("New accepted a nil service")
	}
	h, err := New(f.svc, f.auth, Options{BaseURL: "https://id.example.com/scim/v2/"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/scim/v2/Groups", strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"based"}`))
	req.Header.Set("Authorization", "Bearer "+f.token)
	h.ServeHTTP(rec, req)
	if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "https://id.example.com/scim/v2/Groups/grp_") {
		t.Errorf("Location %q, want https://id.example.com/scim/v2/Groups/grp_…", loc)
	}
}

func TestServiceProviderConfigAndDiscovery(t *testing.T) {
	f := newFixture(t, "sqlite")
	r := f.do("GET", "/scim/v2/ServiceProviderConfig", "")
	for path, want := range map[string]any{
		"patch.supported": true, "etag.supported": true, "filter.supported": true, "bulk.supported": false,
		"authenticationSchemes[0].type": "oauthbearertoken",
	} {
		if got := get(r.body, path); got != want {
			t.Errorf("ServiceProviderConfig %s = %v, want %v", path, got, want)
		}
	}
	r = f.do("GET", "/scim/v2/ResourceTypes", "")
	if r.status != 200 || get(r.body, "totalResults") != 2.0 {
		t.Errorf("ResourceTypes: %d %s", r.status, r.raw)
	}
	r = f.do("GET", "/scim/v2/Schemas", "")
	if r.status != 200 || get(r.body, "totalResults") == 0.0 {
		t.Errorf("Schemas: %d %s", r.status, r.raw)
	}
	for _, urn := range []string{userURN, enterpriseUserURN, groupURN} {
		if !strings.Contains(r.raw, urn) {
			t.Errorf("Schemas does not list %s", urn)
		}
	}
	if strings.Contains(r.raw, `"password"`) {
		t.Error("Schemas lists password, which is never stored")
	}
}

// TestDiscoveryListsCountWhatTheyReturn: itemsPerPage is the number of
// resources a list response holds (RFC 7644 3.4.2), not the page size a
// client could have asked for, on /Schemas and /ResourceTypes as on
// /Users. Those lists ignore paging and sorting, and refuse a filter 403
// (RFC 7644 4), so that a client cannot take a filter for applied.
func TestDiscoveryListsCountWhatTheyReturn(t *testing.T) {
	f := newFixture(t, "sqlite")
	all := map[string]int{}
	for _, endpoint := range []string{"/scim/v2/Schemas", "/scim/v2/ResourceTypes"} {
		for _, query := range []string{"", "?startIndex=2", "?count=1", "?sortBy=id&sortOrder=descending"} {
			r := f.do("GET", endpoint+query, "")
			resources, _ := r.body["Resources"].([]any)
			if r.status != 200 || len(resources) == 0 || get(r.body, "itemsPerPage") != float64(len(resources)) ||
				get(r.body, "totalResults") != float64(len(resources)) || get(r.body, "startIndex") != 1.0 {
				t.Errorf("GET %s%s: %d, itemsPerPage %v, totalResults %v, startIndex %v for %d resources; want all, counted, from 1",
					endpoint, query, r.status, get(r.body, "itemsPerPage"), get(r.body, "totalResults"), get(r.body, "startIndex"), len(resources))
			}
			if query == "" {
				all[endpoint] = len(resources)
			} else if len(resources) != all[endpoint] {
				t.Errorf("GET %s%s: %d resources, want all %d", endpoint, query, len(resources), all[endpoint])
			}
		}
		checkError(t, f.do("GET", endpoint+"?filter="+url.QueryEscape(`id eq "User"`), ""), 403, "")
	}
}

func TestErrorsNeverTellInternals(t *testing.T) {
	f := newFixture(t, "sqlite")
	rec := httptest.NewRecorder()
	f.handler.(*handler).writeError(rec, httptest.NewRequest("GET", "/", nil), errors.New(`pq: relation "users" does not exist`))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "relation") {
		t.Errorf("internal error answered %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(f.logs.String(), "relation") {
		t.Error("the internal error was not logged")
	}
}

// unreachableStore is a store whose database has gone away.
type unreachableStore struct{ tokens.Store }

func (unreachableStore) View(context.Context, func(tokens.Tx) error) error {
	return fmt.Errorf("begin: dial tcp 10.0.0.5:5432: %w", tokens.ErrUnavailable)
}

func (unreachableStore) Update(context.Context, func(tokens.Tx) error) error {
	return fmt.Errorf("begin: dial tcp 10.0.0.5:5432: %w", tokens.ErrUnavailable)
}

// cachedAuthenticator has the IdP's token cached: authentication works
// while the store does not.
type cachedAuthenticator struct{ identity *tokens.Identity }

func (a cachedAuthenticator) Authenticate(context.Context, string) (*tokens.Identity, error) {
	return a.identity, nil
}

// A store that cannot be reached is a 503 on every route, those the library
// answers included (it cannot pass on a 503 itself).
func TestStoreUnavailableDuringRequests(t *testing.T) {
	f := newFixture(t, "sqlite")
	policy, _ := tokens.NewPolicy(testPolicy)
	svc := tokens.NewService(unreachableStore{sqltest.Open(t, "sqlite")}, policy)
	identity, err := f.auth.Authenticate(context.Background(), f.token)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(svc, cachedAuthenticator{identity}, Options{Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/scim/v2/Users", ""},
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq "x"`), ""},
		{"GET", "/scim/v2/Users/usr_1", ""},
		{"POST", "/scim/v2/Users", oktaCreateUser},
		{"PUT", "/scim/v2/Users/usr_1", oktaCreateUser},
		{"PATCH", "/scim/v2/Users/usr_1", oktaDeactivate},
		{"DELETE", "/scim/v2/Users/usr_1", ""},
		{"GET", "/scim/v2/Groups", ""},
		{"POST", "/scim/v2/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g"}`},
		{"DELETE", "/scim/v2/Groups/grp_1", ""},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(req.method, req.path, strings.NewReader(req.body))
		r.Header.Set("Authorization", "Bearer "+f.token)
		h.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("%s %s: %v: %q", req.method, req.path, err, rec.Body)
			continue
		}
		checkError(t, &response{status: rec.Code, body: body}, 503, "")
		if strings.Contains(rec.Body.String(), "10.0.0.5") || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: %v %s", req.method, req.path, rec.Header(), rec.Body)
		}
	}
}

func TestAttributesAndSearch(t *testing.T) {
	f := newFixture(t, "sqlite")
	r := f.do("POST", "/scim/v2/Users", entraCreateUser)
	id := r.body["id"].(string)
	r = f.do("GET", "/scim/v2/Users/"+id+"?attributes=userName,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "")
	for path, want := range map[string]any{
		"id": id, "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee", "name.givenName": "givenName",
		"name.familyName": nil, "emails": nil, "active": nil, "externalId": nil, "meta.resourceType": "User",
	} {
		if got := get(r.body, path); got != want {
			t.Errorf("attributes: %s = %v, want %v", path, got, want)
		}
	}
	r = f.do("GET", "/scim/v2/Users?excludedAttributes=emails,name.familyName,id", "")
	for path, want := range map[string]any{
		"Resources[0].id": id, "Resources[0].emails": nil, "Resources[0].name.familyName": nil, "Resources[0].name.givenName": "givenName",
	} {
		if got := get(r.body, path); got != want {
			t.Errorf("excludedAttributes: %s = %v, want %v", path, got, want)
		}
	}
	r = f.do("POST", "/scim/v2/Users/.search", `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
		"filter": "externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"", "attributes": ["userName"], "startIndex": 1, "count": 10}`)
	if r.status != 200 || get(r.body, "totalResults") != 1.0 || get(r.body, "Resources[0].id") != id || get(r.body, "Resources[0].active") != nil {
		t.Errorf("search: %d %s", r.status, r.raw)
	}
}

func TestETags(t *testing.T) {
	f := newFixture(t, "sqlite")
	id := f.createUser("etag@example.com")
	path := "/scim/v2/Users/" + id
	r := f.do("GET", path, "")
	tag := r.header.Get("ETag")
	if tag != `W/"1"` || get(r.body, "meta.version") != tag {
		t.Fatalf("ETag %q, meta.version %v, want both W/\"1\"", tag, get(r.body, "meta.version"))
	}
	rename := entraPatch(`{"op": "replace", "path": "displayName", "value": "E"}`)
	if r = f.do("PATCH", path, rename, "If-Match", tag); r.status != 200 || r.header.Get("ETag") != `W/"2"` {
		t.Fatalf("PATCH with the current ETag: %d %v %s", r.status, r.header, r.raw)
	}
	if r = f.do("PATCH", path, rename, "If-Match", tag); r.status != 412 {
		t.Errorf("PATCH with a stale ETag: %d %s", r.status, r.raw)
	}
	put := `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "etag@example.com"}`
	if r = f.do("PUT", path, put, "If-Match", `W/"1", W/"2"`); r.status != 200 || r.body["displayName"] != nil {
		t.Errorf("PUT with one of two ETags current: %d %s", r.status, r.raw)
	}
	if r = f.do("PUT", path, put, "If-Match", "*"); r.status != 200 {
		t.Errorf("PUT with If-Match *: %d %s", r.status, r.raw)
	}
	if r = f.do("DELETE", path, "", "If-Match", `W/"2"`); r.status != 412 {
		t.Errorf("DELETE with a stale ETag: %d %s", r.status, r.raw)
	}
	if r = f.do("DELETE", path, "", "If-Match", `W/"3"`); r.status != 204 {
		t.Errorf("DELETE with the current ETag: %d %s", r.status, r.raw)
	}
}
