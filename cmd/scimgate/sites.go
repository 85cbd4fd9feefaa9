package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/scimgate/scimgate/admin"
	"github.com/scimgate/scimgate/tokens"
)

// siteView is a site as the command line prints it.
type siteView struct {
	ID         string    `json:"id"`
	Org        string    `json:"org"`
	Name       string    `json:"name"`
	ExternalID string    `json:"external_id"`
	Members    int       `json:"members"`
	CreatedAt  time.Time `json:"created_at"`
}

// membershipView is what add-member and remove-member print.
type membershipView struct {
	Org    string `json:"org"`
	Site   string `json:"site"`
	User   string `json:"user"`
	Result string `json:"result"` // "added", "removed" or "unchanged"
	// Servers says which running servers applied the change (on the
	// database; nil through --server or when nothing changed).
	Servers *propagationView `json:"servers,omitempty"`
}

func defineSiteCreate(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	name := fs.String("name", "", "the site's name, unique in the org (required)")
	externalID := fs.String("external-id", "", "the site's ID in another system, unique in the org")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			if err := required("--name", *name); err != nil {
				return err
			}
			return remoteSiteCreate(ctx, c, rc, *orgName, *name, *externalID)
		}
		if err := required("--org", *orgName, "--name", *name); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		site := &tokens.Site{OrgID: org.ID, Name: *name, ExternalID: *externalID}
		if err := svc.CreateSite(ctx, tokens.Operator, site); err != nil {
			return err
		}
		return c.printSites(org, []tokens.Site{*site}, true, "")
	}
}

func defineSiteList(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	userName := fs.String("user", "", "only the sites of the person with this user name")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteSiteList(ctx, c, rc, *orgName, *userName)
		}
		if err := required("--org", *orgName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		sites, err := svc.Sites(ctx, org.ID)
		if err != nil {
			return fmt.Errorf("list sites of org %q: %w", org.Name, err)
		}
		empty := "no sites in org " + quote(org.Name)
		if *userName != "" {
			u, err := svc.UserByName(ctx, org.ID, *userName)
			if err != nil {
				return err
			}
			mine := make(map[string]bool, len(u.Sites))
			for _, name := range u.Sites {
				mine[strings.ToLower(name)] = true
			}
			var of []tokens.Site
			for _, s := range sites {
				if mine[strings.ToLower(s.Name)] {
					of = append(of, s)
				}
			}
			sites, empty = of, fmt.Sprintf("user %q is in no site", u.UserName)
		}
		return c.printSites(org, sites, false, empty)
	}
}

func defineSiteDelete(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	name := fs.String("name", "", "the site's name (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			if err := required("--name", *name); err != nil {
				return err
			}
			return remoteSiteDelete(ctx, c, rc, *orgName, *name)
		}
		if err := required("--org", *orgName, "--name", *name); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		site, err := svc.SiteByName(ctx, org.ID, *name)
		if err != nil {
			return err
		}
		members, err := svc.DeleteSite(ctx, tokens.Operator, org.ID, site.ID)
		if err != nil {
			return err
		}
		return c.printSiteDeleted(site.ID, org.Name, site.Name, members, c.confirmApplied(ctx))
	}
}

// printSiteDeleted prints what site delete did.
func (c *cli) printSiteDeleted(id, org, name string, members int, servers *propagationView) error {
	if c.global.json {
		v := map[string]any{"id": id, "org": org, "name": name, "result": "deleted", "members": members}
		if servers != nil {
			v["servers"] = servers
		}
		return printJSON(c.stdout, v)
	}
	if members == 0 {
		fmt.Fprintf(c.stdout, "deleted site %q of org %q; it had no members\n", name, org)
		return nil
	}
	fmt.Fprintf(c.stdout, "deleted site %q of org %q, which had %d %s%s\n", name, org, members, plural(members, "member", "members"),
		appliedTail(servers, "; they lose it from their tokens' next request"))
	return nil
}

func defineSiteAddMember(fs *flag.FlagSet) action {
	return defineSiteMembership(fs, true)
}

func defineSiteRemoveMember(fs *flag.FlagSet) action {
	return defineSiteMembership(fs, false)
}

func defineSiteMembership(fs *flag.FlagSet, join bool) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	siteName := fs.String("site", "", "the site's name (required)")
	userName := fs.String("user", "", "the person's user name (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			if err := required("--site", *siteName, "--user", *userName); err != nil {
				return err
			}
			return remoteSiteMembership(ctx, c, rc, *orgName, *siteName, *userName, join)
		}
		if err := required("--org", *orgName, "--site", *siteName, "--user", *userName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		site, err := svc.SiteByName(ctx, org.ID, *siteName)
		if err != nil {
			return err
		}
		u, err := svc.UserByName(ctx, org.ID, *userName)
		if err != nil {
			return err
		}
		was := false
		for _, s := range u.Sites {
			was = was || strings.EqualFold(s, site.Name)
		}
		result := "added"
		if join {
			err = svc.AddSiteMember(ctx, tokens.Operator, org.ID, site.ID, u.ID)
			if was {
				result = "unchanged"
			}
		} else {
			err = svc.RemoveSiteMember(ctx, tokens.Operator, org.ID, site.ID, u.ID)
			result = "removed"
		}
		if err != nil {
			return err
		}
		return c.printMembership(membershipView{Org: org.Name, Site: site.Name, User: u.UserName, Result: result, Servers: c.confirmApplied(ctx)})
	}
}

// printMembership prints what add-member and remove-member did.
func (c *cli) printMembership(v membershipView) error {
	if c.global.json {
		return printJSON(c.stdout, v)
	}
	switch v.Result {
	case "added":
		fmt.Fprintf(c.stdout, "user %q is now a member of site %q%s\n", v.User, v.Site, appliedTail(v.Servers, "; their tokens carry it from their next request"))
	case "unchanged":
		fmt.Fprintf(c.stdout, "user %q was already a member of site %q\n", v.User, v.Site)
	default:
		fmt.Fprintf(c.stdout, "user %q is no longer a member of site %q%s\n", v.User, v.Site, appliedTail(v.Servers, "; their tokens lose it from their next request"))
	}
	return nil
}

// appliedTail ends a sentence about a membership change: what happens
// next and, when the command committed it on the database, which running
// servers confirmed that they applied it (through --server, the server
// applied it itself).
func appliedTail(servers *propagationView, next string) string {
	if servers == nil {
		return next
	}
	return next + "; " + servers.sentence("applied", "applies it")
}

func (c *cli) printSites(org *tokens.Org, sites []tokens.Site, one bool, empty string) error {
	views := make([]siteView, 0, len(sites))
	for _, s := range sites {
		views = append(views, siteView{ID: s.ID, Org: org.Name, Name: s.Name, ExternalID: s.ExternalID,
			Members: s.Members, CreatedAt: s.CreatedAt.UTC()})
	}
	return c.printSiteViews(views, one, empty)
}

// printSiteViews prints sites as a table, or as JSON: one object when one,
// else an array. empty is what stderr says of an empty list.
func (c *cli) printSiteViews(views []siteView, one bool, empty string) error {
	if c.global.json {
		if one {
			return printJSON(c.stdout, views[0])
		}
		return printJSON(c.stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(c.stderr, empty)
		return nil
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "NAME\tEXTERNAL ID\tMEMBERS\tID\tCREATED")
	for _, s := range views {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, dash(s.ExternalID), s.Members, s.ID, formatTime(s.CreatedAt))
	}
	return tw.Flush()
}

// ---- the remote forms (see remote.go) ----

func siteViewOfAPI(s *admin.Site) siteView {
	return siteView{ID: s.ID, Org: s.Org, Name: s.Name, ExternalID: s.ExternalID, Members: s.MemberCount, CreatedAt: s.CreatedAt}
}

func remoteSiteCreate(ctx context.Context, c *cli, rc *remote, orgName, name, externalID string) error {
	if _, err := rc.checkOrg(ctx, orgName); err != nil {
		return err
	}
	var created admin.Site
	if err := rc.call(ctx, "POST", "/sites", nil, map[string]string{"name": name, "external_id": externalID}, &created); err != nil {
		return err
	}
	return c.printSiteViews([]siteView{siteViewOfAPI(&created)}, true, "")
}

// remoteSiteList reads every page of the org's sites (or a person's), then
// prints them as the local command does.
func remoteSiteList(ctx context.Context, c *cli, rc *remote, orgName, userName string) error {
	me, err := rc.checkOrg(ctx, orgName)
	if err != nil {
		return err
	}
	query := url.Values{"limit": {fmt.Sprint(tokens.MaxPageSize)}}
	empty := "no sites in org " + quote(me.Org)
	if userName != "" {
		query.Set("member", userName)
		empty = fmt.Sprintf("user %q is in no site", userName)
	}
	views := []siteView{}
	for {
		var page admin.SiteList
		if err := rc.call(ctx, "GET", "/sites", query, nil, &page); err != nil {
			return err
		}
		for i := range page.Sites {
			views = append(views, siteViewOfAPI(&page.Sites[i]))
		}
		if page.NextCursor == nil {
			return c.printSiteViews(views, false, empty)
		}
		query.Set("cursor", *page.NextCursor)
	}
}

func remoteSiteDelete(ctx context.Context, c *cli, rc *remote, orgName, name string) error {
	if _, err := rc.checkOrg(ctx, orgName); err != nil {
		return err
	}
	var deleted admin.SiteDeleted
	if err := rc.call(ctx, "DELETE", "/sites/"+url.PathEscape(strings.TrimSpace(name)), nil, nil, &deleted); err != nil {
		return err
	}
	return c.printSiteDeleted(deleted.ID, deleted.Org, deleted.Name, deleted.Members, nil)
}

func remoteSiteMembership(ctx context.Context, c *cli, rc *remote, orgName, siteName, userName string, join bool) error {
	if _, err := rc.checkOrg(ctx, orgName); err != nil {
		return err
	}
	method := "PUT"
	if !join {
		method = "DELETE"
	}
	var ms admin.Membership
	path := "/sites/" + url.PathEscape(strings.TrimSpace(siteName)) + "/members/" + url.PathEscape(strings.TrimSpace(userName))
	if err := rc.call(ctx, method, path, nil, nil, &ms); err != nil {
		return err
	}
	return c.printMembership(membershipView{Org: ms.Org, Site: ms.Site, User: ms.UserName, Result: ms.Result})
}
