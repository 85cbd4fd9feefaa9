package tokens_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The caller-aware site rules (Manager's sites), on SQLite and on
// PostgreSQL when SCIMGATE_TEST_POSTGRES_DSN is set. In mgmtFixture, carol
// ("HR") and the bootstrap service token hold platform.users; alice holds
// platform.tokens but not platform.users; bob and reader hold nothing of it.

func TestManagedSites(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *mgmtFixture)
	}{
		{"NeedPermUsers", testSitesNeedPermUsers},
		{"Lifecycle", testManagedSiteLifecycle},
		{"Refusals", testManagedSiteRefusals},
		{"ReachTheNextRequest", testSiteChangesReachTheNextRequest},
		{"AuditNamesTheActor", testSiteAuditNamesTheActor},
		{"OtherOrgIsInvisible", testOtherOrgSitesAreInvisible},
		{"Pagination", testSitePagination},
		{"MemberFilter", testSiteMemberFilter},
		{"IDBeforeName", testSiteIDBeforeName},
		{"Me", testMeShowsSites},
		{"PermissionsAreReadAtEachCall", testSitePermissionsAreReadAtEachCall},
		{"MalformedText", testSiteMalformedText},
	}
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, newMgmtFixture(t, dialect))
				})
			}
		})
	}
}

// site creates a site as the command line does.
func (f *mgmtFixture) site(t *testing.T, name string) *tokens.Site {
	t.Helper()
	s := &tokens.Site{OrgID: f.org.ID, Name: name}
	if err := f.svc.CreateSite(context.Background(), tokens.Operator, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func testSitesNeedPermUsers(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	sydney := f.site(t, "Sydney")
	calls := map[string]func(m *tokens.Manager) error{
		"list": func(m *tokens.Manager) error { _, err := m.Sites(ctx, tokens.SiteQuery{}); return err },
		"read": func(m *tokens.Manager) error { _, err := m.Site(ctx, sydney.ID, tokens.MemberQuery{}); return err },
		"create": func(m *tokens.Manager) error {
			_, err := m.CreateSite(ctx, "Perth", "")
			return err
		},
		"create, badly": func(m *tokens.Manager) error {
			_, err := m.CreateSite(ctx, "Perth,Darwin", "")
			return err
		},
		"delete": func(m *tokens.Manager) error { _, err := m.DeleteSite(ctx, sydney.ID); return err },
		"add": func(m *tokens.Manager) error {
			_, err := m.AddSiteMember(ctx, sydney.ID, f.bob.ID)
			return err
		},
		"remove": func(m *tokens.Manager) error {
			_, err := m.RemoveSiteMember(ctx, sydney.ID, f.bob.ID)
			return err
		},
	}
	for _, who := range []struct{ token, name string }{
		{f.aliceTok, `user "alice"`}, {f.bobTok, `user "bob"`}, {f.reader, `service user "reader"`}, {f.admin, `service user "tokadmin"`},
	} {
		for what, call := range calls {
			wantRefusal(t, who.name+" "+what, call(f.as(t, who.token)), tokens.Forbidden, "platform.users", who.name)
		}
	}
	// Nothing changed.
	sites, err := f.svc.Sites(ctx, f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) != 1 || sites[0].Members != 0 {
		t.Errorf("after refused calls: %+v", sites)
	}
	// carol (through "HR") and the bootstrap token hold platform.users.
	for _, tok := range []string{f.carTok, f.bootstrap} {
		if _, err := f.as(t, tok).Sites(ctx, tokens.SiteQuery{}); err != nil {
			t.Errorf("a holder of platform.users lists sites: %v", err)
		}
	}
}

func testManagedSiteLifecycle(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	created, err := carol.CreateSite(ctx, "  Sydney ", "SYD-1")
	if err != nil {
		t.Fatal(err)
	}
	if created.Name != "Sydney" || created.ExternalID != "SYD-1" || created.OrgName != "acme" || !strings.HasPrefix(created.ID, "site_") || created.CreatedAt.IsZero() {
		t.Errorf("created %+v", created)
	}
	if _, err := carol.CreateSite(ctx, "Perth", ""); err != nil {
		t.Fatal(err)
	}

	added, err := carol.AddSiteMember(ctx, "sydney", "ALICE")
	if err != nil {
		t.Fatal(err)
	}
	want := tokens.Membership{OrgName: "acme", SiteID: created.ID, SiteName: "Sydney", UserID: f.alice.ID, UserName: "alice", Result: tokens.MemberAdded}
	if *added != want {
		t.Errorf("added %+v, want %+v", *added, want)
	}
	again, err := carol.AddSiteMember(ctx, created.ID, f.alice.ID)
	if err != nil || again.Result != tokens.MemberUnchanged {
		t.Errorf("added again: %+v, %v; want unchanged", again, err)
	}
	if _, err := carol.AddSiteMember(ctx, "Sydney", f.bob.ID); err != nil {
		t.Fatal(err)
	}
	// A deactivated person can be made a member (their tokens are expired
	// anyway); one who left the org cannot.
	dave := f.person(t, "dave")
	if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, dave.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.AddSiteMember(ctx, "Sydney", "dave"); err != nil {
		t.Errorf("a deactivated person: %v", err)
	}

	page, err := carol.Sites(ctx, tokens.SiteQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range page.Sites {
		got = append(got, fmt.Sprintf("%s:%d", s.Name, s.Members))
	}
	if strings.Join(got, ",") != "Perth:0,Sydney:3" || page.Next != "" {
		t.Errorf("sites %v (next %q), want Perth:0,Sydney:3", got, page.Next)
	}

	detail, err := carol.Site(ctx, "SYDNEY", tokens.MemberQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, m := range detail.MemberPage {
		members = append(members, fmt.Sprintf("%s:%v", m.UserName, m.Active))
	}
	slices.Sort(members)
	if detail.ID != created.ID || detail.Members != 3 || strings.Join(members, ",") != "alice:true,bob:true,dave:false" || detail.Next != "" {
		t.Errorf("site %+v, members %v", detail.SiteInfo, members)
	}

	removed, err := carol.RemoveSiteMember(ctx, "Sydney", "alice")
	if err != nil || removed.Result != tokens.MemberRemoved || removed.UserName != "alice" {
		t.Errorf("removed %+v, %v", removed, err)
	}
	_, err = carol.RemoveSiteMember(ctx, "Sydney", "alice")
	wantRefusal(t, "remove a non-member", err, tokens.WrongState, `user "alice" is not a member of site "Sydney"`)

	deleted, err := carol.DeleteSite(ctx, "sydney")
	if err != nil {
		t.Fatal(err)
	}
	if deleted.ID != created.ID || deleted.Name != "Sydney" || deleted.Members != 2 {
		t.Errorf("deleted %+v, want Sydney with its 2 members", deleted)
	}
	_, err = carol.Site(ctx, created.ID, tokens.MemberQuery{})
	wantRefusal(t, "a deleted site", err, tokens.NotFound, created.ID)
	u, err := f.svc.UserByName(ctx, f.org.ID, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Sites) != 0 {
		t.Errorf("bob's sites after the delete: %v", u.Sites)
	}
}

func testManagedSiteRefusals(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	if _, err := carol.CreateSite(ctx, "Sydney", "SYD"); err != nil {
		t.Fatal(err)
	}
	_, err := carol.CreateSite(ctx, "SYDNEY", "")
	wantRefusal(t, "a name taken in another case", err, tokens.Conflict, `site "SYDNEY" already exists`)
	_, err = carol.CreateSite(ctx, "Perth", "SYD")
	wantRefusal(t, "an external ID taken", err, tokens.Conflict, `external ID "SYD"`)
	_, err = carol.CreateSite(ctx, " ", "")
	wantRefusal(t, "an empty name", err, tokens.Invalid, "must not be empty")
	_, err = carol.CreateSite(ctx, "Perth,Darwin", "")
	wantRefusal(t, "a comma", err, tokens.Invalid, "comma")
	_, err = carol.CreateSite(ctx, strings.Repeat("x", 201), "")
	wantRefusal(t, "a long name", err, tokens.Invalid, "200 bytes")
	_, err = carol.CreateSite(ctx, "Perth", "a\nb")
	wantRefusal(t, "a control character in the external ID", err, tokens.Invalid, "external ID")

	_, err = carol.AddSiteMember(ctx, "Sydney", "nobody")
	wantRefusal(t, "an unknown person", err, tokens.NotFound, `user "nobody" not found`)
	_, err = carol.AddSiteMember(ctx, "Nowhere", "alice")
	wantRefusal(t, "an unknown site", err, tokens.NotFound, `site "Nowhere" not found`)
	_, err = carol.RemoveSiteMember(ctx, "Sydney", "nobody")
	wantRefusal(t, "remove an unknown person", err, tokens.NotFound, "nobody")
	_, err = carol.DeleteSite(ctx, "Nowhere")
	wantRefusal(t, "delete an unknown site", err, tokens.NotFound, "Nowhere")
	_, err = carol.Site(ctx, "", tokens.MemberQuery{})
	wantRefusal(t, "no site", err, tokens.NotFound)

	// A person who left the org is not found, by ID or by name.
	if _, err := carol.AddSiteMember(ctx, "Sydney", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RemoveUser(ctx, tokens.Operator, f.org.ID, f.bob.ID); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{f.bob.ID, "bob"} {
		_, err = carol.AddSiteMember(ctx, "Sydney", ref)
		wantRefusal(t, "a person who left, by "+ref, err, tokens.NotFound)
	}
	detail, err := carol.Site(ctx, "Sydney", tokens.MemberQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if detail.Members != 0 || len(detail.MemberPage) != 0 {
		t.Errorf("a person who left is still a member: %+v", detail)
	}
	_, err = carol.Site(ctx, "Sydney", tokens.MemberQuery{Limit: tokens.MaxPageSize + 1})
	wantRefusal(t, "a page too large", err, tokens.Invalid, "limit must be 1 to 1000")
}

// testSiteChangesReachTheNextRequest: the change log evicts the person's
// cached identity, so the authenticator's very next answer carries the
// change.
func testSiteChangesReachTheNextRequest(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	sites := func() []string {
		t.Helper()
		id, err := f.auth.Authenticate(ctx, f.bobTok)
		if err != nil {
			t.Fatal(err)
		}
		return id.Sites
	}
	if got := sites(); len(got) != 0 {
		t.Fatalf("bob starts in sites %v", got)
	}
	if _, err := carol.CreateSite(ctx, "Sydney", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.AddSiteMember(ctx, "Sydney", "bob"); err != nil {
		t.Fatal(err)
	}
	if got := sites(); !slices.Equal(got, []string{"Sydney"}) {
		t.Errorf("after add: %v, want [Sydney]", got)
	}
	if _, err := carol.CreateSite(ctx, "Melbourne", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.AddSiteMember(ctx, "Melbourne", f.bob.ID); err != nil {
		t.Fatal(err)
	}
	if got := sites(); !slices.Equal(got, []string{"Melbourne", "Sydney"}) {
		t.Errorf("after the second add: %v", got)
	}
	if _, err := carol.RemoveSiteMember(ctx, "Sydney", "bob"); err != nil {
		t.Fatal(err)
	}
	if got := sites(); !slices.Equal(got, []string{"Melbourne"}) {
		t.Errorf("after remove: %v, want [Melbourne]", got)
	}
	if _, err := carol.DeleteSite(ctx, "Melbourne"); err != nil {
		t.Fatal(err)
	}
	if got := sites(); len(got) != 0 {
		t.Errorf("after the site's deletion: %v, want none", got)
	}
}

func testSiteAuditNamesTheActor(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol, boot := f.as(t, f.carTok), f.as(t, f.bootstrap)
	created, err := carol.CreateSite(ctx, "Sydney", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := boot.AddSiteMember(ctx, "Sydney", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.RemoveSiteMember(ctx, "Sydney", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := boot.DeleteSite(ctx, "Sydney"); err != nil {
		t.Fatal(err)
	}
	page, err := f.svc.AuditTrail(ctx, f.org.ID, tokens.AuditQuery{Target: created.ID})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Events {
		actor, _, _ := strings.Cut(e.Actor, " (token ")
		got = append(got, e.Action+" by "+actor)
	}
	want := []string{"site.delete by service user bootstrap", "site.member.remove by user carol", "site.member.add by service user bootstrap", "site.create by user carol"}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail %q, want %q", got, want)
	}
	if e := page.Events[3]; !strings.Contains(e.Actor, "(token tok_") {
		t.Errorf("the actor does not name the token: %q", e.Actor)
	}
}

func testOtherOrgSitesAreInvisible(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	other, err := f.svc.CreateOrg(ctx, tokens.Operator, "other", 0)
	if err != nil {
		t.Fatal(err)
	}
	theirSite := &tokens.Site{OrgID: other.ID, Name: "Sydney"}
	if err := f.svc.CreateSite(ctx, tokens.Operator, theirSite); err != nil {
		t.Fatal(err)
	}
	erin := &tokens.User{OrgID: other.ID, UserName: "erin", Active: true}
	if err := f.svc.CreateUser(ctx, tokens.Operator, erin); err != nil {
		t.Fatal(err)
	}
	carol := f.as(t, f.carTok)
	ours, err := carol.CreateSite(ctx, "Sydney", "") // the same name is free in another org
	if err != nil {
		t.Fatal(err)
	}
	_, err = carol.Site(ctx, theirSite.ID, tokens.MemberQuery{})
	wantRefusal(t, "read another org's site", err, tokens.NotFound)
	_, err = carol.DeleteSite(ctx, theirSite.ID)
	wantRefusal(t, "delete another org's site", err, tokens.NotFound)
	_, err = carol.AddSiteMember(ctx, theirSite.ID, "alice")
	wantRefusal(t, "add to another org's site", err, tokens.NotFound)
	_, err = carol.AddSiteMember(ctx, ours.ID, erin.ID)
	wantRefusal(t, "add another org's person", err, tokens.NotFound)
	_, err = carol.AddSiteMember(ctx, ours.ID, "erin")
	wantRefusal(t, "add another org's person by name", err, tokens.NotFound)
	_, err = carol.Sites(ctx, tokens.SiteQuery{MemberID: erin.ID})
	wantRefusal(t, "filter by another org's person", err, tokens.NotFound)
	page, err := carol.Sites(ctx, tokens.SiteQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Sites) != 1 || page.Sites[0].ID != ours.ID {
		t.Errorf("carol lists %+v, want her org's site only", page.Sites)
	}
	if their, _ := f.svc.Sites(ctx, other.ID); len(their) != 1 {
		t.Errorf("the other org's sites changed: %+v", their)
	}
}

func testSitePagination(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	// Names that sort differently by letter case, and one holding the
	// cursor's separator.
	for _, name := range []string{"delta", "Alpha", "charlie:1", "Bravo", "echo"} {
		if _, err := carol.CreateSite(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	q := tokens.SiteQuery{Limit: 2}
	for pages := 1; ; pages++ {
		page, err := carol.Sites(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Sites) > 2 || pages > 3 {
			t.Fatalf("page %d: %d sites", pages, len(page.Sites))
		}
		for _, s := range page.Sites {
			names = append(names, s.Name)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if strings.Join(names, ",") != "Alpha,Bravo,charlie:1,delta,echo" {
		t.Errorf("paged sites %v", names)
	}

	people := []string{"alice", "bob", "carol"}
	for i := range 4 {
		people = append(people, f.person(t, fmt.Sprint("p", i)).UserName)
	}
	for _, p := range people {
		if _, err := carol.AddSiteMember(ctx, "Alpha", p); err != nil {
			t.Fatal(err)
		}
	}
	var members []string
	mq := tokens.MemberQuery{Limit: 3}
	for pages := 1; ; pages++ {
		d, err := carol.Site(ctx, "Alpha", mq)
		if err != nil {
			t.Fatal(err)
		}
		if d.Members != 7 || len(d.MemberPage) > 3 || pages > 3 {
			t.Fatalf("page %d: %d members of %d", pages, len(d.MemberPage), d.Members)
		}
		for _, m := range d.MemberPage {
			members = append(members, m.UserName)
		}
		if d.Next == "" {
			break
		}
		mq.Cursor = d.Next
	}
	slices.Sort(members)
	slices.Sort(people)
	if !slices.Equal(members, people) {
		t.Errorf("paged members %v, want %v", members, people)
	}

	for _, bad := range []string{"nonsense", base64.RawURLEncoding.EncodeToString([]byte("m:" + base64.RawURLEncoding.EncodeToString([]byte("x"))))} {
		_, err := carol.Sites(ctx, tokens.SiteQuery{Cursor: bad})
		wantRefusal(t, "a cursor of another listing", err, tokens.Invalid, "start again without it")
	}
	page, err := carol.Sites(ctx, tokens.SiteQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = carol.Site(ctx, "Alpha", tokens.MemberQuery{Cursor: page.Next})
	wantRefusal(t, "a site cursor for members", err, tokens.Invalid, "start again without it")
}

func testSiteMemberFilter(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	for _, name := range []string{"Sydney", "Perth", "Darwin"} {
		if _, err := carol.CreateSite(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, site := range []string{"Sydney", "Darwin"} {
		if _, err := carol.AddSiteMember(ctx, site, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []tokens.SiteQuery{{MemberName: "Alice"}, {MemberID: f.alice.ID}, {MemberID: f.alice.ID, MemberName: "alice"}} {
		page, err := carol.Sites(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range page.Sites {
			names = append(names, fmt.Sprintf("%s:%d", s.Name, s.Members))
		}
		if strings.Join(names, ",") != "Darwin:1,Sydney:1" {
			t.Errorf("sites of %+v: %v", q, names)
		}
	}
	page, err := carol.Sites(ctx, tokens.SiteQuery{MemberName: "bob"})
	if err != nil || len(page.Sites) != 0 {
		t.Errorf("bob's sites: %+v, %v", page, err)
	}
	_, err = carol.Sites(ctx, tokens.SiteQuery{MemberName: "nobody"})
	wantRefusal(t, "an unknown member", err, tokens.NotFound, "nobody")
	_, err = carol.Sites(ctx, tokens.SiteQuery{MemberID: f.alice.ID, MemberName: "bob"})
	wantRefusal(t, "two different people", err, tokens.Invalid, "two different people")
}

// testSiteIDBeforeName: a site named like another site's ID is reached by
// its own ID; the other by the ID.
func testSiteIDBeforeName(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	first, err := carol.CreateSite(ctx, "First", "")
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := carol.CreateSite(ctx, first.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := carol.Site(ctx, first.ID, tokens.MemberQuery{})
	if err != nil || d.ID != first.ID {
		t.Errorf("by the ID: %+v, %v; want the site with that ID", d, err)
	}
	if d, err = carol.Site(ctx, impostor.ID, tokens.MemberQuery{}); err != nil || d.Name != first.ID {
		t.Errorf("the other by its ID: %+v, %v", d, err)
	}
}

func testMeShowsSites(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	for _, name := range []string{"Sydney", "Darwin"} {
		if _, err := carol.CreateSite(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.AddSiteMember(ctx, name, "bob"); err != nil {
			t.Fatal(err)
		}
	}
	// bob holds no platform.users: he reads his own sites in Me.
	me, err := f.as(t, f.bobTok).Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(me.Sites, []string{"Darwin", "Sydney"}) {
		t.Errorf("bob's sites in Me: %v", me.Sites)
	}
	if me, err = f.as(t, f.aliceTok).Me(ctx); err != nil || me.Sites == nil || len(me.Sites) != 0 {
		t.Errorf("alice's sites in Me: %#v, %v; want empty", me.Sites, err)
	}
	if me, err = f.as(t, f.bootstrap).Me(ctx); err != nil || me.Sites == nil || len(me.Sites) != 0 {
		t.Errorf("a service user's sites in Me: %#v, %v; want empty", me.Sites, err)
	}
}

func testSitePermissionsAreReadAtEachCall(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	if _, err := carol.CreateSite(ctx, "Sydney", ""); err != nil {
		t.Fatal(err)
	}
	groups, _, err := f.svc.Groups(ctx, f.org.ID, tokens.GroupFilter{DisplayName: "HR"})
	if err != nil {
		t.Fatal(err)
	}
	g := groups[0]
	g.MemberIDs = nil
	if err := f.svc.ReplaceGroup(ctx, tokens.Operator, &g, 0); err != nil {
		t.Fatal(err)
	}
	_, err = carol.AddSiteMember(ctx, "Sydney", "bob")
	wantRefusal(t, "carol after leaving HR", err, tokens.Forbidden, "platform.users", `user "carol"`)
}

func testSiteMalformedText(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	carol := f.as(t, f.carTok)
	if _, err := carol.CreateSite(ctx, "Sydney", ""); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\xff", "site\x00x", "\xc0\xae"} {
		_, err := carol.Site(ctx, bad, tokens.MemberQuery{})
		wantRefusal(t, fmt.Sprintf("site %q", bad), err, tokens.NotFound)
		_, err = carol.DeleteSite(ctx, bad)
		wantRefusal(t, fmt.Sprintf("delete site %q", bad), err, tokens.NotFound)
		_, err = carol.AddSiteMember(ctx, "Sydney", bad)
		wantRefusal(t, fmt.Sprintf("add user %q", bad), err, tokens.NotFound)
		_, err = carol.RemoveSiteMember(ctx, bad, "alice")
		wantRefusal(t, fmt.Sprintf("remove from site %q", bad), err, tokens.NotFound)
		_, err = carol.CreateSite(ctx, bad, "")
		wantRefusal(t, fmt.Sprintf("create site %q", bad), err, tokens.Invalid)
		_, err = carol.CreateSite(ctx, "Perth", bad)
		wantRefusal(t, fmt.Sprintf("create site with external ID %q", bad), err, tokens.Invalid)
		_, err = carol.Sites(ctx, tokens.SiteQuery{MemberName: bad})
		wantRefusal(t, fmt.Sprintf("sites of member %q", bad), err, tokens.Invalid)
		_, err = carol.Sites(ctx, tokens.SiteQuery{MemberID: bad})
		wantRefusal(t, fmt.Sprintf("sites of member ID %q", bad), err, tokens.Invalid)
		_, err = carol.Sites(ctx, tokens.SiteQuery{Cursor: base64.RawURLEncoding.EncodeToString([]byte("s:" + base64.RawURLEncoding.EncodeToString([]byte(bad))))})
		wantRefusal(t, fmt.Sprintf("a cursor of %q", bad), err, tokens.Invalid)
	}
}
