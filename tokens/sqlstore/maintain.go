package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// afterMigrate runs after the migrations: it fills the columns the store
// derives in Go where they are missing, and refreshes the planner's
// statistics, in full when the schema or many rows changed (new indexes
// are chosen by them; SQLite has none until ANALYZE runs), cheaply
// otherwise.
func (s *Store) afterMigrate(ctx context.Context, migrated bool) error {
	filled, err := s.fillDerived(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if migrated || filled > 0 {
		return s.Analyze(ctx)
	}
	return s.Optimize(ctx)
}

// derivedBatch is how many users one transaction of fillDerived updates.
const derivedBatch = 1000

// fillDerived computes users.display_name_lower and users.emails_lower,
// and user_emails.org_id, where they are NULL: in rows older than
// migration 8, or written by an older scimgate during a rolling upgrade
// (which may also leave these columns stale when it changes a user: run
// every replica on one version). It returns how many users it filled.
func (s *Store) fillDerived(ctx context.Context) (int, error) {
	filled := 0
	// In ID order from where the last batch ended: on PostgreSQL the rows
	// filled stay in the partial index until vacuumed, and starting from
	// the first each time would read them all again.
	after := ""
	for {
		n := 0
		err := s.Update(ctx, func(tt tokens.Tx) error {
			t := tt.(*tx)
			var rows []struct {
				ID          string `db:"id"`
				DisplayName string `db:"display_name"`
				Emails      string `db:"emails"`
			}
			err := t.selectRows(&rows, `SELECT id, display_name, emails FROM users
				WHERE (display_name_lower IS NULL OR emails_lower IS NULL) AND id > ? ORDER BY id LIMIT ?`, after, derivedBatch)
			if err != nil {
				return err
			}
			if len(rows) > 0 {
				// One statement for the batch, as RecordUsage does: a
				// statement per user took 40 s for 100,000 on PostgreSQL.
				var q strings.Builder
				args := make([]any, 0, 3*len(rows))
				// SQLite names the columns of VALUES column1, column2, …
				id, d, e := "v.column1", "v.column2", "v.column3"
				if s.dialect == Postgres {
					id, d, e = "v.id", "v.d", "v.e"
				}
				q.WriteString(`UPDATE users SET display_name_lower = ` + d + `, emails_lower = ` + e + ` FROM (VALUES `)
				for i, r := range rows {
					var emails []tokens.Email
					if err := json.Unmarshal([]byte(r.Emails), &emails); err != nil {
						return fmt.Errorf("emails of user %s: %w", r.ID, err)
					}
					if i > 0 {
						q.WriteString(", ")
					}
					q.WriteString("(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT))")
					args = append(args, r.ID, strings.ToLower(r.DisplayName), emailsLower(emails))
				}
				q.WriteString(`) AS v`)
				if s.dialect == Postgres {
					q.WriteString(` (id, d, e)`)
				}
				q.WriteString(` WHERE users.id = ` + id)
				if _, err := t.exec(q.String(), args...); err != nil {
					return err
				}
			}
			n = len(rows)
			if n > 0 {
				after = rows[n-1].ID
			}
			if n < derivedBatch {
				_, err = t.exec(`UPDATE user_emails SET org_id = (SELECT org_id FROM users WHERE users.id = user_emails.user_id)
					WHERE org_id IS NULL`)
			}
			return err
		})
		if err != nil {
			return filled, fmt.Errorf("fill lower-cased columns: %w", err)
		}
		filled += n
		if n < derivedBatch {
			return filled, nil
		}
	}
}

// Optimize refreshes what the query planner needs, cheaply: on SQLite,
// PRAGMA optimize, which analyzes the tables whose statistics are missing
// or out of date (after they grew or shrank tenfold); on PostgreSQL
// nothing, as its autovacuum analyzes tables as they change.
func (s *Store) Optimize(ctx context.Context) error {
	if s.dialect != SQLite {
		return nil
	}
	// 0x10002: analyze what needs it, considering every table (not only
	// those this connection has used).
	if _, err := s.db.ExecContext(ctx, `PRAGMA optimize=0x10002`); err != nil {
		return fmt.Errorf("optimize sqlite database: %w", classify(err))
	}
	return nil
}

// RunOptimizer calls Optimize every interval until ctx is done, logging
// failures: SQLite keeps no statistics by itself, and an org that grew
// from 100 to 100,000 people since the last ANALYZE would be planned as
// the small one. It returns at once on PostgreSQL.
func (s *Store) RunOptimizer(ctx context.Context, every time.Duration, logger *slog.Logger) {
	if s.dialect != SQLite || every <= 0 {
		return
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := s.Optimize(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("optimize the database", "err", err)
		}
	}
}
