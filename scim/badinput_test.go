package scim

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// Bad requests of every kind are answered with a SCIM error of the right
// status and scimType, never a 500.
func TestBadRequests(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) { testBadRequests(t, dialect) })
	}
}

func testBadRequests(t *testing.T, dialect string) {
	f := newFixture(t, dialect)
	user := f.createUser("target@example.com")
	f.createUser("other@example.com")
	r := f.do("POST", "/scim/v2/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Target"}`)
	group := r.body["id"].(string)
	f.do("POST", "/scim/v2/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Other"}`)

	const userSchemas = `"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]`
	const groupSchemas = `"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]`
	users, groups := "/scim/v2/Users", "/scim/v2/Groups"
	userPath, groupPath := users+"/"+user, groups+"/"+group
	patch := func(ops string) string { return entraPatch(ops) }

	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		header   []string
		status   int
		scimType string // "-" skips the check
	}{
		// Bodies of POST and PUT.
		{"not JSON", "POST", users, `{"userName": `, nil, 400, "invalidSyntax"},
		{"an array", "POST", users, `[1, 2]`, nil, 400, "invalidSyntax"},
		{"null", "POST", users, `null`, nil, 400, "invalidSyntax"},
		{"empty", "POST", users, ``, nil, 400, "invalidSyntax"},
		{"no schemas", "POST", users, `{"userName": "x"}`, nil, 400, "invalidSyntax"},
		{"no userName", "POST", users, `{` + userSchemas + `}`, nil, 400, "invalidValue"},
		{"empty userName", "POST", users, `{` + userSchemas + `, "userName": ""}`, nil, 400, "invalidValue"},
		{"userName too long", "POST", users, `{` + userSchemas + `, "userName": "` + strings.Repeat("a", 201) + `"}`, nil, 400, "invalidValue"},
		{"userName with a control character", "POST", users, `{` + userSchemas + `, "userName": "a\u0007b"}`, nil, 400, "invalidValue"},
		{"userName a number", "POST", users, `{` + userSchemas + `, "userName": 7}`, nil, 400, "invalidValue"},
		{"active not a boolean", "POST", users, `{` + userSchemas + `, "userName": "x", "active": "maybe"}`, nil, 400, "invalidValue"},
		{"emails a number", "POST", users, `{` + userSchemas + `, "userName": "x", "emails": 5}`, nil, 400, "invalidSyntax"},
		{"two primary emails", "POST", users, `{` + userSchemas + `, "userName": "x", "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": "True"}]}`, nil, 400, "invalidValue"},
		{"NUL in a name", "POST", users, `{` + userSchemas + `, "userName": "x", "name": {"givenName": "a\u0000b"}}`, nil, 400, "invalidValue"},
		{"NUL in an email", "PUT", userPath, `{` + userSchemas + `, "userName": "x", "emails": [{"value": "\u0000"}]}`, nil, 400, "invalidValue"},
		{"manager a number", "POST", users, `{` + userSchemas + `, "userName": "x", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": 5}}`, nil, 400, "invalidValue"},
		{"duplicate userName", "POST", users, `{` + userSchemas + `, "userName": "TARGET@example.com"}`, nil, 409, "uniqueness"},
		{"PUT to a taken userName", "PUT", userPath, `{` + userSchemas + `, "userName": "Other@Example.com"}`, nil, 409, "uniqueness"},
		{"PUT to no user", "PUT", users + "/usr_nobody", `{` + userSchemas + `, "userName": "x"}`, nil, 404, ""},
		{"duplicate group name", "POST", groups, `{` + groupSchemas + `, "displayName": "target"}`, nil, 409, "uniqueness"},
		{"group without a name", "POST", groups, `{` + groupSchemas + `}`, nil, 400, "invalidValue"},
		{"unknown member", "POST", groups, `{` + groupSchemas + `, "displayName": "g", "members": [{"value": "usr_nobody"}]}`, nil, 400, "invalidValue"},
		{"a group as a member", "POST", groups, fmt.Sprintf(`{`+groupSchemas+`, "displayName": "g", "members": [{"value": %q, "type": "Group"}]}`, group), nil, 400, "invalidValue"},
		{"a member without value", "PUT", groupPath, `{` + groupSchemas + `, "displayName": "Target", "members": [{"display": "x"}]}`, nil, 400, "invalidValue"},
		{"a member with NUL", "PUT", groupPath, `{` + groupSchemas + `, "displayName": "Target", "members": [{"value": "a\u0000"}]}`, nil, 400, "invalidValue"},
		{"a body too large", "POST", users, `{"userName": "` + strings.Repeat("a", 1<<20) + `"}`, nil, 413, ""},

		// PATCH messages.
		{"patch not JSON", "PATCH", userPath, `{`, nil, 400, "invalidSyntax"},
		{"patch trailing data", "PATCH", userPath, patch(`{"op": "replace", "path": "displayName", "value": "x"}`) + `{}`, nil, 400, "invalidSyntax"},
		{"patch without schemas", "PATCH", userPath, `{"Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}`, nil, 400, "invalidSyntax"},
		{"patch with a resource's schema", "PATCH", userPath, `{` + userSchemas + `, "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}`, nil, 400, "invalidSyntax"},
		{"patch without operations", "PATCH", userPath, patch(``), nil, 400, "invalidSyntax"},
		{"patch operations an object", "PATCH", userPath, `{"schemas": ["` + patchOpURN + `"], "Operations": {}}`, nil, 400, "invalidSyntax"},
		{"patch operation a string", "PATCH", userPath, patch(`"replace"`), nil, 400, "invalidSyntax"},
		{"patch op move", "PATCH", userPath, patch(`{"op": "move", "path": "displayName"}`), nil, 400, "invalidSyntax"},
		{"patch op missing", "PATCH", userPath, patch(`{"path": "displayName", "value": "x"}`), nil, 400, "invalidSyntax"},
		{"patch path a number", "PATCH", userPath, patch(`{"op": "replace", "path": 5, "value": "x"}`), nil, 400, "invalidPath"},
		{"patch path with a space", "PATCH", userPath, patch(`{"op": "replace", "path": "display Name", "value": "x"}`), nil, 400, "invalidPath"},
		{"patch path a bracket", "PATCH", userPath, patch(`{"op": "replace", "path": "emails[type eq", "value": "x"}`), nil, 400, "invalidPath"},
		{"patch path the core schema", "PATCH", userPath, patch(`{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User", "value": {}}`), nil, 400, "invalidPath"},
		{"remove without path", "PATCH", userPath, patch(`{"op": "remove"}`), nil, 400, "noTarget"},
		{"replace without path, not an object", "PATCH", userPath, patch(`{"op": "replace", "value": false}`), nil, 400, "invalidValue"},
		{"replace the id", "PATCH", userPath, patch(`{"op": "replace", "path": "id", "value": "usr_mine"}`), nil, 400, "mutability"},
		{"replace meta", "PATCH", userPath, patch(`{"op": "replace", "path": "meta.version", "value": "1"}`), nil, 400, "mutability"},
		{"remove the userName", "PATCH", userPath, patch(`{"op": "remove", "path": "userName"}`), nil, 400, "mutability"},
		{"remove the group name", "PATCH", groupPath, patch(`{"op": "Remove", "path": "displayName"}`), nil, 400, "mutability"},
		{"replace userName with a number", "PATCH", userPath, patch(`{"op": "replace", "path": "userName", "value": 5}`), nil, 400, "invalidValue"},
		{"replace userName with null", "PATCH", userPath, patch(`{"op": "replace", "path": "userName", "value": null}`), nil, 400, "invalidValue"},
		{"replace to a taken userName", "PATCH", userPath, patch(`{"op": "replace", "path": "userName", "value": "OTHER@example.com"}`), nil, 409, "uniqueness"},
		{"rename to a taken group name", "PATCH", groupPath, patch(`{"op": "replace", "path": "displayName", "value": "other"}`), nil, 409, "uniqueness"},
		{"active not a boolean", "PATCH", userPath, patch(`{"op": "replace", "path": "active", "value": "nope"}`), nil, 400, "invalidValue"},
		{"active a number", "PATCH", userPath, patch(`{"op": "replace", "value": {"active": 0}}`), nil, 400, "invalidValue"},
		{"a value filter on a single value", "PATCH", userPath, patch(`{"op": "replace", "path": "userName[value eq \"x\"]", "value": "y"}`), nil, 400, "invalidPath"},
		{"a value filter that builds nothing", "PATCH", userPath, patch(`{"op": "replace", "path": "emails[type ne \"work\"].value", "value": "a@x"}`), nil, 400, "noTarget"},
		{"a value filter value not an object", "PATCH", userPath, patch(`{"op": "add", "path": "emails[type eq \"work\"]", "value": "a@x"}`), nil, 400, "invalidValue"},
		{"the name not an object", "PATCH", userPath, patch(`{"op": "replace", "path": "name", "value": "Barbara"}`), nil, 400, "invalidValue"},
		{"the enterprise extension not an object", "PATCH", userPath, patch(`{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": 5}`), nil, 400, "invalidValue"},
		{"add an unknown member", "PATCH", groupPath, patch(`{"op": "add", "path": "members", "value": [{"value": "usr_nobody"}]}`), nil, 400, "invalidValue"},
		{"add a member without value", "PATCH", groupPath, patch(`{"op": "add", "path": "members", "value": [{"display": "x"}]}`), nil, 400, "invalidValue"},
		{"add members a number", "PATCH", groupPath, patch(`{"op": "add", "path": "members", "value": 5}`), nil, 400, "invalidValue"},
		{"patch of no user", "PATCH", users + "/usr_nobody", patch(`{"op": "replace", "path": "active", "value": false}`), nil, 404, ""},
		{"patch of no group", "PATCH", groups + "/grp_nobody", patch(`{"op": "replace", "path": "displayName", "value": "x"}`), nil, 404, ""},
		{"too many operations", "PATCH", userPath, patch(strings.Repeat(`{"op": "replace", "path": "displayName", "value": "x"},`, 1000) + `{"op": "remove", "path": "displayName"}`), nil, 413, ""},
		{"too many values for one attribute", "PATCH", userPath, patch(`{"op": "add", "path": "emails", "value": [` + manyEmails(10001) + `]}`), nil, 413, ""},
		{"too many values over several operations", "PATCH", groupPath, patch(`{"op": "add", "path": "members", "value": [` + manyMembers(6000) + `]}, {"op": "remove", "path": "members", "value": [` + manyMembers(6000) + `]}`), nil, 413, ""},
		{"a path naming no attribute", "PATCH", userPath, patch(`{"op": "replace", "path": "nosuchattribute", "value": "x"}`), nil, 400, "invalidPath"},
		{"a path naming no attribute of a group", "PATCH", groupPath, patch(`{"op": "add", "path": "owners", "value": [{"value": "x"}]}`), nil, 400, "invalidPath"},
		{"microsoft's misspelt manager path", "PATCH", userPath, patch(`{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager", "value": "x"}`), nil, 400, "invalidPath"},
		{"a path in an extension this server lacks", "PATCH", userPath, patch(`{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:badge", "value": "7"}`), nil, 400, "invalidPath"},
		{"a path naming no attribute of an extension", "PATCH", userPath, patch(`{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge", "value": "7"}`), nil, 400, "invalidPath"},
		{"a path naming no sub-attribute", "PATCH", userPath, patch(`{"op": "replace", "path": "name.nickName", "value": "x"}`), nil, 400, "invalidPath"},
		{"a sub-attribute of a simple attribute", "PATCH", userPath, patch(`{"op": "replace", "path": "userName.value", "value": "x"}`), nil, 400, "invalidPath"},
		{"replace on a type no address has", "PATCH", userPath, patch(`{"op": "replace", "path": "emails[type eq \"nonexistent\"].value", "value": "a@x"}`), nil, 400, "noTarget"},
		{"replace on an address no value matches", "PATCH", userPath, patch(`{"op": "replace", "path": "emails[value eq \"nobody@x\"]", "value": {"value": "a@x"}}`), nil, 400, "noTarget"},
		{"the groups of a user are read-only", "PATCH", userPath, patch(`{"op": "add", "path": "groups", "value": [{"value": "` + group + `"}]}`), nil, 400, "mutability"},
		{"sites a number", "PATCH", userPath, patch(`{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": 5}`), nil, 400, "invalidValue"},
		{"a site name too long", "PATCH", userPath, patch(`{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "` + strings.Repeat("s", 201) + `"}`), nil, 400, "invalidValue"},
		{"a site name with a control character", "PATCH", userPath, patch(`{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "a\u0007b"}`), nil, 400, "invalidValue"},
		{"sites an object in a body", "POST", users, `{` + userSchemas + `, "userName": "s", "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User": {"sites": {"name": "x"}}}`, nil, 400, "invalidValue"},
		{"the extension not an object in a body", "PUT", userPath, `{` + userSchemas + `, "userName": "target@example.com", "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User": "Sydney"}`, nil, 400, "invalidValue"},

		// ETags.
		{"If-Match another version: PATCH", "PATCH", userPath, patch(`{"op": "replace", "path": "displayName", "value": "x"}`), []string{"If-Match", `W/"99"`}, 412, ""},
		{"If-Match another version: PUT", "PUT", userPath, `{` + userSchemas + `, "userName": "target@example.com"}`, []string{"If-Match", `W/"99"`}, 412, ""},
		{"If-Match another version: DELETE", "DELETE", userPath, ``, []string{"If-Match", `"99"`}, 412, ""},
		{"If-Match garbage", "PATCH", groupPath, patch(`{"op": "replace", "path": "displayName", "value": "x"}`), []string{"If-Match", `nonsense`}, 412, ""},

		// Queries.
		{"filter: no value", "GET", users + "?filter=" + q(`userName eq`), ``, nil, 400, "invalidFilter"},
		{"filter: unknown attribute", "GET", users + "?filter=" + q(`password eq "x"`), ``, nil, 400, "invalidFilter"},
		{"filter: unknown operator", "GET", users + "?filter=" + q(`userName xx "x"`), ``, nil, 400, "invalidFilter"},
		{"filter: unbalanced", "GET", users + "?filter=" + q(`((userName eq "x"`), ``, nil, 400, "invalidFilter"},
		{"filter: a NUL", "GET", users + "?filter=" + q("userName eq \"a\u0000b\""), ``, nil, 400, "invalidFilter"},
		{"filter: unquoted value", "GET", users + "?filter=" + q(`externalId eq jyoung`), ``, nil, 400, "invalidFilter"},
		{"filter: ordering a boolean", "GET", users + "?filter=" + q(`active gt true`), ``, nil, 400, "invalidFilter"},
		{"filter: on groups, a user attribute", "GET", groups + "?filter=" + q(`userName eq "x"`), ``, nil, 400, "invalidFilter"},
		{"filter: users by their groups", "GET", users + "?filter=" + q(`groups.display eq "x" or userName eq "y"`), ``, nil, 400, "invalidFilter"},
		{"filter: users by their groups, a value path", "GET", users + "?filter=" + q(`not (groups[display eq "x"])`), ``, nil, 400, "invalidFilter"},
		{"filter: a date that is no date", "GET", users + "?filter=" + q(`meta.lastModified ge "garbage"`), ``, nil, 400, "invalidFilter"},
		{"filter: a date that is a number", "GET", groups + "?filter=" + q(`meta.created gt 7`), ``, nil, 400, "invalidFilter"},
		{"filter: a date in a negation", "GET", users + "?filter=" + q(`not (meta.lastModified lt "yesterday")`), ``, nil, 400, "invalidFilter"},
		{"count not a number", "GET", users + "?count=ten", ``, nil, 400, "-"},
		{"startIndex not a number", "GET", users + "?startIndex=one", ``, nil, 400, "-"},

		// Resources that are not there.
		{"GET no user", "GET", users + "/usr_nobody", ``, nil, 404, ""},
		{"GET an id with NUL", "GET", users + "/a%00b", ``, nil, 404, ""},
		{"GET an id not UTF-8", "GET", users + "/%FF%FE", ``, nil, 404, ""},
		{"GET a group id with NUL", "GET", groups + "/a%00b", ``, nil, 404, ""},
		{"DELETE no user", "DELETE", users + "/usr_nobody", ``, nil, 404, ""},
		{"DELETE no group", "DELETE", groups + "/grp_nobody", ``, nil, 404, ""},
		{"an unknown endpoint", "GET", "/scim/v2/Devices", ``, nil, 404, ""},
		{"GET /Users/ without an id", "GET", users + "/", ``, nil, 404, ""},
		{"PUT /Groups/ without an id", "PUT", groups + "/", `{` + groupSchemas + `, "displayName": "x"}`, nil, 404, ""},
		{"PATCH of the collection", "PATCH", users, patch(`{"op": "replace", "path": "active", "value": false}`), nil, 404, ""},
		{"PATCH without id", "PATCH", users + "/", patch(`{"op": "replace", "path": "active", "value": false}`), nil, 404, ""},
		{"PATCH under a doubled prefix", "PATCH", "/scim/v2/v2/Groups/grp_nobody", patch(`{"op": "replace", "path": "displayName", "value": "x"}`), nil, 404, ""},
		{"write the configuration", "PUT", "/scim/v2/ServiceProviderConfig", `{}`, nil, 405, ""},
		{"an unknown schema", "GET", "/scim/v2/Schemas/urn:x", ``, nil, 404, ""},
		{"an unknown resource type", "GET", "/scim/v2/ResourceTypes/Device", ``, nil, 404, ""},

		// Queries across resource types (RFC 7644 3.4.2.1) are not served:
		// 404 saying so, as conformance suites expect of a server without
		// them, not a 400 tooMany that blames the filter.
		{"a query of every resource type", "GET", "/scim/v2/?filter=" + q(`id pr`), ``, nil, 404, ""},
		{"the root without a filter", "GET", "/scim/v2/", ``, nil, 404, ""},
		{"the root without a slash", "GET", "/scim/v2", ``, nil, 404, ""},
		{"a search of every resource type", "POST", "/scim/v2/.search", `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "id pr"}`, nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.t = t
			r := f.do(tt.method, tt.path, tt.body, tt.header...)
			scimType := tt.scimType
			if scimType == "-" {
				scimType, _ = r.body["scimType"].(string)
			}
			checkError(t, r, tt.status, scimType)
			if strings.Contains(r.raw, "sql") || strings.Contains(r.raw, "pq:") || strings.Contains(r.raw, "goroutine") {
				t.Errorf("the body tells internals: %s", r.raw)
			}
		})
	}
	// None of it changed the target user.
	f.t = t
	r = f.do("GET", userPath, "")
	if r.body["userName"] != "target@example.com" || r.body["active"] != true || get(r.body, "meta.version") != `W/"1"` {
		t.Errorf("the bad requests changed the user: %s", r.raw)
	}
}

// Queries that match nothing answer an empty list, also when no stored
// value could match.
func TestQueriesWithoutMatches(t *testing.T) {
	f := newFixture(t, "sqlite")
	f.createUser("someone@example.com")
	for _, filter := range []string{
		`userName eq "\u0000"`, "userName eq \"\xff\xfe\"", `externalId eq "nope"`,
		`emails eq "nobody@example.com"`, `emails.value eq "nobody@example.com"`, `id eq "usr_none"`,
		`userName eq 5`, `userName eq null`, `userName eq true`, `not (userName pr)`,
		`meta.lastModified lt "2000-01-01T00:00:00Z"`, `userName eq "someone@example.com" and active eq false`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"`,
	} {
		r := f.do("GET", "/scim/v2/Users?filter="+q(filter), "")
		if r.status != 200 || get(r.body, "totalResults") != 0.0 || count(r, "Resources") != 0 {
			t.Errorf("filter %q: %d %s", filter, r.status, r.raw)
		}
	}
}

func q(filter string) string { return url.QueryEscape(filter) }

// manyEmails lists n addresses as SCIM values.
func manyEmails(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"value": "u%d@example.com"}`, i)
	}
	return b.String()
}

// manyMembers lists n member values (of users that need not exist).
func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"value": "usr_%d"}`, i)
	}
	return b.String()
}
