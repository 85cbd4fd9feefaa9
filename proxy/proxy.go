// Package proxy is scimgate's reverse proxy: it authenticates every request
// by bearer token, refuses what it must, and forwards the rest upstream with
// the caller's identity in headers the client cannot forge.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/scimgate/scimgate/tokens"
)

// Authenticator turns a bearer token into an identity; *tokens.Authenticator
// is the real one.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*tokens.Identity, error)
}

// Route requires a permission for requests under a path prefix, for the
// listed methods (all methods when empty; GET covers HEAD).
type Route struct {
	// PathPrefix is a decoded, canonical path. It matches on a segment
	// boundary: "/admin" covers "/admin" and "/admin/x", not
	// "/administrator"; "/admin/" covers what is below "/admin/".
	PathPrefix string
	Methods    []string
	Permission string
}

// route is a Route ready to match.
type route struct {
	prefix     string
	methods    []string // nil: every method
	permission string
}

func (r *route) matchesMethod(method string) bool {
	if r.methods == nil {
		return true
	}
	for _, m := range r.methods {
		if m == method {
			return true
		}
	}
	return false
}

// Options configure a Proxy.
type Options struct {
	Upstream *url.URL
	// Transport reaches the upstream; nil means NewTransport(256, 30s).
	Transport http.RoundTripper
	// HeaderPrefix starts every identity header, e.g. "X-Scimgate-".
	HeaderPrefix string
	// IdentityHeaders are the identity headers forwarded, from
	// IdentityHeaders; nil means DefaultIdentityHeaders. Each costs the upstream a header to
	// parse on every request. Client-sent headers under HeaderPrefix are
	// removed either way.
	IdentityHeaders []string
	// ForwardAuthorization passes the client's Authorization header upstream.
	ForwardAuthorization bool
	// PublicPaths are path prefixes that pass without a token (and without
	// an identity); they match as Route.PathPrefix does.
	PublicPaths []string
	// Routes are checked in order; the first that matches a request decides
	// which permission it needs. A request no route matches needs none.
	Routes []Route
	// RoutesCaseSensitive makes route prefixes match letter for letter. By
	// default they match in any case, so that an upstream that ignores
	// case (Express, ASP.NET, IIS) cannot be reached around a rule with
	// /ADMIN; a rule can then only demand more, never less (see
	// missingPermission).
	RoutesCaseSensitive bool
	// PublicPathsIgnoreCase lets public paths match in any case. Off by
	// default: a public path waives the token, so it matches only exactly.
	PublicPathsIgnoreCase bool
	// AllowPathSemicolons accepts ";" in paths (matrix or path
	// parameters), which are refused by default. Rules then match the path
	// both as it is and with each segment's parameters cut off, as Tomcat
	// and Spring read it: a route applies if either matches, a public path
	// only if both do.
	AllowPathSemicolons bool
	// Methods are the request methods let through, upper case; nil means
	// DefaultMethods. Others get a 405; a method not in upper case a 400.
	Methods []string
	// StripHeaders are deleted from every request, in any letter case and
	// with "_" for "-"; a trailing "*" matches any ending. Nil means
	// DefaultStripHeaders.
	StripHeaders []string
	// Assertion, if set, adds a signed identity assertion to every
	// authenticated request.
	Assertion *AssertionOptions
	// Now is the clock of the assertion's iat and exp and of its cache;
	// nil means time.Now.
	Now func() time.Time
	// Activity receives one record per request; nil logs nothing.
	Activity *ActivityLog
	Logger   *slog.Logger

	// TracerProvider, if set, traces every request: a server span, the
	// authenticator's span and a client span for the upstream call, which
	// gets a traceparent header. Propagator reads and writes that header
	// (W3C trace context when nil).
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// MeterProvider, if set, counts requests by status class and identity kind.
	MeterProvider metric.MeterProvider
}

// Proxy is the authenticating reverse proxy. It is an http.Handler.
type Proxy struct {
	auth    Authenticator
	opts    Options
	headers headerNames
	// setHeaders are the headers admit sets, which Rewrite sets again on
	// the outgoing request, after ReverseProxy's hop-by-hop processing.
	setHeaders []string
	routes     []route
	// routeMethods are the methods the routes name, each once: what a
	// method override could turn a POST into that a rule tells apart.
	routeMethods     []string
	methods          []string
	methodNotAllowed *requestError
	assert           *asserter
	// upstreamPath is the upstream URL's own path, which ReverseProxy puts
	// before the request's.
	upstreamPath string
	rp           *httputil.ReverseProxy
	log          *slog.Logger
	repeats      *repeatLog
	tel          telemetry
	// decided, if set, is told the method and path every decision was
	// made on (tests).
	decided func(method, path string)
}

// New returns a Proxy to opts.Upstream.
func New(auth Authenticator, opts Options) (*Proxy, error) {
	if opts.Upstream == nil || opts.Upstream.Host == "" || (opts.Upstream.Scheme != "http" && opts.Upstream.Scheme != "https") {
		return nil, fmt.Errorf("upstream %v is not an http or https URL", opts.Upstream)
	}
	if opts.HeaderPrefix == "" {
		return nil, errors.New("identity header prefix must not be empty")
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport(256, 30*time.Second)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Proxy{auth: auth, log: opts.Logger, upstreamPath: opts.Upstream.Path}
	p.repeats = newRepeatLog(opts.Logger, repeatInterval)
	var assertionHeader string
	if opts.Assertion != nil {
		origin := (&url.URL{Scheme: opts.Upstream.Scheme, Host: opts.Upstream.Host}).String()
		var err error
		if p.assert, err = newAsserter(opts.Assertion, origin); err != nil {
			return nil, err
		}
		assertionHeader = p.assert.header
	}
	headers, err := newHeaderNames(opts.HeaderPrefix, opts.IdentityHeaders, opts.StripHeaders, assertionHeader)
	if err != nil {
		return nil, err
	}
	p.headers = headers
	p.setHeaders = headers.set()
	if err := p.compileRules(&opts); err != nil {
		return nil, err
	}
	if err := p.instrument(&opts); err != nil {
		return nil, fmt.Errorf("instrument proxy: %w", err)
	}
	p.opts = opts
	upstream := opts.Upstream
	setHeaders := p.setHeaders
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
			// Rewrite runs after ReverseProxy has deleted the headers the
			// Connection header names: set scimgate's again, so that no
			// client can have them removed.
			for _, k := range setHeaders {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
		},
		Transport: opts.Transport,
		// Without a pool ReverseProxy allocates a 32 KiB buffer per response.
		BufferPool:   NewBufferPool(),
		ErrorHandler: p.upstreamFailed,
		ErrorLog:     slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// compileRules checks the methods, public paths and routes, and readies
// them for matching.
func (p *Proxy) compileRules(o *Options) error {
	p.methods = o.Methods
	if p.methods == nil {
		p.methods = DefaultMethods
	}
	for _, m := range p.methods {
		if !isMethodToken(m) {
			return fmt.Errorf("method %q is not an HTTP method in capitals, like GET or POST", m)
		}
	}
	p.methodNotAllowed = newRequestError(http.StatusMethodNotAllowed, "method_not_allowed", "method_not_allowed",
		"this method is not allowed here; allowed: "+strings.Join(p.methods, ", "))
	p.methodNotAllowed.ref.allow = strings.Join(p.methods, ", ")
	for _, pp := range o.PublicPaths {
		if why := checkPrefix(pp, o.AllowPathSemicolons); why != "" {
			return fmt.Errorf("public path %q %s", pp, why)
		}
	}
	for _, r := range o.Routes {
		if why := checkPrefix(r.PathPrefix, o.AllowPathSemicolons); why != "" {
			return fmt.Errorf("route path prefix %q %s", r.PathPrefix, why)
		}
		rt := route{prefix: r.PathPrefix, permission: r.Permission}
		for _, m := range r.Methods {
			if !isMethodToken(m) {
				return fmt.Errorf("route %s: method %q is not an HTTP method in capitals, like GET or POST", r.PathPrefix, m)
			}
			rt.methods = append(rt.methods, m)
			if !slices.Contains(p.routeMethods, m) {
				p.routeMethods = append(p.routeMethods, m)
			}
			if m == http.MethodGet && !slices.Contains(r.Methods, http.MethodHead) {
				rt.methods = append(rt.methods, http.MethodHead) // HEAD is a GET without the body
			}
		}
		p.routes = append(p.routes, rt)
	}
	return nil
}

// NewTransport returns the upstream transport: keep-alive connections pooled
// for idlePerHost concurrent requests, so that connections do not churn
// under load.
func NewTransport(idlePerHost int, responseHeaderTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: nil, // never route upstream calls through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          idlePerHost * 2,
		MaxIdleConnsPerHost:   idlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// NewBufferPool returns the 32 KiB copy buffers ReverseProxy needs per
// response, pooled.
func NewBufferPool() httputil.BufferPool { return bufferPool{} }

type bufferPool struct{}

const bufferSize = 32 * 1024

// buffers holds array pointers, which go in and out of the pool without the
// allocation a *[]byte would cost on every Put.
var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if len(b) == bufferSize {
		buffers.Put((*[bufferSize]byte)(b))
	}
}

// ServeHTTP authenticates the request and proxies it, or refuses it. A
// refused request never reaches the upstream.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := recorder{ResponseWriter: w}
	var span trace.Span
	if p.tel.tracer != nil {
		r, span = p.tel.startSpan(r)
	}
	id, refusal := p.admit(r)
	switch {
	case refusal != nil:
		p.refuse(&rec, r, refusal)
	default:
		// An upgraded connection (a WebSocket) outlives the server's read
		// and write timeouts without help: ReverseProxy hijacks it when the
		// upstream switches protocols, and hijacking clears the deadlines.
		// Lifting them here, before the upstream agreed, would let any
		// client that sends an Upgrade header trickle its body for ever.
		if r.Body == nil || r.Body == http.NoBody {
			p.rp.ServeHTTP(&rec, r)
			break
		}
		// To tell a client's broken or slow body from an upstream failure.
		body := &bodyReader{ReadCloser: r.Body}
		r.Body = body
		rec.body = body
		p.rp.ServeHTTP(&rec, r)
		if bad := body.refusal(); bad != nil {
			refusal = bad // for the trace and the activity log
		}
	}
	if span != nil {
		endSpan(span, id, refusal, &rec)
	}
	p.tel.countRequest(id, rec.status)
	if p.opts.Activity != nil {
		p.opts.Activity.record(r, id, refusal, &rec, start)
	}
}

// admit checks, authenticates and authorizes r, and rewrites it for the
// upstream: its URL to the canonical form the rules are decided on,
// client-sent identity headers out, scimgate's in.
func (p *Proxy) admit(r *http.Request) (*tokens.Identity, error) {
	if err := p.checkMethod(r.Method); err != nil {
		return nil, err
	}
	// Go's server keeps a raw "#" in the path or query (a fragment is never
	// sent), where other servers would cut the target: refused.
	if strings.IndexByte(r.RequestURI, '#') >= 0 {
		return nil, errPathFragment
	}
	if err := canonicalURL(r.URL, p.opts.AllowPathSemicolons); err != nil {
		return nil, err
	}
	if len(r.Header["Authorization"]) > 1 {
		return nil, errDuplicateAuthorization
	}
	if upgradesToH2C(r.Header["Upgrade"]) {
		return nil, errH2CUpgrade
	}
	p.headers.clean(r)
	token, hasAuth := bearerToken(r)
	if !p.opts.ForwardAuthorization {
		delete(r.Header, "Authorization")
	}
	path := r.URL.Path
	if p.decided != nil {
		p.decided(r.Method, path)
	}
	if p.public(path) {
		return nil, nil
	}
	switch {
	case !hasAuth:
		return nil, tokens.ErrNoToken
	case token == "":
		return nil, tokens.ErrMalformedToken // another scheme, or nothing after "Bearer"
	}
	id, err := p.auth.Authenticate(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if perm := p.missingPermission(r.Method, path, id); perm != "" {
		return id, &forbiddenError{permission: perm}
	}
	// Laravel, Symfony and Express's method-override take the method from
	// a _method parameter: the rules apply to that one too.
	if perm := p.overrideMissingPermission(r.URL.RawQuery, "&", r.Method, path, id); perm != "" {
		return id, &forbiddenError{permission: perm}
	}
	// Rails, Laravel, Symfony, Spring and ASP.NET Core also take the
	// method of a POST from a _method field of its form body.
	if r.Method == http.MethodPost && len(p.routeMethods) > 0 {
		perm, err := p.formOverrideMissingPermission(r, path, id)
		if err != nil {
			return id, err
		}
		if perm != "" {
			return id, &forbiddenError{permission: perm}
		}
	}
	p.setIdentity(r.Header, id)
	if p.assert != nil {
		var upstreamPath string
		if p.assert.bind {
			upstreamPath = joinPath(p.upstreamPath, path)
		}
		v, err := p.assert.value(id, p.opts.Now(), r.Method, upstreamPath)
		if err != nil {
			return id, err
		}
		r.Header[p.headers.assertion] = v
	}
	return id, nil
}

// checkMethod lets through the configured methods only.
func (p *Proxy) checkMethod(m string) *requestError {
	for _, allowed := range p.methods {
		if m == allowed {
			return nil
		}
	}
	switch {
	case !isMethodToken(m):
		return errMethodNonCanonical
	case !registeredMethods[m]:
		return errMethodUnknown
	}
	return p.methodNotAllowed
}

// registeredMethods are the methods of HTTP (RFC 9110, PATCH) and WebDAV.
// One of them that is not allowed gets a 405; any other method is unknown
// (a 400), since servers differ on what they make of it.
var registeredMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "CONNECT": true, "OPTIONS": true,
	"TRACE": true, "PATCH": true, "QUERY": true, "PROPFIND": true, "PROPPATCH": true, "MKCOL": true, "COPY": true,
	"MOVE": true, "LOCK": true, "UNLOCK": true, "REPORT": true, "SEARCH": true, "ACL": true, "MKCALENDAR": true,
}

// public reports whether path passes without a token. With path
// parameters allowed, it must be public read both ways.
func (p *Proxy) public(path string) bool {
	if !p.publicPrefix(path) {
		return false
	}
	if p.opts.AllowPathSemicolons && strings.IndexByte(path, ';') >= 0 {
		return p.publicPrefix(withoutParameters(path))
	}
	return true
}

func (p *Proxy) publicPrefix(path string) bool {
	for _, prefix := range p.opts.PublicPaths {
		if hasPathPrefix(path, prefix, p.opts.PublicPathsIgnoreCase) {
			return true
		}
	}
	return false
}

// missingPermission returns a permission that a route rule requires of the
// request and id lacks, or "". The rules are applied to every reading of
// the path an upstream might take: letter for letter and, unless
// RoutesCaseSensitive, in any case; with path parameters allowed, also
// without them; and without the dots and spaces that end a segment, which
// Windows (IIS, static files on NTFS) drops, so /admin. is /admin
// there. The first matching rule of each reading decides, and each
// reading's permission is required, so another reading can only add to
// what the exact one demands.
func (p *Proxy) missingPermission(method, path string, id *tokens.Identity) string {
	if perm := p.missingPermissionOf(method, path, id); perm != "" {
		return perm
	}
	if p.opts.AllowPathSemicolons && strings.IndexByte(path, ';') >= 0 {
		path = withoutParameters(path)
		if perm := p.missingPermissionOf(method, path, id); perm != "" {
			return perm
		}
	}
	if trimmed, ok := withoutTrailingDots(path); ok {
		return p.missingPermissionOf(method, trimmed, id)
	}
	return ""
}

// missingPermissionOf is missingPermission for one reading of the path.
func (p *Proxy) missingPermissionOf(method, path string, id *tokens.Identity) string {
	exact, folded := p.firstRules(method, path)
	for _, perm := range [2]string{exact, folded} {
		if perm != "" && !id.Has(perm) {
			return perm
		}
	}
	return ""
}

// firstRules returns the permissions of the first route that matches
// letter for letter, and of the first that matches in any case ("" when
// RoutesCaseSensitive).
func (p *Proxy) firstRules(method, path string) (exact, folded string) {
	fold := !p.opts.RoutesCaseSensitive
	foundFolded := !fold
	for i := range p.routes {
		rt := &p.routes[i]
		if !rt.matchesMethod(method) {
			continue
		}
		if !foundFolded && hasPathPrefixAnyCase(path, rt.prefix) {
			folded, foundFolded = rt.permission, true
		}
		if hasPathPrefix(path, rt.prefix, false) {
			return rt.permission, folded
		}
	}
	return "", folded
}

// overrideMissingPermission applies the route rules to every method a
// _method field of form names, as any framework may read it: Express
// takes the first of several, PHP the last, so each counts. form is
// application/x-www-form-urlencoded, its fields cut at any byte of seps. It
// returns a permission id lacks, or "".
func (p *Proxy) overrideMissingPermission(form, seps, method, path string, id *tokens.Identity) string {
	for rest := form; rest != ""; {
		pair := rest
		if i := strings.IndexAny(rest, seps); i >= 0 {
			pair, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		k, v, _ := strings.Cut(pair, "=")
		if !isMethodOverrideKey(unescapeForm(k)) {
			continue
		}
		m := strings.ToUpper(unescapeForm(v))
		if m == "" || m == method {
			continue
		}
		if perm := p.missingPermission(m, path, id); perm != "" {
			return perm
		}
	}
	return ""
}

// unescapeForm decodes a form field's name or value as PHP's urldecode
// does: "+" is a space, and a "%" not followed by two hexadecimal digits is
// kept as it is (Go's decoder gives up on the field, PHP does not: the name
// _method%00%zz is _method there).
func unescapeForm(s string) string {
	if strings.IndexAny(s, "%+") < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// maxOverrideForm is how much of a url-encoded POST body is read for its
// _method fields; a longer one gets the rules of every method.
const maxOverrideForm = 64 << 10

// formOverrideMissingPermission applies the route rules to the methods the
// _method fields of a POST's form body name, and returns a permission id
// lacks, or "". A url-encoded body (or one without a Content-Type, which
// Rack reads as one) of up to maxOverrideForm bytes is read, and put back
// for the upstream; its fields are cut at "&" and ";" (Rack 2). A body
// that cannot be read like every framework would (multipart, whose
// parsers disagree, or a longer one) gets the rules of every method a
// route names. The error is a body that could not be read.
func (p *Proxy) formOverrideMissingPermission(r *http.Request, path string, id *tokens.Identity) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return "", nil
	}
	switch formKind(r.Header["Content-Type"]) {
	case notForm:
		return "", nil
	case multipartForm:
		return p.anyMethodMissingPermission(path, id), nil
	}
	size := int64(maxOverrideForm + 1)
	if 0 <= r.ContentLength && r.ContentLength < size {
		size = r.ContentLength
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(r.Body, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", bodyRefusal(err)
	}
	buf = buf[:n]
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if n > maxOverrideForm {
		return p.anyMethodMissingPermission(path, id), nil
	}
	return p.overrideMissingPermission(string(buf), "&;", r.Method, path, id), nil
}

// anyMethodMissingPermission applies the route rules of every method a
// route names, for a request whose method override cannot be read.
func (p *Proxy) anyMethodMissingPermission(path string, id *tokens.Identity) string {
	for _, m := range p.routeMethods {
		if perm := p.missingPermission(m, path, id); perm != "" {
			return perm
		}
	}
	return ""
}

const (
	notForm = iota
	urlEncodedForm
	multipartForm
)

// formKind tells how frameworks read a body with these Content-Type
// headers: as a url-encoded form (that type, or none: Rack reads a POST
// without one as a form), as a multipart one (Rack parses multipart/mixed
// and /related as well as /form-data), or not as a form. The media type is
// cut at ";", "," or a space and compared in any case, as PHP and Rack do;
// of several headers, the one read most widely counts.
func formKind(contentTypes []string) int {
	if len(contentTypes) == 0 {
		return urlEncodedForm
	}
	kind := notForm
	for _, v := range contentTypes {
		v = strings.TrimLeft(v, " \t")
		if i := strings.IndexAny(v, ";, \t"); i >= 0 {
			v = v[:i]
		}
		switch v = strings.ToLower(v); {
		case strings.HasPrefix(v, "multipart/"):
			kind = max(kind, multipartForm)
		case v == "" || v == "application/x-www-form-urlencoded":
			kind = max(kind, urlEncodedForm)
		}
	}
	return kind
}

// isMethodOverrideKey reports whether a decoded query parameter name is
// _method as some framework reads it: PHP (Laravel, Symfony) cuts a name at
// a NUL, drops its leading spaces and reads "." as "_", so ".method",
// " _method" and "_method\x00x" are _method there.
func isMethodOverrideKey(key string) bool {
	const name = "_method"
	if i := strings.IndexByte(key, 0); i >= 0 {
		key = key[:i]
	}
	key = strings.TrimLeft(key, " ")
	if len(key) != len(name) {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '.' {
			c = '_'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// upgradesToH2C reports whether a request asks to switch to HTTP/2 over
// cleartext: an upstream that agrees would take every later request on
// the connection straight from the client, past every rule.
func upgradesToH2C(upgrade []string) bool {
	for _, v := range upgrade {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(token), "h2c") {
				return true
			}
		}
	}
	return false
}

// joinPath is the path ReverseProxy sends for a request path under the
// upstream URL's path (SetURL's rule).
func joinPath(base, path string) string {
	switch {
	case base == "":
		return path
	case strings.HasSuffix(base, "/"):
		return base + path[1:]
	}
	return base + path
}

// bearerToken returns the token of an "Authorization: Bearer" header. The
// scheme is case-insensitive (RFC 7235).
func bearerToken(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if v == "" {
		return "", false
	}
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", true // present but not a bearer token: malformed
	}
	return strings.TrimSpace(v[len(scheme):]), true
}

func (p *Proxy) setIdentity(h http.Header, id *tokens.Identity) {
	n := &p.headers
	// One backing array for every value: one allocation instead of nine.
	v := [...]string{string(id.Kind), id.OwnerID, id.OrgID, id.TokenID, "", "", "", "", ""}
	vals := v[:]
	set := func(i int, key string) {
		if key != "" {
			h[key] = vals[i : i+1 : i+1]
		}
	}
	set(0, n.kind)
	set(1, n.id)
	set(2, n.orgID)
	set(3, n.tokenID)
	if n.name != "" {
		vals[4] = escapeValue(id.OwnerName)
		set(4, n.name)
	}
	if n.org != "" {
		vals[5] = escapeValue(id.OrgName)
		set(5, n.org)
	}
	if n.permissions != "" {
		vals[6] = joinEscaped(id.Permissions)
		set(6, n.permissions)
	}
	// Groups and sites are a person's: a service token never has them.
	if n.groups != "" && id.Kind == tokens.KindUser {
		vals[7] = joinEscaped(id.Groups)
		set(7, n.groups)
	}
	if n.sites != "" && id.Kind == tokens.KindUser {
		vals[8] = joinEscaped(id.Sites)
		set(8, n.sites)
	}
}
