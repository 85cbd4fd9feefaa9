package scim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// BenchmarkList times list requests through the handler on an org of
// SCIMGATE_BENCH_USERS people (default 10,000; bulk-loaded), in 20 groups
// of which each person is in two, on SQLite (and PostgreSQL with
// SCIMGATE_TEST_POSTGRES_DSN). For the same requests against the real
// binary at 25k, 50k and 100k users, see scim/loadtest/run.sh.
//
//	go test ./scim -run '^$' -bench List -benchmem
func BenchmarkList(b *testing.B) {
	n := 10000
	if s := os.Getenv("SCIMGATE_BENCH_USERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for _, dialect := range sqltest.Dialects(b) {
		lf := newListFixture(b, dialect, Options{})
		f := lf.fixture
		loadOrg(b, f, lf.store.Store.(*sqlstore.Store), n)
		requests := []struct{ name, path string }{
			{"page1", "/Users?count=100"},
			{"deepest", fmt.Sprintf("/Users?count=100&startIndex=%d", n-99)},
			{"userNameSw", "/Users?count=100&filter=" + url.QueryEscape(`userName sw "u1"`)},
			{"emailsCo", "/Users?count=100&filter=" + url.QueryEscape(`emails.value co "@example"`)},
			{"externalIdEq", "/Users?filter=" + url.QueryEscape(`externalId eq "ext-4242"`)},
			{"groupsNoMembers", "/Groups?excludedAttributes=members"},
			{"groupsMembers", "/Groups"},
		}
		for _, r := range requests {
			b.Run(dialect+"/"+r.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest("GET", Prefix+r.path, nil)
					req.Header.Set("Authorization", "Bearer "+f.token)
					f.handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%s: %d %s", r.path, rec.Code, rec.Body)
					}
					io.Copy(io.Discard, rec.Body)
				}
			})
		}
	}
}

// loadOrg bulk-loads n users (user name u<i>, address u<i>@example.com,
// external id ext-<i>) and 20 groups into the fixture's org.
func loadOrg(b *testing.B, f *fixture, store *sqlstore.Store, n int) {
	b.Helper()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var bulk sqlstore.Bulk
	for i := range n {
		bulk.Users = append(bulk.Users, tokens.User{ID: fmt.Sprintf("usr_b%07d", i), OrgID: f.org.ID,
			UserName: fmt.Sprintf("u%d", i), ExternalID: fmt.Sprintf("ext-%d", i), DisplayName: fmt.Sprintf("User %d", i),
			GivenName: "User", FamilyName: strconv.Itoa(i), Active: true,
			Emails:    []tokens.Email{{Value: fmt.Sprintf("u%d@example.com", i), Type: "work", Primary: true}},
			CreatedAt: at.Add(time.Duration(i) * time.Second), UpdatedAt: at.Add(time.Duration(i) * time.Second), Version: 1})
	}
	for g := range 20 {
		group := tokens.Group{ID: fmt.Sprintf("grp_b%02d", g), OrgID: f.org.ID, DisplayName: fmt.Sprintf("Group %d", g),
			CreatedAt: at, UpdatedAt: at, Version: 1}
		for i := range n {
			if i%20 == g || (i+7)%20 == g {
				group.MemberIDs = append(group.MemberIDs, bulk.Users[i].ID)
			}
		}
		bulk.Groups = append(bulk.Groups, group)
	}
	if err := store.BulkLoad(context.Background(), bulk); err != nil {
		b.Fatal(err)
	}
	if err := store.Analyze(context.Background()); err != nil {
		b.Fatal(err)
	}
}
