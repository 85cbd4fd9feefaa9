package sqlstore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/scimgate/scimgate/tokens"
)

// inChunk is how many IDs one IN (…) list holds: far below the parameter
// limits of SQLite (32766) and PostgreSQL (65535).
const inChunk = 500

const siteColumns = "id, org_id, name, external_id, created_at"

type siteRow struct {
	ID         string `db:"id"`
	OrgID      string `db:"org_id"`
	Name       string `db:"name"`
	ExternalID string `db:"external_id"`
	CreatedAt  int64  `db:"created_at"`
	Members    int    `db:"members"`
}

func (r siteRow) site() tokens.Site {
	return tokens.Site{ID: r.ID, OrgID: r.OrgID, Name: r.Name, ExternalID: r.ExternalID,
		CreatedAt: fromMicros(r.CreatedAt), Members: r.Members}
}

func (t *tx) CreateSite(s *tokens.Site) error {
	_, err := t.exec(`INSERT INTO sites (`+siteColumns+`, name_lower) VALUES (?, ?, ?, ?, ?, ?)`,
		s.ID, s.OrgID, s.Name, s.ExternalID, micros(s.CreatedAt), strings.ToLower(s.Name))
	if err != nil {
		return fmt.Errorf("create site %q: %w", s.Name, err)
	}
	return nil
}

// EnsureSite inserts the site unless the name is taken (ON CONFLICT DO
// NOTHING: on PostgreSQL a concurrent insert of the same name waits for the
// other transaction and then does nothing, where a plain INSERT would fail
// and abort this one), then reads the site by name.
func (t *tx) EnsureSite(s *tokens.Site) (*tokens.Site, bool, error) {
	res, err := t.exec(`INSERT INTO sites (`+siteColumns+`, name_lower) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		s.ID, s.OrgID, s.Name, s.ExternalID, micros(s.CreatedAt), strings.ToLower(s.Name))
	if err != nil {
		return nil, false, fmt.Errorf("ensure site %q: %w", s.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, false, fmt.Errorf("ensure site %q: %w", s.Name, classify(err))
	}
	site, err := t.SiteByName(s.OrgID, s.Name)
	if err != nil {
		return nil, false, fmt.Errorf("ensure site %q: %w", s.Name, err)
	}
	return site, n == 1, nil
}

func (t *tx) DeleteSite(orgID, id string) error {
	// site_members cascades; done here as well so that SQLite without
	// foreign keys enforced would not keep orphans.
	_, err := t.exec(`DELETE FROM site_members WHERE site_id IN (SELECT id FROM sites WHERE org_id = ? AND id = ?)`, orgID, id)
	if err == nil {
		err = t.execOne(`DELETE FROM sites WHERE org_id = ? AND id = ?`, orgID, id)
	}
	if err != nil {
		return fmt.Errorf("delete site %s: %w", id, err)
	}
	return nil
}

func (t *tx) Site(orgID, id string) (*tokens.Site, error) {
	var r siteRow
	if err := t.get(&r, `SELECT `+siteColumns+` FROM sites WHERE org_id = ? AND id = ?`, orgID, id); err != nil {
		return nil, fmt.Errorf("site %s: %w", id, err)
	}
	s := r.site()
	return &s, nil
}

func (t *tx) SiteByName(orgID, name string) (*tokens.Site, error) {
	var r siteRow
	err := t.get(&r, `SELECT `+siteColumns+` FROM sites WHERE org_id = ? AND name_lower = ?`, orgID, strings.ToLower(name))
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", name, err)
	}
	s := r.site()
	return &s, nil
}

func (t *tx) Sites(orgID string) ([]tokens.Site, error) {
	var rows []siteRow
	err := t.selectRows(&rows, `SELECT `+prefixed("s.", siteColumns)+`,
		(SELECT count(*) FROM site_members m WHERE m.site_id = s.id) AS members
		FROM sites s WHERE s.org_id = ? ORDER BY s.name_lower, s.id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	out := make([]tokens.Site, len(rows))
	for i, r := range rows {
		out[i] = r.site()
	}
	return out, nil
}

func (t *tx) SiteMembers(siteID string) ([]string, error) {
	var ids []string
	if err := t.selectRows(&ids, `SELECT user_id FROM site_members WHERE site_id = ? ORDER BY user_id`, siteID); err != nil {
		return nil, fmt.Errorf("members of site %s: %w", siteID, err)
	}
	return ids, nil
}

func (t *tx) SitesOfUser(userID string) ([]tokens.Site, error) {
	var rows []siteRow
	err := t.selectRows(&rows, `SELECT `+prefixed("s.", siteColumns)+` FROM site_members m JOIN sites s ON s.id = m.site_id
		WHERE m.user_id = ? ORDER BY s.name_lower, s.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sites of user %s: %w", userID, err)
	}
	out := make([]tokens.Site, len(rows))
	for i, r := range rows {
		out[i] = r.site()
	}
	return out, nil
}

func (t *tx) SetUserSites(userID string, siteIDs []string) error {
	if _, err := t.exec(`DELETE FROM site_members WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("set sites of user %s: %w", userID, err)
	}
	siteIDs = slices.Compact(slices.Sorted(slices.Values(siteIDs)))
	for chunk := range slices.Chunk(siteIDs, inChunk) {
		q := `INSERT INTO site_members (site_id, user_id) VALUES ` + strings.Repeat("(?, ?), ", len(chunk)-1) + "(?, ?)"
		args := make([]any, 0, 2*len(chunk))
		for _, id := range chunk {
			args = append(args, id, userID)
		}
		if _, err := t.exec(q, args...); err != nil {
			if errors.Is(err, tokens.ErrNotFound) {
				err = fmt.Errorf("a site was deleted meanwhile: %w", err)
			}
			return fmt.Errorf("set sites of user %s: %w", userID, err)
		}
	}
	return nil
}

// fillSites sets the Sites of users, which the rows of users do not hold,
// with one query per inChunk users. Names are sorted by Go, not by the
// databases, whose collations differ.
func (t *tx) fillSites(users []tokens.User) error {
	index := make(map[string]int, len(users))
	ids := make([]string, len(users))
	for i := range users {
		users[i].Sites = []string{}
		index[users[i].ID] = i
		ids[i] = users[i].ID
	}
	for chunk := range slices.Chunk(ids, inChunk) {
		q, args, err := sqlx.In(`SELECT m.user_id, s.name FROM site_members m JOIN sites s ON s.id = m.site_id
			WHERE m.user_id IN (?)`, chunk)
		if err != nil {
			return err
		}
		var rows []struct {
			UserID string `db:"user_id"`
			Name   string `db:"name"`
		}
		if err := t.selectRows(&rows, q, args...); err != nil {
			return fmt.Errorf("sites of users: %w", err)
		}
		for _, r := range rows {
			u := &users[index[r.UserID]]
			u.Sites = append(u.Sites, r.Name)
		}
	}
	for i := range users {
		slices.Sort(users[i].Sites)
	}
	return nil
}

func (t *tx) GroupsOfUsers(orgID string, userIDs []string) (map[string][]tokens.GroupRef, error) {
	out := make(map[string][]tokens.GroupRef, len(userIDs))
	for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(userIDs))), inChunk) {
		q, args, err := sqlx.In(`SELECT m.user_id, g.id, g.display_name FROM group_members m JOIN groups g ON g.id = m.group_id
			WHERE g.org_id = ? AND m.user_id IN (?)`, orgID, chunk)
		if err != nil {
			return nil, err
		}
		var rows []struct {
			UserID      string `db:"user_id"`
			ID          string `db:"id"`
			DisplayName string `db:"display_name"`
		}
		if err := t.selectRows(&rows, q, args...); err != nil {
			return nil, fmt.Errorf("groups of users: %w", err)
		}
		for _, r := range rows {
			out[r.UserID] = append(out[r.UserID], tokens.GroupRef{ID: r.ID, DisplayName: r.DisplayName})
		}
	}
	for _, groups := range out {
		slices.SortFunc(groups, func(a, b tokens.GroupRef) int {
			return strings.Compare(strings.ToLower(a.DisplayName)+"\x00"+a.ID, strings.ToLower(b.DisplayName)+"\x00"+b.ID)
		})
	}
	return out, nil
}

func (t *tx) DisplayNames(orgID string, userIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(userIDs))
	for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(userIDs))), inChunk) {
		q, args, err := sqlx.In(`SELECT id, user_name, display_name FROM users WHERE org_id = ? AND NOT removed AND id IN (?)`, orgID, chunk)
		if err != nil {
			return nil, err
		}
		var rows []struct {
			ID          string `db:"id"`
			UserName    string `db:"user_name"`
			DisplayName string `db:"display_name"`
		}
		if err := t.selectRows(&rows, q, args...); err != nil {
			return nil, fmt.Errorf("display names of users: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = cmp.Or(r.DisplayName, r.UserName)
		}
	}
	return out, nil
}
