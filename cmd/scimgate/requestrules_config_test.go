package main

import (
	"strings"
	"testing"
	"time"
)

// The options of the canonical request, the headers stripped and the
// identity assertion: each mistake is named with its option.
func TestValidateRequestRules(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no methods", func(c *Config) { c.Proxy.Methods = nil }, "proxy.methods: must list at least one method"},
		{"lower-case method", func(c *Config) { c.Proxy.Methods = []string{"GET", "post"} }, `proxy.methods: "post" is not an HTTP method in capitals`},
		{"CONNECT allowed", func(c *Config) { c.Proxy.Methods = append(c.Proxy.Methods, "CONNECT") }, ""},
		{"public path with dots", func(c *Config) { c.Proxy.PublicPaths = []string{"/public/../x"} },
			`proxy.public_paths[0]: "/public/../x" must not contain . or .. segments`},
		{"public path encoded", func(c *Config) { c.Proxy.PublicPaths = []string{"/a%20b"} }, `proxy.public_paths[0]: "/a%20b" must be written decoded`},
		{"route with //", func(c *Config) {
			c.Permissions.Custom = []string{"orders.write"}
			c.Proxy.Routes = []Route{{PathPrefix: "//admin", Permission: "orders.write"}}
		}, `proxy.routes[0].path_prefix: "//admin" must not contain "//"`},
		{"route with ;", func(c *Config) {
			c.Permissions.Custom = []string{"orders.write"}
			c.Proxy.Routes = []Route{{PathPrefix: "/admin;x", Permission: "orders.write"}}
		}, `proxy.routes[0].path_prefix: "/admin;x" must not contain ;`},
		{"route with ; allowed", func(c *Config) {
			c.Permissions.Custom = []string{"orders.write"}
			c.Proxy.AllowPathSemicolons = true
			c.Proxy.Routes = []Route{{PathPrefix: "/admin;x", Permission: "orders.write"}}
		}, ""},
		{"strip header with a space", func(c *Config) { c.Proxy.StripHeaders = []string{"X Bad"} }, `proxy.strip_headers: "X Bad" is not a header name`},
		{"strip prefix", func(c *Config) { c.Proxy.StripHeaders = []string{"X-Internal-*"} }, ""},
		{"strip nothing", func(c *Config) { c.Proxy.StripHeaders = []string{} }, ""},
		{"assertion header", func(c *Config) { c.Proxy.Assertion.Header = "X Assert" }, `proxy.assertion.header: "X Assert" must be letters`},
		{"assertion in an identity header", func(c *Config) { c.Proxy.Assertion.Header = "x-scimgate-name" }, `is the identity header "name"`},
		{"assertion in Authorization", func(c *Config) { c.Proxy.Assertion.Header = "Authorization" }, "proxy.assertion.header: Authorization carries"},
		{"RS256", func(c *Config) { c.Proxy.Assertion.Algorithm = "RS256" }, `proxy.assertion.algorithm: "RS256" is not ES256 or EdDSA`},
		{"EdDSA", func(c *Config) { c.Proxy.Assertion.Algorithm = "EdDSA" }, ""},
		{"no issuer", func(c *Config) { c.Proxy.Assertion.Issuer = " " }, "proxy.assertion.issuer: must not be empty"},
		{"ttl too short", func(c *Config) { c.Proxy.Assertion.TTL = time.Second }, "proxy.assertion.ttl: 1s is not between 10s and 1h"},
		{"ttl too long", func(c *Config) { c.Proxy.Assertion.TTL = 2 * time.Hour }, "proxy.assertion.ttl: 2h0m0s is not between 10s and 1h"},
		{"publish ahead too short", func(c *Config) { c.Proxy.Assertion.KeyPublishAhead = time.Second }, "proxy.assertion.key_publish_ahead: 1s is below 1m"},
		{"rotation too short", func(c *Config) { c.Proxy.Assertion.KeyRotation = time.Hour }, "proxy.assertion.key_rotation: 1h0m0s must be at least twice key_publish_ahead"},
		{"off: nothing else checked", func(c *Config) {
			c.Proxy.Assertion = AssertionConfig{Enabled: false, Algorithm: "RS256"}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
