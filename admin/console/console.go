// Package console is scimgate's web console: people sign in with the
// identity provider that provisions them (OpenID Connect) or with one of their
// user API tokens, and manage API tokens as the product documents describe:
// Integrations → API tokens, with the "User API tokens" and "Service user API
// tokens" sections, creating, editing, revoking, regenerating and deleting
// tokens; My API tokens for everyone; the audit log and seats.
//
// Pages are rendered on the server with html/template; the stylesheet and the
// one small script (the copy button, and dialogs on browsers without HTML
// invoker commands) are embedded. Everything works without JavaScript but
// copying to the clipboard. Sessions live in the database (tokens.Session), so
// every replica serves every page. Every rule of who may do what is the
// domain's (tokens.Manager): the console only shows and asks.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Authenticator checks a user API token at sign-in.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*tokens.Identity, error)
}

// Options configure the console. Zero values take the defaults shown.
type Options struct {
	// Org is the organization whose people sign in by single sign-on.
	// People signing in with a token sign in to their token's org.
	Org string
	// SSO configures single sign-on; nil offers token sign-in only.
	SSO *SSOOptions
	// IdleTimeout ends a session unused this long (default 30m);
	// AbsoluteTimeout ends any session this long after sign-in (default 12h).
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP requests, for a
	// console behind a proxy that terminates TLS. Requests that come over
	// TLS always get Secure cookies.
	SecureCookies bool
	Logger        *slog.Logger
}

// SSOOptions configure sign-in with an OpenID Connect provider:
// authorization code flow with PKCE.
type SSOOptions struct {
	// Issuer is the provider's issuer URL, whose
	// /.well-known/openid-configuration is read at the first sign-in.
	Issuer       string
	ClientID     string
	ClientSecret string // never logged
	// RedirectURL is this console's callback as registered with the
	// provider: https://console.example.com/auth/callback.
	RedirectURL string
	// Claim finds the person: "email" (any of their addresses),
	// "preferred_username" (their user name) or "sub" (their SCIM
	// externalId).
	Claim string
	// Scopes requested besides openid; default email and profile.
	Scopes []string
	// HTTPClient talks to the provider; default a client with a 10s timeout.
	HTTPClient *http.Client
}

// The claims that can find a person.
var SSOClaims = []string{"email", "preferred_username", "sub"}

// Console serves the web console.
type Console struct {
	svc    *tokens.Service
	auth   Authenticator
	opts   Options
	policy tokens.SessionPolicy
	sso    *sso
	pages  map[string]*template.Template
	assets http.Handler
	log    *slog.Logger
}

// New returns the console over the domain service and the authenticator
// that checks tokens at sign-in.
func New(svc *tokens.Service, auth Authenticator, opts Options) (*Console, error) {
	if opts.Org == "" {
		opts.Org = "default"
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.AbsoluteTimeout <= 0 {
		opts.AbsoluteTimeout = 12 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{svc: svc, auth: auth, opts: opts, log: opts.Logger,
		policy: tokens.SessionPolicy{Idle: opts.IdleTimeout, Absolute: opts.AbsoluteTimeout}}
	if opts.SSO != nil {
		s, err := newSSO(*opts.SSO)
		if err != nil {
			return nil, err
		}
		c.sso = s
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	sub, _ := fs.Sub(assetFiles, "assets") // cannot fail: the folder is embedded
	c.assets = http.StripPrefix("/assets/", http.FileServerFS(sub))
	return c, nil
}

// Handler serves every page of the console under "/", refusing cross-origin
// state changes (http.CrossOriginProtection) and sending the security
// headers with every response.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", c.assets)
	mux.HandleFunc("GET /signin", c.handleSignIn)
	mux.HandleFunc("POST /signin/token", c.handleSignInToken)
	mux.HandleFunc("GET /auth/sso", c.handleSSOStart)
	mux.HandleFunc("GET /auth/callback", c.handleSSOCallback)
	mux.HandleFunc("POST /signout", c.handleSignOut)

	mux.Handle("GET /{$}", c.signedIn(c.handleHome))
	mux.Handle("GET /integrations", c.signedIn(c.handleIntegrations))
	mux.Handle("GET /integrations/api-tokens", c.signedIn(c.handleAPITokens))
	mux.Handle("GET /integrations/api-tokens/new", c.signedIn(c.handleNewServiceToken))
	mux.Handle("POST /integrations/api-tokens", c.signedIn(c.handleCreateServiceToken))
	mux.Handle("GET /integrations/api-tokens/service/{id}", c.signedIn(c.handleServiceToken))
	mux.Handle("POST /integrations/api-tokens/service/{id}", c.signedIn(c.handleEditServiceToken))
	mux.Handle("POST /integrations/api-tokens/service/{id}/revoke", c.signedIn(c.handleRevokeServiceToken))
	mux.Handle("POST /integrations/api-tokens/service/{id}/regenerate", c.signedIn(c.handleRegenerateServiceToken))
	mux.Handle("POST /integrations/api-tokens/service/{id}/delete", c.signedIn(c.handleDeleteServiceToken))
	mux.Handle("POST /integrations/api-tokens/user/{id}/delete", c.signedIn(c.handleDeleteUserToken))
	mux.Handle("GET /integrations/audit-log", c.signedIn(c.handleAuditLog))
	mux.Handle("GET /integrations/seats", c.signedIn(c.handleSeats))
	mux.Handle("GET /my/api-tokens", c.signedIn(c.handleMyTokens))
	mux.Handle("POST /my/api-tokens", c.signedIn(c.handleCreateMyToken))
	mux.Handle("POST /my/api-tokens/{id}/delete", c.signedIn(c.handleDeleteMyToken))
	mux.HandleFunc("/", c.handleNotFound)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(c.handleCrossOrigin))
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders sends what keeps the pages from being framed, sniffed,
// cached or made to run anything but the console's own script.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			// Pages show token names, people and sometimes a secret.
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// session is the signed-in person of a request.
type session struct {
	secret   string
	identity *tokens.Identity
	profile  *tokens.Profile
	mgr      *tokens.Manager
}

func (s *session) has(permission string) bool { return s.identity.Has(permission) }

type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// signedIn loads the request's session, checking it against the store, or
// sends the browser to the sign-in page saying why it has none.
func (c *Console) signedIn(h sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := c.sessionCookie(r)
		_, id, err := c.svc.ResumeSession(r.Context(), secret, c.policy)
		if err != nil {
			var ended *tokens.SessionEndedError
			if errors.As(err, &ended) {
				c.clearSessionCookie(w, r)
				c.toSignIn(w, r, ended.Reason)
				return
			}
			c.log.ErrorContext(r.Context(), "console session", "err", err)
			c.errorPage(w, r, http.StatusServiceUnavailable, "The console cannot reach its database",
				"Nothing was changed. Try again in a moment; if it goes on, the operator should check the database.")
			return
		}
		s := &session{secret: secret, identity: id, mgr: c.svc.As(tokens.Caller{
			OrgID: id.OrgID, Kind: tokens.KindUser, OwnerID: id.OwnerID, TokenID: id.TokenID, Via: "web console",
		})}
		if s.profile, err = s.mgr.Me(r.Context()); err != nil {
			c.fail(w, r, s, err)
			return
		}
		h(w, r, s)
	})
}

// toSignIn sends the browser to the sign-in page; reason says why the
// session ended ("" for none).
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, reason string) {
	target := "/signin"
	if reason != "" && reason != "unknown" {
		target += "?ended=" + reason
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// fail turns an error of a domain call into a response: the one place
// where the console maps errors to statuses.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, title := errorStatus(err)
	switch status {
	case http.StatusUnauthorized:
		// The person or their token stopped working mid-request.
		c.clearSessionCookie(w, r)
		c.toSignIn(w, r, "token")
		return
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		c.log.ErrorContext(r.Context(), "console request", "path", r.URL.Path, "err", err)
		c.errorPage(w, r, status, title, "Nothing was changed. Try again in a moment; if it goes on, the operator should look at scimgate's log.")
		return
	}
	c.renderError(w, r, s, status, title, message(err))
}

// errorStatus is the status and page title of a domain error.
func errorStatus(err error) (int, string) {
	switch tokens.ErrorCode(err) {
	case tokens.Invalid:
		return http.StatusUnprocessableEntity, "Check what you entered"
	case tokens.NotFound:
		return http.StatusNotFound, "Not found"
	case tokens.Conflict:
		return http.StatusConflict, "Already taken"
	case tokens.LimitReached:
		return http.StatusConflict, "Limit reached"
	case tokens.WrongState:
		return http.StatusConflict, "Not possible now"
	case tokens.VersionChanged:
		return http.StatusConflict, "Changed meanwhile"
	case tokens.Forbidden:
		return http.StatusForbidden, "Not allowed"
	case tokens.Unauthenticated:
		return http.StatusUnauthorized, "Signed out"
	}
	if errors.Is(err, tokens.ErrUnavailable) {
		return http.StatusServiceUnavailable, "The console cannot reach its database"
	}
	return http.StatusInternalServerError, "Something went wrong"
}

// message is a domain error's words for a person, with a capital letter.
func message(err error) string {
	var e *tokens.Error
	msg := err.Error()
	if errors.As(err, &e) {
		msg = e.Message
	}
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

func (c *Console) handleCrossOrigin(w http.ResponseWriter, r *http.Request) {
	c.errorPage(w, r, http.StatusForbidden, "Request refused",
		"This request came from another site, so nothing was changed. If you meant to do this, do it from the console's own page.")
}

func (c *Console) handleNotFound(w http.ResponseWriter, r *http.Request) {
	c.errorPage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
}

func (c *Console) handleHome(w http.ResponseWriter, r *http.Request, s *session) {
	if s.has(tokens.PermTokens) {
		http.Redirect(w, r, "/integrations/api-tokens", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/my/api-tokens", http.StatusSeeOther)
}

func (c *Console) handleIntegrations(w http.ResponseWriter, r *http.Request, s *session) {
	http.Redirect(w, r, "/integrations/api-tokens", http.StatusSeeOther)
}

// formValue is a form field with its surrounding spaces removed.
func formValue(r *http.Request, name string) string {
	return strings.TrimSpace(r.PostFormValue(name))
}

// limitForm caps a form's size: every form of the console is small.
func limitForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return tokens.Errorf(tokens.Invalid, "the form could not be read: %v", err)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
