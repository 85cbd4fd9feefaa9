package proxy_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/proxy"
	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// TestSitesHeader checks the sites identity header: a person's sites, on
// the very next request after each change, escaped like groups; never for
// a service token, and never what the client sent.
func TestSitesHeader(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, dialect, proxy.Options{})
			spoofed := http.Header{"X-Scimgate-Sites": {"Everywhere"}, "x_scimgate_sites": {"Everywhere"}}
			sites := func(token string) (string, bool) {
				t.Helper()
				if resp := f.get(t, "/orders", token, spoofed); resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				_, h := f.up.last()
				v, ok := h["X-Scimgate-Sites"]
				if len(v) > 1 {
					t.Fatalf("upstream got %d sites headers: %q", len(v), v)
				}
				return strings.Join(v, ""), ok
			}
			setSites := func(names ...string) {
				t.Helper()
				u, err := f.svc.User(ctx, f.org.ID, f.alice.ID)
				if err != nil {
					t.Fatal(err)
				}
				u.Sites = append([]string{}, names...)
				if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, u, 0); err != nil {
					t.Fatal(err)
				}
			}

			if got, _ := sites(f.userTok); got != "Sydney" {
				t.Errorf("the fixture's person: sites header %q, want Sydney", got)
			}
			setSites()
			if got, ok := sites(f.userTok); !ok || got != "" {
				t.Errorf("a person in no site: sites header %q (present %v), want present and empty", got, ok)
			}
			setSites("Sydney", "Zürich", "100% Plant")
			if got, _ := sites(f.userTok); got != "100%25 Plant,Sydney,Z%C3%BCrich" {
				t.Errorf("after joining three sites: %q, want them sorted and escaped", got)
			}
			setSites("Sydney")
			if got, _ := sites(f.userTok); got != "Sydney" {
				t.Errorf("after leaving two sites: %q, want Sydney", got)
			}
			site, err := f.svc.SiteByName(ctx, f.org.ID, "Sydney")
			if err != nil {
				t.Fatal(err)
			}
			if err := f.svc.RemoveSiteMember(ctx, tokens.Operator, f.org.ID, site.ID, f.alice.ID); err != nil {
				t.Fatal(err)
			}
			if got, _ := sites(f.userTok); got != "" {
				t.Errorf("after leaving the last site: %q, want none", got)
			}
			if err := f.svc.AddSiteMember(ctx, tokens.Operator, f.org.ID, site.ID, f.alice.ID); err != nil {
				t.Fatal(err)
			}
			if got, _ := sites(f.userTok); got != "Sydney" {
				t.Errorf("after joining again: %q, want Sydney", got)
			}
			if _, err := f.svc.DeleteSite(ctx, tokens.Operator, f.org.ID, site.ID); err != nil {
				t.Fatal(err)
			}
			if got, _ := sites(f.userTok); got != "" {
				t.Errorf("after the site was deleted: %q, want none", got)
			}
			if got, ok := sites(f.svcTok); ok {
				t.Errorf("a service token's request carried a sites header %q", got)
			}
		})
	}
}

func TestSitesHeaderCanBeLeftOut(t *testing.T) {
	f := newFixture(t, "sqlite", proxy.Options{IdentityHeaders: []string{"id"}})
	if resp := f.get(t, "/", f.userTok, http.Header{"X-Scimgate-Sites": {"Everywhere"}}); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, h := f.up.last(); h.Get("X-Scimgate-Sites") != "" {
		t.Errorf("sites was not chosen but reached the upstream: %q", h.Get("X-Scimgate-Sites"))
	}
	u, _ := url.Parse(f.up.URL)
	if _, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-", IdentityHeaders: []string{"sites"}}); err != nil {
		t.Errorf("sites is not accepted as an identity header: %v", err)
	}
}
