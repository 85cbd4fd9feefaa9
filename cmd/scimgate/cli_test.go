package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// runMainEnv makes the test binary run main instead of the tests, so that a
// test can check what the real binary prints and how it exits.
const runMainEnv = "SCIMGATE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testCLI runs scimgate commands against one database, as separate
// invocations of run, like a person at a shell.
type testCLI struct {
	t   *testing.T
	dsn string
	env map[string]string
}

// newSQLiteDB creates a migrated SQLite database in a directory removed
// when the test ends, and returns its path: commands other than migrate
// (and serve on its default path) refuse a database that does not exist.
func newSQLiteDB(t *testing.T) string {
	t.Helper()
	path := sqltest.SQLitePath(t)
	createSQLiteDB(t, path)
	return path
}

func createSQLiteDB(t *testing.T, path string) {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func newTestCLI(t *testing.T, dialect string) *testCLI {
	switch dialect {
	case sqlstore.SQLite:
		return &testCLI{t: t, dsn: newSQLiteDB(t)}
	case sqlstore.Postgres:
		return &testCLI{t: t, dsn: sqltest.PostgresDSN(t)}
	}
	t.Fatalf("unknown dialect %q", dialect)
	return nil
}

// run runs "scimgate --database DSN args...".
func (c *testCLI) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	argv := append([]string{"scimgate", "--database", c.dsn}, args...)
	err = run(context.Background(), argv, envMap(c.env), &out, &errOut)
	return out.String(), errOut.String(), err
}

// ok runs a command that must succeed and returns its stdout.
func (c *testCLI) ok(args ...string) string {
	c.t.Helper()
	stdout, stderr, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("scimgate %s: %v (exit %d)\nstderr: %s", strings.Join(args, " "), err, exitCode(err), stderr)
	}
	return stdout
}

// okJSON runs a command with --json and decodes its output into v.
func (c *testCLI) okJSON(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("scimgate %s --json printed %q: %v", strings.Join(args, " "), out, err)
	}
}

// fails runs a command that must fail with the exit code and a message
// containing want, as main would print it.
func (c *testCLI) fails(code int, want string, args ...string) {
	c.t.Helper()
	stdout, _, err := c.run(args...)
	if err == nil {
		c.t.Fatalf("scimgate %s succeeded, printing %q; want exit %d: %s", strings.Join(args, " "), stdout, code, want)
	}
	if got := exitCode(err); got != code {
		c.t.Errorf("scimgate %s: exit %d (%v), want %d", strings.Join(args, " "), got, err, code)
	}
	if msg := errorMessage(err); !strings.Contains(msg, want) {
		c.t.Errorf("scimgate %s: %q, want it to contain %q", strings.Join(args, " "), msg, want)
	}
}

// createdToken is the JSON of create and regenerate.
type createdToken struct {
	Token string `json:"token"`
	tokenView
}

func TestCommands(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			testCommands(t, newTestCLI(t, dialect))
		})
	}
}

func testCommands(t *testing.T, c *testCLI) {
	// A fresh database: every command migrates first.
	if out := c.ok("migrate"); !strings.Contains(out, "up to date") {
		t.Errorf("migrate printed %q", out)
	}
	var orgs []orgView
	c.okJSON(&orgs, "org", "list")
	if orgs == nil || len(orgs) != 0 {
		t.Errorf("org list --json on an empty database = %#v, want []", orgs)
	}

	// Orgs.
	var org orgView
	c.okJSON(&org, "org", "create", "--name", "acme")
	if org.Name != "acme" || org.UserTokenInactivityDays != tokens.DefaultInactivityDays || !strings.HasPrefix(org.ID, "org_") {
		t.Errorf("org create = %+v", org)
	}
	c.okJSON(&org, "org", "create", "--name", "globex", "--user-token-inactivity-days", "30")
	if org.UserTokenInactivityDays != 30 {
		t.Errorf("org create --user-token-inactivity-days 30 = %+v", org)
	}
	c.fails(exitRefused, `org "acme" already exists`, "org", "create", "--name", "acme")
	c.fails(exitUsage, "--name is required", "org", "create")
	c.fails(exitUsage, "user token inactivity window must be 1 to 3650 days", "org", "create", "--name", "x", "--user-token-inactivity-days", "-1")
	c.okJSON(&orgs, "org", "list")
	if names := orgNames(orgs); !slices.Equal(names, []string{"acme", "globex"}) {
		t.Errorf("org list = %v, want acme, globex", names)
	}
	if out := c.ok("org", "list"); !regexp.MustCompile(`(?m)^NAME +ID +USER TOKEN INACTIVITY +CREATED\nacme +org_`).MatchString(out) {
		t.Errorf("org list printed\n%s", out)
	}

	// Users.
	var alice userView
	c.okJSON(&alice, "user", "create", "--org", "acme", "--user-name", "alice", "--display-name", "Alice Liddell",
		"--email", "alice@acme.example", "--external-id", "okta-1")
	if alice.UserName != "alice" || alice.DisplayName != "Alice Liddell" || !slices.Equal(alice.Emails, []string{"alice@acme.example"}) ||
		alice.ExternalID != "okta-1" || !alice.Active || alice.Org != "acme" {
		t.Errorf("user create = %+v", alice)
	}
	c.ok("user", "create", "--org", "acme", "--user-name", "bob")
	c.ok("user", "create", "--org", "globex", "--user-name", "alice") // the same person in another org
	c.fails(exitRefused, `user name "Alice" is already taken in this org`, "user", "create", "--org", "acme", "--user-name", "Alice")
	c.fails(exitNotFound, `org "initech" not found`, "user", "create", "--org", "initech", "--user-name", "x")
	c.fails(exitUsage, "--user-name is required", "user", "create", "--org", "acme")
	var users []userView
	c.okJSON(&users, "user", "list", "--org", "acme")
	if len(users) != 2 || users[0].UserName == users[1].UserName {
		t.Errorf("user list = %+v, want alice and bob", users)
	}
	if out := c.ok("user", "list", "--org", "acme"); !strings.Contains(out, "USER NAME") || !strings.Contains(out, "Alice Liddell") {
		t.Errorf("user list printed\n%s", out)
	}

	// User tokens: at most 10 active per person.
	var first createdToken
	c.okJSON(&first, "user-token", "create", "--org", "acme", "--user", "alice", "--name", "laptop")
	if _, err := tokens.Parse(first.Token); err != nil || !strings.HasPrefix(first.Token, "sgu_") {
		t.Errorf("user-token create token = %q: %v", first.Token, err)
	}
	if !strings.HasPrefix(first.ID, "tok_") || first.Kind != tokens.KindUser || first.User != "alice" || first.Org != "acme" ||
		first.Status != tokens.StatusActive || first.InactivityDays != 45 || first.DisplayPrefix != first.Token[:8] {
		t.Errorf("user-token create = %+v", first.tokenView)
	}
	for i := 2; i <= tokens.MaxActiveUserTokens; i++ {
		c.ok("user-token", "create", "--org", "acme", "--user", "alice", "--name", fmt.Sprint("token ", i))
	}
	c.fails(exitRefused, `user "alice" already has 10 active tokens, the most a user may have: delete one first`,
		"user-token", "create", "--org", "acme", "--user", "alice", "--name", "eleventh")
	c.ok("user-token", "delete", first.ID)
	c.ok("user-token", "create", "--org", "acme", "--user", "alice", "--name", "eleventh")
	c.fails(exitNotFound, "user token "+first.ID+" not found", "user-token", "delete", first.ID)
	c.fails(exitNotFound, `user "carol" not found`, "user-token", "create", "--org", "acme", "--user", "carol", "--name", "x")
	c.fails(exitUsage, "--name is required", "user-token", "create", "--org", "acme", "--user", "alice")

	var bobToken createdToken
	c.okJSON(&bobToken, "user-token", "create", "--org", "acme", "--user", "bob", "--name", "ci")
	var toks []tokenView
	c.okJSON(&toks, "user-token", "list", "--org", "acme", "--user", "bob")
	if len(toks) != 1 || toks[0].ID != bobToken.ID || toks[0].User != "bob" || toks[0].LastUsedAt != nil {
		t.Errorf("user-token list --user bob = %+v", toks)
	}
	c.okJSON(&toks, "user-token", "list", "--org", "acme")
	if len(toks) != tokens.MaxActiveUserTokens+1 {
		t.Errorf("user-token list --org acme lists %d tokens, want %d", len(toks), tokens.MaxActiveUserTokens+1)
	}
	if out := c.ok("user-token", "list", "--org", "acme", "--user", "bob"); !regexp.MustCompile(`(?m)^ID +USER +NAME +PREFIX +STATUS`).MatchString(out) ||
		!strings.Contains(out, bobToken.DisplayPrefix+"…") {
		t.Errorf("user-token list printed\n%s", out)
	}

	// Deactivating a person expires their tokens and refuses new ones.
	var deactivated deactivatedView
	c.okJSON(&deactivated, "user", "deactivate", "--org", "acme", "--user", "bob")
	if deactivated.Active || deactivated.ExpiredTokens != 1 || deactivated.UserName != "bob" {
		t.Errorf("user deactivate = %+v, want inactive with 1 expired token", deactivated)
	}
	c.okJSON(&toks, "user-token", "list", "--org", "acme", "--user", "bob")
	if len(toks) != 1 || toks[0].Status != tokens.StatusExpired || toks[0].StatusReason != tokens.ReasonUserDeactivated {
		t.Errorf("bob's token after deactivation = %+v, want expired (user_deactivated)", toks)
	}
	c.fails(exitRefused, `user "bob" is deactivated: only an active user can have tokens`,
		"user-token", "create", "--org", "acme", "--user", "bob", "--name", "again")
	c.fails(exitRefused, `user "bob" is already inactive`, "user", "deactivate", "--org", "acme", "--user", "bob")
	if out := c.ok("user", "deactivate", "--org", "globex", "--user", "alice"); !strings.Contains(out, `deactivated user "alice" in org "globex"; 0 active tokens expired`) {
		t.Errorf("user deactivate printed %q", out)
	}

	// Service tokens: at most 20 active per org.
	var svc createdToken
	c.okJSON(&svc, "service-token", "create", "--org", "acme", "--name", "okta")
	if !strings.HasPrefix(svc.Token, "sgs_") || svc.Kind != tokens.KindService || svc.InactivityDays != 45 ||
		!slices.Equal(svc.PermissionSets, slices.Sorted(slices.Values(tokens.BuiltinPermissions))) {
		t.Errorf("service-token create = %+v, want all permissions and 45 days", svc)
	}
	var limited createdToken
	c.okJSON(&limited, "service-token", "create", "--org", "acme", "--name", "scim only", "--inactivity-days", "180",
		"--permissions", "platform.users, platform.groups")
	if limited.InactivityDays != 180 || !slices.Equal(limited.PermissionSets, []string{"platform.groups", "platform.users"}) {
		t.Errorf("service-token create --permissions = %+v", limited.tokenView)
	}
	c.fails(exitUsage, "inactivity window must be 31, 45, 60 or 180 days, not 30",
		"service-token", "create", "--org", "acme", "--name", "x", "--inactivity-days", "30")
	c.fails(exitUsage, `unknown permission set "orders.read"`,
		"service-token", "create", "--org", "acme", "--name", "x", "--permissions", "orders.read")
	c.fails(exitUsage, "--permissions: give at least one", "service-token", "create", "--org", "acme", "--name", "x", "--permissions", ",")
	c.fails(exitNotFound, `org "initech" not found`, "service-token", "create", "--org", "initech", "--name", "x")
	for i := 3; i <= tokens.MaxActiveServiceTokens; i++ {
		c.ok("service-token", "create", "--org", "acme", "--name", fmt.Sprint("service ", i))
	}
	c.fails(exitRefused, "the org already has 20 active service tokens, the most it may have: revoke one first",
		"service-token", "create", "--org", "acme", "--name", "twenty-first")
	c.ok("service-token", "create", "--org", "globex", "--name", "other org") // the limit is per org

	// Lifecycle: revoke, regenerate only a revoked one, delete only a revoked one.
	c.fails(exitRefused, "only a revoked token can be regenerated", "service-token", "regenerate", svc.ID)
	c.fails(exitRefused, "revoke it before deleting it", "service-token", "delete", svc.ID)
	if out := c.ok("service-token", "revoke", svc.ID); !strings.Contains(out, "revoked service token "+svc.ID) {
		t.Errorf("service-token revoke printed %q", out)
	}
	c.fails(exitRefused, "already revoked", "service-token", "revoke", svc.ID)
	c.ok("service-token", "create", "--org", "acme", "--name", "twenty-first") // the revoked one freed a place
	c.fails(exitRefused, "the org already has 20 active service tokens", "service-token", "regenerate", svc.ID)
	c.ok("service-token", "revoke", limited.ID, "--json")

	var regenerated createdToken
	c.okJSON(&regenerated, "service-token", "regenerate", svc.ID)
	if regenerated.ID != svc.ID || regenerated.Token == svc.Token || regenerated.Status != tokens.StatusActive {
		t.Errorf("service-token regenerate = %+v, want the same ID, a new token, active", regenerated.tokenView)
	}
	if _, err := tokens.Parse(regenerated.Token); err != nil {
		t.Errorf("regenerated token %q: %v", regenerated.Token, err)
	}

	var done map[string]string
	c.okJSON(&done, "service-token", "delete", limited.ID)
	if done["id"] != limited.ID || done["result"] != "deleted" {
		t.Errorf("service-token delete --json = %v", done)
	}
	c.fails(exitNotFound, "service token "+limited.ID+" not found", "service-token", "delete", limited.ID)
	c.fails(exitNotFound, "service token "+first.ID+" not found", "service-token", "revoke", first.ID) // a user token
	c.fails(exitNotFound, "user token "+svc.ID+" not found", "user-token", "delete", svc.ID)           // a service token

	// Edit.
	var edited tokenView
	c.okJSON(&edited, "service-token", "edit", svc.ID, "--name", "okta-prod", "--inactivity-days", "60", "--permissions", "platform.users")
	if edited.Name != "okta-prod" || edited.InactivityDays != 60 || !slices.Equal(edited.PermissionSets, []string{"platform.users"}) {
		t.Errorf("service-token edit = %+v", edited)
	}
	c.fails(exitUsage, "nothing to change", "service-token", "edit", svc.ID)
	c.fails(exitUsage, "inactivity window must be 31, 45, 60 or 180 days, not 7", "service-token", "edit", svc.ID, "--inactivity-days", "7")
	c.fails(exitNotFound, "service token tok_missing not found", "service-token", "edit", "tok_missing", "--name", "x")

	var services []tokenView
	c.okJSON(&services, "service-token", "list", "--org", "acme")
	if len(services) != tokens.MaxActiveServiceTokens { // 21 created, one deleted
		t.Errorf("service-token list lists %d tokens, want %d", len(services), tokens.MaxActiveServiceTokens)
	}
	for _, s := range services {
		if s.ID == svc.ID && (s.Name != "okta-prod" || s.Status != tokens.StatusActive) {
			t.Errorf("service-token list shows %+v, want okta-prod, active", s)
		}
	}
	out := c.ok("service-token", "list", "--org", "acme")
	if !regexp.MustCompile(`(?m)^ID +NAME +PREFIX +STATUS +INACTIVITY +PERMISSIONS +LAST USED +EXPIRES +CREATED$`).MatchString(out) ||
		!strings.Contains(out, "okta-prod") || !strings.Contains(out, "60 days") {
		t.Errorf("service-token list printed\n%s", out)
	}

	// Audit.
	var events []auditView
	c.okJSON(&events, "audit", "list", "--org", "acme", "--limit", "3")
	if len(events) != 3 || events[0].Action != "token.edit" || events[0].Target != svc.ID || events[0].Actor != string(tokens.Operator) || events[0].Org != "acme" {
		t.Errorf("audit list --limit 3 = %+v, want 3 events, the edit first", events)
	}
	c.okJSON(&events, "audit", "list", "--limit", "1000")
	if !slices.ContainsFunc(events, func(e auditView) bool { return e.Org == "globex" }) {
		t.Errorf("audit list without --org has no globex event")
	}
	if out := c.ok("audit", "list", "--org", "globex"); !strings.Contains(out, "org.create") || !strings.Contains(out, "TIME") {
		t.Errorf("audit list printed\n%s", out)
	}
	c.fails(exitUsage, "--limit must be at least 1", "audit", "list", "--limit", "0")

	// Secrets appear only where they were created: no list shows them.
	for _, args := range [][]string{
		{"user-token", "list", "--org", "acme"}, {"service-token", "list", "--org", "acme"}, {"audit", "list", "--limit", "1000"},
		{"user-token", "list", "--org", "acme", "--json"}, {"service-token", "list", "--org", "acme", "--json"}, {"audit", "list", "--json"},
	} {
		stdout, stderr, err := c.run(args...)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{first.Token, bobToken.Token, svc.Token, regenerated.Token, limited.Token} {
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("scimgate %s shows a plaintext token", strings.Join(args, " "))
			}
		}
	}
}

func orgNames(orgs []orgView) []string {
	var names []string
	for _, o := range orgs {
		names = append(names, o.Name)
	}
	slices.Sort(names)
	return names
}

// The database keeps only hashes: no plaintext token is anywhere in the
// SQLite files.
func TestPlaintextNotInDatabase(t *testing.T) {
	c := newTestCLI(t, sqlstore.SQLite)
	c.ok("org", "create", "--name", "acme")
	c.ok("user", "create", "--org", "acme", "--user-name", "alice")
	var secrets []string
	var tok createdToken
	c.okJSON(&tok, "user-token", "create", "--org", "acme", "--user", "alice", "--name", "laptop")
	secrets = append(secrets, tok.Token)
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "ci")
	secrets = append(secrets, tok.Token)
	c.ok("service-token", "revoke", tok.ID)
	c.okJSON(&tok, "service-token", "regenerate", tok.ID)
	secrets = append(secrets, tok.Token)

	files, _ := filepath.Glob(c.dsn + "*") // the database, its -wal and -shm
	if len(files) == 0 {
		t.Fatalf("no database files at %s", c.dsn)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) || bytes.Contains(data, []byte(s[4:])) {
				t.Errorf("%s holds a plaintext token", filepath.Base(f))
			}
		}
	}
}

func TestGlobalFlagsAnywhere(t *testing.T) {
	dsn := newSQLiteDB(t)
	tests := [][]string{
		{"--database", dsn, "--json", "org", "list"},
		{"--json", "org", "list", "--database", dsn},
		{"org", "list", "--database", dsn, "--json"},
		{"org", "list", "--json=true", "-database", dsn},
	}
	for _, args := range tests {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append([]string{"scimgate"}, args...), noEnv, &out, &errOut); err != nil {
			t.Fatalf("scimgate %s: %v", strings.Join(args, " "), err)
		}
		if strings.TrimSpace(out.String()) != "[]" {
			t.Errorf("scimgate %s printed %q, want []", strings.Join(args, " "), out.String())
		}
	}

	// A flag after an ID argument still counts.
	c := &testCLI{t: t, dsn: dsn}
	c.ok("org", "create", "--name", "acme")
	var tok createdToken
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "ci")
	out := c.ok("service-token", "revoke", tok.ID, "--json")
	if !strings.Contains(out, `"result": "revoked"`) {
		t.Errorf("service-token revoke ID --json printed %q", out)
	}

	// The database from the environment, and from a config file.
	other := newSQLiteDB(t)
	var buf bytes.Buffer
	if err := run(context.Background(), []string{"scimgate", "org", "create", "--name", "from-env"},
		envMap(map[string]string{"SCIMGATE_DATABASE": other}), &buf, &buf); err != nil {
		t.Fatal(err)
	}
	cfgFile := writeConfig(t, "database: "+other+"\n")
	buf.Reset()
	if err := run(context.Background(), []string{"scimgate", "--config", cfgFile, "org", "list"}, noEnv, &buf, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "from-env") {
		t.Errorf("org list with the config file printed %q, want org from-env", buf.String())
	}
	buf.Reset()
	if err := run(context.Background(), []string{"scimgate", "org", "list"},
		envMap(map[string]string{"SCIMGATE_CONFIG": cfgFile}), &buf, &buf); err != nil || !strings.Contains(buf.String(), "from-env") {
		t.Errorf("org list with SCIMGATE_CONFIG = %v, printed %q", err, buf.String())
	}
}

func TestUsageErrors(t *testing.T) {
	dsn := sqltest.SQLitePath(t)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"org"}, "org: which one?"},
		{[]string{"org", "frobnicate"}, `unknown command "org frobnicate"`},
		{[]string{"--bogus", "org", "list"}, "flag provided but not defined: -bogus"},
		{[]string{"org", "list", "--bogus"}, "org list: flag provided but not defined: -bogus"},
		{[]string{"org", "list", "extra"}, `org list takes no arguments, got ["extra"]`},
		{[]string{"service-token", "revoke"}, "service-token revoke: give the ID"},
		{[]string{"service-token", "revoke", "a", "b"}, `service-token revoke takes one ID, got ["a" "b"]`},
		{[]string{"service-token", "create", "--org", "acme", "--name", "x", "--inactivity-days", "many"}, "invalid value"},
		{[]string{"org", "list", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, "read config"},
		{[]string{"org", "list", "--database", "mysql://db/x"}, "database: \"mysql://db/x\" is neither"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		args := append([]string{"scimgate"}, tt.args...)
		if !slices.Contains(tt.args, "--database") {
			args = append(args[:1], append([]string{"--database", dsn}, args[1:]...)...)
		}
		err := run(context.Background(), args, noEnv, &out, &errOut)
		if err == nil {
			t.Errorf("scimgate %s succeeded", strings.Join(tt.args, " "))
			continue
		}
		if code := exitCode(err); code != exitUsage {
			t.Errorf("scimgate %s: exit %d, want %d", strings.Join(tt.args, " "), code, exitUsage)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("scimgate %s: %q, want it to contain %q", strings.Join(tt.args, " "), err, tt.want)
		}
		if out.Len() != 0 {
			t.Errorf("scimgate %s printed %q on stdout", strings.Join(tt.args, " "), out.String())
		}
	}

	// An unknown command prints the usage on stderr.
	var out, errOut bytes.Buffer
	run(context.Background(), []string{"scimgate", "frobnicate"}, noEnv, &out, &errOut)
	if !strings.Contains(errOut.String(), "Commands:") || !strings.Contains(errOut.String(), "service-token create") {
		t.Errorf("unknown command printed on stderr:\n%s", errOut.String())
	}
}

func TestHelp(t *testing.T) {
	help := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append([]string{"scimgate"}, args...), noEnv, &out, &errOut); err != nil {
			t.Fatalf("scimgate %s: %v", strings.Join(args, " "), err)
		}
		if errOut.Len() != 0 {
			t.Errorf("scimgate %s printed on stderr: %s", strings.Join(args, " "), errOut.String())
		}
		return out.String()
	}
	usage := help("--help")
	for _, args := range [][]string{{"-h"}, {"help"}, {"--json", "--help"}} {
		if got := help(args...); got != usage {
			t.Errorf("scimgate %s differs from scimgate --help", strings.Join(args, " "))
		}
	}
	for _, want := range []string{"--config FILE", "--database DSN", "--json", "Exit codes:", "4  refused"} {
		if !strings.Contains(usage, want) {
			t.Errorf("scimgate --help lacks %q", want)
		}
	}
	// Every command and every one of its flags is in the usage; each
	// command's help names its flags with what they do.
	for i := range commands {
		cmd := &commands[i]
		if !strings.Contains(usage, "  "+cmd.name) {
			t.Errorf("scimgate --help lacks command %q", cmd.name)
		}
		cmdHelp := help(append(strings.Fields(cmd.name), "--help")...)
		if got := help("help", cmd.name); got != cmdHelp {
			t.Errorf("scimgate help %q differs from scimgate %s --help", cmd.name, cmd.name)
		}
		if !strings.HasPrefix(cmdHelp, "Usage: scimgate "+cmd.name) || !strings.Contains(cmdHelp, "--database DSN") {
			t.Errorf("scimgate %s --help =\n%s", cmd.name, cmdHelp)
		}
		fs := newFlagSet(cmd.name)
		cmd.define(fs)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(cmd.synopsis, "--"+f.Name) {
				t.Errorf("the synopsis of %q lacks --%s", cmd.name, f.Name)
			}
			if !regexp.MustCompile(`(?m)^  --` + f.Name + `\b.*\S`).MatchString(cmdHelp) {
				t.Errorf("scimgate %s --help does not describe --%s", cmd.name, f.Name)
			}
		})
	}
	if got := help("service-token", "--help"); !strings.Contains(got, "scimgate service-token regenerate ID") || strings.Contains(got, "user-token") {
		t.Errorf("scimgate service-token --help =\n%s", got)
	}
}

// The real binary prints "scimgate: <message>" on stderr and exits with the
// documented code.
func TestMainExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary")
	}
	dsn := newSQLiteDB(t)
	scimgate := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(os.Args[0], append([]string{"--database", dsn}, args...)...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code
	}
	tests := []struct {
		args       []string
		code       int
		wantStderr string
	}{
		{[]string{"org", "create", "--name", "acme"}, 0, ""},
		{[]string{"org", "create", "--name", "acme"}, exitRefused, "scimgate: org \"acme\" already exists\n"},
		{[]string{"user", "list", "--org", "initech"}, exitNotFound, "scimgate: org \"initech\" not found\n"},
		{[]string{"service-token", "create", "--org", "acme", "--name", "x", "--inactivity-days", "1"}, exitUsage,
			"scimgate: inactivity window must be 31, 45, 60 or 180 days, not 1\n"},
		{[]string{"frobnicate"}, exitUsage, "scimgate: unknown command \"frobnicate\""},
		{[]string{"--database", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2", "org", "list"}, exitError, "scimgate: open postgres database"},
	}
	for _, tt := range tests {
		_, stderr, code := scimgate(tt.args...)
		if code != tt.code {
			t.Errorf("scimgate %s: exit %d, want %d; stderr: %s", strings.Join(tt.args, " "), code, tt.code, stderr)
		}
		if !strings.Contains(stderr, tt.wantStderr) {
			t.Errorf("scimgate %s: stderr %q, want it to contain %q", strings.Join(tt.args, " "), stderr, tt.wantStderr)
		}
	}
	stdout, stderr, code := scimgate("--help")
	if code != 0 || !strings.Contains(stdout, "Commands:") || stderr != "" {
		t.Errorf("scimgate --help: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// Permission sets come from the configuration; a new service token gets
// every set and permission unless --permissions names some.
func TestCustomPermissions(t *testing.T) {
	c := newTestCLI(t, sqlstore.SQLite)
	c.env = map[string]string{"SCIMGATE_CONFIG": writeConfig(t, `
permissions:
  custom: [orders.read, orders.write]
  sets:
    orders-admin: [orders.read, orders.write]
`)}
	c.ok("org", "create", "--name", "acme")
	var tok createdToken
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "all")
	want := []string{"orders-admin", "orders.read", "orders.write", "platform.groups", "platform.tokens", "platform.users"}
	if !slices.Equal(tok.PermissionSets, want) {
		t.Errorf("service-token create without --permissions: %v, want %v", tok.PermissionSets, want)
	}
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "orders", "--permissions", "orders-admin")
	if !slices.Equal(tok.PermissionSets, []string{"orders-admin"}) {
		t.Errorf("service-token create --permissions orders-admin: %v", tok.PermissionSets)
	}
	c.fails(exitUsage, `unknown permission set "orders.delete" (known: orders-admin, orders.read`,
		"service-token", "create", "--org", "acme", "--name", "x", "--permissions", "orders.read,orders.delete")

	// A broken configuration stops every command, naming the problem.
	c.env["SCIMGATE_CONFIG"] = writeConfig(t, "permissions:\n  sets:\n    admin: [orders.read]\n")
	c.fails(exitUsage, `config: permissions: permission set "admin": unknown permission "orders.read"`, "org", "list")
}
