package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// TestSites runs the site suite on SQLite, and on PostgreSQL when
// SCIMGATE_TEST_POSTGRES_DSN is set; every test gets a fresh database.
func TestSites(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *sqlstore.Store)
	}{
		{"Names", testSiteNames},
		{"Memberships", testSiteMemberships},
		{"UserWrites", testSiteUserWrites},
		{"RefuseUnknown", testSiteRefuseUnknown},
		{"ConcurrentFirstUse", testSiteConcurrentFirstUse},
		{"Delete", testSiteDelete},
		{"Credential", testSiteCredential},
		{"GroupsAndNames", testGroupsOfUsersAndDisplayNames},
	}
	for _, dialect := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			if dialect == sqlstore.Postgres && os.Getenv(sqltest.EnvPostgresDSN) == "" {
				t.Skip(sqltest.EnvPostgresDSN + " not set: PostgreSQL store tests skipped")
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, sqltest.Open(t, dialect))
				})
			}
		})
	}
}

func (f *fixture) newSite(t *testing.T, orgID, name, externalID string) *tokens.Site {
	t.Helper()
	s := &tokens.Site{OrgID: orgID, Name: name, ExternalID: externalID}
	if err := f.svc.CreateSite(context.Background(), tokens.Operator, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) userNamed(t *testing.T, id string) *tokens.User {
	t.Helper()
	u, err := f.svc.User(context.Background(), f.org.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testSiteNames(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	syd := f.newSite(t, f.org.ID, "  Sydney ", "SYD")
	if syd.Name != "Sydney" || !strings.HasPrefix(syd.ID, "site_") || !syd.CreatedAt.Equal(t0) {
		t.Errorf("created site = %+v, want name Sydney (trimmed), an ID and the time", syd)
	}
	tests := []struct {
		name, externalID string
		code             tokens.Code
	}{
		{"SYDNEY", "", tokens.Conflict},
		{"Melbourne", "SYD", tokens.Conflict},
		{"Perth, WA", "", tokens.Invalid},
		{"  ", "", tokens.Invalid},
		{strings.Repeat("x", 201), "", tokens.Invalid},
		{"a\tb", "", tokens.Invalid},
		{"Perth", "bad\nid", tokens.Invalid},
	}
	for _, tt := range tests {
		err := f.svc.CreateSite(ctx, tokens.Operator, &tokens.Site{OrgID: f.org.ID, Name: tt.name, ExternalID: tt.externalID})
		wantCode(t, fmt.Sprintf("CreateSite(%q, %q)", tt.name, tt.externalID), err, tt.code)
	}
	// Names and external IDs are per org; an empty external ID is not one.
	other := f.newOrg(t, "globex")
	f.newSite(t, other.ID, "sydney", "SYD")
	f.newSite(t, f.org.ID, "Melbourne", "")
	f.newSite(t, f.org.ID, "Perth", "")
	err := f.svc.CreateSite(ctx, tokens.Operator, &tokens.Site{OrgID: "org_nope", Name: "x"})
	wantCode(t, "CreateSite in no org", err, tokens.NotFound)

	sites, err := f.svc.Sites(ctx, f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sites {
		names = append(names, s.Name)
	}
	if want := []string{"Melbourne", "Perth", "Sydney"}; !slices.Equal(names, want) {
		t.Errorf("Sites = %q, want %q (by name, this org only)", names, want)
	}
	if got, err := f.svc.SiteByName(ctx, f.org.ID, "sYdNeY"); err != nil || got.ID != syd.ID || got.ExternalID != "SYD" {
		t.Errorf("SiteByName(sYdNeY) = %+v, %v, want %s", got, err, syd.ID)
	}
	_, err = f.svc.SiteByName(ctx, f.org.ID, "Darwin")
	wantCode(t, "SiteByName(Darwin)", err, tokens.NotFound)
}

func testSiteMemberships(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	var changes []tokens.Change
	f.svc.OnCommit = func(c []tokens.Change) { changes = append(changes, c...) }
	syd := f.newSite(t, f.org.ID, "Sydney", "")
	mel := f.newSite(t, f.org.ID, "melbourne", "")
	bob := f.newUser(t, f.org.ID, "bob")
	for _, step := range []struct {
		join    bool
		site    *tokens.Site
		user    *tokens.User
		code    tokens.Code // "" for success
		sites   []string    // alice's afterwards
		changed bool        // whether the change log names the user
	}{
		{true, syd, f.user, "", []string{"Sydney"}, true},
		{true, mel, f.user, "", []string{"Sydney", "melbourne"}, true},
		{true, syd, f.user, "", []string{"Sydney", "melbourne"}, false}, // again: nothing changes
		{true, syd, bob, "", []string{"Sydney", "melbourne"}, true},
		{false, syd, f.user, "", []string{"melbourne"}, true},
		{false, syd, f.user, tokens.WrongState, []string{"melbourne"}, false},
	} {
		before := len(changes)
		var err error
		if step.join {
			err = f.svc.AddSiteMember(ctx, tokens.Operator, f.org.ID, step.site.ID, step.user.ID)
		} else {
			err = f.svc.RemoveSiteMember(ctx, tokens.Operator, f.org.ID, step.site.ID, step.user.ID)
		}
		what := fmt.Sprintf("join %v %s %s", step.join, step.site.Name, step.user.UserName)
		if step.code != "" {
			wantCode(t, what, err, step.code)
		} else if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := f.userNamed(t, f.user.ID).Sites; !slices.Equal(got, step.sites) {
			t.Errorf("%s: alice's sites = %q, want %q", what, got, step.sites)
		}
		// A change of membership reaches every cache through the log.
		if changed := len(changes) > before; changed != step.changed {
			t.Errorf("%s: change-log entries %+v, want some: %v", what, changes[before:], step.changed)
		} else if changed && (len(changes) != before+1 || changes[before].OwnerID != step.user.ID) {
			t.Errorf("%s: change-log entries %+v, want one naming the user", what, changes[before:])
		}
	}
	// Every read of users fills their sites.
	users, _, err := f.svc.Users(ctx, f.org.ID, tokens.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		want := map[string][]string{"alice": {"melbourne"}, "bob": {"Sydney"}}[u.UserName]
		if !slices.Equal(u.Sites, want) {
			t.Errorf("Users: %s has sites %q, want %q", u.UserName, u.Sites, want)
		}
	}
	if u, err := f.svc.UserByName(ctx, f.org.ID, "BOB"); err != nil || !slices.Equal(u.Sites, []string{"Sydney"}) {
		t.Errorf("UserByName(BOB) = %+v, %v, want sites [Sydney]", u, err)
	}
	sites, err := f.svc.Sites(ctx, f.org.ID)
	if err != nil || len(sites) != 2 || sites[0].Members != 1 || sites[1].Members != 1 {
		t.Errorf("Sites = %+v, %v: want melbourne and Sydney with one member each", sites, err)
	}
	// Another org's site, or a user of another org, is not found.
	other := f.newOrg(t, "globex")
	foreign := f.newSite(t, other.ID, "Sydney", "")
	wantCode(t, "AddSiteMember of another org's site", f.svc.AddSiteMember(ctx, tokens.Operator, f.org.ID, foreign.ID, f.user.ID), tokens.NotFound)
	wantCode(t, "AddSiteMember of another org's user", f.svc.AddSiteMember(ctx, tokens.Operator, other.ID, foreign.ID, f.user.ID), tokens.NotFound)
	// The audit trail names who joined and left what.
	events, err := f.svc.Audit(ctx, tokens.AuditFilter{OrgID: f.org.ID, Target: syd.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action+": "+e.Detail)
	}
	want := []string{`site.member.remove: user alice left site "Sydney"`, `site.member.add: user bob joined site "Sydney"`,
		`site.member.add: user alice joined site "Sydney"`, `site.create: site "Sydney"`}
	if !slices.Equal(actions, want) {
		t.Errorf("audit of the site = %q, want %q", actions, want)
	}
}

// testSiteUserWrites checks the sites a user write names: created on first
// use, matched without regard to case, kept when nil, cleared when empty,
// dropped when the user is removed.
func testSiteUserWrites(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	f.newSite(t, f.org.ID, "Sydney", "")
	u := &tokens.User{OrgID: f.org.ID, UserName: "carol", Active: true, Sites: []string{"sydney", " Perth ", "PERTH"}}
	if err := f.svc.CreateUser(ctx, tokens.Operator, u); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Perth", "Sydney"}; !slices.Equal(u.Sites, want) || !slices.Equal(f.userNamed(t, u.ID).Sites, want) {
		t.Errorf("created with sites %q, stored %q, want %q: existing ones as spelt, new ones created once",
			u.Sites, f.userNamed(t, u.ID).Sites, want)
	}
	events, _ := f.svc.Audit(ctx, tokens.AuditFilter{OrgID: f.org.ID, Limit: 3})
	if len(events) < 3 || events[2].Action != "site.create" || !strings.Contains(events[2].Detail, "first use") {
		t.Errorf("audit after a first use = %+v, want the site's creation", events)
	}

	cur := f.userNamed(t, u.ID)
	cur.DisplayName, cur.Sites = "Carol", nil // nil: keep the sites
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.userNamed(t, u.ID); got.DisplayName != "Carol" || !slices.Equal(got.Sites, []string{"Perth", "Sydney"}) {
		t.Errorf("after a write with nil sites: %q %q, want Carol and the sites kept", got.DisplayName, got.Sites)
	}
	cur = f.userNamed(t, u.ID)
	cur.Sites = []string{"Darwin"}
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.userNamed(t, u.ID).Sites; !slices.Equal(got, []string{"Darwin"}) {
		t.Errorf("after replacing the sites: %q, want [Darwin]", got)
	}
	cur = f.userNamed(t, u.ID)
	cur.Sites = []string{"a,b"}
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0); tokens.ErrorCode(err) != tokens.Invalid {
		t.Errorf("a site name with a comma: %v, want Invalid", err)
	}
	cur = f.userNamed(t, u.ID)
	cur.Sites = []string{}
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.userNamed(t, u.ID).Sites; len(got) != 0 {
		t.Errorf("after clearing the sites: %q, want none", got)
	}
	cur = f.userNamed(t, u.ID)
	cur.Sites = []string{"Sydney"}
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RemoveUser(ctx, tokens.Operator, f.org.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	sites, _ := f.svc.Sites(ctx, f.org.ID)
	for _, site := range sites {
		if site.Members != 0 {
			t.Errorf("after removing the user, site %s has %d members, want 0", site.Name, site.Members)
		}
	}
}

func testSiteRefuseUnknown(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	f.svc.UnknownSites = tokens.RefuseUnknownSites
	ctx := context.Background()
	f.newSite(t, f.org.ID, "Sydney", "")
	cur := f.userNamed(t, f.user.ID)
	cur.DisplayName, cur.Sites = "changed", []string{"SYDNEY", "Atlantis"}
	_, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0)
	wantCode(t, "a write naming an unknown site", err, tokens.Invalid)
	if !strings.Contains(err.Error(), `"Atlantis"`) {
		t.Errorf("the refusal %q does not name the site", err)
	}
	if got := f.userNamed(t, f.user.ID); got.DisplayName == "changed" || len(got.Sites) != 0 {
		t.Errorf("a refused write changed the user: %+v", got)
	}
	if sites, _ := f.svc.Sites(ctx, f.org.ID); len(sites) != 1 {
		t.Errorf("a refused write left sites %+v", sites)
	}
	cur.Sites = []string{"sydney"}
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0); err != nil {
		t.Fatalf("a write naming a known site: %v", err)
	}
	if p, err := tokens.ParseUnknownSitePolicy("Refuse"); err != nil || p != tokens.RefuseUnknownSites {
		t.Errorf("ParseUnknownSitePolicy(Refuse) = %q, %v", p, err)
	}
	if _, err := tokens.ParseUnknownSitePolicy("ignore"); err == nil {
		t.Errorf("ParseUnknownSitePolicy(ignore) succeeded")
	}
}

// testSiteConcurrentFirstUse writes several users naming the same new sites
// at once, in either order, as an identity provider's parallel requests do:
// every write succeeds (none waits for another that waits for it) and each
// site exists once.
func testSiteConcurrentFirstUse(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	const n = 8
	users := make([]*tokens.User, n)
	for i := range users {
		users[i] = f.newUser(t, f.org.ID, fmt.Sprintf("u%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, u := range users {
		wg.Go(func() {
			cur := *u
			cur.Sites = []string{"Brand New", "Also New"}
			if i%2 == 1 {
				slices.Reverse(cur.Sites)
			}
			_, err := f.svc.ReplaceUser(ctx, tokens.Operator, &cur, 0)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent first use failed: %v", err)
		}
	}
	sites, err := f.svc.Sites(ctx, f.org.ID)
	if err != nil || len(sites) != 2 || sites[0].Members != n || sites[1].Members != n {
		t.Errorf("Sites = %+v, %v: want two sites with %d members each", sites, err, n)
	}
}

func testSiteDelete(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	syd := f.newSite(t, f.org.ID, "Sydney", "")
	bob := f.newUser(t, f.org.ID, "bob")
	for _, u := range []*tokens.User{f.user, bob} {
		if err := f.svc.AddSiteMember(ctx, tokens.Operator, f.org.ID, syd.ID, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	var changes []tokens.Change
	f.svc.OnCommit = func(c []tokens.Change) { changes = append(changes, c...) }
	n, err := f.svc.DeleteSite(ctx, tokens.Operator, f.org.ID, syd.ID)
	if err != nil || n != 2 {
		t.Fatalf("DeleteSite = %d, %v, want 2 members", n, err)
	}
	var owners []string
	for _, c := range changes {
		owners = append(owners, c.OwnerID)
	}
	slices.Sort(owners)
	want := []string{f.user.ID, bob.ID}
	slices.Sort(want)
	if !slices.Equal(owners, want) {
		t.Errorf("deleting the site invalidated %q, want its members %q", owners, want)
	}
	if got := f.userNamed(t, bob.ID).Sites; len(got) != 0 {
		t.Errorf("bob's sites after the delete: %q", got)
	}
	_, err = f.svc.DeleteSite(ctx, tokens.Operator, f.org.ID, syd.ID)
	wantCode(t, "DeleteSite twice", err, tokens.NotFound)
	// The name is free again.
	f.newSite(t, f.org.ID, "SYDNEY", "")
}

func testSiteCredential(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	_, sec := f.userToken(t, f.user)
	c, err := s.LookupCredential(ctx, sec.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if c.Sites == nil || len(c.Sites) != 0 {
		t.Errorf("credential of a user in no site has sites %#v, want an empty list", c.Sites)
	}
	cur := f.userNamed(t, f.user.ID)
	cur.Sites = []string{"zeta", "Alpha", "beta"}
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0); err != nil {
		t.Fatal(err)
	}
	if c, err = s.LookupCredential(ctx, sec.Hash()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Alpha", "beta", "zeta"}; !slices.Equal(c.Sites, want) {
		t.Errorf("credential sites = %q, want %q", c.Sites, want)
	}
	_, ssec := f.serviceToken(t, f.org.ID)
	if c, err = s.LookupCredential(ctx, ssec.Hash()); err != nil || c.Sites != nil {
		t.Errorf("service credential sites = %#v, %v, want nil", c.Sites, err)
	}
}

func testGroupsOfUsersAndDisplayNames(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	bob := f.newUser(t, f.org.ID, "bob")
	cur := f.userNamed(t, bob.ID)
	cur.DisplayName = "Bob B."
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, cur, 0); err != nil {
		t.Fatal(err)
	}
	gone := f.newUser(t, f.org.ID, "gone")
	var ids []string
	for _, name := range []string{"zeta", "Alpha"} {
		g := &tokens.Group{OrgID: f.org.ID, DisplayName: name, MemberIDs: []string{f.user.ID}}
		if err := f.svc.CreateGroup(ctx, tokens.Operator, g); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.ID)
	}
	if _, err := f.svc.RemoveUser(ctx, tokens.Operator, f.org.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	groups, err := f.svc.GroupsOfUsers(ctx, f.org.ID, []string{f.user.ID, bob.ID, f.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := []tokens.GroupRef{{ID: ids[1], DisplayName: "Alpha"}, {ID: ids[0], DisplayName: "zeta"}}
	if !slices.Equal(groups[f.user.ID], want) || len(groups[bob.ID]) != 0 {
		t.Errorf("GroupsOfUsers = %+v, want alice in %+v and bob in none", groups, want)
	}
	names, err := f.svc.DisplayNames(ctx, f.org.ID, []string{f.user.ID, bob.ID, gone.ID, "usr_nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[f.user.ID] != "alice" || names[bob.ID] != "Bob B." {
		t.Errorf("DisplayNames = %v, want alice's user name, bob's display name, and no one else", names)
	}
	other := f.newOrg(t, "globex")
	if names, _ := f.svc.DisplayNames(ctx, other.ID, []string{f.user.ID}); len(names) != 0 {
		t.Errorf("DisplayNames in another org = %v, want none", names)
	}
}
