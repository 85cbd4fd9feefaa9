package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// BenchmarkAPIListUserTokens is GET /api/v1/user-tokens?limit=1000 over a
// real HTTP connection, for an admin person, in an org of 10,000 user tokens
// (ten per person): authentication (cached), the caller's authority, one
// keyset page with the owners, and the JSON of 1,000 tokens.
//
//	go test ./admin -run '^$' -bench APIListUserTokens -benchtime 20x
func BenchmarkAPIListUserTokens(b *testing.B) {
	for _, dialect := range sqltest.Dialects(b) {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			store := sqltest.Open(b, dialect)
			policy, _ := tokens.NewPolicy(tokens.PolicyConfig{GroupSets: map[string][]string{"admins": {tokens.PermTokens}}})
			svc := tokens.NewService(store, policy)
			auth := tokens.NewAuthenticator(store, policy, tokens.AuthOptions{})
			svc.OnCommit = auth.Apply
			org, err := svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
			var bulk sqlstore.Bulk
			for i := range 1000 {
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
			_, secret, err := svc.CreateUserToken(ctx, tokens.Operator, org.ID, admin.ID, "bench")
			if err != nil {
				b.Fatal(err)
			}
			h, err := New(svc, auth, Options{})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/user-tokens?limit=1000", nil)
			req.Header.Set("Authorization", "Bearer "+secret.Plaintext())
			b.ReportAllocs()
			for b.Loop() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n < 1000*300 {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}
