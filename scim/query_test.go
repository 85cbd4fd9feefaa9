package scim

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

func TestPushdown(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	email := func(op tokens.Op, v string) tokens.Compare {
		return tokens.Compare{Attr: tokens.AttrEmail, Op: op, Value: v}
	}
	tests := []struct {
		filter string
		shape  *resourceShape
		want   tokens.Cond
		exact  bool
	}{
		{`userName eq "a"`, &userShape, tokens.Compare{Attr: tokens.AttrUserName, Op: tokens.OpEq, Value: "a"}, true},
		{`USERNAME SW "a"`, &userShape, tokens.Compare{Attr: tokens.AttrUserName, Op: tokens.OpSw, Value: "a"}, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName ew "a"`, &userShape, tokens.Compare{Attr: tokens.AttrUserName, Op: tokens.OpEw, Value: "a"}, true},
		{`emails co "@x"`, &userShape, email(tokens.OpCo, "@x"), true},
		{`emails.value pr`, &userShape, tokens.Compare{Attr: tokens.AttrEmail, Op: tokens.OpPr}, true},
		{`emails[value eq "a" or value sw "b"]`, &userShape, tokens.Or{email(tokens.OpEq, "a"), email(tokens.OpSw, "b")}, true},
		// One address must be both: only a superset translates.
		{`emails[type eq "work" and value eq "a"]`, &userShape, email(tokens.OpEq, "a"), false},
		{`emails[value sw "a" and value ew "z"]`, &userShape, tokens.And{email(tokens.OpSw, "a"), email(tokens.OpEw, "z")}, false},
		{`emails[type eq "work"]`, &userShape, nil, false},
		{`externalId ne "x"`, &userShape, tokens.Not{Cond: tokens.Compare{Attr: tokens.AttrExternalID, Op: tokens.OpEq, Value: "x"}}, true},
		{`active eq false`, &userShape, tokens.Compare{Attr: tokens.AttrActive, Op: tokens.OpEq, Value: false}, true},
		{`meta.lastModified gt "2026-01-02T03:04:05Z"`, &userShape, tokens.Compare{Attr: tokens.AttrLastModified, Op: tokens.OpGt, Value: at}, true},
		{`meta.created le "2026-01-02T03:04:05"`, &userShape, tokens.Compare{Attr: tokens.AttrCreated, Op: tokens.OpLe, Value: at}, true},
		{`meta.lastModified sw "2026"`, &userShape, nil, false},
		{`name.givenName eq "a" and userName sw "b"`, &userShape, tokens.Compare{Attr: tokens.AttrUserName, Op: tokens.OpSw, Value: "b"}, false},
		{`name.givenName eq "a" or userName sw "b"`, &userShape, nil, false},
		{`not (name.givenName eq "a")`, &userShape, nil, false},
		{`not (userName eq "a")`, &userShape, tokens.Not{Cond: tokens.Compare{Attr: tokens.AttrUserName, Op: tokens.OpEq, Value: "a"}}, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"`, &userShape, nil, false},
		{`id eq "g" and members eq "u"`, &groupShape, tokens.And{tokens.Compare{Attr: tokens.AttrID, Op: tokens.OpEq, Value: "g"},
			tokens.Compare{Attr: tokens.AttrMember, Op: tokens.OpEq, Value: "u"}}, true},
		{`members[value eq "u"]`, &groupShape, tokens.Compare{Attr: tokens.AttrMember, Op: tokens.OpEq, Value: "u"}, true},
		{`members.display eq "u"`, &groupShape, nil, false},
		{`userName eq "a\u0000"`, &userShape, nil, false},
	}
	for _, tt := range tests {
		e, err := parseFilter(tt.filter)
		if err != nil {
			t.Fatalf("parse %q: %v", tt.filter, err)
		}
		kind := tokens.KindUsers
		if tt.shape == &groupShape {
			kind = tokens.KindGroups
		}
		got, exact := pushdown(e, tt.shape, kind)
		if !reflect.DeepEqual(got, tt.want) || exact != tt.exact {
			t.Errorf("pushdown(%q) = %#v, %v; want %#v, %v", tt.filter, got, exact, tt.want, tt.exact)
		}
	}
}

// pushdownUsers are users whose values tell the comparisons apart.
func pushdownUsers() []*tokens.User {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	base := sampleUser()
	var users []*tokens.User
	for i, v := range []struct{ name, display, ext string }{
		{"barbara@example.com", "Babs Jensen", "ext-1"},
		{"ÉMILE@Example.org", "", ""},
		{"İstanbul", "istanbul", "EXT-1"},
		{"\u212Aelvin", "kelvin", "x"},
	} {
		u := *base
		u.ID, u.UserName, u.DisplayName, u.ExternalID = fmt.Sprintf("usr_%d", i), v.name, v.display, v.ext
		u.CreatedAt, u.UpdatedAt = at.Add(time.Duration(i)*time.Millisecond), at.Add(time.Duration(i)*1500*time.Microsecond)
		u.Active = i%2 == 0
		if i == 1 {
			u.Emails = nil
		}
		if i == 2 {
			u.Emails = []tokens.Email{{Value: "ÉCOLE@x.org", Type: "work"}, {Value: "a\x1fb@x", Type: "other"}}
		}
		users = append(users, &u)
	}
	return users
}

func pushdownGroups() []*tokens.Group {
	base := sampleGroup()
	var groups []*tokens.Group
	for i, members := range [][]string{{"usr_1", "usr_2"}, nil, {"USR_1"}} {
		g := *base
		g.ID, g.MemberIDs = fmt.Sprintf("grp_%d", i), members
		g.DisplayName = []string{"Engineering", "ÉQUIPE", "engineering x"}[i]
		g.UpdatedAt = g.UpdatedAt.Add(time.Duration(i) * 700 * time.Microsecond)
		groups = append(groups, &g)
	}
	return groups
}

// checkPushdown checks the property the list path relies on: the
// condition pushdown gives holds for every resource the filter matches,
// and, when it says it is exact, for no other.
func checkPushdown(t *testing.T, filter string) {
	e, err := parseFilter(rewriteFilter(filter))
	if err != nil {
		return
	}
	cond, exact := pushdown(e, &userShape, tokens.KindUsers)
	if cond != nil {
		if err := (tokens.Query{Where: cond}).Check(tokens.KindUsers); err != nil {
			t.Fatalf("pushdown(%q) = %v, which the store refuses: %v", filter, describeCond(cond), err)
		}
	}
	for _, u := range pushdownUsers() {
		want := matches(e, testUsers.render(u), &userShape, "")
		got := cond == nil || tokens.UserMatches(cond, u, nil)
		if want && !got || exact && want != got {
			t.Fatalf("filter %q on %s: matches %v, but pushdown gives %v (exact %v), which holds: %v",
				filter, u.UserName, want, describeCond(cond), exact, got)
		}
	}
	cond, exact = pushdown(e, &groupShape, tokens.KindGroups)
	for _, g := range pushdownGroups() {
		want := matches(e, testGroups.render(g), &groupShape, "")
		got := cond == nil || tokens.GroupMatches(cond, g)
		if want && !got || exact && want != got {
			t.Fatalf("filter %q on group %s: matches %v, but pushdown gives %v (exact %v), which holds: %v",
				filter, g.ID, want, describeCond(cond), exact, got)
		}
	}
}

func describeCond(c tokens.Cond) string { return fmt.Sprintf("%#v", c) }

var pushdownSeeds = []string{
	`userName eq "barbara@example.com"`,
	`userName sw "É" or userName co "bul"`,
	`userName eq "kelvin" and not (active eq true)`,
	`displayName pr and displayName ew "N"`,
	`displayName eq "İSTANBUL"`,
	`externalId eq "EXT-1"`,
	`externalId gt "ext"`,
	`emails co "@"`,
	`emails[value ew ".ORG" or type eq "work"]`,
	`emails[type eq "work"].value sw "école"`,
	`emails co "a` + "\x1f" + `b"`,
	`emails.value lt "b"`,
	`not (emails pr)`,
	`meta.lastModified gt "2026-01-02T03:04:05.124Z"`,
	`meta.lastModified ge "2026-01-02T03:04:05.1245Z"`,
	`meta.created eq "2026-01-02T03:04:05.125Z"`,
	`meta.created lt "2026-01-02T04:04:05.125+01:00"`,
	`meta.lastModified le "2026-01-02T03:04:05.126"`,
	`name.givenName eq "Barbara" and userName ew ".com"`,
	`members eq "usr_1"`,
	`members[value eq "usr_2" or value sw "USR"]`,
	`members pr and displayName co "eng"`,
	`not (members.value gt "usr_1")`,
	`id eq "grp_1" or id eq "usr_0"`,
}

func TestPushdownProperty(t *testing.T) {
	for _, f := range pushdownSeeds {
		checkPushdown(t, f)
	}
}

func FuzzPushdown(f *testing.F) {
	for _, seed := range pushdownSeeds {
		f.Add(seed)
	}
	f.Fuzz(checkPushdown)
}

// FuzzParseDateTime checks that a time a filter carries reads back the
// same after it is written in RFC 3339.
func FuzzParseDateTime(f *testing.F) {
	for _, seed := range []string{"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456789+02:00", "2026-01-02T03:04:05",
		"2026-01-02T03:04:05.1", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999-23:59", "2026-13-02T03:04:05Z", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseDateTime(s)
		if err != nil {
			return
		}
		again, err := parseDateTime(got.Format(time.RFC3339Nano))
		if err != nil || !again.Equal(got) {
			t.Fatalf("parseDateTime(%q) = %v, which reads back as %v, %v", s, got, again, err)
		}
	})
}

// FuzzMemberPage checks the page of members a projection may ask for: a
// 400 for what is not one, and a page that starts at 1 or later and holds
// at least one member otherwise.
func FuzzMemberPage(f *testing.F) {
	for _, seed := range []string{"members[startIndex=1&count=10]", "displayName,members[count=5]", "MEMBERS[startIndex=0&count=1]",
		"urn:ietf:params:scim:schemas:core:2.0:Group:members[startIndex=2&count=3]", "members[count=x]", "members[]", "members"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, attributes string) {
		r := httptest.NewRequest("GET", "/Groups?attributes="+url.QueryEscape(attributes), nil)
		proj, page, err := listProjection(r, "/Groups")
		if err != nil {
			return
		}
		if page.paged && (page.startIndex < 1 || page.count < 1 || !slices.Contains(proj.attributes, "members")) {
			t.Fatalf("attributes=%q: page %+v, attributes %q", attributes, page, proj.attributes)
		}
	})
}
