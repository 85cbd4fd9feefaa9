package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/scimgate/scimgate/tokens"
)

// command is one scimgate command. define registers the command's flags on
// a flag set and returns what the command does with their values, so that
// the help can list flags without running anything.
type command struct {
	name     string   // as typed: "service-token create"
	synopsis string   // flags and arguments, as the help shows them
	summary  string   // one line for the command list
	help     string   // what --help says about it
	args     []string // names of the positional arguments
	define   func(fs *flag.FlagSet) action
	// remote: with --server the command calls the admin API (remote.go).
	remote bool
}

// action runs a command with its positional arguments.
type action func(ctx context.Context, c *cli, args []string) error

// commands is every command, in the order the help lists them.
var commands = []command{
	{
		name:     "serve",
		synopsis: "[--check-config] [--upstream URL] [--listen ADDR] [--management-listen ADDR]",
		summary:  "run the sidecar",
		help: `Run the sidecar: wait for the database (PostgreSQL that is not up yet; /readyz
answers 503 meanwhile), apply migrations, create org "default" and a bootstrap
service token on the first start (printed once to stderr), then authenticate
and proxy every request on the proxy listener to the upstream, and serve
/scim/v2 (SCIM 2.0 for identity providers), /api/v1 (the admin API, unless
admin.listen gives it a listener of its own), /metrics, /healthz and /readyz on
the management listener, until SIGINT or SIGTERM (graceful: /readyz turns 503,
in-flight requests finish, last uses are written). Without --database (and
database, SCIMGATE_DATABASE) it creates <data_dir>/scimgate.db if missing; a
database named there must exist.`,
		define: defineServe,
	},
	{
		name:    "version",
		summary: "print the version",
		help: `Print the version, the VCS revision the binary was built from (with
"modified" if the checkout had uncommitted changes) and the Go version; with
--json, an object with these fields. "scimgate --version" does the same.`,
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, c *cli, _ []string) error { return c.printVersion() }
		},
	},
	{
		name:    "migrate",
		summary: "bring the database schema up to date",
		help: `Apply pending database migrations, creating the SQLite database file (and
its directory) if it does not exist: the one command that does, besides serve
on its default <data_dir>/scimgate.db. Every command migrates first, so this
is only needed to create a database or to migrate ahead of a deployment.`,
		define: defineMigrate,
	},
	{
		name:     "org create",
		synopsis: "--name ORG [--user-token-inactivity-days N]",
		summary:  "create an organization",
		help:     "Create an organization.",
		define:   defineOrgCreate,
	},
	{
		name:    "org list",
		summary: "list organizations",
		help:    "List every organization.",
		define:  defineOrgList,
	},
	{
		name:     "user create",
		synopsis: "--org ORG --user-name NAME [--display-name NAME] [--email ADDRESS] [--external-id ID]",
		summary:  "add a person to an org (for setups without SCIM)",
		help: `Add a person to an org, as an identity provider does over SCIM. For setups
without SCIM.`,
		define: defineUserCreate,
	},
	{
		name:     "user list",
		synopsis: "--org ORG",
		summary:  "list an org's users",
		help:     "List the users of an org.",
		define:   defineUserList,
	},
	{
		name:     "user deactivate",
		synopsis: "--org ORG --user NAME",
		summary:  "deactivate a person and expire their tokens",
		help: `Deactivate a person, as an identity provider does over SCIM: every active
token of theirs expires at once. The command waits (at most 3s) until every scimgate server running on the
database has applied the change, and says which did and how long after the
commit.`,
		define: defineUserDeactivate,
	},
	{
		name:     "service-token create",
		synopsis: "--org ORG --name NAME [--inactivity-days N] [--permissions p1,p2]",
		summary:  "create a service user and its token",
		help: `Create a service user and its token, and print the token once. An org holds
at most 20 active service tokens.`,
		define: defineServiceTokenCreate,
		remote: true,
	},
	{
		name:     "service-token list",
		synopsis: "--org ORG",
		summary:  "list an org's service tokens",
		help:     "List the service tokens of an org with their permission sets.",
		define:   defineServiceTokenList,
		remote:   true,
	},
	{
		name:     "service-token edit",
		synopsis: "ID [--name NAME] [--inactivity-days N] [--permissions p1,p2]",
		summary:  "rename a service token, change its window or permissions",
		help: `Change a service token's name, inactivity window or permission sets. The command waits (at most 3s) until every scimgate server running on the
database has applied the change, and says which did and how long after the
commit.`,
		args:   []string{"ID"},
		define: defineServiceTokenEdit,
		remote: true,
	},
	{
		name:     "service-token revoke",
		synopsis: "ID",
		summary:  "stop a service token at once",
		help: `Revoke a service token, so that it is refused. A revoked token can be
regenerated or deleted. The command waits (at most 3s) until every scimgate server running on the
database has applied the change, and says which did and how long after the
commit.`,
		args:   []string{"ID"},
		define: defineServiceTokenRevoke,
		remote: true,
	},
	{
		name:     "service-token regenerate",
		synopsis: "ID",
		summary:  "give a revoked service token a new secret",
		help: `Give a revoked service token a new secret and make it active again, for the
same service user; print the new token once. The old secret never works again.`,
		args:   []string{"ID"},
		define: defineServiceTokenRegenerate,
		remote: true,
	},
	{
		name:     "service-token delete",
		synopsis: "ID",
		summary:  "delete a revoked service token",
		help:     "Delete a revoked service token and its service user. Revoke an active one first.",
		args:     []string{"ID"},
		define:   defineServiceTokenDelete,
		remote:   true,
	},
	{
		name:     "user-token create",
		synopsis: "--org ORG --user NAME --name TOKEN_NAME",
		summary:  "create a token for a person",
		help: `Create an API token for an active person and print it once. A person holds at
most 10 active tokens; the token has their permissions and groups.`,
		define: defineUserTokenCreate,
		remote: true,
	},
	{
		name:     "user-token list",
		synopsis: "--org ORG [--user NAME]",
		summary:  "list an org's user tokens",
		help:     "List the user tokens of an org, or of one person in it.",
		define:   defineUserTokenList,
		remote:   true,
	},
	{
		name:     "user-token delete",
		synopsis: "ID",
		summary:  "delete a user token at once",
		help: `Delete a user token, so that it is refused. The command waits (at most 3s) until every scimgate server running on the
database has applied the change, and says which did and how long after the
commit.`,
		args:   []string{"ID"},
		define: defineUserTokenDelete,
		remote: true,
	},
	{
		name:     "site create",
		synopsis: "--org ORG --name SITE [--external-id ID]",
		summary:  "create a site in an org",
		help: `Create a site: a place or unit of an org (an office, a plant, a store) that
people are members of. A person's user tokens carry their sites to the upstream
(identity header "sites"). The name is unique in the org whatever its letter
case and cannot contain a comma; --external-id ties the site to another
system's record and is unique in the org too. Identity providers can also
create sites by naming them (scim.unknown_sites).`,
		define: defineSiteCreate,
	},
	{
		name:     "site list",
		synopsis: "--org ORG [--user NAME]",
		summary:  "list an org's sites, or a person's",
		help:     "List the sites of an org with how many members each has, or the sites of one person.",
		define:   defineSiteList,
	},
	{
		name:     "site delete",
		synopsis: "--org ORG --name SITE",
		summary:  "delete a site",
		help: `Delete a site. Its members lose it at once: their next request carries their
other sites only.`,
		define: defineSiteDelete,
	},
	{
		name:     "site add-member",
		synopsis: "--org ORG --site SITE --user NAME",
		summary:  "make a person a member of a site",
		help: `Make a person a member of a site; their tokens carry it from their next
request. Adding a member again changes nothing.`,
		define: defineSiteAddMember,
	},
	{
		name:     "site remove-member",
		synopsis: "--org ORG --site SITE --user NAME",
		summary:  "end a person's membership of a site",
		help:     "End a person's membership of a site; their tokens lose it from their next request.",
		define:   defineSiteRemoveMember,
	},
	{
		name:     "audit list",
		synopsis: "[--org ORG] [--limit N]",
		summary:  "show the audit trail, newest first",
		help: `Show the audit trail of every change, newest first. With --server, the
token's org only (it needs platform.tokens).`,
		define: defineAuditList,
		remote: true,
	},
	{
		name:     "seats",
		synopsis: "--org ORG",
		summary:  "count an org's seats: active people (service users never are)",
		help: `Count an org's seats: every active person is one, whether or not they hold
tokens; how many of them hold active user tokens; and the service users,
which never take a seat. With --server, the token's org (it needs
platform.users).`,
		define: defineSeats,
		remote: true,
	},
	{
		name:     "token report",
		synopsis: "[--found-at WHERE] < TEXT",
		summary:  "stop every leaked token found in the standard input",
		help: `Read text from the standard input (a log, a file, a paste), find every
scimgate token in it, and stop each one still live at once: a service token
is revoked (an admin can regenerate it), a user token deleted. Prints what
became of each: revoked, deleted, already dead, unknown, malformed. Each known
token's org records the report in its audit trail, with --found-at. With
--server, any active token may report (its own details shown where it may
see them).`,
		define: defineTokenReport,
		remote: true,
	},
	{
		name:     "token inspect",
		synopsis: "< TOKEN",
		summary:  "show a token's ID, kind, owner, org and status, changing nothing",
		help: `Read one token from the standard input (never an argument: shell history
keeps those) and show its ID, kind, owner, org and status, without changing
anything. With --server, the token must be the caller's own or, with
platform.tokens, one of its org's.`,
		define: defineTokenInspect,
		remote: true,
	},
}

// ---- serve, migrate ----

func defineServe(fs *flag.FlagSet) action {
	checkConfig := fs.Bool("check-config", false, `validate the configuration, print "config ok" and exit`)
	var o configOverrides
	fs.StringVar(&o.Upstream, "upstream", "", "the API behind the proxy, an http or https URL (env SCIMGATE_UPSTREAM)")
	fs.StringVar(&o.Listen, "listen", "", "the proxy's listen address, host:port (env SCIMGATE_LISTEN)")
	fs.StringVar(&o.ManagementListen, "management-listen", "", "the listen address of /healthz and /readyz, host:port (env SCIMGATE_MANAGEMENT_LISTEN)")
	return func(ctx context.Context, c *cli, _ []string) error {
		cfg, err := c.config(o)
		if err != nil {
			return err
		}
		if err := cfg.ValidateServe(); err != nil {
			return &usageError{fmt.Errorf("config: %w", err)}
		}
		if *checkConfig {
			fmt.Fprintln(c.stdout, "config ok")
			return nil
		}
		return serve(ctx, cfg, c.stdout, c.stderr)
	}
}

func defineMigrate(fs *flag.FlagSet) action {
	return func(ctx context.Context, c *cli, _ []string) error {
		if _, err := c.openService(ctx, true); err != nil {
			return err
		}
		if c.global.json {
			return printJSON(c.stdout, map[string]any{"migrated": true})
		}
		fmt.Fprintln(c.stdout, "database schema is up to date")
		return nil
	}
}

// ---- orgs ----

func defineOrgCreate(fs *flag.FlagSet) action {
	name := fs.String("name", "", "the org's name (required)")
	days := fs.Int("user-token-inactivity-days", 0, fmt.Sprintf("user tokens unused for N days expire (default %d)", tokens.DefaultInactivityDays))
	return func(ctx context.Context, c *cli, _ []string) error {
		if err := required("--name", *name); err != nil {
			return err
		}
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		org, err := svc.CreateOrg(ctx, tokens.Operator, *name, *days)
		if err != nil {
			return err
		}
		return c.printOrgs([]tokens.Org{*org}, true)
	}
}

func defineOrgList(fs *flag.FlagSet) action {
	return func(ctx context.Context, c *cli, _ []string) error {
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		orgs, err := svc.Orgs(ctx)
		if err != nil {
			return fmt.Errorf("list orgs: %w", err)
		}
		return c.printOrgs(orgs, false)
	}
}

// ---- users ----

func defineUserCreate(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required)")
	userName := fs.String("user-name", "", "the person's unique user name in the org (required)")
	displayName := fs.String("display-name", "", "the name to show")
	email := fs.String("email", "", "the person's e-mail address")
	externalID := fs.String("external-id", "", "the person's ID in the identity provider")
	return func(ctx context.Context, c *cli, _ []string) error {
		if err := required("--org", *orgName, "--user-name", *userName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		u := &tokens.User{OrgID: org.ID, UserName: *userName, DisplayName: *displayName, ExternalID: *externalID, Active: true}
		if *email != "" {
			u.Emails = []tokens.Email{{Value: *email, Primary: true}}
		}
		if err := svc.CreateUser(ctx, tokens.Operator, u); err != nil {
			return err
		}
		return c.printUsers(org, []tokens.User{*u}, true)
	}
}

func defineUserList(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
		if err := required("--org", *orgName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		users, _, err := svc.Users(ctx, org.ID, tokens.UserFilter{})
		if err != nil {
			return fmt.Errorf("list users of org %q: %w", org.Name, err)
		}
		return c.printUsers(org, users, false)
	}
}

func defineUserDeactivate(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required)")
	userName := fs.String("user", "", "the person's user name (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
		if err := required("--org", *orgName, "--user", *userName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		u, err := svc.UserByName(ctx, org.ID, *userName)
		if err != nil {
			return err
		}
		expired, err := svc.DeactivateUser(ctx, tokens.Operator, org.ID, u.ID)
		if err != nil {
			return err
		}
		servers := c.confirmApplied(ctx)
		if c.global.json {
			return printJSON(c.stdout, deactivatedView{ID: u.ID, Org: org.Name, UserName: u.UserName, Active: false, ExpiredTokens: expired, Servers: servers})
		}
		fmt.Fprintf(c.stdout, "deactivated user %q in org %q; %d active %s expired", u.UserName, org.Name, expired, plural(expired, "token", "tokens"))
		if servers != nil && expired > 0 {
			fmt.Fprintf(c.stdout, ": %s", servers.sentence("refused", "refuses them"))
		}
		fmt.Fprintln(c.stdout)
		return nil
	}
}

// ---- service tokens ----

func defineServiceTokenCreate(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	name := fs.String("name", "", "the service user's and token's name (required)")
	days := fs.Int("inactivity-days", tokens.DefaultInactivityDays, "the token expires after N days unused: 31, 45, 60 or 180")
	perms := fs.String("permissions", "", "comma-separated permission sets or single permissions (default all of them; with --server, all the token may grant)")
	return func(ctx context.Context, c *cli, _ []string) error {
		sets, err := permissionList(fs, *perms)
		if err != nil {
			return err
		}
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			if err := required("--name", *name); err != nil {
				return err
			}
			return remoteServiceTokenCreate(ctx, c, rc, *orgName, tokens.ServiceTokenSpec{Name: *name, InactivityDays: *days, PermissionSets: sets})
		}
		if err := required("--org", *orgName, "--name", *name); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		st, secret, err := svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{
			Name: *name, InactivityDays: *days, PermissionSets: sets,
		})
		if err != nil {
			return err
		}
		return c.printNewToken(serviceTokenView(org.Name, st), secret)
	}
}

func defineServiceTokenList(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteServiceTokenList(ctx, c, rc, *orgName)
		}
		if err := required("--org", *orgName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		stream := c.newTokenStream(tokens.KindService, "no service tokens in org "+quote(org.Name))
		return c.listTokens(ctx, svc, org, tokens.KindService, tokens.TokenQuery{}, stream)
	}
}

// listTokens streams every page of an org's tokens of one kind.
func (c *cli) listTokens(ctx context.Context, svc *tokens.Service, org *tokens.Org, kind tokens.Kind, q tokens.TokenQuery, stream *tokenStream) error {
	q.Limit = tokens.MaxPageSize
	for {
		page, err := svc.ListTokens(ctx, org.ID, kind, q)
		if err != nil {
			return fmt.Errorf("list %s tokens of org %q: %w", kind, org.Name, err)
		}
		views := make([]tokenView, len(page.Tokens))
		for i := range page.Tokens {
			views[i] = tokenViewOfInfo(&page.Tokens[i])
		}
		if err := stream.add(views); err != nil {
			return err
		}
		if page.Next == "" {
			return stream.close()
		}
		q.Cursor = page.Next
	}
}

func defineServiceTokenEdit(fs *flag.FlagSet) action {
	name := fs.String("name", "", "the new name")
	days := fs.Int("inactivity-days", 0, "the new inactivity window in days: 31, 45, 60 or 180")
	perms := fs.String("permissions", "", "the new comma-separated permission sets or single permissions")
	return func(ctx context.Context, c *cli, args []string) error {
		var edit tokens.ServiceTokenEdit
		var err error
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "name":
				edit.Name = name
			case "inactivity-days":
				edit.InactivityDays = days
			case "permissions":
				edit.PermissionSets, err = permissionList(fs, *perms)
			}
		})
		if err != nil {
			return err
		}
		if edit.Name == nil && edit.InactivityDays == nil && edit.PermissionSets == nil {
			return usagef("service-token edit: nothing to change: give --name, --inactivity-days or --permissions")
		}
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteServiceTokenEdit(ctx, c, rc, args[0], edit)
		}
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		st, err := svc.EditServiceToken(ctx, tokens.Operator, "", args[0], edit)
		if err != nil {
			return err
		}
		servers := c.confirmApplied(ctx)
		org, err := c.orgName(ctx, svc, st.OrgID)
		if err != nil {
			return err
		}
		v := serviceTokenView(org, st)
		v.Servers = servers
		return c.printToken(v)
	}
}

func defineServiceTokenRevoke(fs *flag.FlagSet) action {
	return func(ctx context.Context, c *cli, args []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteDone(ctx, c, rc, "POST", "/service-tokens/"+url.PathEscape(args[0])+"/revoke", args[0], "revoked",
				"revoked service token %s: it is refused from now on")
		}
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		if err := svc.RevokeServiceToken(ctx, tokens.Operator, "", args[0]); err != nil {
			return err
		}
		return c.printDone(args[0], "revoked", c.confirmApplied(ctx), "revoked service token %s", args[0])
	}
}

func defineServiceTokenRegenerate(fs *flag.FlagSet) action {
	return func(ctx context.Context, c *cli, args []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteServiceTokenRegenerate(ctx, c, rc, args[0])
		}
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		st, secret, err := svc.RegenerateServiceToken(ctx, tokens.Operator, "", args[0])
		if err != nil {
			return err
		}
		org, err := c.orgName(ctx, svc, st.OrgID)
		if err != nil {
			return err
		}
		return c.printNewToken(serviceTokenView(org, st), secret)
	}
}

func defineServiceTokenDelete(fs *flag.FlagSet) action {
	return func(ctx context.Context, c *cli, args []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteDone(ctx, c, rc, "DELETE", "/service-tokens/"+url.PathEscape(args[0]), args[0], "deleted",
				"deleted service token %s and its service user")
		}
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		if err := svc.DeleteServiceToken(ctx, tokens.Operator, "", args[0]); err != nil {
			return err
		}
		return c.printDone(args[0], "deleted", nil, "deleted service token %s and its service user", args[0])
	}
}

// ---- user tokens ----

func defineUserTokenCreate(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	userName := fs.String("user", "", "the person's user name (required without --server, where the token's person is the only one allowed)")
	name := fs.String("name", "", "the token's name, such as the laptop or script it is for (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			if err := required("--name", *name); err != nil {
				return err
			}
			return remoteUserTokenCreate(ctx, c, rc, *orgName, *userName, *name)
		}
		if err := required("--org", *orgName, "--user", *userName, "--name", *name); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		u, err := svc.UserByName(ctx, org.ID, *userName)
		if err != nil {
			return err
		}
		tok, secret, err := svc.CreateUserToken(ctx, tokens.Operator, org.ID, u.ID, *name)
		if err != nil {
			return err
		}
		return c.printNewToken(userTokenView(org.Name, u.UserName, tok), secret)
	}
}

func defineUserTokenList(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	userName := fs.String("user", "", "only the tokens of the person with this user name")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteUserTokenList(ctx, c, rc, *orgName, *userName)
		}
		if err := required("--org", *orgName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		// Owners are read by ID with each page: never every user of the org.
		var q tokens.TokenQuery
		empty := "no user tokens in org " + quote(org.Name)
		if *userName != "" {
			u, err := svc.UserByName(ctx, org.ID, *userName)
			if err != nil {
				return err
			}
			q = tokens.TokenQuery{OwnerID: u.ID}
			empty = fmt.Sprintf("user %q has no tokens", u.UserName)
		}
		return c.listTokens(ctx, svc, org, tokens.KindUser, q, c.newTokenStream(tokens.KindUser, empty))
	}
}

func defineUserTokenDelete(fs *flag.FlagSet) action {
	return func(ctx context.Context, c *cli, args []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteDone(ctx, c, rc, "DELETE", "/user-tokens/"+url.PathEscape(args[0]), args[0], "deleted",
				"deleted user token %s: it is refused from now on")
		}
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		if err := svc.DeleteUserToken(ctx, tokens.Operator, "", "", args[0]); err != nil {
			return err
		}
		return c.printDone(args[0], "deleted", c.confirmApplied(ctx), "deleted user token %s", args[0])
	}
}

// ---- audit ----

func defineAuditList(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "only the events of the org with this name")
	limit := fs.Int("limit", 100, "show at most N events")
	return func(ctx context.Context, c *cli, _ []string) error {
		if *limit < 1 {
			return usagef("audit list: --limit must be at least 1, not %d", *limit)
		}
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			return remoteAuditList(ctx, c, rc, *orgName, *limit)
		}
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		var orgID string
		if *orgName != "" {
			org, err := svc.OrgByName(ctx, *orgName)
			if err != nil {
				return err
			}
			orgID = org.ID
		}
		orgs, err := svc.Orgs(ctx)
		if err != nil {
			return fmt.Errorf("list orgs: %w", err)
		}
		orgNames := make(map[string]string, len(orgs))
		for _, o := range orgs {
			orgNames[o.ID] = o.Name
		}
		stream := c.newAuditStream()
		q := tokens.AuditQuery{}
		for left := *limit; left > 0; {
			q.Limit = min(left, tokens.MaxPageSize)
			page, err := svc.AuditTrail(ctx, orgID, q)
			if err != nil {
				return fmt.Errorf("list audit events: %w", err)
			}
			if err := stream.add(auditViews(page.Events, orgNames)); err != nil {
				return err
			}
			left -= len(page.Events)
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		return stream.close()
	}
}

// ---- helpers ----

// required checks flag/value pairs and names the first missing flag.
func required(flagsAndValues ...string) error {
	for i := 0; i+1 < len(flagsAndValues); i += 2 {
		if strings.TrimSpace(flagsAndValues[i+1]) == "" {
			return usagef("%s is required", flagsAndValues[i])
		}
	}
	return nil
}

// permissionList splits --permissions. Not given means nil: every set.
func permissionList(fs *flag.FlagSet, value string) ([]string, error) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "permissions" })
	if !given {
		return nil, nil
	}
	var sets []string
	for p := range strings.SplitSeq(value, ",") {
		if p = strings.TrimSpace(p); p != "" {
			sets = append(sets, p)
		}
	}
	if len(sets) == 0 {
		return nil, usagef("--permissions: give at least one permission set or permission, or leave the flag out for all of them")
	}
	return sets, nil
}

// orgName names the org of a token found by ID alone.
func (c *cli) orgName(ctx context.Context, svc *tokens.Service, orgID string) (string, error) {
	orgs, err := svc.Orgs(ctx)
	if err != nil {
		return "", fmt.Errorf("list orgs: %w", err)
	}
	for _, o := range orgs {
		if o.ID == orgID {
			return o.Name, nil
		}
	}
	return orgID, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
