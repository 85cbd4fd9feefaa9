package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

const sitesURN = "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User"

// TestSitesEndToEnd replays an identity provider's site membership changes
// against the real "scimgate serve" and reads the upstream's headers after
// each one: a person added to a site by SCIM sees it on the very next
// request, and loses it on the very next request once removed; a change
// made by the command line, another process, arrives within a second; a
// service token never gets the header.
func TestSitesEndToEnd(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			c := newTestCLI(t, dialect)
			up := newRecordingUpstream(t)
			c.ok("org", "create", "--name", "acme")
			var idp, billing createdToken
			c.okJSON(&idp, "service-token", "create", "--org", "acme", "--name", "entra", "--permissions", "platform.users,platform.groups")
			c.okJSON(&billing, "service-token", "create", "--org", "acme", "--name", "billing")
			s := startServe(t, c.dsn, nil, "--upstream", up.URL)
			scimURL := "http://" + s.addrs["management"] + "/scim/v2"

			send := func(method, path, body string) map[string]any {
				t.Helper()
				req, _ := http.NewRequest(method, scimURL+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+idp.Token)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				if resp.StatusCode >= 300 {
					t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
				}
				var out map[string]any
				json.Unmarshal(raw, &out)
				return out
			}
			patch := func(id, op, value string) {
				t.Helper()
				send("PATCH", "/Users/"+id, fmt.Sprintf(`{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
					"Operations": [{"op": %q, "path": "%s:sites", "value": %s}]}`, op, sitesURN, value))
			}
			// sites makes one request through the proxy and returns the
			// upstream's sites header, and whether there was one.
			sites := func(token string) (string, bool) {
				t.Helper()
				code, reason := proxyGet(t, http.DefaultClient, "http://"+s.addrs["proxy"]+"/orders", token,
					http.Header{"X-Scimgate-Sites": {"Everywhere"}})
				if code != 200 {
					t.Fatalf("proxied request: %d %s", code, reason)
				}
				v, ok := up.last()["X-Scimgate-Sites"]
				return strings.Join(v, ","), ok
			}
			want := func(step, token, value string) {
				t.Helper()
				if got, ok := sites(token); !ok || got != value {
					t.Errorf("%s: the very next request carried sites %q (present %v), want %q", step, got, ok, value)
				}
			}

			created := send("POST", "/Users", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@acme.test", "active": true}`)
			id := fmt.Sprint(created["id"])
			var alice createdToken
			c.okJSON(&alice, "user-token", "create", "--org", "acme", "--user", "alice@acme.test", "--name", "laptop")
			want("in no site", alice.Token, "")

			patch(id, "Add", `"Sydney"`)
			want("added to Sydney", alice.Token, "Sydney")
			patch(id, "Add", `["Melbourne"]`)
			want("added to Melbourne", alice.Token, "Melbourne,Sydney")
			patch(id, "Remove", `"sydney"`)
			want("removed from Sydney", alice.Token, "Melbourne")
			patch(id, "Replace", `"Perth,Darwin"`)
			want("sites replaced", alice.Token, "Darwin,Perth")
			send("PATCH", "/Users/"+id, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations": [{"op": "remove", "path": "`+sitesURN+`:sites"}]}`)
			want("removed from every site", alice.Token, "")

			if got, ok := sites(billing.Token); ok {
				t.Errorf("a service token's request carried sites %q", got)
			}

			// The command line is another process: the server learns of
			// its changes through the change log.
			within := func(step, value string) {
				t.Helper()
				start := time.Now()
				for {
					if got, _ := sites(alice.Token); got == value {
						t.Logf("%s: %s arrived after %v", dialect, step, time.Since(start).Round(time.Millisecond))
						return
					}
					if time.Since(start) > time.Second {
						got, _ := sites(alice.Token)
						t.Fatalf("%s: sites %q a second after the command line, want %q", step, got, value)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			c.ok("site", "add-member", "--org", "acme", "--site", "perth", "--user", "alice@acme.test")
			within("add-member", "Perth")
			c.ok("site", "remove-member", "--org", "acme", "--site", "Perth", "--user", "alice@acme.test")
			within("remove-member", "")
			c.ok("site", "add-member", "--org", "acme", "--site", "Darwin", "--user", "alice@acme.test")
			within("add-member again", "Darwin")
			c.ok("site", "delete", "--org", "acme", "--name", "Darwin")
			within("site delete", "")
		})
	}
}

// TestSitesAdminAPIEndToEnd is the admin API's part of issue 13 through the
// real "scimgate serve": a holder of platform.users adds a person to a site
// over the API, and the upstream sees the site in X-Scimgate-Sites on the
// very next request made with the person's user token; removed, or the
// site deleted, it is gone on the very next request. A person without
// platform.users is refused, and reads their own sites in GET /me.
func TestSitesAdminAPIEndToEnd(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			w := newAdminWorld(t, dialect, nil)
			admin := w.bootstrap // platform.users, as an identity provider's token holds it
			bob := w.bobTok.Token
			// sites makes one request through the proxy with bob's token and
			// returns the upstream's sites header, and whether there was one.
			sites := func() (string, bool) {
				t.Helper()
				code, reason := proxyGet(t, http.DefaultClient, w.proxyURL, bob, http.Header{"X-Scimgate-Sites": {"Everywhere"}})
				if code != 200 {
					t.Fatalf("proxied request: %d %s", code, reason)
				}
				v, ok := w.up.last()["X-Scimgate-Sites"]
				return strings.Join(v, ","), ok
			}
			want := func(step, value string) {
				t.Helper()
				if got, ok := sites(); !ok || got != value {
					t.Errorf("%s: the very next request carried sites %q (present %v), want %q", step, got, ok, value)
				}
			}
			want("in no site", "")

			var sydney, zurich struct {
				ID string `json:"id"`
			}
			if code, body := w.api(admin, "POST", "/sites", map[string]string{"name": "Sydney"}, &sydney); code != 201 {
				t.Fatalf("create Sydney: %d %s", code, body)
			}
			if code, body := w.api(admin, "POST", "/sites", map[string]string{"name": "Zürich"}, &zurich); code != 201 {
				t.Fatalf("create Zürich: %d %s", code, body)
			}
			if code, body := w.api(admin, "PUT", "/sites/"+sydney.ID+"/members/bob", nil, nil); code != 201 {
				t.Fatalf("add bob to Sydney: %d %s", code, body)
			}
			want("added to Sydney", "Sydney")
			if code, body := w.api(admin, "PUT", "/sites/"+url.PathEscape("zürich")+"/members/"+url.PathEscape("BOB"), nil, nil); code != 201 {
				t.Fatalf("add bob to Zürich by names: %d %s", code, body)
			}
			want("added to Zürich", "Sydney,Z%C3%BCrich")
			if code, body := w.api(admin, "DELETE", "/sites/"+sydney.ID+"/members/bob", nil, nil); code != 200 {
				t.Fatalf("remove bob from Sydney: %d %s", code, body)
			}
			want("removed from Sydney", "Z%C3%BCrich")
			if code, body := w.api(admin, "DELETE", "/sites/"+zurich.ID, nil, nil); code != 200 {
				t.Fatalf("delete Zürich: %d %s", code, body)
			}
			want("Zürich deleted", "")

			// bob holds no platform.users: refused, naming it; he reads his
			// own sites in GET /me.
			if code, body := w.api(bob, "PUT", "/sites/"+sydney.ID+"/members/bob", nil, nil); code != 403 || !strings.Contains(body, "platform.users") {
				t.Errorf("bob adds himself: %d %s, want 403 naming platform.users", code, body)
			}
			want("after a refused change", "")
			w.api(admin, "PUT", "/sites/Sydney/members/bob", nil, nil)
			want("added again", "Sydney")
			var me struct {
				Sites []string `json:"sites"`
			}
			if code, body := w.api(bob, "GET", "/me", nil, &me); code != 200 || strings.Join(me.Sites, ",") != "Sydney" {
				t.Errorf("bob's GET /me: %d %s", code, body)
			}
			// A service token never carries sites.
			if code, _ := proxyGet(t, http.DefaultClient, w.proxyURL, admin, http.Header{"X-Scimgate-Sites": {"Everywhere"}}); code != 200 {
				t.Fatalf("the service token through the proxy: %d", code)
			}
			if v, ok := w.up.last()["X-Scimgate-Sites"]; ok {
				t.Errorf("a service token's request carried sites %q", v)
			}
		})
	}
}

// testRemoteSites runs the site commands with --server (as the bootstrap
// token, which holds platform.users) and checks that each prints what the
// same command prints on the database, and exits as it does. It leaves
// alice in "Sydney" and the sites "Darwin" and "Sydney", for the listings
// that testRemoteCLI compares.
func testRemoteSites(t *testing.T, w *adminWorld) {
	t.Helper()
	as := w.bootstrap
	remote := func(args ...string) string { t.Helper(); return w.remoteOK(as, "", args...) }
	local := func(args ...string) string { t.Helper(); return w.localOK("", append(args, "--org", "default")...) }
	ids := regexp.MustCompile(`site_[0-9a-z]{16}`)
	times := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	// On the database, a membership change also says which running servers
	// applied it (the "servers" of --json, the last clause of the text);
	// through --server, the server applied it itself. The rest is the same.
	servers := regexp.MustCompile(`(?m)(; (applied by|no scimgate server|which running).*$|,\n  "servers": \{[^}]*\})`)
	same := func(what, remote, local string) {
		t.Helper()
		r := times.ReplaceAllString(ids.ReplaceAllString(remote, "site_ID"), "TIME")
		l := times.ReplaceAllString(ids.ReplaceAllString(servers.ReplaceAllString(local, ""), "site_ID"), "TIME")
		if r != l {
			t.Errorf("%s: remote printed\n%s\nlocal printed\n%s", what, remote, local)
		}
	}

	// create: the same table and JSON, IDs and times aside.
	var sydney siteView
	if err := json.Unmarshal([]byte(remote("site", "create", "--name", "Sydney", "--external-id", "SYD", "--json")), &sydney); err != nil {
		t.Fatal(err)
	}
	if sydney.Org != "default" || sydney.Name != "Sydney" || sydney.ExternalID != "SYD" || !ids.MatchString(sydney.ID) {
		t.Errorf("remote site create: %+v", sydney)
	}
	for i, args := range [][]string{{"site", "create", "--name", "Darwin"}, {"site", "create", "--name", "Darwin", "--json"}} {
		if i > 0 {
			local("site", "delete", "--name", "Darwin")
		}
		r := remote(args...)
		local("site", "delete", "--name", "Darwin")
		same(strings.Join(args, " "), r, local(args...))
	}

	// add-member and remove-member: each result, as text and JSON.
	for _, format := range [][]string{nil, {"--json"}} {
		add := append([]string{"site", "add-member", "--site", "sydney", "--user", "alice"}, format...)
		remove := append([]string{"site", "remove-member", "--site", "sydney", "--user", "alice"}, format...)
		added := remote(add...)
		same("remote added, local unchanged", remote(add...), local(add...))
		removed := remote(remove...)
		same("added", added, local(add...))
		same("removed", removed, local(remove...))
	}
	if out := remote("site", "add-member", "--site", sydney.ID, "--user", "alice"); out != `user "alice" is now a member of site "Sydney"; their tokens carry it from their next request`+"\n" {
		t.Errorf("remote add-member printed %q", out)
	}

	// delete: the members it had, as text and JSON.
	for _, format := range [][]string{nil, {"--json"}} {
		args := append([]string{"site", "delete", "--name", "temp"}, format...)
		remote("site", "create", "--name", "Temp")
		remote("site", "add-member", "--site", "Temp", "--user", "bob")
		r := remote(args...)
		local("site", "create", "--name", "Temp")
		local("site", "add-member", "--site", "Temp", "--user", "bob")
		same(strings.Join(args, " "), r, local(args...))
	}

	// Refusals exit with the local command's code, in the server's words.
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"name taken", []string{"site", "create", "--name", "SYDNEY"}, exitRefused, "already exists"},
		{"bad name", []string{"site", "create", "--name", "a,b"}, exitUsage, "comma"},
		{"unknown site", []string{"site", "delete", "--name", "Nowhere"}, exitNotFound, `site "Nowhere" not found`},
		{"unknown person", []string{"site", "add-member", "--site", "Sydney", "--user", "nobody"}, exitNotFound, "nobody"},
		{"not a member", []string{"site", "remove-member", "--site", "Sydney", "--user", "bob"}, exitRefused, `user "bob" is not a member of site "Sydney"`},
		{"unknown member", []string{"site", "list", "--user", "nobody"}, exitNotFound, "nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := w.remoteRun(as, "", tt.args...)
			if got := exitCode(err); got != tt.code || !strings.Contains(errorMessage(err), tt.want) {
				t.Errorf("remote: exit %d %v, want %d saying %q", got, err, tt.code, tt.want)
			}
			var out, errOut bytes.Buffer
			argv := append([]string{"scimgate", "--database", w.cli.dsn, "--config", w.configFile}, append(tt.args, "--org", "default")...)
			if err := run(context.Background(), argv, envMap(nil), &out, &errOut); exitCode(err) != tt.code {
				t.Errorf("local: exit %d %v, want %d as remotely", exitCode(err), err, tt.code)
			}
		})
	}
	for _, tt := range []struct {
		name, token string
		args        []string
		code        int
		want        string
	}{
		{"without platform.users", w.aliceTok.Token, []string{"site", "list"}, exitRefused, "platform.users"},
		{"a person adds themselves", w.bobTok.Token, []string{"site", "add-member", "--site", "Sydney", "--user", "bob"}, exitRefused, "platform.users"},
		{"another org", as, []string{"site", "create", "--org", "other", "--name", "x"}, exitUsage, `belongs to org "default"`},
		{"no name", as, []string{"site", "create"}, exitUsage, "--name is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := w.remoteRun(tt.token, "", tt.args...)
			if got := exitCode(err); got != tt.code || !strings.Contains(errorMessage(err), tt.want) {
				t.Errorf("exit %d %v, want %d saying %q", got, err, tt.code, tt.want)
			}
		})
	}
}
