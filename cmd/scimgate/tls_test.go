package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"go.uber.org/zap"

	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// ---- A real ACME server: Pebble, in process ----

// pebble is Let's Encrypt's test ACME server, run from its own packages on
// loopback. Its issuing root is new at every start.
type pebble struct {
	directory string         // the ACME directory URL
	caRoot    string         // PEM file of the ACME server's own HTTPS certificate: ca_root
	roots     *x509.CertPool // the root Pebble issues under, from its management endpoint
}

// pebbleEnv serializes the starts of Pebble, which reads its switches
// from the environment when its parts are made.
var pebbleEnv sync.Mutex

// startPebble starts Pebble issuing certificates valid for validity. Its
// validation authority checks HTTP-01 on httpPort and TLS-ALPN-01 on
// tlsPort of the name being validated, unless alwaysValid, when it checks
// nothing (PEBBLE_VA_ALWAYS_VALID=1).
func startPebble(t *testing.T, validity time.Duration, httpPort, tlsPort int, alwaysValid bool) *pebble {
	t.Helper()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log:\n%s", logs)
		}
	})
	logger := log.New(logs, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "test", ValidityPeriod: uint64(validity / time.Second)},
	})
	env := map[string]string{
		"PEBBLE_VA_NOSLEEP":      "1", // no random sleep before validating
		"PEBBLE_WFE_NONCEREJECT": "0", // no bad nonces on purpose
		"PEBBLE_VA_ALWAYS_VALID": "0",
	}
	if alwaysValid {
		env["PEBBLE_VA_ALWAYS_VALID"] = "1"
	}
	pebbleEnv.Lock()
	var restore []func()
	for k, v := range env {
		if old, had := os.LookupEnv(k); had {
			restore = append(restore, func() { os.Setenv(k, old) })
		} else {
			restore = append(restore, func() { os.Unsetenv(k) })
		}
		os.Setenv(k, v)
	}
	validator := va.New(logger, httpPort, tlsPort, false, "", store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	for _, f := range restore {
		f()
	}
	pebbleEnv.Unlock()

	acmeServer := httptest.NewTLSServer(front.Handler())
	t.Cleanup(acmeServer.Close)
	management := httptest.NewTLSServer(front.ManagementHandler())
	t.Cleanup(management.Close)

	p := &pebble{directory: acmeServer.URL + wfe.DirectoryPath, caRoot: filepath.Join(t.TempDir(), "pebble-https.pem")}
	writePEM(t, p.caRoot, "CERTIFICATE", acmeServer.Certificate().Raw)

	resp, err := management.Client().Get(management.URL + wfe.RootCertPath + "0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rootPEM, _ := io.ReadAll(resp.Body)
	p.roots = x509.NewCertPool()
	if resp.StatusCode != 200 || !p.roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's root: status %d, %q", resp.StatusCode, rootPEM)
	}
	return p
}

// forwarder accepts TCP connections on a fixed port of 127.0.0.1 (and of
// ::1 where it can) and pipes them to a target set later: Pebble learns
// the ports to validate on when it starts, before scimgate has bound its
// listeners on ":0".
type forwarder struct {
	port   int
	target atomic.Pointer[string]
}

func newForwarder(t *testing.T) *forwarder {
	t.Helper()
	f := &forwarder{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.port = ln.Addr().(*net.TCPAddr).Port
	lns := []net.Listener{ln}
	// "localhost" may resolve to ::1 first.
	if ln6, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", f.port)); err == nil {
		lns = append(lns, ln6)
	}
	for _, ln := range lns {
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go f.pipe(conn)
			}
		}()
	}
	return f
}

func (f *forwarder) setTarget(addr string) { f.target.Store(&addr) }

func (f *forwarder) pipe(conn net.Conn) {
	defer conn.Close()
	// The CA may come before the test has learnt where to send it.
	target := f.target.Load()
	for deadline := time.Now().Add(5 * time.Second); target == nil && time.Now().Before(deadline); target = f.target.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	if target == nil {
		return
	}
	up, err := net.DialTimeout("tcp", *target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, conn); done <- struct{}{} }()
	go func() { io.Copy(conn, up); done <- struct{}{} }()
	<-done
}

// ---- Test certificates and TLS clients ----

// testCA issues certificates for mode "files".
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "scimgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

var nextSerial atomic.Int64

// issue returns a PEM certificate for localhost and 127.0.0.1, its PEM key
// and its serial number.
func (c *testCA) issue(t *testing.T) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial = big.NewInt(1000 + nextSerial.Add(1))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), serial
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes data beside path and renames it over path, as
// certificate tools and Kubernetes secret updates do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// leafOf opens a new TLS connection to addr, verifying the server's chain
// for serverName against roots, and returns the server's certificate.
func leafOf(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitForLeaf polls addr until a handshake verifies and cond accepts the
// certificate, or fails the test after timeout.
func waitForLeaf(t *testing.T, addr, serverName string, roots *x509.CertPool, timeout time.Duration, what string, cond func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		leaf, err := leafOf(addr, serverName, roots)
		if err == nil && cond(leaf) {
			return leaf
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last handshake error: %v)", what, timeout, lastErr)
	return nil
}

// httpsClient talks HTTPS (HTTP/2 when offered) to the listener at addr,
// whatever the URL's host, verifying the certificate for serverName.
func httpsClient(addr, serverName string, roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig:   &tls.Config{ServerName: serverName, RootCAs: roots},
			ForceAttemptHTTP2: true,
		},
	}
}

// getReused makes a GET and reports whether it went over a connection
// opened before.
func getReused(t *testing.T, client *http.Client, url, token string) (resp *http.Response, body string, reused bool) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	}))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), reused
}

// listenerAddr waits for serve to log that the named listener is bound.
func listenerAddr(t *testing.T, s *runningServe, name string) string {
	t.Helper()
	re := regexp.MustCompile(`"msg":"listening","listener":"` + regexp.QuoteMeta(name) + `","addr":"([^"]+)"`)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(s.stderr.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("serve did not log its %s listener:\n%s", name, s.stderr)
	return ""
}

// ---- ACME end to end ----

// TestACMEWithPebble runs scimgate serve with mode acme against Pebble,
// which really validates the HTTP-01 challenge on scimgate's redirect
// listener. scimgate obtains a certificate for localhost, serves the proxy
// over HTTPS to a client that trusts only Pebble's root, and renews the
// short-lived certificate in the background: new connections get the new
// certificate while a keep-alive connection made before goes on working.
func TestACMEWithPebble(t *testing.T) {
	t.Parallel()
	httpFwd := newForwarder(t)
	p := startPebble(t, 10*time.Second, httpFwd.port, 1, false)

	up := newRecordingUpstream(t)

	c := newTestCLI(t, sqlstore.SQLite)
	c.ok("org", "create", "--name", "acme")
	c.ok("user", "create", "--org", "acme", "--user-name", "alice")
	var tok createdToken
	c.okJSON(&tok, "user-token", "create", "--org", "acme", "--user", "alice", "--name", "laptop")

	config := writeConfig(t, fmt.Sprintf(`
data_dir: %s
proxy:
  tls:
    mode: acme
    acme:
      domains: [localhost]
      email: ops@example.com
      ca: %s
      ca_root: %s
      disable_tls_alpn_challenge: true
      http_redirect_listen: 127.0.0.1:0
      renew_interval: 250ms
    hsts: {max_age: 8760h}
`, t.TempDir(), p.directory, p.caRoot))
	s := startServe(t, c.dsn, nil, "--config", config, "--upstream", up.URL)
	redirect := listenerAddr(t, s, "proxy http redirect")
	httpFwd.setTarget(redirect)
	proxyAddr := s.addrs["proxy"]

	start := time.Now()
	first := waitForLeaf(t, proxyAddr, "localhost", p.roots, 30*time.Second, "a certificate from Pebble",
		func(*x509.Certificate) bool { return true })
	t.Logf("certificate obtained after %v (valid until %s)", time.Since(start).Round(time.Millisecond), first.NotAfter.Format(time.TimeOnly))
	if len(first.DNSNames) != 1 || first.DNSNames[0] != "localhost" {
		t.Errorf("certificate names = %v, want [localhost]", first.DNSNames)
	}
	if !strings.Contains(s.stderr.String(), `"logger":"certmagic`) {
		t.Errorf("certmagic's log does not go to the JSON log:\n%s", s.stderr)
	}

	// The proxy over HTTPS: a valid token passes, with HSTS.
	client := httpsClient(proxyAddr, "localhost", p.roots)
	gate := "https://localhost/orders"
	resp, body, _ := getReused(t, client, gate, tok.Token)
	if resp.StatusCode != 200 || body != "upstream says hi" {
		t.Fatalf("GET %s with a token = %d %q, want 200 from the upstream", gate, resp.StatusCode, body)
	}
	// The certificate of the connection the client keeps open (a renewal
	// may already have replaced the first one).
	kept := resp.TLS.PeerCertificates[0]
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security = %q, want max-age=31536000", got)
	}
	seen := up.last()
	proto, name := seen.Get("X-Forwarded-Proto"), seen.Get("X-Scimgate-Name")
	if proto != "https" || name != "alice" {
		t.Errorf("upstream saw X-Forwarded-Proto %q, X-Scimgate-Name %q; want https, alice", proto, name)
	}
	if resp, _, _ := getReused(t, client, gate, ""); resp.StatusCode != 401 {
		t.Errorf("GET %s without a token = %d, want 401", gate, resp.StatusCode)
	}

	// The HTTP listener redirects to HTTPS, for its own domain only.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+redirect+"/scim/v2/Users?count=1", nil)
	req.Host = "localhost"
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(proxyAddr)
	if want := "https://localhost:" + port + "/scim/v2/Users?count=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP request = %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	req.Host = "evil.example"
	if resp, err = noFollow.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP request for another host = %d, want 400 (no open redirect)", resp.StatusCode)
	}

	// Renewal in the background, at a time certmagic picks in the window
	// that Pebble's ACME Renewal Information gives for a 10s certificate
	// (or when a third of the lifetime is left, whichever comes first).
	renewed := waitForLeaf(t, proxyAddr, "localhost", p.roots, 20*time.Second, "a renewed certificate on a new connection",
		func(l *x509.Certificate) bool { return l.SerialNumber.Cmp(kept.SerialNumber) != 0 })
	t.Logf("renewed after %v: serial %x → %x", time.Since(start).Round(time.Millisecond), kept.SerialNumber, renewed.SerialNumber)
	if renewed.NotAfter.Before(kept.NotAfter) {
		t.Errorf("renewed certificate expires %s, before the one it replaced (%s)", renewed.NotAfter, kept.NotAfter)
	}
	resp, body, reused := getReused(t, client, gate, tok.Token)
	if resp.StatusCode != 200 || body != "upstream says hi" || !reused {
		t.Errorf("after the renewal, the keep-alive connection: %d %q, reused %v; want 200 over the old connection", resp.StatusCode, body, reused)
	}
	if resp.TLS.PeerCertificates[0].SerialNumber.Cmp(kept.SerialNumber) != 0 {
		t.Errorf("the keep-alive connection is not the one made with the replaced certificate")
	}

	if err := s.stop(); err != nil {
		t.Errorf("serve returned %v after a graceful stop", err)
	}
	// The certificate and account are stored under <data_dir>/certmagic.
	if !strings.Contains(s.stderr.String(), `"msg":"managing certificates"`) {
		t.Errorf("no certificate management logged:\n%s", s.stderr)
	}
}

// TestACMETLSALPN obtains the certificate with the TLS-ALPN-01 challenge
// alone, answered by the proxy's own TLS listener; no HTTP listener runs.
func TestACMETLSALPN(t *testing.T) {
	t.Parallel()
	tlsFwd := newForwarder(t)
	p := startPebble(t, time.Hour, 1, tlsFwd.port, false)
	dataDir := t.TempDir()
	config := writeConfig(t, fmt.Sprintf(`
data_dir: %s
proxy:
  tls:
    mode: acme
    min_version: "1.3"
    acme:
      domains: [localhost]
      ca: %s
      ca_root: %s
      disable_http_challenge: true
`, dataDir, p.directory, p.caRoot))
	s := startServe(t, sqltest.SQLitePath(t), nil, "--config", config)
	tlsFwd.setTarget(s.addrs["proxy"])
	waitForLeaf(t, s.addrs["proxy"], "localhost", p.roots, 30*time.Second, "a certificate by TLS-ALPN-01",
		func(*x509.Certificate) bool { return true })
	if strings.Contains(s.stderr.String(), "http redirect") {
		t.Errorf("an HTTP listener runs with the HTTP-01 challenge disabled:\n%s", s.stderr)
	}
	// TLS 1.2 is refused with min_version 1.3.
	_, err := tls.Dial("tcp", s.addrs["proxy"], &tls.Config{ServerName: "localhost", RootCAs: p.roots, MaxVersion: tls.VersionTLS12})
	if err == nil {
		t.Error("a TLS 1.2 handshake succeeded with min_version 1.3")
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	certs, _ := filepath.Glob(filepath.Join(dataDir, "certmagic", "certificates", "*", "localhost", "localhost.crt"))
	if len(certs) != 1 {
		t.Errorf("certificate files under data_dir/certmagic: %v, want one localhost.crt", certs)
	}
}

// TestACMEOnDemand obtains certificates at the first handshake, for allowed
// names only.
func TestACMEOnDemand(t *testing.T) {
	t.Parallel()
	p := startPebble(t, time.Hour, 1, 1, true)
	config := writeConfig(t, fmt.Sprintf(`
data_dir: %s
proxy:
  tls:
    mode: acme
    acme:
      ca: %s
      ca_root: %s
      http_redirect_listen: 127.0.0.1:0
      on_demand: true
      on_demand_allow: [scim.example.test, "*.tenants.example.test"]
`, t.TempDir(), p.directory, p.caRoot))
	s := startServe(t, sqltest.SQLitePath(t), nil, "--config", config)
	for _, name := range []string{"scim.example.test", "acme.tenants.example.test"} {
		leaf, err := leafOf(s.addrs["proxy"], name, p.roots)
		if err != nil {
			t.Errorf("handshake for allowed %s: %v", name, err)
			continue
		}
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name {
			t.Errorf("certificate for %s names %v", name, leaf.DNSNames)
		}
	}
	for _, name := range []string{"evil.example.test", "a.b.tenants.example.test", "tenants.example.test"} {
		if _, err := leafOf(s.addrs["proxy"], name, p.roots); err == nil {
			t.Errorf("handshake for %s, not allowed, succeeded", name)
		}
	}
}

// ---- Files ----

// TestTLSFilesReload serves both listeners from certificate files, replaces
// the files and sees the new certificate on new connections without a
// restart, while a keep-alive connection goes on; a broken pair is logged
// and the previous certificate kept.
func TestTLSFilesReload(t *testing.T) {
	t.Parallel()
	authority := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certPEM, keyPEM, serial1 := authority.issue(t)
	replaceFile(t, certFile, certPEM)
	replaceFile(t, keyFile, keyPEM)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "public") }))
	defer up.Close()
	config := writeConfig(t, fmt.Sprintf(`
proxy:
  public_paths: [/public]
  tls:
    mode: files
    cert_file: %[1]s
    key_file: %[2]s
    hsts: {max_age: 1h, include_subdomains: true}
management:
  tls: {mode: files, cert_file: %[1]s, key_file: %[2]s}
`, certFile, keyFile))
	s := startServe(t, sqltest.SQLitePath(t), nil, "--config", config, "--upstream", up.URL)
	proxyAddr := s.addrs["proxy"]

	client := httpsClient(proxyAddr, "localhost", authority.pool)
	resp, body, _ := getReused(t, client, "https://localhost/public/x", "")
	if resp.StatusCode != 200 || body != "public" || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(serial1) != 0 {
		t.Fatalf("GET /public/x over HTTPS = %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=3600; includeSubDomains" {
		t.Errorf("Strict-Transport-Security = %q", got)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2 over TLS", resp.Proto)
	}
	mgmt := httpsClient(s.addrs["management"], "localhost", authority.pool)
	if resp, body, _ := getReused(t, mgmt, "https://localhost/healthz", ""); resp.StatusCode != 200 || body != "ok\n" ||
		resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("management GET /healthz over HTTPS = %d %q, STS %q; want 200 ok without HSTS", resp.StatusCode, body, resp.Header.Get("Strict-Transport-Security"))
	}
	// Plain HTTP on a TLS listener gets no answer from the proxy.
	if resp, err := http.Get("http://" + proxyAddr + "/public/x"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP on the TLS listener reached the upstream")
		}
	}

	// New files: new connections get the new certificate, without a restart.
	certPEM, keyPEM, serial2 := authority.issue(t)
	replaceFile(t, keyFile, keyPEM)
	replaceFile(t, certFile, certPEM)
	waitForLeaf(t, proxyAddr, "localhost", authority.pool, 5*time.Second, "the replaced certificate",
		func(l *x509.Certificate) bool { return l.SerialNumber.Cmp(serial2) == 0 })
	resp, _, reused := getReused(t, client, "https://localhost/public/x", "")
	if resp.StatusCode != 200 || !reused || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(serial1) != 0 {
		t.Errorf("the keep-alive connection after the swap: %d, reused %v", resp.StatusCode, reused)
	}
	if !strings.Contains(s.stderr.String(), `"msg":"reloaded certificate from files"`) {
		t.Errorf("no reload logged:\n%s", s.stderr)
	}

	// A certificate whose key has not been replaced yet: logged, and the
	// previous certificate is served until the key comes.
	certPEM, keyPEM, serial3 := authority.issue(t)
	replaceFile(t, certFile, certPEM)
	time.Sleep(certFilesCheckInterval + 200*time.Millisecond)
	for range 2 {
		if leaf, err := leafOf(proxyAddr, "localhost", authority.pool); err != nil || leaf.SerialNumber.Cmp(serial2) != 0 {
			t.Fatalf("with a mismatched key: %v, want the previous certificate (serial %v)", err, serial2)
		}
		time.Sleep(certFilesCheckInterval)
	}
	if n := strings.Count(s.stderr.String(), "certificate files changed but do not load"); n != 1 {
		t.Errorf("a broken pair was logged %d times, want once:\n%s", n, s.stderr)
	}
	replaceFile(t, keyFile, keyPEM)
	waitForLeaf(t, proxyAddr, "localhost", authority.pool, 5*time.Second, "the certificate once its key is there",
		func(l *x509.Certificate) bool { return l.SerialNumber.Cmp(serial3) == 0 })
}

// ---- Configuration ----

func TestServeCheckConfigTLS(t *testing.T) {
	t.Parallel()
	authority := newTestCA(t)
	dir := t.TempDir()
	certPEM, keyPEM, _ := authority.issue(t)
	_, otherKeyPEM, _ := authority.issue(t)
	files := map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "other.key": otherKeyPEM, "junk.pem": []byte("not a certificate\n")}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tests := []struct {
		name, yaml string
		want       string // "" means config ok
	}{
		{"files", fmt.Sprintf("proxy:\n  tls: {mode: files, cert_file: %s, key_file: %s}\n", crt, key), ""},
		{"acme", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [scim.example.com], email: ops@example.com}\n", ""},
		{"acme with on demand", "proxy:\n  tls:\n    mode: acme\n    acme: {on_demand: true, on_demand_allow: [\"*.example.com\"]}\n", ""},
		{"unknown mode", "proxy:\n  tls: {mode: auto}\n", `proxy.tls.mode: "auto" is not one of off, files, acme`},
		{"unknown option", "proxy:\n  tls: {mode: acme, domains: [x.example.com]}\n", `unknown option "domains"`},
		{"TLS 1.1", "management:\n  tls: {min_version: \"1.1\"}\n", `management.tls.min_version: "1.1": TLS 1.2 is the lowest version scimgate accepts`},
		{"files without cert", "proxy:\n  tls: {mode: files}\n", "proxy.tls.cert_file: required with mode files"},
		{"files without key", fmt.Sprintf("proxy:\n  tls: {mode: files, cert_file: %s}\n", crt), "proxy.tls.key_file: required with mode files"},
		{"missing cert file", fmt.Sprintf("proxy:\n  tls: {mode: files, cert_file: %s/nope.crt, key_file: %s}\n", dir, key),
			"proxy.tls.cert_file: open " + dir + "/nope.crt: no such file or directory"},
		{"missing key file", fmt.Sprintf("management:\n  tls: {mode: files, cert_file: %s, key_file: %s/nope.key}\n", crt, dir),
			"management.tls.key_file: open " + dir + "/nope.key: no such file or directory"},
		{"cert not PEM", fmt.Sprintf("proxy:\n  tls: {mode: files, cert_file: %s/junk.pem, key_file: %s}\n", dir, key),
			"proxy.tls.cert_file: " + dir + "/junk.pem does not start with a PEM certificate"},
		{"not a pair", fmt.Sprintf("proxy:\n  tls: {mode: files, cert_file: %s, key_file: %s/other.key}\n", crt, dir),
			"proxy.tls.cert_file, key_file: " + crt + " and " + dir + "/other.key are not a certificate and its key: tls: private key does not match public key"},
		{"cert file with mode acme", fmt.Sprintf("proxy:\n  tls: {mode: acme, cert_file: %s}\n", crt), `proxy.tls.cert_file, key_file: only used with mode files, and mode is "acme"`},
		{"domains with mode off", "proxy:\n  tls:\n    acme: {domains: [x.example.com]}\n", `proxy.tls.acme: only used with mode acme, and mode is "off"`},
		{"acme without domains", "proxy:\n  tls: {mode: acme}\n", "proxy.tls.acme.domains: required with mode acme"},
		{"acme domain with scheme", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [\"https://scim.example.com\"]}\n",
			`proxy.tls.acme.domains[0]: "https://scim.example.com" is not a DNS name: write the host alone`},
		{"acme domain with port", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [\"scim.example.com:443\"]}\n", `proxy.tls.acme.domains[0]: "scim.example.com:443" is not a DNS name`},
		{"acme wildcard", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [\"*.example.com\"]}\n", "proxy.tls.acme.domains[0]: \"*.example.com\": wildcard certificates need the DNS-01 challenge"},
		{"acme internal name", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [scimgate.internal]}\n",
			`proxy.tls.acme.domains[0]: "scimgate.internal" is an internal name, which a public CA such as acme-v02.api.letsencrypt.org does not certify`},
		{"acme single label", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [scimgate]}\n", `proxy.tls.acme.domains[0]: "scimgate" is an internal name`},
		{"acme IP", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [192.0.2.1]}\n", `proxy.tls.acme.domains[0]: "192.0.2.1" is an IP address`},
		{"acme bad email", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], email: ops}\n", `proxy.tls.acme.email: "ops" is not an email address`},
		{"zerossl without email", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], ca: \"https://acme.zerossl.com/v2/DV90\"}\n",
			"proxy.tls.acme.email: required by the CA https://acme.zerossl.com/v2/DV90"},
		{"acme http CA", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], ca: \"http://ca.internal/dir\"}\n", `proxy.tls.acme.ca: "http://ca.internal/dir" is not the https URL of an ACME directory`},
		{"acme CA root missing", fmt.Sprintf("proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], ca_root: %s/nope.pem}\n", dir),
			"proxy.tls.acme.ca_root: open " + dir + "/nope.pem: no such file or directory"},
		{"acme CA root not PEM", fmt.Sprintf("proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], ca_root: %s/junk.pem}\n", dir),
			"proxy.tls.acme.ca_root: " + dir + "/junk.pem holds no PEM certificate"},
		{"no challenge", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], disable_http_challenge: true, disable_tls_alpn_challenge: true}\n",
			"proxy.tls.acme: disable_http_challenge and disable_tls_alpn_challenge are both true"},
		{"HTTP-01 without its listener", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], http_redirect_listen: \"\", disable_tls_alpn_challenge: true}\n",
			"proxy.tls.acme.http_redirect_listen: empty with disable_tls_alpn_challenge"},
		{"bad redirect address", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], http_redirect_listen: \"80\"}\n",
			`proxy.tls.acme.http_redirect_listen: "80" is not host:port`},
		{"one redirect port for both", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com]}\nmanagement:\n  tls:\n    mode: acme\n    acme: {domains: [y.example.com]}\n",
			`management.tls.acme.http_redirect_listen: ":80" is also proxy.tls.acme.http_redirect_listen`},
		{"redirect on the proxy's port", "proxy:\n  listen: 127.0.0.1:8443\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], http_redirect_listen: \"127.0.0.1:8443\"}\n",
			`proxy.tls.acme.http_redirect_listen: "127.0.0.1:8443" is also proxy.listen`},
		{"on demand without allowlist", "proxy:\n  tls:\n    mode: acme\n    acme: {on_demand: true}\n", "proxy.tls.acme.on_demand_allow: required with on_demand"},
		{"allowlist without on demand", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], on_demand_allow: [y.example.com]}\n", "proxy.tls.acme.on_demand_allow: only used with on_demand: true"},
		{"bad allowlist entry", "proxy:\n  tls:\n    mode: acme\n    acme: {on_demand: true, on_demand_allow: [\"*\"]}\n", `proxy.tls.acme.on_demand_allow[0]: "*" is not a DNS name`},
		{"zero renew interval", "proxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com], renew_interval: 0s}\n", "proxy.tls.acme.renew_interval: must be a duration above zero"},
		{"acme without data dir", "data_dir: \"\"\ndatabase: /tmp/x.db\nproxy:\n  tls:\n    mode: acme\n    acme: {domains: [x.example.com]}\n", "data_dir: must not be empty with proxy.tls.mode acme"},
		{"negative HSTS", "proxy:\n  tls:\n    hsts: {max_age: -1s}\n", "proxy.tls.hsts.max_age: -1s is negative"},
		{"HSTS subdomains without max age", "proxy:\n  tls:\n    hsts: {include_subdomains: true}\n", "proxy.tls.hsts.include_subdomains: needs proxy.tls.hsts.max_age above zero"},
	}
	dsn := filepath.Join(t.TempDir(), "never", "scimgate.db")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := []string{"scimgate", "serve", "--check-config", "--database", dsn, "--upstream", "http://127.0.0.1:9", "--config", writeConfig(t, tt.yaml)}
			err := run(context.Background(), args, noEnv, &out, &errOut)
			if tt.want == "" {
				if err != nil || out.String() != "config ok\n" {
					t.Errorf("serve --check-config = %v, printed %q; want config ok", err, out.String())
				}
				return
			}
			if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve --check-config = %v (exit %d), want exit %d: %s", err, exitCode(err), exitUsage, tt.want)
			}
		})
	}
}

// The certificate files are read by serve only: other commands work with
// a config whose key only the server's user can read.
func TestTLSFilesNotReadByOtherCommands(t *testing.T) {
	dir := t.TempDir()
	c := &testCLI{t: t, dsn: newSQLiteDB(t)}
	c.ok("--config", writeConfig(t, fmt.Sprintf("proxy:\n  tls: {mode: files, cert_file: %s/a.crt, key_file: %s/a.key}\n", dir, dir)), "org", "list")
}

func TestTLSRedirectListenerInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	config := writeConfig(t, fmt.Sprintf(`
data_dir: %s
proxy:
  tls:
    mode: acme
    acme: {domains: [localhost], ca: "https://127.0.0.1:9/dir", http_redirect_listen: %q}
`, t.TempDir(), ln.Addr().String()))
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"scimgate", "serve", "--config", config, "--database", sqltest.SQLitePath(t),
		"--upstream", "http://x", "--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0"}, noEnv, &out, &errOut)
	want := "proxy http redirect listener: listen tcp " + ln.Addr().String() + ": bind: address already in use: another process listens there; stop it, or set proxy.tls.acme.http_redirect_listen"
	if err == nil || !strings.Contains(err.Error(), want) || exitCode(err) != exitError {
		t.Errorf("serve with the redirect port in use = %v (exit %d), want %q, exit 1", err, exitCode(err), want)
	}
}

// ---- Parts ----

func TestMatchHost(t *testing.T) {
	patterns := []string{"scim.example.com", "*.tenants.example.com"}
	tests := []struct {
		name string
		want bool
	}{
		{"scim.example.com", true},
		{"SCIM.Example.com.", true},
		{"acme.tenants.example.com", true},
		{"tenants.example.com", false},
		{"a.b.tenants.example.com", false},
		{".tenants.example.com", false},
		{"example.com", false},
		{"scim.example.com.evil.test", false},
	}
	for _, tt := range tests {
		if got := matchHost(patterns, tt.name); got != tt.want {
			t.Errorf("matchHost(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	known := func(h string) bool { return h == "scim.example.com" }
	tests := []struct {
		httpsAddr, host, target string
		code                    int
		want                    string
	}{
		{"0.0.0.0:443", "scim.example.com", "/scim/v2/Users?filter=x", 308, "https://scim.example.com/scim/v2/Users?filter=x"},
		{"0.0.0.0:443", "scim.example.com:80", "/", 308, "https://scim.example.com/"},
		{"127.0.0.1:8443", "scim.example.com", "/a", 308, "https://scim.example.com:8443/a"},
		{"0.0.0.0:443", "evil.example", "/", 400, ""},
	}
	for _, tt := range tests {
		addr, _ := net.ResolveTCPAddr("tcp", tt.httpsAddr)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", tt.target, nil)
		req.Host = tt.host
		redirectToHTTPS(addr, known).ServeHTTP(rec, req)
		if rec.Code != tt.code || rec.Header().Get("Location") != tt.want {
			t.Errorf("GET http://%s%s (HTTPS on %s) = %d %q, want %d %q", tt.host, tt.target, tt.httpsAddr, rec.Code, rec.Header().Get("Location"), tt.code, tt.want)
		}
	}
}

func TestSlogCore(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	zl := zap.New(slogCore{logger: logger}).Named("certmagic").With(zap.String("identifier", "scim.example.com"))
	zl.Debug("hidden")
	zl.Warn("renewing", zap.Error(errors.New("boom")))
	got := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"msg":"renewing"`, `"logger":"certmagic"`, `"identifier":"scim.example.com"`, `"error":"boom"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %s", got, want)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("a debug line at level info: %q", got)
	}
}
