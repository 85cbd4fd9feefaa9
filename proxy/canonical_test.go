package proxy

import (
	"net/url"
	"testing"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		target     string // the request target as received
		semicolons bool
		path, raw  string // the canonical path, decoded and as sent
		err        *requestError
	}{
		{target: "/", path: "/", raw: "/"},
		{target: "/orders/7", path: "/orders/7", raw: "/orders/7"},
		{target: "/orders/", path: "/orders/", raw: "/orders/"},
		{target: "//admin", path: "/admin", raw: "/admin"},
		{target: "///admin//x//", path: "/admin/x/", raw: "/admin/x/"},
		{target: "/x/../admin", path: "/admin", raw: "/admin"},
		{target: "/public/../admin", path: "/admin", raw: "/admin"},
		{target: "/a/./b/.", path: "/a/b/", raw: "/a/b/"},
		{target: "/a/b/..", path: "/a/", raw: "/a/"},
		{target: "/a/..", path: "/", raw: "/"},
		{target: "/a/b/../../c", path: "/c", raw: "/c"},
		{target: "/...", path: "/...", raw: "/..."},
		{target: "/a..b/.c", path: "/a..b/.c", raw: "/a..b/.c"},
		{target: "/%61dmin", path: "/admin", raw: "/admin"},             // unreserved escapes are decoded
		{target: "/%41%7e%2D", path: "/A~-", raw: "/A~-"},               // in either case
		{target: "/file%2ejson", path: "/file.json", raw: "/file.json"}, // a dot that is not a segment
		{target: "/a%20b", path: "/a b", raw: "/a%20b"},
		{target: "/a%3ab", path: "/a:b", raw: "/a%3Ab"}, // reserved escapes stay, upper-cased
		{target: "/a:b@c", path: "/a:b@c", raw: "/a:b@c"},
		{target: "/q%3Fx%23y", path: "/q?x#y", raw: "/q%3Fx%23y"},
		{target: "/%E2%82%AC", path: "/€", raw: "/%E2%82%AC"},
		{target: "/€", path: "/€", raw: "/%E2%82%AC"},
		{target: "/a!b(c)*'", path: "/a!b(c)*'", raw: "/a!b(c)*'"},
		{target: "/100%25", path: "/100%", raw: "/100%25"}, // a lone escaped % is data
		{target: "/a;b", semicolons: true, path: "/a;b", raw: "/a;b"},

		{target: "/..", err: errPathAboveRoot},
		{target: "/../admin", err: errPathAboveRoot},
		{target: "/a/../../admin", err: errPathAboveRoot},
		{target: "/%2e%2e/admin", err: errPathEncodedDot},
		{target: "/public/%2e%2e/admin", err: errPathEncodedDot},
		{target: "/public/.%2E/admin", err: errPathEncodedDot},
		{target: "/%2e/admin", err: errPathEncodedDot},
		{target: "/a%2fb", err: errPathEncodedSlash},
		{target: "/public%2F..%2Fadmin", err: errPathEncodedSlash},
		{target: `/a\b`, err: errPathBackslash},
		{target: "/public/..%5cadmin", err: errPathBackslash},
		{target: "/a%00b", err: errPathControl},
		{target: "/a%0Ab", err: errPathControl},
		{target: "/a%7Fb", err: errPathControl},
		{target: "/%c0%ae%c0%ae/admin", err: errPathUTF8}, // overlong "."
		{target: "/%ff", err: errPathUTF8},
		{target: "/%252e%252e/admin", err: errPathDoubleEncoded},
		{target: "/%25%32%65", err: errPathDoubleEncoded},
		{target: "/%25u002e", err: errPathDoubleEncoded},
		{target: "/admin;x=1", err: errPathSemicolon},
		{target: "/public/..;/admin", err: errPathSemicolon},
		{target: "/a%3bb", err: errPathSemicolon},
		{target: "/public/..;/admin", semicolons: true, err: errPathDotParameter},
		{target: "/;x/admin", semicolons: true, err: errPathDotParameter},
		{target: "/a#/../admin", err: errPathFragment},
		{target: "/a%zz", err: errPathEscape},
		{target: "/a%4", err: errPathEscape},
		{target: "*", err: errPathNotOrigin},
		{target: "", err: errPathNotOrigin},
		{target: "admin", err: errPathNotOrigin},
	}
	for _, tt := range tests {
		path, raw, err := canonicalPath(tt.target, tt.semicolons)
		if err != tt.err || path != tt.path || raw != tt.raw {
			t.Errorf("canonicalPath(%q) = %q, %q, %v; want %q, %q, %v", tt.target, path, raw, err, tt.path, tt.raw, tt.err)
		}
	}
}

// TestCanonicalURL checks the path as the server parses it, through the
// fast path and the slow one alike, and that what is forwarded
// (EscapedPath) decodes to what the rules match (Path).
func TestCanonicalURL(t *testing.T) {
	tests := []struct{ target, path, escaped string }{
		{"/orders/7?x=1", "/orders/7", "/orders/7"},
		{"//admin", "/admin", "/admin"},
		{"/a%2Cb", "/a,b", "/a%2Cb"},
		{"/a,b", "/a,b", "/a,b"},
		{"/a b", "/a b", "/a%20b"},
		{"/a%21b", "/a!b", "/a%21b"},
		{"/ADMIN/../x", "/x", "/x"},
	}
	for _, tt := range tests {
		u, err := url.ParseRequestURI(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		if err := canonicalURL(u, false); err != nil {
			t.Errorf("canonicalURL(%q): %v", tt.target, err)
			continue
		}
		if u.Path != tt.path || u.EscapedPath() != tt.escaped {
			t.Errorf("canonicalURL(%q): path %q, sent as %q; want %q, %q", tt.target, u.Path, u.EscapedPath(), tt.path, tt.escaped)
		}
		again, _ := url.ParseRequestURI(u.RequestURI())
		if again.Path != u.Path {
			t.Errorf("canonicalURL(%q): the upstream reads %q, the rules matched %q", tt.target, again.Path, u.Path)
		}
	}
}

func TestCanonicalURLDoesNotAllocate(t *testing.T) {
	u, _ := url.ParseRequestURI("/api/v1/orders/1234/items")
	if n := testing.AllocsPerRun(100, func() {
		if err := canonicalURL(u, false); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("canonicalURL of a canonical path: %v allocations, want 0", n)
	}
}

func BenchmarkCanonicalURL(b *testing.B) {
	for _, bc := range []struct{ name, target string }{
		{"canonical", "/api/v1/orders/1234/items"},
		{"rewritten", "/api//v1/./orders/%31234/items"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			u, _ := url.ParseRequestURI(bc.target)
			b.ReportAllocs()
			for b.Loop() {
				v := *u
				if err := canonicalURL(&v, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestHasPathPrefix(t *testing.T) {
	tests := []struct {
		path, prefix string
		fold, want   bool
	}{
		{"/admin", "/admin", false, true},
		{"/admin/", "/admin", false, true},
		{"/admin/x", "/admin", false, true},
		{"/administrator", "/admin", false, false},
		{"/adm", "/admin", false, false},
		{"/ADMIN", "/admin", false, false},
		{"/ADMIN/x", "/admin", true, true},
		{"/Admin", "/admin", true, true},
		{"/\u212Aey", "/key", true, true}, // the Kelvin sign folds to k
		{"/public/", "/public/", false, true},
		{"/public/x", "/public/", false, true},
		{"/public", "/public/", false, false},
		{"/publicity", "/public/", false, false},
		{"/anything", "/", false, true},
	}
	for _, tt := range tests {
		if got := hasPathPrefix(tt.path, tt.prefix, tt.fold); got != tt.want {
			t.Errorf("hasPathPrefix(%q, %q, %v) = %v, want %v", tt.path, tt.prefix, tt.fold, got, tt.want)
		}
	}
}

func TestWithoutParameters(t *testing.T) {
	for in, want := range map[string]string{
		"/a":            "/a",
		"/a;x=1":        "/a",
		"/a;x/b;y=2/c":  "/a/b/c",
		"/admin;jsid/":  "/admin/",
		"/a;b;c/d":      "/a/d",
		"/public;x/sec": "/public/sec",
	} {
		if got := withoutParameters(in); got != want {
			t.Errorf("withoutParameters(%q) = %q, want %q", in, got, want)
		}
	}
}
