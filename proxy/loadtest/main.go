// Command loadtest provides the other processes of scimgate's load test (see
// run.sh beside it): a small upstream, and the baselines scimgate is
// measured against, a bare httputil.ReverseProxy tuned as scimgate's own
// (pooled buffers, keep-alive connections per host), with or without the
// identity headers scimgate forwards (fixed values: no authentication).
//
//	loadtest upstream -listen 127.0.0.1:19000
//	loadtest bare -listen 127.0.0.1:19001 -upstream http://127.0.0.1:19000 [-identity-headers kind,id,…]
//	loadtest flood -target http://127.0.0.1:19002 -tokens FILE [-flood-rate 10000] [-legit-rate 200] [-duration 10s]
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/scimgate/scimgate/proxy"
)

// serviceIdentity is what scimgate forwards for a service token, with values
// of the same length.
var serviceIdentity = http.Header{
	"X-Scimgate-Kind":        {"service"},
	"X-Scimgate-Id":          {"svc_0123456789abcdef"},
	"X-Scimgate-Name":        {"wrk"},
	"X-Scimgate-Org":         {"loadtest"},
	"X-Scimgate-Org-Id":      {"org_0123456789abcdef"},
	"X-Scimgate-Token-Id":    {"tok_0123456789abcdef"},
	"X-Scimgate-Permissions": {"platform.groups,platform.tokens,platform.users"},
	// As long as the ES256 assertion scimgate signs for that token.
	"X-Scimgate-Assertion": {strings.Repeat("x", 600)},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadtest upstream|bare -listen ADDR [-upstream URL] | loadtest flood -target URL -tokens FILE")
		os.Exit(2)
	}
	if os.Args[1] == "flood" {
		runFlood(os.Args[2:]) // flood.go
		return
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:19000", "address to listen on")
	upstream := fs.String("upstream", "http://127.0.0.1:19000", "upstream URL (bare)")
	identity := fs.String("identity-headers", "", "forward these of the headers scimgate sets for a service token (bare): kind,id,name,org,org_id,token_id,permissions,assertion")
	fs.Parse(os.Args[2:])

	var h http.Handler
	switch os.Args[1] {
	case "upstream":
		body := []byte(`{"orders":[{"id":1,"total":"12.50"},{"id":2,"total":"99.00"}]}` + "\n")
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		})
	case "bare":
		u, err := url.Parse(*upstream)
		if err != nil {
			log.Fatal(err)
		}
		var forward []string
		for _, name := range strings.Split(*identity, ",") {
			if name == "" {
				continue
			}
			key := textproto.CanonicalMIMEHeaderKey("X-Scimgate-" + strings.ReplaceAll(name, "_", "-"))
			if _, ok := serviceIdentity[key]; !ok {
				log.Fatalf("-identity-headers: unknown header %q", name)
			}
			forward = append(forward, key)
		}
		h = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
				for _, name := range forward {
					pr.Out.Header[name] = serviceIdentity[name]
				}
			},
			Transport:  proxy.NewTransport(256, 30*time.Second),
			BufferPool: proxy.NewBufferPool(),
		}
	default:
		log.Fatalf("unknown mode %q: want upstream or bare", os.Args[1])
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
