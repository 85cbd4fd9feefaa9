package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scimgate/scimgate/tokens"
)

const exampleConfig = "../../config.example.yaml"

func noEnv(string) string { return "" }

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeConfig(t *testing.T, yamlText string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scimgate.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The example file documents every option with its default: loading it
// must give exactly the defaults, and it must validate.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	cfg, err := LoadConfig(exampleConfig, noEnv, configOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("config.example.yaml = %+v\nwant the defaults %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("config.example.yaml does not validate: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
}

// Every option of Config appears in the example file, even those whose
// default is a zero value (which TestExampleConfigIsTheDefaults cannot see).
func TestExampleConfigNamesEveryOption(t *testing.T) {
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range optionPaths(reflect.TypeFor[Config](), "") {
		var node any = doc
		for key := range strings.SplitSeq(path, ".") {
			m, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node, ok = m[key]
			if !ok {
				t.Errorf("config.example.yaml does not document %s", path)
				break
			}
		}
	}
}

// optionPaths lists the dotted YAML names of every option below t.
func optionPaths(t reflect.Type, prefix string) []string {
	var paths []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
			paths = append(paths, optionPaths(f.Type, prefix+name+".")...)
			continue
		}
		paths = append(paths, prefix+name)
	}
	return paths
}

func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, `
data_dir: /file/data
database: /file/db.sqlite
log: {level: debug}
proxy:
  listen: 127.0.0.1:1001
  upstream: http://file.example
management:
  listen: 127.0.0.1:2001
`)
	env := map[string]string{
		"SCIMGATE_DATABASE":          "/env/db.sqlite",
		"SCIMGATE_LISTEN":            "127.0.0.1:1002",
		"SCIMGATE_UPSTREAM":          "http://env.example",
		"SCIMGATE_MANAGEMENT_LISTEN": "127.0.0.1:2002",
		"SCIMGATE_LOG_LEVEL":         "warn",
	}
	flags := configOverrides{Database: "/flag/db.sqlite", Listen: "127.0.0.1:1003"}

	tests := []struct {
		name  string
		env   map[string]string
		flags configOverrides
		want  func(*Config) []any // got, want pairs
	}{
		{"file", nil, configOverrides{}, func(c *Config) []any {
			return []any{c.DataDir, "/file/data", c.Database, "/file/db.sqlite", c.Log.Level, "debug",
				c.Proxy.Listen, "127.0.0.1:1001", c.Proxy.Upstream, "http://file.example", c.Management.Listen, "127.0.0.1:2001",
				c.Proxy.IdentityHeaderPrefix, "X-Scimgate-"} // not in the file: the default
		}},
		{"env over file", env, configOverrides{}, func(c *Config) []any {
			return []any{c.DataDir, "/file/data", c.Database, "/env/db.sqlite", c.Log.Level, "warn",
				c.Proxy.Listen, "127.0.0.1:1002", c.Proxy.Upstream, "http://env.example", c.Management.Listen, "127.0.0.1:2002"}
		}},
		{"flags over env", env, flags, func(c *Config) []any {
			return []any{c.Database, "/flag/db.sqlite", c.Proxy.Listen, "127.0.0.1:1003",
				c.Proxy.Upstream, "http://env.example", c.Management.Listen, "127.0.0.1:2002"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(file, envMap(tt.env), tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			pairs := tt.want(cfg)
			for i := 0; i < len(pairs); i += 2 {
				if pairs[i] != pairs[i+1] {
					t.Errorf("value %d = %v, want %v", i/2, pairs[i], pairs[i+1])
				}
			}
		})
	}
}

func TestConfigEnvironment(t *testing.T) {
	secret := tokens.NewSecret(tokens.KindService).Plaintext()
	cfg, err := LoadConfig("", envMap(map[string]string{
		"SCIMGATE_DATA_DIR":        "/var/lib/scimgate",
		"SCIMGATE_BOOTSTRAP_TOKEN": secret,
	}), configOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/scimgate" || cfg.BootstrapToken != secret {
		t.Errorf("data_dir %q, bootstrap_token set %v; want /var/lib/scimgate, true", cfg.DataDir, cfg.BootstrapToken == secret)
	}
	if got, want := cfg.DatabaseDSN(), filepath.Join("/var/lib/scimgate", "scimgate.db"); got != want {
		t.Errorf("DatabaseDSN() = %q, want %q", got, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"misspelt option", "proxy:\n  listen: 127.0.0.1:8080\n  upstrem: http://x\n", []string{"line 3", `unknown option "upstrem"`}},
		{"misspelt section", "auht:\n  cache_size: 1\n", []string{"line 1", `unknown option "auht"`}},
		{"number for a duration", "proxy:\n  read_timeout: 60\n", []string{"line 2", `"60" is not a duration`}},
		{"bad duration", "shutdown_timeout: soon\n", []string{"line 1", `"soon" is not a duration`}},
		{"text for a number", "auth:\n  cache_size: lots\n", []string{"line 2", `"lots" is not a whole number`}},
		{"text for a list", "proxy:\n  public_paths: /public\n", []string{"line 2", `"/public" is not a list`}},
		{"text for a section", "proxy: yes\n", []string{"line 1", `"yes" is not a mapping`}},
		{"not YAML", "proxy: [\n", []string{"line"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.yaml), noEnv, configOverrides{})
			if err == nil {
				t.Fatalf("LoadConfig(%q) = nil error", tt.yaml)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadConfig(%q) = %q, want it to contain %q", tt.yaml, err, w)
				}
			}
			if strings.Contains(err.Error(), "main.") {
				t.Errorf("error %q names a Go type", err)
			}
		})
	}

	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), noEnv, configOverrides{}); err == nil {
		t.Error("LoadConfig of a missing file = nil error")
	}
	cfg, err := LoadConfig(writeConfig(t, "# nothing but a comment\n"), noEnv, configOverrides{})
	if err != nil || !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("an empty file = %v, %v; want the defaults", cfg, err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"https upstream", func(c *Config) { c.Proxy.Upstream = "https://api.internal:8443/v1" }, ""},
		{"ftp upstream", func(c *Config) { c.Proxy.Upstream = "ftp://x" }, `proxy.upstream: "ftp://x" is not an http or https URL`},
		{"upstream without host", func(c *Config) { c.Proxy.Upstream = "http://" }, `proxy.upstream: "http://" names no host`},
		{"listen without port", func(c *Config) { c.Proxy.Listen = "localhost" }, `proxy.listen: "localhost" is not host:port`},
		{"management port too big", func(c *Config) { c.Management.Listen = "127.0.0.1:70000" }, `management.listen: "127.0.0.1:70000" has no port number`},
		{"same listeners", func(c *Config) { c.Management.Listen = c.Proxy.Listen }, `management.listen: "127.0.0.1:8080" is also proxy.listen`},
		{"admin on the management port", func(c *Config) { c.Admin.Listen = c.Management.Listen }, `admin.listen: "127.0.0.1:8081" is also management.listen`},
		{"admin listen", func(c *Config) { c.Admin.Listen = "nowhere" }, `admin.listen: "nowhere" is not host:port`},
		{"admin TLS without a listener", func(c *Config) { c.Admin.TLS.Mode = "files" }, "admin.tls: only used with admin.listen"},
		{"admin TLS mode", func(c *Config) { c.Admin.Listen = ":8443"; c.Admin.TLS.Mode = "on" }, `admin.tls.mode: "on" is not one of off, files, acme`},
		{"negative leak report rate", func(c *Config) { c.Admin.AnonymousLeakReportsPerSecond = -1 }, "admin.anonymous_leak_reports_per_second: -1 is negative"},
		{"both on :0", func(c *Config) { c.Proxy.Listen, c.Management.Listen = "127.0.0.1:0", "127.0.0.1:0" }, ""},
		{"postgres", func(c *Config) { c.Database = "postgres://u:pw@db:5432/scimgate?sslmode=disable" }, ""},
		{"postgres without host", func(c *Config) { c.Database = "postgres:///scimgate" }, "database: the postgres:// URL names no host"},
		{"mysql", func(c *Config) { c.Database = "mysql://u:hunter2@db/x" }, `database: "mysql://u:xxxxx@db/x" is neither a SQLite file path nor a postgres:// URL`},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data_dir: must not be empty"},
		{"no data dir but a database", func(c *Config) { c.DataDir, c.Database = "", "/tmp/x.db" }, ""},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, `log.level: "verbose" is not one of debug, info, warn, error`},
		{"bootstrap token", func(c *Config) { c.BootstrapToken = "sgs_hunter2" }, "bootstrap_token: not a well-formed scimgate service token"},
		{"user token as bootstrap", func(c *Config) { c.BootstrapToken = tokens.NewSecret(tokens.KindUser).Plaintext() }, "bootstrap_token: not a well-formed scimgate service token"},
		{"zero read header timeout", func(c *Config) { c.Proxy.ReadHeaderTimeout = 0 }, "proxy.read_header_timeout: must be a duration above zero"},
		{"zero write timeout", func(c *Config) { c.Proxy.WriteTimeout = 0 }, ""},
		{"negative read timeout", func(c *Config) { c.Proxy.ReadTimeout = -time.Second }, "proxy.read_timeout: -1s is negative"},
		{"zero shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout: must be a duration above zero"},
		{"stale before a poll", func(c *Config) { c.Auth.StaleAfter = 100 * time.Millisecond }, "auth.stale_after: 100ms must be longer than auth.poll_interval (250ms)"},
		{"zero cache", func(c *Config) { c.Auth.CacheSize = 0 }, "auth.cache_size: must be above zero, not 0"},
		{"zero negative cache", func(c *Config) { c.Auth.NegativeCacheSize = 0 }, "auth.negative_cache_size: must be above zero, not 0"},
		{"no lookups", func(c *Config) { c.Auth.LookupConcurrency = -1 }, "auth.lookup_concurrency: must be above zero, not -1"},
		{"no lookup wait", func(c *Config) { c.Auth.LookupQueueTimeout = 0 }, "auth.lookup_queue_timeout: must be a duration above zero"},
		{"no index sync interval", func(c *Config) { c.Auth.IndexSyncInterval = 0 }, "auth.index_sync_interval: must be a duration above zero"},
		{"zero idle conns", func(c *Config) { c.Proxy.MaxIdleConnsPerHost = 0 }, "proxy.max_idle_conns_per_host: must be above zero"},
		{"no activity log path", func(c *Config) { c.ActivityLog.Path = "" }, "activity_log.path"},
		{"public path", func(c *Config) { c.Proxy.PublicPaths = []string{"healthz"} }, `proxy.public_paths[0]: "healthz" must start with /`},
		{"header prefix", func(c *Config) { c.Proxy.IdentityHeaderPrefix = "X Scimgate" }, "proxy.identity_header_prefix"},
		{"unknown permission in a set", func(c *Config) { c.Permissions.Sets = map[string][]string{"admin": {"orders.write"}} },
			`permissions: permission set "admin": unknown permission "orders.write" (declare it under permissions)`},
		{"custom permissions", func(c *Config) {
			c.Permissions.Custom = []string{"orders.read", "orders.write"}
			c.Permissions.Sets = map[string][]string{"orders-admin": {"orders.read", "orders.write"}}
			c.Permissions.GroupSets = map[string][]string{"Order Admins": {"orders-admin"}}
			c.Permissions.DefaultSets = []string{"orders.read"}
			c.Proxy.Routes = []Route{{PathPrefix: "/admin", Methods: []string{"POST", "DELETE"}, Permission: "orders.write"}}
		}, ""},
		{"bad permission name", func(c *Config) { c.Permissions.Custom = []string{"orders read"} }, `permissions: permission "orders read"`},
		{"unknown default set", func(c *Config) { c.Permissions.DefaultSets = []string{"nope"} }, `permissions: default permission set "nope" is unknown`},
		{"route permission", func(c *Config) { c.Proxy.Routes = []Route{{PathPrefix: "/admin", Permission: "orders.write"}} },
			`proxy.routes[0].permission: "orders.write" is not a known permission`},
		{"route path", func(c *Config) { c.Proxy.Routes = []Route{{PathPrefix: "admin", Permission: "platform.users"}} },
			`proxy.routes[0].path_prefix: "admin" must start with /`},
		{"route method", func(c *Config) {
			c.Proxy.Routes = []Route{{PathPrefix: "/admin", Methods: []string{"post"}, Permission: "platform.users"}}
		}, `proxy.routes[0].methods: "post" is not an HTTP method in capitals`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %q, want nil", err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate() = nil, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate() = %q: it shows a secret", err)
			}
		})
	}
}

func TestValidateServe(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.ValidateServe(); err == nil || !strings.Contains(err.Error(), "proxy.upstream: required to serve") {
		t.Errorf("ValidateServe() without an upstream = %v, want proxy.upstream: required to serve", err)
	}
	cfg.Proxy.Upstream = "http://127.0.0.1:9000"
	if err := cfg.ValidateServe(); err != nil {
		t.Errorf("ValidateServe() = %v, want nil", err)
	}
}

func TestPolicy(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Permissions.Custom = []string{"orders.read"}
	cfg.Permissions.Sets = map[string][]string{"reader": {"orders.read"}}
	p, err := cfg.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Resolve([]string{"reader", tokens.PermUsers}); !reflect.DeepEqual(got, []string{"orders.read", tokens.PermUsers}) {
		t.Errorf("Resolve(reader, platform.users) = %v", got)
	}
}
