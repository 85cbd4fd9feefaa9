package tokens_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// FuzzSitePage lists an org's sites and a site's members with any cursor,
// member filter, site name or ID and limit, as a holder of platform.users.
// Whatever the input: the answer is a page, an Invalid error or (for a
// member or site that is not there) a NotFound error, never another error
// or a panic; a page of sites holds only the org's sites, in order of
// their lower-cased names, each with its true member count, only the
// filtered person's when one is named, at most limit of them; a page of
// members holds only members of the site, in user ID order, at most limit;
// and a cursor a page issued leads to the page right after it.
//
//	go test ./tokens -run '^$' -fuzz FuzzSitePage -fuzztime 30s -fuzzminimizetime 2s
func FuzzSitePage(f *testing.F) {
	ctx := context.Background()
	store := sqltest.Open(f, "sqlite")
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	svc := tokens.NewService(store, policy)
	svc.Now = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	auth := tokens.NewAuthenticator(store, policy, tokens.AuthOptions{Now: svc.Now})
	org, err := svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := svc.CreateOrg(ctx, tokens.Operator, "other", 0)
	people := map[string]string{} // user name → ID, in acme
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		for _, o := range []*tokens.Org{org, other} {
			u := &tokens.User{OrgID: o.ID, UserName: name, Active: true}
			if err := svc.CreateUser(ctx, tokens.Operator, u); err != nil {
				f.Fatal(err)
			}
			if o == org {
				people[name] = u.ID
			}
		}
	}
	// Each site's members, by user name; the other org has the same names.
	members := map[string][]string{
		"Sydney": {"alice", "bob", "carol"}, "melbourne": {"alice"}, "Perth:WA": {}, "Zürich": {"bob", "dave"}, "aDELAIDE": {"carol"},
	}
	for _, o := range []*tokens.Org{org, other} {
		for name, ms := range members {
			site := &tokens.Site{OrgID: o.ID, Name: name}
			if err := svc.CreateSite(ctx, tokens.Operator, site); err != nil {
				f.Fatal(err)
			}
			for _, m := range ms {
				u, err := svc.UserByName(ctx, o.ID, m)
				if err != nil {
					f.Fatal(err)
				}
				if err := svc.AddSiteMember(ctx, tokens.Operator, o.ID, site.ID, u.ID); err != nil {
					f.Fatal(err)
				}
			}
		}
	}
	_, sec, err := svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "idp", PermissionSets: []string{tokens.PermUsers}})
	if err != nil {
		f.Fatal(err)
	}
	id, err := auth.Authenticate(ctx, sec.Plaintext())
	if err != nil {
		f.Fatal(err)
	}
	m := svc.As(tokens.CallerOf(id))
	first, _ := m.Sites(ctx, tokens.SiteQuery{Limit: 2})
	sydney, _ := m.Site(ctx, "Sydney", tokens.MemberQuery{Limit: 1})
	f.Add("", "", "", "Sydney", 0)
	f.Add(first.Next, sydney.Next, "alice", "sydney", 2)
	f.Add("czo", "bTo", "Bob", "ZÜRICH", 1)
	f.Add(sydney.Next, first.Next, people["carol"], sydney.ID, 1000)

	f.Fuzz(func(t *testing.T, siteCursor, memberCursor, member, siteRef string, limit int) {
		want := limit
		if want == 0 {
			want = tokens.DefaultPageSize
		}
		q := tokens.SiteQuery{Cursor: siteCursor, MemberName: member, Limit: limit}
		page, err := m.Sites(ctx, q)
		switch code := tokens.ErrorCode(err); {
		case err == nil:
		case code == tokens.Invalid, code == tokens.NotFound && member != "":
		default:
			t.Fatalf("Sites(%+v): %v (code %s), want a page, Invalid or NotFound", q, err, code)
		}
		if err == nil {
			if len(page.Sites) > want {
				t.Fatalf("%d sites, more than the limit %d", len(page.Sites), want)
			}
			var filtered string // the user name of the person filtered by
			if member != "" {
				u, err := svc.UserByName(ctx, org.ID, member)
				if err != nil {
					t.Fatalf("Sites(%+v) found a person UserByName does not: %v", q, err)
				}
				filtered = u.UserName
			}
			var names []string
			for _, s := range page.Sites {
				ms, ok := members[s.Name]
				if !ok || s.OrgID != org.ID || s.OrgName != "acme" || s.Members != len(ms) {
					t.Fatalf("site %+v is not one of acme's as it is", s)
				}
				if filtered != "" && !slices.Contains(ms, filtered) {
					t.Fatalf("site %q listed for member %q, who is not one", s.Name, filtered)
				}
				if n := strings.ToLower(s.Name); len(names) > 0 && n <= names[len(names)-1] {
					t.Fatalf("sites out of order: %v, then %q", names, n)
				}
				names = append(names, strings.ToLower(s.Name))
			}
			if page.Next != "" {
				next, err := m.Sites(ctx, tokens.SiteQuery{Cursor: page.Next, MemberName: member, Limit: limit})
				if err != nil {
					t.Fatalf("the next page of a cursor a page issued: %v", err)
				}
				if len(next.Sites) > 0 && strings.ToLower(next.Sites[0].Name) <= names[len(names)-1] {
					t.Fatalf("the next page starts at %q, not after %q", next.Sites[0].Name, names[len(names)-1])
				}
			}
		}

		d, err := m.Site(ctx, siteRef, tokens.MemberQuery{Cursor: memberCursor, Limit: limit})
		if code := tokens.ErrorCode(err); err != nil && code != tokens.Invalid && code != tokens.NotFound {
			t.Fatalf("Site(%q, %q, %d): %v (code %s), want a site, Invalid or NotFound", siteRef, memberCursor, limit, err, code)
		}
		if err != nil {
			return
		}
		ms, ok := members[d.Name]
		if !ok || d.OrgID != org.ID || d.Members != len(ms) || len(d.MemberPage) > want {
			t.Fatalf("Site(%q) = %+v, %d members, not acme's site as it is", siteRef, d.SiteInfo, len(d.MemberPage))
		}
		var ids []string
		for _, p := range d.MemberPage {
			if people[p.UserName] != p.UserID || !slices.Contains(ms, p.UserName) {
				t.Fatalf("member %+v is not a member of %q", p, d.Name)
			}
			ids = append(ids, p.UserID)
		}
		if !slices.IsSorted(ids) {
			t.Fatalf("members out of order: %v", ids)
		}
		if d.Next != "" {
			next, err := m.Site(ctx, d.ID, tokens.MemberQuery{Cursor: d.Next, Limit: limit})
			if err != nil {
				t.Fatalf("the next page of members: %v", err)
			}
			if len(next.MemberPage) > 0 && next.MemberPage[0].UserID <= ids[len(ids)-1] {
				t.Fatalf("the next page of members does not start after this one")
			}
		}
	})
}
