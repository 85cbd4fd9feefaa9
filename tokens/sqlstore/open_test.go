package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dsn         string
		want        string // in the message
		unavailable bool
	}{
		{"postgres://scim:s3cret@127.0.0.1:1/db?sslmode=disable", "open postgres database: cannot reach 127.0.0.1:1: connection refused (is PostgreSQL running and the DSN right?)", true},
		{"postgresql://scim:s3cret@127.0.0.1:1/db?sslmode=disable", "cannot reach 127.0.0.1:1", true},
		{"postgres://scim:s3cret@db:port/x", "open postgres database: the DSN is not a valid URL: invalid port", false},
		{"postgres://scim:s3cret@127.0.0.1/db?connect_timeout=soon", "open postgres database: the DSN is not valid: invalid connect_timeout", false},
		{filepath.Join(notADir, "sub", "scimgate.db"), "open sqlite database: create its directory", false},
		{"", "open sqlite database: the path is empty", false},
	}
	for _, tt := range tests {
		s, err := sqlstore.Open(ctx, tt.dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) = nil error, want %q", tt.dsn, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %q, want it to contain %q", tt.dsn, err, tt.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) = %q: the message shows the password", tt.dsn, err)
		}
		if got := errors.Is(err, tokens.ErrUnavailable); got != tt.unavailable {
			t.Errorf("Open(%q) = %q: errors.Is(ErrUnavailable) = %v, want %v", tt.dsn, err, got, tt.unavailable)
		}
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "new", "dir")
	for _, dsn := range []string{filepath.Join(dir, "a.db"), "file:" + filepath.Join(dir, "b.db") + "?_pragma=cache_size(-4000)"} {
		s, err := sqlstore.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		// Every pooled connection has the pragmas, not just the first.
		conns := make([]interface{ Close() error }, 0, 3)
		for range 3 {
			c, err := s.DB().Connx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			var mode string
			var busy, fk, sync int
			if err := c.GetContext(ctx, &mode, "PRAGMA journal_mode"); err != nil {
				t.Fatal(err)
			}
			c.GetContext(ctx, &busy, "PRAGMA busy_timeout")
			c.GetContext(ctx, &fk, "PRAGMA foreign_keys")
			c.GetContext(ctx, &sync, "PRAGMA synchronous")
			if mode != "wal" || busy != 5000 || fk != 1 || sync != 1 {
				t.Errorf("%s: journal_mode %s, busy_timeout %d, foreign_keys %d, synchronous %d, want wal, 5000, 1, 1 (NORMAL)", dsn, mode, busy, fk, sync)
			}
		}
		for _, c := range conns {
			c.Close()
		}
		if s.Dialect() != sqlstore.SQLite {
			t.Errorf("Dialect() = %q, want sqlite", s.Dialect())
		}
		s.Close()
	}
	info, err := os.Stat(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %v, want 0600", perm)
	}
}

// TestNoPlaintextOnDisk checks that a token's secret never reaches the
// database file or its write-ahead log.
func TestNoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	path := sqltest.SQLitePath(t)
	s, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	svc := tokens.NewService(s, policy)
	boot, bootSecret, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	u := &tokens.User{OrgID: boot.OrgID, UserName: "alice", Active: true}
	if err := svc.CreateUser(ctx, tokens.Operator, u); err != nil {
		t.Fatal(err)
	}
	_, userSecret, err := svc.CreateUserToken(ctx, tokens.Operator, u.OrgID, u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	// Read the files while the store is open (the WAL is still there), and
	// again once it is closed and checkpointed.
	check := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(path + "*")
		if len(files) == 0 {
			t.Fatalf("%s: no database files at %s", when, path)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, sec := range []tokens.Secret{bootSecret, userSecret} {
				if bytes.Contains(b, []byte(sec.Plaintext())) {
					t.Errorf("%s: %s contains the plaintext of token %s", when, file, sec)
				}
				if !bytes.Contains(b, []byte(sec.DisplayPrefix())) && filepath.Base(file) == filepath.Base(path) && when == "closed" {
					t.Errorf("%s: %s lacks the display prefix %s: is this the right file?", when, file, sec.DisplayPrefix())
				}
			}
		}
	}
	check("open")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}

// TestConcurrentSQLiteMigrations starts several stores on one new file at
// once, as a serve and a CLI command started together do.
func TestConcurrentSQLiteMigrations(t *testing.T) {
	path := sqltest.SQLitePath(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := sqlstore.Open(ctx, path)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(ctx)
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
}
