package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/scimgate/scimgate/tokens"
)

// classify turns driver errors into the errors tokens.Store promises: a
// missing row wraps tokens.ErrNotFound, a broken uniqueness rule is a
// tokens.Conflict error, and a database that cannot be reached wraps
// tokens.ErrUnavailable. Anything else is returned as it is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return tokens.ErrNotFound
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return tokens.Errorf(tokens.Conflict, "%s", conflictMessage(sqliteErr.Error()))
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("a row it refers to is missing: %w", tokens.ErrNotFound)
		}
		// The extended codes keep the primary code in their low byte.
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
			return fmt.Errorf("%w: %w", tokens.ErrUnavailable, err)
		}
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return tokens.Errorf(tokens.Conflict, "%s", conflictMessage(pgErr.ConstraintName))
		case pgErr.Code == "23503": // foreign_key_violation
			return fmt.Errorf("a row it refers to is missing: %w", tokens.ErrNotFound)
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, starting up
			pgErr.Code == "53100", pgErr.Code == "25006": // disk full, a read-only server (a standby)
			return fmt.Errorf("%w: %w", tokens.ErrUnavailable, err)
		}
		return err
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %w", tokens.ErrUnavailable, err)
	}
	return err
}

// unreachable reports whether err means the database could not be reached
// or did not answer in time, rather than that a statement failed.
func unreachable(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	return errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &connectErr) ||
		errors.As(err, &netErr) ||
		strings.Contains(err.Error(), "sql: database is closed") // unexported in database/sql
}

// conflictMessage names the rule a unique index enforces, from the index or
// column names in the database's message.
func conflictMessage(detail string) string {
	switch {
	case strings.Contains(detail, "sites.name"), strings.Contains(detail, "sites_name"):
		return "a site with this name already exists in this org"
	case strings.Contains(detail, "sites.external_id"), strings.Contains(detail, "sites_external_id"):
		return "a site with this external ID already exists in this org"
	case strings.Contains(detail, "site_members"):
		return "the user is already a member of the site"
	case strings.Contains(detail, "user_name"):
		return "the user name is already taken in this org"
	case strings.Contains(detail, "display_name"):
		return "a group with this display name already exists in this org"
	case strings.Contains(detail, "hash"):
		return "a token with this secret already exists"
	case strings.Contains(detail, "orgs.name"), strings.Contains(detail, "orgs_name"):
		return "an org with this name already exists"
	case strings.Contains(detail, "group_members"):
		return "the user is already a member of the group"
	}
	return "a record with this ID already exists"
}

// connectionLost reports whether err means that the database connection a
// statement ran on died under it (PostgreSQL restarted or failed over, the
// backend was terminated, the network dropped it), as opposed to a
// statement the database refused or a database that is too slow. Such a
// failure says nothing about the database itself: a new connection may well
// work. Timeouts and cancellations are not included: the statement may still
// be running.
func connectionLost(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02": // admin_shutdown (pg_terminate_backend, a fast shutdown), crash_shutdown
			return true
		}
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return false
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		// A new connection failed: the database is down or unreachable,
		// and trying again at once would fail the same way.
		return false
	}
	return errors.Is(err, driver.ErrBadConn) ||
		pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &netErr)
}

// storageFailure reports whether a write failed because the database could
// not take any write (it is full, read-only, damaged or unreachable), as
// opposed to a statement it refused or a busy moment.
func storageFailure(err error) bool {
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return true
		}
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "53") || strings.HasPrefix(pgErr.Code, "58") || // insufficient resources, system error
			pgErr.Code == "25006" || // read-only transaction: the server is a standby
			connectionLost(err)
	}
	return errors.Is(err, tokens.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}
