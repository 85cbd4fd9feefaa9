package admin

import (
	"net/http"
	"slices"
	"strings"
)

// route is one endpoint of the API. openapi.json has an operation for each,
// and a test keeps the two the same.
type route struct {
	method  string
	path    string // a net/http pattern: /api/v1/user-tokens/{id}
	handler http.Handler
}

// routes is every endpoint. A new resource of the API (sites, say) adds its
// routes here, its handlers in a file of its own, and its operations to
// openapi.json.
func (a *api) routes() []route {
	return []route{
		{"GET", Prefix + "/openapi.json", http.HandlerFunc(handleOpenAPI)},

		{"GET", Prefix + "/me", a.authed(a.handleMe)},
		{"DELETE", Prefix + "/me/token", a.authed(a.handleOwnTokenRevoke)},

		{"GET", Prefix + "/user-tokens", a.authed(a.handleUserTokenList)},
		{"POST", Prefix + "/user-tokens", a.authed(a.handleUserTokenCreate)},
		{"GET", Prefix + "/user-tokens/{id}", a.authed(a.handleUserTokenGet)},
		{"DELETE", Prefix + "/user-tokens/{id}", a.authed(a.handleUserTokenDelete)},

		{"GET", Prefix + "/service-tokens", a.authed(a.handleServiceTokenList)},
		{"POST", Prefix + "/service-tokens", a.authed(a.handleServiceTokenCreate)},
		{"GET", Prefix + "/service-tokens/{id}", a.authed(a.handleServiceTokenGet)},
		{"PATCH", Prefix + "/service-tokens/{id}", a.authed(a.handleServiceTokenEdit)},
		{"DELETE", Prefix + "/service-tokens/{id}", a.authed(a.handleServiceTokenDelete)},
		{"POST", Prefix + "/service-tokens/{id}/revoke", a.authed(a.handleServiceTokenRevoke)},
		{"POST", Prefix + "/service-tokens/{id}/regenerate", a.authed(a.handleServiceTokenRegenerate)},

		{"GET", Prefix + "/permission-sets", a.authed(a.handlePermissionSets)},
		{"GET", Prefix + "/audit-events", a.authed(a.handleAuditList)},
		{"GET", Prefix + "/seats", a.authed(a.handleSeats)},

		{"POST", Prefix + "/tokens/report", a.handle(a.handleLeakReport)},
		{"POST", Prefix + "/tokens/report/github", a.handle(a.handleGitHubLeakReport)},
		{"POST", Prefix + "/tokens/inspect", a.authed(a.handleInspect)},
	}
}

// handler routes requests. A path of the API asked with another method is
// a 405 naming the methods it has; any other path under Prefix a 404; both
// as problems.
func (a *api) handler() http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{}
	for _, rt := range a.routes() {
		mux.Handle(rt.method+" "+rt.path, rt.handler)
		allow[rt.path] = append(allow[rt.path], rt.method)
	}
	for path, methods := range allow {
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		slices.Sort(methods)
		mux.Handle(path, a.handle(func(w http.ResponseWriter, r *http.Request) error {
			p := newProblem("method_not_allowed", "%s is not a method of %s: use %s", r.Method, r.URL.Path, strings.Join(methods, " or "))
			p.Allow = methods
			return p
		}))
	}
	mux.Handle(Prefix+"/", a.handle(func(w http.ResponseWriter, r *http.Request) error {
		return newProblem("not_found", "no endpoint %s: the API's endpoints are listed in %s/openapi.json", r.URL.Path, Prefix)
	}))
	return withHeaders(mux)
}

// withHeaders sets what every response of the API carries: nothing in it
// may be cached (a new token's plaintext is shown once), and its content
// type is to be believed.
func withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
