package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The OpenAPI document is written by hand. These tests keep it honest: it
// is a valid OpenAPI 3.1 document, it has exactly the routes the handler
// serves, and every response the tests of this package see (through
// validatingTransport) validates against it.

var loadSpec = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPI)
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
})

func spec(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := spec(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	var raw map[string]any
	if err := json.Unmarshal(openAPI, &raw); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
}

func TestOpenAPIHasEveryRoute(t *testing.T) {
	doc := spec(t)
	served := map[string]bool{}
	for _, rt := range (&api{}).routes() {
		key := rt.method + " " + rt.path
		served[key] = true
		item := doc.Paths.Find(rt.path)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if key := method + " " + path; !served[key] {
				t.Errorf("openapi.json has %s, which the handler does not serve", key)
			}
		}
	}
}

// Every reason the code can answer is in the document's enum, and the
// other way round.
func TestOpenAPIListsEveryProblemReason(t *testing.T) {
	enum := spec(t).Components.Schemas["Problem"].Value.Properties["reason"].Value.Enum
	var documented []string
	for _, v := range enum {
		documented = append(documented, v.(string))
	}
	var coded []string
	for r := range reasons {
		coded = append(coded, r)
	}
	slices.Sort(documented)
	slices.Sort(coded)
	if !slices.Equal(documented, coded) {
		t.Errorf("problem reasons in openapi.json %v, in the code %v", documented, coded)
	}
}

// validatingTransport checks every exchange of a test against the
// document: each response's status, headers and body (through the route's
// operation, or against the Problem schema for a path or method the API
// does not have), and the request itself when the answer is a success.
type validatingTransport struct {
	t      testing.TB
	router routers.Router
	doc    *openapi3.T
	next   http.RoundTripper
}

func newValidatingTransport(t testing.TB) *validatingTransport {
	doc := spec(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &validatingTransport{t: t, router: router, doc: doc, next: http.DefaultTransport}
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	v.check(req, reqBody, resp, body)
	return resp, nil
}

func (v *validatingTransport) check(req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	v.t.Helper()
	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.Path, resp.StatusCode)
	// Route the request as the document sees it, on a copy whose URL has
	// no host so that the document's relative server matches.
	routed := req.Clone(context.Background())
	routed.URL.Scheme, routed.URL.Host, routed.Host = "", "", ""
	routed.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := v.router.FindRoute(routed)
	if err != nil {
		// A path or method the API does not have: a problem, 404 or 405.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			v.t.Errorf("%s: the request has no operation in openapi.json (%v)", what, err)
		}
		v.checkProblem(what, resp, body)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: routed, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if resp.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			v.t.Errorf("%s: a request the API accepted does not match openapi.json: %v", what, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.t.Errorf("%s: the response does not match openapi.json: %v\nbody: %s", what, err, body)
	}
	if resp.StatusCode >= 400 {
		v.checkProblem(what, resp, body)
	}
}

// checkProblem validates an error response against the Problem schema.
func (v *validatingTransport) checkProblem(what string, resp *http.Response, body []byte) {
	v.t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		v.t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		v.t.Errorf("%s: the problem is not JSON: %v", what, err)
		return
	}
	if err := v.doc.Components.Schemas["Problem"].Value.VisitJSON(value); err != nil {
		v.t.Errorf("%s: the problem does not match the Problem schema: %v\nbody: %s", what, err, body)
	}
	var p problem
	json.Unmarshal(body, &p)
	if p.Status != resp.StatusCode || !strings.HasSuffix(p.Type, ":"+p.Reason) || p.Detail == "" {
		v.t.Errorf("%s: problem %+v: want status %d, a type ending in its reason, a detail", what, p, resp.StatusCode)
	}
}
