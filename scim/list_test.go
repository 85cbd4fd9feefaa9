package scim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// recordingStore notes which reads of groups the service makes, to check
// that members are read only when a response shows them.
type recordingStore struct {
	tokens.Store
	mu    sync.Mutex
	reads []string
}

func (s *recordingStore) View(ctx context.Context, fn func(tokens.Tx) error) error {
	return s.Store.View(ctx, func(tx tokens.Tx) error { return fn(&recordingTx{Tx: tx, s: s}) })
}

func (s *recordingStore) note(read string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads = append(s.reads, read)
}

// take returns the reads noted since the last take.
func (s *recordingStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reads
	s.reads = nil
	return r
}

type recordingTx struct {
	tokens.Tx
	s *recordingStore
}

func (tx *recordingTx) QueryGroups(orgID string, q tokens.Query, withMembers bool) ([]tokens.Group, int, error) {
	tx.s.note(fmt.Sprintf("QueryGroups(members=%v)", withMembers))
	return tx.Tx.QueryGroups(orgID, q, withMembers)
}

func (tx *recordingTx) GroupMembers(orgID, groupID string, offset, limit int) ([]string, error) {
	tx.s.note(fmt.Sprintf("GroupMembers(%d, %d)", offset, limit))
	return tx.Tx.GroupMembers(orgID, groupID, offset, limit)
}

func (tx *recordingTx) Group(orgID, id string) (*tokens.Group, error) {
	tx.s.note("Group")
	return tx.Tx.Group(orgID, id)
}

func (tx *recordingTx) Groups(orgID string, f tokens.GroupFilter) ([]tokens.Group, int, error) {
	tx.s.note("Groups")
	return tx.Tx.Groups(orgID, f)
}

// listFixture is fixture (see scim_test.go) with options, a recording
// store and a clock.
type listFixture struct {
	*fixture
	store *recordingStore
	now   time.Time
	mu    sync.Mutex
}

func newListFixture(t testing.TB, dialect string, opts Options) *listFixture {
	t.Helper()
	store := &recordingStore{Store: sqltest.Open(t, dialect)}
	policy, err := tokens.NewPolicy(testPolicy)
	if err != nil {
		t.Fatal(err)
	}
	lf := &listFixture{fixture: &fixture{t: t, logs: &logRecorder{}}, store: store,
		now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	f := lf.fixture
	f.svc = tokens.NewService(store, policy)
	f.svc.Now = lf.clock
	f.auth = tokens.NewAuthenticator(store, policy, tokens.AuthOptions{Now: lf.clock})
	f.svc.OnCommit = f.auth.Apply
	if f.org, err = f.svc.CreateOrg(context.Background(), tokens.Operator, "acme", 0); err != nil {
		t.Fatal(err)
	}
	f.token, f.tokenID = f.serviceToken("okta", tokens.PermUsers, tokens.PermGroups)
	opts.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	if f.handler, err = New(f.svc, f.auth, opts); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", f.handler)
	f.server = httptest.NewServer(mux)
	t.Cleanup(f.server.Close)
	return lf
}

func (lf *listFixture) clock() time.Time {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return lf.now
}

func (lf *listFixture) advance(d time.Duration) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	lf.now = lf.now.Add(d)
}

// user provisions a user with a display name and an address.
func (lf *listFixture) user(userName, displayName, email string) string {
	lf.t.Helper()
	r := lf.do("POST", "/scim/v2/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":%q,"displayName":%q,"emails":[{"value":%q,"type":"work"}],"name":{"givenName":%q}}`,
		userName, displayName, email, strings.Split(displayName, " ")[0]))
	if r.status != http.StatusCreated {
		lf.t.Fatalf("create user %s: %d %s", userName, r.status, r.raw)
	}
	return r.body["id"].(string)
}

func (lf *listFixture) group(name string, members ...string) string {
	lf.t.Helper()
	var list []string
	for _, m := range members {
		list = append(list, fmt.Sprintf(`{"value":%q}`, m))
	}
	r := lf.do("POST", "/scim/v2/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
		"displayName":%q,"members":[%s]}`, name, strings.Join(list, ",")))
	if r.status != http.StatusCreated {
		lf.t.Fatalf("create group %s: %d %s", name, r.status, r.raw)
	}
	return r.body["id"].(string)
}

// names lists an attribute of the resources of a list response.
func names(t *testing.T, r *response, attr string) []string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	var out []string
	for _, res := range r.body["Resources"].([]any) {
		v, _ := get(res, attr).(string)
		out = append(out, v)
	}
	return out
}

func TestListSortAndDelta(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			lf := newListFixture(t, dialect, Options{})
			// Created a second apart, modified 1.5 ms apart in another order.
			for _, u := range []struct{ name, display string }{
				{"carol", "Émile Zola"}, {"Alice", "bob marley"}, {"bob", "Alice Liddell"}, {"dave", ""},
			} {
				lf.user(u.name, u.display, u.name+"@example.com")
				lf.advance(time.Second)
			}
			q := func(params string) []string {
				return names(t, lf.do("GET", "/scim/v2/Users?"+params, ""), "userName")
			}
			tests := []struct {
				params string
				want   []string
			}{
				{"", []string{"carol", "Alice", "bob", "dave"}},
				{"sortBy=userName", []string{"Alice", "bob", "carol", "dave"}},
				{"sortBy=USERNAME&sortOrder=Descending", []string{"dave", "carol", "bob", "Alice"}},
				{"sortBy=urn:ietf:params:scim:schemas:core:2.0:User:userName&sortOrder=ascending", []string{"Alice", "bob", "carol", "dave"}},
				// Without letter case; an absent display name sorts first.
				{"sortBy=displayName", []string{"dave", "bob", "Alice", "carol"}},
				{"sortBy=meta.lastModified&sortOrder=descending", []string{"dave", "bob", "Alice", "carol"}},
				{"sortBy=meta.created&startIndex=2&count=2", []string{"Alice", "bob"}},
				{"sortBy=userName&filter=" + url.QueryEscape(`userName sw "B" or displayName co "ZOLA"`), []string{"bob", "carol"}},
				// A filter the store cannot answer keeps the order.
				{"sortBy=userName&sortOrder=descending&filter=" + url.QueryEscape(`name.givenName pr`), []string{"carol", "bob", "Alice"}},
			}
			for _, tt := range tests {
				if got := q(tt.params); !slices.Equal(got, tt.want) {
					t.Errorf("GET /Users?%s = %v, want %v", tt.params, got, tt.want)
				}
			}
			for _, bad := range []string{"sortBy=name.givenName", "sortBy=userName&sortOrder=up", "sortBy=emails"} {
				checkError(t, lf.do("GET", "/scim/v2/Users?"+bad, ""), http.StatusBadRequest, "invalidValue")
			}
			checkError(t, lf.do("GET", "/scim/v2/Groups?sortBy=userName", ""), http.StatusBadRequest, "invalidValue")
			// POST /.search carries sortBy too.
			r := lf.do("POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
				"sortBy":"userName","sortOrder":"descending","count":2}`)
			if got := names(t, r, "userName"); !slices.Equal(got, []string{"dave", "carol"}) {
				t.Errorf(".search sorted = %v", got)
			}

			// Delta queries: what changed after a lastModified a client read.
			lf.advance(1500 * time.Microsecond)
			bob := lf.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "bob"`), "")
			bobID := get(bob.body, "Resources[0].id").(string)
			r = lf.do("PATCH", "/scim/v2/Users/"+bobID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","path":"displayName","value":"Bob"}]}`)
			seen := get(r.body, "meta.lastModified").(string)
			if !regexp.MustCompile(`^2026-06-01T12:00:04\.001Z$`).MatchString(seen) {
				t.Errorf("lastModified after a PATCH = %q, want milliseconds", seen)
			}
			lf.advance(time.Millisecond)
			lf.user("erin", "Erin", "erin@example.com")
			for _, tt := range []struct {
				filter string
				want   []string
			}{
				{`meta.lastModified gt "` + seen + `"`, []string{"erin"}},
				{`meta.lastModified ge "` + seen + `"`, []string{"bob", "erin"}},
				{`meta.lastModified eq "` + seen + `"`, []string{"bob"}},
				{`meta.lastModified lt "2026-06-01T12:00:01Z"`, []string{"carol"}},
				{`meta.lastModified le "2026-06-01T12:00:01Z"`, []string{"carol", "Alice"}},
				{`meta.lastModified gt "2026-06-01T14:00:02.9999+02:00" and meta.lastModified lt "` + seen + `"`, []string{"dave"}},
			} {
				if got := q("filter=" + url.QueryEscape(tt.filter)); !slices.Equal(got, tt.want) {
					t.Errorf("filter %s = %v, want %v", tt.filter, got, tt.want)
				}
			}
		})
	}
}

func TestServiceProviderConfigSort(t *testing.T) {
	f := newFixture(t, "sqlite")
	r := f.do("GET", "/scim/v2/ServiceProviderConfig", "")
	if get(r.body, "sort.supported") != true {
		t.Errorf("sort = %v, want supported", r.body["sort"])
	}
}

// TestMillisecondMeta checks that every answer with a resource shows its
// times with milliseconds, the same in each.
func TestMillisecondMeta(t *testing.T) {
	lf := newListFixture(t, "sqlite", Options{})
	lf.advance(123456 * time.Microsecond)
	ms := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	post := lf.do("POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ms"}`)
	id := post.body["id"].(string)
	lf.advance(time.Second + 2*time.Millisecond)
	put := lf.do("PUT", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ms","displayName":"M"}`)
	gid := lf.group("ms group", id)
	for _, r := range []*response{
		post, put,
		lf.do("GET", "/scim/v2/Users/"+id, ""),
		lf.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "ms"`), ""),
		lf.do("GET", "/scim/v2/Groups/"+gid, ""),
	} {
		res := r.body
		if rs, ok := r.body["Resources"].([]any); ok {
			res = rs[0].(map[string]any)
		}
		for _, k := range []string{"meta.created", "meta.lastModified"} {
			if v, _ := get(res, k).(string); !ms.MatchString(v) {
				t.Errorf("%s = %q, want milliseconds: %s", k, v, r.raw)
			}
		}
	}
	if got := get(post.body, "meta.created"); got != "2026-06-01T12:00:00.123Z" {
		t.Errorf("POST meta.created = %v, want 2026-06-01T12:00:00.123Z", got)
	}
	if got := get(put.body, "meta.lastModified"); got != "2026-06-01T12:00:01.125Z" {
		t.Errorf("PUT meta.lastModified = %v, want 2026-06-01T12:00:01.125Z", got)
	}
	if got := get(lf.do("GET", "/scim/v2/Users/"+id, "").body, "meta.lastModified"); got != get(put.body, "meta.lastModified") {
		t.Errorf("GET meta.lastModified = %v, PUT said %v", got, get(put.body, "meta.lastModified"))
	}
}

// TestGroupMembersOnDemand checks that members are read from the store
// only when the response shows them, and can be paged.
func TestGroupMembersOnDemand(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			lf := newListFixture(t, dialect, Options{})
			var ids []string
			for i := range 5 {
				ids = append(ids, lf.user(fmt.Sprintf("m%d", i), "", fmt.Sprintf("m%d@example.com", i)))
			}
			slices.Sort(ids)
			gid := lf.group("Big", ids...)
			lf.advance(time.Second)
			lf.group("Small", ids[0])
			lf.store.take()
			tests := []struct {
				path    string
				reads   []string
				members [][]string // of each resource; nil: no members attribute
			}{
				{"/scim/v2/Groups?excludedAttributes=members", []string{"QueryGroups(members=false)"}, [][]string{nil, nil}},
				{"/scim/v2/Groups?attributes=displayName", []string{"QueryGroups(members=false)"}, [][]string{nil, nil}},
				{"/scim/v2/Groups?excludedAttributes=members&filter=" + url.QueryEscape(`displayName eq "big"`),
					[]string{"QueryGroups(members=false)"}, [][]string{nil}},
				{"/scim/v2/Groups", []string{"QueryGroups(members=true)"}, [][]string{ids, ids[:1]}},
				{"/scim/v2/Groups?attributes=members.value", []string{"QueryGroups(members=true)"}, [][]string{ids, ids[:1]}},
				{"/scim/v2/Groups?excludedAttributes=members.type", []string{"QueryGroups(members=true)"}, [][]string{ids, ids[:1]}},
				{"/scim/v2/Groups?attributes=" + url.QueryEscape("members[startIndex=2&count=2]"),
					[]string{"QueryGroups(members=false)", "GroupMembers(1, 2)", "GroupMembers(1, 2)"}, [][]string{ids[1:3], {}}},
				{"/scim/v2/Groups/" + gid + "?excludedAttributes=members", []string{"QueryGroups(members=false)"}, [][]string{nil}},
				{"/scim/v2/Groups/" + gid, []string{"QueryGroups(members=false)", "GroupMembers(0, 0)"}, [][]string{ids}},
				{"/scim/v2/Groups/" + gid + "?attributes=" + url.QueryEscape("displayName,members[startIndex=4&count=10]"),
					[]string{"QueryGroups(members=false)", "GroupMembers(3, 10)"}, [][]string{ids[3:]}},
			}
			for _, tt := range tests {
				r := lf.do("GET", tt.path, "")
				if reads := lf.store.take(); !slices.Equal(reads, tt.reads) {
					t.Errorf("GET %s read %v, want %v", tt.path, reads, tt.reads)
				}
				resources := []any{r.body}
				if rs, ok := r.body["Resources"].([]any); ok {
					resources = rs
				}
				if len(resources) != len(tt.members) {
					t.Errorf("GET %s: %d resources, want %d: %s", tt.path, len(resources), len(tt.members), r.raw)
					continue
				}
				for i, res := range resources {
					list, has := res.(map[string]any)["members"].([]any)
					var got []string
					for _, m := range list {
						got = append(got, get(m, "value").(string))
					}
					if has != (tt.members[i] != nil) || !slices.Equal(got, tt.members[i]) && len(got)+len(tt.members[i]) > 0 {
						t.Errorf("GET %s: members of resource %d = %v (present %v), want %v", tt.path, i, got, has, tt.members[i])
					}
				}
			}
			for _, bad := range []string{"members[startIndex=1]", "members[count=x]", "members[offset=1&count=2]"} {
				checkError(t, lf.do("GET", "/scim/v2/Groups/"+gid+"?attributes="+url.QueryEscape(bad), ""), http.StatusBadRequest, "invalidValue")
			}
		})
	}
}

// TestFilterCandidates checks that a filter the store cannot answer alone
// is evaluated over at most MaxFilterCandidates resources.
func TestFilterCandidates(t *testing.T) {
	lf := newListFixture(t, "sqlite", Options{MaxFilterCandidates: 3})
	for i, name := range []string{"ann", "amy", "bea", "bob", "cid"} {
		lf.user(name, fmt.Sprintf("Given%d X", i%2), name+"@example.com")
	}
	q := func(filter string) *response {
		return lf.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(filter), "")
	}
	checkError(t, q(`name.givenName eq "Given0"`), http.StatusBadRequest, "tooMany")
	// Narrowed by index to few enough, the rest is evaluated in memory.
	r := q(`name.givenName eq "Given0" and userName sw "a"`)
	if got := names(t, r, "userName"); !slices.Equal(got, []string{"ann"}) || r.body["totalResults"] != 1.0 {
		t.Errorf("narrowed filter = %v: %s", got, r.raw)
	}
	r = q(`emails[type eq "work" and value eq "BOB@example.com"]`)
	if got := names(t, r, "userName"); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("Entra's address filter = %v: %s", got, r.raw)
	}
	// Answered by the store, any number of candidates is fine.
	r = q(`emails co "@EXAMPLE" and not (userName eq "cid")`)
	if r.body["totalResults"] != 4.0 {
		t.Errorf("emails co: %s", r.raw)
	}
}

func TestListParameters(t *testing.T) {
	lf := newListFixture(t, "sqlite", Options{})
	for _, name := range []string{"a", "b", "c"} {
		lf.user(name, "", name+"@example.com")
		lf.advance(time.Millisecond)
	}
	for _, tt := range []struct {
		params     string
		total      float64
		startIndex float64
		users      []string
	}{
		{"count=0", 3, 1, nil},
		{"count=-5", 3, 1, nil},
		{"startIndex=0&count=1", 3, 1, []string{"a"}},
		{"startIndex=3", 3, 3, []string{"c"}},
		{"startIndex=9", 3, 9, nil},
		{"count=1000", 3, 1, []string{"a", "b", "c"}},
	} {
		r := lf.do("GET", "/scim/v2/Users?"+tt.params, "")
		got := names(t, r, "userName")
		if r.body["totalResults"] != tt.total || r.body["startIndex"] != tt.startIndex || !slices.Equal(got, tt.users) ||
			r.body["itemsPerPage"] != float64(len(tt.users)) || get(r.body, "schemas[0]") != listResponseURN {
			t.Errorf("GET /Users?%s: %s", tt.params, r.raw)
		}
	}
	// A trailing slash is not the list.
	if r := lf.do("GET", "/scim/v2/Users/", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /Users/: %d %s", r.status, r.raw)
	}
}

// TestUsersByGroup checks that a filter on the IDs of a user's groups is
// answered (by the store), while one on another part of groups is refused.
func TestUsersByGroup(t *testing.T) {
	lf := newListFixture(t, "sqlite", Options{})
	ann := lf.user("ann", "Ann", "ann@example.com")
	lf.advance(time.Second)
	bob := lf.user("bob", "Bob", "bob@example.com")
	lf.advance(time.Second)
	lf.user("cid", "Cid", "cid@example.com")
	eng := lf.group("Engineering", ann, bob)
	ops := lf.group("Ops", bob)
	for _, tt := range []struct {
		filter string
		want   []string
	}{
		{`groups.value eq "` + eng + `"`, []string{"ann", "bob"}},
		{`groups eq "` + ops + `" and userName sw "b"`, []string{"bob"}},
		{`groups[value eq "` + ops + `"] or userName eq "cid"`, []string{"bob", "cid"}},
		{`not (groups pr)`, []string{"cid"}},
	} {
		r := lf.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(tt.filter), "")
		if got := names(t, r, "userName"); !slices.Equal(got, tt.want) {
			t.Errorf("filter %s = %v, want %v", tt.filter, got, tt.want)
		}
	}
	checkError(t, lf.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`groups.display eq "Ops"`), ""), http.StatusBadRequest, "invalidFilter")
}
