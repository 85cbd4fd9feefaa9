package tokens_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// FuzzTokenPage lists an org's tokens with any cursor, status, name prefix
// and limit. Whatever the input: the answer is a page or an Invalid error
// (never another error, never a panic); a page holds only the org's tokens
// of the kind asked, in order of creation, matching the filters, at most
// limit of them; and when the cursor is one a page issued, the next page
// starts right after where that page ended.
//
//	go test ./tokens -run '^$' -fuzz FuzzTokenPage -fuzztime 30s
func FuzzTokenPage(f *testing.F) {
	ctx := context.Background()
	store := sqltest.Open(f, "sqlite")
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	svc := tokens.NewService(store, policy)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	svc.Now = func() time.Time { return now }
	org, err := svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := svc.CreateOrg(ctx, tokens.Operator, "other", 0)
	for _, o := range []*tokens.Org{org, other} {
		for _, name := range []string{"alice", "bob"} {
			u := &tokens.User{OrgID: o.ID, UserName: name, Active: true}
			if err := svc.CreateUser(ctx, tokens.Operator, u); err != nil {
				f.Fatal(err)
			}
			for _, tn := range []string{"laptop", "ci", "Laptop 2"} {
				now = now.Add(time.Second)
				if _, _, err := svc.CreateUserToken(ctx, tokens.Operator, o.ID, u.ID, tn); err != nil {
					f.Fatal(err)
				}
			}
		}
	}
	all, err := svc.ListTokens(ctx, org.ID, tokens.KindUser, tokens.TokenQuery{Limit: tokens.MaxPageSize})
	if err != nil || len(all.Tokens) != 6 {
		f.Fatalf("setup: %+v, %v", all, err)
	}
	second, _ := svc.ListTokens(ctx, org.ID, tokens.KindUser, tokens.TokenQuery{Limit: 2})
	f.Add("", "", "", 0)
	f.Add(second.Next, "active", "lap", 2)
	f.Add("dDo", "expired", "Lap", 1)
	f.Add("dDoxOnRva18", "revoked", "", 1000)
	f.Fuzz(func(t *testing.T, cursor, status, prefix string, limit int) {
		q := tokens.TokenQuery{Cursor: cursor, Status: tokens.Status(status), NamePrefix: prefix, Limit: limit}
		page, err := svc.ListTokens(ctx, org.ID, tokens.KindUser, q)
		if err != nil {
			if code := tokens.ErrorCode(err); code != tokens.Invalid {
				t.Fatalf("ListTokens(%+v): %v (code %s), want a page or an Invalid error", q, err, code)
			}
			return
		}
		want := limit
		if want == 0 {
			want = tokens.DefaultPageSize
		}
		if len(page.Tokens) > want {
			t.Fatalf("%d tokens, more than the limit %d", len(page.Tokens), want)
		}
		if !sort.SliceIsSorted(page.Tokens, func(i, j int) bool { return before(&page.Tokens[i], &page.Tokens[j]) }) {
			t.Fatalf("page out of order: %+v", page.Tokens)
		}
		for _, tok := range page.Tokens {
			if tok.OrgID != org.ID || tok.Kind != tokens.KindUser || !strings.HasPrefix(tok.Name, prefix) ||
				(status != "" && string(tok.Status) != status) {
				t.Fatalf("token %+v does not match %+v", tok, q)
			}
		}
		if page.Next != "" {
			next, err := svc.ListTokens(ctx, org.ID, tokens.KindUser, tokens.TokenQuery{Cursor: page.Next, Status: q.Status, NamePrefix: prefix, Limit: limit})
			if err != nil {
				t.Fatalf("the next page of a cursor a page issued: %v", err)
			}
			if len(next.Tokens) > 0 && !before(&page.Tokens[len(page.Tokens)-1], &next.Tokens[0]) {
				t.Fatalf("the next page does not start after this one")
			}
		}
	})
}

func before(a, b *tokens.TokenInfo) bool {
	return a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID < b.ID
}
