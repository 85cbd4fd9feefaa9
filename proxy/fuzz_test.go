package proxy_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/scimgate/scimgate/proxy"
)

// The fuzz targets of the canonical request and the header cleaner. Their
// seed corpora are in testdata/fuzz/<target>; run one with
//
//	go test ./proxy -run '^$' -fuzz FuzzCanonicalPath -fuzztime 30s

// FuzzCanonicalPath checks what the canonical form promises, whatever the
// path: the path the rules match is the path the upstream reads, even an
// upstream that resolves dot segments, merges slashes or decodes once more;
// and the canonical form is a fixed point.
func FuzzCanonicalPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string, semicolons bool) {
		decoded, sent, err := proxy.CanonicalPath(raw, semicolons)
		if err != nil {
			return
		}
		if !strings.HasPrefix(decoded, "/") || !strings.HasPrefix(sent, "/") {
			t.Fatalf("CanonicalPath(%q) = %q, %q: not rooted", raw, decoded, sent)
		}
		// What the upstream reads, decoding what it was sent.
		read, uerr := url.PathUnescape(sent)
		if uerr != nil || read != decoded {
			t.Fatalf("CanonicalPath(%q): sends %q, which reads as %q (%v), but the rules matched %q", raw, sent, read, uerr, decoded)
		}
		u := &url.URL{Path: decoded, RawPath: sent}
		if parsed, err := url.ParseRequestURI(u.EscapedPath()); err != nil || parsed.Path != decoded {
			t.Fatalf("CanonicalPath(%q): forwarded as %q, parsed by the upstream as %v (%v), want %q", raw, u.EscapedPath(), parsed, err, decoded)
		}
		// An upstream that normalises again finds nothing to change.
		clean := path.Clean(decoded)
		if clean != decoded && clean+"/" != decoded {
			t.Fatalf("CanonicalPath(%q) = %q, which path.Clean makes %q", raw, decoded, clean)
		}
		if strings.ContainsAny(decoded, "\\\x00") || !utf8.ValidString(decoded) {
			t.Fatalf("CanonicalPath(%q) = %q: a backslash, NUL or invalid UTF-8 got through", raw, decoded)
		}
		for i := 0; i < len(decoded); i++ {
			if c := decoded[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("CanonicalPath(%q) = %q: a control character got through", raw, decoded)
			}
		}
		if !semicolons && strings.Contains(decoded, ";") {
			t.Fatalf("CanonicalPath(%q) = %q: a semicolon got through", raw, decoded)
		}
		// An upstream that decodes twice reads the same path.
		if twice, err := url.PathUnescape(decoded); err == nil && twice != decoded {
			t.Fatalf("CanonicalPath(%q) = %q, which a second decoding makes %q", raw, decoded, twice)
		}
		// A fixed point.
		again, againSent, err := proxy.CanonicalPath(sent, semicolons)
		if err != nil || again != decoded || againSent != sent {
			t.Fatalf("CanonicalPath(%q) = %q, %q; of that: %q, %q, %v", raw, decoded, sent, again, againSent, err)
		}
	})
}

// protectedHeader is the test's own list of the headers no client value of
// which may reach the upstream: scimgate's identity headers and
// assertion, other auth proxies' identity headers, the forwarding headers,
// the overrides and cloud identity headers of DefaultStripHeaders, in any
// case and with "_" for "-".
func protectedHeader(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	if strings.HasPrefix(n, "x-scimgate-") {
		return true
	}
	switch n {
	case "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username",
		"x-forwarded-access-token", "x-auth-request-user", "x-auth-request-email", "x-auth-request-groups",
		"x-auth-request-preferred-username", "x-auth-request-access-token", "x-remote-user", "x-remote-email",
		"x-remote-groups", "remote-user", "x-webauth-user", "x-pomerium-jwt-assertion", "x-forwarded-for",
		"x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-forwarded-prefix", "x-real-ip", "forwarded",
		"x-client-ip", "client-ip", "true-client-ip", "x-cluster-client-ip", "cf-connecting-ip", "fastly-client-ip",
		"x-original-forwarded-for":
		return true
	}
	for _, s := range proxy.DefaultStripHeaders {
		s = strings.ToLower(s)
		if p, ok := strings.CutSuffix(s, "*"); ok && strings.HasPrefix(n, p) || n == s {
			return true
		}
	}
	return false
}

// captureTransport is an upstream reached without a network: it writes the
// outgoing request as it would go on the wire and reads it back as an
// upstream server would.
type captureTransport struct {
	got *http.Request
}

func (c *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil, err
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		return nil, err
	}
	c.got = got
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
}

// FuzzProxyRequest sends whatever request the fuzzer makes (a request
// target, one header of its choosing and a Connection header) with a valid
// token through the real handler, and checks that the rules decided on the
// path the upstream received, that no identity header the client sent
// reaches the upstream, and that every identity header scimgate sets does.
func FuzzProxyRequest(f *testing.F) {
	fx := newFixture(f, "sqlite", proxy.Options{})
	capture := &captureTransport{}
	p, err := proxy.New(fx.auth, proxy.Options{
		Upstream:     fx.proxyUpstream(),
		HeaderPrefix: "X-Scimgate-",
		Transport:    capture,
		Routes:       []proxy.Route{{PathPrefix: "/admin", Permission: "orders.write"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	var decidedMethod, decidedPath string
	p.OnDecide(func(method, path string) { decidedMethod, decidedPath = method, path })
	want := map[string]string{
		"X-Scimgate-Kind": "service", "X-Scimgate-Id": "", "X-Scimgate-Name": "billing-sync", "X-Scimgate-Org": "acme",
		"X-Scimgate-Token-Id": fx.svcID, "X-Scimgate-Permissions": "orders.read",
	}
	f.Fuzz(func(t *testing.T, method, target, name, value, connection string) {
		head := method + " " + target + " HTTP/1.1\r\nHost: gate.test\r\nAuthorization: Bearer " + fx.svcTok + "\r\n" +
			name + ": " + value + "\r\nConnection: " + connection + "\r\n\r\n"
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			return // the server refuses it before the proxy sees it
		}
		req.RemoteAddr = "192.0.2.1:1234"
		req.RequestURI = target
		capture.got, decidedMethod, decidedPath = nil, "", ""
		rec := &nopWriter{header: http.Header{}}
		p.ServeHTTP(rec, req)
		got := capture.got
		if got == nil {
			return // refused
		}
		if decidedPath == "" || got.URL.Path != decidedPath || got.Method != decidedMethod {
			t.Fatalf("%s %s: the rules decided on %s %q, the upstream received %s %q", method, target, decidedMethod, decidedPath, got.Method, got.URL.Path)
		}
		if hasPathPrefixFold(got.URL.Path, "/admin") {
			t.Fatalf("%s %s: reached %q without orders.write", method, target, got.URL.Path)
		}
		for k, vs := range got.Header {
			if !protectedHeader(k) {
				continue
			}
			w, ours := want[k]
			switch {
			case k == "X-Forwarded-For":
				w, ours = "192.0.2.1", true
			case k == "X-Forwarded-Host":
				w, ours = req.Host, true
			case k == "X-Forwarded-Proto":
				w, ours = "http", true
			}
			if !ours || len(vs) != 1 || (w != "" && vs[0] != w) {
				t.Fatalf("header %q: %q with Connection %q: the upstream got %s: %q", name, value, connection, k, vs)
			}
		}
		for k, w := range want {
			if v := got.Header.Get(k); v == "" || w != "" && v != w {
				t.Fatalf("header %q: %q with Connection %q: the upstream got %s %q, want %q", name, value, connection, k, v, w)
			}
		}
	})
}

// hasPathPrefixFold reports whether p is under prefix, a lower-case ASCII
// path, as an upstream that ignores case reads it: lower-cased, or
// upper-cased (where the dotless ı is I).
func hasPathPrefixFold(p, prefix string) bool {
	under := func(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
	return under(strings.ToLower(p), prefix) || under(strings.ToUpper(p), strings.ToUpper(prefix))
}

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ header http.Header }

func (w *nopWriter) Header() http.Header         { return w.header }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}
