package scim

import (
	"encoding/json"
	"strings"

	"github.com/scimgate/scimgate/tokens"
)

// A person's sites travel in scimgate's User extension:
//
//	"urn:ietf:params:scim:schemas:extension:scimgate:2.0:User": {"sites": ["Sydney", "Melbourne"]}
//
// Okta sends a custom attribute of type "string array" as above. Entra's
// custom attributes cannot be multi-valued, so Entra sends one string,
// "Sydney" or, for several sites, "Sydney,Melbourne" (a mapping such as
// Join(",", …)); a site's name therefore cannot contain a comma. Values
// written {"value": "Sydney"}, as other multi-valued attributes are, are
// accepted too.

// isSites reports whether t is the sites attribute of the extension.
func isSites(t target) bool {
	return strings.EqualFold(t.extension, scimgateUserURN) && strings.EqualFold(t.attr, "sites")
}

// siteValues reads what a client gives as sites (a string, an array of
// strings or of {"value": …} objects, or null) into an array of names.
// Commas separate names; spaces around a name do not count, and an empty
// name is skipped.
func siteValues(v any) ([]any, error) {
	var out []any
	for _, e := range elements(v) {
		if m, ok := e.(map[string]any); ok {
			e = getFold(m, "value")
		}
		s, ok := e.(string)
		if !ok {
			return nil, invalidValue("each of sites must be a site name, a string")
		}
		if !storable(s) {
			return nil, invalidValue("sites must not contain NUL characters")
		}
		for name := range strings.SplitSeq(s, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out = append(out, name)
			}
		}
	}
	return out, nil
}

// siteKey tells two site names apart as the domain does: without regard
// to letter case.
func siteKey(v any) string {
	if s, ok := v.(string); ok {
		return "s" + strings.ToLower(s)
	}
	return sameValueKey(v)
}

// sitesFrom reads the sites of a representation's extension object into
// names, each once whatever its letter case, in the order given. It never
// returns nil: a representation without sites says the user has none.
func sitesFrom(ext map[string]any) ([]string, error) {
	values, err := siteValues(getFold(ext, "sites"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(values))
	seen := make(map[string]bool, len(values))
	for _, v := range values {
		name := v.(string)
		if _, err := tokens.CheckSiteName(name); err != nil {
			return nil, invalidValue("%s", err.Error())
		}
		if k := strings.ToLower(name); !seen[k] {
			seen[k] = true
			names = append(names, name)
		}
	}
	return names, nil
}

// sameSites compares a user's sites with those of a change to it as sets,
// without regard to letter case: an identity provider that spells a site
// differently from how it was created changes nothing. A nil next keeps
// the sites.
func sameSites(cur, next []string) bool {
	if next == nil {
		return true
	}
	in := make(map[string]bool, len(cur))
	for _, s := range cur {
		in[strings.ToLower(s)] = true
	}
	seen := make(map[string]bool, len(next))
	for _, s := range next {
		k := strings.ToLower(s)
		if !in[k] {
			return false
		}
		seen[k] = true
	}
	return len(seen) == len(in)
}

// bodySites takes the sites out of a POST or PUT body of a User, where the
// library's validation would refuse a single string (Entra's form), and
// returns them with the body to hand on. given is false when the body says
// nothing of sites: a PUT then keeps them, as it keeps active, since an
// identity provider whose mappings do not include sites must not wipe
// those given by the command line. A top-level
// "urn:…:scimgate:2.0:User:sites" member, the flattened form, counts too.
func bodySites(body []byte) (rest []byte, sites []string, given bool, err error) {
	v, err := decodeJSON(body)
	if err != nil {
		return body, nil, false, nil // the library answers for a body that is not JSON
	}
	user, ok := v.(map[string]any)
	if !ok {
		return body, nil, false, nil
	}
	ext := map[string]any{}
	if key, ok := lookupFold(user, scimgateUserURN+":sites"); ok {
		ext["sites"] = user[key]
		delete(user, key)
		given = true
	}
	if key, ok := lookupFold(user, scimgateUserURN); ok {
		obj, isObj := user[key].(map[string]any)
		if !isObj && user[key] != nil {
			return body, nil, false, invalidValue("%s must be an object", scimgateUserURN)
		}
		if k, ok := lookupFold(obj, "sites"); ok {
			ext["sites"] = obj[k]
			given = true
		}
		delete(user, key) // the library knows no other attribute of it
	}
	if !given {
		return body, nil, false, nil
	}
	if sites, err = sitesFrom(ext); err != nil {
		return body, nil, false, err
	}
	rest, err = json.Marshal(user)
	if err != nil {
		return body, nil, false, err
	}
	return rest, sites, true, nil
}
