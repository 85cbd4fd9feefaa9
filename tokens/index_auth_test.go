package tokens_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// countingStore counts a real store's lookups and change-log reads, and the
// most lookups it ever had in flight at once.
type countingStore struct {
	*sqlstore.Store
	lookups, reads      atomic.Int64
	inFlight, maxFlight atomic.Int64
	block               chan struct{} // if set, lookups wait for it to close
}

func (c *countingStore) LookupCredential(ctx context.Context, h tokens.Hash) (*tokens.StoredCredential, error) {
	c.lookups.Add(1)
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for {
		m := c.maxFlight.Load()
		if n <= m || c.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if c.block != nil {
		<-c.block
	}
	return c.Store.LookupCredential(ctx, h)
}

func (c *countingStore) ChangesSince(ctx context.Context, seq int64, limit int) ([]tokens.Change, error) {
	c.reads.Add(1)
	return c.Store.ChangesSince(ctx, seq, limit)
}

// indexedReplica is one process: its own store connection, service and
// authenticator, with the index loaded and the follower current. Replicas
// on one database are linked by the change log alone.
type indexedReplica struct {
	store *countingStore
	svc   *tokens.Service
	auth  *tokens.Authenticator
}

func newIndexedReplica(t *testing.T, dsn string, opts tokens.AuthOptions) *indexedReplica {
	t.Helper()
	r := &indexedReplica{store: &countingStore{Store: openAt(t, dsn)}}
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = tokens.NewService(r.store, policy)
	r.auth = tokens.NewAuthenticator(r.store, policy, opts)
	r.svc.OnCommit = r.auth.Apply
	return r
}

// follow loads the index and runs the follower until the test ends; with a
// poll of an hour and no LISTEN, only the reads the authenticator asks for
// bring other replicas' changes.
func (r *indexedReplica) follow(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.auth.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	go r.auth.Follow(ctx, time.Hour, nil)
	waitFor(t, func() bool { return r.auth.Synced().After(began) })
}

func dsnFor(t *testing.T, dialect string) string {
	if dialect == sqlstore.Postgres {
		return sqltest.PostgresDSN(t)
	}
	return sqltest.SQLitePath(t)
}

// TestFloodOfUnknownTokensCostsNoLookup: with the index loaded and the
// follower current, made-up tokens are refused without a store lookup, and
// the change-log reads they cause are shared and rate-limited.
func TestFloodOfUnknownTokensCostsNoLookup(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			interval := 10 * time.Millisecond
			r := newIndexedReplica(t, dsnFor(t, dialect), tokens.AuthOptions{StaleAfter: time.Minute, IndexSyncInterval: interval})
			org, err := r.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
			if err != nil {
				t.Fatal(err)
			}
			_, good, err := r.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "sync"})
			if err != nil {
				t.Fatal(err)
			}
			r.follow(t)
			if st := r.auth.Index(); !st.Loaded || st.Tokens != 1 {
				t.Fatalf("Index() = %+v, want loaded with 1 token", st)
			}
			readsBefore := r.store.reads.Load()
			start := time.Now()
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					for range 20 {
						if _, err := r.auth.Authenticate(ctx, tokens.NewSecret(tokens.KindUser).Plaintext()); err != tokens.ErrUnknownToken {
							t.Errorf("Authenticate(made-up token) = %v, want ErrUnknownToken", err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			if n := r.store.lookups.Load(); n != 0 {
				t.Errorf("1000 made-up tokens made %d store lookups, want 0", n)
			}
			// Reads begin at most once per interval (plus the one that may be
			// running at the start and the last).
			reads := r.store.reads.Load() - readsBefore
			if limit := int64(elapsed/interval) + 2; reads > limit {
				t.Errorf("1000 made-up tokens in %v made %d change-log reads, want at most %d (one per %v)", elapsed, reads, limit, interval)
			}
			t.Logf("%s: 1000 made-up tokens from 50 clients in %v: %d change-log reads, 0 lookups", dialect, elapsed.Round(time.Millisecond), reads)
			// The good token still works, with one lookup.
			if _, err := r.auth.Authenticate(ctx, good.Plaintext()); err != nil {
				t.Fatalf("Authenticate(good token) = %v", err)
			}
			if n := r.store.lookups.Load(); n != 1 {
				t.Errorf("the good token made %d lookups, want 1", n)
			}
		})
	}
}

// TestTokenMadeOnAnotherReplicaWorksAtOnce: a token created, or regenerated,
// on replica A is accepted by replica B on its very first use, before B's
// follower would have read it (B polls hourly and has no LISTEN); and B
// refuses a token A deleted without asking the store.
func TestTokenMadeOnAnotherReplicaWorksAtOnce(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			dsn := dsnFor(t, dialect)
			a := newIndexedReplica(t, dsn, tokens.AuthOptions{})
			b := newIndexedReplica(t, dsn, tokens.AuthOptions{StaleAfter: time.Minute})
			org, err := a.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
			if err != nil {
				t.Fatal(err)
			}
			user := &tokens.User{OrgID: org.ID, UserName: "alice", Active: true}
			if err := a.svc.CreateUser(ctx, tokens.Operator, user); err != nil {
				t.Fatal(err)
			}
			b.follow(t)

			_, userSecret, err := a.svc.CreateUserToken(ctx, tokens.Operator, org.ID, user.ID, "laptop")
			if err != nil {
				t.Fatal(err)
			}
			if id, err := b.auth.Authenticate(ctx, userSecret.Plaintext()); err != nil || id.OwnerName != "alice" {
				t.Fatalf("B: user token made on A just now: %v, %v; want alice's identity", id, err)
			}
			st, svcSecret, err := a.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "sync"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.auth.Authenticate(ctx, svcSecret.Plaintext()); err != nil {
				t.Fatalf("B: service token made on A just now: %v", err)
			}
			if err := a.svc.RevokeServiceToken(ctx, tokens.Operator, org.ID, st.ID); err != nil {
				t.Fatal(err)
			}
			_, fresh, err := a.svc.RegenerateServiceToken(ctx, tokens.Operator, org.ID, st.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.auth.Authenticate(ctx, fresh.Plaintext()); err != nil {
				t.Fatalf("B: service token regenerated on A just now: %v", err)
			}
			lookups := b.store.lookups.Load()
			if _, err := b.auth.Authenticate(ctx, svcSecret.Plaintext()); err != tokens.ErrUnknownToken {
				t.Fatalf("B: the secret A replaced: %v, want ErrUnknownToken", err)
			}
			if n := b.store.lookups.Load() - lookups; n != 0 {
				t.Errorf("B: the replaced secret made %d store lookups, want 0 (the index dropped it)", n)
			}
		})
	}
}

// TestUnknownTokensNeverEvictGoodOnes: without an index (as at start), a
// flood of unknown tokens asks the store, but its negative answers live
// in a cache of their own, so the good tokens stay cached.
func TestUnknownTokensNeverEvictGoodOnes(t *testing.T) {
	ctx := context.Background()
	r := newIndexedReplica(t, sqltest.SQLitePath(t), tokens.AuthOptions{CacheSize: 10, NegativeCacheSize: 50, NegativeTTL: time.Minute})
	org, err := r.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	var good []string
	for i := range 5 {
		_, sec, err := r.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "s" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, sec.Plaintext())
		r.auth.Authenticate(ctx, sec.Plaintext())
	}
	unknown := make([]string, 200)
	for i := range unknown {
		unknown[i] = tokens.NewSecret(tokens.KindService).Plaintext()
		if _, err := r.auth.Authenticate(ctx, unknown[i]); err != tokens.ErrUnknownToken {
			t.Fatalf("Authenticate(unknown) = %v, want ErrUnknownToken", err)
		}
	}
	before := r.store.lookups.Load()
	for _, tok := range good {
		if _, err := r.auth.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.store.lookups.Load() - before; n != 0 {
		t.Errorf("after 200 unknown tokens, the 5 good ones made %d store lookups, want 0 (still cached)", n)
	}
	// The negative cache is bounded: the last unknown tokens are remembered,
	// the first ones were forgotten.
	before = r.store.lookups.Load()
	r.auth.Authenticate(ctx, unknown[len(unknown)-1])
	r.auth.Authenticate(ctx, unknown[0])
	if n := r.store.lookups.Load() - before; n != 1 {
		t.Errorf("the newest and the oldest unknown token made %d lookups, want 1 (the oldest)", n)
	}
}

// TestNegativeAnswerYieldsToANewToken: a hash the store did not find is
// looked up again once a token with it has been created, even by another
// process and within the negative TTL.
func TestNegativeAnswerYieldsToANewToken(t *testing.T) {
	ctx := context.Background()
	dsn := sqltest.SQLitePath(t)
	a := newIndexedReplica(t, dsn, tokens.AuthOptions{})
	b := newIndexedReplica(t, dsn, tokens.AuthOptions{NegativeTTL: time.Hour})
	org, err := a.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.auth.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	secret := tokens.NewSecret(tokens.KindService)
	if _, err := b.auth.Authenticate(ctx, secret.Plaintext()); err != tokens.ErrUnknownToken {
		t.Fatalf("before it exists: %v, want ErrUnknownToken", err)
	}
	if _, _, err := a.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "boot", Secret: &secret}); err != nil {
		t.Fatal(err)
	}
	if err := b.auth.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.auth.Authenticate(ctx, secret.Plaintext()); err != nil {
		t.Fatalf("after another process created it: %v, want the identity", err)
	}
}

// TestLookupsAreAdmittedAFewAtATime: misses beyond LookupConcurrency wait
// for a turn and, past LookupQueueTimeout, are answered as unavailable,
// while cached tokens pass untouched.
func TestLookupsAreAdmittedAFewAtATime(t *testing.T) {
	ctx := context.Background()
	r := newIndexedReplica(t, sqltest.SQLitePath(t), tokens.AuthOptions{LookupConcurrency: 2, LookupQueueTimeout: 50 * time.Millisecond})
	org, err := r.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, good, err := r.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "sync"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.auth.Authenticate(ctx, good.Plaintext()); err != nil {
		t.Fatal(err)
	}
	r.store.block = make(chan struct{})
	var busy, refused atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := r.auth.Authenticate(ctx, tokens.NewSecret(tokens.KindUser).Plaintext())
			switch {
			case errors.Is(err, tokens.ErrUnavailable):
				busy.Add(1)
			case err == tokens.ErrUnknownToken:
				refused.Add(1)
			default:
				t.Errorf("Authenticate(unknown) = %v", err)
			}
		})
	}
	waitFor(t, func() bool { return busy.Load() == 8 })
	// Two lookups hold the store; a cached token does not notice.
	if _, err := r.auth.Authenticate(ctx, good.Plaintext()); err != nil {
		t.Errorf("cached token while the lookups are stuck: %v", err)
	}
	close(r.store.block)
	wg.Wait()
	if m := r.store.maxFlight.Load(); m != 2 {
		t.Errorf("%d lookups were in flight at once, want 2", m)
	}
	if busy.Load() != 8 || refused.Load() != 2 {
		t.Errorf("%d unavailable and %d refused, want 8 and 2", busy.Load(), refused.Load())
	}
}

// TestIndexIsNotTrustedWhenTheFollowerIsBehind: once the follower has not
// caught up for StaleAfter, a token missing from the index goes to the
// store, which may know it.
func TestIndexIsNotTrustedWhenTheFollowerIsBehind(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t, "sqlite", tokens.AuthOptions{StaleAfter: time.Second})
	if err := f.auth.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.auth.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	f.auth.Authenticate(ctx, tokens.NewSecret(tokens.KindUser).Plaintext())
	if n := f.store.lookups.Load(); n != 0 {
		t.Fatalf("with a current follower: %d lookups, want 0", n)
	}
	f.now.Store(ptr(f.now.Load().Add(2 * time.Second)))
	f.auth.Authenticate(ctx, tokens.NewSecret(tokens.KindUser).Plaintext())
	if n := f.store.lookups.Load(); n != 1 {
		t.Fatalf("with the follower behind: %d lookups, want 1", n)
	}
}

// TestIndexLoadedAfterTheFollowerStarted: changes the follower skipped
// (it starts at the newest entry) still reach an index loaded later, and
// changes made while it loads too.
func TestIndexLoadedAfterTheFollowerStarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := sqltest.SQLitePath(t)
	a := newIndexedReplica(t, dsn, tokens.AuthOptions{})
	b := newIndexedReplica(t, dsn, tokens.AuthOptions{StaleAfter: time.Minute})
	org, err := a.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	go b.auth.Follow(ctx, 20*time.Millisecond, nil)
	waitFor(t, func() bool { return b.auth.Synced().After(began) })
	var secrets []string
	var ids []string
	for i := range 30 {
		st, sec, err := a.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "s" + string(rune('A'+i))})
		if err != nil {
			if tokens.ErrorCode(err) == tokens.LimitReached {
				break
			}
			t.Fatal(err)
		}
		secrets, ids = append(secrets, sec.Plaintext()), append(ids, st.ID)
		if i == 5 {
			go func() {
				if err := b.auth.LoadIndex(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	waitFor(t, func() bool { return b.auth.Index().Loaded })
	if err := a.svc.RevokeServiceToken(ctx, tokens.Operator, org.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.DeleteServiceToken(ctx, tokens.Operator, org.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return b.auth.Index().Tokens == len(secrets)-1 })
	for _, s := range secrets[1:] {
		if _, err := b.auth.Authenticate(ctx, s); err != nil {
			t.Errorf("token made while the index loaded: %v", err)
		}
	}
	if _, err := b.auth.Authenticate(ctx, secrets[0]); err != tokens.ErrUnknownToken {
		t.Errorf("deleted token: %v, want ErrUnknownToken", err)
	}
}
