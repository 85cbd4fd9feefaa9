package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TLS on the proxy and management listeners: off (a sidecar behind a
// TLS-terminating mesh), certificate files reloaded when they change, or
// certificates obtained and renewed over ACME by certmagic.

const (
	tlsOff   = "off"
	tlsFiles = "files"
	tlsACME  = "acme"
)

// certFilesCheckInterval is how often, at most, the certificate files of
// mode "files" are checked for a change.
const certFilesCheckInterval = time.Second

// ---- Configuration checks ----

// listenerTLS pairs a listener's name with its TLS configuration.
type listenerTLS struct {
	name   string // "proxy" or "management": the option prefix and the listener name
	listen string
	tls    *TLSConfig
}

func (c *Config) listenersTLS() []listenerTLS {
	listeners := []listenerTLS{
		{"proxy", c.Proxy.Listen, &c.Proxy.TLS},
		{"management", c.Management.Listen, &c.Management.TLS},
	}
	if c.Admin.Listen != "" { // else the admin API is on the management listener
		listeners = append(listeners, listenerTLS{"admin", c.Admin.Listen, &c.Admin.TLS})
	}
	return listeners
}

// tlsFor is the TLS configuration of the listener with this name, nil for
// a listener without one.
func (c *Config) tlsFor(name string) *TLSConfig {
	for _, l := range c.listenersTLS() {
		if l.name == name {
			return l.tls
		}
	}
	return nil
}

// validateTLS checks the TLS options of both listeners without touching
// the file system (validateTLSFiles does, for serve only).
func (c *Config) validateTLS() error {
	redirects := map[string]string{} // address → the option that sets it
	for _, l := range c.listenersTLS() {
		opt := l.name + ".tls"
		if err := l.tls.validate(opt); err != nil {
			return err
		}
		if l.tls.Mode == tlsACME && strings.TrimSpace(c.DataDir) == "" {
			return fmt.Errorf("data_dir: must not be empty with %s.mode acme (certificates are stored under <data_dir>/certmagic)", opt)
		}
		addr := l.tls.redirectListen()
		if addr == "" {
			continue
		}
		opt += ".acme.http_redirect_listen"
		if other, ok := redirects[addr]; ok && !strings.HasSuffix(addr, ":0") {
			return fmt.Errorf("%s: %q is also %s; give each listener its own port, or set one to \"\"", opt, addr, other)
		}
		for _, o := range []struct{ name, addr string }{{"proxy.listen", c.Proxy.Listen}, {"management.listen", c.Management.Listen}} {
			if addr == o.addr && !strings.HasSuffix(addr, ":0") {
				return fmt.Errorf("%s: %q is also %s; the HTTP redirect needs a port of its own", opt, addr, o.name)
			}
		}
		redirects[addr] = opt
	}
	return nil
}

func (t *TLSConfig) validate(opt string) error {
	switch t.Mode {
	case tlsOff, tlsFiles, tlsACME:
	default:
		return fmt.Errorf("%s.mode: %q is not one of off, files, acme", opt, t.Mode)
	}
	if _, err := tlsVersion(t.MinVersion); err != nil {
		return fmt.Errorf("%s.min_version: %w", opt, err)
	}
	if t.HSTS.MaxAge < 0 {
		return fmt.Errorf("%s.hsts.max_age: %s is negative", opt, t.HSTS.MaxAge)
	}
	if t.HSTS.IncludeSubdomains && t.HSTS.MaxAge == 0 {
		return fmt.Errorf("%s.hsts.include_subdomains: needs %s.hsts.max_age above zero, such as 8760h", opt, opt)
	}
	if t.Mode != tlsFiles && (t.CertFile != "" || t.KeyFile != "") {
		return fmt.Errorf("%s.cert_file, key_file: only used with mode files, and mode is %q", opt, t.Mode)
	}
	if t.Mode != tlsACME && (len(t.ACME.Domains) > 0 || t.ACME.OnDemand) {
		return fmt.Errorf("%s.acme: only used with mode acme, and mode is %q", opt, t.Mode)
	}
	switch t.Mode {
	case tlsFiles:
		if t.CertFile == "" {
			return fmt.Errorf("%s.cert_file: required with mode files: the PEM certificate chain, leaf first", opt)
		}
		if t.KeyFile == "" {
			return fmt.Errorf("%s.key_file: required with mode files: the PEM private key of cert_file", opt)
		}
	case tlsACME:
		return t.ACME.validate(opt + ".acme")
	}
	return nil
}

func (a *ACMEConfig) validate(opt string) error {
	u, err := url.Parse(a.CA)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%s.ca: %q is not the https URL of an ACME directory, like https://acme-v02.api.letsencrypt.org/directory", opt, a.CA)
	}
	if len(a.Domains) == 0 && !a.OnDemand {
		return fmt.Errorf("%s.domains: required with mode acme: the DNS names clients connect to, like [scim.example.com] (or set on_demand with on_demand_allow)", opt)
	}
	for i, d := range a.Domains {
		if err := checkDomain(d, false); err != nil {
			return fmt.Errorf("%s.domains[%d]: %w", opt, i, err)
		}
		if isPublicCA(u.Host) && (!strings.Contains(d, ".") || !certmagic.SubjectQualifiesForPublicCert(d)) {
			return fmt.Errorf("%s.domains[%d]: %q is an internal name, which a public CA such as %s does not certify; use a public DNS name, or a private CA (ca and ca_root)", opt, i, d, u.Host)
		}
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			return fmt.Errorf("%s.email: %q is not an email address, like ops@example.com", opt, a.Email)
		}
	} else if strings.Contains(u.Host, "zerossl.com") {
		return fmt.Errorf("%s.email: required by the CA %s: ZeroSSL ties its ACME accounts to an email address", opt, a.CA)
	}
	if a.DisableHTTPChallenge && a.DisableTLSALPNChallenge {
		return fmt.Errorf("%s: disable_http_challenge and disable_tls_alpn_challenge are both true: the CA needs one of them to check that you hold the domains", opt)
	}
	if !a.DisableHTTPChallenge && a.HTTPRedirectListen != "" {
		if err := checkListen(opt+".http_redirect_listen", a.HTTPRedirectListen); err != nil {
			return err
		}
	}
	if a.DisableTLSALPNChallenge && a.HTTPRedirectListen == "" {
		return fmt.Errorf("%s.http_redirect_listen: empty with disable_tls_alpn_challenge: the HTTP-01 challenge needs this listener (reached on port 80 by the CA)", opt)
	}
	if a.OnDemand && len(a.OnDemandAllow) == 0 {
		return fmt.Errorf("%s.on_demand_allow: required with on_demand: the host names certificates may be obtained for at handshake time, like [scim.example.com, \"*.tenants.example.com\"]; without it any client could make scimgate ask the CA for any name", opt)
	}
	if !a.OnDemand && len(a.OnDemandAllow) > 0 {
		return fmt.Errorf("%s.on_demand_allow: only used with on_demand: true", opt)
	}
	for i, d := range a.OnDemandAllow {
		if err := checkDomain(d, true); err != nil {
			return fmt.Errorf("%s.on_demand_allow[%d]: %w", opt, i, err)
		}
	}
	if a.RenewInterval <= 0 {
		return fmt.Errorf("%s.renew_interval: must be a duration above zero, such as 10m", opt)
	}
	return nil
}

// isPublicCA reports whether the ACME directory at host is a public CA's,
// which certifies only public DNS names.
func isPublicCA(host string) bool {
	for _, ca := range []string{"letsencrypt.org", "zerossl.com", "pki.goog", "buypass.com", "ssl.com"} {
		if host == ca || strings.HasSuffix(host, "."+ca) {
			return true
		}
	}
	return false
}

// redirectListen is the address of the HTTP listener the configuration
// asks for, or "" for none.
func (t *TLSConfig) redirectListen() string {
	if t.Mode != tlsACME || t.ACME.DisableHTTPChallenge {
		return ""
	}
	return t.ACME.HTTPRedirectListen
}

// checkDomain accepts a DNS name, and with wildcard a pattern
// "*.example.com" that matches one more label.
func checkDomain(d string, wildcard bool) error {
	name := d
	if rest, ok := strings.CutPrefix(d, "*."); ok {
		if !wildcard {
			return fmt.Errorf("%q: wildcard certificates need the DNS-01 challenge, which scimgate does not use; list each name, or use on_demand with on_demand_allow: [%q]", d, d)
		}
		name = rest
	}
	switch {
	case strings.Contains(d, "://") || strings.ContainsAny(d, "/:"):
		return fmt.Errorf("%q is not a DNS name: write the host alone, like scim.example.com", d)
	case net.ParseIP(name) != nil:
		return fmt.Errorf("%q is an IP address: certificates here are for DNS names", d)
	case len(name) == 0 || len(name) > 253:
		return fmt.Errorf("%q is not a DNS name", d)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a DNS name", d)
		}
		for _, r := range label {
			if !(r == '-' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
				return fmt.Errorf("%q is not a DNS name (letters, digits, dashes and dots; IDNs in punycode, xn--…)", d)
			}
		}
	}
	return nil
}

func tlsVersion(v string) (uint16, error) {
	switch v {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.0", "1.1":
		return 0, fmt.Errorf("%q: TLS 1.2 is the lowest version scimgate accepts; write \"1.2\" or \"1.3\"", v)
	}
	return 0, fmt.Errorf("%q is not a TLS version: write \"1.2\" or \"1.3\"", v)
}

// validateTLSFiles reads the files the TLS options name: a certificate and
// key that do not make a pair, or a CA root that is no PEM certificate,
// are found by --check-config rather than at the first handshake.
func (c *Config) validateTLSFiles() error {
	for _, l := range c.listenersTLS() {
		opt := l.name + ".tls"
		switch l.tls.Mode {
		case tlsFiles:
			if _, err := loadKeyPair(l.tls.CertFile, l.tls.KeyFile); err != nil {
				return fmt.Errorf("%s.%w", opt, err)
			}
		case tlsACME:
			if l.tls.ACME.CARoot != "" {
				if _, err := loadRoots(l.tls.ACME.CARoot); err != nil {
					return fmt.Errorf("%s.acme.ca_root: %w", opt, err)
				}
			}
		}
	}
	return nil
}

// loadKeyPair reads a certificate chain and its key. Its errors start with
// the option at fault ("cert_file: …").
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file: %w", err)
	}
	if block, _ := pem.Decode(certPEM); block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("cert_file: %s does not start with a PEM certificate (-----BEGIN CERTIFICATE-----)", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cert_file, key_file: %s and %s are not a certificate and its key: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

func loadRoots(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// ---- Serving ----

// secureListeners puts TLS on the bound listeners whose configuration asks
// for it: it wraps each server's listener and sets the server's TLS and
// HSTS. For ACME's HTTP-01 challenge it binds and adds an HTTP server that
// answers the challenge and redirects everything else to HTTPS, then it
// starts obtaining and renewing certificates in the background. stop ends
// the certificate management; call it once the servers have shut down. On
// an error, the servers returned include every listener bound, to close.
func secureListeners(ctx context.Context, cfg *Config, logger *slog.Logger, servers []namedServer) (_ []namedServer, stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	var start []func()
	var redirects []namedServer
	for i := range servers {
		s := &servers[i]
		t := cfg.tlsFor(s.name)
		if t == nil {
			continue
		}
		if t.HSTS.MaxAge > 0 {
			s.srv.Handler = withHSTS(s.srv.Handler, hstsValue(t.HSTS))
		}
		if t.Mode == tlsOff {
			continue
		}
		log := logger.With("listener", s.name)
		minVersion, _ := tlsVersion(t.MinVersion) // validated
		var tc *tls.Config
		switch t.Mode {
		case tlsFiles:
			files, err := newCertFiles(t.CertFile, t.KeyFile, log)
			if err != nil {
				return append(servers, redirects...), stop, fmt.Errorf("%s.tls.%w", s.name, err)
			}
			tc = &tls.Config{GetCertificate: files.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
		case tlsACME:
			var redirect *namedServer
			if addr := t.redirectListen(); addr != "" {
				name := s.name + " http redirect"
				ln, err := listen(ctx, logger, name, addr)
				if err != nil {
					return append(servers, redirects...), stop, explainListenError(err, s.name+".tls.acme.http_redirect_listen")
				}
				redirects = append(redirects, namedServer{name: name, addr: addr, ln: ln})
				redirect = &redirects[len(redirects)-1]
			}
			m, err := newACMEManager(t.ACME, cfg.DataDir, s.ln.Addr(), redirect, log)
			if err != nil {
				return append(servers, redirects...), stop, fmt.Errorf("%s.tls.acme: %w", s.name, err)
			}
			stops = append(stops, m.stop)
			start = append(start, m.start)
			tc = m.magic.TLSConfig() // answers the TLS-ALPN-01 challenge too
			tc.NextProtos = append([]string{"h2", "http/1.1"}, tc.NextProtos...)
			if redirect != nil {
				redirect.srv = redirectServer(m.httpHandler(s.ln.Addr()), logger)
			}
		}
		tc.MinVersion = minVersion
		s.ln = tls.NewListener(s.ln, tc)
		s.srv.TLSConfig = tc
	}
	for _, f := range start {
		f()
	}
	return append(servers, redirects...), stop, nil
}

// explainListenError adds what to do to the usual reasons a listener
// cannot be bound.
func explainListenError(err error, opt string) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w: another process listens there; stop it, or set %s to another address (\"\" turns the HTTP-01 challenge off)", err, opt)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: ports below 1024 need root or CAP_NET_BIND_SERVICE; or set %s to a higher port that port 80 is forwarded to", err, opt)
	}
	return err
}

func hstsValue(h HSTSConfig) string {
	v := fmt.Sprintf("max-age=%d", int64(h.MaxAge/time.Second))
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	return v
}

// withHSTS tells browsers to use only HTTPS with this host for a while.
func withHSTS(h http.Handler, value string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", value)
		h.ServeHTTP(w, r)
	})
}

// redirectServer is the plain HTTP listener of ACME's HTTP-01 challenge.
func redirectServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// redirectToHTTPS sends requests for a known host to the same URL over
// HTTPS on the port of httpsAddr, and refuses other hosts, so that the
// listener is no open redirect.
func redirectToHTTPS(httpsAddr net.Addr, known func(host string) bool) http.Handler {
	_, port, _ := net.SplitHostPort(httpsAddr.String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !known(host) {
			http.Error(w, "scimgate: unknown host: this listener only redirects its own domains to HTTPS", http.StatusBadRequest)
			return
		}
		if port != "443" {
			host = net.JoinHostPort(host, port)
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// matchHost reports whether name is one of patterns: a DNS name, or
// "*.example.com" for any single label below example.com.
func matchHost(patterns []string, name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, p := range patterns {
		p = strings.ToLower(p)
		if p == name {
			return true
		}
		if parent, ok := strings.CutPrefix(p, "*."); ok {
			if label, rest, ok := strings.Cut(name, "."); ok && label != "" && rest == parent {
				return true
			}
		}
	}
	return false
}

// ---- Certificate files ----

// certFiles serves the certificate of mode "files" and reloads it when the
// files change on disk: a handshake at most every certFilesCheckInterval
// compares their modification times and sizes with those loaded. A pair that
// does not load (a half-written renewal, a key that does not match) is
// logged once, and the previous certificate is served until the files are
// fixed.
type certFiles struct {
	certFile, keyFile string
	logger            *slog.Logger

	cert      atomic.Pointer[tls.Certificate]
	lastCheck atomic.Int64 // UnixNano

	mu             sync.Mutex // held while checking; guards the fields below
	loaded, failed filesStamp
	failedErr      string // what the last failure logged
}

type filesStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func newCertFiles(certFile, keyFile string, logger *slog.Logger) (*certFiles, error) {
	f := &certFiles{certFile: certFile, keyFile: keyFile, logger: logger}
	stamp, err := f.stamp()
	if err != nil {
		return nil, err
	}
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	f.cert.Store(cert)
	f.loaded = stamp
	f.lastCheck.Store(time.Now().UnixNano())
	logger.Info("serving certificate from files", certAttrs(cert, certFile)...)
	return f, nil
}

func (f *certFiles) stamp() (filesStamp, error) {
	c, err := os.Stat(f.certFile)
	if err != nil {
		return filesStamp{}, fmt.Errorf("cert_file: %w", err)
	}
	k, err := os.Stat(f.keyFile)
	if err != nil {
		return filesStamp{}, fmt.Errorf("key_file: %w", err)
	}
	return filesStamp{c.ModTime(), k.ModTime(), c.Size(), k.Size()}, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (f *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now().UnixNano()
	if now-f.lastCheck.Load() >= int64(certFilesCheckInterval) && f.mu.TryLock() {
		f.lastCheck.Store(now)
		f.reloadIfChanged()
		f.mu.Unlock()
	}
	return f.cert.Load(), nil
}

// reloadIfChanged loads the files if they changed since the last load or
// failure. f.mu must be held.
func (f *certFiles) reloadIfChanged() {
	stamp, err := f.stamp()
	if err == nil && (stamp == f.loaded || stamp == f.failed) {
		return
	}
	var cert *tls.Certificate
	if err == nil {
		cert, err = loadKeyPair(f.certFile, f.keyFile)
	}
	if err != nil {
		if stamp != f.failed || err.Error() != f.failedErr {
			f.logger.Error("certificate files changed but do not load; still serving the previous certificate", "err", err)
		}
		f.failed, f.failedErr = stamp, err.Error()
		return
	}
	f.cert.Store(cert)
	f.loaded, f.failed, f.failedErr = stamp, filesStamp{}, ""
	f.logger.Info("reloaded certificate from files", certAttrs(cert, f.certFile)...)
}

func certAttrs(cert *tls.Certificate, file string) []any {
	attrs := []any{"cert_file", file}
	if leaf := cert.Leaf; leaf != nil {
		attrs = append(attrs, "names", strings.Join(leaf.DNSNames, ","), "serial", leaf.SerialNumber.Text(16),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return attrs
}

// ---- ACME ----

// acmeManager obtains and renews the certificates of one listener with
// certmagic, each listener with its own cache and configuration.
type acmeManager struct {
	conf    ACMEConfig
	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	logger  *slog.Logger
	cancel  context.CancelFunc
	stopped sync.Once
}

// newACMEManager prepares certificate management for the listener bound at
// tlsAddr. redirect, if not nil, is the bound HTTP listener that answers the
// HTTP-01 challenge. Nothing is asked of the CA before start.
func newACMEManager(c ACMEConfig, dataDir string, tlsAddr net.Addr, redirect *namedServer, logger *slog.Logger) (*acmeManager, error) {
	var roots *x509.CertPool
	if c.CARoot != "" {
		var err error
		if roots, err = loadRoots(c.CARoot); err != nil {
			return nil, fmt.Errorf("ca_root: %w", err)
		}
	}
	zl := zap.New(slogCore{logger: logger}).Named("certmagic")
	var current atomic.Pointer[certmagic.Config]
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			return current.Load(), nil
		},
		RenewCheckInterval: c.RenewInterval,
		Logger:             zl,
	})
	m := &acmeManager{conf: c, cache: cache, logger: logger}
	template := certmagic.Config{
		Storage: &certmagic.FileStorage{Path: filepath.Join(dataDir, "certmagic")},
		Logger:  zl,
	}
	if len(c.Domains) > 0 {
		// Clients that send no server name, such as health checks by IP.
		template.DefaultServerName = c.Domains[0]
	}
	if c.OnDemand {
		template.OnDemand = &certmagic.OnDemandConfig{
			DecisionFunc: func(_ context.Context, name string) error {
				if m.known(name) {
					return nil
				}
				return fmt.Errorf("%q is in neither domains nor on_demand_allow", name)
			},
		}
	}
	m.magic = certmagic.New(cache, template)
	current.Store(m.magic)

	// certmagic answers a challenge itself only if it can bind the
	// challenge's port; pointing it at our own listeners makes it leave
	// them to us.
	host, tlsPort := splitHostPort(tlsAddr)
	issuer := certmagic.ACMEIssuer{
		CA:                      c.CA,
		Email:                   c.Email,
		Agreed:                  true, // choosing a CA is agreeing to its terms: nobody is there to ask
		DisableHTTPChallenge:    redirect == nil,
		DisableTLSALPNChallenge: c.DisableTLSALPNChallenge,
		ListenHost:              host,
		AltTLSALPNPort:          tlsPort,
		TrustedRoots:            roots,
		Logger:                  zl,
	}
	if redirect != nil {
		httpHost, httpPort := splitHostPort(redirect.ln.Addr())
		if httpHost != host {
			// One ListenHost serves both challenges; with different hosts
			// the HTTP one is found by port alone.
			issuer.ListenHost = ""
		}
		issuer.AltHTTPPort = httpPort
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, issuer)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

func splitHostPort(addr net.Addr) (string, int) {
	if a, ok := addr.(*net.TCPAddr); ok {
		host := ""
		if !a.IP.IsUnspecified() {
			host = a.IP.String()
		}
		return host, a.Port
	}
	return "", 0
}

// known reports whether the certificates of this listener may name host.
func (m *acmeManager) known(host string) bool {
	return matchHost(m.conf.Domains, host) || m.conf.OnDemand && matchHost(m.conf.OnDemandAllow, host)
}

// start begins obtaining the domains' certificates in the background,
// retrying with backoff, and renewing them for as long as scimgate runs.
// With on_demand, certificates are obtained at the first handshake instead.
func (m *acmeManager) start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if m.conf.OnDemand {
		m.logger.Info("certificates are obtained at the first handshake for each allowed name", "ca", m.conf.CA,
			"domains", strings.Join(m.conf.Domains, ","), "on_demand_allow", strings.Join(m.conf.OnDemandAllow, ","))
		return
	}
	m.logger.Info("managing certificates", "ca", m.conf.CA, "domains", strings.Join(m.conf.Domains, ","))
	// ManageAsync, not ManageSync: it never prompts on stdin, and retries.
	if err := m.magic.ManageAsync(ctx, m.conf.Domains); err != nil {
		m.logger.Error("manage certificates", "err", err)
	}
}

func (m *acmeManager) stop() {
	m.stopped.Do(func() {
		if m.cancel != nil {
			m.cancel()
		}
		m.cache.Stop()
	})
}

// httpHandler answers ACME HTTP-01 challenges and redirects every other
// request to the HTTPS listener at httpsAddr.
func (m *acmeManager) httpHandler(httpsAddr net.Addr) http.Handler {
	return m.issuer.HTTPChallengeHandler(redirectToHTTPS(httpsAddr, m.known))
}

// slogCore is a zapcore.Core that writes to a slog.Logger, so that
// certmagic's logs are JSON lines like scimgate's own.
type slogCore struct {
	logger *slog.Logger
	attrs  []slog.Attr
}

func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.logger.Enabled(context.Background(), slogLevel(l))
}

func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	return slogCore{logger: c.logger, attrs: append(slices.Clip(c.attrs), zapAttrs(fields)...)}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	attrs := append(slices.Clip(c.attrs), zapAttrs(fields)...)
	if e.LoggerName != "" {
		attrs = append([]slog.Attr{slog.String("logger", e.LoggerName)}, attrs...)
	}
	c.logger.LogAttrs(context.Background(), slogLevel(e.Level), e.Message, attrs...)
	return nil
}

func (slogCore) Sync() error { return nil }

func zapAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}
