package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/scimgate/scimgate/tokens"
)

// Bulk is a batch of rows for BulkLoad, as the domain describes them. Every
// value must be complete (IDs, times, versions, hashes): BulkLoad writes
// them as they are.
type Bulk struct {
	Users        []tokens.User
	Groups       []tokens.Group // with their members
	ServiceUsers []tokens.ServiceUser
	Tokens       []tokens.Token
}

// bulkTxRows is how many rows one BulkLoad transaction writes. Rows with
// random keys (IDs, hashes) dirty pages all over the indexes, and every
// commit writes each dirty page again (to SQLite's WAL): measured with 300k
// tokens on SQLite, transactions of 20,000 rows fill 1.75 times faster than
// of 5,000, and still hold the write lock for well under a second.
const bulkTxRows = 20000

// maxBulkParams bounds the parameters of one multi-row INSERT, under
// SQLite's 32766 and PostgreSQL's 65535.
const maxBulkParams = 30000

// BulkLoad inserts many rows quickly, with multi-row INSERTs in transactions
// of a few thousand rows, in the order users, groups (with their members),
// service users, tokens. It is for benchmarks and load tests (see
// cmd/scimgate-fill): it bypasses tokens.Service, so no rule is checked (the
// token limits, unique names across batches), no audit event and no
// change-log entry is written. Running servers learn nothing of what it
// adds: fill a database before starting them, or restart them after.
//
// A batch that fails part way leaves the transactions already committed.
func (s *Store) BulkLoad(ctx context.Context, b Bulk) error {
	if err := bulkInsert(ctx, s, "users", userInsertColumns, len(b.Users), func(i int) []any {
		return userInsertValues(&b.Users[i])
	}); err != nil {
		return fmt.Errorf("bulk load users: %w", err)
	}
	var emails [][3]string
	for i := range b.Users {
		for _, a := range lowerEmails(b.Users[i].Emails) {
			emails = append(emails, [3]string{b.Users[i].ID, a, b.Users[i].OrgID})
		}
	}
	if err := bulkInsert(ctx, s, "user_emails", []string{"user_id", "email", "org_id"}, len(emails), func(i int) []any {
		return []any{emails[i][0], emails[i][1], emails[i][2]}
	}); err != nil {
		return fmt.Errorf("bulk load user emails: %w", err)
	}
	if err := bulkInsert(ctx, s, "groups", groupInsertColumns, len(b.Groups), func(i int) []any {
		return groupInsertValues(&b.Groups[i])
	}); err != nil {
		return fmt.Errorf("bulk load groups: %w", err)
	}
	var members [][2]string
	for _, g := range b.Groups {
		for _, id := range slices.Compact(slices.Sorted(slices.Values(g.MemberIDs))) {
			members = append(members, [2]string{g.ID, id})
		}
	}
	if err := bulkInsert(ctx, s, "group_members", []string{"group_id", "user_id"}, len(members), func(i int) []any {
		return []any{members[i][0], members[i][1]}
	}); err != nil {
		return fmt.Errorf("bulk load group members: %w", err)
	}
	if err := bulkInsert(ctx, s, "service_users", []string{"id", "org_id", "name", "permission_sets", "created_at"},
		len(b.ServiceUsers), func(i int) []any {
			su := &b.ServiceUsers[i]
			return []any{su.ID, su.OrgID, su.Name, setsJSON(su.PermissionSets), micros(su.CreatedAt)}
		}); err != nil {
		return fmt.Errorf("bulk load service users: %w", err)
	}
	if err := bulkInsert(ctx, s, "tokens", strings.Split(tokenColumns, ", "), len(b.Tokens), func(i int) []any {
		return tokenInsertValues(&b.Tokens[i])
	}); err != nil {
		return fmt.Errorf("bulk load tokens: %w", err)
	}
	return nil
}

// bulkInsert writes n rows of table, row(i) giving the values of the i-th
// in the order of columns.
func bulkInsert(ctx context.Context, s *Store, table string, columns []string, n int, row func(i int) []any) error {
	perStatement := max(1, min(1000, maxBulkParams/len(columns)))
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")"
	for start := 0; start < n; start += bulkTxRows {
		end := min(n, start+bulkTxRows)
		err := s.Update(ctx, func(tt tokens.Tx) error {
			t := tt.(*tx)
			if s.dialect == SQLite {
				// Random keys (IDs, hashes) touch pages all over the
				// indexes: a page cache of 2 MB, the default, would
				// write and read them back again and again.
				if _, err := t.exec(`PRAGMA cache_size = -1048576`); err != nil {
					return err
				}
			}
			for from := start; from < end; from += perStatement {
				to := min(end, from+perStatement)
				var q strings.Builder
				q.WriteString("INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES ")
				args := make([]any, 0, (to-from)*len(columns))
				for i := from; i < to; i++ {
					if i > from {
						q.WriteString(", ")
					}
					q.WriteString(tuple)
					args = append(args, row(i)...)
				}
				if _, err := t.exec(q.String(), args...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("rows %d to %d: %w", start, end, err)
		}
	}
	return nil
}

// Analyze refreshes the statistics the query planner chooses indexes by,
// in full, as is worth doing after loading many rows or adding indexes:
// ANALYZE on SQLite; VACUUM (ANALYZE) on PostgreSQL, whose vacuum also
// marks the pages whose rows every transaction sees, without which an
// index-only scan still reads the table. On PostgreSQL only the tables of
// the store's own schema are vacuumed: a bare VACUUM would work through
// every table of the database, other applications' and other schemas'
// included.
func (s *Store) Analyze(ctx context.Context) error {
	q := "ANALYZE"
	if s.dialect == Postgres {
		var tables string
		err := s.db.GetContext(ctx, &tables, `SELECT coalesce(string_agg(quote_ident(schemaname) || '.' || quote_ident(tablename), ', '), '')
			FROM pg_tables WHERE schemaname = current_schema()`)
		if err != nil {
			return fmt.Errorf("analyze %s database: %w", s.dialect, classify(err))
		}
		if tables == "" {
			return nil
		}
		q = "VACUUM (ANALYZE) " + tables
	}
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("analyze %s database: %w", s.dialect, classify(err))
	}
	return nil
}
