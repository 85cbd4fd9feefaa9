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
