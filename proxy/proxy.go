// Package proxy is scimgate's reverse proxy: it authenticates every request
// by bearer token, refuses what it must, and forwards the rest upstream with
// the caller's identity in headers the client cannot forge.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
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
// listed methods (all methods when empty).
type Route struct {
	PathPrefix string
	Methods    []string
	Permission string
}

func (r *Route) matches(req *http.Request) bool {
	if !strings.HasPrefix(req.URL.Path, r.PathPrefix) {
		return false
	}
	if len(r.Methods) == 0 {
		return true
	}
	for _, m := range r.Methods {
		if m == req.Method {
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
	// an identity).
	PublicPaths []string
	// Routes are checked in order; the first that matches a request decides
	// which permission it needs. A request no route matches needs none.
	Routes []Route
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
	rp      *httputil.ReverseProxy
	log     *slog.Logger
	tel     telemetry
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
	headers, err := newHeaderNames(opts.HeaderPrefix, opts.IdentityHeaders)
	if err != nil {
		return nil, err
	}
	p := &Proxy{auth: auth, headers: headers, log: opts.Logger}
	if err := p.instrument(&opts); err != nil {
		return nil, fmt.Errorf("instrument proxy: %w", err)
	}
	p.opts = opts
	upstream := opts.Upstream
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
		},
		Transport: opts.Transport,
		// Without a pool ReverseProxy allocates a 32 KiB buffer per response.
		BufferPool:   NewBufferPool(),
		ErrorHandler: p.upstreamFailed,
		ErrorLog:     slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return p, nil
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
	case r.Header.Get("Upgrade") != "":
		// A WebSocket outlives the server's read and write timeouts, which
		// are meant for one request: lift them for the upgraded connection.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
		fallthrough
	default:
		p.rp.ServeHTTP(&rec, r)
	}
	if span != nil {
		endSpan(span, id, refusal, &rec)
	}
	p.tel.countRequest(id, rec.status)
	if p.opts.Activity != nil {
		p.opts.Activity.record(r, id, refusal, &rec, start)
	}
}

// admit authenticates and authorizes r and rewrites its headers for the
// upstream: client-sent identity headers out, scimgate's in.
func (p *Proxy) admit(r *http.Request) (*tokens.Identity, error) {
	p.headers.stripSpoofed(r.Header)
	token, hasAuth := bearerToken(r)
	if !p.opts.ForwardAuthorization {
		r.Header.Del("Authorization")
	}
	if p.public(r.URL.Path) {
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
	for i := range p.opts.Routes {
		rt := &p.opts.Routes[i]
		if rt.matches(r) {
			if !id.Has(rt.Permission) {
				return id, &forbiddenError{permission: rt.Permission}
			}
			break // the first matching rule decides
		}
	}
	p.setIdentity(r.Header, id)
	return id, nil
}

func (p *Proxy) public(path string) bool {
	for _, prefix := range p.opts.PublicPaths {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
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
