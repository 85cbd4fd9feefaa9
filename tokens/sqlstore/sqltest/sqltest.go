// Package sqltest gives tests a fresh, migrated sqlstore.Store: on SQLite
// always, and on PostgreSQL when SCIMGATE_TEST_POSTGRES_DSN names a server,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Each
// PostgreSQL store lives in a schema of its own, dropped when the test ends,
// so tests and packages can run in parallel on one database.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/scimgate/scimgate/tokens/sqlstore"
)

// EnvPostgresDSN names the environment variable with the PostgreSQL server
// for tests.
const EnvPostgresDSN = "SCIMGATE_TEST_POSTGRES_DSN"

const skipMessage = EnvPostgresDSN + " not set: PostgreSQL store tests skipped"

// Dialects lists the databases tests can run on: "sqlite", and "postgres"
// when EnvPostgresDSN is set.
func Dialects(t testing.TB) []string {
	t.Helper()
	if os.Getenv(EnvPostgresDSN) == "" {
		t.Log(skipMessage)
		return []string{sqlstore.SQLite}
	}
	return []string{sqlstore.SQLite, sqlstore.Postgres}
}

// Open returns a fresh, migrated store of the given dialect, closed (and on
// PostgreSQL dropped) when the test ends. It skips the test for "postgres"
// when EnvPostgresDSN is not set.
func Open(t testing.TB, dialect string) *sqlstore.Store {
	t.Helper()
	var dsn string
	switch dialect {
	case sqlstore.SQLite:
		dsn = SQLitePath(t)
	case sqlstore.Postgres:
		dsn = PostgresDSN(t)
	default:
		t.Fatalf("sqltest.Open: unknown dialect %q (want %q or %q)", dialect, sqlstore.SQLite, sqlstore.Postgres)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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

// SQLitePath is a SQLite database path in a directory removed when the test
// ends.
func SQLitePath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "scimgate.db")
}

// PostgresDSN creates an empty schema for the test, dropped when it ends,
// and returns a DSN whose connections use it. It skips the test when
// EnvPostgresDSN is not set.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresDSN)
	if base == "" {
		t.Skip(skipMessage)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvPostgresDSN, err.(*url.Error).Err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema for the test (is PostgreSQL at %s running?): %v", u.Redacted(), err)
	}
	// Registered before the store's cleanup, so it runs after it: the
	// store's connections are closed when the schema is dropped.
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema) // pgx sends it as a run-time parameter
	u.RawQuery = q.Encode()
	return u.String()
}
