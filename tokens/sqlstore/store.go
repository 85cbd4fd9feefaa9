// Package sqlstore implements tokens.Store on SQLite (the embedded default,
// through the pure Go modernc.org/sqlite driver) and on PostgreSQL (for more
// than one replica, through pgx), with sqlx over database/sql and versioned
// migrations embedded in the binary.
//
// Every timestamp is stored as a BIGINT of Unix microseconds (UTC) in both
// databases, so that neither driver's time handling matters.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/XSAM/otelsql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/scimgate/scimgate/tokens"
)

// The dialects a Store speaks.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// NotifyChannel is the PostgreSQL channel on which every change-log append is
// announced at commit, with the sequence number as payload.
const NotifyChannel = "scimgate_changes"

// changeLogLock is the PostgreSQL advisory lock that change-log appends take
// until commit, so that sequence numbers commit in order (see AppendChange).
const changeLogLock = 0x5c196a7e_c4a19e00

// usageChunk is how many tokens one RecordUsage statement updates: 3
// parameters each stays far below SQLite's 32766 and PostgreSQL's 65535.
const usageChunk = 1000

//go:embed migrations
var migrations embed.FS

// Store is a tokens.Store on SQLite or PostgreSQL.
type Store struct {
	db      *sqlx.DB
	dialect string
	// writer serializes this process's write transactions on SQLite, which
	// allows one writer at a time anyway: waiting here is a queue, where
	// waiting on the database lock is a poll. Nil on PostgreSQL, whose row
	// locks serialize only the transactions that need it.
	writer chan struct{}
	// pgConfig is kept for the one raw connection that LISTENs (see Listen).
	pgConfig *pgx.ConnConfig
	// sqlitePath is the database file, whose lock file serializes
	// migrations across processes.
	sqlitePath string
	// memory is an in-memory SQLite database (":memory:"): one connection,
	// which holds it, and no file.
	memory bool
	// writeFailure is the last write that failed for the database's sake
	// (full, read-only, unreachable); see WriteFailure.
	writeFailure atomic.Pointer[writeFailure]
	// connLosses counts the PostgreSQL connections found dead under a
	// statement (see shouldPing).
	connLosses atomic.Uint64
}

var _ tokens.Store = (*Store)(nil)

// Open connects to a database: a postgres:// or postgresql:// URL is
// PostgreSQL, ":memory:" an in-memory SQLite database that lives as long as
// the Store, anything else the path of a SQLite file (optionally with a
// file: prefix), created with its directory if missing unless the option
// ExistingOnly is given. It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return openPostgres(ctx, dsn, o)
	}
	return openSQLite(ctx, dsn, o)
}

// Option configures Open.
type Option func(*options)

type options struct {
	tracerProvider trace.TracerProvider
	existingOnly   bool
}

// ExistingOnly makes Open refuse a SQLite file that does not exist, with an
// error that wraps fs.ErrNotExist and names the path, instead of creating it
// (and its directory): a mistyped path then finds nothing rather than a new,
// empty database.
func ExistingOnly() Option {
	return func(o *options) { o.existingOnly = true }
}

// IsMemory reports whether dsn names an in-memory SQLite database.
func IsMemory(dsn string) bool {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	return path == ":memory:"
}

// WithTracerProvider traces the store's queries (through otelsql) as
// children of the caller's span; queries made outside a trace, such as the
// change-log follower's polls, start none.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}

// traced is the otelsql configuration; nil when tracing is off.
func (o options) traced(system attribute.KeyValue) []otelsql.Option {
	if o.tracerProvider == nil {
		return nil
	}
	return []otelsql.Option{
		otelsql.WithTracerProvider(o.tracerProvider),
		otelsql.WithAttributes(system),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			OmitConnResetSession: true,
			OmitConnPrepare:      true,
			OmitRows:             true,
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
				return trace.SpanContextFromContext(ctx).IsValid()
			},
		}),
	}
}

// sqliteMmap maps up to 1 GiB of the database file into memory, shared by
// every connection through the OS page cache. A token lookup touches pages
// all over the file; read through SQLite's own cache (2 MB per connection)
// each is a system call, and with a million tokens a cache miss took 36 %
// longer than with a thousand, against 11 to 17 % mapped (measured on
// SQLite with 8 concurrent lookups).
const sqliteMmap = "&_pragma=mmap_size(1073741824)"

func openSQLite(ctx context.Context, dsn string, o options) (*Store, error) {
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == "" {
		return nil, errors.New("open sqlite database: the path is empty")
	}
	memory := IsMemory(dsn)
	switch {
	case memory:
	case o.existingOnly:
		if info, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("open sqlite database: %s does not exist: %w", path, fs.ErrNotExist)
			}
			return nil, fmt.Errorf("open sqlite database: %w", err)
		} else if info.IsDir() {
			return nil, fmt.Errorf("open sqlite database: %s is a directory, not a database file", path)
		}
	default:
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("open sqlite database: create its directory: %w", err)
		}
		// The file holds token hashes: create it readable by its owner
		// only. SQLite gives the -wal and -shm files the same mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
		}
		f.Close()
	}
	// _pragma parameters run on every new connection of the pool, not just
	// the first. _txlock=immediate makes BEGIN take the write lock, so a
	// transaction that reads and then writes waits its turn at BEGIN
	// (honouring busy_timeout) instead of failing with SQLITE_BUSY when it
	// first writes.
	params := "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate" + sqliteMmap
	if query != "" {
		params += "&" + query
	}
	var (
		sqlDB *sql.DB
		err   error
	)
	if traced := o.traced(semconv.DBSystemNameSQLite); traced != nil {
		sqlDB, err = otelsql.Open("sqlite", path+"?"+params, traced...)
	} else {
		sqlDB, err = sql.Open("sqlite", path+"?"+params)
	}
	db := sqlx.NewDb(sqlDB, "sqlite")
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	// Opening a connection runs the pragmas: keep the ones opened.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if memory {
		// Each connection to ":memory:" has a database of its own: the
		// one connection is the database, and is never closed.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
	}
	s := &Store{db: db, dialect: SQLite, writer: make(chan struct{}, 1), sqlitePath: path, memory: memory}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, classify(err))
	}
	return s, nil
}

func openPostgres(ctx context.Context, dsn string, o options) (*Store, error) {
	// url.Parse first: its errors, unlike pgx's, can be shown without the
	// URL, and so without the password.
	if _, err := url.Parse(dsn); err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("open postgres database: the DSN is not a valid URL: %v", err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres database: the DSN is not valid: %s", parseErrorDetail(err))
	}
	if cfg.ConnectTimeout == 0 {
		// Without a timeout a dial to a host that drops packets hangs for
		// minutes; connect_timeout in the DSN overrides this.
		cfg.ConnectTimeout = 10 * time.Second
	}
	s := &Store{dialect: Postgres, pgConfig: cfg}
	driverOpts := []stdlib.OptionOpenDB{stdlib.OptionShouldPing(s.shouldPing), stdlib.OptionAfterConnect(s.afterConnect)}
	sqlDB := stdlib.OpenDB(*cfg, driverOpts...)
	if traced := o.traced(semconv.DBSystemNamePostgreSQL); traced != nil {
		sqlDB = otelsql.OpenDB(stdlib.GetConnector(*cfg, driverOpts...), traced...)
	}
	db := sqlx.NewDb(sqlDB, "pgx")
	// Bounded, so that a burst of writers waiting for one row lock cannot
	// use up the server's connections; DB() can change it.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.db = db
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, connectError(cfg, err)
	}
	return s, nil
}

// parseErrorDetail is what pgx says is wrong with a DSN, without the DSN:
// pgx quotes it, and its password redaction is best effort.
func parseErrorDetail(err error) string {
	msg := err.Error()
	var perr *pgconn.ParseConfigError
	if errors.As(err, &perr) {
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			return msg[i+len("`: "):]
		}
		return "cannot parse it"
	}
	return msg
}

// openError is an Open failure: a message for a person, and the causes for
// errors.Is and errors.As.
type openError struct {
	msg   string
	cause error
}

func (e *openError) Error() string   { return e.msg }
func (e *openError) Unwrap() []error { return []error{tokens.ErrUnavailable, e.cause} }

// connectError explains why PostgreSQL could not be reached, naming the
// server but not the DSN.
func connectError(cfg *pgx.ConnConfig, err error) error {
	addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	if strings.HasPrefix(cfg.Host, "/") {
		addr = cfg.Host // a Unix socket directory
	}
	var (
		pgErr  *pgconn.PgError
		errno  syscall.Errno
		dnsErr *net.DNSError
		netErr net.Error
	)
	var msg string
	switch {
	case errors.As(err, &pgErr):
		msg = fmt.Sprintf("open postgres database: %s refused the connection: %s (SQLSTATE %s; check the user, password and database name in the DSN)", addr, pgErr.Message, pgErr.Code)
	case errors.As(err, &dnsErr):
		msg = fmt.Sprintf("open postgres database: cannot resolve %s: %s (is the host name in the DSN right?)", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &errno):
		msg = fmt.Sprintf("open postgres database: cannot reach %s: %s (is PostgreSQL running and the DSN right?)", addr, errno)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		msg = fmt.Sprintf("open postgres database: cannot reach %s: timed out (is PostgreSQL running and the DSN right?)", addr)
	default:
		// pgx's message names the user and database, never the password.
		msg = fmt.Sprintf("open postgres database: cannot connect to %s: %v", addr, err)
	}
	return &openError{msg: msg, cause: err}
}

// Migrate brings the schema up to date with the migrations embedded in the
// binary.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations/"+s.dialect)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	dialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
		// Replicas that start together migrate one after the other. The
		// lock is per schema, so that separate schemas of one database
		// (as tests use) do not wait for each other.
		var schema sql.NullString
		if err := s.db.GetContext(ctx, &schema, "SELECT current_schema()"); err != nil {
			return fmt.Errorf("migrate: %w", classify(err))
		}
		if !schema.Valid {
			return errors.New("migrate: no schema of the search_path exists (create it, or fix search_path in the DSN)")
		}
		h := fnv.New64a()
		h.Write([]byte("scimgate migrations " + schema.String))
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()&math.MaxInt64)), lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db.DB, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if s.dialect == SQLite && !s.memory {
		// goose has no lock for SQLite: a serve and a CLI command starting
		// together on a new file would both create the tables.
		unlock, err := lockFile(s.sqlitePath + ".migrate-lock")
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer unlock()
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s database: %w", s.dialect, classify(err))
	}
	return s.afterMigrate(ctx, len(results) > 0)
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// DB is the connection pool, for instrumentation.
func (s *Store) DB() *sqlx.DB { return s.db }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", s.dialect, classify(err))
	}
	return nil
}

// Close closes every connection.
func (s *Store) Close() error { return s.db.Close() }

// Update runs fn in a read-write transaction, committed if fn returns nil
// and rolled back otherwise, or if fn panics.
func (s *Store) Update(ctx context.Context, fn func(tokens.Tx) error) error {
	release, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	return s.noteWrite(s.run(ctx, nil, fn))
}

// writeFailure is a write that failed for the database's sake.
type writeFailure struct {
	err       error
	at        time.Time
	recovered bool // a write succeeded since
}

// WriteFailureHold is how long WriteFailure keeps reporting a failed write
// even when writes succeed again, so that readiness does not flap while a
// disk is nearly full and small writes fit where others do not.
const WriteFailureHold = 30 * time.Second

// noteWrite records the outcome of a write transaction for WriteFailure
// and returns err.
func (s *Store) noteWrite(err error) error {
	switch {
	case err == nil:
		if f := s.writeFailure.Load(); f != nil && !f.recovered {
			s.writeFailure.Store(&writeFailure{err: f.err, at: f.at, recovered: true})
		}
	case storageFailure(err):
		s.writeFailure.Store(&writeFailure{err: err, at: time.Now()})
	}
	return err
}

// WriteFailure is the error of the last write that failed because the
// database could not take it (a full disk, a read-only file or server, a
// lost database) while no write has succeeded since, or less than
// WriteFailureHold ago; nil otherwise. It is what readiness reports: a
// server whose store cannot be written cannot apply SCIM changes or record
// token uses.
func (s *Store) WriteFailure() error {
	f := s.writeFailure.Load()
	if f == nil || f.recovered && time.Since(f.at) >= WriteFailureHold {
		return nil
	}
	return f.err
}

// View runs fn in a read-only transaction.
func (s *Store) View(ctx context.Context, fn func(tokens.Tx) error) error {
	return s.run(ctx, &sql.TxOptions{ReadOnly: true}, fn)
}

// lockWriter waits for this process's turn to write on SQLite. A write
// transaction must not start another one while it holds the turn.
func (s *Store) lockWriter(ctx context.Context) (release func(), err error) {
	if s.writer == nil {
		return func() {}, nil
	}
	select {
	case s.writer <- struct{}{}:
		return func() { <-s.writer }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the sqlite write lock: %w", classify(ctx.Err()))
	}
}

// run runs fn in a transaction. On PostgreSQL, a transaction whose
// connection died before COMMIT was sent (a pooled connection that the
// server had closed, a restart, a failover) cannot have committed, so it runs
// once more on a live connection; one whose COMMIT was sent is never run
// again, since it may have committed.
func (s *Store) run(ctx context.Context, opts *sql.TxOptions, fn func(tokens.Tx) error) error {
	again, err := s.runOnce(ctx, opts, fn)
	if again {
		_, err = s.runOnce(ctx, opts, fn)
	}
	return err
}

// runOnce runs fn in one transaction. again reports that it failed because
// its connection was lost before COMMIT was sent: it did not commit, and can
// run again.
func (s *Store) runOnce(ctx context.Context, opts *sql.TxOptions, fn func(tokens.Tx) error) (again bool, err error) {
	sqlTx, err := s.db.BeginTxx(ctx, opts)
	if err != nil {
		return s.lostConnection(ctx, err), fmt.Errorf("begin transaction: %w", classify(err))
	}
	committing := false
	defer func() {
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
		if err != nil && !committing {
			// fn may have turned the driver's error into its own; a
			// rollback that fails because the connection is gone says the
			// same.
			rollbackErr := sqlTx.Rollback()
			again = s.lostConnection(ctx, err) || s.lostConnection(ctx, rollbackErr)
		}
	}()
	if err = fn(&tx{ctx: ctx, tx: sqlTx, dialect: s.dialect}); err != nil {
		return false, err // again is decided in the deferred rollback
	}
	committing = true
	if err = sqlTx.Commit(); err != nil {
		if pgconn.SafeToRetry(err) && s.lostConnection(ctx, err) {
			// pgx sent nothing: the connection was already closed.
			return true, fmt.Errorf("commit transaction: %w", classify(err))
		}
		if s.dialect == Postgres && connectionLost(err) {
			return false, fmt.Errorf("commit transaction: the connection was lost after COMMIT was sent, so the change may or may not have been saved: %w", classify(err))
		}
		return false, fmt.Errorf("commit transaction: %w", classify(err))
	}
	return false, nil
}

// lostConnection reports whether err is a PostgreSQL connection lost under
// a statement, with ctx still live: the statement can run again on another
// connection. Every pooled connection then proves it is alive before its
// next use (see shouldPing), since the others may have died the same way.
func (s *Store) lostConnection(ctx context.Context, err error) bool {
	if s.dialect != Postgres || ctx.Err() != nil || !connectionLost(err) {
		return false
	}
	s.connLosses.Add(1)
	return true
}

// read runs a query outside a transaction, once more on another connection
// if its connection was lost: a read changes nothing, so that is always safe.
func (s *Store) read(ctx context.Context, query func() error) error {
	err := query()
	if err != nil && s.lostConnection(ctx, err) {
		err = query()
	}
	return err
}

// connLossesKey holds, in a pooled connection's pgconn CustomData, the
// value of Store.connLosses when the connection was last known alive.
const connLossesKey = "scimgate.conn_losses"

// shouldPing decides whether database/sql's pgx driver checks a pooled
// connection with a round trip before reusing it: after an idle second (pgx's
// default), and once after any connection of the pool was found dead, so
// that a restart or pg_terminate_backend of the whole pool costs one failed
// statement, not one per pooled connection.
func (s *Store) shouldPing(_ context.Context, p stdlib.ShouldPingParams) bool {
	losses := s.connLosses.Load()
	data := p.Conn.PgConn().CustomData()
	if seen, _ := data[connLossesKey].(uint64); seen != losses {
		data[connLossesKey] = losses
		return true
	}
	return p.IdleDuration > time.Second
}

// afterConnect marks a new connection as alive now.
func (s *Store) afterConnect(_ context.Context, c *pgx.Conn) error {
	c.PgConn().CustomData()[connLossesKey] = s.connLosses.Load()
	return nil
}

// credentialRow is a token with its owner and org, as LookupCredential reads it.
type credentialRow struct {
	tokenRow
	OrgName        string         `db:"org_name"`
	UserName       sql.NullString `db:"user_name"`
	UserActive     sql.NullBool   `db:"user_active"`
	UserRemoved    sql.NullBool   `db:"user_removed"`
	ServiceName    sql.NullString `db:"service_name"`
	PermissionSets sql.NullString `db:"permission_sets"`
	GroupNames     sql.NullString `db:"group_names"`
	SiteNames      sql.NullString `db:"site_names"`
}

// groupSep joins a user's group names in LookupCredential: a control
// character, which a display name may not contain.
const groupSep = "\x1f"

// LookupCredential reads a token by hash with what the authenticator needs
// of its owner, org and groups, in one indexed query.
func (s *Store) LookupCredential(ctx context.Context, h tokens.Hash) (*tokens.StoredCredential, error) {
	var r credentialRow
	q := s.lookupQuery()
	if err := s.read(ctx, func() error { return s.db.GetContext(ctx, &r, q, h[:]) }); err != nil {
		return nil, fmt.Errorf("lookup credential: %w", classify(err))
	}
	return r.credential()
}

// lookupQuery is LookupCredential's query, with one parameter: the hash.
func (s *Store) lookupQuery() string {
	// Each group's and site's name is a scalar subquery by primary key
	// rather than a join: without statistics PostgreSQL hashed the whole
	// groups table for a join on every lookup. This way a lookup is a few
	// index probes however many groups and sites the database holds (the
	// members through the indexes on user_id).
	groupName := "(SELECT g.display_name FROM groups g WHERE g.id = m.group_id)"
	siteName := "(SELECT st.name FROM sites st WHERE st.id = sm.site_id)"
	groupAgg := "group_concat(" + groupName + ", char(31))"
	siteAgg := "group_concat(" + siteName + ", char(31))"
	if s.dialect == Postgres {
		groupAgg = "string_agg(" + groupName + ", chr(31))"
		siteAgg = "string_agg(" + siteName + ", chr(31))"
	}
	q := `SELECT ` + prefixed("t.", tokenColumns) + `, o.name AS org_name,
		u.user_name AS user_name, u.active AS user_active, u.removed AS user_removed,
		su.name AS service_name, su.permission_sets AS permission_sets,
		(SELECT ` + groupAgg + ` FROM group_members m WHERE m.user_id = u.id) AS group_names,
		(SELECT ` + siteAgg + ` FROM site_members sm WHERE sm.user_id = u.id) AS site_names
	FROM tokens t
	JOIN orgs o ON o.id = t.org_id
	LEFT JOIN users u ON t.kind = 'user' AND u.id = t.owner_id
	LEFT JOIN service_users su ON t.kind = 'service' AND su.id = t.owner_id
	WHERE t.hash = ?`
	return s.db.Rebind(q)
}

func (r *credentialRow) credential() (*tokens.StoredCredential, error) {
	c := &tokens.StoredCredential{Token: r.token(), OrgName: r.OrgName}
	switch c.Token.Kind {
	case tokens.KindUser:
		c.OwnerName = r.UserName.String
		c.OwnerActive = r.UserActive.Bool && !r.UserRemoved.Bool
		c.OwnerRemoved = r.UserRemoved.Bool
		c.Groups = []string{}
		if r.GroupNames.String != "" {
			c.Groups = strings.Split(r.GroupNames.String, groupSep)
			sort.Strings(c.Groups)
		}
		c.Sites = []string{}
		if r.SiteNames.String != "" {
			c.Sites = strings.Split(r.SiteNames.String, groupSep)
			sort.Strings(c.Sites)
		}
	case tokens.KindService:
		c.OwnerName = r.ServiceName.String
		c.OwnerActive = r.ServiceName.Valid
		c.PermissionSets = []string{}
		if r.PermissionSets.Valid {
			if err := json.Unmarshal([]byte(r.PermissionSets.String), &c.PermissionSets); err != nil {
				return nil, fmt.Errorf("lookup credential: permission sets of token %s: %w", c.Token.ID, err)
			}
		}
	}
	return c, nil
}

// RecordUsage writes a batch of token uses in one statement (one per
// usageChunk tokens).
func (s *Store) RecordUsage(ctx context.Context, uses []tokens.Usage) error {
	uses = mergeUsage(uses)
	if len(uses) == 0 {
		return nil
	}
	release, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	// One transaction, so that a lost connection leaves either every use
	// written or none, and run may safely try again.
	err = s.run(ctx, nil, func(t tokens.Tx) error {
		sqlTx := t.(*tx).tx
		for chunk := range slices.Chunk(uses, usageChunk) {
			q, args := s.usageStatement(chunk)
			if _, err := sqlTx.ExecContext(ctx, q, args...); err != nil {
				return classify(err)
			}
		}
		return nil
	})
	if s.noteWrite(err) != nil {
		return fmt.Errorf("record usage of %d tokens: %w", len(uses), err)
	}
	return nil
}

// mergeUsage folds uses of the same token into one, since an UPDATE … FROM
// applies only one of several source rows that match a row.
func mergeUsage(uses []tokens.Usage) []tokens.Usage {
	index := make(map[string]int, len(uses))
	out := make([]tokens.Usage, 0, len(uses))
	for _, u := range uses {
		i, ok := index[u.TokenID]
		if !ok {
			index[u.TokenID] = len(out)
			out = append(out, u)
			continue
		}
		if u.LastUsed.After(out[i].LastUsed) {
			out[i].LastUsed = u.LastUsed
		}
		out[i].Count += u.Count
	}
	return out
}

func (s *Store) usageStatement(uses []tokens.Usage) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 3*len(uses))
	// Stored NULL (never used) and a given zero time both lose to the other.
	if s.dialect == Postgres {
		b.WriteString(`UPDATE tokens SET last_used_at = GREATEST(tokens.last_used_at, v.ts), use_count = tokens.use_count + v.n FROM (VALUES `)
	} else {
		b.WriteString(`UPDATE tokens SET last_used_at = coalesce(max(tokens.last_used_at, v.column2), tokens.last_used_at, v.column2), use_count = tokens.use_count + v.column3 FROM (VALUES `)
	}
	for i, u := range uses {
		if i > 0 {
			b.WriteString(", ")
		}
		if s.dialect == Postgres {
			// VALUES parameters have no type to infer: say it.
			fmt.Fprintf(&b, "($%d::text, $%d::bigint, $%d::bigint)", 3*i+1, 3*i+2, 3*i+3)
		} else {
			b.WriteString("(?, ?, ?)")
		}
		args = append(args, u.TokenID, nullMicros(u.LastUsed), u.Count)
	}
	if s.dialect == Postgres {
		b.WriteString(`) AS v (id, ts, n) WHERE tokens.id = v.id`)
	} else {
		b.WriteString(`) AS v WHERE tokens.id = v.column1`)
	}
	return b.String(), args
}

// ChangesSince returns up to limit changes with a sequence above seq, in
// sequence order; limit 0 or less means all.
func (s *Store) ChangesSince(ctx context.Context, seq int64, limit int) ([]tokens.Change, error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	var rows []changeRow
	q := s.db.Rebind(`SELECT seq, token_id, owner_id, at, hash_added, hash_removed FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`)
	if err := s.read(ctx, func() error { rows = nil; return s.db.SelectContext(ctx, &rows, q, seq, limit) }); err != nil {
		return nil, fmt.Errorf("changes since %d: %w", seq, classify(err))
	}
	out := make([]tokens.Change, len(rows))
	for i, r := range rows {
		out[i] = r.change()
	}
	return out, nil
}

// TokenHashes returns up to limit stored token hashes above after, in byte
// order, whatever the tokens' status: the authenticator loads its index of
// live tokens page by page with it. The unique index on hash serves it.
func (s *Store) TokenHashes(ctx context.Context, after tokens.Hash, limit int) ([]tokens.Hash, error) {
	var out []tokens.Hash
	q := s.db.Rebind(`SELECT hash FROM tokens WHERE hash > ? ORDER BY hash LIMIT ?`)
	err := s.read(ctx, func() error {
		out = make([]tokens.Hash, 0, limit)
		rows, err := s.db.QueryContext(ctx, q, after[:], limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		var b []byte
		for rows.Next() {
			if err := rows.Scan(&b); err != nil {
				return err
			}
			var h tokens.Hash
			copy(h[:], b)
			out = append(out, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read token hashes: %w", classify(err))
	}
	return out, nil
}

// LastChange is the highest sequence in the change log, 0 if it is empty.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.read(ctx, func() error { return s.db.GetContext(ctx, &seq, `SELECT coalesce(max(seq), 0) FROM changes`) }); err != nil {
		return 0, fmt.Errorf("last change: %w", classify(err))
	}
	return seq, nil
}

// micros is t as stored: Unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros is micros for a column where the zero time is NULL.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros reads a stored time in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i := range cols {
		cols[i] = prefix + cols[i]
	}
	return strings.Join(cols, ", ")
}
