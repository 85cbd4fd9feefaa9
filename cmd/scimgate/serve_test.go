package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// syncBuffer is a bytes.Buffer that a running server and a test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runningServe is "scimgate serve" running in the background.
type runningServe struct {
	addrs  map[string]string // listener name → bound address
	stderr *syncBuffer
	stop   func() error // cancels the context and returns run's error
}

// startServe runs "scimgate serve" on ":0" listeners and returns once it is
// ready (/readyz answers 200). Extra arguments come last, so they override
// the defaults. A SQLite database that does not exist is created first,
// since serve refuses a --database path that does not exist.
func startServe(t *testing.T, dsn string, env map[string]string, extra ...string) *runningServe {
	t.Helper()
	s, err := tryStartServe(t, dsn, env, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryStartServe is startServe for any goroutine: it reports instead of
// failing the test.
func tryStartServe(t *testing.T, dsn string, env map[string]string, extra ...string) (*runningServe, error) {
	if !isPostgres(dsn) {
		if _, err := os.Stat(dsn); errors.Is(err, os.ErrNotExist) {
			createSQLiteDB(t, dsn)
		}
	}
	s, err := startServeListening(t, dsn, env, extra...)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		code, body, err := tryGet(s.readyzURL())
		if err == nil && code == http.StatusOK {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("serve not ready within 30s: /readyz %d %q %v\nstderr: %s", code, body, err, s.stderr)
		}
	}
}

// readyzURL is the running server's readiness URL (plain HTTP).
func (s *runningServe) readyzURL() string { return "http://" + s.addrs["management"] + "/readyz" }

// tryGet GETs url; if a TLS listener answers plain HTTP, it tries again over
// HTTPS without checking the certificate (readiness alone is asked here).
func tryGet(url string) (int, string, error) {
	code, body, err := getWith(http.DefaultClient, url)
	if err == nil && code == http.StatusBadRequest && strings.Contains(body, "HTTPS server") {
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		return getWith(insecure, "https"+strings.TrimPrefix(url, "http"))
	}
	return code, body, err
}

func getWith(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// startServeListening runs "scimgate serve" and returns once its listeners
// are bound, ready or not.
func startServeListening(t *testing.T, dsn string, env map[string]string, extra ...string) (*runningServe, error) {
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan [2]string, 4)
	ctx = withListenHook(ctx, func(name string, addr net.Addr) { bound <- [2]string{name, addr.String()} })
	s := &runningServe{addrs: map[string]string{}, stderr: &syncBuffer{}}
	done := make(chan error, 1)
	go func() {
		args := append([]string{"scimgate", "serve", "--database", dsn, "--upstream", "http://127.0.0.1:9",
			"--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0"}, extra...)
		done <- run(ctx, args, envMap(env), io.Discard, s.stderr)
	}()
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("serve did not stop within 10s of its context ending")
			}
		})
		return runErr
	}
	t.Cleanup(func() { s.stop() })
	for _, name := range serveListeners {
		for s.addrs[name] == "" {
			select {
			case b := <-bound:
				s.addrs[b[0]] = b[1]
			case err := <-done:
				return nil, fmt.Errorf("serve stopped before listening: %v\nstderr: %s", err, s.stderr)
			case <-time.After(30 * time.Second):
				return nil, fmt.Errorf("serve did not bind its %s listener within 30s\nstderr: %s", name, s.stderr)
			}
		}
	}
	return s, nil
}

// serveListeners are the listeners startServe waits for.
var serveListeners = []string{"proxy", "management"}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var bannerToken = regexp.MustCompile(`(?m)^    (sgs_\S+)$`)

func TestServe(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			testServe(t, newTestCLI(t, dialect))
		})
	}
}

func testServe(t *testing.T, c *testCLI) {
	s := startServe(t, c.dsn, nil)
	mgmt := "http://" + s.addrs["management"]
	if code, body := get(t, mgmt+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, mgmt+"/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz = %d %q, want 200", code, body)
	}
	if code, _ := get(t, mgmt+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}

	// The first start prints the bootstrap token once, with its ID and
	// permissions, and logs where it listens.
	stderr := s.stderr.String()
	m := bannerToken.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no bootstrap token in stderr:\n%s", stderr)
	}
	secret, err := tokens.Parse(m[1])
	if err != nil || secret.Kind != tokens.KindService {
		t.Errorf("bootstrap token %q: %v", m[1], err)
	}
	if strings.Count(stderr, m[1]) != 1 {
		t.Errorf("the bootstrap token is printed %d times, want once", strings.Count(stderr, m[1]))
	}
	for _, want := range []string{"Save it now", "platform.users", "platform.groups", "platform.tokens", "Token ID: tok_",
		`"msg":"listening","listener":"management","addr":"` + s.addrs["management"] + `"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if err := s.stop(); err != nil {
		t.Errorf("serve returned %v after a graceful stop", err)
	}
	if !strings.Contains(s.stderr.String(), `"msg":"scimgate stopped"`) {
		t.Errorf("no stop logged:\n%s", s.stderr)
	}

	// The CLI sees the bootstrap org and token.
	var toks []tokenView
	c.okJSON(&toks, "service-token", "list", "--org", "default")
	if len(toks) != 1 || toks[0].Name != "bootstrap" || toks[0].DisplayPrefix != m[1][:8] ||
		strings.Join(toks[0].PermissionSets, ",") != "platform.groups,platform.tokens,platform.users" {
		t.Errorf("service tokens of org default = %+v", toks)
	}

	// A second start bootstraps nothing.
	s = startServe(t, c.dsn, nil)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.stderr.String(), "sgs_") {
		t.Errorf("second start printed a token:\n%s", s.stderr)
	}
}

func TestServeBootstrapTokenFromEnvironment(t *testing.T) {
	dsn := sqltest.SQLitePath(t)
	secret := tokens.NewSecret(tokens.KindService).Plaintext()
	s := startServe(t, dsn, map[string]string{"SCIMGATE_BOOTSTRAP_TOKEN": secret})
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	stderr := s.stderr.String()
	if strings.Contains(stderr, secret) || strings.Contains(stderr, secret[8:]) {
		t.Errorf("serve printed the configured bootstrap token:\n%s", stderr)
	}
	if !strings.Contains(stderr, "from the configured bootstrap_token (SCIMGATE_BOOTSTRAP_TOKEN)") {
		t.Errorf("serve did not say it used the configured token:\n%s", stderr)
	}
	c := &testCLI{t: t, dsn: dsn}
	var toks []tokenView
	c.okJSON(&toks, "service-token", "list", "--org", "default")
	if len(toks) != 1 || toks[0].DisplayPrefix != secret[:8] {
		t.Errorf("service tokens of org default = %+v, want the configured one", toks)
	}
}

func TestServeCheckConfig(t *testing.T) {
	dir := t.TempDir()
	dsn := filepath.Join(dir, "never", "scimgate.db")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int // 0: "config ok"
		want string
	}{
		{"ok", []string{"--upstream", "http://127.0.0.1:9000"}, nil, 0, ""},
		{"upstream from env", nil, map[string]string{"SCIMGATE_UPSTREAM": "https://api.internal"}, 0, ""},
		{"no upstream", nil, nil, exitUsage, "config: proxy.upstream: required to serve"},
		{"bad upstream", []string{"--upstream", "ftp://x"}, nil, exitUsage, `config: proxy.upstream: "ftp://x" is not an http or https URL`},
		{"bad listen", []string{"--upstream", "http://x", "--listen", "8080"}, nil, exitUsage, `config: proxy.listen: "8080" is not host:port`},
		{"bad file", []string{"--upstream", "http://x", "--config", writeConfig(t, "auth:\n  cache_ttl: 5\n")}, nil, exitUsage, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"scimgate", "serve", "--check-config", "--database", dsn}, tt.args...)
			err := run(context.Background(), args, envMap(tt.env), &out, &errOut)
			if tt.code == 0 {
				if err != nil || out.String() != "config ok\n" {
					t.Errorf("serve --check-config = %v, printed %q; want config ok", err, out.String())
				}
				return
			}
			if err == nil || exitCode(err) != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve --check-config = %v (exit %d), want exit %d: %s", err, exitCode(err), tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Dir(dsn)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--check-config touched the database directory: %v", err)
	}
}

// A port in use fails the start, naming the listener. The test takes the
// port itself (never assuming one is free) and gives the other listener :0.
func TestServeListenerInUse(t *testing.T) {
	for _, name := range []string{"proxy", "management"} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			proxyAddr, managementAddr := "127.0.0.1:0", "127.0.0.1:0"
			if name == "proxy" {
				proxyAddr = ln.Addr().String()
			} else {
				managementAddr = ln.Addr().String()
			}
			var out, errOut bytes.Buffer
			err = run(context.Background(), []string{"scimgate", "serve", "--database", newSQLiteDB(t), "--upstream", "http://x",
				"--listen", proxyAddr, "--management-listen", managementAddr}, noEnv, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), name+" listener") || !strings.Contains(err.Error(), "address already in use") || exitCode(err) != exitError {
				t.Errorf("serve with the %s port in use = %v (exit %d), want a %s listener error, exit 1", name, err, exitCode(err), name)
			}
		})
	}
}

type fakePinger struct{ err error }

func (p fakePinger) Ping(context.Context) error { return p.err }

func TestReadyz(t *testing.T) {
	tests := []struct {
		err      error
		code     int
		wantBody string
	}{
		{nil, http.StatusOK, "ready\n"},
		{errors.New("ping postgres database: connection refused\ndetails"), http.StatusServiceUnavailable, "not ready: ping postgres database: connection refused\n"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		managementRoutes(fakePinger{tt.err}, nil, nil, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != tt.code || rec.Body.String() != tt.wantBody {
			t.Errorf("GET /readyz with ping error %v = %d %q, want %d %q", tt.err, rec.Code, rec.Body, tt.code, tt.wantBody)
		}
	}

	// A closed store is not ready.
	store := sqltest.Open(t, sqlstore.SQLite)
	store.Close()
	rec := httptest.NewRecorder()
	managementRoutes(store, nil, nil, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with a closed store = %d, want 503", rec.Code)
	}
}

// The log is JSON, one object per line, at the configured level.
func TestServeLogsJSON(t *testing.T) {
	s := startServe(t, sqltest.SQLitePath(t), map[string]string{"SCIMGATE_LOG_LEVEL": "warn"})
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(s.stderr.String()) {
		if strings.HasPrefix(line, "{") {
			var entry map[string]any
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Errorf("log line %q is not JSON: %v", line, err)
			}
			if entry["level"] == "INFO" {
				t.Errorf("an info line at level warn: %s", line)
			}
		}
	}
}

// Replicas that start together on one database bootstrap it once.
func TestServeConcurrentBootstrap(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			c := newTestCLI(t, dialect)
			// Migrations first: sqlstore does not serialize the first
			// migration of a fresh SQLite file across processes (reported).
			c.ok("migrate")
			const replicas = 4
			servers := make([]*runningServe, replicas)
			errs := make([]error, replicas)
			var wg sync.WaitGroup
			for i := range servers {
				wg.Go(func() { servers[i], errs[i] = tryStartServe(t, c.dsn, nil) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			printed := 0
			for _, s := range servers {
				if err := s.stop(); err != nil {
					t.Errorf("a replica failed: %v\n%s", err, s.stderr)
				}
				printed += len(bannerToken.FindAllString(s.stderr.String(), -1))
			}
			if printed != 1 {
				t.Errorf("%d replicas printed a bootstrap token, want 1", printed)
			}
			var toks []tokenView
			c.okJSON(&toks, "service-token", "list", "--org", "default")
			if len(toks) != 1 {
				t.Errorf("org default has %d service tokens, want 1", len(toks))
			}
		})
	}
}
