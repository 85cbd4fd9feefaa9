package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// recordingUpstream is a real upstream that keeps the headers of the last
// request it got.
type recordingUpstream struct {
	*httptest.Server
	mu      sync.Mutex
	headers http.Header
	hits    int
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers, u.hits = r.Header.Clone(), u.hits+1
		u.mu.Unlock()
		io.WriteString(w, "upstream says hi")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.headers
}

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

// proxyGet sends GET url through the proxy with a bearer token (none if
// empty) and extra headers, and returns the status and, for a refusal, its
// reason.
func proxyGet(t *testing.T, client *http.Client, url, token string, extra http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range extra {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Reason
}

// TestProxyEndToEnd runs scimgate serve in front of a real upstream and
// changes tokens with the CLI, which opens its own connection to the
// database as another process would: the running server learns of each
// change through the change log alone.
func TestProxyEndToEnd(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			c := newTestCLI(t, dialect)
			up := newRecordingUpstream(t)

			c.ok("org", "create", "--name", "acme")
			c.ok("user", "create", "--org", "acme", "--user-name", "alice")
			var userTok, svcTok, spare createdToken
			c.okJSON(&userTok, "user-token", "create", "--org", "acme", "--user", "alice", "--name", "laptop")
			c.okJSON(&svcTok, "service-token", "create", "--org", "acme", "--name", "billing")
			c.okJSON(&spare, "user-token", "create", "--org", "acme", "--user", "alice", "--name", "spare")

			s := startServe(t, c.dsn, nil, "--upstream", up.URL)
			gate := "http://" + s.addrs["proxy"] + "/orders"
			call := func(token string) (int, string) {
				return proxyGet(t, http.DefaultClient, gate, token, http.Header{"X-Scimgate-Name": {"mallory"}})
			}
			for _, tc := range []struct{ token, name, kind string }{
				{userTok.Token, "alice", "user"}, {svcTok.Token, "billing", "service"}, {spare.Token, "alice", "user"},
			} {
				if code, _ := call(tc.token); code != 200 {
					t.Fatalf("%s token: status %d, want 200", tc.kind, code)
				}
				seen := up.last()
				name, kind, auth := seen.Get("X-Scimgate-Name"), seen.Get("X-Scimgate-Kind"), seen.Get("Authorization")
				if name != tc.name || kind != tc.kind || auth != "" {
					t.Errorf("upstream saw name %q kind %q authorization %q, want %q %q and none", name, kind, auth, tc.name, tc.kind)
				}
			}

			// Each change by "another process" must be refused within a second.
			refusedWithin := func(what, token, reason string) {
				t.Helper()
				start := time.Now()
				for {
					code, got := call(token)
					if code == 401 && got == reason {
						t.Logf("%s: %s refused after %v", dialect, what, time.Since(start).Round(time.Millisecond))
						return
					}
					if time.Since(start) > time.Second {
						t.Fatalf("%s: still %d %q a second after the CLI changed it, want 401 %q", what, code, got, reason)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			c.ok("service-token", "revoke", svcTok.ID)
			refusedWithin("revoked service token", svcTok.Token, "revoked")
			c.ok("user-token", "delete", spare.ID)
			refusedWithin("deleted user token", spare.Token, "unknown")
			c.ok("user", "deactivate", "--org", "acme", "--user", "alice")
			refusedWithin("deactivated owner's token", userTok.Token, "owner_deactivated")

			// Uses are flushed at shutdown.
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			var toks []tokenView
			c.okJSON(&toks, "service-token", "list", "--org", "acme")
			if len(toks) != 1 || toks[0].LastUsedAt == nil {
				t.Errorf("after shutdown the service token's last use is not stored: %+v", toks)
			}
		})
	}
}

// TestProxyHoldsOffSlowAndOversizedClients checks the proxy listener's limits
// on the real server: a client trickling its headers is cut off after
// read_header_timeout, and oversized headers get a 431, neither reaching the
// upstream.
func TestProxyHoldsOffSlowAndOversizedClients(t *testing.T) {
	up := newRecordingUpstream(t)
	config := filepath.Join(t.TempDir(), "scimgate.yaml")
	os.WriteFile(config, []byte("proxy:\n  read_header_timeout: 300ms\n  max_header_bytes: 4096\n"), 0o600)
	s := startServe(t, sqltest.SQLitePath(t), nil, "--config", config, "--upstream", up.URL)

	conn, err := net.Dial("tcp", s.addrs["proxy"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "GET /orders HTTP/1.1\r\nHost: x\r\n") // and then nothing
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, conn) // returns when the server closes the connection
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("a client that never finished its headers was held for %v, want about 300ms", waited)
	}

	req, _ := http.NewRequest("GET", "http://"+s.addrs["proxy"]+"/orders", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: status %d, want 431", resp.StatusCode)
	}
	if n := up.count(); n != 0 {
		t.Errorf("%d slow or oversized requests reached the upstream", n)
	}
}
