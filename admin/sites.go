package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// Sites: the org's sites and their members, for holders of platform.users
// (see tokens.Manager). In paths, {site} is a site's ID or its name, and
// {user} a person's user ID or user name; an ID is looked up first.

// Site is a site as the API shows it.
type Site struct {
	ID         string `json:"id"`
	Org        string `json:"org"`
	OrgID      string `json:"org_id"`
	Name       string `json:"name"`
	ExternalID string `json:"external_id"`
	// MemberCount is how many people are members.
	MemberCount int       `json:"member_count"`
	CreatedAt   time.Time `json:"created_at"`
}

// SiteList is one page of the org's sites, by name.
type SiteList struct {
	Sites      []Site  `json:"sites"`
	NextCursor *string `json:"next_cursor"`
}

// SiteMember is a member of a site.
type SiteMember struct {
	ID          string `json:"id"`
	UserName    string `json:"user_name"`
	DisplayName string `json:"display_name"`
	Active      bool   `json:"active"`
}

// SiteDetail is a site with one page of its members, in user ID order;
// NextCursor is that of the members.
type SiteDetail struct {
	Site
	Members    []SiteMember `json:"members"`
	NextCursor *string      `json:"next_cursor"`
}

// SiteDeleted answers the deletion of a site: what it was and how many
// members lost it.
type SiteDeleted struct {
	ID      string `json:"id"`
	Org     string `json:"org"`
	Name    string `json:"name"`
	Result  string `json:"result"` // "deleted"
	Members int    `json:"members"`
	Message string `json:"message"`
}

// Membership is a person's membership of a site, as a change left it.
type Membership struct {
	Org      string `json:"org"`
	SiteID   string `json:"site_id"`
	Site     string `json:"site"`
	UserID   string `json:"user_id"`
	UserName string `json:"user"`
	// Result is "added", "unchanged" (added again) or "removed".
	Result  string `json:"result"`
	Message string `json:"message"`
}

func siteOf(s *tokens.SiteInfo) Site {
	return Site{ID: s.ID, Org: s.OrgName, OrgID: s.OrgID, Name: s.Name, ExternalID: s.ExternalID,
		MemberCount: s.Members, CreatedAt: s.CreatedAt.UTC()}
}

func sitePath(id string) string { return Prefix + "/sites/" + url.PathEscape(id) }

func (a *api) handleSiteList(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	q, err := parseQuery(r, "member", "member_id", "cursor", "limit")
	if err != nil {
		return err
	}
	limit, err := q.limit()
	if err != nil {
		return err
	}
	page, err := m.Sites(r.Context(), tokens.SiteQuery{MemberName: q.get("member"), MemberID: q.get("member_id"), Cursor: q.get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	list := SiteList{Sites: make([]Site, len(page.Sites))}
	for i := range page.Sites {
		list.Sites[i] = siteOf(&page.Sites[i])
	}
	if page.Next != "" {
		list.NextCursor = &page.Next
	}
	return ok(w, list)
}

type siteCreate struct {
	Name       string `json:"name"`
	ExternalID string `json:"external_id"`
}

func (a *api) handleSiteCreate(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var body siteCreate
	if err := a.decodeBody(w, r, &body, false); err != nil {
		return err
	}
	site, err := m.CreateSite(r.Context(), body.Name, body.ExternalID)
	if err != nil {
		return err
	}
	return created(w, sitePath(site.ID), siteOf(site))
}

func (a *api) handleSiteGet(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	q, err := parseQuery(r, "cursor", "limit")
	if err != nil {
		return err
	}
	limit, err := q.limit()
	if err != nil {
		return err
	}
	d, err := m.Site(r.Context(), r.PathValue("site"), tokens.MemberQuery{Cursor: q.get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	detail := SiteDetail{Site: siteOf(&d.SiteInfo), Members: make([]SiteMember, len(d.MemberPage))}
	for i, p := range d.MemberPage {
		detail.Members[i] = SiteMember{ID: p.UserID, UserName: p.UserName, DisplayName: p.DisplayName, Active: p.Active}
	}
	if d.Next != "" {
		detail.NextCursor = &d.Next
	}
	return ok(w, detail)
}

func (a *api) handleSiteDelete(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	s, err := m.DeleteSite(r.Context(), r.PathValue("site"))
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("site %q is deleted; it had no members", s.Name)
	if s.Members > 0 {
		msg = fmt.Sprintf("site %q is deleted; its %d %s lost it at once", s.Name, s.Members, plural(s.Members, "member", "members"))
	}
	return ok(w, SiteDeleted{ID: s.ID, Org: s.OrgName, Name: s.Name, Result: "deleted", Members: s.Members, Message: msg})
}

// handleSiteMemberPut makes a person a member: 201 when they were not one,
// 200 when they already were (PUT is idempotent). The membership created
// is the request's own URI (RFC 9110 §9.3.4), so no Location.
func (a *api) handleSiteMemberPut(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	ms, err := m.AddSiteMember(r.Context(), r.PathValue("site"), r.PathValue("user"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if ms.Result == tokens.MemberAdded {
		status = http.StatusCreated
	}
	writeJSON(w, "application/json", status, membershipOf(ms))
	return nil
}

func (a *api) handleSiteMemberDelete(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	ms, err := m.RemoveSiteMember(r.Context(), r.PathValue("site"), r.PathValue("user"))
	if err != nil {
		return err
	}
	return ok(w, membershipOf(ms))
}

func membershipOf(ms *tokens.Membership) Membership {
	v := Membership{Org: ms.OrgName, SiteID: ms.SiteID, Site: ms.SiteName, UserID: ms.UserID, UserName: ms.UserName, Result: string(ms.Result)}
	switch ms.Result {
	case tokens.MemberAdded:
		v.Message = fmt.Sprintf("user %q is now a member of site %q; their tokens carry it from their next request", ms.UserName, ms.SiteName)
	case tokens.MemberUnchanged:
		v.Message = fmt.Sprintf("user %q was already a member of site %q", ms.UserName, ms.SiteName)
	default:
		v.Message = fmt.Sprintf("user %q is no longer a member of site %q; their tokens lose it from their next request", ms.UserName, ms.SiteName)
	}
	return v
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
