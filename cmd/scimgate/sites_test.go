package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

func TestSiteCommands(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			c := newTestCLI(t, dialect)
			c.ok("org", "create", "--name", "acme")
			c.ok("org", "create", "--name", "globex")
			c.ok("user", "create", "--org", "acme", "--user-name", "alice")
			c.ok("user", "create", "--org", "acme", "--user-name", "bob")

			var syd siteView
			c.okJSON(&syd, "site", "create", "--org", "acme", "--name", "Sydney", "--external-id", "SYD")
			if syd.Name != "Sydney" || syd.Org != "acme" || syd.ExternalID != "SYD" || !strings.HasPrefix(syd.ID, "site_") || syd.CreatedAt.IsZero() {
				t.Errorf("site create printed %+v", syd)
			}
			if out := c.ok("site", "create", "--org", "acme", "--name", "Melbourne"); !strings.Contains(out, "Melbourne") {
				t.Errorf("site create printed %q", out)
			}
			c.ok("site", "create", "--org", "globex", "--name", "Sydney", "--external-id", "SYD") // another org

			c.fails(exitRefused, `site "SYDNEY" already exists`, "site", "create", "--org", "acme", "--name", "SYDNEY")
			c.fails(exitRefused, `external ID "SYD"`, "site", "create", "--org", "acme", "--name", "Perth", "--external-id", "SYD")
			c.fails(exitUsage, "contains a comma", "site", "create", "--org", "acme", "--name", "Perth, WA")
			c.fails(exitUsage, "--name is required", "site", "create", "--org", "acme")
			c.fails(exitNotFound, `org "initech" not found`, "site", "create", "--org", "initech", "--name", "x")

			var m membershipView
			c.okJSON(&m, "site", "add-member", "--org", "acme", "--site", "sydney", "--user", "ALICE")
			// No server runs on the database: the command says so.
			if m.Servers == nil || m.Servers.Servers != 0 || m.Servers.Error != "" {
				t.Errorf("add-member found servers %+v, want none running", m.Servers)
			}
			if m.Servers = nil; m != (membershipView{Org: "acme", Site: "Sydney", User: "alice", Result: "added"}) {
				t.Errorf("add-member printed %+v", m)
			}
			c.okJSON(&m, "site", "add-member", "--org", "acme", "--site", "Sydney", "--user", "alice")
			if m.Result != "unchanged" {
				t.Errorf("adding a member again printed %+v, want unchanged", m)
			}
			c.ok("site", "add-member", "--org", "acme", "--site", "Melbourne", "--user", "alice")
			c.ok("site", "add-member", "--org", "acme", "--site", "Sydney", "--user", "bob")
			c.fails(exitNotFound, `site "Perth" not found`, "site", "add-member", "--org", "acme", "--site", "Perth", "--user", "alice")
			c.fails(exitNotFound, `user "carol" not found`, "site", "add-member", "--org", "acme", "--site", "Sydney", "--user", "carol")
			c.fails(exitUsage, "--user is required", "site", "add-member", "--org", "acme", "--site", "Sydney")

			var sites []siteView
			c.okJSON(&sites, "site", "list", "--org", "acme")
			if len(sites) != 2 || sites[0].Name != "Melbourne" || sites[0].Members != 1 || sites[1].Name != "Sydney" || sites[1].Members != 2 {
				t.Errorf("site list = %+v, want Melbourne (1 member) and Sydney (2)", sites)
			}
			c.okJSON(&sites, "site", "list", "--org", "acme", "--user", "bob")
			if len(sites) != 1 || sites[0].Name != "Sydney" {
				t.Errorf("site list --user bob = %+v, want Sydney", sites)
			}
			if out := c.ok("site", "list", "--org", "acme"); !strings.Contains(out, "Sydney") || !strings.Contains(out, "SYD") {
				t.Errorf("site list printed %q", out)
			}
			var users []userView
			c.okJSON(&users, "user", "list", "--org", "acme")
			if len(users) != 2 || !slices.Equal(users[0].Sites, []string{"Melbourne", "Sydney"}) || !slices.Equal(users[1].Sites, []string{"Sydney"}) {
				t.Errorf("user list = %+v, want each user's sites", users)
			}

			c.okJSON(&m, "site", "remove-member", "--org", "acme", "--site", "Sydney", "--user", "alice")
			if m.Result != "removed" {
				t.Errorf("remove-member printed %+v", m)
			}
			c.fails(exitRefused, `user "alice" is not a member of site "Sydney"`, "site", "remove-member", "--org", "acme", "--site", "Sydney", "--user", "alice")
			_, stderr, err := c.run("site", "list", "--org", "globex", "--user", "nobody")
			if exitCode(err) != exitNotFound {
				t.Errorf("site list --user of no one: %v %s", err, stderr)
			}

			var deleted map[string]any
			c.okJSON(&deleted, "site", "delete", "--org", "acme", "--name", "SYDNEY")
			if deleted["result"] != "deleted" || deleted["members"] != 1.0 || deleted["name"] != "Sydney" {
				t.Errorf("site delete printed %v, want Sydney deleted with its one member", deleted)
			}
			c.fails(exitNotFound, `site "Sydney" not found`, "site", "delete", "--org", "acme", "--name", "Sydney")
			c.okJSON(&sites, "site", "list", "--org", "acme", "--user", "bob")
			if len(sites) != 0 {
				t.Errorf("bob's sites after the delete: %+v", sites)
			}
			if _, stderr, _ := c.run("site", "list", "--org", "acme", "--user", "bob"); !strings.Contains(stderr, `user "bob" is in no site`) {
				t.Errorf("an empty list said %q", stderr)
			}

			var events []auditView
			c.okJSON(&events, "audit", "list", "--org", "acme", "--limit", "3")
			if len(events) != 3 || events[0].Action != "site.delete" || events[1].Action != "site.member.remove" || events[0].Actor != "operator" {
				t.Errorf("audit = %+v, want the delete and the removal by the operator", events)
			}
		})
	}
}
