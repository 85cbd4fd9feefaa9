package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

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
}

func defineSiteCreate(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required)")
	name := fs.String("name", "", "the site's name, unique in the org (required)")
	externalID := fs.String("external-id", "", "the site's ID in another system, unique in the org")
	return func(ctx context.Context, c *cli, _ []string) error {
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
	orgName := fs.String("org", "", "the org's name (required)")
	userName := fs.String("user", "", "only the sites of the person with this user name")
	return func(ctx context.Context, c *cli, _ []string) error {
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
	orgName := fs.String("org", "", "the org's name (required)")
	name := fs.String("name", "", "the site's name (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
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
		if c.global.json {
			return printJSON(c.stdout, map[string]any{"id": site.ID, "org": org.Name, "name": site.Name, "result": "deleted", "members": members})
		}
		if members == 0 {
			fmt.Fprintf(c.stdout, "deleted site %q of org %q; it had no members\n", site.Name, org.Name)
		} else {
			fmt.Fprintf(c.stdout, "deleted site %q of org %q; its %d %s lost it at once\n", site.Name, org.Name, members, plural(members, "member", "members"))
		}
		return nil
	}
}

func defineSiteAddMember(fs *flag.FlagSet) action {
	return defineSiteMembership(fs, true)
}

func defineSiteRemoveMember(fs *flag.FlagSet) action {
	return defineSiteMembership(fs, false)
}

func defineSiteMembership(fs *flag.FlagSet, join bool) action {
	orgName := fs.String("org", "", "the org's name (required)")
	siteName := fs.String("site", "", "the site's name (required)")
	userName := fs.String("user", "", "the person's user name (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
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
		if c.global.json {
			return printJSON(c.stdout, membershipView{Org: org.Name, Site: site.Name, User: u.UserName, Result: result})
		}
		switch result {
		case "added":
			fmt.Fprintf(c.stdout, "user %q is now a member of site %q; their tokens carry it from their next request\n", u.UserName, site.Name)
		case "unchanged":
			fmt.Fprintf(c.stdout, "user %q was already a member of site %q\n", u.UserName, site.Name)
		default:
			fmt.Fprintf(c.stdout, "user %q is no longer a member of site %q; their tokens lose it from their next request\n", u.UserName, site.Name)
		}
		return nil
	}
}

func (c *cli) printSites(org *tokens.Org, sites []tokens.Site, one bool, empty string) error {
	views := make([]siteView, 0, len(sites))
	for _, s := range sites {
		views = append(views, siteView{ID: s.ID, Org: org.Name, Name: s.Name, ExternalID: s.ExternalID,
			Members: s.Members, CreatedAt: s.CreatedAt.UTC()})
	}
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
