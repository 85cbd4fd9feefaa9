package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// BenchmarkLookupCredential is the database side of a cache miss: the
// lookup of an existing token by hash, with its owner and groups, from 8
// goroutines at once, in databases of 1k and 1M tokens (100 tokens per 10
// people, each person in 2 of 20 groups). It reports the p50 and p99 of one
// lookup; compare the sizes of one run. SCIMGATE_BENCH_SIZES changes the
// sizes (e.g. "1000,100000"). Filling 1M tokens takes a minute or two per
// database.
//
//	go test ./tokens/sqlstore -run '^$' -bench LookupCredential -benchtime 20000x
func BenchmarkLookupCredential(b *testing.B) {
	sizes := []int{1000, 1_000_000}
	if env := os.Getenv("SCIMGATE_BENCH_SIZES"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 10 {
				b.Fatalf("SCIMGATE_BENCH_SIZES: %q is not a count of at least 10", f)
			}
			sizes = append(sizes, n)
		}
	}
	outer := b // lives until every run is done: the stores are closed with it
	for _, dialect := range sqltest.Dialects(b) {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/tokens=%d", dialect, n), func(b *testing.B) {
				s := filledStore(outer, dialect, n)
				ctx := context.Background()
				var mu sync.Mutex
				var all []time.Duration
				b.SetParallelism(4) // 8 goroutines on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.New(rand.NewPCG(rand.Uint64(), 0))
					var mine []time.Duration
					for pb.Next() {
						h := benchHash(r.IntN(n))
						start := time.Now()
						if _, err := s.LookupCredential(ctx, h); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
				})
				slices.Sort(all)
				if len(all) > 0 {
					b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
				}
			})
		}
	}
}

func benchHash(i int) tokens.Hash { return sha256.Sum256([]byte("bench token " + strconv.Itoa(i))) }

var (
	filledMu sync.Mutex
	filled   = map[string]*sqlstore.Store{}
)

// filledStore returns a store of n tokens, filled once per process (a
// benchmark function runs more than once), closed when b ends. It is a minimal fill through
// sqlstore.BulkLoad; cmd/scimgate-fill makes richer data for load tests.
func filledStore(b *testing.B, dialect string, n int) *sqlstore.Store {
	key := fmt.Sprintf("%s/%d", dialect, n)
	filledMu.Lock()
	defer filledMu.Unlock()
	if s := filled[key]; s != nil {
		return s
	}
	var dsn string
	if dialect == sqlstore.Postgres {
		dsn = sqltest.PostgresDSN(b)
	} else {
		dsn = sqltest.SQLitePath(b)
	}
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	org, err := tokens.NewService(s, policy).CreateOrg(ctx, tokens.Operator, "bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	now := time.Now().UTC()
	people := max(1, n/10)
	var bulk sqlstore.Bulk
	for i := range people {
		id := fmt.Sprintf("usr_bench%07d", i)
		bulk.Users = append(bulk.Users, tokens.User{ID: id, OrgID: org.ID, UserName: "person" + strconv.Itoa(i),
			Active: true, CreatedAt: now, UpdatedAt: now, Version: 1})
	}
	for g := range 20 {
		grp := tokens.Group{ID: fmt.Sprintf("grp_bench%02d", g), OrgID: org.ID, DisplayName: "group " + strconv.Itoa(g),
			CreatedAt: now, UpdatedAt: now, Version: 1}
		for i := g % 10; i < people; i += 10 {
			grp.MemberIDs = append(grp.MemberIDs, bulk.Users[i].ID)
		}
		bulk.Groups = append(bulk.Groups, grp)
	}
	if err := s.BulkLoad(ctx, bulk); err != nil {
		b.Fatal(err)
	}
	const batch = 100_000
	for from := 0; from < n; from += batch {
		var toks []tokens.Token
		for i := from; i < min(n, from+batch); i++ {
			toks = append(toks, tokens.Token{ID: fmt.Sprintf("tok_bench%08d", i), OrgID: org.ID, Kind: tokens.KindUser,
				OwnerID: fmt.Sprintf("usr_bench%07d", i%people), Name: "t", DisplayPrefix: "sgu_benc", Hash: benchHash(i),
				InactivityDays: 45, Status: tokens.StatusActive, StatusChangedAt: now, CreatedAt: now})
		}
		if err := s.BulkLoad(ctx, sqlstore.Bulk{Tokens: toks}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Analyze(ctx); err != nil {
		b.Fatal(err)
	}
	if dialect == sqlstore.Postgres {
		// What autovacuum does soon after a bulk load anyway: without it
		// every first read of a row sets its hint bits and dirties its page,
		// which says more about the load than about the lookup.
		if _, err := s.DB().ExecContext(ctx, "VACUUM"); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%s: %d tokens filled in %v", dialect, n, time.Since(start).Round(time.Millisecond))
	filled[key] = s
	return s
}
