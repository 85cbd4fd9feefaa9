package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/scimgate/scimgate/tokens"
)

// problem is an RFC 9457 problem details object. Type is
// urn:scimgate:problem:<Reason>; Reason repeats it as a plain word that
// clients can switch on.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	Reason   string `json:"reason"`
	// TokenError is why the bearer token was refused (tokens.AuthError's
	// reason: missing, malformed, unknown, revoked, inactive, …), on 401s.
	TokenError string `json:"token_error,omitempty"`
	// Allow lists the methods of the path, on 405s.
	Allow []string `json:"allow,omitempty"`

	retryAfter int // seconds, for 429 and 503
}

// The stable reasons, each with its status and title. README.md lists them.
var reasons = map[string]struct {
	status int
	title  string
}{
	"invalid_request":        {http.StatusBadRequest, "The request is not valid"},
	"unauthenticated":        {http.StatusUnauthorized, "Authentication required"},
	"forbidden":              {http.StatusForbidden, "Not allowed"},
	"limit_reached":          {http.StatusForbidden, "Limit reached"},
	"not_found":              {http.StatusNotFound, "Not found"},
	"method_not_allowed":     {http.StatusMethodNotAllowed, "Method not allowed"},
	"wrong_state":            {http.StatusConflict, "The token is in the wrong state"},
	"conflict":               {http.StatusConflict, "Conflict"},
	"body_too_large":         {http.StatusRequestEntityTooLarge, "Request body too large"},
	"unsupported_media_type": {http.StatusUnsupportedMediaType, "Unsupported media type"},
	"rate_limited":           {http.StatusTooManyRequests, "Too many requests"},
	"internal":               {http.StatusInternalServerError, "Internal error"},
	"unavailable":            {http.StatusServiceUnavailable, "Service unavailable"},
}

const problemTypePrefix = "urn:scimgate:problem:"

func newProblem(reason, format string, args ...any) *problem {
	r, ok := reasons[reason]
	if !ok {
		panic("admin: unknown problem reason " + reason)
	}
	return &problem{Type: problemTypePrefix + reason, Title: r.title, Status: r.status,
		Detail: fmt.Sprintf(format, args...), Reason: reason}
}

func (p *problem) Error() string { return p.Detail }

// The domain's error codes and the reasons they are answered with.
var codeReasons = map[tokens.Code]string{
	tokens.Invalid:         "invalid_request",
	tokens.NotFound:        "not_found",
	tokens.Conflict:        "conflict",
	tokens.LimitReached:    "limit_reached",
	tokens.WrongState:      "wrong_state",
	tokens.VersionChanged:  "conflict",
	tokens.Forbidden:       "forbidden",
	tokens.Unauthenticated: "unauthenticated",
}

// problemFor turns any error met while serving a request into the problem
// to answer with. It is the one place where statuses are chosen; internal
// errors are logged here and answered without their text.
func (a *api) problemFor(r *http.Request, err error) *problem {
	var (
		p        *problem
		domain   *tokens.Error
		auth     *tokens.AuthError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &p):
	case errors.As(err, &auth):
		p = newProblem("unauthenticated", "%s", auth.Message)
		p.TokenError = auth.Reason
	case errors.As(err, &tooLarge):
		p = newProblem("body_too_large", "the request body is larger than %d bytes", tooLarge.Limit)
	case errors.As(err, &domain) && codeReasons[domain.Code] != "":
		p = newProblem(codeReasons[domain.Code], "%s", domain.Message)
	case errors.Is(err, tokens.ErrUnavailable):
		a.log.Error("admin API: store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		p = newProblem("unavailable", "the token store cannot be reached: try again shortly")
		p.retryAfter = 5
	default:
		a.log.Error("admin API: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		p = newProblem("internal", "an internal error occurred; it is logged on the server")
	}
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	return p
}

// fail answers err as a problem.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := a.problemFor(r, err)
	h := w.Header()
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="scimgate", error="invalid_token"`)
	}
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if len(p.Allow) > 0 {
		h.Set("Allow", strings.Join(p.Allow, ", "))
	}
	writeJSON(w, "application/problem+json", p.Status, p)
}

// writeJSON writes v as the response body.
func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // our own types: cannot happen
		status, body = http.StatusInternalServerError, []byte(`{"type":"urn:scimgate:problem:internal","title":"Internal error","status":500,"detail":"the response could not be encoded","reason":"internal"}`)
		contentType = "application/problem+json"
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
