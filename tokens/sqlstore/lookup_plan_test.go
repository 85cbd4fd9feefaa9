package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// TestLookupPlanUsesIndexesOnly: the authenticator's lookup reads a token,
// its owner and the owner's groups by index, however many groups the
// database holds. PostgreSQL without statistics (a fresh database, before
// autovacuum) hashed the whole groups table for every lookup.
func TestLookupPlanUsesIndexesOnly(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			s := sqltest.Open(t, dialect)
			db := s.DB()
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
					t.Fatalf("%s: %v", q[:min(len(q), 60)], err)
				}
			}
			exec(`INSERT INTO orgs (id, name, user_token_inactivity_days, created_at) VALUES ('o1', 'acme', 45, 0)`)
			// series(n) is the numbers 1 to n as the table "series (i)".
			series := func(n int) string {
				if dialect == sqlstore.Postgres {
					return fmt.Sprintf("generate_series(1, %d) AS series (i)", n)
				}
				return fmt.Sprintf("(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d) SELECT i FROM s) AS series", n)
			}
			// 10,000 people in 3 of 3,000 groups each: the tables a lookup
			// must not read whole.
			exec(`INSERT INTO users (id, org_id, user_name, user_name_lower, active, removed, created_at, updated_at, version)
				SELECT 'u' || i, 'o1', 'user' || i, 'user' || i, true, false, 0, 0, 1 FROM ` + series(10000))
			exec(`INSERT INTO groups (id, org_id, display_name, display_name_lower, created_at, updated_at, version)
				SELECT 'g' || i, 'o1', 'group ' || i, 'group ' || i, 0, 0, 1 FROM ` + series(3000))
			for _, step := range []int{1, 7, 13} {
				exec(fmt.Sprintf(`INSERT INTO group_members (group_id, user_id)
					SELECT 'g' || (1 + (i * %d) %% 3000), 'u' || i FROM `+series(10000)+` WHERE true ON CONFLICT DO NOTHING`, step))
			}
			h := sha256.Sum256([]byte("token"))
			exec(`INSERT INTO tokens (id, org_id, kind, owner_id, name, display_prefix, hash, inactivity_days, status, status_changed_at, created_at)
				VALUES ('t1', 'o1', 'user', 'u5', 'laptop', 'sgu_abcd', ?, 45, 'active', 0, 0)`, h[:])

			explain := "EXPLAIN "
			if dialect == sqlstore.SQLite {
				explain = "EXPLAIN QUERY PLAN "
			}
			rows, err := db.QueryxContext(ctx, explain+s.LookupQuery(), h[:])
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				cols, err := rows.SliceScan()
				if err != nil {
					t.Fatal(err)
				}
				plan = append(plan, fmt.Sprint(cols[len(cols)-1]))
			}
			text := strings.Join(plan, "\n")
			for _, scan := range []string{"Seq Scan on groups", "SCAN g ", "SCAN groups", "Seq Scan on group_members", "SCAN m "} {
				if strings.Contains(text+" ", scan) {
					t.Errorf("the lookup's plan reads a whole table (%q):\n%s", scan, text)
				}
			}
			got, err := s.LookupCredential(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"group 36", "group 6", "group 66"}; fmt.Sprint(got.Groups) != fmt.Sprint(want) {
				t.Errorf("Groups = %q, want %q", got.Groups, want)
			}
		})
	}
}
