package scim

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/scimgate/scimgate/tokens"
)

func sampleGroup() *tokens.Group {
	u := sampleUser()
	return &tokens.Group{ID: "grp_1", OrgID: u.OrgID, DisplayName: "Engineering", ExternalID: "ext-g",
		MemberIDs: []string{"usr_1", "usr_2"}, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, Version: 2}
}

// fuzzServer is a fixture with a user and a group to aim requests at.
func fuzzServer(f *testing.F) (fx *fixture, userID, groupID string) {
	fx = newFixture(f, "sqlite")
	userID = fx.createUser("fuzz@example.com")
	other := fx.createUser("other@example.com")
	r := fx.do("POST", "/scim/v2/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
		"displayName": "Fuzzers", "members": [{"value": "`+other+`"}]}`)
	return fx, userID, r.body["id"].(string)
}

// serve sends a request straight to the handler and fails on a 5xx or a
// body that is not JSON.
func serve(t *testing.T, fx *fixture, method, target, body string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fx.token)
	fx.handler.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s\n%s\nanswered %d: %s\nlog: %s", method, target, body, rec.Code, rec.Body, fx.logs)
	}
	if rec.Code != http.StatusNoContent && !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("%s %s\n%s\nanswered %d with a body that is not JSON: %q", method, target, body, rec.Code, rec.Body)
	}
}

func FuzzFilter(f *testing.F) {
	for _, seed := range []string{
		`userName eq "test.user@okta.local"`,
		`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
		`emails[type eq "work"].value eq "a@example.com"`,
		`emails[type eq "work" and value co "@"] or not (active eq false)`,
		`displayName eq "Fuzzers"`,
		`id eq "grp_1" and members eq "usr_1"`,
		`members[value eq "usr_1"]`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x"`,
		`name.givenName sw "B" and userName ew ".com"`,
		`userName eq 5.5e3`,
		`meta.version eq "W/\"3\""`,
		`emails[type eq "work"].value pr`,
		`((userName pr))`,
	} {
		f.Add(seed)
	}
	user := testUsers.render(sampleUser())
	group := testGroups.render(sampleGroup())
	fx, _, _ := fuzzServer(f)
	f.Fuzz(func(t *testing.T, filter string) {
		if e, err := parseFilter(rewriteFilter(filter)); err == nil {
			matches(e, user, &userShape, "")
			matches(e, group, &groupShape, "")
			pushdown(e, &userShape, tokens.KindUsers)
			pushdown(e, &groupShape, tokens.KindGroups)
		}
		for _, endpoint := range []string{"/scim/v2/Users", "/scim/v2/Groups"} {
			serve(t, fx, "GET", endpoint+"?count=5&filter="+url.QueryEscape(filter), "")
		}
	})
}

// patchSeeds are PATCH messages of Okta, Entra and the conformance suites.
var patchSeeds = []struct{ body, op, path, value string }{
	{oktaDeactivate, "replace", "", `{"active": false}`},
	{entraPatch(`{"op": "Replace", "path": "active", "value": "False"}`), "Replace", "active", `"False"`},
	{entraPatch(`{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"}, {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}`),
		"Replace", `emails[type eq "work"].value`, `"updatedEmail@microsoft.com"`},
	{entraPatch(`{"op": "Replace", "value": {"name.givenName": "B", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1"}}`),
		"Replace", "", `{"name.givenName": "B", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1"}`},
	{entraPatch(`{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "usr_1"}`),
		"Add", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", `"usr_1"`},
	{entraPatch(`{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "usr_2"}]}`),
		"Remove", "members", `[{"$ref": null, "value": "usr_2"}]`},
	{entraPatch(`{"op": "remove", "path": "members[value eq \"usr_1\"]"}, {"op": "add", "path": "members", "value": [{"value": "usr_1", "display": "x"}]}`),
		"remove", `members[value eq "usr_1"]`, ``},
	{entraPatch(`{"op": "replace", "value": {"id": "grp_1", "displayName": "Test SCIMv2"}}`),
		"replace", "", `{"id": "grp_1", "displayName": "Test SCIMv2"}`},
	{entraPatch(`{"op": "add", "path": "emails[type eq \"other\" and primary eq false]", "value": {"value": "o@x"}}`),
		"add", `emails[type eq "other" and primary eq false]`, `{"value": "o@x"}`},
	{entraPatch(`{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}`),
		"remove", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", ``},
	{entraPatch(`{"op": "replace", "path": "emails", "value": {"value": "x@y", "primary": "true"}}`),
		"replace", "emails.primary", `"true"`},
	{`{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "operations": [{"OP": "ADD", "PATH": "displayName", "VALUE": "x"}]}`,
		"add", "name", `{"givenName": "x", "familyName": null}`},
	{entraPatch(`{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "Sydney,Perth"}`),
		"Replace", "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", `["Darwin", {"value": "perth"}]`},
	{entraPatch(`{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites[value eq \"SYDNEY\"]"}`),
		"add", "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User", `{"sites": "A, B,,a"}`},
	{entraPatch(`{"op": "replace", "path": "emails[type eq \"nonexistent\"].value", "value": "a@x"}`),
		"replace", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager", `"usr_1"`},
	{entraPatch(`{"op": "replace", "path": "nosuchattribute", "value": "x"}`),
		"remove", `emails[value eq "babs@jensen.org"]`, `null`},
	{entraPatch(`{"op": "add", "path": "emails", "value": [{"value": "a@x"}, {"value": "a@x", "type": "home"}, "a@x"]}, {"op": "remove", "path": "emails", "value": ["A@x", {"value": "a@x"}]}`),
		"replace", `emails[value eq "bjensen@example.com"].primary`, `false`},
}

// FuzzPatch applies a raw PATCH body, and one operation built from an op,
// a path and a JSON value (sent as a string when it is not JSON), so that
// most inputs reach the path parser and the patch engine, to a user and a
// group. Properties:
//
//   - a refusal is a SCIM error of the client's (400, or 413 for a limit),
//     never a panic or an internal error;
//   - applying the same operations to the same resource twice gives the
//     same representation;
//   - a value filter answered from the index selects what reading every
//     value selects.
//
// FuzzPatchHTTP sends the same inputs to the handler.
func FuzzPatch(f *testing.F) {
	for _, seed := range patchSeeds {
		f.Add(seed.body, seed.op, seed.path, seed.value)
	}
	f.Fuzz(func(t *testing.T, body, op, path, value string) {
		for _, b := range patchBodies(t, body, op, path, value) {
			ops, err := parsePatch([]byte(b), testLimits)
			if err != nil {
				wantClientError(t, "parsePatch", err)
				continue
			}
			checkPatchProperties(t, ops, &userShape, func() map[string]any { return testUsers.render(sampleUser()) },
				func(rep map[string]any) error { return userFrom(rep, &tokens.User{}) })
			checkPatchProperties(t, ops, &groupShape, func() map[string]any { return testGroups.render(sampleGroup()) },
				func(rep map[string]any) error { return groupFrom(rep, &tokens.Group{}) })
		}
	})
}

// FuzzPatchHTTP sends FuzzPatch's inputs to the handler, a user and a group
// in the same state before each: a PATCH answered with an error changes
// nothing, and one answered 200 answers what the next GET returns.
func FuzzPatchHTTP(f *testing.F) {
	for _, seed := range patchSeeds {
		f.Add(seed.body, seed.op, seed.path, seed.value)
	}
	fx, userID, groupID := fuzzServer(f)
	other := fx.createUser("member@example.com")
	f.Fuzz(func(t *testing.T, body, op, path, value string) {
		serve(t, fx, "PUT", "/scim/v2/Users/"+userID, `{"schemas": ["`+userURN+`"], "userName": "fuzz@example.com",
			"displayName": "Fuzz", "active": true, "emails": [{"value": "fuzz@example.com", "type": "work", "primary": true}],
			"`+enterpriseUserURN+`": {"employeeNumber": "7", "manager": {"value": "`+other+`"}},
			"`+scimgateUserURN+`": {"sites": ["Sydney", "Perth"]}}`)
		serve(t, fx, "PUT", "/scim/v2/Groups/"+groupID, `{"schemas": ["`+groupURN+`"], "displayName": "Fuzzers",
			"members": [{"value": "`+other+`"}, {"value": "`+userID+`"}]}`)
		for _, b := range patchBodies(t, body, op, path, value) {
			patchOverHTTP(t, fx, "/scim/v2/Users/"+userID, b)
			patchOverHTTP(t, fx, "/scim/v2/Groups/"+groupID, b)
		}
	})
}

// patchBodies are the raw body and the one-operation message a fuzz input
// stands for.
func patchBodies(t *testing.T, body, op, path, value string) []string {
	built := map[string]any{"op": op}
	if path != "" {
		built["path"] = path
	}
	if v, err := decodeJSON([]byte(value)); err == nil {
		built["value"] = v
	} else if value != "" {
		built["value"] = value
	}
	one, err := json.Marshal(map[string]any{"schemas": []string{patchOpURN}, "Operations": []any{built}})
	if err != nil {
		t.Skip() // a json.Number the decoder accepted but cannot write back
	}
	return []string{body, string(one)}
}

// wantClientError fails unless err is a SCIM error a client can fix: 400,
// or 413 for a limit.
func wantClientError(t *testing.T, what string, err error) {
	t.Helper()
	var e scimerrors.ScimError
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%s: %#v, want a SCIM 400 or 413", what, err)
	}
}

func checkPatchProperties(t *testing.T, ops []patchOp, shape *resourceShape, fresh func() map[string]any, convert func(map[string]any) error) {
	t.Helper()
	first, second := fresh(), fresh()
	err1 := applyPatch(first, ops, shape, testLimits)
	err2 := applyPatch(second, ops, shape, testLimits)
	j1, _ := json.Marshal(first)
	j2, _ := json.Marshal(second)
	if (err1 == nil) != (err2 == nil) || string(j1) != string(j2) {
		t.Fatalf("the same PATCH applied twice differs: %v %s\n%v %s", err1, j1, err2, j2)
	}
	if err1 != nil {
		wantClientError(t, "applyPatch", err1)
		return
	}
	if err := convert(first); err != nil {
		wantClientError(t, "the patched representation", err)
	}
	// The index answers value eq filters as a scan would.
	for _, o := range ops {
		target, err := parseTarget(o.path, shape)
		if err != nil || target.filter == nil || target.extension != "" {
			continue
		}
		rep := fresh()
		key, ok := lookupFold(rep, target.attr)
		if !ok {
			continue
		}
		l := newValueList(rep, key, elements(rep[key]), sameValueKey)
		parent := strings.ToLower(target.attr)
		var scanned []int
		for i, v := range l.items {
			if matches(target.filter, asObject(v), shape, parent) {
				scanned = append(scanned, i)
			}
		}
		if got := l.selectFilter(target.filter, shape, parent); !slices.Equal(got, scanned) {
			t.Fatalf("%s selects %v, a scan %v", o.path, got, scanned)
		}
	}
}

// patchOverHTTP sends a PATCH to the handler between two GETs of the
// resource.
func patchOverHTTP(t *testing.T, fx *fixture, target, body string) {
	t.Helper()
	read := func() any {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("Authorization", "Bearer "+fx.token)
		fx.handler.ServeHTTP(rec, req)
		var v any
		json.Unmarshal(rec.Body.Bytes(), &v)
		return v
	}
	before := read()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("PATCH", target+"?attributes=id,displayName,members,userName,emails,name,active,groups,externalId,"+
		enterpriseUserURN+","+scimgateUserURN, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fx.token)
	fx.handler.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("PATCH %s\n%s\nanswered %d: %s\nlog: %s", target, body, rec.Code, rec.Body, fx.logs)
	}
	after := read()
	if rec.Code != http.StatusOK {
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("PATCH %s\n%s\nwas refused (%d %s) but changed the resource:\n%v\n%v", target, body, rec.Code, rec.Body, before, after)
		}
		return
	}
	var answered any
	json.Unmarshal(rec.Body.Bytes(), &answered)
	if !reflect.DeepEqual(answered, after) {
		t.Fatalf("PATCH %s\n%s\nanswered\n%s\nbut a GET then returns\n%v", target, body, rec.Body, after)
	}
}

// FuzzSiteValues checks the reading of sites as a client sends them: a
// string (comma-separated), an array, value objects. Whatever the input,
// the names are trimmed, not empty, comma-free, and read back the same
// when joined with commas.
func FuzzSiteValues(f *testing.F) {
	for _, seed := range []string{"Sydney", "Sydney,Perth", " a , ,b,", `["x", {"value": "y,z"}]`, `{"value": 5}`, "Zürich\u0000", ","} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var given any = input
		if v, err := decodeJSON([]byte(input)); err == nil {
			given = v
		}
		values, err := siteValues(given)
		if err != nil {
			wantClientError(t, "siteValues", err)
			return
		}
		names := make([]string, len(values))
		for i, v := range values {
			name, ok := v.(string)
			if !ok || name == "" || name != strings.TrimSpace(name) || strings.Contains(name, ",") {
				t.Fatalf("siteValues(%q) gave %q", input, v)
			}
			names[i] = name
		}
		again, err := siteValues(strings.Join(names, ","))
		if err != nil || len(again) != len(names) {
			t.Fatalf("siteValues(%q) = %q, but their join reads as %q, %v", input, names, again, err)
		}
		for i := range again {
			if again[i] != names[i] {
				t.Fatalf("siteValues(%q) = %q, but their join reads as %q", input, names, again)
			}
		}
		if _, err := sitesFrom(map[string]any{"sites": given}); err != nil {
			wantClientError(t, "sitesFrom", err)
		}
	})
}

// FuzzValuePath checks the quick reading of name[value eq "…"] against the
// general parser: whenever it accepts a path, the parser reads the same.
func FuzzValuePath(f *testing.F) {
	for _, seed := range []string{`members[value eq "usr_1"]`, `members[value eq "a\"b"]`, `emails[value eq "ü"].display`,
		`members[value eq ""]`, `Members[value eq "x"].$ref`, `members[VALUE eq "x"]`, `9a[value eq "x"]`, `members[value eq "x"]]`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		quick, ok := quickValuePath(p)
		if !ok {
			return
		}
		general, err := parsePathGenerally(p)
		if err != nil || !reflect.DeepEqual(quick, general) {
			t.Fatalf("%q: the quick reading is %#v, the parser's %#v (%v)", p, quick, general, err)
		}
	})
}

// FuzzBody sends a body as the create and the replacement of a user and a
// group: the library validates it, this package converts it.
func FuzzBody(f *testing.F) {
	for _, seed := range []string{
		oktaCreateUser,
		entraCreateUser,
		`{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"], "userName": "m",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "1", "manager": "usr_x"}}`,
		`{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"], "displayName": "g", "members": [{"value": "usr_1"}]}`,
		`{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x", "emails": {"value": "a@b", "primary": "True"}, "active": "False"}`,
	} {
		f.Add(seed)
	}
	fx, userID, groupID := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		serve(t, fx, "POST", "/scim/v2/Users", body)
		serve(t, fx, "PUT", "/scim/v2/Users/"+userID, body)
		serve(t, fx, "POST", "/scim/v2/Groups", body)
		serve(t, fx, "PUT", "/scim/v2/Groups/"+groupID, body)
		serve(t, fx, "POST", "/scim/v2/Users/.search", body)
	})
}
