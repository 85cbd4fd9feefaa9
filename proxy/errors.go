package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/scimgate/scimgate/tokens"
)

type forbiddenError struct{ permission string }

func (e *forbiddenError) Error() string {
	return "this request needs the permission " + strconv.Quote(e.permission) + ", which the token does not have"
}

// refusal is a prepared response: refusing a flood of bad tokens should cost
// as little as serving a good one.
type refusal struct {
	status       int
	authenticate string
	body         []byte
}

var refusals = map[*tokens.AuthError]*refusal{}

func init() {
	for _, e := range []*tokens.AuthError{
		tokens.ErrNoToken, tokens.ErrMalformedToken, tokens.ErrUnknownToken, tokens.ErrRevokedToken,
		tokens.ErrInactiveToken, tokens.ErrOwnerDeactivated, tokens.ErrOwnerRemoved,
	} {
		refusals[e] = &refusal{
			status:       http.StatusUnauthorized,
			authenticate: `Bearer realm="scimgate", error="invalid_token", error_description=` + strconv.Quote(e.Message),
			body:         jsonBody("invalid_token", e.Reason, e.Message),
		}
	}
}

func jsonBody(code, reason, message string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep "<token>" readable
	enc.Encode(struct {
		Error   string `json:"error"`
		Reason  string `json:"reason,omitempty"`
		Message string `json:"message"`
	}{code, reason, message})
	return b.Bytes()
}

var (
	unavailable = &refusal{status: http.StatusServiceUnavailable,
		body: jsonBody("unavailable", "store_unavailable", "scimgate cannot check this token right now: try again shortly")}
	badGateway = &refusal{status: http.StatusBadGateway,
		body: jsonBody("bad_gateway", "upstream_unavailable", "the upstream service did not answer")}
	gatewayTimeout = &refusal{status: http.StatusGatewayTimeout,
		body: jsonBody("gateway_timeout", "upstream_timeout", "the upstream service did not answer in time")}
)

// refuse writes the response for an error from admit. It is the one place
// where the proxy's refusals get their status codes.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, err error) {
	// admit returns refusals unwrapped; a type switch keeps them free of
	// allocations, where errors.As would not.
	switch e := err.(type) {
	case *tokens.AuthError:
		authErr := e
		ref := refusals[authErr]
		if ref == nil { // an AuthError this package does not know yet
			ref = &refusal{status: http.StatusUnauthorized, authenticate: `Bearer realm="scimgate", error="invalid_token"`,
				body: jsonBody("invalid_token", authErr.Reason, authErr.Message)}
		}
		write(w, ref)
	case *forbiddenError:
		forbidden := e
		write(w, &refusal{status: http.StatusForbidden,
			authenticate: `Bearer realm="scimgate", error="insufficient_scope", scope=` + strconv.Quote(forbidden.permission),
			body:         jsonBody("insufficient_scope", "missing_permission", forbidden.Error())})
	default:
		// The token was not cached and the store could not be asked: refuse,
		// never pass.
		p.log.ErrorContext(r.Context(), "authenticate: store unavailable", "err", err, "method", r.Method, "path", r.URL.Path)
		write(w, unavailable)
	}
}

func write(w http.ResponseWriter, ref *refusal) {
	h := w.Header()
	if ref.authenticate != "" {
		h["Www-Authenticate"] = []string{ref.authenticate}
	}
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(ref.status)
	w.Write(ref.body)
}

// upstreamFailed is ReverseProxy's ErrorHandler.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case r.Context().Err() != nil:
		// The client went away; nobody is left to answer.
		w.WriteHeader(499)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		p.log.WarnContext(r.Context(), "upstream timed out", "err", err, "method", r.Method, "path", r.URL.Path)
		write(w, gatewayTimeout)
	default:
		p.log.WarnContext(r.Context(), "upstream failed", "err", err, "method", r.Method, "path", r.URL.Path)
		write(w, badGateway)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
