package admin

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/scimgate/scimgate/tokens"
)

// decodeBody reads the request's JSON body into dst, a pointer to a struct
// (or, with allowUnknown, anything). The body must be application/json, at
// most MaxBodyBytes, one JSON value, with no field dst does not have unless
// allowUnknown. Every refusal says what to fix.
func (a *api) decodeBody(w http.ResponseWriter, r *http.Request, dst any, allowUnknown bool) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes)
	dec := json.NewDecoder(body)
	if !allowUnknown {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(dst); err != nil {
		return explainDecodeError(err, dst)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return newProblem("invalid_request", "the request body holds more than one JSON value: send one object")
	}
	return nil
}

func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return newProblem("unsupported_media_type", "send the body as JSON with the header Content-Type: application/json (got %q)", ct)
	}
	return nil
}

func explainDecodeError(err error, dst any) error {
	var (
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	var p *problem
	switch {
	case errors.As(err, &tooLarge), errors.As(err, &p):
		return err
	case errors.Is(err, io.EOF):
		return newProblem("invalid_request", "the request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return newProblem("invalid_request", "the request body is not valid JSON: it ends too early")
	case errors.As(err, &syntax):
		return newProblem("invalid_request", "the request body is not valid JSON: %s (at byte %d)", syntax.Error(), syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return newProblem("invalid_request", "the request body must be %s, not %s", jsonKind(typeErr.Type), typeErr.Value)
		}
		return newProblem("invalid_request", "field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return newProblem("invalid_request", "unknown field %s in the request body: the fields are %s", name, strings.Join(jsonFields(dst), ", "))
	}
	return newProblem("invalid_request", "the request body cannot be read: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type as JSON calls it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// jsonFields lists the JSON field names of the struct dst points to.
func jsonFields(dst any) []string {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// query reads a request's query parameters, refusing any not in known and
// any given twice.
type query struct {
	values map[string]string
}

func parseQuery(r *http.Request, known ...string) (*query, error) {
	raw, err := urlQuery(r)
	if err != nil {
		return nil, err
	}
	q := &query{values: map[string]string{}}
	for name, vals := range raw {
		if !slices.Contains(known, name) {
			if len(known) == 0 {
				return nil, newProblem("invalid_request", "unknown query parameter %q: this endpoint takes none", name)
			}
			return nil, newProblem("invalid_request", "unknown query parameter %q: the parameters are %s", name, strings.Join(known, ", "))
		}
		if len(vals) > 1 {
			return nil, newProblem("invalid_request", "query parameter %q is given %d times: give it once", name, len(vals))
		}
		q.values[name] = vals[0]
	}
	return q, nil
}

func urlQuery(r *http.Request) (map[string][]string, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newProblem("invalid_request", "the query string cannot be read: %v", err)
	}
	return v, nil
}

func (q *query) get(name string) string { return q.values[name] }

// int reads a whole number, 0 when absent.
func (q *query) int(name string) (int, error) {
	s := q.values[name]
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, newProblem("invalid_request", "query parameter %s must be a whole number, not %q", name, s)
	}
	return n, nil
}

// limit reads the page size: absent means the default; given, it must be
// 1 to tokens.MaxPageSize.
func (q *query) limit() (int, error) {
	n, err := q.int("limit")
	if err != nil {
		return 0, err
	}
	if _, given := q.values["limit"]; given && (n < 1 || n > tokens.MaxPageSize) {
		return 0, newProblem("invalid_request", "limit must be 1 to %d, not %d", tokens.MaxPageSize, n)
	}
	return n, nil
}
