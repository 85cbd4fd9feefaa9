package proxy_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/scimgate/scimgate/proxy"
)

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the logged records whose message starts with msg.
func (l *logBuffer) lines(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec["msg"].(string), msg) {
			out = append(out, rec)
		}
	}
	return out
}

func TestStoreOutageIsLoggedOnceNotPerRequest(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	logs := &logBuffer{}
	addr, _ := front(t, f, proxy.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	f.store.Close()
	for range 50 {
		// Not cached: every request asks the store, which is down.
		if status, reason := send(t, addr, "GET /orders HTTP/1.1\nHost: x\nAuthorization: Bearer "+f.userTok, ""); status != 503 {
			t.Fatalf("store down: status %d %s, want 503", status, reason)
		}
	}
	if got := logs.lines("authenticate: store unavailable"); len(got) != 1 {
		t.Errorf("50 requests during an outage wrote %d error lines, want 1 (and a count later)", len(got))
	}
}

func TestBodyErrorsAreClientErrors(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	logs := &logBuffer{}
	addr, up := front(t, f, proxy.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	for range 5 {
		status, _ := send(t, addr, "POST /orders HTTP/1.1\nHost: x\nAuthorization: Bearer "+f.svcTok+"\nTransfer-Encoding: chunked", "zz\r\n")
		if status != 400 {
			t.Fatalf("malformed body: status %d, want 400", status)
		}
	}
	up.take()
	if got := logs.lines("upstream"); len(got) != 0 {
		t.Errorf("a client's malformed body was logged as an upstream failure: %v", got)
	}
	got := logs.lines("client error")
	if len(got) != 1 || got[0]["level"] != "INFO" || got[0]["reason"] != "malformed_body" {
		t.Errorf("5 malformed bodies logged as %v, want one INFO client error with reason malformed_body", got)
	}
}

func TestProxyOptionsRefused(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	u, _ := url.Parse(f.up.URL)
	for _, opts := range []proxy.Options{
		{PublicPaths: []string{"/public/../admin"}},
		{PublicPaths: []string{"//public"}},
		{PublicPaths: []string{"public"}},
		{PublicPaths: []string{"/a%20b"}},
		{Routes: []proxy.Route{{PathPrefix: "/admin;x", Permission: "orders.write"}}},
		{Routes: []proxy.Route{{PathPrefix: "/admin", Methods: []string{"post"}, Permission: "orders.write"}}},
		{Methods: []string{"GET", "get"}},
		{StripHeaders: []string{"X Bad"}},
		{StripHeaders: []string{"*"}},
	} {
		opts.Upstream, opts.HeaderPrefix = u, "X-Scimgate-"
		if _, err := proxy.New(f.auth, opts); err == nil {
			t.Errorf("New accepted %+v", opts)
		}
	}
}
