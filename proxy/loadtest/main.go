// Command loadtest provides the two other processes of scimgate's load test
// (see run.sh beside it): a small upstream, and the baseline scimgate is
// measured against, a bare httputil.ReverseProxy tuned as scimgate's own
// (pooled buffers, keep-alive connections per host).
//
//	loadtest upstream -listen 127.0.0.1:19000
//	loadtest bare -listen 127.0.0.1:19001 -upstream http://127.0.0.1:19000
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/scimgate/scimgate/proxy"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadtest upstream|bare -listen ADDR [-upstream URL]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:19000", "address to listen on")
	upstream := fs.String("upstream", "http://127.0.0.1:19000", "upstream URL (bare)")
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
		h = &httputil.ReverseProxy{
			Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
			Transport:  proxy.NewTransport(256, 30*time.Second),
			BufferPool: proxy.NewBufferPool(),
		}
	default:
		log.Fatalf("unknown mode %q: want upstream or bare", os.Args[1])
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
