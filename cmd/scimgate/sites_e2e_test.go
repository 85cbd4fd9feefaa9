package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
