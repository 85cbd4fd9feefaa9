package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

func fill(t *testing.T, args ...string) summary {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"scimgate-fill", "--json"}, args...), func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("scimgate-fill %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var sum summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary %q: %v", stdout.String(), err)
	}
	return sum
}

func TestFill(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dsn := sqltest.SQLitePath(t)
			if dialect == sqlstore.Postgres {
				dsn = sqltest.PostgresDSN(t)
			}
			samplePath := filepath.Join(t.TempDir(), "tokens.txt")
			// 30 users, of whom about 29 active: 400 tokens exceed 10 each.
			sum := fill(t, "--database", dsn, "--org", "bench", "--users", "30", "--tokens", "400", "--groups", "4",
				"--groups-per-user", "2", "--everyone-group", "--sample", "25", "--sample-file", samplePath)
			if sum.Users != 30 || sum.Groups != 5 || sum.Memberships != 30*2+30 || sum.Tokens != 400 || sum.Dialect != dialect {
				t.Errorf("summary = %+v", sum)
			}
			if want := min(400, 10*sum.ActiveUsers); sum.ActiveTokens != want {
				t.Errorf("active tokens = %d, want %d (10 for each of %d active users)", sum.ActiveTokens, want, sum.ActiveUsers)
			}

			ctx := context.Background()
			store, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
			svc := tokens.NewService(store, policy)
			users, total, err := svc.Users(ctx, sum.OrgID, tokens.UserFilter{})
			if err != nil || total != 30 {
				t.Fatalf("users = %d, %v; want 30", total, err)
			}
			for _, u := range users {
				if len(u.Emails) == 0 || !strings.HasSuffix(u.UserName, "@example.com") || u.ExternalID == "" || u.Version < 1 {
					t.Errorf("user %+v lacks what SCIM benchmarks filter on", u)
				}
			}
			// Every sampled plaintext is a real, active token of the org.
			sample, err := os.ReadFile(samplePath)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Fields(string(sample))
			if len(lines) != 25 {
				t.Fatalf("sample has %d tokens, want 25", len(lines))
			}
			for _, line := range lines {
				sec, err := tokens.Parse(line)
				if err != nil {
					t.Fatalf("sampled %q: %v", line[:8], err)
				}
				c, err := store.LookupCredential(ctx, sec.Hash())
				if err != nil || c.Token.Status != tokens.StatusActive || c.Token.OrgID != sum.OrgID || !c.OwnerActive {
					t.Fatalf("sampled token %s: %+v, %v; want an active token of an active user", sec, c, err)
				}
			}
			// The SCIM token can provision.
			sec, err := tokens.Parse(sum.SCIMToken)
			if err != nil {
				t.Fatal(err)
			}
			c, err := store.LookupCredential(ctx, sec.Hash())
			if err != nil || strings.Join(c.PermissionSets, ",") != tokens.PermGroups+","+tokens.PermUsers {
				t.Errorf("SCIM token credential = %+v, %v", c, err)
			}

			// A second fill adds to the org.
			again := fill(t, "--database", dsn, "--org", "bench", "--users", "5", "--groups", "1")
			if again.OrgID != sum.OrgID || again.Users != 5 {
				t.Errorf("second fill = %+v", again)
			}
			if _, total, _ := svc.Users(ctx, sum.OrgID, tokens.UserFilter{}); total != 35 {
				t.Errorf("after a second fill: %d users, want 35", total)
			}
		})
	}
}

func TestFillUsage(t *testing.T) {
	tests := [][]string{
		{},
		{"--database", "x.db", "--users", "0", "--tokens", "5"},
		{"--database", "x.db", "--tokens", "5", "--sample", "2"},
		{"--database", "x.db", "--tokens", "5", "--sample", "6", "--sample-file", "s"},
		{"--database", "x.db", "--service-tokens", "20"},
		{"--database", "x.db", "extra"},
		{"--database", "x.db", "--users", "-1"},
	}
	for _, args := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"scimgate-fill"}, args...), func(string) string { return "" }, &stdout, &stderr)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("scimgate-fill %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
