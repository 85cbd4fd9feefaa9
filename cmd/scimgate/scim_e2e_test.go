package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// TestSCIMDeactivationEndToEnd provisions people over SCIM on the real
// server, gives each a token, deactivates them the way Okta and Entra do,
// and checks that the very next request through the proxy is refused.
func TestSCIMDeactivationEndToEnd(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			c := newTestCLI(t, dialect)
			up := newRecordingUpstream(t)
			c.ok("org", "create", "--name", "acme")
			var idp, usersOnly createdToken
			c.okJSON(&idp, "service-token", "create", "--org", "acme", "--name", "okta", "--permissions", "platform.users,platform.groups")
			c.okJSON(&usersOnly, "service-token", "create", "--org", "acme", "--name", "half", "--permissions", "platform.users")
			s := startServe(t, c.dsn, nil, "--upstream", up.URL)
			scimURL := "http://" + s.addrs["management"] + "/scim/v2"

			send := func(token, method, path, body string) (int, map[string]any) {
				t.Helper()
				req, _ := http.NewRequest(method, scimURL+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				var out map[string]any
				json.Unmarshal(raw, &out)
				return resp.StatusCode, out
			}
			proxied := func(token string) (int, string) {
				return proxyGet(t, http.DefaultClient, "http://"+s.addrs["proxy"]+"/api", token, nil)
			}

			if code, body := send(usersOnly.Token, "GET", "/Users", ""); code != 403 || !strings.Contains(fmt.Sprint(body["detail"]), "platform.groups") {
				t.Errorf("a token without platform.groups: %d %v, want 403 naming platform.groups", code, body)
			}

			shapes := []struct{ name, method, body, reason string }{
				{"okta patch", "PATCH", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`, "owner_deactivated"},
				{"okta put", "PUT", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s","name":{"givenName":"A","familyName":"B"},"active":false}`, "owner_deactivated"},
				{"entra patch", "PATCH", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`, "owner_deactivated"},
				{"delete", "DELETE", "", "owner_removed"},
			}
			for i, sh := range shapes {
				userName := fmt.Sprintf("person%d@acme.test", i)
				code, created := send(idp.Token, "POST", "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"externalId":"ext-%d","name":{"givenName":"A","familyName":"B"},"emails":[{"primary":true,"value":%q,"type":"work"}],"active":true,"groups":[]}`, userName, i, userName))
				if code != 201 {
					t.Fatalf("%s: create user: %d %v", sh.name, code, created)
				}
				id := fmt.Sprint(created["id"])
				var tok createdToken
				c.okJSON(&tok, "user-token", "create", "--org", "acme", "--user", userName, "--name", "laptop")
				if code, _ := proxied(tok.Token); code != 200 {
					t.Fatalf("%s: before: %d, want 200", sh.name, code)
				}
				body := sh.body
				if strings.Contains(body, "%s") {
					body = fmt.Sprintf(body, userName)
				}
				if code, out := send(idp.Token, sh.method, "/Users/"+id, body); code >= 300 {
					t.Fatalf("%s: %s /Users/%s = %d %v", sh.name, sh.method, id, code, out)
				}
				if code, reason := proxied(tok.Token); code != 401 || reason != sh.reason {
					t.Errorf("%s: the very next proxied request = %d %q, want 401 %q", sh.name, code, reason, sh.reason)
				}
			}
		})
	}
}
