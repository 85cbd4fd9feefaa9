package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimgate/scimgate/proxy"
)

// The regression tests of issue 9: each bypass found by attacking the proxy,
// sent byte for byte over a real connection to the real handler in front of
// a real upstream. Each of them passed before the fix.

// pathUpstream is an upstream that records the request target and headers
// of every request that reaches it.
type pathUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, target, path, body string
	header                     http.Header
}

func newPathUpstream(t testing.TB) *pathUpstream {
	u := &pathUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{r.Method, r.RequestURI, r.URL.Path, string(body), r.Header.Clone()})
		u.mu.Unlock()
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(u.Close)
	return u
}

// take returns the requests seen since the last call.
func (u *pathUpstream) take() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	seen := u.seen
	u.seen = nil
	return seen
}

// front is a proxy with opts, in front of a new pathUpstream, served over
// a real listener.
func front(t *testing.T, f *fixture, opts proxy.Options) (addr string, up *pathUpstream) {
	t.Helper()
	up = newPathUpstream(t)
	opts.Upstream, _ = url.Parse(up.URL)
	opts.HeaderPrefix = "X-Scimgate-"
	p, err := proxy.New(f.auth, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), up
}

// send writes a raw HTTP/1.1 request (head lines without the final blank
// line, then body) and returns the response's status and refusal reason.
func send(t *testing.T, addr, head, body string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n"+body)
	// The method tells ReadResponse whether a body follows (none for HEAD).
	method, _, _ := strings.Cut(head, " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: %v", head, err)
	}
	defer resp.Body.Close()
	var refusal struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&refusal)
	return resp.StatusCode, refusal.Reason
}

func TestBypassPublicPathNeighbours(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{PublicPaths: []string{"/public/"}})
	for _, target := range []string{
		"/public/../admin",
		"/public/%2e%2e/admin",
		"/public/%2E%2E/admin",
		"/public/.%2e/admin",
		"/public/..%2fadmin",
		"/public/..%5cadmin",
		`/public/..\admin`,
		"/public/..;/admin",
		"/public/%252e%252e/admin",
		"/public/%c0%ae%c0%ae/admin",
		"/public//../../admin",
		"/public/x/../../admin",
		"/PUBLIC/x",
		"/publicity",
		"/public",
	} {
		status, reason := send(t, addr, "GET "+target+" HTTP/1.1\nHost: x", "")
		if seen := up.take(); len(seen) > 0 {
			t.Errorf("GET %s without a token reached the upstream as %s (status %d)", target, seen[0].target, status)
		} else if status != 400 && status != 401 {
			t.Errorf("GET %s without a token = %d %s, want 400 or 401", target, status, reason)
		}
	}
	// The public path itself still passes, as the canonical path.
	for target, want := range map[string]string{
		"/public/status":         "/public/status",
		"//public//status":       "/public/status",
		"/public/a/../status":    "/public/status",
		"/public/%73tatus?x=%2F": "/public/status?x=%2F",
	} {
		status, _ := send(t, addr, "GET "+target+" HTTP/1.1\nHost: x", "")
		seen := up.take()
		if status != 200 || len(seen) != 1 || seen[0].target != want {
			t.Errorf("GET %s without a token = %d, upstream saw %v; want 200 and %s", target, status, seen, want)
		}
	}
}

func TestBypassRouteRule(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{Routes: []proxy.Route{{PathPrefix: "/admin", Permission: "orders.write"}}})
	auth := "Authorization: Bearer " + f.svcTok // orders.read only
	for _, target := range []string{
		"/admin",
		"//admin",
		"///admin/x",
		"/ADMIN",
		"/Admin/users",
		"/x/../admin",
		"/%2e%2e/admin",
		"/x/%2e%2e/admin",
		"/%61dmin",
		"/%41DMIN",
		"/admin;x=1",
		"/admin%3bx",
		"/admin/.",
		"/./admin",
		"/admin%2fusers",
		`/admin\users`,
		"/x/..;/admin",
	} {
		status, reason := send(t, addr, "GET "+target+" HTTP/1.1\nHost: x\n"+auth, "")
		if seen := up.take(); len(seen) > 0 {
			t.Errorf("GET %s without orders.write reached the upstream as %s", target, seen[0].target)
		} else if status != 400 && status != 403 {
			t.Errorf("GET %s without orders.write = %d %s, want 400 or 403", target, status, reason)
		}
	}
	// Prefixes end on a segment boundary: /administrator is not /admin.
	if status, _ := send(t, addr, "GET /administrator HTTP/1.1\nHost: x\n"+auth, ""); status != 200 || len(up.take()) != 1 {
		t.Errorf("GET /administrator = %d, want 200: /admin does not cover it", status)
	}
}

func TestBypassMethods(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{Routes: []proxy.Route{
		{PathPrefix: "/orders", Methods: []string{"POST", "DELETE"}, Permission: "orders.write"},
		{PathPrefix: "/reports", Methods: []string{"GET"}, Permission: "orders.write"},
	}})
	auth := "\nHost: x\nAuthorization: Bearer " + f.svcTok // orders.read only
	for _, tc := range []struct {
		request string
		want    int
	}{
		{"post /orders HTTP/1.1" + auth + "\nContent-Length: 0", 400},
		{"delete /orders/7 HTTP/1.1" + auth, 400},
		{"Post /orders HTTP/1.1" + auth + "\nContent-Length: 0", 400},
		{"POST /orders HTTP/1.1" + auth + "\nContent-Length: 0", 403},
		{"HEAD /reports HTTP/1.1" + auth, 403},
		{"GET /reports HTTP/1.1" + auth, 403},
		{"CONNECT /orders HTTP/1.1" + auth, 405},
		{"CONNECT upstream.internal:443 HTTP/1.1" + auth, 405},
		{"TRACE /orders HTTP/1.1" + auth, 405},
		{"PROPFIND /orders HTTP/1.1" + auth, 405},
		{"FOO /orders HTTP/1.1" + auth, 400},
		{"GETS /reports HTTP/1.1" + auth, 400},
	} {
		status, reason := send(t, addr, tc.request, "")
		if seen := up.take(); len(seen) > 0 {
			t.Errorf("%q reached the upstream as %s %s", tc.request, seen[0].method, seen[0].target)
		}
		if status != tc.want {
			t.Errorf("%q = %d %s, want %d", tc.request, status, reason, tc.want)
		}
	}
	// What the rules allow still passes.
	if status, _ := send(t, addr, "GET /orders/7 HTTP/1.1"+auth, ""); status != 200 || len(up.take()) != 1 {
		t.Errorf("GET /orders/7 = %d, want 200", status)
	}
}

func TestBypassMethodOverrideParameter(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{Routes: []proxy.Route{
		{PathPrefix: "/orders", Methods: []string{"DELETE"}, Permission: "orders.write"},
	}})
	auth := "\nHost: x\nAuthorization: Bearer " + f.svcTok + "\nContent-Length: 0" // orders.read only
	for _, target := range []string{"/orders/7?_method=DELETE", "/orders/7?x=1&_method=delete", "/orders/7?%5Fmethod=Delete"} {
		status, reason := send(t, addr, "POST "+target+" HTTP/1.1"+auth, "")
		if seen := up.take(); len(seen) > 0 || status != 403 {
			t.Errorf("POST %s = %d %s, reached the upstream %d times; want 403: Rails and Laravel read it as DELETE", target, status, reason, len(seen))
		}
	}
	if status, _ := send(t, addr, "POST /orders/7?method=DELETE HTTP/1.1"+auth, ""); status != 200 || len(up.take()) != 1 {
		t.Errorf("POST without an override = %d, want 200", status)
	}
}

func TestBypassH2CUpgrade(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{PublicPaths: []string{"/public/"}})
	for _, upgrade := range []string{"h2c", "H2C", "websocket, h2c"} {
		// An upstream that agreed would serve the rest of the connection,
		// /admin included, without the proxy.
		status, reason := send(t, addr, "GET /public/x HTTP/1.1\nHost: x\nConnection: Upgrade, HTTP2-Settings\nUpgrade: "+upgrade+"\nHTTP2-Settings: AAMAAABkAAQAAP__", "")
		if seen := up.take(); len(seen) > 0 || status != 400 {
			t.Errorf("Upgrade: %s = %d %s, reached the upstream %d times; want 400", upgrade, status, reason, len(seen))
		}
	}
}

func TestBypassConnectionHeaderCannotRemoveIdentity(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{})
	for _, connection := range []string{
		"X-Scimgate-Org, X-Scimgate-Permissions",
		"keep-alive, X-Scimgate-Kind, x-scimgate-token-id, X-Scimgate-Id, X-Scimgate-Name, X-Scimgate-Groups, X-Scimgate-Sites",
		"X-Forwarded-For, X-Forwarded-Proto",
	} {
		status, _ := send(t, addr, "GET /orders HTTP/1.1\nHost: x\nAuthorization: Bearer "+f.userTok+"\nConnection: "+connection, "")
		seen := up.take()
		if status != 200 || len(seen) != 1 {
			t.Fatalf("Connection: %s: status %d, want 200", connection, status)
		}
		h := seen[0].header
		for k, want := range map[string]string{
			"X-Scimgate-Kind":        "user",
			"X-Scimgate-Id":          f.alice.ID,
			"X-Scimgate-Name":        "alice@acme.test",
			"X-Scimgate-Org":         "acme",
			"X-Scimgate-Permissions": "orders.read,orders.write",
			"X-Scimgate-Groups":      "Order Desk",
			"X-Scimgate-Sites":       "Sydney",
			"X-Scimgate-Token-Id":    f.userID,
			"X-Forwarded-For":        "127.0.0.1",
			"X-Forwarded-Proto":      "http",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("Connection: %s: the upstream got %s %q, want %q", connection, k, got, want)
			}
		}
	}
}

func TestBypassSecondAuthorizationHeader(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{ForwardAuthorization: true})
	for _, second := range []string{"Basic YWRtaW46YWRtaW4=", "Bearer " + f.userTok} {
		status, reason := send(t, addr, "GET /orders HTTP/1.1\nHost: x\nAuthorization: Bearer "+f.svcTok+"\nAuthorization: "+second, "")
		if seen := up.take(); len(seen) > 0 {
			t.Errorf("a second Authorization header (%s) reached the upstream: %q", second[:6], seen[0].header["Authorization"])
		}
		if status != 400 || reason != "duplicate_authorization" {
			t.Errorf("two Authorization headers = %d %s, want 400 duplicate_authorization", status, reason)
		}
	}
	// One is forwarded as it came.
	if status, _ := send(t, addr, "GET /orders HTTP/1.1\nHost: x\nAuthorization: Bearer "+f.svcTok, ""); status != 200 {
		t.Fatalf("one Authorization header: status %d", status)
	}
	if got := up.take()[0].header["Authorization"]; len(got) != 1 || got[0] != "Bearer "+f.svcTok {
		t.Errorf("forward_authorization: the upstream got Authorization %q", got)
	}
}

func TestBypassOverrideAndCloudIdentityHeadersStripped(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{PublicPaths: []string{"/public/"}})
	spoofed := []string{
		"X-Original-URL: /admin",
		"X-Rewrite-URL: /admin",
		"X-Original-URI: /admin",
		"X-HTTP-Method-Override: DELETE",
		"X-HTTP-Method: DELETE",
		"X-Method-Override: DELETE",
		"X-Amzn-Oidc-Data: forged",
		"X-Amzn-Oidc-Identity: forged",
		"X-Amzn-Oidc-Accesstoken: forged",
		"X-Goog-Iap-Jwt-Assertion: forged",
		"X-Goog-Authenticated-User-Email: accounts.google.com:mallory@evil.test",
		"Cf-Access-Jwt-Assertion: forged",
		"Cf-Access-Authenticated-User-Email: mallory@evil.test",
		"X-Ms-Client-Principal: forged",
		"X-Ms-Client-Principal-Name: mallory",
		"X-MS-CLIENT-PRINCIPAL-ID: forged",
		"X_Ms_Client_Principal_Idp: forged",
		"X-Forwarded-Client-Cert: forged",
		"X-Scimgate-Assertion: forged",
	}
	for _, tc := range []struct{ path, auth string }{
		{"/orders", "\nAuthorization: Bearer " + f.userTok},
		{"/public/x", ""},
	} {
		status, _ := send(t, addr, "GET "+tc.path+" HTTP/1.1\nHost: x"+tc.auth+"\n"+strings.Join(spoofed, "\n"), "")
		seen := up.take()
		if status != 200 || len(seen) != 1 {
			t.Fatalf("GET %s: status %d", tc.path, status)
		}
		for k, vs := range seen[0].header {
			for _, v := range vs {
				if v == "/admin" || v == "DELETE" || strings.Contains(v, "forged") || strings.Contains(v, "mallory") {
					t.Errorf("GET %s: the client's %s: %s reached the upstream", tc.path, k, v)
				}
			}
		}
	}
}

func TestMalformedChunkedBodyIs400(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{})
	for _, body := range []string{
		"zz\r\nhello\r\n0\r\n\r\n",             // not a chunk size
		"5\r\nhelloXX0\r\n\r\n",                // no CRLF after the chunk
		"ffffffffffffffffff\r\nx\r\n0\r\n\r\n", // a size that overflows
	} {
		status, reason := send(t, addr, "POST /orders HTTP/1.1\nHost: x\nAuthorization: Bearer "+f.svcTok+"\nTransfer-Encoding: chunked", body)
		if status != 400 || reason != "malformed_body" {
			t.Errorf("malformed chunked body %q = %d %s, want 400 malformed_body", body, status, reason)
		}
		up.take()
	}
}

func TestSlowBodyIs408(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	up := newPathUpstream(t)
	u, _ := url.Parse(up.URL)
	p, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-"})
	must(t, err)
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ReadTimeout = 500 * time.Millisecond
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\nonly part of it", f.svcTok)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	defer resp.Body.Close()
	var refusal struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&refusal)
	if resp.StatusCode != http.StatusRequestTimeout || refusal.Reason != "body_timeout" {
		t.Errorf("a body cut by the read timeout = %d %q, want 408 body_timeout", resp.StatusCode, refusal.Reason)
	}
}

// An Upgrade header must not lift the read timeout before the upstream has
// switched protocols: else any client, with no token on a public path, holds
// a connection open for ever by sending its body a byte at a time.
func TestSlowBodyWithUpgradeHeaderIs408(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	up := newPathUpstream(t)
	u, _ := url.Parse(up.URL)
	p, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-", PublicPaths: []string{"/public/"}})
	must(t, err)
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ReadTimeout = 500 * time.Millisecond
	srv.Start()
	defer srv.Close()

	for _, upgrade := range []string{"Upgrade: websocket\r\nConnection: Upgrade", "Upgrade: anything"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		must(t, err)
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "POST /public/upload HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: 1000\r\n\r\nonly part of it", upgrade)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%q with a slow body: no answer within 5s (the read timeout is 500ms): %v", upgrade, err)
			conn.Close()
			continue
		}
		var refusal struct{ Reason string }
		json.NewDecoder(resp.Body).Decode(&refusal)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusRequestTimeout || refusal.Reason != "body_timeout" {
			t.Errorf("%q with a body cut by the read timeout = %d %q, want 408 body_timeout", upgrade, resp.StatusCode, refusal.Reason)
		}
	}
}

// Once the upstream has switched protocols, the connection is no longer one
// request: it outlives the server's read timeout.
func TestUpgradedConnectionOutlivesReadTimeout(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		msg, _ := brw.ReadString('\n')
		brw.WriteString("echo " + msg)
		brw.Flush()
	}))
	defer ws.Close()
	f := newFixture(t, "sqlite", proxy.Options{})
	u, _ := url.Parse(ws.URL)
	p, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-"})
	must(t, err)
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", f.svcTok)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status %d, want 101", resp.StatusCode)
	}
	time.Sleep(time.Second) // past the read timeout
	io.WriteString(conn, "ping\n")
	if got, _ := br.ReadString('\n'); got != "echo ping\n" {
		t.Errorf("a second after the upgrade got %q, want %q: the read timeout cut the upgraded connection", got, "echo ping\n")
	}
}

// PHP (Laravel, Symfony) reads the _method parameter its own way: the last
// of several wins, and a name's leading spaces are dropped, "." is "_", and
// a NUL ends it. Every value of every parameter PHP would read as
// _method gets the rules of its method.
func TestBypassMethodOverrideAsPHPReadsIt(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{Routes: []proxy.Route{
		{PathPrefix: "/orders", Methods: []string{"DELETE"}, Permission: "orders.write"},
	}})
	auth := "\nHost: x\nAuthorization: Bearer " + f.svcTok + "\nContent-Length: 0" // orders.read only
	for _, query := range []string{
		"_method=GET&_method=DELETE",
		"_method=POST&_method=DELETE",
		"_method=PUT&x=1&_method=delete",
		".method=DELETE",
		"%2Emethod=DELETE",
		"+_method=DELETE",
		"%20%20_method=DELETE",
		"_method%00x=DELETE",
	} {
		status, reason := send(t, addr, "POST /orders/7?"+query+" HTTP/1.1"+auth, "")
		if seen := up.take(); len(seen) > 0 || status != 403 {
			t.Errorf("POST /orders/7?%s = %d %s, reached the upstream %d times; want 403: PHP reads it as DELETE", query, status, reason, len(seen))
		}
	}
	for _, query := range []string{"method=DELETE", "+method=DELETE", "_method_=DELETE", "x_method=DELETE", "_method=GET&_method=PUT"} {
		if status, _ := send(t, addr, "POST /orders/7?"+query+" HTTP/1.1"+auth, ""); status != 200 || len(up.take()) != 1 {
			t.Errorf("POST /orders/7?%s = %d, want 200: no framework reads DELETE in it", query, status)
		}
	}
}

// Java's equalsIgnoreCase, .NET's OrdinalIgnoreCase (ASP.NET Core routing,
// IIS) and toUpperCase in Python and JavaScript read the dotless ı and the
// dotted İ as I, which Unicode case folding (strings.EqualFold) does not:
// in any case, /admın is /admin to them, so a route applies to it.
func TestBypassRouteRuleUnicodeCase(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{
		Routes:                []proxy.Route{{PathPrefix: "/admin", Permission: "orders.write"}, {PathPrefix: "/keys", Permission: "orders.write"}},
		PublicPaths:           []string{"/public/"},
		PublicPathsIgnoreCase: true,
	})
	auth := "Authorization: Bearer " + f.svcTok // orders.read only
	for _, target := range []string{
		"/admın",
		"/adm%C4%B1n/users",
		"/ADMİN",
		"/ADM%C4%B0N",
		"/Admİn/x",
		"/\u212Aeys", // the Kelvin sign, which folding already covered
	} {
		status, reason := send(t, addr, "GET "+target+" HTTP/1.1\nHost: x\n"+auth, "")
		if seen := up.take(); len(seen) > 0 {
			t.Errorf("GET %s without orders.write reached the upstream as %s", target, seen[0].target)
		} else if status != 403 {
			t.Errorf("GET %s without orders.write = %d %s, want 403", target, status, reason)
		}
	}
	// A public path waives the token: it stays as narrow as folding.
	if status, _ := send(t, addr, "GET /publıc/x HTTP/1.1\nHost: x", ""); status != 401 || len(up.take()) != 0 {
		t.Errorf("GET /publıc/x without a token = %d, want 401: only folding makes a public path", status)
	}
}

// A raw "#" never belongs in a request target (a fragment is not sent), and
// servers disagree about it: some cut the path there, Go's keeps it in the
// path. It is refused, as README's "What is matched" says, wherever it is.
func TestRawFragmentRefused(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{PublicPaths: []string{"/public/"}})
	for _, target := range []string{"/admin#x", "/public/x#/../../admin", "/public/x?a=1#frag", "/a%20b#"} {
		status, reason := send(t, addr, "GET "+target+" HTTP/1.1\nHost: x\nAuthorization: Bearer "+f.svcTok, "")
		if seen := up.take(); len(seen) > 0 || status != 400 || reason != "invalid_path" {
			t.Errorf("GET %s = %d %s, reached the upstream %d times; want 400 invalid_path", target, status, reason, len(seen))
		}
	}
	// An escaped one is a character of the path like any other.
	if status, _ := send(t, addr, "GET /public/a%23b HTTP/1.1\nHost: x", ""); status != 200 || len(up.take()) != 1 {
		t.Errorf("GET /public/a%%23b = %d, want 200", status)
	}
}

// Windows (IIS, and static files on NTFS wherever they are served) drops
// the dots and spaces that end a path segment: /admin. and /admin%20 are
// /admin to them, so a route applies to those spellings too.
func TestBypassRouteRuleTrailingDots(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{
		Routes:      []proxy.Route{{PathPrefix: "/admin", Permission: "orders.write"}},
		PublicPaths: []string{"/public/"},
	})
	auth := "Authorization: Bearer " + f.svcTok // orders.read only
	for _, target := range []string{"/admin.", "/admin./users", "/admin%20", "/admin.%20./x", "/ADMIN../x", "/admin..."} {
		status, reason := send(t, addr, "GET "+target+" HTTP/1.1\nHost: x\n"+auth, "")
		if seen := up.take(); len(seen) > 0 {
			t.Errorf("GET %s without orders.write reached the upstream as %s", target, seen[0].target)
		} else if status != 403 {
			t.Errorf("GET %s without orders.write = %d %s, want 403", target, status, reason)
		}
	}
	// Neighbours that no server reads as /admin pass, and a public path's
	// dotted spelling is not public.
	for _, target := range []string{"/admin.html", "/administrator.", "/x/admin."} {
		if status, _ := send(t, addr, "GET "+target+" HTTP/1.1\nHost: x\n"+auth, ""); status != 200 || len(up.take()) != 1 {
			t.Errorf("GET %s = %d, want 200", target, status)
		}
	}
	if status, _ := send(t, addr, "GET /public./x HTTP/1.1\nHost: x", ""); status != 401 || len(up.take()) != 0 {
		t.Errorf("GET /public./x without a token = %d, want 401", status)
	}
}

// Rails (Rack::MethodOverride, on by default), Laravel, Symfony, Spring's
// HiddenHttpMethodFilter and ASP.NET Core take the method of a POST from a
// _method field of its form body too: a form body gets the rules of the
// methods its fields name, and a body that cannot be read here (multipart,
// or too long) those of every method a route names.
func TestBypassMethodOverrideFormBody(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{})
	addr, up := front(t, f, proxy.Options{Routes: []proxy.Route{
		{PathPrefix: "/orders", Methods: []string{"DELETE"}, Permission: "orders.write"},
	}})
	auth := "\nHost: x\nAuthorization: Bearer " + f.svcTok // orders.read only
	long := "x=" + strings.Repeat("a", 70<<10) + "&_method=DELETE"
	multipart := "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n"
	tests := []struct{ contentType, body string }{
		{"application/x-www-form-urlencoded", "_method=DELETE"},
		{"Application/X-WWW-Form-Urlencoded; charset=utf-8", "a=1&_method=delete"},
		{"application/x-www-form-urlencoded", "a=1;_method=DELETE"}, // Rack 2 splits at ";" too
		{"application/x-www-form-urlencoded", "_method=PUT&_method=DELETE"},
		{"application/x-www-form-urlencoded", ".method=DELETE"},
		{"application/x-www-form-urlencoded", "%5Fmethod=DEL%45TE&x=%zz"},
		{"application/x-www-form-urlencoded", "_method%00%zz=DELETE"}, // PHP keeps %zz, then cuts at the NUL
		{"", "_method=DELETE"}, // Rack reads a POST without a Content-Type as a form
		{"application/x-www-form-urlencoded", long},
		{"multipart/form-data; boundary=b", multipart},
		{"multipart/mixed; boundary=b", multipart}, // Rack parses it too
	}
	for _, tt := range tests {
		head := "POST /orders/7 HTTP/1.1" + auth + fmt.Sprintf("\nContent-Length: %d", len(tt.body))
		if tt.contentType != "" {
			head += "\nContent-Type: " + tt.contentType
		}
		status, reason := send(t, addr, head, tt.body)
		if seen := up.take(); len(seen) > 0 || status != 403 {
			t.Errorf("POST %q body %.40q = %d %s, reached the upstream %d times; want 403: Rails reads it as DELETE", tt.contentType, tt.body, status, reason, len(seen))
		}
	}
	// Chunked, the same.
	status, _ := send(t, addr, "POST /orders/7 HTTP/1.1"+auth+"\nContent-Type: application/x-www-form-urlencoded\nTransfer-Encoding: chunked", "e\r\n_method=DELETE\r\n0\r\n\r\n")
	if seen := up.take(); len(seen) > 0 || status != 403 {
		t.Errorf("chunked form body _method=DELETE = %d, reached the upstream %d times; want 403", status, len(seen))
	}
	// Forms that override nothing, and bodies that are not forms, pass,
	// with their body intact.
	for _, tt := range []struct{ contentType, body string }{
		{"application/x-www-form-urlencoded", "method=DELETE&_method=PATCH"},
		{"application/x-www-form-urlencoded", ""},
		{"application/json", `{"_method": "DELETE"}`},
		{"text/plain", "_method=DELETE"},
	} {
		head := "POST /orders/7 HTTP/1.1" + auth + fmt.Sprintf("\nContent-Length: %d\nContent-Type: %s", len(tt.body), tt.contentType)
		status, reason := send(t, addr, head, tt.body)
		if seen := up.take(); status != 200 || len(seen) != 1 || seen[0].body != tt.body {
			t.Errorf("POST %q body %q = %d %s, upstream saw %+v; want 200 and the body as sent", tt.contentType, tt.body, status, reason, seen)
		}
	}
}
