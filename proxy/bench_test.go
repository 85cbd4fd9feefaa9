package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/scimgate/scimgate/proxy"
)

// BenchmarkProxy compares scimgate with a cached token against a bare
// httputil.ReverseProxy tuned the same way (pooled buffers and connections),
// in front of the same upstream, over real loopback connections. Compare the
// two lines of one run; the absolute times say little on a shared machine.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from upstream")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)

	bare := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport:  proxy.NewTransport(256, 0),
		BufferPool: proxy.NewBufferPool(),
	}
	f := newFixture(b, "sqlite", proxy.Options{Assertion: &proxy.AssertionOptions{}})
	scim, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-"})
	if err != nil {
		b.Fatal(err)
	}
	// With the signed identity assertion: cached per identity, and bound
	// to each request (a signature per request).
	asserted, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-",
		Assertion: &proxy.AssertionOptions{Keyring: f.keyring}})
	if err != nil {
		b.Fatal(err)
	}
	bound, err := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-",
		Assertion: &proxy.AssertionOptions{Keyring: f.keyring, BindRequest: true}})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		handler http.Handler
	}{{"bare", bare}, {"scimgate", scim}, {"scimgate+assertion", asserted}, {"scimgate+bound_assertion", bound}} {
		b.Run(bc.name, func(b *testing.B) {
			front := httptest.NewServer(bc.handler)
			defer front.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			req, _ := http.NewRequest("GET", front.URL+"/orders", nil)
			req.Header.Set("Authorization", "Bearer "+f.svcTok)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}

// BenchmarkAdmit is the auth path alone: a cached token through the
// handler's header rewriting and authentication, without the network.
func BenchmarkAdmit(b *testing.B) {
	f := newFixture(b, "sqlite", proxy.Options{})
	u, _ := url.Parse(f.up.URL)
	p, _ := proxy.New(f.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-"})
	req := httptest.NewRequest("GET", "/orders", nil)
	req.Header = http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}}
	authorization := []string{"Bearer " + f.svcTok}
	b.ReportAllocs()
	for b.Loop() {
		req.Header["Authorization"] = authorization // admit removes it
		if _, err := p.Admit(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmitAssertion is BenchmarkAdmit with the signed identity
// assertion: "cached" signs once per identity (every TTL/2), "bound" signs
// every request.
func BenchmarkAdmitAssertion(b *testing.B) {
	for _, bc := range []struct {
		name string
		bind bool
	}{{"cached", false}, {"bound", true}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, "sqlite", proxy.Options{Assertion: &proxy.AssertionOptions{BindRequest: bc.bind}})
			req := httptest.NewRequest("GET", "/orders", nil)
			req.Header = http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}}
			authorization := []string{"Bearer " + f.svcTok}
			b.ReportAllocs()
			for b.Loop() {
				req.Header["Authorization"] = authorization
				if _, err := f.proxy.Admit(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
