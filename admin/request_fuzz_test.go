package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzDecodeBody reads any request body as the API reads a service token
// edit. The answer is the decoded body or a problem of the client's making
// (400, 413, 415), never a panic or a server error; a body it accepts is
// valid JSON holding only the fields the API knows.
//
//	go test ./admin -run '^$' -fuzz FuzzDecodeBody -fuzztime 30s
func FuzzDecodeBody(f *testing.F) {
	f.Add(`{"name": "x", "inactivity_days": 60, "permission_sets": ["reader"]}`, "application/json")
	f.Add(`{"nme": 1}`, "application/json; charset=utf-8")
	f.Add(`{"permission_sets": null}`, "application/json")
	f.Add(`[]`, "text/plain")
	f.Add(`{"name": "a"} {"name": "b"}`, "application/json")
	f.Add("{\"name\": \"\xff\"}", "application/json")
	a := &api{opts: Options{MaxBodyBytes: 1 << 10}}
	known := jsonFields(&serviceTokenEdit{})
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest("PATCH", "/api/v1/service-tokens/x", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		var dst serviceTokenEdit
		err := a.decodeBody(httptest.NewRecorder(), r, &dst, false)
		if err != nil {
			var p *problem
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
			case errors.As(err, &p) && (p.Status == 400 || p.Status == 415) && p.Detail != "":
			default:
				t.Fatalf("decodeBody(%q): %v, want a problem of the client's making", body, err)
			}
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("accepted a body that is not valid JSON: %q", body)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &fields); err != nil {
			t.Fatalf("accepted a body that is not an object: %q", body)
		}
		for name := range fields {
			if !slices.Contains(known, name) {
				// json matches field names case-insensitively: "NAME" is name.
				if !slices.ContainsFunc(known, func(k string) bool { return strings.EqualFold(k, name) }) {
					t.Fatalf("accepted unknown field %q", name)
				}
			}
		}
	})
}

// FuzzQuery reads any query string as a token listing does. The answer is
// a query or a 400; an accepted one holds known parameters, each once.
//
//	go test ./admin -run '^$' -fuzz FuzzQuery -fuzztime 30s
func FuzzQuery(f *testing.F) {
	f.Add("status=active&limit=10")
	f.Add("limit=1&limit=2")
	f.Add("verbose")
	f.Add("%zz")
	f.Add("cursor=" + url.QueryEscape("dDox"))
	known := []string{"status", "name_prefix", "cursor", "limit", "owner", "owner_id"}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "/api/v1/user-tokens", nil)
		r.URL.RawQuery = raw
		q, err := tokenQuery(r, true)
		if err != nil {
			var p *problem
			if !errors.As(err, &p) || p.Status != 400 {
				t.Fatalf("tokenQuery(%q): %v, want a 400 problem", raw, err)
			}
			return
		}
		values, perr := url.ParseQuery(raw)
		if perr != nil {
			t.Fatalf("accepted a query string that does not parse: %q", raw)
		}
		for name, vals := range values {
			if !slices.Contains(known, name) || len(vals) != 1 {
				t.Fatalf("accepted %q = %q", name, vals)
			}
		}
		if q.Limit < 0 || q.Limit > 1000 {
			t.Fatalf("accepted limit %d", q.Limit)
		}
	})
}
