package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/scimgate/scimgate/admin/console"
	"github.com/scimgate/scimgate/tokens"
)

// ConsoleConfig configures the web console, served at / on the management
// listener.
type ConsoleConfig struct {
	Enabled bool `yaml:"enabled"`
	// Org is the organization whose people sign in by single sign-on.
	Org string `yaml:"org"`
	// IdleTimeout ends a session unused this long; AbsoluteTimeout ends
	// any session this long after sign-in.
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
	// SecureCookies marks cookies Secure on plain HTTP too: for a console
	// behind a proxy that terminates TLS.
	SecureCookies bool              `yaml:"secure_cookies"`
	OIDC          ConsoleOIDCConfig `yaml:"oidc"`
}

// ConsoleOIDCConfig configures single sign-on; an empty issuer turns it off.
type ConsoleOIDCConfig struct {
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecret is a secret: never printed. Prefer
	// SCIMGATE_CONSOLE_OIDC_CLIENT_SECRET or ClientSecretFile.
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	RedirectURL      string   `yaml:"redirect_url"`
	Claim            string   `yaml:"claim"`
	Scopes           []string `yaml:"scopes"`
}

func defaultConsoleConfig() ConsoleConfig {
	return ConsoleConfig{
		Enabled:         true,
		Org:             "default",
		IdleTimeout:     30 * time.Minute,
		AbsoluteTimeout: 12 * time.Hour,
		OIDC:            ConsoleOIDCConfig{Claim: "email", Scopes: []string{"email", "profile"}},
	}
}

func (c *ConsoleConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	if strings.TrimSpace(c.Org) == "" {
		return errors.New("console.org: name the organization whose people sign in to the console (default \"default\")")
	}
	if c.IdleTimeout <= 0 {
		return fmt.Errorf("console.idle_timeout: must be above zero, not %s", c.IdleTimeout)
	}
	if c.AbsoluteTimeout < c.IdleTimeout {
		return fmt.Errorf("console.absolute_timeout: %s is shorter than console.idle_timeout (%s)", c.AbsoluteTimeout, c.IdleTimeout)
	}
	o := c.OIDC
	if o.Issuer == "" {
		if o.ClientID != "" || o.ClientSecret != "" || o.ClientSecretFile != "" || o.RedirectURL != "" {
			return errors.New("console.oidc.issuer: required when the other console.oidc options are set (empty turns single sign-on off)")
		}
		return nil
	}
	if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("console.oidc.issuer: %q is not an https URL such as https://example.okta.com", o.Issuer)
	}
	if o.ClientID == "" {
		return errors.New("console.oidc.client_id: required with console.oidc.issuer (the identity provider gives it when you register scimgate)")
	}
	if o.ClientSecret != "" && o.ClientSecretFile != "" {
		return errors.New("console.oidc.client_secret_file: set it or console.oidc.client_secret (SCIMGATE_CONSOLE_OIDC_CLIENT_SECRET), not both")
	}
	if u, err := url.Parse(o.RedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "/auth/callback" {
		return fmt.Errorf("console.oidc.redirect_url: %q is not this console's callback URL, such as https://console.example.com/auth/callback (the path must be /auth/callback)", o.RedirectURL)
	}
	if !slices.Contains(console.SSOClaims, o.Claim) {
		return fmt.Errorf("console.oidc.claim: %q is not one of %s", o.Claim, strings.Join(console.SSOClaims, ", "))
	}
	return nil
}

// clientSecret reads the client secret from the file when one is named.
func (o ConsoleOIDCConfig) clientSecret() (string, error) {
	if o.ClientSecretFile == "" {
		return o.ClientSecret, nil
	}
	b, err := os.ReadFile(o.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("console.oidc.client_secret_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// newConsole builds the web console the configuration asks for, or nil.
func newConsole(cfg *Config, svc *tokens.Service, auth console.Authenticator, logger *slog.Logger) (http.Handler, error) {
	c := cfg.Console
	if !c.Enabled {
		return nil, nil
	}
	opts := console.Options{Org: c.Org, IdleTimeout: c.IdleTimeout, AbsoluteTimeout: c.AbsoluteTimeout,
		SecureCookies: c.SecureCookies, Logger: logger.With("component", "console")}
	if c.OIDC.Issuer != "" {
		secret, err := c.OIDC.clientSecret()
		if err != nil {
			return nil, err
		}
		opts.SSO = &console.SSOOptions{Issuer: c.OIDC.Issuer, ClientID: c.OIDC.ClientID, ClientSecret: secret,
			RedirectURL: c.OIDC.RedirectURL, Claim: c.OIDC.Claim, Scopes: c.OIDC.Scopes}
	}
	con, err := console.New(svc, auth, opts)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return con.Handler(), nil
}

// withConsole serves the console at / beside the routes of a listener:
// a request that a route of the listener's mux matches goes there, any other
// to the console. Routes added to the mux later keep working.
func withConsole(routes http.Handler, con http.Handler) http.Handler {
	mux, ok := routes.(*http.ServeMux)
	if con == nil || !ok {
		return routes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		con.ServeHTTP(w, r)
	})
}

// consoleBesideAPI serves the console at / on the admin API's own listener,
// beside /api/v1/.
func consoleBesideAPI(api, con http.Handler) http.Handler {
	if con == nil {
		return api
	}
	return withAdminAPI(con, api)
}
