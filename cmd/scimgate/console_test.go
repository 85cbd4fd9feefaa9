package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// TestConsoleMounted checks where serve puts the console: at / beside
// /api/v1/ on the admin listener when admin.listen is set, else on the
// management listener beside its own routes; and nowhere when disabled.
func TestConsoleMounted(t *testing.T) {
	isConsole := func(url string) bool {
		t.Helper()
		code, body := get(t, url+"/signin")
		return code == http.StatusOK && strings.Contains(body, "Sign in to the console")
	}
	t.Run("management", func(t *testing.T) {
		s := startServe(t, sqltest.SQLitePath(t), nil)
		m := "http://" + s.addrs["management"]
		if !isConsole(m) {
			t.Error("no console on the management listener")
		}
		if code, body := get(t, m+"/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("/healthz beside the console: %d %q", code, body)
		}
		if code, _ := get(t, m+"/api/v1/me"); code != http.StatusUnauthorized {
			t.Errorf("/api/v1/me beside the console without a token: %d, want the API's 401", code)
		}
	})
	t.Run("admin listener", func(t *testing.T) {
		s := startServe(t, sqltest.SQLitePath(t), map[string]string{"SCIMGATE_ADMIN_LISTEN": "127.0.0.1:0"})
		if !isConsole("http://" + s.addrs["admin"]) {
			t.Error("no console on the admin listener")
		}
		if isConsole("http://" + s.addrs["management"]) {
			t.Error("the console is on the management listener too")
		}
		if code, _ := get(t, "http://"+s.addrs["admin"]+"/api/v1/me"); code != http.StatusUnauthorized {
			t.Errorf("/api/v1/me beside the console: %d, want the API's 401", code)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		config := filepath.Join(t.TempDir(), "scimgate.yaml")
		os.WriteFile(config, []byte("console:\n  enabled: false\n"), 0o600)
		s := startServe(t, sqltest.SQLitePath(t), nil, "--config", config)
		if isConsole("http://" + s.addrs["management"]) {
			t.Error("console.enabled false still serves the console")
		}
	})
}

func TestConsoleConfigRefused(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"console:\n  oidc:\n    client_id: x\n", "console.oidc.issuer"},
		{"console:\n  oidc:\n    issuer: https://idp.example\n    redirect_url: https://c.example/auth/callback\n", "console.oidc.client_id"},
		{"console:\n  oidc:\n    issuer: https://idp.example\n    client_id: x\n    redirect_url: https://c.example/callback\n", "console.oidc.redirect_url"},
		{"console:\n  oidc:\n    issuer: https://idp.example\n    client_id: x\n    redirect_url: https://c.example/auth/callback\n    claim: name\n", "console.oidc.claim"},
		{"console:\n  idle_timeout: 2h\n  absolute_timeout: 1h\n", "console.absolute_timeout"},
		{"console:\n  org: \"\"\n", "console.org"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(tt.yaml), 0o600)
		cfg, err := LoadConfig(path, func(string) string { return "" }, configOverrides{})
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: Validate() = %v, want an error naming %s", tt.yaml, err, tt.want)
		}
	}
}

// TestConsoleSecondReplica signs in on one replica and loads the next page
// from another on the same database: sessions live in the database. Signing
// out on the second ends the session on the first.
func TestConsoleSecondReplica(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			c := newTestCLI(t, dialect)
			c.ok("org", "create", "--name", "default")
			c.ok("user", "create", "--org", "default", "--user-name", "alice")
			var tok createdToken
			c.okJSON(&tok, "user-token", "create", "--org", "default", "--user", "alice", "--name", "laptop")
			one := "http://" + startServe(t, c.dsn, nil).addrs["management"]
			two := "http://" + startServe(t, c.dsn, nil).addrs["management"]

			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			send := func(method, url, body string, cookie *http.Cookie) *http.Response {
				t.Helper()
				req, _ := http.NewRequest(method, url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Sec-Fetch-Site", "same-origin")
				if cookie != nil {
					req.AddCookie(cookie)
				}
				resp, err := noRedirect.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			resp := send("POST", one+"/signin/token", "token="+tok.Token, nil)
			var session *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == "scimgate_session" {
					session = ck
				}
			}
			if session == nil {
				t.Fatalf("sign-in on replica one: %d, no session cookie", resp.StatusCode)
			}
			if resp := send("GET", two+"/my/api-tokens", "", session); resp.StatusCode != 200 {
				t.Fatalf("the next page from replica two: %d, want 200", resp.StatusCode)
			}
			send("POST", two+"/signout", "", session)
			if resp := send("GET", one+"/my/api-tokens", "", session); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
				t.Errorf("replica one after signing out on two: %d → %s, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}
