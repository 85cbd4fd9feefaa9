package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// Server is a running scimgate server that follows this database's change
// log, as it reports itself in the servers table.
type Server struct {
	ID        string `db:"id"` // random, per process
	Host      string `db:"host"`
	PID       int    `db:"pid"`
	Version   string `db:"version"`
	StartedAt time.Time
	SeenAt    time.Time // its last report
	// AppliedSeq is the last change-log entry it has applied: every change
	// up to it is refused there.
	AppliedSeq int64 `db:"applied_seq"`
}

type serverRow struct {
	Server
	StartedAtMicros int64 `db:"started_at"`
	SeenAtMicros    int64 `db:"seen_at"`
}

// ReportServer records srv as running now, with the change it has applied.
func (s *Store) ReportServer(ctx context.Context, srv Server) error {
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO servers (id, host, pid, version, started_at, seen_at, applied_seq) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, applied_seq = excluded.applied_seq`,
			srv.ID, srv.Host, srv.PID, srv.Version, micros(srv.StartedAt), micros(srv.SeenAt), srv.AppliedSeq)
		return err
	})
	if err != nil {
		return fmt.Errorf("report server %s: %w", srv.ID, err)
	}
	return nil
}

// RemoveServer deletes a stopping server's row, and the rows of servers
// not seen since before (crashed ones), so that the table does not grow.
func (s *Store) RemoveServer(ctx context.Context, id string, before time.Time) error {
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM servers WHERE id = ? OR seen_at < ?`, id, micros(before))
		return err
	})
	if err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	return nil
}

// Servers lists the servers seen since the given time, oldest first.
func (s *Store) Servers(ctx context.Context, seenSince time.Time) ([]Server, error) {
	var rows []serverRow
	err := s.read(ctx, func() error {
		rows = nil
		return s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT id, host, pid, version, started_at, seen_at, applied_seq
			FROM servers WHERE seen_at >= ? ORDER BY started_at, id`), micros(seenSince))
	})
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", classify(err))
	}
	out := make([]Server, len(rows))
	for i, r := range rows {
		out[i] = r.Server
		out[i].StartedAt, out[i].SeenAt = fromMicros(r.StartedAtMicros), fromMicros(r.SeenAtMicros)
	}
	return out, nil
}

// write runs fn in a write transaction of the store's own (not one of
// tokens.Store's Update), serialized like every write on SQLite.
func (s *Store) write(ctx context.Context, fn func(*tx) error) error {
	release, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	return s.noteWrite(s.run(ctx, nil, func(t tokens.Tx) error { return fn(t.(*tx)) }))
}

// ServerReportInterval is how often a running server reports itself when
// nothing changes; ServerGone is how long after its last report a server
// counts as gone (crashed, or cut off from the database).
const (
	ServerReportInterval = 5 * time.Second
	ServerGone           = 3 * ServerReportInterval
)

// RunServerReports keeps srv's row in the servers table until ctx ends,
// then removes it: at once, again whenever applied signals that the
// follower applied more changes (then with applied()), and every
// ServerReportInterval. A report that fails is logged and tried at the next
// occasion; the failure also shows in WriteFailure, and so in readiness.
func (s *Store) RunServerReports(ctx context.Context, srv Server, applied func() int64, changed <-chan struct{}, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tick := time.NewTicker(ServerReportInterval)
	defer tick.Stop()
	failing := false
	for {
		srv.SeenAt, srv.AppliedSeq = time.Now(), applied()
		err := s.ReportServer(ctx, srv)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.Warn("report this server in the database: commands that revoke tokens cannot confirm that it applied them", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("report this server in the database: working again")
			failing = false
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.RemoveServer(rctx, srv.ID, time.Now().Add(-ServerGone)); err != nil {
				log.Warn("remove this server from the database's list of servers", "err", err)
			}
			cancel()
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// Propagation is what AwaitServers found: the servers following the
// database and which of them applied a change.
type Propagation struct {
	Seq     int64
	Applied []Server
	Pending []Server // not confirmed when the wait ended
	// Within is how long after the commit the last of Applied was seen to
	// have applied the change (to the millisecond or so: the table is
	// read every awaitPoll).
	Within time.Duration
}

// awaitPoll is how often AwaitServers reads the servers table.
const awaitPoll = time.Millisecond

// AwaitServers waits until every server seen in the last ServerGone has
// applied change-log entry seq, committed at the given time, or until
// timeout, and reports which did.
func (s *Store) AwaitServers(ctx context.Context, seq int64, committed time.Time, timeout time.Duration) (Propagation, error) {
	p := Propagation{Seq: seq}
	deadline := time.Now().Add(timeout)
	for {
		servers, err := s.Servers(ctx, time.Now().Add(-ServerGone))
		if err != nil {
			return p, err
		}
		seen := time.Since(committed)
		applied := len(p.Applied)
		p.Applied, p.Pending = p.Applied[:0], p.Pending[:0]
		for _, srv := range servers {
			if srv.AppliedSeq >= seq {
				p.Applied = append(p.Applied, srv)
			} else {
				p.Pending = append(p.Pending, srv)
			}
		}
		if len(p.Applied) != applied {
			p.Within = seen
		}
		if len(p.Pending) == 0 || !time.Now().Before(deadline) {
			return p, nil
		}
		if !sleep(ctx, awaitPoll) {
			return p, ctx.Err()
		}
	}
}
