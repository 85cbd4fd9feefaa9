package sqlstore

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen wakes the change-log follower whenever a PostgreSQL transaction
// that appended a change commits, until ctx ends. database/sql cannot receive
// notifications, so it holds one raw pgx connection for LISTEN. After every
// (re)connect it wakes the follower once too: changes committed while it was
// away are read from the log, so none is lost. On SQLite it returns at once:
// the follower polls.
func (s *Store) Listen(ctx context.Context, wake chan<- struct{}, log *slog.Logger) {
	if s.dialect != Postgres {
		return
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		log.Warn("listen for change-log notifications; following by polling until it is back", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	conn, err := pgx.ConnectConfig(ctx, s.pgConfig.Copy())
	if err != nil {
		return connectError(s.pgConfig, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	signal(wake)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
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
