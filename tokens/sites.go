package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// UnknownSitePolicy says what writing a user does with a site name the org
// does not have yet (see Service.UnknownSites).
type UnknownSitePolicy string

const (
	// CreateUnknownSites creates the site: the identity provider's first
	// use of a name is what brings a site into being.
	CreateUnknownSites UnknownSitePolicy = "create"
	// RefuseUnknownSites refuses the change: sites are made beforehand
	// (scimgate site create), and a misspelt name is an error.
	RefuseUnknownSites UnknownSitePolicy = "refuse"
)

// ParseUnknownSitePolicy reads "create" or "refuse".
func ParseUnknownSitePolicy(s string) (UnknownSitePolicy, error) {
	switch p := UnknownSitePolicy(strings.ToLower(strings.TrimSpace(s))); p {
	case CreateUnknownSites, RefuseUnknownSites:
		return p, nil
	}
	return "", fmt.Errorf("%q is not create or refuse", s)
}

// CheckSiteName returns the name as stored (without surrounding spaces), or
// an Invalid error saying what is wrong with it.
func CheckSiteName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if err := checkName("site name", name); err != nil {
		return "", err
	}
	if strings.Contains(name, ",") {
		return "", Errorf(Invalid, "site name %q contains a comma, which separates sites in lists: use another character", name)
	}
	return name, nil
}

// CreateSite adds a site to an org. Its name must be free in the org,
// whatever its letter case, and so must its external ID if it has one.
func (s *Service) CreateSite(ctx context.Context, actor Actor, site *Site) error {
	name, err := CheckSiteName(site.Name)
	if err != nil {
		return err
	}
	if strings.IndexFunc(site.ExternalID, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || len(site.ExternalID) > 200 {
		return Errorf(Invalid, "a site's external ID must be at most 200 bytes without control characters")
	}
	site.Name, site.ID = name, NewID("site")
	err = s.update(ctx, actor, func(t *txn) error {
		if _, err := t.Org(site.OrgID); err != nil {
			return notFound(err, "org %s not found", site.OrgID)
		}
		if _, err := t.SiteByName(site.OrgID, name); err == nil {
			return Errorf(Conflict, "site %q already exists in this org", name)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		site.CreatedAt = t.now
		if err := t.CreateSite(site); err != nil {
			if ErrorCode(err) == Conflict {
				return Errorf(Conflict, "a site with external ID %q already exists in this org", site.ExternalID)
			}
			return err
		}
		return t.audit(site.OrgID, "site.create", site.ID, fmt.Sprintf("site %q", name))
	})
	if err != nil {
		return fmt.Errorf("create site %q: %w", name, err)
	}
	return nil
}

// Sites lists an org's sites by name, with how many members each has.
func (s *Service) Sites(ctx context.Context, orgID string) (sites []Site, err error) {
	err = s.view(ctx, func(tx Tx) error {
		sites, err = tx.Sites(orgID)
		return err
	})
	return sites, err
}

// SiteByName finds a site of an org, case-insensitively.
func (s *Service) SiteByName(ctx context.Context, orgID, name string) (site *Site, err error) {
	err = s.view(ctx, func(tx Tx) error {
		site, err = tx.SiteByName(orgID, strings.TrimSpace(name))
		return notFound(err, "site %q not found", name)
	})
	return site, err
}

// DeleteSite deletes a site; its members lose it on their next request. It
// returns how many members the site had.
func (s *Service) DeleteSite(ctx context.Context, actor Actor, orgID, siteID string) (members int, err error) {
	err = s.update(ctx, actor, func(t *txn) error {
		site, err := t.Site(orgID, siteID)
		if err != nil {
			return notFound(err, "site %s not found", siteID)
		}
		ids, err := t.SiteMembers(siteID)
		if err != nil {
			return err
		}
		if err := t.DeleteSite(orgID, siteID); err != nil {
			return err
		}
		members = len(ids)
		if err := t.audit(orgID, "site.delete", siteID, fmt.Sprintf("site %q, which had %d %s", site.Name, members, plural(members, "member", "members"))); err != nil {
			return err
		}
		return invalidateOwners(t, ids)
	})
	if err != nil {
		return 0, fmt.Errorf("delete site %s: %w", siteID, err)
	}
	return members, nil
}

// AddSiteMember makes a person a member of a site; their tokens carry it
// from their next request. Adding a member again changes nothing.
func (s *Service) AddSiteMember(ctx context.Context, actor Actor, orgID, siteID, userID string) error {
	return s.changeSiteMember(ctx, actor, orgID, siteID, userID, true)
}

// RemoveSiteMember ends a person's membership of a site; their tokens lose
// it from their next request. A person who is not a member is an error.
func (s *Service) RemoveSiteMember(ctx context.Context, actor Actor, orgID, siteID, userID string) error {
	return s.changeSiteMember(ctx, actor, orgID, siteID, userID, false)
}

func (s *Service) changeSiteMember(ctx context.Context, actor Actor, orgID, siteID, userID string, join bool) error {
	err := s.update(ctx, actor, func(t *txn) error {
		u, err := t.LockUser(orgID, userID)
		if err == nil && u.Removed {
			err = ErrNotFound
		}
		if err != nil {
			return notFound(err, "user %s not found", userID)
		}
		site, err := t.Site(orgID, siteID)
		if err != nil {
			return notFound(err, "site %s not found", siteID)
		}
		current, err := t.SitesOfUser(u.ID)
		if err != nil {
			return err
		}
		ids := siteIDs(current)
		member := slices.Contains(ids, siteID)
		switch {
		case join && member:
			return nil
		case !join && !member:
			return Errorf(WrongState, "user %q is not a member of site %q", u.UserName, site.Name)
		case join:
			ids = append(ids, siteID)
		default:
			ids = slices.DeleteFunc(ids, func(id string) bool { return id == siteID })
		}
		if err := t.SetUserSites(u.ID, ids); err != nil {
			return err
		}
		if err := auditMembership(t, u, *site, join); err != nil {
			return err
		}
		return t.invalidate("", u.ID)
	})
	if err != nil {
		verb := "add member %s to site %s: %w"
		if !join {
			verb = "remove member %s from site %s: %w"
		}
		return fmt.Errorf(verb, userID, siteID, err)
	}
	return nil
}

func auditMembership(t *txn, u *User, site Site, join bool) error {
	if join {
		return t.audit(u.OrgID, "site.member.add", site.ID, fmt.Sprintf("user %s joined site %q", u.UserName, site.Name))
	}
	return t.audit(u.OrgID, "site.member.remove", site.ID, fmt.Sprintf("user %s left site %q", u.UserName, site.Name))
}

func siteIDs(sites []Site) []string {
	ids := make([]string, len(sites))
	for i, s := range sites {
		ids[i] = s.ID
	}
	return ids
}

// writeSites makes u.Sites (names) the memberships of u, a user whose row is
// written, and sets u.Sites to the names as stored. A nil u.Sites keeps the
// memberships. Names the org lacks are created or refused as
// s.UnknownSites says. Joins and leaves are audited; the caller invalidates.
func (s *Service) writeSites(t *txn, u *User) error {
	current, err := t.SitesOfUser(u.ID)
	if err != nil {
		return err
	}
	if u.Sites == nil {
		u.Sites = siteNames(current)
		return nil
	}
	// In one order whatever the order given: two transactions creating
	// the same new sites then wait for each other in the same order, and
	// never deadlock.
	// Among names equal but for case, the first given is the one created.
	names := slices.Clone(u.Sites)
	slices.SortStableFunc(names, func(a, b string) int {
		return strings.Compare(strings.ToLower(strings.TrimSpace(a)), strings.ToLower(strings.TrimSpace(b)))
	})
	wanted := make([]Site, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		name, err := CheckSiteName(name)
		if err != nil {
			return err
		}
		if seen[strings.ToLower(name)] {
			continue
		}
		seen[strings.ToLower(name)] = true
		site, err := s.resolveSite(t, u.OrgID, name)
		if err != nil {
			return err
		}
		wanted = append(wanted, *site)
	}
	had := make(map[string]bool, len(current))
	for _, c := range current {
		had[c.ID] = true
	}
	keep := make(map[string]bool, len(wanted))
	changed := false
	for _, w := range wanted {
		keep[w.ID] = true
		if !had[w.ID] {
			changed = true
			if err := auditMembership(t, u, w, true); err != nil {
				return err
			}
		}
	}
	for _, c := range current {
		if !keep[c.ID] {
			changed = true
			if err := auditMembership(t, u, c, false); err != nil {
				return err
			}
		}
	}
	if changed {
		if err := t.SetUserSites(u.ID, siteIDs(wanted)); err != nil {
			return err
		}
	}
	u.Sites = siteNames(wanted)
	return nil
}

// resolveSite finds the org's site with a name, or creates it if the policy
// allows.
func (s *Service) resolveSite(t *txn, orgID, name string) (*Site, error) {
	site, err := t.SiteByName(orgID, name)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return site, err
	}
	if s.UnknownSites == RefuseUnknownSites {
		return nil, Errorf(Invalid, "site %q does not exist in this org: create it first (scimgate site create), or let provisioning create sites (scim.unknown_sites: create)", name)
	}
	site, created, err := t.EnsureSite(&Site{ID: NewID("site"), OrgID: orgID, Name: name, CreatedAt: t.now})
	if err != nil {
		return nil, err
	}
	if created {
		if err := t.audit(orgID, "site.create", site.ID, fmt.Sprintf("site %q, on its first use", name)); err != nil {
			return nil, err
		}
	}
	return site, nil
}

func siteNames(sites []Site) []string {
	names := make([]string, len(sites))
	for i, s := range sites {
		names[i] = s.Name
	}
	slices.Sort(names)
	return names
}

// GroupsOfUsers lists the groups each of the org's users named is a member
// of, for SCIM's read-only User.groups.
func (s *Service) GroupsOfUsers(ctx context.Context, orgID string, userIDs []string) (groups map[string][]GroupRef, err error) {
	err = s.view(ctx, func(tx Tx) error {
		groups, err = tx.GroupsOfUsers(orgID, userIDs)
		return err
	})
	return groups, err
}

// DisplayNames gives each of the org's users named the name to show for
// them (the display name, or the user name): SCIM's display of a member.
func (s *Service) DisplayNames(ctx context.Context, orgID string, userIDs []string) (names map[string]string, err error) {
	err = s.view(ctx, func(tx Tx) error {
		names, err = tx.DisplayNames(orgID, userIDs)
		return err
	})
	return names, err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
