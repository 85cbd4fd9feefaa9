package tokens_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// observedStore counts the lookups of a real store and can run a hook in the
// middle of one.
type observedStore struct {
	*sqlstore.Store
	lookups atomic.Int64
	during  func()
}

func (o *observedStore) LookupCredential(ctx context.Context, h tokens.Hash) (*tokens.StoredCredential, error) {
	o.lookups.Add(1)
	c, err := o.Store.LookupCredential(ctx, h)
	if o.during != nil {
		o.during()
	}
	return c, err
}

type authFixture struct {
	store *observedStore
	svc   *tokens.Service
	auth  *tokens.Authenticator
	org   *tokens.Org
	user  *tokens.User
	now   atomic.Pointer[time.Time]
}

func newAuthFixture(t testing.TB, dialect string, opts tokens.AuthOptions) *authFixture {
	t.Helper()
	f := &authFixture{store: &observedStore{Store: sqltest.Open(t, dialect)}}
	start := time.Now()
	f.now.Store(&start)
	clock := func() time.Time { return *f.now.Load() }
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{
		Permissions: []string{"orders.read", "orders.write"},
		Sets:        map[string][]string{"writers": {"orders.read", "orders.write"}},
		GroupSets:   map[string][]string{"desk": {"writers"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = tokens.NewService(f.store, policy)
	f.svc.Now = clock
	opts.Now = clock
	f.auth = tokens.NewAuthenticator(f.store, policy, opts)
	f.svc.OnCommit = f.auth.Apply
	ctx := context.Background()
	if f.org, err = f.svc.CreateOrg(ctx, tokens.Operator, "acme", 0); err != nil {
		t.Fatal(err)
	}
	f.user = &tokens.User{OrgID: f.org.ID, UserName: "alice", Active: true}
	if err := f.svc.CreateUser(ctx, tokens.Operator, f.user); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *authFixture) userToken(t testing.TB) (*tokens.Token, string) {
	t.Helper()
	tok, sec, err := f.svc.CreateUserToken(context.Background(), tokens.Operator, f.org.ID, f.user.ID, "t")
	if err != nil {
		t.Fatal(err)
	}
	return tok, sec.Plaintext()
}

func (f *authFixture) serviceToken(t testing.TB, sets ...string) (*tokens.ServiceToken, string) {
	t.Helper()
	st, sec, err := f.svc.CreateServiceToken(context.Background(), tokens.Operator, f.org.ID, tokens.ServiceTokenSpec{Name: "sync", PermissionSets: sets})
	if err != nil {
		t.Fatal(err)
	}
	return st, sec.Plaintext()
}

func TestCachedTokenAsksTheStoreOnce(t *testing.T) {
	f := newAuthFixture(t, "sqlite", tokens.AuthOptions{})
	_, tok := f.serviceToken(t)
	for range 100 {
		if _, err := f.auth.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.store.lookups.Load(); n != 1 {
		t.Errorf("100 requests made %d store lookups, want 1", n)
	}
}

func TestConcurrentMissesCollapse(t *testing.T) {
	f := newAuthFixture(t, "sqlite", tokens.AuthOptions{})
	_, tok := f.serviceToken(t)
	release := make(chan struct{})
	f.store.during = func() { <-release }
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := f.auth.Authenticate(context.Background(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // let all 50 reach the lookup
	close(release)
	wg.Wait()
	if n := f.store.lookups.Load(); n != 1 {
		t.Errorf("50 concurrent misses made %d store lookups, want 1", n)
	}
}

func TestUnknownTokensAreCachedBriefly(t *testing.T) {
	f := newAuthFixture(t, "sqlite", tokens.AuthOptions{NegativeTTL: time.Minute})
	unknown := tokens.NewSecret(tokens.KindService).Plaintext()
	for range 10 {
		if _, err := f.auth.Authenticate(context.Background(), unknown); err != tokens.ErrUnknownToken {
			t.Fatalf("Authenticate(unknown) = %v, want ErrUnknownToken", err)
		}
	}
	if n := f.store.lookups.Load(); n != 1 {
		t.Errorf("10 requests with one unknown token made %d lookups, want 1", n)
	}
	f.now.Store(ptr(f.now.Load().Add(2 * time.Minute)))
	f.auth.Authenticate(context.Background(), unknown)
	if n := f.store.lookups.Load(); n != 2 {
		t.Errorf("after the negative TTL: %d lookups, want 2", n)
	}
	// Garbage never reaches the cache or the store.
	for _, bad := range []string{"", "x", "sgs_" + unknown[4:len(unknown)-1] + "0"} {
		f.auth.Authenticate(context.Background(), bad)
	}
	if n := f.store.lookups.Load(); n != 2 {
		t.Errorf("malformed tokens made %d lookups, want none", n-2)
	}
}

func ptr[T any](v T) *T { return &v }

func TestChangesInThisProcessApplyBeforeTheCallReturns(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t, "sqlite", tokens.AuthOptions{})
	st, tok := f.serviceToken(t, "writers")
	id, err := f.auth.Authenticate(ctx, tok)
	if err != nil || !id.Has("orders.write") {
		t.Fatalf("Authenticate = %v, %v; want an identity with orders.write", id, err)
	}
	// Narrower permissions take effect on the next request.
	if _, err := f.svc.EditServiceToken(ctx, tokens.Operator, "", st.ID, tokens.ServiceTokenEdit{PermissionSets: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	if id, _ := f.auth.Authenticate(ctx, tok); id == nil || id.Has("orders.write") {
		t.Fatalf("after narrowing the sets: identity %+v still has orders.write", id)
	}
	// Group membership feeds a person's permissions, at once.
	ut, utok := f.userToken(t)
	_ = ut
	if id, _ := f.auth.Authenticate(ctx, utok); id.Has("orders.write") {
		t.Fatalf("a user outside every group has orders.write")
	}
	g := &tokens.Group{OrgID: f.org.ID, DisplayName: "Desk", MemberIDs: []string{f.user.ID}}
	if err := f.svc.CreateGroup(ctx, tokens.Operator, g); err != nil {
		t.Fatal(err)
	}
	if id, _ := f.auth.Authenticate(ctx, utok); !id.Has("orders.write") || len(id.Groups) != 1 {
		t.Fatalf("after joining Desk: identity %+v, want orders.write and the group", id)
	}
	// Revocation refuses the very next request.
	if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, "", st.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Authenticate(ctx, tok); err != tokens.ErrRevokedToken {
		t.Fatalf("after revoke: %v, want ErrRevokedToken", err)
	}
	// Regeneration: the old secret never works again, the new one does.
	_, fresh, err := f.svc.RegenerateServiceToken(ctx, tokens.Operator, "", st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Authenticate(ctx, tok); err != tokens.ErrUnknownToken {
		t.Errorf("old secret after regenerate: %v, want ErrUnknownToken", err)
	}
	if _, err := f.auth.Authenticate(ctx, fresh.Plaintext()); err != nil {
		t.Errorf("new secret after regenerate: %v", err)
	}
	// Deactivating the person refuses their tokens.
	if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Authenticate(ctx, utok); err != tokens.ErrOwnerDeactivated {
		t.Errorf("after deactivation: %v, want ErrOwnerDeactivated", err)
	}
}

func TestLookupRacingAnInvalidationIsNotCached(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t, "sqlite", tokens.AuthOptions{})
	st, tok := f.serviceToken(t)
	// The store answers "active", then the token is revoked and invalidated
	// before the answer reaches the cache.
	var once sync.Once
	f.store.during = func() {
		once.Do(func() {
			if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, "", st.ID); err != nil {
				t.Error(err)
			}
		})
	}
	f.auth.Authenticate(ctx, tok) // may pass: it started before the revocation
	if _, err := f.auth.Authenticate(ctx, tok); err != tokens.ErrRevokedToken {
		t.Fatalf("after a revocation that raced a lookup: %v, want ErrRevokedToken", err)
	}
}

// TestInvalidationAsALookupCachesItsAnswerIsNotLost checks the moment
// after a lookup has judged its answer current and before the answer is in
// the cache: an invalidation then finds nothing to evict, and the answer,
// read before the revocation, must not stay cached for auth.cache_ttl.
func TestInvalidationAsALookupCachesItsAnswerIsNotLost(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t, "sqlite", tokens.AuthOptions{})
	st, tok := f.serviceToken(t)
	var once sync.Once
	tokens.SetBeforeCaching(f.auth, func() {
		once.Do(func() {
			if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, "", st.ID); err != nil {
				t.Error(err)
			}
		})
	})
	f.auth.Authenticate(ctx, tok) // may pass: it started before the revocation
	if _, err := f.auth.Authenticate(ctx, tok); err != tokens.ErrRevokedToken {
		t.Fatalf("after a revocation that came as a lookup cached its answer: %v, want ErrRevokedToken", err)
	}
}

// follower is an authenticator following the change log over its own store
// connection, as another replica or the CLI's server would, and a service
// that changes tokens over another: no OnCommit links them.
type follower struct {
	svc    *tokens.Service
	auth   *tokens.Authenticator
	token  string
	tokID  string
	writer *sqlstore.Store
	reader *sqlstore.Store
}

func newFollower(t *testing.T, ctx context.Context, writerDSN, readerDSN string) *follower {
	t.Helper()
	writer, reader := openAt(t, writerDSN), openAt(t, readerDSN)
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	f := &follower{svc: tokens.NewService(writer, policy), writer: writer, reader: reader,
		auth: tokens.NewAuthenticator(reader, policy, tokens.AuthOptions{StaleAfter: 5 * time.Second})}
	wake := make(chan struct{}, 1)
	go reader.Listen(ctx, wake, nil)
	go f.auth.Follow(ctx, 200*time.Millisecond, wake)

	org, _ := f.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	st, sec, err := f.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "sync"})
	if err != nil {
		t.Fatal(err)
	}
	f.token, f.tokID = sec.Plaintext(), st.ID
	if _, err := f.auth.Authenticate(ctx, f.token); err != nil {
		t.Fatal(err)
	}
	// Let the follower start (it reads its starting point first).
	began := time.Now()
	waitFor(t, func() bool { return f.auth.Synced().After(began) })
	return f
}

// revokeAndWait revokes the token through the other connection and returns
// how long the follower took to refuse it; it fails after a second.
func (f *follower) revokeAndWait(t *testing.T, ctx context.Context) time.Duration {
	t.Helper()
	if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, "", f.tokID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		if _, err := f.auth.Authenticate(ctx, f.token); errors.Is(err, tokens.ErrRevokedToken) {
			return time.Since(start)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("a revocation by another process was not seen within a second")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFollowerSeesOtherProcesses checks that a revocation reaches another
// process through the change log alone.
func TestFollowerSeesOtherProcesses(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dsn := sqltest.SQLitePath(t)
			if dialect == sqlstore.Postgres {
				dsn = sqltest.PostgresDSN(t)
			}
			f := newFollower(t, ctx, dsn, dsn)
			t.Logf("%s: revocation seen by the other process after %v", dialect, f.revokeAndWait(t, ctx).Round(time.Millisecond))
		})
	}
}

func openAt(t *testing.T, dsn string) *sqlstore.Store {
	s, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

func TestStaleCacheIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t, "sqlite", tokens.AuthOptions{StaleAfter: time.Second})
	_, tok := f.serviceToken(t)
	if _, err := f.auth.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.store.Close() // the follower cannot catch up any more
	if _, err := f.auth.Authenticate(ctx, tok); err != nil {
		t.Fatalf("within the staleness bound: %v, want the cached identity", err)
	}
	f.now.Store(ptr(f.now.Load().Add(2 * time.Second)))
	if _, err := f.auth.Authenticate(ctx, tok); err == nil || errors.As(err, new(*tokens.AuthError)) {
		t.Fatalf("past the staleness bound with the store down: %v, want a store error", err)
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	f := newAuthFixture(b, "sqlite", tokens.AuthOptions{StaleAfter: time.Hour})
	_, tok := f.serviceToken(b)
	ctx := context.Background()
	f.auth.Authenticate(ctx, tok)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.auth.Authenticate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestFollowerResumesAfterLosingTheDatabase cuts every connection of a
// follower (its LISTEN connection and its pool) on PostgreSQL, then revokes
// a token from another process: the follower must reconnect and apply the
// change from its last sequence, so the revocation is not lost.
func TestFollowerResumesAfterLosingTheDatabase(t *testing.T) {
	if os.Getenv(sqltest.EnvPostgresDSN) == "" {
		t.Skip(sqltest.EnvPostgresDSN + " not set: the PostgreSQL reconnection test is skipped")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := sqltest.PostgresDSN(t)
	appName := "scimgate_follower_" + strings.ToLower(tokens.NewID("t"))
	f := newFollower(t, ctx, dsn, dsn+"&application_name="+appName)

	var killed int
	if err := f.writer.DB().GetContext(context.Background(), &killed,
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, appName); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no connection of the follower's store was found to cut")
	}
	t.Logf("%d connections cut; revocation applied %v later", killed, f.revokeAndWait(t, ctx).Round(time.Millisecond))
}
