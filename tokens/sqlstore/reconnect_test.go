package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// killable is a PostgreSQL store whose connections another store can
// terminate with pg_terminate_backend, as a restart or failover would.
type killable struct {
	*sqlstore.Store
	admin   *sqlstore.Store
	appName string
}

func openKillable(t *testing.T) *killable {
	t.Helper()
	if os.Getenv(sqltest.EnvPostgresDSN) == "" {
		t.Skip(sqltest.EnvPostgresDSN + " not set: the PostgreSQL reconnection tests are skipped")
	}
	dsn := sqltest.PostgresDSN(t)
	appName := "scimgate_kill_" + strings.ToLower(tokens.NewID("t"))
	ctx := context.Background()
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
	admin := open(dsn)
	return &killable{Store: open(dsn + "&application_name=" + appName), admin: admin, appName: appName}
}

// warm fills the pool with n connections used within the last second, so
// that database/sql hands them out again without checking them: the case
// where a statement meets a connection the server has closed.
func (k *killable) warm(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for range 2 {
		conns := make([]interface{ Close() error }, 0, n)
		for range n {
			c, err := k.DB().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

// kill terminates every connection of the store and waits until the server
// has ended them.
func (k *killable) kill(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var n int
	if err := k.admin.DB().GetContext(ctx, &n,
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, k.appName); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no connection of the store to terminate")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var left int
		if err := k.admin.DB().GetContext(ctx, &left, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, k.appName); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still there 5s after pg_terminate_backend", left)
		}
	}
}

// TestStoreSurvivesKilledConnections terminates every pooled connection of a
// store before each operation: reads, write transactions and the last-used
// batch must succeed on new connections, not fail with "store unavailable"
// while the database is up.
func TestStoreSurvivesKilledConnections(t *testing.T) {
	k := openKillable(t)
	ctx := context.Background()
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	svc := tokens.NewService(k.Store, policy)
	org, err := svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	st, secret, err := svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		fn   func() error
	}{
		{"LastChange", func() error { _, err := k.LastChange(ctx); return err }},
		{"ChangesSince", func() error { _, err := k.ChangesSince(ctx, 0, 10); return err }},
		{"LookupCredential", func() error { _, err := k.LookupCredential(ctx, secret.Hash()); return err }},
		{"View", func() error { _, err := svc.Orgs(ctx); return err }},
		{"Update", func() error {
			_, err := svc.EditServiceToken(ctx, tokens.Operator, "", st.ID, tokens.ServiceTokenEdit{Name: ptr("ci-" + tokens.NewID("n"))})
			return err
		}},
		{"RecordUsage", func() error {
			return k.RecordUsage(ctx, []tokens.Usage{{TokenID: st.ID, LastUsed: time.Now(), Count: 1}})
		}},
	}
	for _, op := range ops {
		for _, pooled := range []int{1, 5} {
			k.warm(t, pooled)
			k.kill(t)
			if err := op.fn(); err != nil {
				t.Errorf("%s after the %d pooled connections were terminated: %v", op.name, pooled, err)
			}
		}
	}
	// Every use was written once: the batch was not lost, nor doubled.
	toks, err := svc.ServiceTokens(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if toks[0].UseCount != 2 {
		t.Errorf("use count = %d after two recorded uses, want 2", toks[0].UseCount)
	}
}

// TestTransactionRetry checks when a write transaction whose connection
// died runs again: when the connection died before COMMIT was sent (it
// cannot have committed), never when it died during COMMIT (it may have).
// The backend terminates itself from a trigger, inside the statement or at
// commit, on the real server.
func TestTransactionRetry(t *testing.T) {
	k := openKillable(t)
	ctx := context.Background()
	// Triggers on orgs: one that kills its own backend during the first
	// INSERT of "killed-once" (a sequence counts, since it is not rolled
	// back), one deferred to COMMIT that kills it for "killed-at-commit".
	for _, stmt := range []string{
		`CREATE SEQUENCE kills`,
		`CREATE FUNCTION kill_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('kills') = 1 THEN
				PERFORM pg_terminate_backend(pg_backend_pid());
				PERFORM pg_sleep(5); -- the signal ends the backend here
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER kill_once AFTER INSERT ON orgs FOR EACH ROW WHEN (NEW.name = 'killed-once') EXECUTE FUNCTION kill_once()`,
		`CREATE FUNCTION kill_always() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_terminate_backend(pg_backend_pid());
			PERFORM pg_sleep(5);
			RETURN NEW;
		END $$`,
		`CREATE CONSTRAINT TRIGGER kill_at_commit AFTER INSERT ON orgs DEFERRABLE INITIALLY DEFERRED
			FOR EACH ROW WHEN (NEW.name = 'killed-at-commit') EXECUTE FUNCTION kill_always()`,
	} {
		if _, err := k.admin.DB().ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	create := func(name string) (runs int, err error) {
		var n atomic.Int32
		err = k.Update(ctx, func(tx tokens.Tx) error {
			n.Add(1)
			return tx.CreateOrg(&tokens.Org{ID: tokens.NewID("org"), Name: name, UserTokenInactivityDays: 45, CreatedAt: time.Now()})
		})
		return int(n.Load()), err
	}
	count := func(name string) int {
		var n int
		if err := k.admin.DB().GetContext(ctx, &n, `SELECT count(*) FROM orgs WHERE name = $1`, name); err != nil {
			t.Fatal(err)
		}
		return n
	}

	runs, err := create("killed-once")
	if err != nil || runs != 2 || count("killed-once") != 1 {
		t.Errorf("connection lost inside the transaction: %d runs, err %v, %d rows; want 2 runs, no error, 1 row", runs, err, count("killed-once"))
	}

	runs, err = create("killed-at-commit")
	if runs != 1 {
		t.Errorf("connection lost during COMMIT: the transaction ran %d times, want once (its outcome is unknown)", runs)
	}
	if err == nil || !errors.Is(err, tokens.ErrUnavailable) || !strings.Contains(err.Error(), "may or may not have been saved") {
		t.Errorf("connection lost during COMMIT: err = %v, want an unavailable error saying the outcome is unknown", err)
	}
	if n := count("killed-at-commit"); n != 0 {
		t.Errorf("%d rows of the transaction killed at commit, want 0", n)
	}

	// A transaction refused by the database is not run again.
	if _, err := create("killed-once"); err == nil {
		t.Fatal("a second org with the same name was created")
	}
	if runs, _ := create("killed-once"); runs != 1 {
		t.Errorf("a transaction that broke a uniqueness rule ran %d times, want once", runs)
	}
}

func ptr[T any](v T) *T { return &v }
