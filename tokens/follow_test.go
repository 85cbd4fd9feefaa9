package tokens_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// replica is an authenticator that follows the change log over a store of
// its own, with a poll so slow that only the store's change signal (LISTEN
// on PostgreSQL, the file watch on SQLite) can bring a change in time; the
// service writes over another store, as another process would.
type replica struct {
	svc    *tokens.Service
	auth   *tokens.Authenticator
	org    *tokens.Org
	writer *sqlstore.Store
	reader *sqlstore.Store
}

func startReplica(t *testing.T, ctx context.Context, writerDSN, readerDSN string) *replica {
	t.Helper()
	open := func(dsn string) *sqlstore.Store {
		s, err := sqlstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	r := &replica{writer: open(writerDSN), reader: open(readerDSN)}
	r.svc = tokens.NewService(r.writer, policy)
	r.auth = tokens.NewAuthenticator(r.reader, policy, tokens.AuthOptions{StaleAfter: time.Hour})
	org, err := r.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	r.org = org
	wake := make(chan struct{}, 1)
	go r.reader.Listen(ctx, wake, nil)
	began := time.Now()
	go r.auth.Follow(ctx, time.Hour, wake)
	for !r.auth.Synced().After(began) {
		if time.Since(began) > 5*time.Second {
			t.Fatal("the follower did not start within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	return r
}

// revocationSeenAfter creates a service token, has the replica cache it,
// revokes it through the writer and returns how long after the commit the
// replica refused it; it fails the test after limit.
func (r *replica) revocationSeenAfter(t *testing.T, ctx context.Context, limit time.Duration) time.Duration {
	t.Helper()
	st, sec, err := r.svc.CreateServiceToken(ctx, tokens.Operator, r.org.ID, tokens.ServiceTokenSpec{Name: tokens.NewID("st")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.auth.Authenticate(ctx, sec.Plaintext()); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.RevokeServiceToken(ctx, tokens.Operator, "", st.ID); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	for {
		_, err := r.auth.Authenticate(ctx, sec.Plaintext())
		if errors.Is(err, tokens.ErrRevokedToken) {
			return time.Since(committed)
		}
		if err != nil {
			t.Fatalf("a revoked token: %v, want ErrRevokedToken", err)
		}
		if time.Since(committed) > limit {
			t.Fatalf("a revocation by another connection was not seen within %v", limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// percentiles formats the median and the largest of ds.
func percentiles(ds []time.Duration) string {
	slices.Sort(ds)
	return "p50 " + ds[len(ds)/2].Round(10*time.Microsecond).String() + ", max " + ds[len(ds)-1].Round(10*time.Microsecond).String()
}

// TestFollowerSeesSQLiteCommitsAtOnce: a commit by another connection (the
// command line, in another process) reaches a SQLite follower through the
// file watch, not its poll (an hour here).
func TestFollowerSeesSQLiteCommitsAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := sqltest.SQLitePath(t)
	r := startReplica(t, ctx, dsn, dsn)
	var seen []time.Duration
	for range 20 {
		seen = append(seen, r.revocationSeenAfter(t, ctx, 2*time.Second))
	}
	t.Logf("sqlite: revocation seen by the follower %s after the commit", percentiles(seen))
}

// TestFollowerReconnectsAtOnce terminates every connection of a PostgreSQL
// follower (its LISTEN connection and its pool) again and again: each time
// it must be back at once (a connection that was healthy is replaced without
// waiting, however many were lost before) and catch up on a new pooled
// connection, so that the next revocation arrives without the poll (an hour).
func TestFollowerReconnectsAtOnce(t *testing.T) {
	if os.Getenv(sqltest.EnvPostgresDSN) == "" {
		t.Skip(sqltest.EnvPostgresDSN + " not set: the PostgreSQL reconnection test is skipped")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := sqltest.PostgresDSN(t)
	appName := "scimgate_replica_" + strings.ToLower(tokens.NewID("t"))
	r := startReplica(t, ctx, dsn, dsn+"&application_name="+appName)
	var seen []time.Duration
	for range 8 {
		// Use the pool, so that the follower's catch-up meets a dead
		// pooled connection after the kill.
		if _, err := r.reader.LastChange(ctx); err != nil {
			t.Fatal(err)
		}
		// Wait for the LISTEN connection: it is replaced after each kill.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			var listening int
			if err := r.writer.DB().GetContext(ctx, &listening, `SELECT count(*) FROM pg_stat_activity
				WHERE application_name = $1 AND query = 'LISTEN '||$2`, appName, sqlstore.NotifyChannel); err != nil {
				t.Fatal(err)
			}
			if listening == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no LISTEN connection 5s after the last kill")
			}
		}
		var killed int
		if err := r.writer.DB().GetContext(ctx, &killed,
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, appName); err != nil {
			t.Fatal(err)
		}
		if killed < 2 {
			t.Fatalf("%d connections of the follower terminated, want its LISTEN connection and its pool", killed)
		}
		seen = append(seen, r.revocationSeenAfter(t, ctx, 2*time.Second))
	}
	t.Logf("postgres: revocation seen %s after the commit that followed a kill", percentiles(seen))
}

// flakyUsage is a real store whose RecordUsage fails, as a lost database
// would, a given number of times.
type flakyUsage struct {
	*sqlstore.Store
	failures atomic.Int32
}

func (f *flakyUsage) RecordUsage(ctx context.Context, uses []tokens.Usage) error {
	if f.failures.Add(-1) >= 0 {
		return fmt.Errorf("record usage: %w: connection refused", tokens.ErrUnavailable)
	}
	return f.Store.RecordUsage(ctx, uses)
}

// TestShutdownFlushRetries: the last flush at shutdown is tried again when
// the store fails, and uses that still cannot be written are logged as lost
// with how many tokens they were: never dropped silently.
func TestShutdownFlushRetries(t *testing.T) {
	for _, tt := range []struct {
		failures int32
		written  bool
	}{{3, true}, {1000, false}} {
		t.Run(fmt.Sprintf("failures=%d", tt.failures), func(t *testing.T) {
			t.Parallel() // giving up takes the 10s of the shutdown flush
			ctx := context.Background()
			store := &flakyUsage{Store: sqltest.Open(t, sqlstore.SQLite)}
			policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
			svc := tokens.NewService(store, policy)
			var logs bytes.Buffer
			auth := tokens.NewAuthenticator(store, policy, tokens.AuthOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			org, _ := svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
			st, sec, err := svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "ci"})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := auth.Authenticate(ctx, sec.Plaintext()); err != nil {
					t.Fatal(err)
				}
			}
			store.failures.Store(tt.failures)
			stop, cancel := context.WithCancel(ctx)
			cancel() // shutting down: only the final flush runs
			auth.RunUsageFlusher(stop, time.Hour)
			toks, err := svc.ServiceTokens(ctx, org.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := toks[0].UseCount == 3; got != tt.written {
				t.Errorf("token %s shows %d uses after shutdown, want written=%v", st.ID, toks[0].UseCount, tt.written)
			}
			if tt.written && !strings.Contains(logs.String(), `"msg":"flush last-used times at shutdown: written","attempts":4`) {
				t.Errorf("no log of the flush written after retries:\n%s", logs.String())
			}
			if !tt.written && !strings.Contains(logs.String(), `"level":"ERROR","msg":"flush last-used times at shutdown: not written, so these tokens' last uses since the previous flush are lost"`) ||
				!tt.written && !strings.Contains(logs.String(), `"tokens":1`) {
				t.Errorf("a flush given up is not logged as lost, with the token count:\n%s", logs.String())
			}
		})
	}
}
