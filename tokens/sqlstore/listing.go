package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/scimgate/scimgate/tokens"
)

// The queries of token management: keyset pages of tokens with their
// owners' names, a token by hash, and the seats report. Each is one indexed
// query (migration 00004 adds the indexes), whatever the size of the org.

// deadlineSQL is the end of a token's inactivity window in Unix
// microseconds: the rule of tokens.Token.InactivityDeadline.
func (t *tx) deadlineSQL(alias string) string {
	greatest := "max"
	if t.dialect == Postgres {
		greatest = "GREATEST"
	}
	return fmt.Sprintf("%[1]s(coalesce(%[2]slast_used_at, 0), %[2]sstatus_changed_at, %[2]screated_at) + %[2]sinactivity_days * %[3]d",
		greatest, alias, microsPerDay)
}

// statusCond selects tokens by the status the authenticator applies at now.
func (t *tx) statusCond(w *where, alias string, st tokens.Status, now int64) {
	deadline := t.deadlineSQL(alias)
	switch st {
	case tokens.StatusActive:
		w.conds = append(w.conds, alias+"status = 'active' AND "+deadline+" >= ?")
		w.args = append(w.args, now)
	case tokens.StatusExpired:
		w.conds = append(w.conds, "("+alias+"status = 'expired' OR ("+alias+"status = 'active' AND "+deadline+" < ?))")
		w.args = append(w.args, now)
	case "":
	default:
		w.add(alias+"status = ?", string(st))
	}
}

type ownedTokenRow struct {
	tokenRow
	OwnerName      sql.NullString `db:"owner_name"`
	PermissionSets sql.NullString `db:"permission_sets"`
}

func (t *tx) TokenPage(f tokens.TokenPageFilter) ([]tokens.OwnedToken, error) {
	if f.OrgID == "" || f.Kind == "" || f.Limit <= 0 {
		return nil, fmt.Errorf("token page: org, kind and limit are required")
	}
	var w where
	w.add("t.org_id = ?", f.OrgID)
	w.add("t.kind = ?", string(f.Kind))
	if f.OwnerID != "" {
		w.add("t.owner_id = ?", f.OwnerID)
	}
	t.statusCond(&w, "t.", f.Status, micros(f.Now))
	if f.NamePrefix != "" {
		// substr and = rather than LIKE: no wildcards to escape, and the
		// same case-sensitive answer on both databases.
		w.conds = append(w.conds, "substr(t.name, 1, ?) = ?")
		w.args = append(w.args, utf8.RuneCountInString(f.NamePrefix), f.NamePrefix)
	}
	if f.AfterID != "" {
		w.conds = append(w.conds, "(t.created_at, t.id) > (?, ?)")
		w.args = append(w.args, micros(f.AfterCreatedAt), f.AfterID)
	}
	// Owners are joined by primary key: a page reads only its own owners.
	owner := "LEFT JOIN users u ON u.id = t.owner_id"
	ownerCols := "u.user_name AS owner_name, NULL AS permission_sets"
	if f.Kind == tokens.KindService {
		owner = "LEFT JOIN service_users su ON su.id = t.owner_id"
		ownerCols = "su.name AS owner_name, su.permission_sets AS permission_sets"
	}
	q := `SELECT ` + prefixed("t.", tokenColumns) + `, ` + ownerCols + ` FROM tokens t ` + owner +
		w.String() + ` ORDER BY t.created_at, t.id LIMIT ?`
	var rows []ownedTokenRow
	if err := t.selectRows(&rows, q, append(w.args, f.Limit)...); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]tokens.OwnedToken, len(rows))
	for i := range rows {
		r := &rows[i]
		out[i] = tokens.OwnedToken{Token: r.token(), OwnerName: r.OwnerName.String}
		if f.Kind == tokens.KindService {
			out[i].PermissionSets = []string{}
			if r.PermissionSets.Valid {
				if err := json.Unmarshal([]byte(r.PermissionSets.String), &out[i].PermissionSets); err != nil {
					return nil, fmt.Errorf("permission sets of token %s: %w", r.ID, err)
				}
			}
		}
	}
	return out, nil
}

func (t *tx) TokenByHash(h tokens.Hash) (*tokens.Token, error) {
	var r tokenRow
	if err := t.get(&r, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, h[:]); err != nil {
		return nil, fmt.Errorf("token by hash: %w", err)
	}
	tok := r.token()
	return &tok, nil
}

func (t *tx) CountSeats(orgID string, now time.Time) (*tokens.Seats, error) {
	var s tokens.Seats
	nowMicros := micros(now)
	counts := []struct {
		dst   *int
		query string
		args  []any
	}{
		{&s.ActivePeople, `SELECT count(*) FROM users WHERE org_id = ? AND active AND NOT removed`, []any{orgID}},
		{&s.PeopleWithActiveTokens, `SELECT count(DISTINCT t.owner_id) FROM tokens t JOIN users u ON u.id = t.owner_id
			WHERE t.org_id = ? AND t.kind = 'user' AND t.status = 'active' AND ` + t.deadlineSQL("t.") + ` >= ?
			AND u.active AND NOT u.removed`, []any{orgID, nowMicros}},
		{&s.ServiceUsers, `SELECT count(*) FROM service_users WHERE org_id = ?`, []any{orgID}},
		{&s.ActiveServiceTokens, `SELECT count(*) FROM tokens t WHERE t.org_id = ? AND t.kind = 'service'
			AND t.status = 'active' AND ` + t.deadlineSQL("t.") + ` >= ?`, []any{orgID, nowMicros}},
	}
	for _, c := range counts {
		if err := t.get(c.dst, c.query, c.args...); err != nil {
			return nil, fmt.Errorf("count seats of org %s: %w", orgID, err)
		}
	}
	return &s, nil
}
