package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimgate/scimgate/admin"
	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The admin API and the remote command line through the real "scimgate
// serve", on SQLite and on PostgreSQL when SCIMGATE_TEST_POSTGRES_DSN is set.

// adminConfig gives people in the group "Token Admins" platform.tokens and
// orders.read, and declares a set of orders.read for service tokens.
const adminConfig = `
permissions:
  custom: [orders.read, orders.write]
  sets:
    orders-reader: [orders.read]
    orders-writer: [orders.read, orders.write]
  group_sets:
    Token Admins: [platform.tokens, orders-reader]
`

// adminWorld is a running scimgate with org "default", its bootstrap
// token, and two people provisioned over SCIM: alice (in "Token Admins")
// and bob (in no group), each with a user token made at the command line.
type adminWorld struct {
	t                 *testing.T
	cli               *testCLI
	serve             *runningServe
	up                *recordingUpstream
	apiURL, proxyURL  string
	bootstrap         string
	aliceTok, bobTok  createdToken
	configFile        string
	bootstrapTokenID  string
	scimURL, mgmtBase string
}

func newAdminWorld(t *testing.T, dialect string, env map[string]string) *adminWorld {
	t.Helper()
	w := &adminWorld{t: t, cli: newTestCLI(t, dialect), up: newRecordingUpstream(t)}
	w.configFile = filepath.Join(t.TempDir(), "scimgate.yaml")
	if err := os.WriteFile(w.configFile, []byte(adminConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	w.cli.env = map[string]string{"SCIMGATE_CONFIG": w.configFile}
	if env == nil {
		env = map[string]string{}
	}
	env["SCIMGATE_CONFIG"] = w.configFile
	w.serve = startServe(t, w.cli.dsn, env, "--upstream", w.up.URL)
	m := bannerToken.FindStringSubmatch(w.serve.stderr.String())
	if m == nil {
		t.Fatalf("no bootstrap token printed:\n%s", w.serve.stderr)
	}
	w.bootstrap = m[1]
	w.mgmtBase = "http://" + w.serve.addrs["management"]
	w.apiURL = w.mgmtBase + admin.Prefix
	if addr := w.serve.addrs["admin"]; addr != "" {
		w.apiURL = "http://" + addr + admin.Prefix
	}
	w.proxyURL = "http://" + w.serve.addrs["proxy"] + "/orders"
	w.scimURL = w.mgmtBase + "/scim/v2"

	alice := w.scim("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice","active":true}`)
	w.scim("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob","active":true}`)
	w.scim("POST", "/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Token Admins","members":[{"value":%q}]}`, alice["id"]))
	w.cli.okJSON(&w.aliceTok, "user-token", "create", "--org", "default", "--user", "alice", "--name", "alice laptop")
	w.cli.okJSON(&w.bobTok, "user-token", "create", "--org", "default", "--user", "bob", "--name", "bob laptop")
	return w
}

// scim makes a SCIM request with the bootstrap token.
func (w *adminWorld) scim(method, path, body string) map[string]any {
	w.t.Helper()
	req, _ := http.NewRequest(method, w.scimURL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+w.bootstrap)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 300 {
		w.t.Fatalf("SCIM %s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return out
}

// api calls the admin API and decodes a JSON answer into out (if not nil).
func (w *adminWorld) api(token, method, path string, body, out any) (int, string) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, w.apiURL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			w.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, string(raw)
}

// proxied is one request through the proxy: its status and, for a 401, the
// reason the proxy gives.
func (w *adminWorld) proxied(token string) (int, string) {
	w.t.Helper()
	return proxyGet(w.t, http.DefaultClient, w.proxyURL, token, nil)
}

// TestAdminEndToEnd is issue 11's end-to-end run: an admin person's token
// manages a service token over the API while the proxy refuses each changed
// token on the very next request; a person creates user tokens up to the
// limit; a leak report kills a live token and reports a dead one as such.
func TestAdminEndToEnd(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			w := newAdminWorld(t, dialect, nil)
			alice := w.aliceTok.Token

			var created admin.NewToken
			if code, body := w.api(alice, "POST", "/service-tokens", map[string]any{"name": "billing", "permission_sets": []string{"orders-reader"}}, &created); code != 201 {
				t.Fatalf("alice creates a service token: %d %s", code, body)
			}
			if code, _ := w.proxied(created.Secret); code != 200 {
				t.Fatalf("the proxy refuses the new service token: %d", code)
			}
			if got := w.up.last().Get("X-Scimgate-Permissions"); got != "orders.read" {
				t.Errorf("upstream saw permissions %q, want orders.read", got)
			}
			path := "/service-tokens/" + created.ID
			if code, body := w.api(alice, "POST", path+"/revoke", nil, nil); code != 200 {
				t.Fatalf("revoke: %d %s", code, body)
			}
			if code, reason := w.proxied(created.Secret); code != 401 || reason != "revoked" {
				t.Fatalf("the very next request after the revoke: %d %q, want 401 revoked", code, reason)
			}
			var regenerated admin.NewToken
			if code, body := w.api(alice, "POST", path+"/regenerate", nil, &regenerated); code != 200 {
				t.Fatalf("regenerate: %d %s", code, body)
			}
			if code, _ := w.proxied(regenerated.Secret); code != 200 {
				t.Errorf("the regenerated secret: %d, want 200", code)
			}
			if code, reason := w.proxied(created.Secret); code != 401 || reason != "unknown" {
				t.Errorf("the old secret after regenerate: %d %q, want 401 unknown", code, reason)
			}
			if code, body := w.api(alice, "DELETE", path, nil, nil); code != 409 || !strings.Contains(body, "revoke it before deleting") {
				t.Errorf("delete an active token: %d %s, want 409", code, body)
			}
			w.api(alice, "POST", path+"/revoke", nil, nil)
			if code, body := w.api(alice, "DELETE", path, nil, nil); code != 200 {
				t.Fatalf("delete: %d %s", code, body)
			}
			if code, reason := w.proxied(regenerated.Secret); code != 401 || reason != "unknown" {
				t.Errorf("after delete: %d %q, want 401 unknown", code, reason)
			}

			// Bob holds no platform.tokens: the rules hold on the real server.
			if code, body := w.api(w.bobTok.Token, "GET", "/service-tokens", nil, nil); code != 403 || !strings.Contains(body, "platform.tokens") {
				t.Errorf("bob lists service tokens: %d %s, want 403 naming platform.tokens", code, body)
			}
			if code, body := w.api(alice, "POST", "/service-tokens", map[string]any{"name": "w", "permission_sets": []string{"orders-writer"}}, nil); code != 403 || !strings.Contains(body, "orders.write") {
				t.Errorf("alice grants orders.write: %d %s, want 403 naming it", code, body)
			}

			// Bob creates user tokens up to ten; the eleventh is refused.
			var bobs []admin.NewToken
			for i := 2; i <= tokens.MaxActiveUserTokens; i++ {
				var nt admin.NewToken
				if code, body := w.api(w.bobTok.Token, "POST", "/user-tokens", map[string]string{"name": fmt.Sprint("t", i)}, &nt); code != 201 {
					t.Fatalf("bob's token %d: %d %s", i, code, body)
				}
				bobs = append(bobs, nt)
			}
			if code, body := w.api(w.bobTok.Token, "POST", "/user-tokens", map[string]string{"name": "eleventh"}, nil); code != 403 || !strings.Contains(body, `"reason":"limit_reached"`) || !strings.Contains(body, "10 active tokens") {
				t.Errorf("bob's 11th token: %d %s, want 403 limit_reached", code, body)
			}
			if code, _ := w.proxied(bobs[0].Secret); code != 200 {
				t.Errorf("bob's new token through the proxy: %d", code)
			}

			// A leak report without a token kills a live token and tells a
			// dead one apart.
			var dead admin.NewToken
			w.api(alice, "POST", "/service-tokens", map[string]any{"name": "old", "permission_sets": []string{"orders-reader"}}, &dead)
			w.api(alice, "POST", "/service-tokens/"+dead.ID+"/revoke", nil, nil)
			var report admin.LeakReportResult
			if code, body := w.api("", "POST", "/tokens/report", map[string]any{"tokens": []string{bobs[0].Secret, dead.Secret}, "found_at": "https://paste.example/abc"}, &report); code != 200 {
				t.Fatalf("leak report: %d %s", code, body)
			}
			if report.Findings[0].Outcome != "deleted" || !report.Findings[0].WasLive || report.Findings[1].Outcome != "already_dead" || report.Live != 1 || report.AlreadyDead != 1 {
				t.Errorf("leak report: %+v", report)
			}
			if code, reason := w.proxied(bobs[0].Secret); code != 401 || reason != "unknown" {
				t.Errorf("the reported token: %d %q, want 401 unknown", code, reason)
			}
			var events admin.AuditList
			w.api(alice, "GET", "/audit-events?action=token.leak_report", nil, &events)
			if len(events.Events) != 2 || !strings.Contains(events.Events[0].Detail, "found at https://paste.example/abc") || !strings.HasPrefix(events.Events[0].Actor, "anonymous report from 127.0.0.1") {
				t.Errorf("leak events: %+v", events.Events)
			}
			var creates admin.AuditList
			w.api(alice, "GET", "/audit-events?action=token.create&limit=1", nil, &creates)
			if len(creates.Events) != 1 || !strings.HasPrefix(creates.Events[0].Actor, "user alice (token ") {
				t.Errorf("the audit trail names alice: %+v", creates.Events)
			}
			if code, _ := w.api("", "GET", "/openapi.json", nil, nil); code != 200 {
				t.Errorf("GET /api/v1/openapi.json: %d", code)
			}
		})
	}
}

// TestAdminOwnListener serves the API on admin.listen: there, and not on
// the management listener.
func TestAdminOwnListener(t *testing.T) {
	w := newAdminWorld(t, "sqlite", map[string]string{"SCIMGATE_ADMIN_LISTEN": "127.0.0.1:0"})
	if w.serve.addrs["admin"] == "" {
		t.Fatalf("no admin listener: %v", w.serve.addrs)
	}
	var me admin.Me
	if code, body := w.api(w.aliceTok.Token, "GET", "/me", nil, &me); code != 200 || me.Name != "alice" {
		t.Fatalf("GET /me on the admin listener: %d %s", code, body)
	}
	if code, _ := get(t, w.mgmtBase+"/api/v1/openapi.json"); code != 404 {
		t.Errorf("the management listener serves the API too: %d", code)
	}
	if code, _ := get(t, w.mgmtBase+"/healthz"); code != 200 {
		t.Errorf("management /healthz: %d", code)
	}
}

// remoteCLI runs the command line against the running server.
func (w *adminWorld) remoteRun(token string, stdin string, args ...string) (stdout, stderr string, err error) {
	w.t.Helper()
	dir := w.t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		w.t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	argv := append([]string{"scimgate", "--server", strings.TrimSuffix(w.apiURL, admin.Prefix), "--token-file", tokenFile}, args...)
	ctx := withStdin(context.Background(), strings.NewReader(stdin))
	err = run(ctx, argv, envMap(nil), &out, &errOut)
	return out.String(), errOut.String(), err
}

func (w *adminWorld) remoteOK(token, stdin string, args ...string) string {
	w.t.Helper()
	out, stderr, err := w.remoteRun(token, stdin, args...)
	if err != nil {
		w.t.Fatalf("remote scimgate %s: %v (exit %d)\nstderr: %s", strings.Join(args, " "), err, exitCode(err), stderr)
	}
	return out
}

// localOK runs a command on the database, with stdin.
func (w *adminWorld) localOK(stdin string, args ...string) string {
	w.t.Helper()
	var out, errOut bytes.Buffer
	argv := append([]string{"scimgate", "--database", w.cli.dsn, "--config", w.configFile}, args...)
	if err := run(withStdin(context.Background(), strings.NewReader(stdin)), argv, envMap(nil), &out, &errOut); err != nil {
		w.t.Fatalf("scimgate %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// TestRemoteCLI runs the token commands with --server and checks they print
// what the same commands print on the database, and exit as they do.
func TestRemoteCLI(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			testRemoteCLI(t, newAdminWorld(t, dialect, nil))
		})
	}
}

func testRemoteCLI(t *testing.T, w *adminWorld) {
	alice := w.aliceTok.Token

	// Changes.
	var created createdToken
	if err := json.Unmarshal([]byte(w.remoteOK(alice, "", "service-token", "create", "--name", "sync", "--inactivity-days", "60", "--permissions", "orders-reader", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.Org != "default" || created.InactivityDays != 60 || strings.Join(created.PermissionSets, ",") != "orders-reader" || !strings.HasPrefix(created.Token, "sgs_") {
		t.Errorf("remote service-token create: %+v", created)
	}
	if out := w.remoteOK(alice, "", "service-token", "edit", created.ID, "--name", "sync2"); !strings.Contains(out, "sync2") {
		t.Errorf("remote edit printed %q", out)
	}
	if out := w.remoteOK(alice, "", "service-token", "revoke", created.ID); out != "revoked service token "+created.ID+": it is refused from now on\n" {
		t.Errorf("remote revoke printed %q", out)
	}
	if code, reason := w.proxied(created.Token); code != 401 || reason != "revoked" {
		t.Errorf("after a remote revoke: %d %q", code, reason)
	}
	if out := w.remoteOK(alice, "", "service-token", "regenerate", created.ID); !strings.Contains(out, "token:") || !strings.Contains(out, "sgs_") {
		t.Errorf("remote regenerate printed %q", out)
	}
	w.remoteOK(alice, "", "service-token", "revoke", created.ID)
	if out := w.remoteOK(alice, "", "service-token", "delete", created.ID, "--json"); out != "{\n  \"id\": \""+created.ID+"\",\n  \"result\": \"deleted\"\n}\n" {
		t.Errorf("remote delete --json printed %q", out)
	}
	var mine createdToken
	json.Unmarshal([]byte(w.remoteOK(w.bobTok.Token, "", "user-token", "create", "--name", "cli", "--json")), &mine)
	if mine.User != "bob" || !strings.HasPrefix(mine.Token, "sgu_") {
		t.Errorf("bob's remote user-token create: %+v", mine)
	}

	// Reads print exactly what the local commands print.
	for _, args := range [][]string{
		{"service-token", "list"},
		{"service-token", "list", "--json"},
		{"user-token", "list"},
		{"user-token", "list", "--json"},
		{"user-token", "list", "--user", "bob", "--json"},
		{"audit", "list", "--limit", "7"},
		{"audit", "list", "--limit", "7", "--json"},
		{"seats", "--json"},
		{"seats"},
	} {
		local := w.localOK("", append(args, "--org", "default")...)
		as := alice
		if args[0] == "seats" {
			as = w.bootstrap // platform.users
		}
		remote := w.remoteOK(as, "", args...)
		if local != remote {
			t.Errorf("scimgate %s: remote printed\n%s\nlocal printed\n%s", strings.Join(args, " "), remote, local)
		}
	}
	if local, remote := w.localOK(mine.Token+"\n", "token", "inspect"), w.remoteOK(w.bobTok.Token, mine.Token+"\n", "token", "inspect"); local != remote || !strings.Contains(local, "bob") {
		t.Errorf("token inspect: remote printed\n%s\nlocal printed\n%s", remote, local)
	}

	// Refusals exit as locally, with the server's words.
	tests := []struct {
		name  string
		token string
		args  []string
		code  int
		want  string
	}{
		{"no permission", w.bobTok.Token, []string{"service-token", "list"}, exitRefused, "platform.tokens"},
		{"escalation", alice, []string{"service-token", "create", "--name", "x", "--permissions", "orders-writer"}, exitRefused, "orders.write"},
		{"not found", alice, []string{"service-token", "revoke", "tok_nope"}, exitNotFound, "not found"},
		{"bad value", alice, []string{"service-token", "create", "--name", "x", "--inactivity-days", "7"}, exitUsage, "31, 45, 60 or 180"},
		{"another org", alice, []string{"service-token", "list", "--org", "other"}, exitUsage, `belongs to org "default"`},
		{"for someone else", alice, []string{"user-token", "create", "--user", "bob", "--name", "x"}, exitRefused, "only a person creates a user token, for themselves"},
		{"service creates user token", w.bootstrap, []string{"user-token", "create", "--name", "x"}, exitRefused, "only a person"},
		{"unknown token", tokens.NewSecret(tokens.KindUser).Plaintext(), []string{"seats"}, exitUnauthorized, "does not exist"},
		{"seats without platform.users", alice, []string{"seats"}, exitRefused, "platform.users"},
		{"no remote form", alice, []string{"org", "list"}, exitUsage, "has no remote form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := w.remoteRun(tt.token, "", tt.args...)
			if err == nil {
				t.Fatalf("succeeded: %s", stdout)
			}
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit %d (%v), want %d", got, err, tt.code)
			}
			if msg := errorMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("%q does not say %q", msg, tt.want)
			}
		})
	}

	// The environment works as the flags do; a token is required.
	var out, errOut bytes.Buffer
	env := map[string]string{"SCIMGATE_SERVER": strings.TrimSuffix(w.apiURL, admin.Prefix), "SCIMGATE_TOKEN": alice}
	if err := run(context.Background(), []string{"scimgate", "user-token", "list", "--user", "alice"}, envMap(env), &out, &errOut); err != nil || !strings.Contains(out.String(), "alice laptop") {
		t.Errorf("with SCIMGATE_SERVER and SCIMGATE_TOKEN: %v\n%s%s", err, out.String(), errOut.String())
	}
	err := run(context.Background(), []string{"scimgate", "seats"}, envMap(map[string]string{"SCIMGATE_SERVER": env["SCIMGATE_SERVER"]}), &out, &errOut)
	if exitCode(err) != exitUsage || !strings.Contains(errorMessage(err), "--token-file") {
		t.Errorf("no token: %v", err)
	}
	err = run(context.Background(), []string{"scimgate", "--server", "http://127.0.0.1:1", "seats"}, envMap(map[string]string{"SCIMGATE_TOKEN": alice}), &out, &errOut)
	if exitCode(err) != exitError || !strings.Contains(errorMessage(err), "cannot reach the scimgate server") {
		t.Errorf("no server: %v", err)
	}

	// token report finds tokens in any text, remotely and locally.
	var dead createdToken
	json.Unmarshal([]byte(w.remoteOK(alice, "", "service-token", "create", "--name", "dead", "--permissions", "orders-reader", "--json")), &dead)
	w.remoteOK(alice, "", "service-token", "revoke", dead.ID)
	leaked := fmt.Sprintf("2030-01-01 DEBUG calling API with Authorization: Bearer %s\nexport TOKEN=%s # old\nnot a token: sgs_short\n", mine.Token, dead.Token)
	var report leakReportView
	if err := json.Unmarshal([]byte(w.remoteOK(alice, leaked, "token", "report", "--found-at", "ci log 123", "--json")), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Findings) != 2 || report.Findings[0].Outcome != "deleted" || report.Findings[1].Outcome != "already_dead" ||
		report.Findings[0].Token == nil || report.Findings[0].Token.User != "bob" {
		t.Errorf("remote token report: %+v", report)
	}
	if code, reason := w.proxied(mine.Token); code != 401 || reason != "unknown" {
		t.Errorf("a reported token: %d %q", code, reason)
	}
	if out := w.localOK(w.bobTok.Token, "token", "report"); !strings.Contains(out, "deleted") || !strings.Contains(out, "bob laptop") {
		t.Errorf("local token report printed %q", out)
	}
}

func TestTokenReportNeedsTokens(t *testing.T) {
	c := newTestCLI(t, "sqlite")
	var out, errOut bytes.Buffer
	err := run(withStdin(context.Background(), strings.NewReader("nothing to see here\n")), []string{"scimgate", "--database", c.dsn, "token", "report"}, noEnv, &out, &errOut)
	if exitCode(err) != exitUsage || !strings.Contains(errorMessage(err), "no scimgate token") {
		t.Errorf("token report without tokens: %v", err)
	}
	err = run(withStdin(context.Background(), strings.NewReader("sgs_nope\n")), []string{"scimgate", "--database", c.dsn, "token", "inspect"}, noEnv, &out, &errOut)
	if exitCode(err) != exitUsage || !strings.Contains(errorMessage(err), "not a scimgate token") {
		t.Errorf("token inspect of garbage: %v", err)
	}
	err = run(withStdin(context.Background(), strings.NewReader(tokens.NewSecret(tokens.KindUser).Plaintext())), []string{"scimgate", "--database", c.dsn, "token", "inspect"}, noEnv, &out, &errOut)
	if exitCode(err) != exitNotFound {
		t.Errorf("token inspect of an unknown token: %v (exit %d)", err, exitCode(err))
	}
}

// The streamed JSON of a listing is byte for byte what printJSON prints
// for the whole slice.
func TestListStreamJSONMatchesPrintJSON(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	views := []tokenView{
		{ID: "tok_a", Kind: tokens.KindUser, Org: "acme", Name: "a <b> & c", User: "alice", CreatedAt: now, ExpiresAt: &now},
		{ID: "tok_b", Kind: tokens.KindService, Org: "acme", Name: "svc", PermissionSets: []string{"x"}, CreatedAt: now},
		{ID: "tok_c", Kind: tokens.KindService, Org: "acme", Name: "svc2", LastUsedAt: &now},
	}
	for n := 0; n <= len(views); n++ {
		var want, got bytes.Buffer
		if err := printJSON(&want, views[:n]); err != nil {
			t.Fatal(err)
		}
		c := &cli{stdout: &got, stderr: io.Discard}
		c.global.json = true
		s := c.newTokenStream(tokens.KindUser, "")
		for i := 0; i < n; i++ { // one element per page
			if err := s.add(views[i : i+1]); err != nil {
				t.Fatal(err)
			}
		}
		s.close()
		if n == 0 && want.String() == "null\n" {
			want.Reset()
			want.WriteString("[]\n")
		}
		if got.String() != want.String() {
			t.Errorf("%d views: streamed\n%s\nwant\n%s", n, got.String(), want.String())
		}
	}
}

// TestAdminOwnListenerTLS serves the API on its own listener with TLS
// (admin.tls mode files), and the remote command line trusts it through
// --server-ca.
func TestAdminOwnListenerTLS(t *testing.T) {
	t.Parallel()
	authority := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.pem")
	certPEM, keyPEM, _ := authority.issue(t)
	replaceFile(t, certFile, certPEM)
	replaceFile(t, keyFile, keyPEM)
	writePEM(t, caFile, "CERTIFICATE", authority.cert.Raw)
	config := writeConfig(t, fmt.Sprintf(`
admin:
  listen: 127.0.0.1:0
  tls: {mode: files, cert_file: %s, key_file: %s}
`, certFile, keyFile))
	s := startServe(t, sqltest.SQLitePath(t), nil, "--config", config)
	m := bannerToken.FindStringSubmatch(s.stderr.String())
	if m == nil || s.addrs["admin"] == "" {
		t.Fatalf("no bootstrap token or admin listener: %v\n%s", s.addrs, s.stderr)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(m[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	server := "https://" + s.addrs["admin"]
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"scimgate", "--server", server, "--server-ca", caFile, "--token-file", tokenFile, "seats", "--json"}, noEnv, &out, &errOut)
	if err != nil {
		t.Fatalf("seats over TLS: %v\n%s", err, errOut.String())
	}
	var seats admin.Seats
	if err := json.Unmarshal(out.Bytes(), &seats); err != nil || seats.Org != "default" {
		t.Errorf("seats over TLS: %s", out.String())
	}
	// Without the CA the certificate is not trusted.
	err = run(context.Background(), []string{"scimgate", "--server", server, "--token-file", tokenFile, "seats"}, noEnv, &out, &errOut)
	if exitCode(err) != exitError || !strings.Contains(errorMessage(err), "certificate") {
		t.Errorf("without --server-ca: %v", err)
	}
}
