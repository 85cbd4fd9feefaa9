package tokens_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// BenchmarkListUserTokens is one page of an org's user tokens as an admin
// with platform.tokens asks for it (what GET /api/v1/user-tokens and the
// console do): the caller's authority read again, then one keyset page with
// the owners joined by ID. Sizes are the org's user tokens, ten per person;
// SCIMGATE_BENCH_TOKENS overrides them (comma-separated):
//
//	go test ./tokens -run '^$' -bench ListUserTokens -benchtime 20x
//	SCIMGATE_BENCH_TOKENS=100000 go test ./tokens -run '^$' -bench ListUserTokens -benchtime 20x
func BenchmarkListUserTokens(b *testing.B) {
	sizes := []int{1000, 10000}
	if env := os.Getenv("SCIMGATE_BENCH_TOKENS"); env != "" {
		sizes = nil
		for _, s := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 10 {
				b.Fatalf("SCIMGATE_BENCH_TOKENS=%q: want sizes of at least 10, comma-separated", env)
			}
			sizes = append(sizes, n)
		}
	}
	for _, dialect := range sqltest.Dialects(b) {
		for _, n := range sizes {
			f := fillOrg(b, dialect, n)
			ctx := context.Background()
			for _, bc := range []struct {
				name string
				q    tokens.TokenQuery
			}{
				{"first-page-of-1000", tokens.TokenQuery{Limit: 1000}},
				{"last-page-of-1000", tokens.TokenQuery{Limit: 1000, Cursor: f.lastPageCursor}},
				{"active-page-of-1000", tokens.TokenQuery{Limit: 1000, Status: tokens.StatusActive}},
				{"one-owner", tokens.TokenQuery{OwnerName: "person00042"}},
				{"name-prefix", tokens.TokenQuery{Limit: 1000, NamePrefix: "token 7"}},
			} {
				b.Run(fmt.Sprintf("%s/%d-tokens/%s", dialect, n, bc.name), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						page, err := f.admin.UserTokens(ctx, bc.q)
						if err != nil {
							b.Fatal(err)
						}
						if len(page.Tokens) == 0 {
							b.Fatal("an empty page")
						}
					}
				})
			}
		}
	}
}

type filledOrg struct {
	admin          *tokens.Manager
	lastPageCursor string
}

// fillOrg makes an org of n user tokens, ten per person, with the store's
// bulk loader, and an admin of it.
func fillOrg(b *testing.B, dialect string, n int) *filledOrg {
	b.Helper()
	ctx := context.Background()
	store := sqltest.Open(b, dialect)
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{GroupSets: map[string][]string{"admins": {tokens.PermTokens}}})
	if err != nil {
		b.Fatal(err)
	}
	svc := tokens.NewService(store, policy)
	org, err := svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var bulk sqlstore.Bulk
	for i := range n / 10 {
		u := tokens.User{ID: tokens.NewID("usr"), OrgID: org.ID, UserName: fmt.Sprintf("person%05d", i), Active: true,
			CreatedAt: start, UpdatedAt: start, Version: 1}
		bulk.Users = append(bulk.Users, u)
		for j := range 10 {
			sec := tokens.NewSecret(tokens.KindUser)
			at := start.Add(time.Duration(i*10+j) * time.Millisecond)
			bulk.Tokens = append(bulk.Tokens, tokens.Token{ID: tokens.NewID("tok"), OrgID: org.ID, Kind: tokens.KindUser,
				OwnerID: u.ID, Name: fmt.Sprintf("token %d", j), DisplayPrefix: sec.DisplayPrefix(), Hash: sec.Hash(),
				InactivityDays: 45, Status: tokens.StatusActive, StatusChangedAt: at, CreatedAt: at})
		}
	}
	if err := store.BulkLoad(ctx, bulk); err != nil {
		b.Fatal(err)
	}
	admin := &tokens.User{OrgID: org.ID, UserName: "admin", Active: true}
	if err := svc.CreateUser(ctx, tokens.Operator, admin); err != nil {
		b.Fatal(err)
	}
	if err := svc.CreateGroup(ctx, tokens.Operator, &tokens.Group{OrgID: org.ID, DisplayName: "admins", MemberIDs: []string{admin.ID}}); err != nil {
		b.Fatal(err)
	}
	f := &filledOrg{admin: svc.As(tokens.Caller{OrgID: org.ID, Kind: tokens.KindUser, OwnerID: admin.ID, Via: "benchmark"})}
	// The cursor of the last full page: n-1000 tokens in.
	q := tokens.TokenQuery{Limit: tokens.MaxPageSize}
	for skipped := 0; skipped+tokens.MaxPageSize < n; skipped += tokens.MaxPageSize {
		page, err := f.admin.UserTokens(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		q.Cursor = page.Next
	}
	f.lastPageCursor = q.Cursor
	return f
}
