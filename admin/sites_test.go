package admin

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The sites of the admin API: every rule and refusal through a real HTTP
// server, on SQLite and on PostgreSQL when SCIMGATE_TEST_POSTGRES_DSN is
// set, every exchange checked against openapi.json. In the fixture carol
// ("HR") and bootstrap hold platform.users; alice holds platform.tokens
// but not platform.users.

func TestSitesAPI(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"NeedPermUsers", testSitesNeedPermUsers},
		{"Lifecycle", testSiteLifecycle},
		{"Members", testSiteMembers},
		{"MeShowsSites", testMeShowsSites},
		{"OtherOrg", testSitesOfOtherOrg},
		{"BadRequests", testSiteBadRequests},
		{"NamesInPaths", testSiteNamesInPaths},
		{"Audit", testSiteAudit},
	}
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, newFixture(t, dialect, Options{}))
				})
			}
		})
	}
}

// site creates a site as carol and returns it.
func (f *fixture) site(name string) Site {
	f.t.Helper()
	r := f.call(f.carolTok, "POST", "/api/v1/sites", map[string]string{"name": name})
	f.want(r, 201, "")
	var s Site
	r.decode(f.t, &s)
	return s
}

func testSitesNeedPermUsers(t *testing.T, f *fixture) {
	s := f.site("Sydney")
	calls := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/sites", nil},
		{"POST", "/api/v1/sites", map[string]string{"name": "Perth"}},
		{"GET", "/api/v1/sites/" + s.ID, nil},
		{"DELETE", "/api/v1/sites/" + s.ID, nil},
		{"PUT", "/api/v1/sites/" + s.ID + "/members/" + f.bob.ID, nil},
		{"DELETE", "/api/v1/sites/" + s.ID + "/members/" + f.bob.ID, nil},
	}
	for _, who := range []struct{ token, name string }{
		{f.aliceTok, `user "alice"`}, {f.bobTok, `user "bob"`}, {f.reader, `service user "reader"`}, {f.tokadmin, `service user "tokadmin"`},
	} {
		for _, c := range calls {
			t.Run(who.name+" "+c.method+" "+c.path, func(t *testing.T) {
				f.want(f.call(who.token, c.method, c.path, c.body), 403, "forbidden", "platform.users", who.name)
			})
		}
	}
	// Nothing changed; the holders of platform.users see it so.
	for _, tok := range []string{f.carolTok, f.bootstrap} {
		var list SiteList
		r := f.call(tok, "GET", "/api/v1/sites", nil)
		f.want(r, 200, "")
		r.decode(t, &list)
		if len(list.Sites) != 1 || list.Sites[0].Name != "Sydney" || list.Sites[0].MemberCount != 0 {
			t.Errorf("sites after refused calls: %+v", list)
		}
	}
}

func testSiteLifecycle(t *testing.T, f *fixture) {
	r := f.call(f.carolTok, "POST", "/api/v1/sites", map[string]string{"name": "Sydney", "external_id": "SYD-1"})
	f.want(r, 201, "")
	var s Site
	r.decode(t, &s)
	if s.Name != "Sydney" || s.ExternalID != "SYD-1" || s.Org != "acme" || s.OrgID != f.org.ID || s.MemberCount != 0 || !strings.HasPrefix(s.ID, "site_") || s.CreatedAt.IsZero() {
		t.Errorf("created %+v", s)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/sites/"+s.ID {
		t.Errorf("Location %q", loc)
	}
	f.want(f.call(f.carolTok, "POST", "/api/v1/sites", map[string]string{"name": "sydney"}), 409, "conflict", `site "sydney" already exists`)
	f.want(f.call(f.bootstrap, "POST", "/api/v1/sites", map[string]string{"name": "Perth", "external_id": "SYD-1"}), 409, "conflict", `external ID "SYD-1"`)
	f.want(f.call(f.carolTok, "POST", "/api/v1/sites", map[string]string{"name": "Perth,Darwin"}), 400, "invalid_request", "comma")
	f.want(f.call(f.carolTok, "POST", "/api/v1/sites", map[string]string{"name": " "}), 400, "invalid_request", "must not be empty")
	f.want(f.call(f.carolTok, "POST", "/api/v1/sites", map[string]string{"external_id": "x"}), 400, "invalid_request", "must not be empty")
	f.site("Perth")

	var list SiteList
	f.call(f.carolTok, "GET", "/api/v1/sites", nil).decode(t, &list)
	if len(list.Sites) != 2 || list.Sites[0].Name != "Perth" || list.Sites[1].Name != "Sydney" || list.NextCursor != nil {
		t.Errorf("sites %+v", list)
	}
	// Pages.
	f.call(f.carolTok, "GET", "/api/v1/sites?limit=1", nil).decode(t, &list)
	if len(list.Sites) != 1 || list.Sites[0].Name != "Perth" || list.NextCursor == nil {
		t.Fatalf("first page %+v", list)
	}
	f.call(f.carolTok, "GET", "/api/v1/sites?limit=1&cursor="+url.QueryEscape(*list.NextCursor), nil).decode(t, &list)
	if len(list.Sites) != 1 || list.Sites[0].Name != "Sydney" || list.NextCursor != nil {
		t.Errorf("second page %+v", list)
	}
	f.want(f.call(f.carolTok, "GET", "/api/v1/sites?cursor=nonsense", nil), 400, "invalid_request", "start again without it")
	f.want(f.call(f.carolTok, "GET", "/api/v1/sites?limit=0", nil), 400, "invalid_request", "limit must be 1 to 1000")

	// Deleting it: its members lose it.
	f.want(f.call(f.carolTok, "PUT", "/api/v1/sites/"+s.ID+"/members/"+f.bob.ID, nil), 201, "")
	r = f.call(f.bootstrap, "DELETE", "/api/v1/sites/"+s.ID, nil)
	f.want(r, 200, "")
	var done SiteDeleted
	r.decode(t, &done)
	if done.ID != s.ID || done.Name != "Sydney" || done.Result != "deleted" || done.Members != 1 || !strings.Contains(done.Message, "1 member lost it") {
		t.Errorf("deleted %+v", done)
	}
	f.want(f.call(f.carolTok, "GET", "/api/v1/sites/"+s.ID, nil), 404, "not_found", s.ID)
	f.want(f.call(f.carolTok, "DELETE", "/api/v1/sites/"+s.ID, nil), 404, "not_found")
	var me Me
	f.call(f.bobTok, "GET", "/api/v1/me", nil).decode(t, &me)
	if len(me.Sites) != 0 {
		t.Errorf("bob's sites after the site's deletion: %v", me.Sites)
	}
}

func testSiteMembers(t *testing.T, f *fixture) {
	s := f.site("Sydney")
	path := "/api/v1/sites/" + s.ID + "/members/"
	r := f.call(f.carolTok, "PUT", path+"alice", nil)
	f.want(r, 201, "")
	var ms Membership
	r.decode(t, &ms)
	want := Membership{Org: "acme", SiteID: s.ID, Site: "Sydney", UserID: f.alice.ID, UserName: "alice", Result: "added",
		Message: `user "alice" is now a member of site "Sydney"; their tokens carry it from their next request`}
	if ms != want {
		t.Errorf("added %+v, want %+v", ms, want)
	}
	r = f.call(f.carolTok, "PUT", path+f.alice.ID, nil)
	f.want(r, 200, "")
	r.decode(t, &ms)
	if ms.Result != "unchanged" || !strings.Contains(ms.Message, "already a member") {
		t.Errorf("added again: %+v", ms)
	}
	f.want(f.call(f.bootstrap, "PUT", path+"BOB", nil), 201, "")
	f.want(f.call(f.carolTok, "PUT", path+"carol", nil), 201, "")

	// The site with its members, a page at a time.
	var d SiteDetail
	r = f.call(f.carolTok, "GET", "/api/v1/sites/"+s.ID, nil)
	f.want(r, 200, "")
	r.decode(t, &d)
	if d.Name != "Sydney" || d.MemberCount != 3 || len(d.Members) != 3 || d.NextCursor != nil {
		t.Fatalf("site %+v", d)
	}
	var names []string
	next := "/api/v1/sites/" + s.ID + "?limit=2"
	for pages := 1; ; pages++ {
		var page SiteDetail
		r := f.call(f.carolTok, "GET", next, nil)
		f.want(r, 200, "")
		r.decode(t, &page)
		if page.MemberCount != 3 || len(page.Members) > 2 || pages > 2 {
			t.Fatalf("page %d: %+v", pages, page)
		}
		for _, m := range page.Members {
			names = append(names, m.UserName)
			if !m.Active || m.ID == "" {
				t.Errorf("member %+v", m)
			}
		}
		if page.NextCursor == nil {
			break
		}
		next = "/api/v1/sites/" + s.ID + "?limit=2&cursor=" + url.QueryEscape(*page.NextCursor)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "alice,bob,carol" {
		t.Errorf("paged members %v", names)
	}

	// A person's sites.
	f.site("Perth")
	var list SiteList
	f.call(f.carolTok, "GET", "/api/v1/sites?member=Alice", nil).decode(t, &list)
	if len(list.Sites) != 1 || list.Sites[0].Name != "Sydney" || list.Sites[0].MemberCount != 3 {
		t.Errorf("alice's sites %+v", list)
	}
	f.call(f.carolTok, "GET", "/api/v1/sites?member_id="+f.bob.ID, nil).decode(t, &list)
	if len(list.Sites) != 1 {
		t.Errorf("bob's sites %+v", list)
	}
	f.want(f.call(f.carolTok, "GET", "/api/v1/sites?member=nobody", nil), 404, "not_found", "nobody")

	// Leaving.
	r = f.call(f.carolTok, "DELETE", path+"alice", nil)
	f.want(r, 200, "")
	r.decode(t, &ms)
	if ms.Result != "removed" || ms.UserName != "alice" || !strings.Contains(ms.Message, "no longer a member") {
		t.Errorf("removed %+v", ms)
	}
	f.want(f.call(f.carolTok, "DELETE", path+"alice", nil), 409, "wrong_state", `user "alice" is not a member of site "Sydney"`)
	f.want(f.call(f.carolTok, "PUT", path+"nobody", nil), 404, "not_found", `user "nobody" not found`)
	f.want(f.call(f.carolTok, "DELETE", path+"nobody", nil), 404, "not_found", `user "nobody" not found`)
	f.want(f.call(f.carolTok, "PUT", "/api/v1/sites/Nowhere/members/alice", nil), 404, "not_found", `site "Nowhere" not found`)

	// A person who left the org is not found, and left every site.
	if _, err := f.svc.RemoveUser(context.Background(), tokens.Operator, f.org.ID, f.bob.ID); err != nil {
		t.Fatal(err)
	}
	f.want(f.call(f.carolTok, "PUT", path+f.bob.ID, nil), 404, "not_found")
	f.call(f.carolTok, "GET", "/api/v1/sites/"+s.ID, nil).decode(t, &d)
	if d.MemberCount != 1 || len(d.Members) != 1 || d.Members[0].UserName != "carol" {
		t.Errorf("after bob left the org: %+v", d)
	}
}

func testMeShowsSites(t *testing.T, f *fixture) {
	for _, name := range []string{"Sydney", "Darwin"} {
		s := f.site(name)
		f.want(f.call(f.carolTok, "PUT", "/api/v1/sites/"+s.ID+"/members/bob", nil), 201, "")
	}
	var me Me
	f.call(f.bobTok, "GET", "/api/v1/me", nil).decode(t, &me)
	if strings.Join(me.Sites, ",") != "Darwin,Sydney" {
		t.Errorf("bob's sites in /me: %v", me.Sites)
	}
	for _, tok := range []string{f.aliceTok, f.bootstrap} {
		r := f.call(tok, "GET", "/api/v1/me", nil)
		f.want(r, 200, "")
		if !strings.Contains(string(r.body), `"sites":[]`) {
			t.Errorf("/me without sites: %s, want \"sites\":[]", r.body)
		}
	}
}

func testSitesOfOtherOrg(t *testing.T, f *fixture) {
	ctx := context.Background()
	other, err := f.svc.CreateOrg(ctx, tokens.Operator, "other", 0)
	if err != nil {
		t.Fatal(err)
	}
	theirs := &tokens.Site{OrgID: other.ID, Name: "Sydney"}
	if err := f.svc.CreateSite(ctx, tokens.Operator, theirs); err != nil {
		t.Fatal(err)
	}
	erin := &tokens.User{OrgID: other.ID, UserName: "erin", Active: true}
	if err := f.svc.CreateUser(ctx, tokens.Operator, erin); err != nil {
		t.Fatal(err)
	}
	ours := f.site("Sydney")
	f.want(f.call(f.carolTok, "GET", "/api/v1/sites/"+theirs.ID, nil), 404, "not_found")
	f.want(f.call(f.carolTok, "DELETE", "/api/v1/sites/"+theirs.ID, nil), 404, "not_found")
	f.want(f.call(f.carolTok, "PUT", "/api/v1/sites/"+theirs.ID+"/members/alice", nil), 404, "not_found")
	f.want(f.call(f.carolTok, "PUT", "/api/v1/sites/"+ours.ID+"/members/"+erin.ID, nil), 404, "not_found")
	f.want(f.call(f.carolTok, "PUT", "/api/v1/sites/"+ours.ID+"/members/erin", nil), 404, "not_found")
	var list SiteList
	f.call(f.carolTok, "GET", "/api/v1/sites", nil).decode(t, &list)
	if len(list.Sites) != 1 || list.Sites[0].ID != ours.ID {
		t.Errorf("carol lists %+v", list.Sites)
	}
	if s, err := f.svc.Sites(ctx, other.ID); err != nil || len(s) != 1 || s[0].Members != 0 {
		t.Errorf("the other org's sites: %+v, %v", s, err)
	}
}

func testSiteBadRequests(t *testing.T, f *fixture) {
	s := f.site("Sydney")
	tests := []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
		reason       string
		says         []string
	}{
		{"unknown field", "POST", "/api/v1/sites", `{"name": "x", "members": ["alice"]}`, nil, 400, "invalid_request", []string{`"members"`, "name, external_id"}},
		{"field in another case", "POST", "/api/v1/sites", `{"Name": "x"}`, nil, 400, "invalid_request", []string{`"Name"`, "case-sensitive"}},
		{"field twice", "POST", "/api/v1/sites", `{"name": "a", "name": "b"}`, nil, 400, "invalid_request", []string{"twice"}},
		{"wrong type", "POST", "/api/v1/sites", `{"name": 7}`, nil, 400, "invalid_request", []string{"name", "a string"}},
		{"not JSON", "POST", "/api/v1/sites", `{"name": `, nil, 400, "invalid_request", []string{"not valid JSON"}},
		{"form body", "POST", "/api/v1/sites", `name=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", nil},
		{"too large", "POST", "/api/v1/sites", `{"name": "` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, "body_too_large", []string{"65536"}},
		{"unknown list parameter", "GET", "/api/v1/sites?name=Sydney", nil, nil, 400, "invalid_request", []string{`"name"`, "member"}},
		{"unknown site parameter", "GET", "/api/v1/sites/" + s.ID + "?verbose=1", nil, nil, 400, "invalid_request", []string{`"verbose"`}},
		{"parameter on a change", "PUT", "/api/v1/sites/" + s.ID + "/members/alice?force=1", nil, nil, 400, "invalid_request", []string{`"force"`}},
		{"two members", "GET", "/api/v1/sites?member=alice&member_id=" + f.bob.ID, nil, nil, 400, "invalid_request", []string{"two different people"}},
		{"site method", "PATCH", "/api/v1/sites/" + s.ID, `{}`, nil, 405, "method_not_allowed", []string{"DELETE", "GET"}},
		{"member method", "POST", "/api/v1/sites/" + s.ID + "/members/alice", nil, nil, 405, "method_not_allowed", []string{"DELETE", "PUT"}},
		{"members collection", "GET", "/api/v1/sites/" + s.ID + "/members", nil, nil, 404, "not_found", []string{"openapi.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.call(f.carolTok, tt.method, tt.path, tt.body, tt.headers...)
			f.want(r, tt.status, tt.reason, tt.says...)
			if tt.name == "member method" && r.header.Get("Allow") != "DELETE, PUT" {
				t.Errorf("Allow %q", r.header.Get("Allow"))
			}
		})
	}
	var list SiteList
	f.call(f.carolTok, "GET", "/api/v1/sites", nil).decode(t, &list)
	if len(list.Sites) != 1 || list.Sites[0].MemberCount != 0 {
		t.Errorf("after refused requests: %+v", list.Sites)
	}
}

// testSiteNamesInPaths: a site is named in a path by its name too, in any
// letter case, however it must be escaped, and a person by user name.
func testSiteNamesInPaths(t *testing.T, f *fixture) {
	for _, name := range []string{"São Paulo", "R&D lab #2", "50% off?", "Kings Cross/St Pancras"} {
		s := f.site(name)
		path := "/api/v1/sites/" + url.PathEscape(strings.ToUpper(name))
		// A %2F is not something the document's router takes apart, so
		// the requests go around the validating transport.
		plain := &fixture{t: t, srv: f.srv, http: http.DefaultClient}
		r := plain.call(f.carolTok, "PUT", path+"/members/"+url.PathEscape("Alice"), nil)
		plain.want(r, 201, "")
		var ms Membership
		r.decode(t, &ms)
		if ms.SiteID != s.ID || ms.Site != name || ms.UserName != "alice" {
			t.Errorf("%q: %+v", name, ms)
		}
		var d SiteDetail
		r = plain.call(f.carolTok, "GET", path, nil)
		plain.want(r, 200, "")
		r.decode(t, &d)
		if d.ID != s.ID || d.MemberCount != 1 {
			t.Errorf("%q: %+v", name, d)
		}
		plain.want(plain.call(f.carolTok, "DELETE", path, nil), 200, "")
	}
}

func testSiteAudit(t *testing.T, f *fixture) {
	s := f.site("Sydney")
	f.want(f.call(f.bootstrap, "PUT", "/api/v1/sites/"+s.ID+"/members/alice", nil), 201, "")
	f.want(f.call(f.carolTok, "DELETE", "/api/v1/sites/"+s.ID+"/members/alice", nil), 200, "")
	var list AuditList
	r := f.call(f.aliceTok, "GET", "/api/v1/audit-events?target="+s.ID, nil)
	f.want(r, 200, "")
	r.decode(t, &list)
	var got []string
	for _, e := range list.Events {
		actor, _, _ := strings.Cut(e.Actor, " (token ")
		got = append(got, e.Action+" by "+actor)
	}
	if strings.Join(got, "; ") != "site.member.remove by user carol; site.member.add by service user bootstrap; site.create by user carol" {
		t.Errorf("audit trail %q", got)
	}
}
