package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The browser tests drive headless Chromium (Debian's chromium) against the
// real server, signing in through a real OpenID provider (zitadel's op
// package with its example storage and login form) in the same process.
// SCIMGATE_SCREENSHOTS names a folder for a screenshot of each page.

// findChromium returns the browser to drive, or skips the test; under CI
// (CI=true) a missing browser fails it.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SCIMGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found (apt-get install chromium, or set SCIMGATE_CHROMIUM): the browser tests must run under CI")
	}
	t.Skip("no Chromium found (apt-get install chromium, or set SCIMGATE_CHROMIUM): browser tests skipped")
	return ""
}

// newBrowser starts a fresh headless Chromium with its own profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	// The copy button writes to the clipboard; the test reads it back.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    browser.PermissionSettingGranted,
		}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	return ctx
}

// idpUsers is the identity provider's directory for the tests.
type idpUsers map[string]*storage.User

func (u idpUsers) GetUserByID(id string) *storage.User { return u[id] }
func (u idpUsers) GetUserByUsername(name string) *storage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}
func (u idpUsers) ExampleClientID() string { return "service" }

// idpStorage is the example storage with the console's client, whose
// redirect URL is known only once the console listens.
type idpStorage struct {
	*storage.Storage
	redirect *atomic.Value
}

type idpClient struct {
	op.Client
	redirect *atomic.Value
}

func (c idpClient) RedirectURIs() []string { return []string{c.redirect.Load().(string)} }

func (s idpStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil || id != "scimgate-console" {
		return c, err
	}
	return idpClient{Client: c, redirect: s.redirect}, nil
}

// startIdP runs an OpenID provider on loopback and returns its issuer.
func startIdP(t *testing.T, users idpUsers, redirect *atomic.Value) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	clients := map[string]*storage.Client{
		"scimgate-console": storage.WebClient("scimgate-console", "console-secret", "http://placeholder/auth/callback"),
	}
	st := idpStorage{Storage: storage.NewStorageWithClients(users, clients), redirect: redirect}
	router := exampleop.SetupServer(issuer, st, slog.New(slog.DiscardHandler), false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return issuer
}

// frontDoor is the load balancer in front of the console: its address is
// known before scimgate starts, so it can be the redirect URL registered
// with the provider.
func frontDoor(t *testing.T) (*httptest.Server, *atomic.Value) {
	var target atomic.Value
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := target.Load().(*url.URL)
		if u == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		// Host is kept, as a load balancer keeps it.
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = pr.In.Host }}).ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front, &target
}

// consoleEnv is a running scimgate with its console, an identity provider,
// an upstream and a browser.
type consoleEnv struct {
	t       *testing.T
	cli     *testCLI
	serve   *runningServe
	console string // the console's URL, through the front door
	idpTok  string // the identity provider's SCIM token
	up      *recordingUpstream
	shots   string
}

func newConsoleEnv(t *testing.T, dialect string) *consoleEnv {
	t.Helper()
	e := &consoleEnv{t: t, cli: newTestCLI(t, dialect), up: newRecordingUpstream(t), shots: os.Getenv("SCIMGATE_SCREENSHOTS")}
	front, target := frontDoor(t)
	e.console = front.URL
	var redirect atomic.Value
	redirect.Store(front.URL + "/auth/callback")
	issuer := startIdP(t, idpUsers{
		"id-ada":  {ID: "id-ada", Username: "ada@idp.test", Password: "correct horse", FirstName: "Ada", LastName: "Admin", Email: "ada@acme.test", EmailVerified: true, PreferredLanguage: language.English},
		"id-bob":  {ID: "id-bob", Username: "bob@idp.test", Password: "correct horse", FirstName: "Bob", LastName: "Builder", Email: "bob@acme.test", EmailVerified: true, PreferredLanguage: language.English},
		"id-zed":  {ID: "id-zed", Username: "zed@idp.test", Password: "correct horse", FirstName: "Zed", LastName: "Stranger", Email: "zed@elsewhere.test", EmailVerified: true, PreferredLanguage: language.English},
		"id-dora": {ID: "id-dora", Username: "dora@idp.test", Password: "correct horse", FirstName: "Dora", LastName: "Gone", Email: "dora@acme.test", EmailVerified: true, PreferredLanguage: language.English},
	}, &redirect)

	e.cli.ok("org", "create", "--name", "acme")
	var idp createdToken
	e.cli.okJSON(&idp, "service-token", "create", "--org", "acme", "--name", "okta", "--permissions", "platform.users,platform.groups")
	e.idpTok = idp.Token

	config := filepath.Join(t.TempDir(), "scimgate.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`
permissions:
  custom: [orders.read, orders.write]
  sets:
    token-admin: [platform.tokens, platform.users]
    orders: [orders.read, orders.write]
  group_sets:
    Token Admins: [token-admin, orders]
  default_sets: [orders.read]
console:
  org: acme
  oidc:
    issuer: %s
    client_id: scimgate-console
    redirect_url: %s/auth/callback
    claim: email
`, issuer, front.URL)), 0o600)
	e.serve = startServe(t, e.cli.dsn, map[string]string{"SCIMGATE_CONSOLE_OIDC_CLIENT_SECRET": "console-secret"},
		"--config", config, "--upstream", e.up.URL)
	u, _ := url.Parse("http://" + e.serve.addrs["management"])
	target.Store(u)
	return e
}

// scim sends a SCIM request with the identity provider's token.
func (e *consoleEnv) scim(method, path, body string) map[string]any {
	e.t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.serve.addrs["management"]+"/scim/v2"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.idpTok)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		e.t.Fatalf("SCIM %s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var out map[string]any
	json.Unmarshal(raw, &out)
	return out
}

// provision creates a person over SCIM, as the identity provider does.
func (e *consoleEnv) provision(userName, email string) string {
	e.t.Helper()
	out := e.scim("POST", "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"name":{"givenName":"A","familyName":"B"},"emails":[{"primary":true,"value":%q,"type":"work"}],"active":true}`, userName, email))
	return fmt.Sprint(out["id"])
}

func (e *consoleEnv) proxied(token string) (int, string) {
	return proxyGet(e.t, http.DefaultClient, "http://"+e.serve.addrs["proxy"]+"/orders", token, nil)
}

// shot writes a screenshot of the page to SCIMGATE_SCREENSHOTS, if set.
func (e *consoleEnv) shot(ctx context.Context, name string) {
	e.t.Helper()
	if e.shots == "" {
		return
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		e.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(e.shots, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.shots, name+".png"), buf, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// submit clicks something that loads a new page and waits for it; it
// returns the page's HTTP status.
func submit[S chromedp.Selectable](t *testing.T, ctx context.Context, what string, sel S) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel, chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp == nil {
		t.Fatalf("%s: no page loaded", what)
	}
	return resp.Status
}

func text[S chromedp.Selectable](t *testing.T, ctx context.Context, sel S) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel, chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("text of %v: %v", sel, err)
	}
	return s
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	return u.Path
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, func(p *runtime.EvaluateParams) {
		p.AwaitPromise = new(true)
		p.UserGesture = new(true)
	}))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// ssoSignIn signs in at the identity provider's own login form.
func (e *consoleEnv) ssoSignIn(ctx context.Context, username string) {
	t := e.t
	t.Helper()
	do(t, ctx, "open the sign-in page", chromedp.Navigate(e.console+"/signin"))
	submit(t, ctx, "start single sign-on", chromedp.ID("sso"))
	do(t, ctx, "fill the identity provider's login form",
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse"),
	)
	submit(t, ctx, "log in at the identity provider", chromedp.CSS(`button[type=submit]`))
}

// tokenRow is the CSS selector of a token's row in a table, found by name.
func tokenRowID(t *testing.T, ctx context.Context, table, name string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(() => {
		for (const tr of document.querySelectorAll(%q)) {
			const n = tr.querySelector(".token-name");
			if (n && n.textContent.trim() === %q) return tr.dataset.tokenId;
		}
		return "";
	})()`, "#"+table+" tbody tr", name))
}

// revealed reads the token the page shows once, after copying it with
// the copy button; it checks that the clipboard got the same.
func revealed(t *testing.T, ctx context.Context) string {
	t.Helper()
	do(t, ctx, "see the new token", chromedp.WaitVisible(chromedp.ID("new-token")))
	shown, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("new-token")))
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "copy the token", chromedp.Click(chromedp.CSS(`[data-copy-from="new-token"]`), chromedp.NodeVisible))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("copy-status").textContent.startsWith("Copied") || null`,
		chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("copy-status")))
		t.Fatalf("the copy button did not copy: %v (the page says %q)", err, status)
	}
	copied := eval[string](t, ctx, `navigator.clipboard.readText()`)
	if copied != shown || !strings.HasPrefix(copied, "sg") {
		t.Fatalf("the clipboard holds %q after Copy, want the token shown (%q)", copied, shown)
	}
	return copied
}

func TestConsoleInBrowser(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newConsoleEnv(t, dialect)
			ada := e.provision("ada", "ada@acme.test")
			e.provision("bob", "bob@acme.test")
			dora := e.provision("dora", "dora@acme.test")
			e.scim("POST", "/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Token Admins","members":[{"value":%q}]}`, ada))
			e.scim("PATCH", "/Users/"+dora, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)

			t.Run("AdminManagesServiceTokens", func(t *testing.T) { e.t = t; testConsoleAdmin(t, e) })
			t.Run("PersonWithUserToken", func(t *testing.T) { e.t = t; testConsolePerson(t, e) })
			t.Run("Refusals", func(t *testing.T) { e.t = t; testConsoleRefusals(t, e) })
		})
	}
}

// testConsoleAdmin: an admin signs in by SSO, creates a service token,
// copies it from the page, and the proxy accepts it; revokes it (with the
// keyboard alone) and the proxy refuses the very next request; regenerates
// it, and the new secret works and the old does not; edits it; deletes it.
func testConsoleAdmin(t *testing.T, e *consoleEnv) {
	ctx := newBrowser(t)
	e.ssoSignIn(ctx, "ada@idp.test")
	if got := location(t, ctx); got != "/integrations/api-tokens" {
		t.Fatalf("after single sign-on the admin is at %s, want /integrations/api-tokens", got)
	}
	if who := text(t, ctx, chromedp.CSS(".org-menu .who")); who != "ada" {
		t.Errorf("signed in as %q, want ada", who)
	}
	e.shot(ctx, "api-tokens")

	// Create API token: the name, 60 days, the permission sets all checked.
	submit(t, ctx, "open Create API token", chromedp.ID("create-token"))
	checked := eval[[]string](t, ctx, `[...document.querySelectorAll("input[name=set]:checked")].map(i => i.value)`)
	disabled := eval[[]string](t, ctx, `[...document.querySelectorAll("input[name=set]:disabled")].map(i => i.value)`)
	if strings.Join(checked, ",") != "orders,orders.read,orders.write,platform.tokens,platform.users,token-admin" || strings.Join(disabled, ",") != "platform.groups" {
		t.Errorf("permission sets checked by default %v, disabled %v: want every set ada may grant checked, platform.groups (which she lacks) disabled", checked, disabled)
	}
	if v := eval[string](t, ctx, `document.querySelector("input[name=days]:checked").value`); v != "45" {
		t.Errorf("default inactivity window %s, want 45", v)
	}
	e.shot(ctx, "create-api-token")
	do(t, ctx, "fill Create API token",
		chromedp.SendKeys(chromedp.ID("name"), "Nightly export"),
		chromedp.Click(chromedp.CSS(`input[name=days][value="60"]`)),
		chromedp.Click(chromedp.CSS(`input[name=set][value="platform.tokens"]`)), // uncheck
		chromedp.Click(chromedp.CSS(`input[name=set][value="token-admin"]`)),     // uncheck
		chromedp.Click(chromedp.CSS(`input[name=set][value="platform.users"]`)),  // uncheck
	)
	submit(t, ctx, "Create token", chromedp.ID("create-submit"))
	if w := text(t, ctx, chromedp.ID("reveal-warning")); !strings.Contains(w, "Save the token securely before closing") {
		t.Errorf("the new token's warning says %q", w)
	}
	e.shot(ctx, "token-created")
	first := revealed(t, ctx)
	if code, _ := e.proxied(first); code != 200 {
		t.Fatalf("the proxy answered %d to the token copied from the console, want 200", code)
	}
	if got := e.up.last().Get("X-Scimgate-Permissions"); got != "orders.read,orders.write" {
		t.Errorf("upstream saw permissions %q, want orders.read,orders.write", got)
	}
	do(t, ctx, "close the token window", chromedp.Click(chromedp.ID("reveal-close")))
	// Reloading never shows it again.
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("service-tokens")))
	if n := eval[int](t, ctx, `document.querySelectorAll("#new-token").length`); n != 0 {
		t.Fatal("the token is shown again after a reload")
	}
	id := tokenRowID(t, ctx, "service-tokens", "Nightly export")
	if id == "" {
		t.Fatal("the new token is not in the Service user API tokens list")
	}

	// Revoke, with the keyboard only: focus Revoke, Enter opens the dialog
	// with Cancel focused, Escape closes it, Enter again, Tab to Revoke, Enter.
	do(t, ctx, "focus Revoke", chromedp.Focus(chromedp.CSS(`[commandfor="revoke-`+id+`"]`)), chromedp.KeyEvent(kb.Enter))
	if open := eval[bool](t, ctx, `document.getElementById("revoke-`+id+`").open`); !open {
		t.Fatal("Enter on Revoke did not open the confirmation dialog")
	}
	if f := eval[string](t, ctx, `document.activeElement.textContent.trim()`); f != "Cancel" {
		t.Errorf("focus in the confirmation dialog is on %q, want Cancel", f)
	}
	if d := text(t, ctx, chromedp.ID("revoke-"+id+"-desc")); !strings.Contains(d, "Integrations using this token stop working") {
		t.Errorf("the confirmation says %q, want what will break", d)
	}
	e.shot(ctx, "confirm-revoke")
	do(t, ctx, "Escape", chromedp.KeyEvent(kb.Escape))
	if open := eval[bool](t, ctx, `document.getElementById("revoke-`+id+`").open`); open {
		t.Fatal("Escape did not close the confirmation dialog")
	}
	if code, _ := e.proxied(first); code != 200 {
		t.Fatalf("after Cancel the token is refused (%d)", code)
	}
	do(t, ctx, "open again", chromedp.Focus(chromedp.CSS(`[commandfor="revoke-`+id+`"]`)), chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent(kb.Tab))
	if f := eval[string](t, ctx, `document.activeElement.textContent.trim()`); f != "Revoke" {
		t.Fatalf("Tab in the dialog moved focus to %q, want Revoke", f)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	if code, reason := e.proxied(first); code != 401 || reason != "revoked" {
		t.Fatalf("the very next proxied request after Revoke: %d %q, want 401 revoked", code, reason)
	}
	if n := text(t, ctx, chromedp.CSS(".notice")); !strings.Contains(n, "is revoked") {
		t.Errorf("notice after Revoke: %q", n)
	}
	e.shot(ctx, "token-revoked")

	// Regenerate the revoked token: Confirm in the pop-up, copy the new one.
	do(t, ctx, "Regenerate", chromedp.Click(chromedp.CSS(`[commandfor="regenerate-`+id+`"]`), chromedp.NodeVisible))
	e.shot(ctx, "confirm-regenerate")
	submit(t, ctx, "Confirm", chromedp.CSS(`#regenerate-`+id+` button[type=submit]`))
	second := revealed(t, ctx)
	if second == first {
		t.Fatal("regenerating gave the same secret")
	}
	if code, _ := e.proxied(second); code != 200 {
		t.Errorf("the regenerated secret: %d, want 200", code)
	}
	if code, reason := e.proxied(first); code != 401 || reason != "unknown" {
		t.Errorf("the old secret after Regenerate: %d %q, want 401 unknown", code, reason)
	}
	do(t, ctx, "close", chromedp.Click(chromedp.ID("reveal-close")))

	// Edit: the pencil renames, Edit changes the window and the sets.
	submit(t, ctx, "open the token", chromedp.CSS(`tr[data-token-id="`+id+`"] a.token-name`))
	e.shot(ctx, "service-token")
	submit(t, ctx, "pencil", chromedp.ID("edit-name"))
	submit(t, ctx, "Edit the window", chromedp.ID("edit-window"))
	submit(t, ctx, "Edit the sets", chromedp.ID("edit-permissions"))
	do(t, ctx, "change", chromedp.SetValue(chromedp.ID("name"), "Nightly export v2"),
		chromedp.Click(chromedp.CSS(`input[name=days][value="180"]`)),
		chromedp.Click(chromedp.CSS(`input[name=set][value="orders.write"]`)),
		chromedp.Click(chromedp.CSS(`input[name=set][value="orders"]`)))
	e.shot(ctx, "service-token-edit")
	submit(t, ctx, "Save changes", chromedp.ID("save-changes"))
	if h := text(t, ctx, chromedp.ID("token-title")); h != "Nightly export v2" {
		t.Errorf("after Save changes the token is named %q", h)
	}
	if code, _ := e.proxied(second); code != 200 || e.up.last().Get("X-Scimgate-Permissions") != "orders.read" {
		t.Errorf("after the edit the proxy says %d with permissions %q, want 200 orders.read", code, e.up.last().Get("X-Scimgate-Permissions"))
	}
	// Granting what one does not hold is refused by the domain, shown on the page.
	do(t, ctx, "forge a set", chromedp.Navigate(e.console+"/integrations/api-tokens/service/"+id+"?edit=permissions"),
		chromedp.WaitVisible(chromedp.ID("save-changes")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("input[value='platform.groups']").disabled = false; document.querySelector("input[value='platform.groups']").checked = true`))
	if status := submit(t, ctx, "Save a set ada lacks", chromedp.ID("save-changes")); status != 403 {
		t.Errorf("granting platform.groups: status %d, want 403", status)
	}
	if msg := text(t, ctx, chromedp.ID("form-error")); !strings.Contains(msg, "platform.groups") {
		t.Errorf("refusal says %q, want the permission named", msg)
	}

	// Delete needs a revoked token: Revoke, then More → Delete → Delete.
	do(t, ctx, "back", chromedp.Navigate(e.console+"/integrations/api-tokens"), chromedp.WaitVisible(chromedp.ID("service-tokens")))
	do(t, ctx, "Revoke", chromedp.Click(chromedp.CSS(`[commandfor="revoke-`+id+`"]`), chromedp.NodeVisible))
	submit(t, ctx, "confirm Revoke", chromedp.CSS(`#revoke-`+id+` button[type=submit]`))
	do(t, ctx, "More", chromedp.Click(chromedp.CSS(`tr[data-token-id="`+id+`"] details.more summary`), chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`[commandfor="delete-service-`+id+`"]`), chromedp.NodeVisible))
	e.shot(ctx, "confirm-delete")
	submit(t, ctx, "confirm Delete", chromedp.CSS(`#delete-service-`+id+` button[type=submit]`))
	if left := tokenRowID(t, ctx, "service-tokens", "Nightly export v2"); left != "" {
		t.Error("the deleted token is still listed")
	}

	// The audit log names ada; the seats count the people.
	submit(t, ctx, "Audit log", chromedp.CSS(`.tabs a[href="/integrations/audit-log"]`))
	if log := text(t, ctx, chromedp.ID("audit")); !strings.Contains(log, "user ada") || !strings.Contains(log, "token.regenerate") {
		t.Errorf("the audit log does not name ada's changes: %s", log)
	}
	e.shot(ctx, "audit-log")
	submit(t, ctx, "Seats", chromedp.CSS(`.tabs a[href="/integrations/seats"]`))
	if n := text(t, ctx, chromedp.ID("seats-people")); n != "2" { // ada, bob; dora is deactivated
		t.Errorf("seats: %s people, want 2", n)
	}
	e.shot(ctx, "seats")

	// Phone width: the same page, readable.
	do(t, ctx, "phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(e.console+"/integrations/api-tokens"), chromedp.WaitVisible(chromedp.ID("create-token")))
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at phone width the page is %dpx wide, want no horizontal scrolling", w)
	}
	e.shot(ctx, "api-tokens-phone")
	do(t, ctx, "desktop", chromedp.EmulateViewport(1280, 900))

	// Sign out.
	do(t, ctx, "open the org menu", chromedp.Click(chromedp.CSS(".org-menu summary")))
	submit(t, ctx, "Sign out", chromedp.CSS(`.org-menu button[type=submit]`))
	if got := location(t, ctx); got != "/signin" {
		t.Errorf("after Sign out: %s", got)
	}
	do(t, ctx, "a page after signing out", chromedp.Navigate(e.console+"/integrations/api-tokens"), chromedp.WaitVisible(chromedp.ID("token")))
}

// testConsolePerson: a person without platform.tokens signs in with a user
// token, sees only My API tokens, creates tokens up to the limit and is
// refused the 11th on the page; deactivated by SCIM, their next page load is
// the sign-in page.
func testConsolePerson(t *testing.T, e *consoleEnv) {
	var first createdToken
	e.cli.okJSON(&first, "user-token", "create", "--org", "acme", "--user", "bob", "--name", "first")
	ctx := newBrowser(t)
	do(t, ctx, "sign-in page", chromedp.Navigate(e.console+"/signin"), chromedp.SendKeys(chromedp.ID("token"), first.Token))
	submit(t, ctx, "Sign in with a token", chromedp.CSS(`form[action="/signin/token"] button`))
	if got := location(t, ctx); got != "/my/api-tokens" {
		t.Fatalf("bob landed on %s, want /my/api-tokens", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('a[href^="/integrations"]').length`); n != 0 {
		t.Errorf("bob, without platform.tokens, sees %d links to Integrations", n)
	}
	e.shot(ctx, "my-api-tokens")
	if status := func() int64 {
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(e.console+"/integrations/api-tokens"))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}(); status != 403 {
		t.Errorf("bob opening Integrations → API tokens: %d, want 403", status)
	}
	do(t, ctx, "back", chromedp.Navigate(e.console+"/my/api-tokens"), chromedp.WaitVisible(chromedp.ID("quota")))
	for i := 2; i <= 10; i++ {
		do(t, ctx, "name", chromedp.SendKeys(chromedp.ID("name"), fmt.Sprintf("script %d", i)))
		submit(t, ctx, "Create token", chromedp.ID("create-mine"))
		revealedPlain, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("new-token")))
		if err != nil || !strings.HasPrefix(revealedPlain, "sgu_") {
			t.Fatalf("token %d: shown %q, %v", i, revealedPlain, err)
		}
		do(t, ctx, "close", chromedp.Click(chromedp.ID("reveal-close")))
		if q := text(t, ctx, chromedp.ID("quota")); q != fmt.Sprintf("%d of 10 remaining", 10-i) {
			t.Errorf("after %d tokens the page says %q", i, q)
		}
	}
	do(t, ctx, "the 11th", chromedp.SendKeys(chromedp.ID("name"), "one too many"))
	if status := submit(t, ctx, "Create token", chromedp.ID("create-mine")); status != 409 {
		t.Errorf("the 11th token: status %d, want 409", status)
	}
	if msg := text(t, ctx, chromedp.ID("form-error")); !strings.Contains(msg, "10 active tokens") {
		t.Errorf("the 11th token is refused with %q, want the limit named", msg)
	}
	e.shot(ctx, "my-api-tokens-limit")

	// Deactivated by the identity provider: the next page load signs out.
	users := e.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "bob"`), "")
	bob := fmt.Sprint(users["Resources"].([]any)[0].(map[string]any)["id"])
	e.scim("PATCH", "/Users/"+bob, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
	do(t, ctx, "the next page load", chromedp.Navigate(e.console+"/my/api-tokens"), chromedp.WaitVisible(chromedp.ID("token")))
	if got := location(t, ctx); got != "/signin" {
		t.Errorf("after deactivation the next page is %s, want /signin", got)
	}
	if msg := text(t, ctx, chromedp.CSS(".notice-warn")); !strings.Contains(msg, "no longer works") && !strings.Contains(msg, "deactivated") {
		t.Errorf("the sign-in page says %q, want why the session ended", msg)
	}
	e.shot(ctx, "signed-out-deactivated")
}

// testConsoleRefusals: a service token is refused at sign-in, people the
// identity provider knows but scimgate does not (or deactivated) are refused
// with a page saying why, and a cross-origin form post is refused.
func testConsoleRefusals(t *testing.T, e *consoleEnv) {
	ctx := newBrowser(t)
	do(t, ctx, "sign in with a service token", chromedp.Navigate(e.console+"/signin"), chromedp.SendKeys(chromedp.ID("token"), e.idpTok))
	if status := submit(t, ctx, "Sign in with a token", chromedp.CSS(`form[action="/signin/token"] button`)); status != 403 {
		t.Errorf("a service token at sign-in: %d, want 403", status)
	}
	if msg := text(t, ctx, chromedp.ID("signin-error")); !strings.Contains(msg, "service user API tokens cannot be used to log in") {
		t.Errorf("the refusal says %q", msg)
	}
	e.shot(ctx, "signin-service-token-refused")

	for _, tc := range []struct{ user, want string }{
		{"zed@idp.test", "nobody with the email address zed@elsewhere.test is provisioned"},
		{"dora@idp.test", "is deactivated"},
	} {
		e.ssoSignIn(ctx, tc.user)
		if msg := text(t, ctx, chromedp.ID("refused-reason")); !strings.Contains(strings.ToLower(msg), tc.want) {
			t.Errorf("%s signing in: %q, want %q", tc.user, msg, tc.want)
		}
	}
	e.shot(ctx, "signin-refused")

	// Signed in (as ada), a page of another origin posts a form to the
	// console: the browser sends the cookie (same site), the console refuses.
	e.ssoSignIn(ctx, "ada@idp.test")
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id=f method=post action="%s/my/api-tokens"><input name=name value=planted></form><script>document.getElementById("f").submit()</script>`, e.console)
	}))
	defer evil.Close()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(evil.URL))
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "wait for the post", chromedp.WaitVisible(chromedp.ID("error-title")))
	_ = resp
	if got := text(t, ctx, chromedp.ID("error-title")); got != "Request refused" {
		t.Errorf("the cross-origin post got %q, want Request refused", got)
	}
	e.shot(ctx, "cross-origin-refused")
	do(t, ctx, "my tokens", chromedp.Navigate(e.console+"/my/api-tokens"), chromedp.WaitVisible(chromedp.ID("quota")))
	if n := tokenRowID(t, ctx, "my-tokens", "planted"); n != "" {
		t.Error("the cross-origin post created a token")
	}
}
