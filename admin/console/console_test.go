package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// fixture is a console over a real store, with an org, a person holding a
// user token and a service token.
type fixture struct {
	svc       *tokens.Service
	auth      *tokens.Authenticator
	userToken string
	svcToken  string
	alice     *tokens.User
}

func newFixture(t *testing.T, dialect string) *fixture {
	t.Helper()
	store := sqltest.Open(t, dialect)
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	svc := tokens.NewService(store, policy)
	ctx := context.Background()
	org, err := svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	alice := &tokens.User{OrgID: org.ID, UserName: "alice", Active: true}
	if err := svc.CreateUser(ctx, tokens.Operator, alice); err != nil {
		t.Fatal(err)
	}
	_, us, err := svc.CreateUserToken(ctx, tokens.Operator, org.ID, alice.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	_, ss, err := svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, auth: tokens.NewAuthenticator(store, policy, tokens.AuthOptions{}), userToken: us.Plaintext(), svcToken: ss.Plaintext(), alice: alice}
}

func (f *fixture) server(t *testing.T, tls bool) *httptest.Server {
	t.Helper()
	c, err := New(f.svc, f.auth, Options{Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(c.Handler())
	} else {
		srv = httptest.NewServer(c.Handler())
	}
	t.Cleanup(srv.Close)
	return srv
}

func client(srv *httptest.Server) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func post(t *testing.T, c *http.Client, u string, form url.Values, fetchSite string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if fetchSite != "" {
		req.Header.Set("Sec-Fetch-Site", fetchSite)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestConsole(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Run("SecurityHeaders", func(t *testing.T) { testSecurityHeaders(t, newFixture(t, dialect)) })
			t.Run("TokenSignIn", func(t *testing.T) { testTokenSignIn(t, newFixture(t, dialect)) })
			t.Run("CrossOrigin", func(t *testing.T) { testCrossOrigin(t, newFixture(t, dialect)) })
		})
	}
}

func testSecurityHeaders(t *testing.T, f *fixture) {
	srv := f.server(t, false)
	for _, path := range []string{"/signin", "/no-such-page", "/my/api-tokens"} {
		resp, err := client(srv).Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			!strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
			"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
	}
}

func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "scimgate_session") && c.Value != "" {
			return c
		}
	}
	return nil
}

func testTokenSignIn(t *testing.T, f *fixture) {
	for _, tls := range []bool{false, true} {
		srv := f.server(t, tls)
		c := client(srv)
		resp, _ := post(t, c, srv.URL+"/signin/token", url.Values{"token": {f.userToken}}, "same-origin")
		ck := sessionCookieOf(resp)
		if resp.StatusCode != http.StatusSeeOther || ck == nil {
			t.Fatalf("tls=%v: sign-in with a user token: %d, cookie %v", tls, resp.StatusCode, ck)
		}
		wantName := "scimgate_session"
		if tls {
			wantName = "__Host-scimgate_session"
		}
		if ck.Name != wantName || !ck.HttpOnly || ck.Secure != tls || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
			t.Errorf("tls=%v: session cookie %+v, want %s, HttpOnly, Secure=%v, SameSite=Lax, Path=/", tls, ck, wantName, tls)
		}
		if strings.Contains(ck.Value, f.userToken) || len(ck.Value) < 40 {
			t.Errorf("the session cookie %q is short or carries the token", ck.Value)
		}
		page, err := c.Get(srv.URL + "/my/api-tokens")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if page.StatusCode != 200 || !strings.Contains(string(body), "laptop") {
			t.Errorf("tls=%v: My API tokens after sign-in: %d", tls, page.StatusCode)
		}
	}

	srv := f.server(t, false)
	tests := []struct {
		name, token string
		status      int
		want        string
	}{
		{"service token", f.svcToken, http.StatusForbidden, "service user API tokens cannot be used to log in"},
		{"garbage", "sgu_nope", http.StatusUnauthorized, "not a scimgate API token"},
		{"empty", "", http.StatusUnprocessableEntity, "Paste one of your user API tokens"},
	}
	for _, tt := range tests {
		resp, body := post(t, client(srv), srv.URL+"/signin/token", url.Values{"token": {tt.token}}, "same-origin")
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.want) || sessionCookieOf(resp) != nil {
			t.Errorf("%s: %d, cookie %v, want %d saying %q", tt.name, resp.StatusCode, sessionCookieOf(resp), tt.status, tt.want)
		}
	}
}

func testCrossOrigin(t *testing.T, f *fixture) {
	srv := f.server(t, false)
	c := client(srv)
	post(t, c, srv.URL+"/signin/token", url.Values{"token": {f.userToken}}, "same-origin")
	for _, site := range []string{"cross-site", "same-site"} {
		resp, body := post(t, c, srv.URL+"/my/api-tokens", url.Values{"name": {"planted-" + site}}, site)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "came from another site") {
			t.Errorf("a %s POST: %d, want 403 Request refused", site, resp.StatusCode)
		}
	}
	// An older browser without Sec-Fetch-Site: the Origin header decides.
	req, _ := http.NewRequest("POST", srv.URL+"/my/api-tokens", strings.NewReader("name=planted-origin"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a POST with a foreign Origin: %d, want 403", resp.StatusCode)
	}
	toks, err := f.svc.UserTokens(context.Background(), f.alice.OrgID, f.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if strings.HasPrefix(tok.Name, "planted") {
			t.Errorf("a cross-origin post created token %q", tok.Name)
		}
	}
	// The same form from the console itself works.
	if resp, _ := post(t, c, srv.URL+"/my/api-tokens", url.Values{"name": {"mine"}}, "same-origin"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a same-origin POST: %d, want 303", resp.StatusCode)
	}
}

func TestRevealSealedToTheSession(t *testing.T) {
	v := reveal{TokenID: "tok_1", Name: "ci", Plaintext: "sgs_secret"}
	sealed, err := sealReveal("session-a", v)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "sgs_secret") {
		t.Fatal("the sealed cookie shows the token")
	}
	if got, err := openReveal("session-a", sealed); err != nil || got != v {
		t.Errorf("openReveal(same session) = %+v, %v", got, err)
	}
	if _, err := openReveal("session-b", sealed); err == nil {
		t.Error("another session's key opened the sealed token")
	}
	if _, err := openReveal("session-a", sealed[:len(sealed)-2]+"AA"); err == nil {
		t.Error("a tampered cookie opened")
	}
}
