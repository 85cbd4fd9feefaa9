package main

import (
	"context"
	"flag"
	"fmt"
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
/scim/v2 (SCIM 2.0 for identity providers), /metrics, /healthz and /readyz on
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
	},
	{
		name:     "service-token list",
		synopsis: "--org ORG",
		summary:  "list an org's service tokens",
		help:     "List the service tokens of an org with their permission sets.",
		define:   defineServiceTokenList,
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
	},
	{
		name:     "service-token regenerate",
		synopsis: "ID",
		summary:  "give a revoked service token a new secret",
		help: `Give a revoked service token a new secret and make it active again, for the
same service user; print the new token once. The old secret never works again.`,
		args:   []string{"ID"},
		define: defineServiceTokenRegenerate,
	},
	{
		name:     "service-token delete",
		synopsis: "ID",
		summary:  "delete a revoked service token",
		help:     "Delete a revoked service token and its service user. Revoke an active one first.",
		args:     []string{"ID"},
		define:   defineServiceTokenDelete,
	},
	{
		name:     "user-token create",
		synopsis: "--org ORG --user NAME --name TOKEN_NAME",
		summary:  "create a token for a person",
		help: `Create an API token for an active person and print it once. A person holds at
most 10 active tokens; the token has their permissions and groups.`,
		define: defineUserTokenCreate,
	},
	{
		name:     "user-token list",
		synopsis: "--org ORG [--user NAME]",
		summary:  "list an org's user tokens",
		help:     "List the user tokens of an org, or of one person in it.",
		define:   defineUserTokenList,
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
	},
	{
		name:     "audit list",
		synopsis: "[--org ORG] [--limit N]",
		summary:  "show the audit trail, newest first",
		help:     "Show the audit trail of every change, newest first.",
		define:   defineAuditList,
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
	orgName := fs.String("org", "", "the org's name (required)")
	name := fs.String("name", "", "the service user's and token's name (required)")
	days := fs.Int("inactivity-days", tokens.DefaultInactivityDays, "the token expires after N days unused: 31, 45, 60 or 180")
	perms := fs.String("permissions", "", "comma-separated permission sets or single permissions (default all of them)")
	return func(ctx context.Context, c *cli, _ []string) error {
		if err := required("--org", *orgName, "--name", *name); err != nil {
			return err
		}
		sets, err := permissionList(fs, *perms)
		if err != nil {
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
	orgName := fs.String("org", "", "the org's name (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
		if err := required("--org", *orgName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		sts, err := svc.ServiceTokens(ctx, org.ID)
		if err != nil {
			return fmt.Errorf("list service tokens of org %q: %w", org.Name, err)
		}
		views := make([]tokenView, 0, len(sts))
		for i := range sts {
			views = append(views, serviceTokenView(org.Name, &sts[i]))
		}
		return c.printTokens(views, "no service tokens in org "+quote(org.Name))
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
	orgName := fs.String("org", "", "the org's name (required)")
	userName := fs.String("user", "", "the person's user name (required)")
	name := fs.String("name", "", "the token's name, such as the laptop or script it is for (required)")
	return func(ctx context.Context, c *cli, _ []string) error {
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
	orgName := fs.String("org", "", "the org's name (required)")
	userName := fs.String("user", "", "only the tokens of the person with this user name")
	return func(ctx context.Context, c *cli, _ []string) error {
		if err := required("--org", *orgName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		var ownerID string
		empty := "no user tokens in org " + quote(org.Name)
		if *userName != "" {
			u, err := svc.UserByName(ctx, org.ID, *userName)
			if err != nil {
				return err
			}
			ownerID = u.ID
			empty = fmt.Sprintf("user %q has no tokens", u.UserName)
		}
		toks, err := svc.UserTokens(ctx, org.ID, ownerID)
		if err != nil {
			return fmt.Errorf("list user tokens of org %q: %w", org.Name, err)
		}
		// Tokens of removed users stay listed, expired: name their owners too.
		users, _, err := svc.Users(ctx, org.ID, tokens.UserFilter{WithRemoved: true})
		if err != nil {
			return fmt.Errorf("list users of org %q: %w", org.Name, err)
		}
		userNames := make(map[string]string, len(users))
		for _, u := range users {
			userNames[u.ID] = u.UserName
		}
		views := make([]tokenView, 0, len(toks))
		for i := range toks {
			views = append(views, userTokenView(org.Name, userNames[toks[i].OwnerID], &toks[i]))
		}
		return c.printTokens(views, empty)
	}
}

func defineUserTokenDelete(fs *flag.FlagSet) action {
	return func(ctx context.Context, c *cli, args []string) error {
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
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		f := tokens.AuditFilter{Limit: *limit}
		if *orgName != "" {
			org, err := svc.OrgByName(ctx, *orgName)
			if err != nil {
				return err
			}
			f.OrgID = org.ID
		}
		events, err := svc.Audit(ctx, f)
		if err != nil {
			return fmt.Errorf("list audit events: %w", err)
		}
		orgs, err := svc.Orgs(ctx)
		if err != nil {
			return fmt.Errorf("list orgs: %w", err)
		}
		orgNames := make(map[string]string, len(orgs))
		for _, o := range orgs {
			orgNames[o.ID] = o.Name
		}
		return c.printAudit(events, orgNames)
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
