package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/scimgate/scimgate/tokens"
)

// tx is a tokens.Tx. It keeps the context of the transaction because the
// Tx methods take none: it lives exactly as long as the transaction.
type tx struct {
	ctx     context.Context
	tx      *sqlx.Tx
	dialect string
}

// Statements are written with ? placeholders; Rebind turns them into $n on
// PostgreSQL.

func (t *tx) get(dest any, query string, args ...any) error {
	return classify(t.tx.GetContext(t.ctx, dest, t.tx.Rebind(query), args...))
}

func (t *tx) selectRows(dest any, query string, args ...any) error {
	return classify(t.tx.SelectContext(t.ctx, dest, t.tx.Rebind(query), args...))
}

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(t.ctx, t.tx.Rebind(query), args...)
	return res, classify(err)
}

// execOne runs a statement that must change exactly one row, and reports
// tokens.ErrNotFound if it changed none.
func (t *tx) execOne(query string, args ...any) error {
	res, err := t.exec(query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return classify(err)
	} else if n == 0 {
		return tokens.ErrNotFound
	}
	return nil
}

// forUpdate locks the rows a query reads until the transaction ends. On
// SQLite the transaction holds the database's write lock from BEGIN, which
// is already more.
func (t *tx) forUpdate() string {
	if t.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// where builds a WHERE clause from the filter fields that are set.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, arg)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// page turns Offset and Count (0: all) into LIMIT and OFFSET arguments.
func page(offset, count int) (limit, skip int) {
	if count <= 0 {
		count = math.MaxInt32
	}
	return count, max(offset, 0)
}

// ---- Orgs ----

const orgColumns = "id, name, user_token_inactivity_days, created_at"

type orgRow struct {
	ID                      string `db:"id"`
	Name                    string `db:"name"`
	UserTokenInactivityDays int    `db:"user_token_inactivity_days"`
	CreatedAt               int64  `db:"created_at"`
}

func (r orgRow) org() *tokens.Org {
	return &tokens.Org{ID: r.ID, Name: r.Name, UserTokenInactivityDays: r.UserTokenInactivityDays, CreatedAt: fromMicros(r.CreatedAt)}
}

func (t *tx) CreateOrg(o *tokens.Org) error {
	_, err := t.exec(`INSERT INTO orgs (`+orgColumns+`) VALUES (?, ?, ?, ?)`,
		o.ID, o.Name, o.UserTokenInactivityDays, micros(o.CreatedAt))
	if err != nil {
		return fmt.Errorf("create org %q: %w", o.Name, err)
	}
	return nil
}

func (t *tx) Org(id string) (*tokens.Org, error) { return t.org("org "+id, "id = ?", id) }

func (t *tx) OrgByName(name string) (*tokens.Org, error) {
	return t.org(fmt.Sprintf("org %q", name), "name = ?", name)
}

func (t *tx) LockOrg(id string) (*tokens.Org, error) {
	return t.org("lock org "+id, "id = ?"+t.forUpdate(), id)
}

func (t *tx) org(what, cond string, arg any) (*tokens.Org, error) {
	var r orgRow
	if err := t.get(&r, `SELECT `+orgColumns+` FROM orgs WHERE `+cond, arg); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return r.org(), nil
}

func (t *tx) Orgs() ([]tokens.Org, error) {
	var rows []orgRow
	if err := t.selectRows(&rows, `SELECT `+orgColumns+` FROM orgs ORDER BY created_at, id`); err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	out := make([]tokens.Org, len(rows))
	for i, r := range rows {
		out[i] = *r.org()
	}
	return out, nil
}

// ---- Users ----

const userColumns = "id, org_id, user_name, external_id, display_name, given_name, family_name, emails, " +
	"employee_number, manager_id, active, removed, created_at, updated_at, version"

type userRow struct {
	ID             string `db:"id"`
	OrgID          string `db:"org_id"`
	UserName       string `db:"user_name"`
	ExternalID     string `db:"external_id"`
	DisplayName    string `db:"display_name"`
	GivenName      string `db:"given_name"`
	FamilyName     string `db:"family_name"`
	Emails         string `db:"emails"`
	EmployeeNumber string `db:"employee_number"`
	ManagerID      string `db:"manager_id"`
	Active         bool   `db:"active"`
	Removed        bool   `db:"removed"`
	CreatedAt      int64  `db:"created_at"`
	UpdatedAt      int64  `db:"updated_at"`
	Version        int64  `db:"version"`
}

func (r *userRow) user() (*tokens.User, error) {
	u := &tokens.User{ID: r.ID, OrgID: r.OrgID, UserName: r.UserName, ExternalID: r.ExternalID,
		DisplayName: r.DisplayName, GivenName: r.GivenName, FamilyName: r.FamilyName,
		EmployeeNumber: r.EmployeeNumber, ManagerID: r.ManagerID, Active: r.Active, Removed: r.Removed,
		CreatedAt: fromMicros(r.CreatedAt), UpdatedAt: fromMicros(r.UpdatedAt), Version: r.Version}
	if err := json.Unmarshal([]byte(r.Emails), &u.Emails); err != nil {
		return nil, fmt.Errorf("emails of user %s: %w", r.ID, err)
	}
	return u, nil
}

func emailsJSON(emails []tokens.Email) string {
	if emails == nil {
		emails = []tokens.Email{}
	}
	b, _ := json.Marshal(emails) // cannot fail: strings and a bool
	return string(b)
}

// userInsertColumns are the columns a new user's row is written with: the
// domain's, and the lower-cased copies that the indexes search.
var userInsertColumns = append(strings.Split(userColumns, ", "), "user_name_lower", "display_name_lower", "emails_lower")

// userInsertValues are the values of userInsertColumns for u.
func userInsertValues(u *tokens.User) []any {
	return []any{u.ID, u.OrgID, u.UserName, u.ExternalID, u.DisplayName, u.GivenName, u.FamilyName, emailsJSON(u.Emails),
		u.EmployeeNumber, u.ManagerID, u.Active, u.Removed, micros(u.CreatedAt), micros(u.UpdatedAt), u.Version,
		strings.ToLower(u.UserName), strings.ToLower(u.DisplayName), emailsLower(u.Emails)}
}

// emailsLower is users.emails_lower: a user's lower-cased addresses,
// joined by emailSep, which "emails co" searches (see query.go).
func emailsLower(emails []tokens.Email) string {
	return strings.Join(lowerEmails(emails), emailSep)
}

// insertStatement is an INSERT of one row into columns of table.
func insertStatement(table string, columns []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")"
}

func (t *tx) CreateUser(u *tokens.User) error {
	_, err := t.exec(insertStatement("users", userInsertColumns), userInsertValues(u)...)
	if err == nil {
		err = t.writeEmails(u)
	}
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.UserName, err)
	}
	return nil
}

func (t *tx) UpdateUser(u *tokens.User) error {
	err := t.execOne(`UPDATE users SET user_name = ?, user_name_lower = ?, external_id = ?, display_name = ?,
		given_name = ?, family_name = ?, emails = ?, employee_number = ?, manager_id = ?, active = ?, removed = ?,
		created_at = ?, updated_at = ?, version = ?, display_name_lower = ?, emails_lower = ?
		WHERE org_id = ? AND id = ?`,
		u.UserName, strings.ToLower(u.UserName), u.ExternalID, u.DisplayName, u.GivenName, u.FamilyName,
		emailsJSON(u.Emails), u.EmployeeNumber, u.ManagerID, u.Active, u.Removed,
		micros(u.CreatedAt), micros(u.UpdatedAt), u.Version, strings.ToLower(u.DisplayName), emailsLower(u.Emails),
		u.OrgID, u.ID)
	if err == nil {
		err = t.writeEmails(u)
	}
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.ID, err)
	}
	return nil
}

// writeEmails replaces the lower-cased addresses that UserFilter.Email
// searches.
func (t *tx) writeEmails(u *tokens.User) error {
	if _, err := t.exec(`DELETE FROM user_emails WHERE user_id = ?`, u.ID); err != nil {
		return err
	}
	// One statement per inChunk addresses: a user with thousands of them
	// costs a few round trips, not thousands.
	for chunk := range slices.Chunk(lowerEmails(u.Emails), inChunk) {
		q := `INSERT INTO user_emails (user_id, email, org_id) VALUES ` + strings.Repeat("(?, ?, ?), ", len(chunk)-1) + "(?, ?, ?)"
		args := make([]any, 0, 3*len(chunk))
		for _, a := range chunk {
			args = append(args, u.ID, a, u.OrgID)
		}
		if _, err := t.exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// lowerEmails are the distinct lower-cased addresses of a user, sorted.
func lowerEmails(emails []tokens.Email) []string {
	var addrs []string
	for _, e := range emails {
		addrs = append(addrs, strings.ToLower(e.Value))
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}

func (t *tx) User(orgID, id string) (*tokens.User, error) {
	return t.user("user "+id, "org_id = ? AND id = ?", orgID, id)
}

func (t *tx) UserByName(orgID, userName string) (*tokens.User, error) {
	return t.user(fmt.Sprintf("user %q", userName), "org_id = ? AND user_name_lower = ? AND NOT removed", orgID, strings.ToLower(userName))
}

func (t *tx) LockUser(orgID, id string) (*tokens.User, error) {
	return t.user("lock user "+id, "org_id = ? AND id = ?"+t.forUpdate(), orgID, id)
}

func (t *tx) user(what, cond string, args ...any) (*tokens.User, error) {
	var r userRow
	if err := t.get(&r, `SELECT `+userColumns+` FROM users WHERE `+cond, args...); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	u, err := r.user()
	if err != nil {
		return nil, err
	}
	users := []tokens.User{*u}
	if err := t.fillSites(users); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &users[0], nil
}

func (t *tx) Users(orgID string, f tokens.UserFilter) ([]tokens.User, int, error) {
	var w where
	w.add("org_id = ?", orgID)
	if !f.WithRemoved {
		w.conds = append(w.conds, "NOT removed")
	}
	if f.UserName != "" {
		w.add("user_name_lower = ?", strings.ToLower(f.UserName))
	}
	if f.ExternalID != "" {
		w.add("external_id = ?", f.ExternalID)
	}
	if f.Email != "" {
		w.add("id IN (SELECT user_id FROM user_emails WHERE email = ?)", strings.ToLower(f.Email))
	}
	var total int
	if err := t.get(&total, `SELECT count(*) FROM users`+w.String(), w.args...); err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	limit, offset := page(f.Offset, f.Count)
	var rows []userRow
	err := t.selectRows(&rows, `SELECT `+userColumns+` FROM users`+w.String()+` ORDER BY created_at, id LIMIT ? OFFSET ?`,
		append(w.args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	out := make([]tokens.User, len(rows))
	for i := range rows {
		u, err := rows[i].user()
		if err != nil {
			return nil, 0, fmt.Errorf("list users: %w", err)
		}
		out[i] = *u
	}
	if err := t.fillSites(out); err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	return out, total, nil
}

// ---- Groups ----

const groupColumns = "id, org_id, display_name, external_id, created_at, updated_at, version"

type groupRow struct {
	ID          string `db:"id"`
	OrgID       string `db:"org_id"`
	DisplayName string `db:"display_name"`
	ExternalID  string `db:"external_id"`
	CreatedAt   int64  `db:"created_at"`
	UpdatedAt   int64  `db:"updated_at"`
	Version     int64  `db:"version"`
}

func (r groupRow) group() tokens.Group {
	return tokens.Group{ID: r.ID, OrgID: r.OrgID, DisplayName: r.DisplayName, ExternalID: r.ExternalID,
		CreatedAt: fromMicros(r.CreatedAt), UpdatedAt: fromMicros(r.UpdatedAt), Version: r.Version}
}

// groupInsertColumns are the columns a new group's row is written with.
var groupInsertColumns = append(strings.Split(groupColumns, ", "), "display_name_lower")

// groupInsertValues are the values of groupInsertColumns for g.
func groupInsertValues(g *tokens.Group) []any {
	return []any{g.ID, g.OrgID, g.DisplayName, g.ExternalID, micros(g.CreatedAt), micros(g.UpdatedAt), g.Version,
		strings.ToLower(g.DisplayName)}
}

func (t *tx) CreateGroup(g *tokens.Group) error {
	_, err := t.exec(insertStatement("groups", groupInsertColumns), groupInsertValues(g)...)
	if err == nil {
		err = t.insertMembers(g.ID, g.MemberIDs)
	}
	if err != nil {
		return fmt.Errorf("create group %q: %w", g.DisplayName, err)
	}
	return nil
}

func (t *tx) UpdateGroup(g *tokens.Group) error {
	err := t.execOne(`UPDATE groups SET display_name = ?, display_name_lower = ?, external_id = ?,
		created_at = ?, updated_at = ?, version = ? WHERE org_id = ? AND id = ?`,
		g.DisplayName, strings.ToLower(g.DisplayName), g.ExternalID, micros(g.CreatedAt), micros(g.UpdatedAt),
		g.Version, g.OrgID, g.ID)
	if err == nil {
		err = t.replaceMembers(g.ID, g.MemberIDs)
	}
	if err != nil {
		return fmt.Errorf("update group %s: %w", g.ID, err)
	}
	return nil
}

// replaceMembers makes a group's members userIDs, writing only the
// difference: one member more or less in a group of 100,000 is one row,
// not 100,000 deleted and written again.
func (t *tx) replaceMembers(groupID string, userIDs []string) error {
	var current []string
	if err := t.selectRows(&current, `SELECT user_id FROM group_members WHERE group_id = ?`, groupID); err != nil {
		return err
	}
	want := make(map[string]bool, len(userIDs))
	for _, id := range userIDs {
		want[id] = true
	}
	var gone []string
	for _, id := range current {
		if want[id] {
			delete(want, id) // already a member
		} else {
			gone = append(gone, id)
		}
	}
	for chunk := range slices.Chunk(gone, 500) {
		q, args, err := sqlx.In(`DELETE FROM group_members WHERE group_id = ? AND user_id IN (?)`, groupID, chunk)
		if err != nil {
			return err
		}
		if _, err := t.exec(q, args...); err != nil {
			return err
		}
	}
	added := make([]string, 0, len(want))
	for id := range want {
		added = append(added, id)
	}
	return t.insertMembers(groupID, added)
}

// insertMembers adds members with one statement per 500 of them.
func (t *tx) insertMembers(groupID string, userIDs []string) error {
	userIDs = slices.Compact(slices.Sorted(slices.Values(userIDs)))
	for chunk := range slices.Chunk(userIDs, 500) {
		q := `INSERT INTO group_members (group_id, user_id) VALUES ` +
			strings.Repeat("(?, ?), ", len(chunk)-1) + "(?, ?)"
		args := make([]any, 0, 2*len(chunk))
		for _, id := range chunk {
			args = append(args, groupID, id)
		}
		if _, err := t.exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) DeleteGroup(orgID, id string) error {
	_, err := t.exec(`DELETE FROM group_members WHERE group_id IN (SELECT id FROM groups WHERE org_id = ? AND id = ?)`, orgID, id)
	if err == nil {
		err = t.execOne(`DELETE FROM groups WHERE org_id = ? AND id = ?`, orgID, id)
	}
	if err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	return nil
}

func (t *tx) Group(orgID, id string) (*tokens.Group, error) {
	return t.group(orgID, id, "")
}

func (t *tx) LockGroup(orgID, id string) (*tokens.Group, error) {
	return t.group(orgID, id, t.forUpdate())
}

func (t *tx) group(orgID, id, lock string) (*tokens.Group, error) {
	var r groupRow
	if err := t.get(&r, `SELECT `+groupColumns+` FROM groups WHERE org_id = ? AND id = ?`+lock, orgID, id); err != nil {
		return nil, fmt.Errorf("group %s: %w", id, err)
	}
	g := []tokens.Group{r.group()}
	if err := t.fillMembers(g); err != nil {
		return nil, fmt.Errorf("group %s: %w", id, err)
	}
	return &g[0], nil
}

func (t *tx) Groups(orgID string, f tokens.GroupFilter) ([]tokens.Group, int, error) {
	var w where
	w.add("org_id = ?", orgID)
	if f.DisplayName != "" {
		w.add("display_name_lower = ?", strings.ToLower(f.DisplayName))
	}
	if f.ExternalID != "" {
		w.add("external_id = ?", f.ExternalID)
	}
	if f.MemberID != "" {
		w.add("id IN (SELECT group_id FROM group_members WHERE user_id = ?)", f.MemberID)
	}
	var total int
	if err := t.get(&total, `SELECT count(*) FROM groups`+w.String(), w.args...); err != nil {
		return nil, 0, fmt.Errorf("count groups: %w", err)
	}
	limit, offset := page(f.Offset, f.Count)
	var rows []groupRow
	err := t.selectRows(&rows, `SELECT `+groupColumns+` FROM groups`+w.String()+` ORDER BY created_at, id LIMIT ? OFFSET ?`,
		append(w.args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list groups: %w", err)
	}
	out := make([]tokens.Group, len(rows))
	for i, r := range rows {
		out[i] = r.group()
	}
	if err := t.fillMembers(out); err != nil {
		return nil, 0, fmt.Errorf("list groups: %w", err)
	}
	return out, total, nil
}

// fillMembers reads the members of groups in one query, sorted by user ID.
func (t *tx) fillMembers(groups []tokens.Group) error {
	if len(groups) == 0 {
		return nil
	}
	index := make(map[string]int, len(groups))
	ids := make([]string, len(groups))
	for i, g := range groups {
		index[g.ID] = i
		ids[i] = g.ID
	}
	q, args, err := sqlx.In(`SELECT group_id, user_id FROM group_members WHERE group_id IN (?)`, ids)
	if err != nil {
		return err
	}
	// Scanned by hand: a large group has 100,000 members, and sqlx's
	// reflection and a string per group ID cost more than the query.
	rows, err := t.tx.QueryContext(t.ctx, t.tx.Rebind(q), args...)
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	var groupID sql.RawBytes
	var userID string
	for rows.Next() {
		if err := rows.Scan(&groupID, &userID); err != nil {
			return classify(err)
		}
		g := &groups[index[string(groupID)]]
		g.MemberIDs = append(g.MemberIDs, userID)
	}
	if err := rows.Err(); err != nil {
		return classify(err)
	}
	for i := range groups {
		sort.Strings(groups[i].MemberIDs) // the databases' collations may differ
	}
	return nil
}

func (t *tx) GroupsOfUser(userID string) ([]string, error) {
	var names []string
	err := t.selectRows(&names, `SELECT g.display_name FROM group_members m JOIN groups g ON g.id = m.group_id
		WHERE m.user_id = ?`, userID)
	if err != nil {
		return nil, fmt.Errorf("groups of user %s: %w", userID, err)
	}
	// Sorted here, not by the databases, whose collations differ.
	sort.Strings(names)
	return names, nil
}

// ---- Service users ----

type serviceUserRow struct {
	ID             string `db:"id"`
	OrgID          string `db:"org_id"`
	Name           string `db:"name"`
	PermissionSets string `db:"permission_sets"`
	CreatedAt      int64  `db:"created_at"`
}

func setsJSON(sets []string) string {
	if sets == nil {
		sets = []string{}
	}
	b, _ := json.Marshal(sets) // cannot fail: strings
	return string(b)
}

func (t *tx) CreateServiceUser(s *tokens.ServiceUser) error {
	_, err := t.exec(`INSERT INTO service_users (id, org_id, name, permission_sets, created_at) VALUES (?, ?, ?, ?, ?)`,
		s.ID, s.OrgID, s.Name, setsJSON(s.PermissionSets), micros(s.CreatedAt))
	if err != nil {
		return fmt.Errorf("create service user %q: %w", s.Name, err)
	}
	return nil
}

func (t *tx) UpdateServiceUser(s *tokens.ServiceUser) error {
	err := t.execOne(`UPDATE service_users SET name = ?, permission_sets = ?, created_at = ? WHERE org_id = ? AND id = ?`,
		s.Name, setsJSON(s.PermissionSets), micros(s.CreatedAt), s.OrgID, s.ID)
	if err != nil {
		return fmt.Errorf("update service user %s: %w", s.ID, err)
	}
	return nil
}

func (t *tx) ServiceUser(orgID, id string) (*tokens.ServiceUser, error) {
	var r serviceUserRow
	err := t.get(&r, `SELECT id, org_id, name, permission_sets, created_at FROM service_users WHERE org_id = ? AND id = ?`, orgID, id)
	if err != nil {
		return nil, fmt.Errorf("service user %s: %w", id, err)
	}
	s := &tokens.ServiceUser{ID: r.ID, OrgID: r.OrgID, Name: r.Name, CreatedAt: fromMicros(r.CreatedAt)}
	if err := json.Unmarshal([]byte(r.PermissionSets), &s.PermissionSets); err != nil {
		return nil, fmt.Errorf("permission sets of service user %s: %w", id, err)
	}
	return s, nil
}

func (t *tx) DeleteServiceUser(orgID, id string) error {
	if err := t.execOne(`DELETE FROM service_users WHERE org_id = ? AND id = ?`, orgID, id); err != nil {
		return fmt.Errorf("delete service user %s: %w", id, err)
	}
	return nil
}

// ---- Tokens ----

const tokenColumns = "id, org_id, kind, owner_id, name, display_prefix, hash, inactivity_days, " +
	"status, status_reason, status_changed_at, created_at, last_used_at, use_count"

type tokenRow struct {
	ID              string        `db:"id"`
	OrgID           string        `db:"org_id"`
	Kind            string        `db:"kind"`
	OwnerID         string        `db:"owner_id"`
	Name            string        `db:"name"`
	DisplayPrefix   string        `db:"display_prefix"`
	Hash            []byte        `db:"hash"`
	InactivityDays  int           `db:"inactivity_days"`
	Status          string        `db:"status"`
	StatusReason    string        `db:"status_reason"`
	StatusChangedAt int64         `db:"status_changed_at"`
	CreatedAt       int64         `db:"created_at"`
	LastUsedAt      sql.NullInt64 `db:"last_used_at"`
	UseCount        int64         `db:"use_count"`
}

func (r *tokenRow) token() tokens.Token {
	tok := tokens.Token{ID: r.ID, OrgID: r.OrgID, Kind: tokens.Kind(r.Kind), OwnerID: r.OwnerID, Name: r.Name,
		DisplayPrefix: r.DisplayPrefix, InactivityDays: r.InactivityDays, Status: tokens.Status(r.Status),
		StatusReason: tokens.Reason(r.StatusReason), StatusChangedAt: fromMicros(r.StatusChangedAt),
		CreatedAt: fromMicros(r.CreatedAt), UseCount: r.UseCount}
	copy(tok.Hash[:], r.Hash)
	if r.LastUsedAt.Valid {
		tok.LastUsedAt = fromMicros(r.LastUsedAt.Int64)
	}
	return tok
}

// tokenInsertValues are the values of tokenColumns for tok.
func tokenInsertValues(tok *tokens.Token) []any {
	return []any{tok.ID, tok.OrgID, string(tok.Kind), tok.OwnerID, tok.Name, tok.DisplayPrefix, tok.Hash[:], tok.InactivityDays,
		string(tok.Status), string(tok.StatusReason), micros(tok.StatusChangedAt), micros(tok.CreatedAt),
		nullMicros(tok.LastUsedAt), tok.UseCount}
}

func (t *tx) CreateToken(tok *tokens.Token) error {
	_, err := t.exec(insertStatement("tokens", strings.Split(tokenColumns, ", ")), tokenInsertValues(tok)...)
	if err != nil {
		return fmt.Errorf("create token %s: %w", tok.ID, err)
	}
	return nil
}

func (t *tx) UpdateToken(tok *tokens.Token) error {
	err := t.execOne(`UPDATE tokens SET name = ?, display_prefix = ?, hash = ?, inactivity_days = ?,
		status = ?, status_reason = ?, status_changed_at = ? WHERE org_id = ? AND id = ?`,
		tok.Name, tok.DisplayPrefix, tok.Hash[:], tok.InactivityDays,
		string(tok.Status), string(tok.StatusReason), micros(tok.StatusChangedAt), tok.OrgID, tok.ID)
	if err != nil {
		return fmt.Errorf("update token %s: %w", tok.ID, err)
	}
	return nil
}

func (t *tx) DeleteToken(orgID, id string) error {
	if err := t.execOne(`DELETE FROM tokens WHERE org_id = ? AND id = ?`, orgID, id); err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	return nil
}

func (t *tx) Token(orgID, id string) (*tokens.Token, error) {
	var w where
	w.add("id = ?", id)
	if orgID != "" {
		w.add("org_id = ?", orgID)
	}
	var r tokenRow
	if err := t.get(&r, `SELECT `+tokenColumns+` FROM tokens`+w.String(), w.args...); err != nil {
		return nil, fmt.Errorf("token %s: %w", id, err)
	}
	tok := r.token()
	return &tok, nil
}

func tokenWhere(f tokens.TokenFilter) *where {
	var w where
	if f.OrgID != "" {
		w.add("org_id = ?", f.OrgID)
	}
	if f.Kind != "" {
		w.add("kind = ?", string(f.Kind))
	}
	if f.OwnerID != "" {
		w.add("owner_id = ?", f.OwnerID)
	}
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	return &w
}

func (t *tx) Tokens(f tokens.TokenFilter) ([]tokens.Token, error) {
	w := tokenWhere(f)
	return t.tokens("list tokens", `SELECT `+tokenColumns+` FROM tokens`+w.String()+` ORDER BY created_at, id`, w.args...)
}

func (t *tx) tokens(what, query string, args ...any) ([]tokens.Token, error) {
	var rows []tokenRow
	if err := t.selectRows(&rows, query, args...); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]tokens.Token, len(rows))
	for i := range rows {
		out[i] = rows[i].token()
	}
	return out, nil
}

func (t *tx) CountTokens(f tokens.TokenFilter) (int, error) {
	w := tokenWhere(f)
	var n int
	if err := t.get(&n, `SELECT count(*) FROM tokens`+w.String(), w.args...); err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}

// microsPerDay converts inactivity_days to the unit of the timestamps.
const microsPerDay = 86_400_000_000

func (t *tx) InactiveTokens(now time.Time) ([]tokens.Token, error) {
	// The inactivity clock restarts at the last use, at creation, and when
	// the status last changed (a regenerated token starts afresh).
	greatest := "max"
	if t.dialect == Postgres {
		greatest = "GREATEST"
	}
	return t.tokens("inactive tokens", `SELECT `+tokenColumns+` FROM tokens
		WHERE status = 'active'
		AND `+greatest+`(coalesce(last_used_at, 0), status_changed_at, created_at) + inactivity_days * `+fmt.Sprint(microsPerDay)+` < ?
		ORDER BY created_at, id`, micros(now))
}

// ---- Audit ----

type auditRow struct {
	ID     int64  `db:"id"`
	OrgID  string `db:"org_id"`
	At     int64  `db:"at"`
	Actor  string `db:"actor"`
	Action string `db:"action"`
	Target string `db:"target"`
	Detail string `db:"detail"`
}

func (t *tx) AppendAudit(e *tokens.AuditEvent) error {
	err := t.get(&e.ID, `INSERT INTO audit_events (org_id, at, actor, action, target, detail)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		e.OrgID, micros(e.At), e.Actor, e.Action, e.Target, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit event %s: %w", e.Action, err)
	}
	return nil
}

func (t *tx) Audit(f tokens.AuditFilter) ([]tokens.AuditEvent, error) {
	var w where
	if f.OrgID != "" {
		w.add("org_id = ?", f.OrgID)
	}
	if f.Target != "" {
		w.add("target = ?", f.Target)
	}
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	if f.BeforeID != 0 {
		w.add("id < ?", f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var rows []auditRow
	err := t.selectRows(&rows, `SELECT id, org_id, at, actor, action, target, detail FROM audit_events`+
		w.String()+` ORDER BY id DESC LIMIT ?`, append(w.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	out := make([]tokens.AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = tokens.AuditEvent{ID: r.ID, OrgID: r.OrgID, At: fromMicros(r.At), Actor: r.Actor,
			Action: r.Action, Target: r.Target, Detail: r.Detail}
	}
	return out, nil
}

// ---- Change log ----

type changeRow struct {
	Seq     int64  `db:"seq"`
	TokenID string `db:"token_id"`
	OwnerID string `db:"owner_id"`
	At      int64  `db:"at"`
	// Index keys are unsigned; both databases store them as signed 64 bits.
	HashAdded   int64 `db:"hash_added"`
	HashRemoved int64 `db:"hash_removed"`
}

func (r changeRow) change() tokens.Change {
	return tokens.Change{Seq: r.Seq, TokenID: r.TokenID, OwnerID: r.OwnerID, At: fromMicros(r.At),
		Added: uint64(r.HashAdded), Removed: uint64(r.HashRemoved)}
}

// AppendChange adds c to the change log and sets c.Seq.
//
// Followers read the log as "every change above the last sequence I
// applied", so a sequence must never become visible after a higher one. On
// PostgreSQL sequence numbers are handed out without waiting for commits, so
// appends take an advisory lock held until commit: the next append, and its
// number, come after this one commits. SQLite has one writer at a time.
func (t *tx) AppendChange(c *tokens.Change) error {
	if t.dialect == Postgres {
		if _, err := t.exec(`SELECT pg_advisory_xact_lock(?)`, int64(changeLogLock)); err != nil {
			return fmt.Errorf("append change: lock the change log: %w", err)
		}
	}
	err := t.get(&c.Seq, `INSERT INTO changes (token_id, owner_id, at, hash_added, hash_removed) VALUES (?, ?, ?, ?, ?) RETURNING seq`,
		c.TokenID, c.OwnerID, micros(c.At), int64(c.Added), int64(c.Removed))
	if err != nil {
		return fmt.Errorf("append change: %w", err)
	}
	if t.dialect == Postgres {
		// Delivered at commit, and not at all on rollback.
		if _, err := t.exec(`SELECT pg_notify(?, ?)`, NotifyChannel, fmt.Sprint(c.Seq)); err != nil {
			return fmt.Errorf("append change: notify: %w", err)
		}
	}
	return nil
}

// ---- Console sessions ----

const sessionColumns = "id, hash, org_id, user_id, token_id, method, created_at, last_seen_at, expires_at"

type sessionRow struct {
	ID         string `db:"id"`
	Hash       []byte `db:"hash"`
	OrgID      string `db:"org_id"`
	UserID     string `db:"user_id"`
	TokenID    string `db:"token_id"`
	Method     string `db:"method"`
	CreatedAt  int64  `db:"created_at"`
	LastSeenAt int64  `db:"last_seen_at"`
	ExpiresAt  int64  `db:"expires_at"`
}

func (t *tx) CreateSession(s *tokens.Session) error {
	_, err := t.exec(`INSERT INTO console_sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Hash[:], s.OrgID, s.UserID, s.TokenID, string(s.Method),
		micros(s.CreatedAt), micros(s.LastSeenAt), micros(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create console session %s: %w", s.ID, err)
	}
	return nil
}

func (t *tx) SessionByHash(h tokens.Hash) (*tokens.Session, error) {
	var r sessionRow
	if err := t.get(&r, `SELECT `+sessionColumns+` FROM console_sessions WHERE hash = ?`, h[:]); err != nil {
		// Never the hash in a message: it stands for the cookie.
		return nil, fmt.Errorf("console session: %w", err)
	}
	s := &tokens.Session{ID: r.ID, OrgID: r.OrgID, UserID: r.UserID, TokenID: r.TokenID,
		Method: tokens.SignInMethod(r.Method), CreatedAt: fromMicros(r.CreatedAt),
		LastSeenAt: fromMicros(r.LastSeenAt), ExpiresAt: fromMicros(r.ExpiresAt)}
	copy(s.Hash[:], r.Hash)
	return s, nil
}

func (t *tx) TouchSession(id string, seen time.Time) error {
	if err := t.execOne(`UPDATE console_sessions SET last_seen_at = ? WHERE id = ?`, micros(seen), id); err != nil {
		return fmt.Errorf("touch console session %s: %w", id, err)
	}
	return nil
}

func (t *tx) DeleteSession(id string) error {
	if err := t.execOne(`DELETE FROM console_sessions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete console session %s: %w", id, err)
	}
	return nil
}

func (t *tx) DeleteStaleSessions(expiredBefore, seenBefore time.Time) (int, error) {
	res, err := t.exec(`DELETE FROM console_sessions WHERE expires_at < ? OR last_seen_at < ?`,
		micros(expiredBefore), micros(seenBefore))
	if err != nil {
		return 0, fmt.Errorf("delete stale console sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), classify(err)
}
