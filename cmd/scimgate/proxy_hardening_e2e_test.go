package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// echoUpstream records the target and headers of every request that
// reaches it, as an echo server would show them.
type echoUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []echoed
}

type echoed struct {
	method, target string
	header         http.Header
}

func newEchoUpstream(t *testing.T) *echoUpstream {
	u := &echoUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, echoed{r.Method, r.RequestURI, r.Header.Clone()})
		u.mu.Unlock()
		io.WriteString(w, r.Method+" "+r.RequestURI)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *echoUpstream) take() []echoed {
	u.mu.Lock()
	defer u.mu.Unlock()
	seen := u.seen
	u.seen = nil
	return seen
}

// rawRequest sends head (lines separated by \n) over a new connection,
// byte for byte, and returns the status.
func rawRequest(t *testing.T, addr, head string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n")
	// The method tells ReadResponse whether a body follows (none for HEAD).
	method, _, _ := strings.Cut(head, " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: %v", head, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestProxyHardeningEndToEnd attacks the real "scimgate serve" as issue 9
// did: path, encoding, method and hop-by-hop tricks against a public path
// and a route rule, then checks that the upstream's signed assertion
// verifies with the JWKS of the management listener.
func TestProxyHardeningEndToEnd(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			config := filepath.Join(t.TempDir(), "scimgate.yaml")
			os.WriteFile(config, []byte(`
permissions:
  custom: [orders.read, orders.write]
proxy:
  public_paths: [/public/]
  routes:
    - {path_prefix: /admin, permission: orders.write}
    - {path_prefix: /orders, methods: [POST, DELETE], permission: orders.write}
    - {path_prefix: /reports, methods: [GET], permission: orders.write}
  forward_authorization: true
`), 0o600)
			c := newTestCLI(t, dialect)
			c.env = map[string]string{"SCIMGATE_CONFIG": config}
			c.ok("org", "create", "--name", "acme")
			var reader createdToken
			c.okJSON(&reader, "service-token", "create", "--org", "acme", "--name", "reader", "--permissions", "orders.read")
			up := newEchoUpstream(t)
			s := startServe(t, c.dsn, nil, "--config", config, "--upstream", up.URL)
			gate := s.addrs["proxy"]
			auth := "\nHost: gate\nAuthorization: Bearer " + reader.Token

			for _, head := range []string{
				"GET /public/../admin HTTP/1.1\nHost: gate",
				"GET /public/%2e%2e/admin HTTP/1.1\nHost: gate",
				"GET /public/..;/admin HTTP/1.1\nHost: gate",
				"GET /public/..%2fadmin HTTP/1.1\nHost: gate",
				"GET /PUBLIC/x HTTP/1.1\nHost: gate",
				"GET /admin HTTP/1.1" + auth,
				"GET //admin HTTP/1.1" + auth,
				"GET /ADMIN HTTP/1.1" + auth,
				"GET /x/../admin HTTP/1.1" + auth,
				"GET /%2e%2e/admin HTTP/1.1" + auth,
				"GET /%61dmin HTTP/1.1" + auth,
				"GET /admin;jsessionid=1 HTTP/1.1" + auth,
				"GET http://gate/admin HTTP/1.1" + auth,
				"post /orders HTTP/1.1" + auth + "\nContent-Length: 0",
				"delete /orders/7 HTTP/1.1" + auth,
				"HEAD /reports HTTP/1.1" + auth,
				"CONNECT /orders HTTP/1.1" + auth,
				"TRACE /orders HTTP/1.1" + auth,
				"GET /orders HTTP/1.1" + auth + "\nAuthorization: Basic YWRtaW46YWRtaW4=",
			} {
				status := rawRequest(t, gate, head)
				if seen := up.take(); len(seen) > 0 {
					t.Errorf("%q reached the upstream as %s %s (status %d)", head, seen[0].method, seen[0].target, status)
				} else if status < 400 || status > 405 {
					t.Errorf("%q = %d, want a 4xx refusal", head, status)
				}
			}

			// Allowed requests pass, canonical, with every identity header
			// despite the Connection header, and nothing the client spoofed.
			status := rawRequest(t, gate, "GET //orders/./7 HTTP/1.1"+auth+
				"\nConnection: X-Scimgate-Permissions, X-Scimgate-Assertion\nX-Original-URL: /admin\nX-Scimgate-Name: mallory")
			seen := up.take()
			if status != 200 || len(seen) != 1 {
				t.Fatalf("GET //orders/./7 = %d, %d upstream requests; want 200 and 1", status, len(seen))
			}
			got := seen[0]
			if got.target != "/orders/7" || got.header.Get("X-Scimgate-Permissions") != "orders.read" ||
				got.header.Get("X-Scimgate-Name") != "reader" || got.header.Get("X-Original-Url") != "" {
				t.Errorf("the upstream got %s with permissions %q, name %q, X-Original-URL %q", got.target,
					got.header.Get("X-Scimgate-Permissions"), got.header.Get("X-Scimgate-Name"), got.header.Get("X-Original-Url"))
			}

			// The assertion verifies with the JWKS of the management listener.
			resp, err := http.Get("http://" + s.addrs["management"] + "/.well-known/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			var keys jose.JSONWebKeySet
			err = json.NewDecoder(resp.Body).Decode(&keys)
			resp.Body.Close()
			if err != nil || len(keys.Keys) != 1 || keys.Keys[0].Algorithm != "ES256" || !keys.Keys[0].IsPublic() {
				t.Fatalf("JWKS: %d keys (%v), want one public ES256 key", len(keys.Keys), err)
			}
			tok, err := jwt.ParseSigned(got.header.Get("X-Scimgate-Assertion"), []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatalf("the upstream's assertion: %v", err)
			}
			var claims struct {
				jwt.Claims
				Kind        string   `json:"kind"`
				Name        string   `json:"name"`
				TokenID     string   `json:"token_id"`
				Permissions []string `json:"permissions"`
			}
			if err := tok.Claims(keys, &claims); err != nil {
				t.Fatalf("the assertion does not verify with the JWKS: %v", err)
			}
			err = claims.Validate(jwt.Expected{Issuer: "scimgate", AnyAudience: jwt.Audience{up.URL}, Time: time.Now()})
			if err != nil || claims.Kind != "service" || claims.Name != "reader" || claims.TokenID != reader.ID ||
				!slices.Equal(claims.Permissions, []string{"orders.read"}) {
				t.Errorf("assertion claims %+v (%v)", claims, err)
			}

			// The key is stored: a restart (or another replica) signs with it.
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			again := startServe(t, c.dsn, nil, "--config", config, "--upstream", up.URL)
			if rawRequest(t, again.addrs["proxy"], "GET /orders HTTP/1.1"+auth) != 200 {
				t.Fatal("after a restart: GET /orders refused")
			}
			tok, err = jwt.ParseSigned(up.take()[0].header.Get("X-Scimgate-Assertion"), []jose.SignatureAlgorithm{jose.ES256})
			if err != nil || tok.Claims(keys, &claims) != nil {
				t.Errorf("after a restart the assertion does not verify with the key set fetched before it (%v)", err)
			}
		})
	}
}
