package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"

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
	allow        string // the Allow header of a 405
	close        bool   // end the connection after the response
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
	noAssertion = &refusal{status: http.StatusServiceUnavailable,
		body: jsonBody("unavailable", "assertion_unavailable", "scimgate cannot sign the identity assertion right now: try again shortly")}
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
	case *requestError:
		if e == errMalformedBody || e == errBodyTimeout {
			// The client's fault, not the upstream's: logged as such, once
			// per interval when it repeats.
			p.repeats.log(r.Context(), slog.LevelInfo, "client error: request body", e.reason,
				slog.String("reason", e.reason), slog.String("method", r.Method), slog.String("path", r.URL.Path))
		}
		write(w, e.ref)
	case *assertionUnavailable:
		p.repeats.log(r.Context(), slog.LevelError, "sign identity assertion", e.Error(), slog.String("err", e.Error()))
		write(w, noAssertion)
	default:
		// The token was not cached and the store could not be asked: refuse,
		// never pass. In an outage every request ends here: one line per
		// interval says how many.
		p.repeats.log(r.Context(), slog.LevelError, "authenticate: store unavailable", err.Error(), slog.String("err", err.Error()))
		write(w, unavailable)
	}
}

func write(w http.ResponseWriter, ref *refusal) {
	h := w.Header()
	if ref.authenticate != "" {
		h["Www-Authenticate"] = []string{ref.authenticate}
	}
	if ref.allow != "" {
		h["Allow"] = []string{ref.allow}
	}
	if ref.close {
		h["Connection"] = []string{"close"}
	}
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(ref.status)
	w.Write(ref.body)
}

// upstreamFailed is ReverseProxy's ErrorHandler. It gets ServeHTTP's
// recorder and the outgoing request.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if rec, ok := w.(*recorder); ok && rec.body != nil {
		// Reading the client's body failed first: the client's fault.
		if refusal := rec.body.refusal(); refusal != nil {
			p.refuse(w, r, refusal)
			return
		}
	}
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

// bodyReader is a request body that remembers why reading it failed.
type bodyReader struct {
	io.ReadCloser
	err atomic.Pointer[error]
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// refusal is how the proxy answers a body that could not be read: a 408
// when the server's read timeout cut it, a 400 otherwise; nil when it was
// read.
func (b *bodyReader) refusal() *requestError {
	if err := b.err.Load(); err != nil {
		return bodyRefusal(*err)
	}
	return nil
}

// bodyRefusal is how the proxy answers a body that could not be read
// because of err: a 408 when the server's read timeout cut it, a 400
// otherwise.
func bodyRefusal(err error) *requestError {
	if isTimeout(err) {
		return errBodyTimeout
	}
	return errMalformedBody
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
