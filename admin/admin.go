// Package admin is scimgate's token management API: a versioned JSON API
// under /api/v1 for people, automation and the remote command line, over
// the caller-aware management of the tokens domain (tokens.Manager).
//
// Behaviour worth knowing:
//
//   - Every call but the OpenAPI document and the leak report needs
//     "Authorization: Bearer <token>" with an active token: a person's user
//     token or a service token. What the caller may do is the domain's rule
//     (see tokens.Manager), read again at each call.
//   - Errors are RFC 9457 problem details (application/problem+json) with a
//     stable "type" (urn:scimgate:problem:<reason>), the same "reason" as an
//     extension member, and a "detail" a person can act on. problemFor is
//     the one place where statuses are chosen.
//   - Request bodies are JSON (Content-Type application/json), at most
//     Options.MaxBodyBytes, and an unknown field is refused (400), as is an
//     unknown query parameter: a typo never passes silently.
//   - Lists are pages in order of creation (the audit trail newest first)
//     with an opaque "next_cursor", null on the last page.
//   - Responses are never cached (Cache-Control: no-store): some hold a new
//     token's plaintext, shown once.
//   - POST /api/v1/tokens/report accepts leaked tokens with or without a
//     token: holding a token's plaintext is the authority to kill it.
//     Reports without a token are rate-limited and recorded under the
//     client's address; they answer each token's fate but never whose it
//     was. /api/v1/tokens/report/github takes GitHub secret scanning's
//     partner-program payload as it is sent.
//   - The OpenAPI 3.1 document of every route is at /api/v1/openapi.json.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// Prefix is the path the API is served under.
const Prefix = "/api/v1"

// Authenticator turns a bearer token into an identity; *tokens.Authenticator
// is the real one. It returns a *tokens.AuthError for a token it refuses and
// any other error when it cannot decide (the store is unavailable).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*tokens.Identity, error)
}

// Options configure the handler. Zero values take the defaults shown.
type Options struct {
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	// Default 64 KiB: a leak report of tokens.MaxLeakReportTokens tokens
	// fits many times over.
	MaxBodyBytes int64
	// AnonymousLeakReportsPerSecond is how many leak reports without a
	// token are accepted per second, with bursts of up to ten seconds'
	// worth (at least one); more are answered 429. 0 refuses reports
	// without a token (401), negative means no limit.
	AnonymousLeakReportsPerSecond float64
	// Logger receives internal errors (never written in a response body).
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock of the rate limit; default time.Now.
	Now func() time.Time
}

const defaultMaxBodyBytes = 64 << 10

// api is the handler's state, shared by every request.
type api struct {
	svc       *tokens.Service
	auth      Authenticator
	opts      Options
	log       *slog.Logger
	anonymous *limiter // nil: no limit
}

// New returns the API's handler. Mount it at Prefix+"/" (the handler sees
// full paths, not stripped ones).
func New(svc *tokens.Service, auth Authenticator, opts Options) (http.Handler, error) {
	if svc == nil || auth == nil {
		return nil, errors.New("admin: a tokens.Service and an Authenticator are required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBodyBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &api{svc: svc, auth: auth, opts: opts, log: opts.Logger}
	if opts.AnonymousLeakReportsPerSecond > 0 {
		a.anonymous = newLimiter(opts.AnonymousLeakReportsPerSecond, opts.Now)
	}
	return a.handler(), nil
}
