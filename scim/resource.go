package scim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	elimity "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"

	"github.com/scimgate/scimgate/tokens"
)

// A resource here is a SCIM representation as decoded JSON: objects are
// map[string]any, arrays []any, numbers json.Number. Clients spell attribute
// names in any letter case, so they are looked up with lookupFold.

// lookupFold returns the key of m that equals name in any letter case.
func lookupFold(m map[string]any, name string) (key string, ok bool) {
	if _, ok := m[name]; ok {
		return name, true
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

func getFold(m map[string]any, name string) any {
	if k, ok := lookupFold(m, name); ok {
		return m[k]
	}
	return nil
}

// etag is the entity tag of a version: meta.version and the ETag header.
func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch is a request's If-Match header.
type ifMatch struct {
	present  bool
	any      bool // "*"
	versions []int64
}

func ifMatchOf(r *http.Request) ifMatch {
	values := r.Header.Values("If-Match")
	m := ifMatch{present: len(values) > 0}
	for _, v := range values {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				m.any = true
				continue
			}
			tag = strings.Trim(strings.TrimPrefix(tag, "W/"), `"`)
			if n, err := strconv.ParseInt(tag, 10, 64); err == nil {
				m.versions = append(m.versions, n)
			}
		}
	}
	return m
}

// check refuses a version the header does not name.
func (m ifMatch) check(version int64) error {
	if !m.present || m.any || slices.Contains(m.versions, version) {
		return nil
	}
	return errPreconditionFailed
}

// rfc3339 is how meta.created and meta.lastModified show a time: in UTC
// with milliseconds, so that a client reading lastModified can ask for
// what changed after it (meta.lastModified gt "…") without missing a change
// made in the same second.
func rfc3339(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func resourceMeta(resourceType, location string, created, modified time.Time, version int64) map[string]any {
	return map[string]any{
		"resourceType": resourceType,
		"created":      rfc3339(created),
		"lastModified": rfc3339(modified),
		"location":     location,
		"version":      etag(version),
	}
}

// libraryResource hands a representation to the library, which writes id,
// externalId, schemas and meta itself.
func libraryResource(rep map[string]any, id string, created, modified time.Time, version int64) elimity.Resource {
	res := elimity.Resource{ID: id, Attributes: rep}
	if ext, ok := rep["externalId"].(string); ok {
		res.ExternalID = optional.NewString(ext)
	}
	created, modified = created.UTC(), modified.UTC()
	res.Meta = elimity.Meta{Created: &created, LastModified: &modified, Version: etag(version)}
	return res
}

// projection is a request's attributes and excludedAttributes parameters
// (RFC 7644 3.4.2.5).
type projection struct {
	attributes, excluded []string
}

func projectionOf(r *http.Request) projection {
	q := r.URL.Query()
	return projection{attributes: splitList(q.Get("attributes")), excluded: splitList(q.Get("excludedAttributes"))}
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (p projection) requested() bool { return len(p.attributes) > 0 || len(p.excluded) > 0 }

// includes reports whether the projection keeps some of a core attribute,
// so that what it leaves out need not be read.
func (p projection) includes(attr string, shape *resourceShape) bool {
	names := func(list []string, whole bool) bool {
		return slices.ContainsFunc(list, func(a string) bool {
			t, err := parseTarget(a, shape)
			return err == nil && t.extension == "" && strings.EqualFold(t.attr, attr) && (!whole || t.sub == "")
		})
	}
	if len(p.attributes) > 0 {
		return names(p.attributes, false)
	}
	return !names(p.excluded, true)
}

// alwaysReturned are the attributes a projection never removes (RFC 7643
// 7, "returned": "always").
var alwaysReturned = set("id", "schemas", "meta")

// apply trims a representation. id, schemas and meta always stay; a name
// that is not an attribute selects nothing.
func (p projection) apply(rep map[string]any, shape *resourceShape) {
	if len(p.attributes) > 0 {
		keep := map[string]any{}
		for _, k := range []string{"id", "schemas", "meta"} {
			if v, ok := rep[k]; ok {
				keep[k] = v
			}
		}
		for _, a := range p.attributes {
			t, err := parseTarget(a, shape)
			if err != nil || t.unknown || t.filter != nil {
				continue
			}
			copyAttribute(keep, rep, t)
		}
		clear(rep)
		for k, v := range keep {
			rep[k] = v
		}
	}
	for _, a := range p.excluded {
		t, err := parseTarget(a, shape)
		if err != nil || t.unknown || t.filter != nil || alwaysReturned[strings.ToLower(t.attr)] && t.extension == "" {
			continue
		}
		removeAttribute(rep, t)
	}
}

// copyAttribute copies the attribute t names from src to dst.
func copyAttribute(dst, src map[string]any, t target) {
	if t.extension != "" {
		ext, _ := src[t.extension].(map[string]any)
		if ext == nil {
			return
		}
		if t.attr == "" {
			dst[t.extension] = ext
			return
		}
		d, _ := dst[t.extension].(map[string]any)
		if d == nil {
			d = map[string]any{}
			dst[t.extension] = d
		}
		dst, src = d, ext
	}
	key, ok := lookupFold(src, t.attr)
	if !ok {
		return
	}
	if t.sub == "" {
		dst[key] = src[key]
		return
	}
	switch v := src[key].(type) {
	case map[string]any:
		d, _ := dst[key].(map[string]any)
		if d == nil {
			d = map[string]any{}
			dst[key] = d
		}
		if sk, ok := lookupFold(v, t.sub); ok {
			d[sk] = v[sk]
		}
	case []any: // emails.value: that sub-attribute of every value
		var list []any
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				if sk, ok := lookupFold(m, t.sub); ok {
					list = append(list, map[string]any{sk: m[sk]})
				}
			}
		}
		if len(list) > 0 {
			dst[key] = list
		}
	}
}

func removeAttribute(rep map[string]any, t target) {
	if t.extension != "" {
		ext, _ := rep[t.extension].(map[string]any)
		if t.attr != "" {
			removeAttribute(ext, target{attr: t.attr, sub: t.sub})
		}
		if t.attr == "" || len(ext) == 0 {
			// An extension with nothing left in it is left out, not
			// rendered as {}.
			delete(rep, t.extension)
		}
		return
	}
	key, ok := lookupFold(rep, t.attr)
	if !ok {
		return
	}
	if t.sub == "" {
		delete(rep, key)
		return
	}
	for _, v := range elements(rep[key]) {
		if m, ok := v.(map[string]any); ok {
			if sk, ok := lookupFold(m, t.sub); ok {
				delete(m, sk)
			}
		}
	}
}

// storable reports whether both databases can hold s: valid UTF-8 without
// NUL (which PostgreSQL text refuses).
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// stringValue reads a string attribute; absent and null are "".
func stringValue(v any, name string) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		if !storable(v) {
			return "", invalidValue("%s must not contain NUL characters", name)
		}
		return v, nil
	default:
		return "", invalidValue("%s must be a string", name)
	}
}

// boolValue reads a boolean attribute, also written as a string in any
// letter case ("True", "false") as Entra does.
func boolValue(v any, name string) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, invalidValue("%s must be true or false", name)
}

// elements reads a multi-valued attribute: an array, or one value alone.
func elements(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v) // cannot fail: a representation holds JSON values only
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(body)
}

// decodeJSON decodes a request body, keeping numbers as json.Number.
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, invalidSyntax("the body is not valid JSON")
	}
	if dec.More() {
		return nil, invalidSyntax("the body holds more than one JSON value")
	}
	return v, nil
}

// managerAsObject rewrites an enterprise manager given as a bare id string
// ({"manager": "id"}, as Entra sends it) to {"manager": {"value": "id"}},
// the form the library's schema validation accepts. Any other body is
// returned as it is, for the library to judge.
func managerAsObject(body []byte) []byte {
	v, err := decodeJSON(body)
	if err != nil {
		return body
	}
	user, _ := v.(map[string]any)
	ext, _ := getFold(user, enterpriseUserURN).(map[string]any)
	key, ok := lookupFold(ext, "manager")
	if !ok {
		return body
	}
	id, isString := ext[key].(string)
	if !isString {
		return body
	}
	if id == "" {
		delete(ext, key)
	} else {
		ext[key] = map[string]any{"value": id}
	}
	out, err := json.Marshal(user)
	if err != nil {
		return body
	}
	return out
}

// maxAttempts bounds how often update starts over after a concurrent change.
const maxAttempts = 5

// update reads a resource, builds its new state with change and saves it,
// unless nothing changed (Okta renames a group to its own name with every
// membership change). An If-Match header must name the version read;
// without one, a change made meanwhile by another process makes update
// start over rather than overwrite it. Within this process, updates of one
// resource (key) run one at a time: identity providers send parallel
// PATCHes to one group, which would otherwise race and start over.
func update[T any](r *http.Request, key string, load func() (*T, int64, error), change func(cur *T) (*T, error),
	same func(a, b *T) bool, save func(next *T, version int64) error) (*T, error) {
	defer resourceLocks.lock(key)()
	match := ifMatchOf(r)
	for attempt := 1; ; attempt++ {
		cur, version, err := load()
		if err != nil {
			return nil, err
		}
		if err := match.check(version); err != nil {
			return nil, err
		}
		next, err := change(cur)
		if err != nil {
			return nil, err
		}
		if same(cur, next) {
			return cur, nil
		}
		err = save(next, version)
		if tokens.ErrorCode(err) == tokens.VersionChanged && !match.present && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
}

// keyedMutex holds one mutex per key, for as long as it is wanted.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	wanted int
}

var resourceLocks = keyedMutex{locks: map[string]*keyedLock{}}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.wanted++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.wanted--; l.wanted == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
