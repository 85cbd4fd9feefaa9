package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Sites on behalf of a Caller (see Manager). Sites say which people may see
// which places' data upstream: they are people-provisioning data, as group
// memberships are, so every call below needs PermUsers, the permission the
// identity provider's SCIM token holds (and "Token Admins" do not, unless
// given it). A person reads their own sites in Me without it.
//
// A site is named by its ID or by its name (letter case aside), and a
// person by their user ID or user name: an ID is looked up first, so a
// site or person whose name is another's ID is reached by its own ID.
// Everything stays in the caller's org: another org's site or person is
// not found.

// SiteInfo is a site as management shows it: with its org's name and how
// many members it has (Site.Members).
type SiteInfo struct {
	Site
	OrgName string
}

// SiteQuery selects a page of the org's sites, by name.
type SiteQuery struct {
	// MemberID or MemberName (a user ID or a user name, case-insensitive)
	// select the sites of one person.
	MemberID   string
	MemberName string
	// Cursor is SitePage.Next of the previous page; empty for the first.
	Cursor string
	// Limit is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
}

// SitePage is one page of an org's sites, in order of their names (letter
// case aside).
type SitePage struct {
	Sites []SiteInfo
	// Next is the cursor of the next page; empty on the last page.
	Next string
}

// MemberQuery selects a page of a site's members.
type MemberQuery struct {
	// Cursor is SiteDetail.Next of the previous page; empty for the first.
	Cursor string
	// Limit is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
}

// SiteDetail is a site with a page of its members, in user ID order.
type SiteDetail struct {
	SiteInfo
	MemberPage []SiteMember
	// Next is the cursor of the next page of members; empty on the last.
	Next string
}

// MembershipResult is what a membership change did.
type MembershipResult string

const (
	MemberAdded     MembershipResult = "added"
	MemberUnchanged MembershipResult = "unchanged" // added again: already a member
	MemberRemoved   MembershipResult = "removed"
)

// Membership is a person's membership of a site, as a change left it.
type Membership struct {
	OrgName  string
	SiteID   string
	SiteName string
	UserID   string
	UserName string
	Result   MembershipResult
}

// cursor kinds of the site listings (see tokenCursor).
const (
	siteCursor   = "s"
	memberCursor = "m"
)

// Sites lists the org's sites with their member counts, a page at a time
// (PermUsers).
func (m *Manager) Sites(ctx context.Context, q SiteQuery) (page *SitePage, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		if err := a.require(PermUsers, "listing the org's sites"); err != nil {
			return err
		}
		page, err = sitePage(tx, a.org, q)
		return err
	})
	return page, err
}

func sitePage(tx Tx, org *Org, q SiteQuery) (*SitePage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	f := SitePageFilter{OrgID: org.ID, Limit: limit + 1}
	if q.MemberID != "" || q.MemberName != "" {
		u, err := memberOf(tx, org, q.MemberID, q.MemberName)
		if err != nil {
			return nil, err
		}
		f.MemberID = u.ID
	}
	if q.Cursor != "" {
		if f.AfterName, err = decodeKeyCursor(siteCursor, q.Cursor); err != nil {
			return nil, err
		}
	}
	sites, err := tx.SitePage(f)
	if err != nil {
		return nil, err
	}
	page := &SitePage{Sites: make([]SiteInfo, 0, min(len(sites), limit))}
	for i := range sites {
		if i == limit {
			page.Next = encodeKeyCursor(siteCursor, strings.ToLower(sites[i-1].Name))
			break
		}
		page.Sites = append(page.Sites, SiteInfo{Site: sites[i], OrgName: org.Name})
	}
	return page, nil
}

// memberOf finds the person a site listing is filtered by: by ID, by user
// name, or by both if they agree.
func memberOf(tx Tx, org *Org, id, name string) (*User, error) {
	if err := checkText("member ID", id); err != nil {
		return nil, err
	}
	if err := checkText("member", name); err != nil {
		return nil, err
	}
	var u *User
	var err error
	if id != "" {
		if u, err = tx.User(org.ID, id); err == nil && u.Removed {
			err = ErrNotFound
		}
		if err != nil {
			return nil, notFound(err, "no user with ID %s in org %q", id, org.Name)
		}
	}
	if name != "" {
		byName, err := tx.UserByName(org.ID, name)
		if err != nil {
			return nil, notFound(err, "no user named %q in org %q", name, org.Name)
		}
		if u != nil && u.ID != byName.ID {
			return nil, Errorf(Invalid, "member %q and member ID %s name two different people", name, id)
		}
		u = byName
	}
	return u, nil
}

// Site shows one of the org's sites, named by ID or name, with a page of
// its members (PermUsers).
func (m *Manager) Site(ctx context.Context, ref string, q MemberQuery) (detail *SiteDetail, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		if err := a.require(PermUsers, "reading a site"); err != nil {
			return err
		}
		limit, err := pageLimit(q.Limit)
		if err != nil {
			return err
		}
		var after string
		if q.Cursor != "" {
			if after, err = decodeKeyCursor(memberCursor, q.Cursor); err != nil {
				return err
			}
		}
		site, err := siteByRef(tx, a.org, ref)
		if err != nil {
			return err
		}
		// The count and the page are read in one transaction: they agree.
		if site.Members, err = tx.CountSiteMembers(site.ID); err != nil {
			return err
		}
		page, err := tx.SiteMemberPage(site.ID, after, limit+1)
		if err != nil {
			return err
		}
		detail = &SiteDetail{SiteInfo: SiteInfo{Site: *site, OrgName: a.org.Name}, MemberPage: page}
		if len(page) > limit {
			detail.MemberPage = page[:limit]
			detail.Next = encodeKeyCursor(memberCursor, page[limit-1].UserID)
		}
		return nil
	})
	return detail, err
}

// CreateSite adds a site to the caller's org (PermUsers): its name, and
// its external ID if given, must be free in the org (Conflict).
func (m *Manager) CreateSite(ctx context.Context, name, externalID string) (*SiteInfo, error) {
	site := &Site{OrgID: m.c.OrgID, Name: name, ExternalID: externalID}
	var orgName string
	err := m.s.update(ctx, "", func(t *txn) error {
		a, err := m.s.authorize(t, m.c)
		if err != nil {
			return err
		}
		t.setActor(a)
		if err := a.require(PermUsers, "creating a site"); err != nil {
			return err
		}
		if err := checkNewSite(site); err != nil {
			return err
		}
		orgName = a.org.Name
		return createSite(t, site)
	})
	if err != nil {
		return nil, fmt.Errorf("create site %q: %w", site.Name, err)
	}
	return &SiteInfo{Site: *site, OrgName: orgName}, nil
}

// DeleteSite deletes one of the org's sites, named by ID or name
// (PermUsers); its members lose it on their next request. It returns the
// site as it was, with the number of members it had.
func (m *Manager) DeleteSite(ctx context.Context, ref string) (deleted *SiteInfo, err error) {
	err = m.s.update(ctx, "", func(t *txn) error {
		a, err := m.s.authorize(t, m.c)
		if err != nil {
			return err
		}
		t.setActor(a)
		if err := a.require(PermUsers, "deleting a site"); err != nil {
			return err
		}
		site, err := siteByRef(t, a.org, ref)
		if err != nil {
			return err
		}
		if site.Members, err = deleteSite(t, site); err != nil {
			return err
		}
		deleted = &SiteInfo{Site: *site, OrgName: a.org.Name}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete site %q: %w", ref, err)
	}
	return deleted, nil
}

// AddSiteMember makes a person (by user ID or user name) a member of one
// of the org's sites (by ID or name) (PermUsers); their tokens carry it
// from their next request. Adding a member again changes nothing
// (MemberUnchanged). A deactivated person can be made a member; one who
// left the org is not found.
func (m *Manager) AddSiteMember(ctx context.Context, siteRef, userRef string) (*Membership, error) {
	return m.changeSiteMember(ctx, siteRef, userRef, true)
}

// RemoveSiteMember ends a person's membership of one of the org's sites
// (PermUsers); their tokens lose it from their next request. A person who
// is not a member is WrongState.
func (m *Manager) RemoveSiteMember(ctx context.Context, siteRef, userRef string) (*Membership, error) {
	return m.changeSiteMember(ctx, siteRef, userRef, false)
}

func (m *Manager) changeSiteMember(ctx context.Context, siteRef, userRef string, join bool) (ms *Membership, err error) {
	doing := "adding a member to a site"
	if !join {
		doing = "removing a member from a site"
	}
	err = m.s.update(ctx, "", func(t *txn) error {
		a, err := m.s.authorize(t, m.c)
		if err != nil {
			return err
		}
		t.setActor(a)
		if err := a.require(PermUsers, doing); err != nil {
			return err
		}
		// The person first, then the site: the order of every other
		// membership change, so that two never wait on each other.
		u, err := lockUserByRef(t, a.org, userRef)
		if err != nil {
			return err
		}
		site, err := siteByRef(t, a.org, siteRef)
		if err != nil {
			return err
		}
		changed, err := changeSiteMember(t, u, site, join)
		if err != nil {
			return err
		}
		ms = &Membership{OrgName: a.org.Name, SiteID: site.ID, SiteName: site.Name, UserID: u.ID, UserName: u.UserName, Result: MemberAdded}
		switch {
		case !join:
			ms.Result = MemberRemoved
		case !changed:
			ms.Result = MemberUnchanged
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	return ms, nil
}

// siteByRef finds one of the org's sites by ID, or else by name.
func siteByRef(tx Tx, org *Org, ref string) (*Site, error) {
	if !isText(ref) || strings.TrimSpace(ref) == "" {
		return nil, Errorf(NotFound, "site %q not found in org %q", ref, org.Name)
	}
	site, err := tx.Site(org.ID, ref)
	if errors.Is(err, ErrNotFound) {
		site, err = tx.SiteByName(org.ID, strings.TrimSpace(ref))
	}
	if err != nil {
		return nil, notFound(err, "site %q not found in org %q: give the site's ID or its name", ref, org.Name)
	}
	return site, nil
}

// lockUserByRef finds and locks a person of the org by user ID, or else by
// user name. A person who left the org is not found.
func lockUserByRef(t *txn, org *Org, ref string) (*User, error) {
	if !isText(ref) || strings.TrimSpace(ref) == "" {
		return nil, Errorf(NotFound, "user %q not found in org %q", ref, org.Name)
	}
	u, err := t.LockUser(org.ID, ref)
	if errors.Is(err, ErrNotFound) {
		var byName *User
		if byName, err = t.UserByName(org.ID, strings.TrimSpace(ref)); err == nil {
			u, err = t.LockUser(org.ID, byName.ID)
		}
	}
	if err == nil && u.Removed {
		err = ErrNotFound
	}
	if err != nil {
		return nil, notFound(err, "user %q not found in org %q: give the person's user ID or user name", ref, org.Name)
	}
	return u, nil
}

// encodeKeyCursor makes a cursor of one key of any text: base64 within
// the cursor, so that the key may hold the cursor's separator.
func encodeKeyCursor(kind, key string) string {
	return encodeCursor(kind, base64.RawURLEncoding.EncodeToString([]byte(key)))
}

func decodeKeyCursor(kind, cursor string) (string, error) {
	parts, err := decodeCursor(kind, cursor, 1)
	if err != nil {
		return "", err
	}
	key, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || len(key) == 0 || !isText(string(key)) {
		return "", Errorf(Invalid, "cursor %q is not one this listing issued: start again without it", cursor)
	}
	return string(key), nil
}
