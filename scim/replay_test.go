package scim

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// step is one request an identity provider sends and what its answer must
// hold.
type step struct {
	name   string
	method string
	// path may hold {{var}}, a value saved by an earlier step; its query is
	// written unescaped and encoded by replay.
	path   string
	body   string
	header []string
	status int
	// want maps a JSON path of the answer (see get) to its value; absent
	// means the member must not be there.
	want map[string]any
	// save keeps values of the answer for later steps: var → JSON path.
	save  map[string]string
	check func(t *testing.T, r *response)
}

type absentValue struct{}

var absent = absentValue{}

// replay sends the steps in order; a failed step stops the replay, since
// later steps build on it.
func replay(t *testing.T, f *fixture, steps []step) {
	t.Helper()
	vars := map[string]string{}
	expand := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "{{"+k+"}}", v)
		}
		return s
	}
	for _, st := range steps {
		path := expand(st.path)
		if p, rawQuery, ok := strings.Cut(path, "?"); ok {
			q, err := url.ParseQuery(rawQuery)
			if err != nil {
				t.Fatalf("%s: query %q: %v", st.name, rawQuery, err)
			}
			path = p + "?" + q.Encode()
		}
		header := make([]string, len(st.header))
		for i, h := range st.header {
			header[i] = expand(h)
		}
		r := f.do(st.method, path, expand(st.body), header...)
		ok := t.Run(st.name, func(t *testing.T) {
			if r.status != st.status {
				t.Fatalf("%s %s: status %d, want %d: %s", st.method, path, r.status, st.status, r.raw)
			}
			for p, want := range st.want {
				got := get(r.body, p)
				if s, isString := want.(string); isString {
					want = expand(s)
				}
				switch {
				case want == absent:
					if got != nil {
						t.Errorf("%s = %#v, want it absent", p, got)
					}
				case !reflect.DeepEqual(got, want):
					t.Errorf("%s = %#v, want %#v", p, got, want)
				}
			}
			if st.check != nil {
				st.check(t, r)
			}
		})
		if !ok {
			t.Fatalf("step %q failed; the steps after it build on it\nlog:\n%s", st.name, f.logs)
		}
		for k, p := range st.save {
			s, isString := get(r.body, p).(string)
			if !isString {
				t.Fatalf("%s: cannot save %s from %s: %s", st.name, k, p, r.raw)
			}
			vars[k] = s
		}
	}
}

// count reads the number of elements of an array at a JSON path.
func count(r *response, path string) int {
	list, _ := get(r.body, path).([]any)
	return len(list)
}

func wantCount(path string, n int) func(*testing.T, *response) {
	return func(t *testing.T, r *response) {
		t.Helper()
		if got := count(r, path); got != n {
			t.Errorf("%s has %d elements, want %d: %s", path, got, n, r.raw)
		}
	}
}
