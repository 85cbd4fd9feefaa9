package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// gatedForwarder is a TCP forwarder to a real server that refuses every
// connection until opened: a database that is not up yet.
type gatedForwarder struct {
	ln     net.Listener
	target string
	open   atomic.Bool
	wg     sync.WaitGroup
}

func newGatedForwarder(t *testing.T, target string) *gatedForwarder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedForwarder{ln: ln, target: target}
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !g.open.Load() {
				c.Close()
				continue
			}
			g.wg.Go(func() { g.forward(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); g.wg.Wait() })
	return g
}

func (g *gatedForwarder) forward(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// TestServeWaitsForDatabase: with PostgreSQL not reachable yet, serve binds
// its listeners, says why it is not ready (503 on /readyz, the proxy and
// SCIM; 200 on /healthz) and logs it; once the database answers it starts.
// Stopped while it waits, it stops cleanly.
func TestServeWaitsForDatabase(t *testing.T) {
	if os.Getenv(sqltest.EnvPostgresDSN) == "" {
		t.Skip(sqltest.EnvPostgresDSN + " not set: the PostgreSQL start-up test is skipped")
	}
	dsn := sqltest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, stopEarly := range []bool{false, true} {
		t.Run(fmt.Sprintf("stopped while waiting=%v", stopEarly), func(t *testing.T) {
			fwd := newGatedForwarder(t, u.Host)
			gated := *u
			gated.Host = fwd.ln.Addr().String()
			s, err := startServeListening(t, gated.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			mgmt := "http://" + s.addrs["management"]
			waitUntil(t, 10*time.Second, func() bool {
				code, body, _ := tryGet(mgmt + "/readyz")
				return code == http.StatusServiceUnavailable && strings.Contains(body, "not ready: starting: waiting for the database: open postgres database")
			})
			if code, _, _ := tryGet(mgmt + "/healthz"); code != http.StatusOK {
				t.Errorf("/healthz while waiting for the database = %d, want 200", code)
			}
			if code, body, _ := tryGet("http://" + s.addrs["proxy"] + "/x"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"reason":"starting"`) {
				t.Errorf("the proxy while waiting for the database = %d %s, want 503 reason starting", code, body)
			}
			if code, body, _ := tryGet(mgmt + "/scim/v2/Users"); code != http.StatusServiceUnavailable || !strings.Contains(body, "urn:ietf:params:scim:api:messages:2.0:Error") {
				t.Errorf("SCIM while waiting for the database = %d %s, want a SCIM 503", code, body)
			}
			if !strings.Contains(s.stderr.String(), `"msg":"waiting for the database: /readyz answers 503 until it is reached"`) {
				t.Errorf("no log line says serve waits for the database:\n%s", s.stderr)
			}
			if stopEarly {
				if err := s.stop(); err != nil {
					t.Errorf("serve stopped while waiting for the database: %v, want no error", err)
				}
				return
			}
			fwd.open.Store(true)
			waitUntil(t, 15*time.Second, func() bool {
				code, _, _ := tryGet(mgmt + "/readyz")
				return code == http.StatusOK
			})
			if !strings.Contains(s.stderr.String(), `"msg":"database reached"`) {
				t.Errorf("no log line says the database was reached:\n%s", s.stderr)
			}
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func waitUntil(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
	}
}

// TestReadyzDuringShutdown: from the moment serve is asked to stop, /readyz
// answers 503 while requests are still served for shutdown_delay, so that a
// load balancer drains the replica before its listeners close.
func TestReadyzDuringShutdown(t *testing.T) {
	up := newRecordingUpstream(t)
	boot := tokens.NewSecret(tokens.KindService).Plaintext()
	s := startServe(t, newSQLiteDB(t), map[string]string{"SCIMGATE_BOOTSTRAP_TOKEN": boot},
		"--upstream", up.URL, "--config", writeConfig(t, "shutdown_delay: 3s\n"))
	proxyURL := "http://" + s.addrs["proxy"] + "/orders"
	if code, _ := proxyGet(t, http.DefaultClient, proxyURL, boot, nil); code != http.StatusOK {
		t.Fatalf("before shutdown: %d", code)
	}
	stopped := make(chan error, 1)
	began := time.Now()
	go func() { stopped <- s.stop() }()
	waitUntil(t, 2*time.Second, func() bool {
		code, body, _ := tryGet(s.readyzURL())
		return code == http.StatusServiceUnavailable && body == "not ready: shutting down\n"
	})
	if code, _ := proxyGet(t, http.DefaultClient, proxyURL, boot, nil); code != http.StatusOK {
		t.Errorf("during shutdown_delay the proxy answered %d, want the request served", code)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 3*time.Second {
		t.Errorf("serve stopped %v after it was asked to, before shutdown_delay (3s)", took)
	}
}

// TestReadyzWhenStoreCannotBeWritten fills the SQLite database (a
// max_page_count makes SQLite answer SQLITE_FULL, as on a full disk): the
// failed write makes /readyz 503, naming the reason.
func TestReadyzWhenStoreCannotBeWritten(t *testing.T) {
	path := newSQLiteDB(t)
	boot := tokens.NewSecret(tokens.KindService).Plaintext()
	st, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := st.DB().Get(&pages, "PRAGMA page_count"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	s := startServe(t, fmt.Sprintf("%s?_pragma=max_page_count(%d)", path, pages+30), map[string]string{"SCIMGATE_BOOTSTRAP_TOKEN": boot})
	scimURL := "http://" + s.addrs["management"] + "/scim/v2/Users"
	full := false
	for i := 0; i < 500 && !full; i++ {
		// 3 kB each, in a name (a displayName is at most 1 kB: it is indexed).
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"user-%d","name":{"givenName":%q}}`, i, strings.Repeat("x", 3000))
		req, _ := http.NewRequest("POST", scimURL, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+boot)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
		case http.StatusServiceUnavailable:
			full = true
		default:
			t.Fatalf("SCIM create user %d: %d, want 201 until the database is full, then 503", i, resp.StatusCode)
		}
	}
	if !full {
		t.Fatal("the database never filled up")
	}
	code, body, _ := tryGet(s.readyzURL())
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready: the database cannot be written") || !strings.Contains(body, "full") {
		t.Errorf("/readyz after a write failed on a full database = %d %q, want 503 saying it cannot be written", code, body)
	}
}

// TestDatabaseMustExist: a mistyped database path is an error naming it,
// not a new empty database; only migrate, and serve on its default path,
// create one.
func TestDatabaseMustExist(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo", "scimgate.db")
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--database", missing, "org", "list"}, nil, "database " + missing + " does not exist: check the path; to create an empty database there, run \"scimgate migrate --database " + missing + "\""},
		{[]string{"org", "list"}, map[string]string{"SCIMGATE_DATABASE": missing}, "database " + missing + " does not exist"},
		{[]string{"org", "list"}, map[string]string{"SCIMGATE_DATA_DIR": filepath.Join(dir, "typo")}, "no database at " + missing},
		{[]string{"--database", missing, "serve", "--upstream", "http://x", "--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0"}, nil, "database " + missing + " does not exist"},
		{[]string{"--database", ":memory:", "org", "list"}, nil, "an in-memory database lives only as long as one process"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"scimgate"}, tt.args...), envMap(tt.env), &out, &errOut)
		if err == nil || exitCode(err) != exitUsage || !strings.Contains(errorMessage(err), tt.want) {
			t.Errorf("scimgate %s = %v (exit %d), want exit 2: %s", strings.Join(tt.args, " "), err, exitCode(err), tt.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "typo")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("scimgate %s created the directory of the missing database", strings.Join(tt.args, " "))
		}
	}
	for _, dir := range []string{filepath.Join(t.TempDir(), "a", "b"), filepath.Join(t.TempDir(), ":memory:")} {
		t.Chdir(t.TempDir())
		var out bytes.Buffer
		if err := run(context.Background(), []string{"scimgate", "--database", filepath.Join(dir, "new.db"), "migrate"}, noEnv, &out, &out); err != nil {
			t.Errorf("migrate on a new path: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "new.db")); err != nil {
			t.Errorf("migrate did not create the database: %v", err)
		}
	}
	// serve creates its default database in data_dir.
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServeListening2(t, map[string]string{"SCIMGATE_DATA_DIR": dataDir})
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "scimgate.db")); err != nil {
		t.Errorf("serve did not create <data_dir>/scimgate.db: %v", err)
	}
}

// startServeListening2 starts serve without --database and waits until it
// is ready.
func startServeListening2(t *testing.T, env map[string]string) *runningServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan string, 4)
	ctx = withListenHook(ctx, func(name string, addr net.Addr) {
		if name == "management" {
			bound <- addr.String()
		}
	})
	s := &runningServe{addrs: map[string]string{}, stderr: &syncBuffer{}}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"scimgate", "serve", "--upstream", "http://127.0.0.1:9", "--listen", "127.0.0.1:0",
			"--management-listen", "127.0.0.1:0"}, envMap(env), io.Discard, s.stderr)
	}()
	s.stop = func() error { cancel(); return <-done }
	select {
	case s.addrs["management"] = <-bound:
	case err := <-done:
		t.Fatalf("serve stopped: %v\n%s", err, s.stderr)
	}
	waitUntil(t, 30*time.Second, func() bool { code, _, _ := tryGet(s.readyzURL()); return code == http.StatusOK })
	return s
}

// TestServeInMemory: ":memory:" is a database in memory, not a file of that
// name, and serve works on it.
func TestServeInMemory(t *testing.T) {
	t.Chdir(t.TempDir())
	boot := tokens.NewSecret(tokens.KindService).Plaintext()
	up := newRecordingUpstream(t)
	s, err := startServeListening(t, ":memory:", map[string]string{"SCIMGATE_BOOTSTRAP_TOKEN": boot}, "--upstream", up.URL)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, func() bool { code, _, _ := tryGet(s.readyzURL()); return code == http.StatusOK })
	if code, _ := proxyGet(t, http.DefaultClient, "http://"+s.addrs["proxy"]+"/x", boot, nil); code != http.StatusOK {
		t.Errorf("the bootstrap token through the proxy on an in-memory database: %d, want 200", code)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir("."); len(entries) > 0 {
		t.Errorf("serve on :memory: left %s in the working directory", entries[0].Name())
	}
	if !strings.Contains(s.stderr.String(), "the database is in memory") {
		t.Errorf("no warning that the database is in memory:\n%s", s.stderr)
	}
}

// TestVersion: version and --version print the build information; the
// real binary, built from a checkout, names its VCS revision.
func TestVersion(t *testing.T) {
	c := newTestCLI(t, sqlstore.SQLite)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := c.ok(args...)
		if !strings.HasPrefix(out, "scimgate ") || !strings.HasSuffix(out, " "+runtime.Version()+"\n") {
			t.Errorf("scimgate %s printed %q, want \"scimgate <version> … %s\"", args[0], out, runtime.Version())
		}
	}
	var b buildInfo
	c.okJSON(&b, "version")
	if b.Version == "" || b.GoVersion != runtime.Version() {
		t.Errorf("version --json = %+v", b)
	}

	if testing.Short() {
		t.Skip("builds the binary")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not found: the VCS stamp is not checked")
	}
	revision, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not a git checkout: the VCS stamp is not checked")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: the VCS stamp is not checked")
	}
	bin := filepath.Join(t.TempDir(), "scimgate")
	build := exec.Command(goCmd, "build", "-buildvcs=true", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	if b.Revision == "" {
		t.Skip("the go command found no VCS information (a git worktree?): the stamp is not checked")
	}
	if b.Revision != strings.TrimSpace(string(revision)) {
		t.Errorf("version --json revision %q, want %s", b.Revision, revision)
	}
}

// TestJSONErrors: with --json, an error is one JSON object on stderr, and
// nothing else is written there.
func TestJSONErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary")
	}
	dsn := newSQLiteDB(t)
	tests := []struct {
		args []string
		code int
		kind string
		msg  string
	}{
		{[]string{"user", "list", "--org", "initech", "--json"}, exitNotFound, "not_found", `org "initech" not found`},
		{[]string{"--json", "frobnicate"}, exitUsage, "usage", `unknown command "frobnicate"`},
		{[]string{"org", "list", "--bogus", "--json"}, exitUsage, "usage", "flag provided but not defined: -bogus"},
		{[]string{"--json", "org", "list", "--database", "/nonexistent/x.db"}, exitUsage, "usage", "database /nonexistent/x.db does not exist"},
		{[]string{"--json", "org", "list", "--database", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, exitError, "unavailable", "open postgres database"},
	}
	for _, tt := range tests {
		cmd := exec.Command(os.Args[0], append([]string{"--database", dsn}, tt.args...)...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tt.code {
			t.Errorf("scimgate %s: %v, want exit %d", strings.Join(tt.args, " "), err, tt.code)
		}
		var got struct {
			Error    string `json:"error"`
			Code     string `json:"code"`
			ExitCode int    `json:"exit_code"`
		}
		dec := json.NewDecoder(&errOut)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil || dec.More() {
			t.Errorf("scimgate %s: stderr is not one JSON object: %v\n%s", strings.Join(tt.args, " "), err, errOut.String())
			continue
		}
		if got.Code != tt.kind || got.ExitCode != tt.code || !strings.Contains(got.Error, tt.msg) {
			t.Errorf("scimgate %s: %+v, want code %q, exit %d, error containing %q", strings.Join(tt.args, " "), got, tt.kind, tt.code, tt.msg)
		}
	}
}

// TestShutdownFlushAfterLostConnections: the last uses are written at
// shutdown even when PostgreSQL closed every connection just before, and
// nothing is logged as lost.
func TestShutdownFlushAfterLostConnections(t *testing.T) {
	if os.Getenv(sqltest.EnvPostgresDSN) == "" {
		t.Skip(sqltest.EnvPostgresDSN + " not set: the PostgreSQL shutdown test is skipped")
	}
	c := newTestCLI(t, sqlstore.Postgres)
	c.ok("org", "create", "--name", "acme")
	var tok createdToken
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "flushed")
	up := newRecordingUpstream(t)
	appName := "scimgate_flush_" + strings.ToLower(tokens.NewID("t"))[2:12]
	s := startServe(t, c.dsn+"&application_name="+appName, nil, "--upstream", up.URL)
	for range 5 {
		if code, _ := proxyGet(t, http.DefaultClient, "http://"+s.addrs["proxy"]+"/x", tok.Token, nil); code != 200 {
			t.Fatalf("proxied: %d", code)
		}
	}
	admin, err := sqlstore.Open(context.Background(), c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var killed int
	if err := admin.DB().Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, appName); err != nil || killed == 0 {
		t.Fatalf("terminated %d connections: %v", killed, err)
	}
	time.Sleep(50 * time.Millisecond) // the backends exit
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if logs := s.stderr.String(); regexp.MustCompile(`flush last-used times[^"]*(lost|not written)`).MatchString(logs) {
		t.Errorf("uses were lost at shutdown:\n%s", logs)
	}
	var toks []tokenView
	c.okJSON(&toks, "service-token", "list", "--org", "acme")
	if len(toks) != 1 || toks[0].UseCount != 5 || toks[0].LastUsedAt == nil {
		t.Errorf("after shutdown the token shows %d uses (last %v), want 5", toks[0].UseCount, toks[0].LastUsedAt)
	}
}

// TestRevocationMessages: what a revoking command says about the running
// servers is what holds: none running; one that does not confirm (a row
// that a server that died left behind) named, after the wait.
func TestRevocationMessages(t *testing.T) {
	c := newTestCLI(t, sqlstore.SQLite)
	c.ok("org", "create", "--name", "acme")
	var tok createdToken
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "a")
	if out := c.ok("service-token", "revoke", tok.ID); out != "revoked service token "+tok.ID+": no scimgate server is running on this database; any that starts refuses it\n" {
		t.Errorf("revoke with no server running printed %q", out)
	}

	st, err := sqlstore.Open(context.Background(), c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.ReportServer(context.Background(), sqlstore.Server{ID: "srv_gone", Host: "web-2", PID: 41, Version: "v1", StartedAt: now, SeenAt: now}); err != nil {
		t.Fatal(err)
	}
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "b")
	began := time.Now()
	out := c.ok("service-token", "revoke", tok.ID)
	if took := time.Since(began); took < confirmTimeout {
		t.Errorf("revoke returned after %v, before the %v wait for a server that did not confirm", took, confirmTimeout)
	}
	want := "revoked service token " + tok.ID + ": refused by 0 of the 1 scimgate servers running on this database; not confirmed within 3s by web-2 (pid 41, last heard from "
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "each refuses it once it reads the change log, and a server that cannot read the change log stops trusting its cached tokens auth.stale_after") {
		t.Errorf("revoke with a server that does not confirm printed\n%q, want it to start\n%q", out, want)
	}
	var done doneView
	c.okJSON(&done, "user", "create", "--org", "acme", "--user-name", "x") // unrelated: no wait
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "c")
	c.okJSON(&done, "service-token", "revoke", tok.ID)
	if done.Servers == nil || done.Servers.Servers != 1 || done.Servers.Applied != 0 || len(done.Servers.Pending) != 1 || done.Servers.Pending[0].Host != "web-2" {
		t.Errorf("revoke --json servers = %+v, want 1 server, 0 applied, web-2 pending", done.Servers)
	}
}
