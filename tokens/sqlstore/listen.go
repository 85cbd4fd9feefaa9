package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jackc/pgx/v5"
)

// Listen wakes the change-log follower whenever another connection commits
// a change, until ctx ends, so that the follower need not wait for its poll.
//
// On PostgreSQL it holds one raw pgx connection for LISTEN (database/sql
// cannot receive notifications). After every (re)connect it wakes the
// follower once too: changes committed while it was away are read from the
// log, so none is lost. A connection that was healthy is replaced at once;
// only repeated failures back off.
//
// On SQLite, where other processes (the command line) write the same file,
// it watches the database's files for writes and then asks SQLite whether
// another connection committed (PRAGMA data_version, an in-memory check): a
// commit is seen within a millisecond or two, and an idle server does no
// work at all. See watchSQLite.
func (s *Store) Listen(ctx context.Context, wake chan<- struct{}, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case s.memory:
		return // no other connection can write it
	case s.dialect == SQLite:
		s.watchSQLite(ctx, wake, log)
		return
	}
	const firstBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	var backoff time.Duration // none: the first reconnect is immediate
	lost := false
	listening := func() {
		if lost {
			log.Info("listening for change-log notifications again; the follower reads what it missed from the log")
			lost = false
		}
	}
	for ctx.Err() == nil {
		healthy, err := s.listenOnce(ctx, wake, listening)
		lost = true
		if ctx.Err() != nil {
			return
		}
		if healthy {
			// A connection that worked and then died (a restart, a
			// failover, pg_terminate_backend) is replaced at once; the
			// backoff is for a database that refuses new connections.
			backoff = 0
			// The pooled connections most likely died with it: each
			// proves it is alive before its next use, and one live
			// connection is opened now, while LISTEN reconnects, so that
			// the catch-up that follows need not wait for it.
			s.connLosses.Add(1)
			go s.warmPool(ctx)
		}
		log.Warn("listen for change-log notifications: following by polling until it is back", "err", err, "retry_in", backoff.String())
		if backoff > 0 && !sleep(ctx, backoff) {
			return
		}
		backoff = min(max(2*backoff, firstBackoff), maxBackoff)
	}
}

// warmPool leaves one live connection in the pool, dropping dead ones.
func (s *Store) warmPool(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s.db.PingContext(ctx)
}

// listenOnce connects, LISTENs, calls listening and wakes the follower on
// each notification until the connection fails. healthy reports that
// LISTEN succeeded.
func (s *Store) listenOnce(ctx context.Context, wake chan<- struct{}, listening func()) (healthy bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pgConfig.Copy())
	if err != nil {
		return false, connectError(s.pgConfig, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return false, err
	}
	signal(wake)
	listening()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, err
		}
		signal(wake)
	}
}

// signal wakes the follower without blocking; one pending wake-up is enough.
func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// How watchSQLite checks for commits by other connections.
const (
	// After a write to the database's files, data_version is checked every
	// hotCheckInterval for hotWindow: the file write that wakes the watcher
	// comes just before SQLite publishes the commit in its shared memory
	// (which makes no file event), so the first check can be too early.
	hotCheckInterval = time.Millisecond
	hotWindow        = 25 * time.Millisecond
	// Without file events (a file system or platform that has none, or
	// the inotify watch limit reached), data_version is polled this often.
	fallbackCheckInterval = 5 * time.Millisecond
)

// watchSQLite wakes the follower when another connection of this process
// or another process commits to the database, until ctx ends.
//
// PRAGMA data_version changes, on the connection that asks, whenever any
// other connection committed. Asking costs microseconds but no I/O; asking
// every millisecond while idle would still cost a wake-up each time, so the
// watcher waits for a write to the database file or its WAL (inotify on
// Linux, through fsnotify) and then checks for hotWindow.
func (s *Store) watchSQLite(ctx context.Context, wake chan<- struct{}, log *slog.Logger) {
	for {
		err := s.watchSQLiteOnce(ctx, wake, log)
		if ctx.Err() != nil {
			return
		}
		log.Warn("watch the sqlite database for changes by other processes: following by polling until it is back", "err", err, "retry_in", "1s")
		if !sleep(ctx, time.Second) {
			return
		}
	}
}

func (s *Store) watchSQLiteOnce(ctx context.Context, wake chan<- struct{}, log *slog.Logger) error {
	// A connection of its own: data_version compares commits with what
	// this connection saw, and it never writes.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open a connection: %w", classify(err))
	}
	defer conn.Close()
	stmt, err := conn.PrepareContext(ctx, "PRAGMA data_version")
	if err != nil {
		return fmt.Errorf("prepare PRAGMA data_version: %w", classify(err))
	}
	defer stmt.Close()
	dataVersion := func() (int64, error) {
		var v int64
		if err := stmt.QueryRowContext(ctx).Scan(&v); err != nil {
			return 0, fmt.Errorf("PRAGMA data_version: %w", classify(err))
		}
		return v, nil
	}
	// The watch first: a commit after it is seen, one before it is read
	// by the catch-up that the signal below starts.
	events, eventErrs, closeWatch, err := watchFiles(s.sqlitePath)
	if err != nil {
		log.Warn("watch the sqlite database files: checking for changes every "+fallbackCheckInterval.String()+" instead", "err", err)
	}
	defer closeWatch()
	seen, err := dataVersion()
	if err != nil {
		return err
	}
	signal(wake)
	check := time.NewTimer(fallbackCheckInterval)
	defer check.Stop()
	if events != nil {
		check.Stop()
	}
	var hotUntil time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-eventErrs:
			log.Warn("watch the sqlite database files", "err", err)
			continue
		case <-events:
			hotUntil = time.Now().Add(hotWindow)
		case <-check.C:
		}
		v, err := dataVersion()
		if err != nil {
			return err
		}
		if v != seen {
			seen = v
			signal(wake)
		}
		switch {
		case events == nil:
			check.Reset(fallbackCheckInterval)
		case time.Now().Before(hotUntil):
			check.Reset(hotCheckInterval)
		}
	}
}

// watchFiles reports writes to the SQLite database at path and to its WAL.
// It watches the directory, since the WAL comes and goes with connections.
// On error the returned channels are nil, so that they block.
func watchFiles(path string) (events <-chan struct{}, errs <-chan error, closeWatch func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, func() {}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		w.Close()
		return nil, nil, func() {}, err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return nil, nil, func() {}, err
	}
	out := make(chan struct{}, 1)
	outErrs := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if (ev.Name == abs || ev.Name == abs+"-wal") && ev.Op&(fsnotify.Write|fsnotify.Create) != 0 {
					select {
					case out <- struct{}{}:
					default:
					}
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				select {
				case outErrs <- err:
				default:
				}
			}
		}
	}()
	return out, outErrs, func() { w.Close(); <-done }, nil
}
