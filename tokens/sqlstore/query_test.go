package sqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// queryData is an org whose values are made to catch a translation that
// is almost right: letter case beyond ASCII (É, İ, the Kelvin sign, ß),
// prefixes of one another, empty and absent values, several addresses
// (one holding the separator of users.emails_lower), times a few
// microseconds apart within one millisecond.
type queryData struct {
	org    *tokens.Org
	other  *tokens.Org
	users  []tokens.User
	groups []tokens.Group
	// groupsOf are the group IDs of each user.
	groupsOf map[string][]string
}

var queryTexts = []string{"a", "A", "ab", "Ab", "abc", "ABC", "b", "émile", "ÉMILE", "Émilie", "İstanbul", "istanbul",
	"\u212Aelvin", "kelvin", "straße", "STRASSE", "zoë", "Zoë", "x_y", "x%y", "日本", "日本語", "\U0010FFFF", "\U0010FFFFa"}

func newQueryData(t *testing.T, s *sqlstore.Store, f *fixture) *queryData {
	t.Helper()
	ctx := context.Background()
	d := &queryData{org: f.org, other: f.newOrg(t, "other"), groupsOf: map[string][]string{}}
	rng := rand.New(rand.NewPCG(7, 7))
	base := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	pick := func() string { return queryTexts[rng.IntN(len(queryTexts))] }
	for i := range 80 {
		at := base.Add(time.Duration(i/3)*time.Millisecond + time.Duration(i%3)*300*time.Microsecond)
		u := tokens.User{ID: fmt.Sprintf("usr_q%03d", i), OrgID: d.org.ID, UserName: fmt.Sprintf("%s.%d", pick(), i),
			Active: i%4 != 0, CreatedAt: at, UpdatedAt: at.Add(time.Duration(rng.IntN(5000)) * time.Microsecond), Version: 1}
		if i%3 != 0 {
			u.DisplayName = pick() + " " + pick()
		}
		if i%5 != 0 {
			u.ExternalID = pick()
		}
		for j := range rng.IntN(4) {
			addr := fmt.Sprintf("%s%d@%s.example", pick(), j, strings.ToLower(pick()))
			if i == 7 && j == 0 {
				addr = "sep\x1fin@middle.example"
			}
			u.Emails = append(u.Emails, tokens.Email{Value: addr})
		}
		d.users = append(d.users, u)
	}
	// A user of another org with the same values never shows.
	stranger := d.users[1]
	stranger.ID, stranger.OrgID = "usr_stranger", d.other.ID
	for i := range 6 {
		g := tokens.Group{ID: fmt.Sprintf("grp_q%d", i), OrgID: d.org.ID, DisplayName: fmt.Sprintf("%s group %d", pick(), i),
			CreatedAt: base.Add(time.Duration(i) * time.Millisecond), UpdatedAt: base.Add(time.Duration(10-i) * 700 * time.Microsecond), Version: 1}
		if i%2 == 0 {
			g.ExternalID = pick()
		}
		for _, u := range d.users {
			if rng.IntN(3) == 0 {
				g.MemberIDs = append(g.MemberIDs, u.ID)
				d.groupsOf[u.ID] = append(d.groupsOf[u.ID], g.ID)
			}
		}
		d.groups = append(d.groups, g)
	}
	err := s.BulkLoad(ctx, sqlstore.Bulk{Users: append(slices.Clone(d.users), stranger), Groups: d.groups})
	if err != nil {
		t.Fatal(err)
	}
	// Some users change through the service too, so that UpdateUser's
	// derived columns are tested as well as BulkLoad's.
	for _, i := range []int{2, 4, 5} {
		u := d.users[i]
		u.DisplayName, u.Emails = "Changed ÉCOLE "+fmt.Sprint(i), []tokens.Email{{Value: "New@Changed.example"}}
		f.svc.Now = func() time.Time { return u.UpdatedAt.Add(time.Second) }
		if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, &u, 0); err != nil {
			t.Fatal(err)
		}
		d.users[i] = u
	}
	// A removed user is never selected.
	removed := d.users[len(d.users)-1]
	if _, err := f.svc.RemoveUser(ctx, tokens.Operator, d.org.ID, removed.ID); err != nil {
		t.Fatal(err)
	}
	d.users = d.users[:len(d.users)-1]
	for i := range d.groups {
		d.groups[i].MemberIDs = slices.DeleteFunc(d.groups[i].MemberIDs, func(id string) bool { return id == removed.ID })
	}
	// Read back what the store holds (times in microseconds, the
	// fixture's own user, versions).
	all, _, err := f.svc.Users(ctx, d.org.ID, tokens.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	d.users = all
	groups, _, err := f.svc.Groups(ctx, d.org.ID, tokens.GroupFilter{})
	if err != nil {
		t.Fatal(err)
	}
	d.groups = groups
	return d
}

// randomCond makes a condition from values that occur in d, with their
// letter case changed, cut, or moved by a little.
func (d *queryData) randomCond(rng *rand.Rand, kind tokens.ResourceKind, depth int) tokens.Cond {
	if depth > 0 {
		switch rng.IntN(5) {
		case 0:
			return tokens.And{d.randomCond(rng, kind, depth-1), d.randomCond(rng, kind, depth-1)}
		case 1:
			return tokens.Or{d.randomCond(rng, kind, depth-1), d.randomCond(rng, kind, depth-1)}
		case 2:
			return tokens.Not{Cond: d.randomCond(rng, kind, depth-1)}
		}
	}
	attrs := []tokens.Attr{tokens.AttrID, tokens.AttrExternalID, tokens.AttrDisplayName, tokens.AttrCreated, tokens.AttrLastModified}
	if kind == tokens.KindUsers {
		attrs = append(attrs, tokens.AttrUserName, tokens.AttrEmail, tokens.AttrEmail, tokens.AttrActive, tokens.AttrGroup)
	} else {
		attrs = append(attrs, tokens.AttrMember)
	}
	attr := attrs[rng.IntN(len(attrs))]
	ops := []tokens.Op{tokens.OpEq, tokens.OpSw, tokens.OpEw, tokens.OpCo, tokens.OpPr, tokens.OpGt, tokens.OpGe, tokens.OpLt, tokens.OpLe}
	switch {
	case attr == tokens.AttrActive:
		ops = []tokens.Op{tokens.OpEq, tokens.OpPr}
	case attr.IsTime():
		ops = []tokens.Op{tokens.OpEq, tokens.OpGt, tokens.OpGe, tokens.OpLt, tokens.OpLe, tokens.OpPr}
	}
	c := tokens.Compare{Attr: attr, Op: ops[rng.IntN(len(ops))]}
	switch {
	case c.Op == tokens.OpPr:
	case attr == tokens.AttrActive:
		c.Value = rng.IntN(2) == 0
	case attr.IsTime():
		u := d.users[rng.IntN(len(d.users))]
		at := u.CreatedAt
		if rng.IntN(2) == 0 {
			at = u.UpdatedAt
		}
		switch rng.IntN(3) {
		case 0:
			at = at.Truncate(time.Millisecond)
		case 1:
			at = at.Add(time.Duration(rng.IntN(3000)-1500) * time.Microsecond)
		}
		c.Value = at
	default:
		c.Value = d.randomText(rng, kind, attr)
	}
	return c
}

func (d *queryData) randomText(rng *rand.Rand, kind tokens.ResourceKind, attr tokens.Attr) string {
	var pool []string
	for _, u := range d.users {
		switch attr {
		case tokens.AttrID:
			pool = append(pool, u.ID)
		case tokens.AttrExternalID:
			pool = append(pool, u.ExternalID)
		case tokens.AttrUserName:
			pool = append(pool, u.UserName)
		case tokens.AttrDisplayName:
			pool = append(pool, u.DisplayName)
		case tokens.AttrEmail:
			for _, e := range u.Emails {
				pool = append(pool, e.Value)
			}
		case tokens.AttrGroup, tokens.AttrMember:
			pool = append(pool, u.ID)
		}
	}
	if kind == tokens.KindGroups {
		pool = nil
		for _, g := range d.groups {
			switch attr {
			case tokens.AttrID:
				pool = append(pool, g.ID)
			case tokens.AttrExternalID:
				pool = append(pool, g.ExternalID)
			case tokens.AttrDisplayName:
				pool = append(pool, g.DisplayName)
			case tokens.AttrMember:
				pool = append(pool, d.users[rng.IntN(len(d.users))].ID)
			}
		}
	}
	if attr == tokens.AttrGroup {
		pool = []string{d.groups[rng.IntN(len(d.groups))].ID}
	}
	v := pool[rng.IntN(len(pool))]
	r := []rune(v)
	switch rng.IntN(6) {
	case 0: // a prefix
		v = string(r[:rng.IntN(len(r)+1)])
	case 1: // a suffix
		v = string(r[rng.IntN(len(r)+1):])
	case 2: // a middle
		i := rng.IntN(len(r) + 1)
		v = string(r[i:min(len(r), i+1+rng.IntN(4))])
	case 3:
		v = strings.ToUpper(v)
	case 4:
		v = queryTexts[rng.IntN(len(queryTexts))]
	}
	return v
}

// TestQueryMatchesReference checks, on both databases, that the page and
// total the store answers a query with are those of the domain's reference
// evaluator over every resource of the org, for hundreds of random
// conditions, orders and pages.
func TestQueryMatchesReference(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := sqltest.Open(t, dialect)
			f := newFixture(t, s)
			d := newQueryData(t, s, f)
			checkQueries(t, f, d, 800)
		})
	}
}

func checkQueries(t *testing.T, f *fixture, d *queryData, n int) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, uint64(n)))
	for i := range n {
		kind := tokens.KindUsers
		if i%4 == 3 {
			kind = tokens.KindGroups
		}
		q := tokens.Query{Where: d.randomCond(rng, kind, rng.IntN(4)), WithTotal: true, Limit: 200}
		if i%10 == 0 {
			q.Where = nil
		}
		sorts := []tokens.Attr{"", tokens.AttrCreated, tokens.AttrLastModified, tokens.AttrDisplayName}
		if kind == tokens.KindUsers {
			sorts = append(sorts, tokens.AttrUserName)
		}
		q.SortBy, q.Descending = sorts[rng.IntN(len(sorts))], rng.IntN(2) == 0
		if rng.IntN(3) == 0 {
			q.Offset, q.Limit = rng.IntN(40), rng.IntN(12)
		}
		want, wantTotal := d.reference(kind, q)
		var got []string
		var total int
		var err error
		if kind == tokens.KindUsers {
			var users []tokens.User
			users, total, err = f.svc.QueryUsers(ctx, d.org.ID, q)
			for _, u := range users {
				got = append(got, u.ID)
			}
		} else {
			var groups []tokens.Group
			groups, total, err = f.svc.QueryGroups(ctx, d.org.ID, q, i%2 == 0)
			for _, g := range groups {
				got = append(got, g.ID)
				if i%2 == 0 && !slices.Equal(g.MemberIDs, d.group(g.ID).MemberIDs) {
					t.Fatalf("members of %s = %v, want %v", g.ID, g.MemberIDs, d.group(g.ID).MemberIDs)
				}
				if i%2 == 1 && g.MemberIDs != nil {
					t.Fatalf("members of %s read without being asked for", g.ID)
				}
			}
		}
		if err != nil {
			t.Fatalf("query %d %s %+v: %v", i, kind, q, err)
		}
		if !slices.Equal(got, want) || total != wantTotal {
			t.Fatalf("query %d of %s %s sorted by %q desc=%v offset %d limit %d:\n got %v (total %d)\nwant %v (total %d)",
				i, kind, describe(q.Where), q.SortBy, q.Descending, q.Offset, q.Limit, got, total, want, wantTotal)
		}
	}
}

func (d *queryData) group(id string) tokens.Group {
	for _, g := range d.groups {
		if g.ID == id {
			return g
		}
	}
	return tokens.Group{}
}

// reference is the page and total a query should give, from the domain's
// evaluator and a sort in Go.
func (d *queryData) reference(kind tokens.ResourceKind, q tokens.Query) ([]string, int) {
	type row struct {
		id, text string
		at       time.Time
	}
	var rows []row
	key := func(text string, created, modified time.Time, id string) row {
		switch q.SortBy {
		case tokens.AttrUserName, tokens.AttrDisplayName:
			return row{id: id, text: strings.ToLower(text)}
		case tokens.AttrLastModified:
			return row{id: id, at: modified}
		}
		return row{id: id, at: created}
	}
	if kind == tokens.KindUsers {
		for i := range d.users {
			u := &d.users[i]
			if tokens.UserMatches(q.Where, u, d.groupsOf[u.ID]) {
				text := u.DisplayName
				if q.SortBy == tokens.AttrUserName {
					text = u.UserName
				}
				rows = append(rows, key(text, u.CreatedAt, u.UpdatedAt, u.ID))
			}
		}
	} else {
		for i := range d.groups {
			g := &d.groups[i]
			if tokens.GroupMatches(q.Where, g) {
				rows = append(rows, key(g.DisplayName, g.CreatedAt, g.UpdatedAt, g.ID))
			}
		}
	}
	slices.SortFunc(rows, func(a, b row) int {
		c := strings.Compare(a.text, b.text)
		if c == 0 {
			c = a.at.Compare(b.at)
		}
		if c == 0 {
			c = strings.Compare(a.id, b.id)
		}
		if q.Descending {
			c = -c
		}
		return c
	})
	var ids []string
	for i := q.Offset; i < min(len(rows), q.Offset+q.Limit); i++ {
		ids = append(ids, rows[i].id)
	}
	return ids, len(rows)
}

func describe(c tokens.Cond) string {
	switch c := c.(type) {
	case tokens.And:
		return "(" + describe(c[0]) + " and " + describe(c[1]) + ")"
	case tokens.Or:
		return "(" + describe(c[0]) + " or " + describe(c[1]) + ")"
	case tokens.Not:
		return "not " + describe(c.Cond)
	case tokens.Compare:
		if t, ok := c.Value.(time.Time); ok {
			return fmt.Sprintf("%s %s %s", c.Attr, c.Op, t.Format(time.RFC3339Nano))
		}
		return c.String()
	}
	return "<nil>"
}

// TestQueryICUCollation runs the reference check on a PostgreSQL database
// whose collation is not byte order (ICU en-US sorts "b" before "B" before
// "c", and ignores punctuation at first): ranges and sorting must not
// depend on it.
func TestQueryICUCollation(t *testing.T) {
	base := sqltest.PostgresDSN(t) // skips without PostgreSQL
	ctx := context.Background()
	admin, err := sqlstore.Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	name := "scimgate_icu_" + strings.ToLower(tokens.NewID("t")[2:12])
	_, err = admin.DB().ExecContext(ctx, `CREATE DATABASE `+name+` LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' TEMPLATE template0`)
	if err != nil {
		admin.Close()
		t.Skipf("cannot create a database with an ICU collation here: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.DB().ExecContext(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	s, err := sqlstore.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var order string
	if err := s.DB().GetContext(ctx, &order, `SELECT string_agg(x, '' ORDER BY x) FROM (VALUES ('B'), ('b'), ('c'), ('_a')) AS v (x)`); err != nil {
		t.Fatal(err)
	}
	if order == "Bb_ac" || order == "B_abc" {
		t.Fatalf("the database sorts in byte order (%q): this test needs one that does not", order)
	}
	f := newFixture(t, s)
	checkQueries(t, f, newQueryData(t, s, f), 400)
}

// TestMigrateFillsDerivedColumns checks that rows without the columns
// migration 8 added (rows older than it, or written by an older scimgate)
// get them at the next Migrate, so that queries find them.
func TestMigrateFillsDerivedColumns(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := sqltest.Open(t, dialect)
			f := newFixture(t, s)
			d := newQueryData(t, s, f)
			ctx := context.Background()
			for _, q := range []string{
				`UPDATE users SET display_name_lower = NULL, emails_lower = NULL`,
				`UPDATE user_emails SET org_id = NULL`,
			} {
				if _, err := s.DB().ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			// Nothing is found by the lower-cased columns now.
			i := slices.IndexFunc(d.users, func(u tokens.User) bool { return len(u.Emails) > 0 })
			users, _, err := f.svc.QueryUsers(ctx, d.org.ID, tokens.Query{Limit: 10,
				Where: tokens.Compare{Attr: tokens.AttrEmail, Op: tokens.OpEq, Value: d.users[i].Emails[0].Value}})
			if err != nil || len(users) != 0 {
				t.Fatalf("before filling: %v, %v; want nothing found", users, err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			checkQueries(t, f, d, 200)
		})
	}
}

// TestQueryCountsOnlyWhenNeeded checks, from the statements the store
// runs, that a query reads one page and counts at most once, and only when
// the page cannot tell the total.
func TestQueryCountsOnlyWhenNeeded(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dsn := sqltest.SQLitePath(t)
			if dialect == sqlstore.Postgres {
				dsn = sqltest.PostgresDSN(t)
			}
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			ctx := context.Background()
			s, err := sqlstore.Open(ctx, dsn, sqlstore.WithTracerProvider(tp))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, s) // alice
			var bulk sqlstore.Bulk
			for i := range 24 {
				bulk.Users = append(bulk.Users, tokens.User{ID: fmt.Sprintf("usr_c%02d", i), OrgID: f.org.ID,
					UserName: fmt.Sprintf("c%02d", i), Active: true, CreatedAt: t0, UpdatedAt: t0, Version: 1})
			}
			if err := s.BulkLoad(ctx, bulk); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				q               tokens.Query
				total           int
				counts, queries int
			}{
				// Without a filter, the total is the org's count of its users.
				{tokens.Query{Limit: 10, WithTotal: true}, 25, 0, 2},             // a full page
				{tokens.Query{Limit: 100, WithTotal: true}, 25, 0, 1},            // the page is all
				{tokens.Query{Offset: 20, Limit: 10, WithTotal: true}, 25, 0, 1}, // the last page
				{tokens.Query{Offset: 40, Limit: 10, WithTotal: true}, 25, 0, 2}, // past the end
				{tokens.Query{Limit: 0, WithTotal: true}, 25, 0, 1},              // count=0
				{tokens.Query{Offset: 10, Limit: 10}, -1, 0, 1},                  // no total wanted
				{tokens.Query{Limit: 11, WithTotal: true, Where: tokens.Compare{Attr: tokens.AttrUserName, Op: tokens.OpSw, Value: "c1"}}, 10, 0, 1},
				{tokens.Query{Limit: 10, WithTotal: true, Where: tokens.Compare{Attr: tokens.AttrUserName, Op: tokens.OpSw, Value: "c1"}}, 10, 1, 2},
				{tokens.Query{Limit: 0, WithTotal: true, Where: tokens.Compare{Attr: tokens.AttrUserName, Op: tokens.OpSw, Value: "c"}}, 24, 1, 1},
			}
			tracer := tp.Tracer("test")
			for _, tt := range tests {
				spans.Reset()
				qctx, span := tracer.Start(ctx, "query")
				_, total, err := f.svc.QueryUsers(qctx, f.org.ID, tt.q)
				span.End()
				if err != nil {
					t.Fatal(err)
				}
				counts, queries := 0, 0
				for _, sp := range spans.Ended() {
					for _, a := range sp.Attributes() {
						text := a.Value.AsString()
						// The page's sites are read as for any read of users;
						// a count on PostgreSQL sets how it is planned first.
						if a.Key != "db.query.text" || strings.HasPrefix(text, "BEGIN") || strings.HasPrefix(text, "COMMIT") ||
							strings.HasPrefix(text, "SET LOCAL") ||
							strings.Contains(text, "site_members") {
							continue
						}
						queries++
						if strings.Contains(text, "count(*)") {
							counts++
						}
					}
				}
				if total != tt.total || counts != tt.counts || queries != tt.queries {
					t.Errorf("%+v: total %d after %d queries (%d counts), want %d after %d (%d counts)",
						tt.q, total, queries, counts, tt.total, tt.queries, tt.counts)
				}
			}
		})
	}
}

// TestUpdateGroupWritesDifference checks that changing one member of a
// large group writes one row each way, not the whole membership again.
func TestUpdateGroupWritesDifference(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dsn := sqltest.SQLitePath(t)
			if dialect == sqlstore.Postgres {
				dsn = sqltest.PostgresDSN(t)
			}
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			ctx := context.Background()
			s, err := sqlstore.Open(ctx, dsn, sqlstore.WithTracerProvider(tp))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, s)
			var bulk sqlstore.Bulk
			g := tokens.Group{ID: "grp_big", OrgID: f.org.ID, DisplayName: "Big", CreatedAt: t0, UpdatedAt: t0, Version: 1}
			for i := range 1200 {
				bulk.Users = append(bulk.Users, tokens.User{ID: fmt.Sprintf("usr_g%04d", i), OrgID: f.org.ID,
					UserName: fmt.Sprintf("g%04d", i), Active: true, CreatedAt: t0, UpdatedAt: t0, Version: 1})
				g.MemberIDs = append(g.MemberIDs, bulk.Users[i].ID)
			}
			bulk.Groups = []tokens.Group{g}
			if err := s.BulkLoad(ctx, bulk); err != nil {
				t.Fatal(err)
			}
			g.MemberIDs = append(slices.Clone(g.MemberIDs[1:]), f.user.ID) // one leaves, one joins
			spans.Reset()
			tctx, span := tp.Tracer("test").Start(ctx, "replace")
			if err := f.svc.ReplaceGroup(tctx, tokens.Operator, &g, 0); err != nil {
				t.Fatal(err)
			}
			span.End()
			for _, sp := range spans.Ended() {
				for _, a := range sp.Attributes() {
					text := a.Value.AsString()
					if a.Key != "db.query.text" || !strings.Contains(text, "group_members") {
						continue
					}
					switch {
					case strings.HasPrefix(text, "DELETE") && !strings.Contains(text, "user_id IN"):
						t.Errorf("every member deleted: %s", text)
					case strings.HasPrefix(text, "INSERT") && strings.Count(text, "), (") > 0:
						t.Errorf("more than the one new member written: %.120s…", text)
					}
				}
			}
			got, err := f.svc.Group(ctx, f.org.ID, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := slices.Sorted(slices.Values(g.MemberIDs)); !slices.Equal(got.MemberIDs, want) {
				t.Errorf("members after the change: %d, want %d", len(got.MemberIDs), len(want))
			}
		})
	}
}

// TestLiveUsersCounter checks that orgs.live_users, which the total of an
// unfiltered list is read from, follows every way users are written.
func TestLiveUsersCounter(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := sqltest.Open(t, dialect)
			f := newFixture(t, s)
			d := newQueryData(t, s, f) // bulk-loaded, replaced, one removed, another org
			ctx := context.Background()
			check := func(when string) {
				t.Helper()
				var rows []struct {
					ID      string `db:"id"`
					Live    int    `db:"live_users"`
					Counted int    `db:"counted"`
				}
				err := s.DB().SelectContext(ctx, &rows, `SELECT id, live_users,
					(SELECT count(*) FROM users WHERE users.org_id = orgs.id AND NOT users.removed) AS counted FROM orgs`)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					if r.Live != r.Counted {
						t.Errorf("%s: org %s has live_users %d, but %d users", when, r.ID, r.Live, r.Counted)
					}
				}
				_, total, err := f.svc.QueryUsers(ctx, d.org.ID, tokens.Query{WithTotal: true})
				if err != nil || total != len(d.users) {
					t.Errorf("%s: total %d, %v; want %d", when, total, err, len(d.users))
				}
			}
			check("after loading")
			u := &tokens.User{OrgID: d.org.ID, UserName: "counted", Active: true}
			if err := f.svc.CreateUser(ctx, tokens.Operator, u); err != nil {
				t.Fatal(err)
			}
			d.users = append(d.users, *u)
			check("after a user was created")
			if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, d.org.ID, u.ID); err != nil {
				t.Fatal(err)
			}
			check("after a user was deactivated")
			if _, err := f.svc.RemoveUser(ctx, tokens.Operator, d.org.ID, u.ID); err != nil {
				t.Fatal(err)
			}
			d.users = d.users[:len(d.users)-1]
			check("after a user was removed")
			if _, err := s.DB().ExecContext(ctx, s.DB().Rebind(`UPDATE users SET removed = NOT removed WHERE org_id = ?`), d.other.ID); err != nil {
				t.Fatal(err)
			}
			check("after every user of another org changed state in one statement")
		})
	}
}
