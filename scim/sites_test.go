package scim

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

const sitesPath = scimgateUserURN + ":sites"

// sitesOf reads the sites of a user's representation.
func sitesOf(body map[string]any) []string {
	var out []string
	list, _ := get(body, scimgateUserURN+".sites").([]any)
	for _, s := range list {
		out = append(out, s.(string))
	}
	return out
}

// TestSitesOverSCIM provisions sites the ways Okta (string arrays in POST
// and PUT) and Entra (one comma-separated string, PATCH by path) do, and
// checks after each step what the user's representation and the user's
// token say.
func TestSitesOverSCIM(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) { testSitesOverSCIM(t, dialect) })
	}
}

func testSitesOverSCIM(t *testing.T, dialect string) {
	f := newFixture(t, dialect)
	ctx := context.Background()
	okta := `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + scimgateUserURN + `"],
		"userName": "alice@acme.test", "name": {"givenName": "Alice", "familyName": "A"}, "active": true, "groups": [],
		"` + scimgateUserURN + `": {"sites": ["Sydney", "Melbourne"]}}`
	r := f.do("POST", "/scim/v2/Users", okta)
	if r.status != 201 {
		t.Fatalf("Okta create with sites: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	token := f.userToken(id)
	var step string
	expect := func(body map[string]any, want ...string) {
		t.Helper()
		if body != nil {
			if got := sitesOf(body); !slices.Equal(got, want) {
				t.Errorf("%s: representation's sites %q, want %q", step, got, want)
			}
		}
		got := f.do("GET", "/scim/v2/Users/"+id, "")
		if s := sitesOf(got.body); !slices.Equal(s, want) {
			t.Errorf("%s: GET gives sites %q, want %q", step, s, want)
		}
		list := f.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "alice@acme.test"`), "")
		if s := sitesOf(get(list.body, "Resources[0]").(map[string]any)); !slices.Equal(s, want) {
			t.Errorf("%s: a query gives sites %q, want %q", step, s, want)
		}
		// The token carries them on its very next use.
		identity, err := f.auth.Authenticate(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(identity.Sites, want) {
			t.Errorf("%s: the token's identity has sites %q, want %q", step, identity.Sites, want)
		}
	}
	step = "okta create"
	expect(r.body, "Melbourne", "Sydney")
	if !slices.Contains(r.body["schemas"].([]any), any(scimgateUserURN)) {
		t.Errorf("the user's schemas %v do not list the scimgate extension", r.body["schemas"])
	}

	step = "okta put without the extension keeps the sites"
	put := strings.Replace(oktaPutUser(true), `"test.user@okta.local"`, `"alice@acme.test"`, 1)
	r = f.do("PUT", "/scim/v2/Users/"+id, put)
	expect(r.body, "Melbourne", "Sydney")

	step = "okta put with other sites"
	withSites := func(sites string) string {
		return strings.Replace(put, `"active": true,`, `"active": true, "`+scimgateUserURN+`": {"sites": `+sites+`},`, 1)
	}
	r = f.do("PUT", "/scim/v2/Users/"+id, withSites(`["Perth", "sydney"]`))
	expect(r.body, "Perth", "Sydney") // the existing site keeps its spelling

	step = "okta put with no sites"
	r = f.do("PUT", "/scim/v2/Users/"+id, withSites(`[]`))
	expect(r.body)

	step = "entra add, one site in a string"
	r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Add", "path": "`+sitesPath+`", "value": "Darwin"}`))
	expect(r.body, "Darwin")

	step = "entra replace, several sites in a string"
	r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Replace", "path": "`+sitesPath+`", "value": "Hobart,Perth , darwin"}`))
	expect(r.body, "Darwin", "Hobart", "Perth") // Darwin exists: as it is spelt

	step = "remove one by value"
	r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Remove", "path": "`+sitesPath+`", "value": "PERTH"}`))
	expect(r.body, "Darwin", "Hobart")

	step = "remove them all"
	r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Remove", "path": "`+sitesPath+`"}`))
	expect(r.body)

	step = "entra create, the extension with a string"
	r = f.do("POST", "/scim/v2/Users", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob@acme.test", "active": true,
		"`+scimgateUserURN+`": {"sites": "Sydney,Atlantis"}}`)
	if r.status != 201 || !slices.Equal(sitesOf(r.body), []string{"Atlantis", "Sydney"}) {
		t.Errorf("%s: %d %s", step, r.status, r.raw)
	}
	// Each site was created by its first use, once whatever its case,
	// audited under the identity provider's token.
	sites, err := f.svc.Sites(ctx, f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) != 6 {
		t.Errorf("the org has %d sites, want 6: %+v", len(sites), sites)
	}
	events, _ := f.svc.Audit(ctx, tokens.AuditFilter{OrgID: f.org.ID, Limit: 1000})
	created := 0
	for _, e := range events {
		if e.Action == "site.create" && strings.Contains(e.Actor, f.tokenID) {
			created++
		}
	}
	if created != 6 {
		t.Errorf("%d site creations audited under the IdP's token, want 6", created)
	}

	step = "refused when unknown sites are refused"
	f.svc.UnknownSites = tokens.RefuseUnknownSites
	r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Add", "path": "`+sitesPath+`", "value": "Sydney, Lemuria"}, `+
		`{"op": "replace", "path": "displayName", "value": "changed"}`))
	checkError(t, r, 400, "invalidValue")
	if !strings.Contains(r.raw, "Lemuria") {
		t.Errorf("%s: the error does not name the site: %s", step, r.raw)
	}
	expect(nil) // unchanged
	r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Add", "path": "`+sitesPath+`", "value": "sydney"}`))
	step = "a known site when unknown sites are refused"
	expect(r.body, "Sydney")
}

// TestSchemasPublishSites checks that the extension, User.groups and a
// member's display are published for the identity providers to discover.
func TestSchemasPublishSites(t *testing.T) {
	f := newFixture(t, "sqlite")
	r := f.do("GET", "/scim/v2/Schemas/"+scimgateUserURN, "")
	if r.status != 200 || get(r.body, "attributes[0].name") != "sites" || get(r.body, "attributes[0].multiValued") != true ||
		get(r.body, "attributes[0].type") != "string" {
		t.Errorf("GET /Schemas/%s = %d %s, want the multi-valued string sites", scimgateUserURN, r.status, r.raw)
	}
	r = f.do("GET", "/scim/v2/ResourceTypes/User", "")
	if !strings.Contains(r.raw, `"schema":"`+scimgateUserURN+`"`) {
		t.Errorf("the User resource type does not list the extension: %s", r.raw)
	}
	r = f.do("GET", "/scim/v2/Schemas/"+userURN, "")
	var groups map[string]any
	for _, a := range r.body["attributes"].([]any) {
		if a := a.(map[string]any); a["name"] == "groups" {
			groups = a
		}
	}
	if groups == nil || groups["mutability"] != "readOnly" || groups["multiValued"] != true || len(groups["subAttributes"].([]any)) != 3 {
		t.Errorf("User.groups in the schema = %v, want read-only, multi-valued, with value, $ref and display", groups)
	}
	r = f.do("GET", "/scim/v2/Schemas/"+groupURN, "")
	if !strings.Contains(r.raw, `"name":"display"`) {
		t.Errorf("Group.members has no display in the schema: %s", r.raw)
	}
}

// TestUserGroupsAndMemberDisplay checks RFC 7643's read-only User.groups
// and Group.members.display.
func TestUserGroupsAndMemberDisplay(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) { testUserGroupsAndMemberDisplay(t, dialect) })
	}
}

func testUserGroupsAndMemberDisplay(t *testing.T, dialect string) {
	f := newFixture(t, dialect)
	alice := f.createUser("alice@acme.test")
	bob := f.createUser("bob@acme.test")
	f.do("PATCH", "/scim/v2/Users/"+alice, entraPatch(`{"op": "replace", "path": "displayName", "value": "Alice A."}`))
	var groupIDs []string
	for _, name := range []string{"Engineering", "Admins"} {
		r := f.do("POST", "/scim/v2/Groups", fmt.Sprintf(`{"schemas": [%q], "displayName": %q, "members": [{"value": %q}]}`, groupURN, name, alice))
		groupIDs = append(groupIDs, r.body["id"].(string))
	}
	f.do("PATCH", "/scim/v2/Groups/"+groupIDs[0], entraPatch(`{"op": "add", "path": "members", "value": [{"value": "`+bob+`"}]}`))

	r := f.do("GET", "/scim/v2/Users/"+alice, "")
	want := []any{
		map[string]any{"value": groupIDs[1], "display": "Admins", "$ref": Prefix + "/Groups/" + groupIDs[1]},
		map[string]any{"value": groupIDs[0], "display": "Engineering", "$ref": Prefix + "/Groups/" + groupIDs[0]},
	}
	if got := r.body["groups"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alice's groups = %v, want %v", got, want)
	}
	for _, query := range []string{"excludedAttributes=groups", "attributes=userName"} {
		if r := f.do("GET", "/scim/v2/Users/"+alice+"?"+query, ""); r.body["groups"] != nil || r.body["id"] != alice {
			t.Errorf("GET ?%s still has groups: %s", query, r.raw)
		}
	}
	if r := f.do("GET", "/scim/v2/Users/"+alice+"?attributes=groups.display", ""); get(r.body, "groups[0].display") != "Admins" {
		t.Errorf("GET ?attributes=groups.display = %s", r.raw)
	}
	list := f.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "bob@acme.test"`), "")
	if get(list.body, "Resources[0].groups[0].display") != "Engineering" {
		t.Errorf("a query's users have no groups: %s", list.raw)
	}
	// Read-only: what a PUT says of groups is ignored.
	r = f.do("PUT", "/scim/v2/Users/"+bob, `{"schemas": ["`+userURN+`"], "userName": "bob@acme.test", "groups": [{"value": "`+groupIDs[1]+`"}]}`)
	if r.status != 200 || len(r.body["groups"].([]any)) != 1 {
		t.Errorf("PUT with groups: %d %s, want 200 and bob in Engineering alone", r.status, r.raw)
	}

	r = f.do("GET", "/scim/v2/Groups/"+groupIDs[0], "")
	displays := map[any]any{}
	for _, m := range r.body["members"].([]any) {
		displays[m.(map[string]any)["value"]] = m.(map[string]any)["display"]
	}
	if displays[alice] != "Alice A." || displays[bob] != "bob@acme.test" {
		t.Errorf("member displays = %v, want alice's display name and bob's user name", displays)
	}
	list = f.do("GET", "/scim/v2/Groups?filter="+url.QueryEscape(`displayName eq "Admins"`), "")
	if get(list.body, "Resources[0].members[0].display") != "Alice A." {
		t.Errorf("a query's groups have no member display: %s", list.raw)
	}
	r = f.do("PATCH", "/scim/v2/Groups/"+groupIDs[1]+"?attributes=members", entraPatch(`{"op": "add", "path": "members", "value": [{"value": "`+bob+`", "display": "ignored"}]}`))
	if r.status != 200 || get(r.body, "members[0].display") == "ignored" || get(r.body, "members[1].display") == nil {
		t.Errorf("PATCH ?attributes=members = %d %s, want displays from the users", r.status, r.raw)
	}
}

// TestMissingIDIs404 checks GET /Users/ (an empty id): a 404 that says what
// is missing, not "user  not found".
func TestMissingIDIs404(t *testing.T) {
	f := newFixture(t, "sqlite")
	for _, tt := range []struct{ method, path, want string }{
		{"GET", "/scim/v2/Users/", "GET /Users/ names no user"},
		{"DELETE", "/scim/v2/Groups/", "DELETE /Groups/ names no group"},
		{"PATCH", "/scim/v2/Users/", "PATCH /Users/ names no user"},
		{"PATCH", "/scim/v2/Users", "PATCH /Users/ names no user"},
		{"PUT", "/scim/v2/Groups", "PUT /Groups/ names no group"},
		{"DELETE", "/scim/v2/Users", "DELETE /Users/ names no user"},
	} {
		r := f.do(tt.method, tt.path, entraPatch(`{"op": "replace", "path": "displayName", "value": "x"}`))
		checkError(t, r, 404, "")
		if d, _ := r.body["detail"].(string); !strings.Contains(d, tt.want) || !strings.Contains(d, "{id}") {
			t.Errorf("%s %s: detail %q, want it to say %q and how to name one", tt.method, tt.path, d, tt.want)
		}
	}
}

// TestPatchPathsOutsideTheSchema checks that an explicit path naming no
// attribute is refused and changes nothing, while unknown attributes of a
// body or a pathless value are still dropped.
func TestPatchPathsOutsideTheSchema(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newFixture(t, dialect)
			id := f.createUser("alice@acme.test")
			before := f.do("GET", "/scim/v2/Users/"+id, "")
			for _, tt := range []struct{ path, detail string }{
				{"nosuchattribute", `"nosuchattribute" names no attribute of a User`},
				{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"},
				{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch", "names no attribute"},
				{"urn:example:params:scim:schemas:extension:custom:2.0:User:badge", "names no attribute"},
			} {
				r := f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "replace", "path": "displayName", "value": "changed"}, {"op": "Add", "path": "`+tt.path+`", "value": "x"}`))
				checkError(t, r, 400, "invalidPath")
				if d, _ := r.body["detail"].(string); !strings.Contains(d, tt.detail) {
					t.Errorf("PATCH %s: detail %q, want it to contain %q", tt.path, d, tt.detail)
				}
			}
			if after := f.do("GET", "/scim/v2/Users/"+id, ""); after.raw != before.raw {
				t.Errorf("refused PATCHes changed the user:\n%s\n%s", before.raw, after.raw)
			}
			// An attribute RFC 7643 defines but scimgate does not store is
			// still accepted and dropped: Entra's default mappings send them.
			r := f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Add", "path": "title", "value": "Boss"}, {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555"}`))
			if r.status != 200 || r.body["title"] != nil {
				t.Errorf("PATCH of title: %d %s, want 200 without a title", r.status, r.raw)
			}
			r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "replace", "value": {"nosuchattribute": "x", "displayName": "B"}}`))
			if r.status != 200 || r.body["displayName"] != "B" || r.body["nosuchattribute"] != nil {
				t.Errorf("pathless PATCH with an unknown member: %d %s, want 200, the rest applied", r.status, r.raw)
			}
			r = f.do("POST", "/scim/v2/Users", `{"schemas": ["`+userURN+`"], "userName": "bob@acme.test", "nosuchattribute": "x"}`)
			if r.status != 201 || r.body["nosuchattribute"] != nil {
				t.Errorf("POST with an unknown attribute: %d %s, want 201 without it", r.status, r.raw)
			}
		})
	}
}

// TestReplaceThroughAFilterThatSelectsNothing checks RFC 7644 3.5.2.3's
// noTarget, and the exception that keeps Entra working.
func TestReplaceThroughAFilterThatSelectsNothing(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newFixture(t, dialect)
			id := f.createUser("alice@acme.test")
			r := f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "replace", "path": "emails[type eq \"nonexistent\"].value", "value": "a@acme.test"}`))
			checkError(t, r, 400, "noTarget")
			if r := f.do("GET", "/scim/v2/Users/"+id, ""); r.body["emails"] != nil {
				t.Errorf("a refused replace added an address: %s", r.raw)
			}
			// Entra sets the work address of a user who has none this way.
			r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice@acme.test"}`))
			if r.status != 200 || get(r.body, "emails[0].value") != "alice@acme.test" || get(r.body, "emails[0].type") != "work" {
				t.Errorf("Entra's replace of the work address: %d %s", r.status, r.raw)
			}
			// Now it matches: replaced, not added.
			r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a2@acme.test"}`))
			if r.status != 200 || len(r.body["emails"].([]any)) != 1 || get(r.body, "emails[0].value") != "a2@acme.test" {
				t.Errorf("a second replace of the work address: %d %s", r.status, r.raw)
			}
			r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "replace", "path": "emails[value eq \"nobody@acme.test\"].type", "value": "home"}`))
			checkError(t, r, 400, "noTarget")
		})
	}
}

// Excluding the extension's only attribute leaves the extension out, rather
// than rendering it as an empty object.
func TestExcludedSitesLeaveNoEmptyExtension(t *testing.T) {
	f := newFixture(t, "sqlite")
	r := f.do("POST", "/scim/v2/Users", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "`+scimgateUserURN+`"],
		"userName": "alice@acme.test", "`+scimgateUserURN+`": {"sites": ["Sydney"]}}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	for _, path := range []string{
		"/scim/v2/Users/" + id + "?excludedAttributes=" + url.QueryEscape(sitesPath),
		"/scim/v2/Users?excludedAttributes=" + url.QueryEscape(sitesPath),
		"/scim/v2/Users?excludedAttributes=" + url.QueryEscape(scimgateUserURN),
	} {
		got := f.do("GET", path, "")
		if strings.Contains(got.raw, scimgateUserURN+`":`) {
			t.Errorf("GET %s still holds the extension: %s", path, got.raw)
		}
		if !strings.Contains(got.raw, "alice@acme.test") {
			t.Errorf("GET %s lost the user: %s", path, got.raw)
		}
	}
}
