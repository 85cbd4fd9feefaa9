package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scimgate/scimgate/proxy"
	"github.com/scimgate/scimgate/scim"
	"github.com/scimgate/scimgate/tokens"
)

// Config is scimgate's whole configuration: the YAML file, then SCIMGATE_*
// environment variables, then command-line flags. config.example.yaml
// documents every option with its default; a test keeps the two equal.
type Config struct {
	// DataDir holds the embedded SQLite database when Database is empty.
	DataDir string `yaml:"data_dir"`
	// Database is a SQLite file path or a postgres:// URL; empty means
	// <data_dir>/scimgate.db.
	Database string `yaml:"database"`
	// BootstrapToken, if set, is the service token the first start creates
	// instead of a random one. It is a secret: never print it.
	BootstrapToken string `yaml:"bootstrap_token"`

	Log         LogConfig         `yaml:"log"`
	Proxy       ProxyConfig       `yaml:"proxy"`
	Management  ManagementConfig  `yaml:"management"`
	Auth        AuthConfig        `yaml:"auth"`
	ActivityLog ActivityLogConfig `yaml:"activity_log"`
	Permissions PermissionsConfig `yaml:"permissions"`
	Telemetry   TelemetryConfig   `yaml:"telemetry"`
	SCIM        SCIMConfig        `yaml:"scim"`
	Console     ConsoleConfig     `yaml:"console"`
	Admin       AdminConfig       `yaml:"admin"`

	// ShutdownTimeout bounds a graceful shutdown: in-flight requests get
	// this long to finish.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay is how long, once asked to stop, scimgate goes on
	// serving with /readyz answering 503, so that load balancers stop
	// sending requests before the listeners close. 0 by default.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
}

// LogConfig configures the JSON log on stderr.
type LogConfig struct {
	Level string `yaml:"level"` // debug, info, warn or error
}

// ProxyConfig configures the authenticating reverse proxy.
type ProxyConfig struct {
	Listen string `yaml:"listen"`
	// Upstream is the API behind the proxy; serve requires it.
	Upstream string `yaml:"upstream"`
	// PublicPaths are path prefixes that pass without a token.
	PublicPaths []string `yaml:"public_paths"`
	// IdentityHeaderPrefix starts every identity header sent upstream;
	// client-sent headers with it are removed.
	IdentityHeaderPrefix string `yaml:"identity_header_prefix"`
	// IdentityHeaders are the identity headers forwarded (proxy.IdentityHeaders).
	IdentityHeaders []string `yaml:"identity_headers"`
	// ForwardAuthorization passes the client's Authorization header upstream.
	ForwardAuthorization bool    `yaml:"forward_authorization"`
	Routes               []Route `yaml:"routes"`
	// Methods are the request methods let through; others get a 405.
	Methods []string `yaml:"methods"`
	// RoutesIgnoreCase makes route prefixes match in any letter case.
	RoutesIgnoreCase bool `yaml:"routes_ignore_case"`
	// PublicPathsIgnoreCase makes public paths match in any letter case.
	PublicPathsIgnoreCase bool `yaml:"public_paths_ignore_case"`
	// AllowPathSemicolons accepts ";" (path parameters) in request paths.
	AllowPathSemicolons bool `yaml:"allow_path_semicolons"`
	// StripHeaders are deleted from every request; "*" ends a prefix.
	StripHeaders []string `yaml:"strip_headers"`
	// Assertion is the signed identity assertion sent upstream.
	Assertion AssertionConfig `yaml:"assertion"`

	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout is the time to read a whole request, body included; 0 means none.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout is 0 (none) by default so that streaming responses work.
	WriteTimeout        time.Duration `yaml:"write_timeout"`
	IdleTimeout         time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes      int           `yaml:"max_header_bytes"`
	MaxIdleConnsPerHost int           `yaml:"max_idle_conns_per_host"`
	// UpstreamTimeout is how long to wait for the upstream's response headers.
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	// TLS is off by default: a sidecar behind a TLS-terminating mesh.
	TLS TLSConfig `yaml:"tls"`
}

// Route requires a permission for requests whose path starts with
// PathPrefix and, if Methods is not empty, whose method is one of them.
type Route struct {
	PathPrefix string   `yaml:"path_prefix"`
	Methods    []string `yaml:"methods"`
	Permission string   `yaml:"permission"`
}

// AssertionConfig configures the signed identity assertion: a JWT in a
// header of every authenticated request, verifiable with the JWKS at
// /.well-known/jwks.json on the management listener.
type AssertionConfig struct {
	Enabled bool `yaml:"enabled"`
	// Header carries the assertion.
	Header string `yaml:"header"`
	// Algorithm of new signing keys: ES256 or EdDSA.
	Algorithm string `yaml:"algorithm"`
	Issuer    string `yaml:"issuer"`
	// Audience is the "aud" claim; empty means the upstream's URL
	// (scheme://host:port).
	Audience string `yaml:"audience"`
	// TTL is an assertion's lifetime.
	TTL time.Duration `yaml:"ttl"`
	// BindRequest adds the method and a hash of the path to the claims, at
	// the cost of a signature per request.
	BindRequest bool `yaml:"bind_request"`
	// KeyRotation is how long a signing key signs before the next one.
	KeyRotation time.Duration `yaml:"key_rotation"`
	// KeyPublishAhead is how long the next key is published before it signs.
	KeyPublishAhead time.Duration `yaml:"key_publish_ahead"`
}

// defaultAssertion is the assertion's default configuration: on.
func defaultAssertion() AssertionConfig {
	return AssertionConfig{
		Enabled:         true,
		Header:          proxy.DefaultAssertionHeader,
		Algorithm:       proxy.ES256,
		Issuer:          "scimgate",
		TTL:             2 * time.Minute,
		KeyRotation:     7 * 24 * time.Hour,
		KeyPublishAhead: time.Hour,
	}
}

// SCIMConfig configures the SCIM 2.0 endpoint at /scim/v2 on the
// management listener.
type SCIMConfig struct {
	// BaseURL is the endpoint's public URL, as identity providers reach it
	// (e.g. https://id.example.com/scim/v2); it starts the Location of
	// created resources. Empty means the path /scim/v2 alone.
	BaseURL string `yaml:"base_url"`
	// UnknownSites is what provisioning does with a site a user names that
	// the org does not have: "create" it, or "refuse" the change.
	UnknownSites string `yaml:"unknown_sites"`
	// MaxPatchOperations bounds the operations of one PATCH request, and
	// MaxPatchValues the values one PATCH request gives a multi-valued
	// attribute; a request over either is answered 413.
	MaxPatchOperations int `yaml:"max_patch_operations"`
	MaxPatchValues     int `yaml:"max_patch_values"`
	// MaxFilterCandidates bounds how many users or groups a filter that the
	// database cannot answer alone (one on name.givenName, emails.type, …)
	// is evaluated on in memory, after the rest of the filter selected
	// them; a filter that leaves more is answered 400 tooMany. Default 10000.
	MaxFilterCandidates int `yaml:"max_filter_candidates"`
}

// AdminConfig configures the token management API at /api/v1 (package
// admin).
type AdminConfig struct {
	// Listen is the API's own listener, host:port; empty serves it on the
	// management listener.
	Listen string `yaml:"listen"`
	// TLS is the TLS of the API's own listener; with Listen empty the API
	// has the management listener's.
	TLS TLSConfig `yaml:"tls"`
	// AnonymousLeakReportsPerSecond is how many leak reports without a
	// token are accepted per second (bursts of ten seconds' worth); 0
	// refuses them, so a token is needed to report.
	AnonymousLeakReportsPerSecond float64 `yaml:"anonymous_leak_reports_per_second"`
}

// ManagementConfig configures the listener of /healthz and /readyz.
type ManagementConfig struct {
	Listen string    `yaml:"listen"`
	TLS    TLSConfig `yaml:"tls"`
}

// TLSConfig configures TLS on one listener; see tls.go.
type TLSConfig struct {
	// Mode is "off" (plain HTTP), "files" (CertFile and KeyFile, reloaded
	// when they change) or "acme" (certificates obtained and renewed
	// automatically).
	Mode string `yaml:"mode"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	MinVersion string     `yaml:"min_version"`
	CertFile   string     `yaml:"cert_file"`
	KeyFile    string     `yaml:"key_file"`
	ACME       ACMEConfig `yaml:"acme"`
	HSTS       HSTSConfig `yaml:"hsts"`
}

// ACMEConfig configures mode "acme". Certificates and the ACME account
// are stored under <data_dir>/certmagic.
type ACMEConfig struct {
	// Domains get certificates at start.
	Domains []string `yaml:"domains"`
	// Email is the contact the CA sends account notices to.
	Email string `yaml:"email"`
	// CA is the ACME directory URL; Let's Encrypt's production one by default.
	CA string `yaml:"ca"`
	// CARoot is a PEM file of the roots to trust when talking to CA (a
	// private CA); empty means the system's roots.
	CARoot                  string `yaml:"ca_root"`
	DisableHTTPChallenge    bool   `yaml:"disable_http_challenge"`
	DisableTLSALPNChallenge bool   `yaml:"disable_tls_alpn_challenge"`
	// HTTPRedirectListen is the plain HTTP listener that answers the
	// HTTP-01 challenge and redirects everything else to HTTPS. It runs
	// only while the HTTP-01 challenge is enabled; empty disables both.
	HTTPRedirectListen string `yaml:"http_redirect_listen"`
	// OnDemand obtains certificates at the first TLS handshake for a name
	// in Domains or OnDemandAllow instead of at start.
	OnDemand      bool     `yaml:"on_demand"`
	OnDemandAllow []string `yaml:"on_demand_allow"`
	// RenewInterval is how often certificates are checked for renewal.
	RenewInterval time.Duration `yaml:"renew_interval"`
}

// HSTSConfig configures the Strict-Transport-Security header; MaxAge 0
// sends none.
type HSTSConfig struct {
	MaxAge            time.Duration `yaml:"max_age"`
	IncludeSubdomains bool          `yaml:"include_subdomains"`
}

// defaultTLS is TLS off, with the ACME defaults ready for mode "acme".
func defaultTLS() TLSConfig {
	return TLSConfig{
		Mode:       "off",
		MinVersion: "1.2",
		ACME: ACMEConfig{
			Domains:            []string{},
			CA:                 "https://acme-v02.api.letsencrypt.org/directory",
			HTTPRedirectListen: ":80",
			OnDemandAllow:      []string{},
			RenewInterval:      10 * time.Minute,
		},
	}
}

// AuthConfig tunes the authenticator's cache and background work.
type AuthConfig struct {
	CacheSize        int           `yaml:"cache_size"`
	CacheTTL         time.Duration `yaml:"cache_ttl"`
	NegativeCacheTTL time.Duration `yaml:"negative_cache_ttl"`
	// StaleAfter: cached entries are not trusted once the change-log
	// follower has not caught up for this long.
	StaleAfter time.Duration `yaml:"stale_after"`
	// PollInterval is how often the change log is read in any case, behind
	// PostgreSQL's LISTEN/NOTIFY and SQLite's watch of the database files.
	PollInterval          time.Duration `yaml:"poll_interval"`
	LastUsedFlushInterval time.Duration `yaml:"last_used_flush_interval"`
	// SweepInterval is how often tokens past their inactivity window are
	// marked expired.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// TokenIndex keeps the hashes of every stored token in memory, so that
	// unknown tokens are refused without a database query.
	TokenIndex bool `yaml:"token_index"`
	// IndexSyncInterval: a token missing from the index is refused after
	// one more change-log read; such reads begin at most this often.
	IndexSyncInterval time.Duration `yaml:"index_sync_interval"`
	// NegativeCacheSize bounds the unknown tokens remembered (apart from
	// cache_size, so that they never evict good tokens).
	NegativeCacheSize int `yaml:"negative_cache_size"`
	// LookupConcurrency bounds the token lookups in the database at once;
	// LookupQueueTimeout is how long a miss waits for a turn.
	LookupConcurrency  int           `yaml:"lookup_concurrency"`
	LookupQueueTimeout time.Duration `yaml:"lookup_queue_timeout"`
}

// ActivityLogConfig configures the one-line-per-request activity log.
type ActivityLogConfig struct {
	Path   string `yaml:"path"` // "-" for stdout, "off", or a file path
	Buffer int    `yaml:"buffer"`
}

// PermissionsConfig declares the upstream API's permissions and how people
// and service users get them; see tokens.PolicyConfig.
type PermissionsConfig struct {
	Custom      []string            `yaml:"custom"`
	Sets        map[string][]string `yaml:"sets"`
	GroupSets   map[string][]string `yaml:"group_sets"`
	DefaultSets []string            `yaml:"default_sets"`
}

// DefaultConfig returns the configuration scimgate runs with when nothing is
// configured: embedded SQLite under ./data, everything on localhost.
func DefaultConfig() *Config {
	return &Config{
		DataDir: "./data",
		Log:     LogConfig{Level: "info"},
		Proxy: ProxyConfig{
			Listen:               "127.0.0.1:8080",
			PublicPaths:          []string{},
			IdentityHeaderPrefix: "X-Scimgate-",
			IdentityHeaders:      slices.Clone(proxy.DefaultIdentityHeaders),
			Routes:               []Route{},
			Methods:              slices.Clone(proxy.DefaultMethods),
			RoutesIgnoreCase:     true,
			StripHeaders:         slices.Clone(proxy.DefaultStripHeaders),
			Assertion:            defaultAssertion(),
			ReadHeaderTimeout:    10 * time.Second,
			ReadTimeout:          60 * time.Second,
			IdleTimeout:          120 * time.Second,
			MaxHeaderBytes:       64 << 10,
			MaxIdleConnsPerHost:  256,
			UpstreamTimeout:      30 * time.Second,
			TLS:                  defaultTLS(),
		},
		Management: ManagementConfig{Listen: "127.0.0.1:8081", TLS: defaultTLS()},
		Auth: AuthConfig{
			CacheSize:             100_000,
			CacheTTL:              5 * time.Minute,
			NegativeCacheTTL:      10 * time.Second,
			StaleAfter:            5 * time.Second,
			PollInterval:          250 * time.Millisecond,
			LastUsedFlushInterval: 30 * time.Second,
			SweepInterval:         time.Hour,
			TokenIndex:            true,
			IndexSyncInterval:     20 * time.Millisecond,
			NegativeCacheSize:     10_000,
			LookupConcurrency:     8,
			LookupQueueTimeout:    time.Second,
		},
		ActivityLog: ActivityLogConfig{Path: "-", Buffer: 4096},
		Permissions: PermissionsConfig{
			Custom:      []string{},
			Sets:        map[string][]string{},
			GroupSets:   map[string][]string{},
			DefaultSets: []string{},
		},
		Telemetry:       defaultTelemetryConfig(),
		Console:         defaultConsoleConfig(),
		Admin:           AdminConfig{TLS: defaultTLS(), AnonymousLeakReportsPerSecond: 10},
		ShutdownTimeout: 20 * time.Second,
		SCIM: SCIMConfig{
			UnknownSites:       string(tokens.CreateUnknownSites),
			MaxPatchOperations: scim.DefaultMaxPatchOperations,
			MaxPatchValues:     scim.DefaultMaxPatchValues,

			MaxFilterCandidates: 10000,
		},
	}
}

// configOverrides are the values given on the command line; empty means
// not given.
type configOverrides struct {
	Database         string
	Upstream         string
	Listen           string
	ManagementListen string
}

// LoadConfig reads the YAML file at path (none if path is empty) over the
// defaults, then applies the SCIMGATE_* environment variables, then the
// flags. It does not validate.
func LoadConfig(path string, getenv func(string) string, flags configOverrides) (*Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := decodeConfig(data, cfg); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	for _, o := range []struct {
		env string
		dst *string
	}{
		{"SCIMGATE_DATA_DIR", &cfg.DataDir},
		{"SCIMGATE_DATABASE", &cfg.Database},
		{"SCIMGATE_BOOTSTRAP_TOKEN", &cfg.BootstrapToken},
		{"SCIMGATE_LOG_LEVEL", &cfg.Log.Level},
		{"SCIMGATE_LISTEN", &cfg.Proxy.Listen},
		{"SCIMGATE_UPSTREAM", &cfg.Proxy.Upstream},
		{"SCIMGATE_MANAGEMENT_LISTEN", &cfg.Management.Listen},
		{"SCIMGATE_ACTIVITY_LOG_PATH", &cfg.ActivityLog.Path},
		{"SCIMGATE_CONSOLE_OIDC_CLIENT_SECRET", &cfg.Console.OIDC.ClientSecret},
		{"SCIMGATE_ADMIN_LISTEN", &cfg.Admin.Listen},
	} {
		if v := getenv(o.env); v != "" {
			*o.dst = v
		}
	}
	for _, o := range []struct{ flag, dst *string }{
		{&flags.Database, &cfg.Database},
		{&flags.Upstream, &cfg.Proxy.Upstream},
		{&flags.Listen, &cfg.Proxy.Listen},
		{&flags.ManagementListen, &cfg.Management.Listen},
	} {
		if *o.flag != "" {
			*o.dst = *o.flag
		}
	}
	return cfg, nil
}

// yaml.v3 names Go types in its errors; a person editing the file knows
// options and values, not types.
var (
	unknownFieldError = regexp.MustCompile(`field (\S+) not found in type \S+`)
	wrongTypeError    = regexp.MustCompile("cannot unmarshal !!\\w+ `([^`]*)` into (\\S+)")
)

func explainWrongType(match string) string {
	m := wrongTypeError.FindStringSubmatch(match)
	value, goType := m[1], m[2]
	switch {
	case goType == "time.Duration":
		return fmt.Sprintf("%q is not a duration: write a number with a unit, like 250ms, 10s or 5m", value)
	case goType == "int":
		return fmt.Sprintf("%q is not a whole number", value)
	case goType == "bool":
		return fmt.Sprintf("%q is not true or false", value)
	case goType == "string":
		return fmt.Sprintf("%q is not a single value (quote it)", value)
	case strings.HasPrefix(goType, "[]"):
		return fmt.Sprintf("%q is not a list: write [a, b] or one \"- item\" per line", value)
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "main."):
		return fmt.Sprintf("%q is not a mapping of options: write \"key: value\" lines below it", value)
	}
	return fmt.Sprintf("%q has the wrong type", value)
}

func decodeConfig(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt option is an error, not a silent default
	err := dec.Decode(cfg)
	if errors.Is(err, io.EOF) { // an empty file: the defaults
		return nil
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		msg = unknownFieldError.ReplaceAllString(msg, `unknown option "$1"`)
		msg = wrongTypeError.ReplaceAllStringFunc(msg, explainWrongType)
		return errors.New(msg)
	}
	return nil
}

// DatabaseDSN is the database to open: Database, or the SQLite file in DataDir.
func (c *Config) DatabaseDSN() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "scimgate.db")
}

// isPostgres tells a PostgreSQL URL from a SQLite file path.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Policy builds the permission policy the configuration declares.
func (c *Config) Policy() (*tokens.Policy, error) {
	p, err := tokens.NewPolicy(tokens.PolicyConfig{
		Permissions: c.Permissions.Custom,
		Sets:        c.Permissions.Sets,
		GroupSets:   c.Permissions.GroupSets,
		DefaultSets: c.Permissions.DefaultSets,
	})
	if err != nil {
		return nil, fmt.Errorf("permissions: %w", err)
	}
	return p, nil
}

// LogLevel is Log.Level as a slog level.
func (c *Config) LogLevel() (slog.Level, error) {
	switch strings.ToLower(c.Log.Level) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
}

// Validate checks every option and returns the first problem, naming the
// option and what it expects. It does not require proxy.upstream: only
// serve does (see ValidateServe).
func (c *Config) Validate() error {
	if c.Database == "" && strings.TrimSpace(c.DataDir) == "" {
		return errors.New("data_dir: must not be empty when database is not set (the SQLite file lives there)")
	}
	if err := checkDatabase(c.Database); err != nil {
		return err
	}
	if c.BootstrapToken != "" {
		// Never repeat the value: it is a secret.
		if sec, err := tokens.Parse(c.BootstrapToken); err != nil || sec.Kind != tokens.KindService {
			return errors.New("bootstrap_token: not a well-formed scimgate service token (sgs_ followed by 38 letters and digits); leave it unset to have one generated")
		}
	}
	if _, err := c.LogLevel(); err != nil {
		return err
	}

	if err := checkListen("proxy.listen", c.Proxy.Listen); err != nil {
		return err
	}
	if err := checkListen("management.listen", c.Management.Listen); err != nil {
		return err
	}
	if c.Proxy.Listen == c.Management.Listen && !strings.HasSuffix(c.Proxy.Listen, ":0") {
		return fmt.Errorf("management.listen: %q is also proxy.listen; give the management listener its own port", c.Management.Listen)
	}
	if c.Proxy.Upstream != "" {
		if err := checkUpstream(c.Proxy.Upstream); err != nil {
			return err
		}
	}
	for i, p := range c.Proxy.PublicPaths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("proxy.public_paths[%d]: %q must start with /", i, p)
		}
	}
	if !isHeaderName(c.Proxy.IdentityHeaderPrefix) {
		return fmt.Errorf("proxy.identity_header_prefix: %q must be letters, digits and dashes, like X-Scimgate-", c.Proxy.IdentityHeaderPrefix)
	}

	durations := []struct {
		name   string
		d      time.Duration
		zeroOK bool // 0 means "no limit"
	}{
		{"proxy.read_header_timeout", c.Proxy.ReadHeaderTimeout, false},
		{"proxy.read_timeout", c.Proxy.ReadTimeout, true},
		{"proxy.write_timeout", c.Proxy.WriteTimeout, true},
		{"proxy.idle_timeout", c.Proxy.IdleTimeout, false},
		{"proxy.upstream_timeout", c.Proxy.UpstreamTimeout, false},
		{"auth.cache_ttl", c.Auth.CacheTTL, false},
		{"auth.negative_cache_ttl", c.Auth.NegativeCacheTTL, false},
		{"auth.stale_after", c.Auth.StaleAfter, false},
		{"auth.poll_interval", c.Auth.PollInterval, false},
		{"auth.last_used_flush_interval", c.Auth.LastUsedFlushInterval, false},
		{"auth.sweep_interval", c.Auth.SweepInterval, false},
		{"auth.index_sync_interval", c.Auth.IndexSyncInterval, false},
		{"auth.lookup_queue_timeout", c.Auth.LookupQueueTimeout, false},
		{"shutdown_timeout", c.ShutdownTimeout, false},
		{"shutdown_delay", c.ShutdownDelay, true},
	}
	for _, d := range durations {
		switch {
		case d.d < 0:
			return fmt.Errorf("%s: %s is negative", d.name, d.d)
		case d.d == 0 && !d.zeroOK:
			return fmt.Errorf("%s: must be a duration above zero, such as 10s or 5m", d.name)
		}
	}
	if c.Auth.StaleAfter <= c.Auth.PollInterval {
		return fmt.Errorf("auth.stale_after: %s must be longer than auth.poll_interval (%s), or the cache is never trusted", c.Auth.StaleAfter, c.Auth.PollInterval)
	}

	counts := []struct {
		name string
		n    int
	}{
		{"proxy.max_header_bytes", c.Proxy.MaxHeaderBytes},
		{"proxy.max_idle_conns_per_host", c.Proxy.MaxIdleConnsPerHost},
		{"auth.cache_size", c.Auth.CacheSize},
		{"auth.negative_cache_size", c.Auth.NegativeCacheSize},
		{"auth.lookup_concurrency", c.Auth.LookupConcurrency},
		{"scim.max_patch_operations", c.SCIM.MaxPatchOperations},
		{"scim.max_patch_values", c.SCIM.MaxPatchValues},
		{"activity_log.buffer", c.ActivityLog.Buffer},
	}
	for _, n := range counts {
		if n.n <= 0 {
			return fmt.Errorf("%s: must be above zero, not %d", n.name, n.n)
		}
	}
	if strings.TrimSpace(c.ActivityLog.Path) == "" {
		return errors.New(`activity_log.path: must be "-" (stdout), "off" or a file path`)
	}

	if _, err := c.Policy(); err != nil {
		return err
	}
	known := append(slices.Clone(tokens.BuiltinPermissions), c.Permissions.Custom...)
	for i, r := range c.Proxy.Routes {
		name := fmt.Sprintf("proxy.routes[%d]", i)
		if !strings.HasPrefix(r.PathPrefix, "/") {
			return fmt.Errorf("%s.path_prefix: %q must start with /", name, r.PathPrefix)
		}
		for _, m := range r.Methods {
			if m == "" || strings.ToUpper(m) != m || !isHeaderName(m) {
				return fmt.Errorf("%s.methods: %q is not an HTTP method in capitals, like GET or POST", name, m)
			}
		}
		if !slices.Contains(known, r.Permission) {
			return fmt.Errorf("%s.permission: %q is not a known permission (declare it under permissions.custom)", name, r.Permission)
		}
	}
	for _, h := range c.Proxy.IdentityHeaders {
		if !slices.Contains(proxy.IdentityHeaders, h) {
			return fmt.Errorf("proxy.identity_headers: %q is not one of %s", h, strings.Join(proxy.IdentityHeaders, ", "))
		}
	}
	if err := c.Proxy.validateRequestRules(); err != nil {
		return err
	}
	if err := c.Telemetry.validate(); err != nil {
		return err
	}
	if c.SCIM.BaseURL != "" {
		if u, err := url.Parse(c.SCIM.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("scim.base_url: %q is not an http or https URL such as https://id.example.com/scim/v2", c.SCIM.BaseURL)
		}
	}
	if err := c.Console.validate(); err != nil { // in console.go
		return err
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	if _, err := tokens.ParseUnknownSitePolicy(c.SCIM.UnknownSites); err != nil {
		return fmt.Errorf("scim.unknown_sites: %w", err)
	}
	if c.SCIM.MaxFilterCandidates < 1 {
		return fmt.Errorf("scim.max_filter_candidates: %d must be at least 1 (the default is 10000)", c.SCIM.MaxFilterCandidates)
	}
	return c.validateTLS() // in tls.go
}

// validateAdmin checks the options of the admin API.
func (c *Config) validateAdmin() error {
	a := &c.Admin
	if a.AnonymousLeakReportsPerSecond < 0 {
		return fmt.Errorf("admin.anonymous_leak_reports_per_second: %g is negative; 0 refuses leak reports without a token", a.AnonymousLeakReportsPerSecond)
	}
	if a.Listen == "" {
		if a.TLS.Mode != tlsOff {
			return errors.New("admin.tls: only used with admin.listen; the API is served on the management listener, with management.tls")
		}
		return nil
	}
	if err := checkListen("admin.listen", a.Listen); err != nil {
		return err
	}
	for _, o := range []struct{ name, addr string }{{"proxy.listen", c.Proxy.Listen}, {"management.listen", c.Management.Listen}} {
		if a.Listen == o.addr && !strings.HasSuffix(a.Listen, ":0") {
			return fmt.Errorf("admin.listen: %q is also %s; give the admin API its own port, or leave admin.listen empty to serve it on the management listener", a.Listen, o.name)
		}
	}
	return nil
}

// ValidateServe is Validate plus what only serve needs.
func (c *Config) ValidateServe() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Proxy.Upstream == "" {
		return errors.New("proxy.upstream: required to serve: set it in the config file, with SCIMGATE_UPSTREAM or with --upstream (an http or https URL)")
	}
	return c.validateTLSFiles() // in tls.go: the files only serve reads
}

func checkDatabase(dsn string) error {
	switch {
	case dsn == "":
		return nil
	case isPostgres(dsn):
		u, err := url.Parse(dsn)
		if err != nil {
			// url's error repeats the URL, password included: say less.
			return errors.New("database: not a valid postgres:// URL")
		}
		if u.Host == "" {
			return errors.New("database: the postgres:// URL names no host")
		}
	case strings.HasPrefix(dsn, "file:"): // a SQLite URI
		return nil
	case strings.Contains(dsn, "://"):
		return fmt.Errorf("database: %q is neither a SQLite file path nor a postgres:// URL", redactDSN(dsn))
	}
	return nil
}

// redactDSN hides a URL's password so that it can be shown.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

func checkUpstream(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("proxy.upstream: %q is not an http or https URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("proxy.upstream: %q names no host", s)
	}
	return nil
}

func checkListen(name, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port, like 127.0.0.1:8080 or :8080", name, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: %q has no port number from 0 to 65535", name, addr)
	}
	return nil
}

func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}

// validateRequestRules checks the options of the canonical request, the
// headers stripped and the identity assertion.
func (p *ProxyConfig) validateRequestRules() error {
	if len(p.Methods) == 0 {
		return errors.New("proxy.methods: must list at least one method, like [GET, POST]")
	}
	for _, m := range p.Methods {
		if m == "" || strings.ToUpper(m) != m || !isHeaderName(m) {
			return fmt.Errorf("proxy.methods: %q is not an HTTP method in capitals, like GET or POST", m)
		}
	}
	for i, pp := range p.PublicPaths {
		if err := proxy.CheckPathPrefix(pp, p.AllowPathSemicolons); err != nil {
			return fmt.Errorf("proxy.public_paths[%d]: %w", i, err)
		}
	}
	for i, r := range p.Routes {
		if err := proxy.CheckPathPrefix(r.PathPrefix, p.AllowPathSemicolons); err != nil {
			return fmt.Errorf("proxy.routes[%d].path_prefix: %w", i, err)
		}
	}
	for _, h := range p.StripHeaders {
		name, _ := strings.CutSuffix(h, "*")
		if !isHeaderName(strings.ReplaceAll(name, "_", "-")) {
			return fmt.Errorf("proxy.strip_headers: %q is not a header name, or the start of one followed by *", h)
		}
	}
	a := &p.Assertion
	if !a.Enabled {
		return nil
	}
	if !isHeaderName(a.Header) {
		return fmt.Errorf("proxy.assertion.header: %q must be letters, digits and dashes, like X-Scimgate-Assertion", a.Header)
	}
	for _, name := range proxy.IdentityHeaders {
		if strings.EqualFold(a.Header, p.IdentityHeaderPrefix+strings.ReplaceAll(name, "_", "-")) {
			return fmt.Errorf("proxy.assertion.header: %q is the identity header %q; choose another name", a.Header, name)
		}
	}
	if strings.EqualFold(a.Header, "Authorization") {
		return errors.New("proxy.assertion.header: Authorization carries the client's token; choose another name")
	}
	if a.Algorithm != proxy.ES256 && a.Algorithm != proxy.EdDSA {
		return fmt.Errorf("proxy.assertion.algorithm: %q is not %s or %s", a.Algorithm, proxy.ES256, proxy.EdDSA)
	}
	if strings.TrimSpace(a.Issuer) == "" {
		return errors.New("proxy.assertion.issuer: must not be empty (the iss claim upstreams check)")
	}
	switch {
	case a.TTL < 10*time.Second || a.TTL > time.Hour:
		return fmt.Errorf("proxy.assertion.ttl: %s is not between 10s and 1h (an assertion should live briefly)", a.TTL)
	case a.KeyPublishAhead < time.Minute:
		return fmt.Errorf("proxy.assertion.key_publish_ahead: %s is below 1m; upstreams need time to fetch the next key", a.KeyPublishAhead)
	case a.KeyRotation < 2*a.KeyPublishAhead:
		return fmt.Errorf("proxy.assertion.key_rotation: %s must be at least twice key_publish_ahead (%s)", a.KeyRotation, a.KeyPublishAhead)
	}
	return nil
}
