package scim

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

var (
	testUsers  = &users{h: &handler{opts: Options{BaseURL: Prefix}}}
	testGroups = &groups{h: testUsers.h}
	testLimits = patchLimits{operations: DefaultMaxPatchOperations, values: DefaultMaxPatchValues}
)

func sampleUser() *tokens.User {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &tokens.User{
		ID: "usr_1", OrgID: "org_1", UserName: "barbara@example.com", ExternalID: "ext-1",
		DisplayName: "Babs Jensen", GivenName: "Barbara", FamilyName: "Jensen",
		Emails: []tokens.Email{
			{Value: "bjensen@example.com", Type: "work", Primary: true},
			{Value: "babs@jensen.org", Type: "home"},
		},
		EmployeeNumber: "701984", ManagerID: "usr_boss", Sites: []string{"Melbourne", "Sydney"}, Active: true,
		CreatedAt: at, UpdatedAt: at, Version: 3,
	}
}

// patchUser applies a PATCH body to sampleUser as the handler does.
func patchUser(t *testing.T, body string) (*tokens.User, error) {
	t.Helper()
	ops, err := parsePatch([]byte(body), testLimits)
	if err != nil {
		return nil, err
	}
	cur := sampleUser()
	rep := testUsers.render(cur)
	if err := applyPatch(rep, ops, &userShape, testLimits); err != nil {
		return nil, err
	}
	next := &tokens.User{ID: cur.ID, OrgID: cur.OrgID, Active: cur.Active}
	return next, userFrom(rep, next)
}

func TestPatchUser(t *testing.T) {
	tests := []struct {
		name   string
		ops    string
		change func(u *tokens.User) // applied to sampleUser for the expectation
	}{
		{"okta deactivation", `{"op": "replace", "value": {"active": false}}`,
			func(u *tokens.User) { u.Active = false }},
		{"entra deactivation with a string", `{"op": "Replace", "path": "active", "value": "False"}`,
			func(u *tokens.User) { u.Active = false }},
		{"op and path in other letter case", `{"op": "REPLACE", "path": "ACTIVE", "value": "FALSE"}`,
			func(u *tokens.User) { u.Active = false }},
		{"pathless keyed by paths", `{"op": "Replace", "value": {"name.givenName": "Babs", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42"}}`,
			func(u *tokens.User) { u.GivenName, u.EmployeeNumber = "Babs", "42" }},
		{"pathless with the whole extension", `{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "43"}}}`,
			func(u *tokens.User) { u.EmployeeNumber = "43" }},
		{"pathless with a complex value merges", `{"op": "replace", "value": {"name": {"familyName": "Smith"}}}`,
			func(u *tokens.User) { u.FamilyName = "Smith" }},
		{"pathless ignores read-only members", `{"op": "replace", "value": {"id": "usr_2", "meta": {}, "schemas": [], "displayName": "B"}}`,
			func(u *tokens.User) { u.DisplayName = "B" }},
		{"replace a work address by value filter", `{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}`,
			func(u *tokens.User) { u.Emails[0].Value = "new@example.com" }},
		{"filters compare without regard to case", `{"op": "Replace", "path": "emails[type eq \"WORK\"].value", "value": "new@example.com"}`,
			func(u *tokens.User) { u.Emails[0].Value = "new@example.com" }},
		{"add an address through a filter that matches nothing", `{"op": "Add", "path": "emails[type eq \"other\"].value", "value": "o@example.com"}`,
			func(u *tokens.User) { u.Emails = append(u.Emails, tokens.Email{Value: "o@example.com", Type: "other"}) }},
		{"replace a whole value selected by a filter", `{"op": "replace", "path": "emails[value eq \"babs@jensen.org\"]", "value": {"value": "b@j.org", "type": "other"}}`,
			func(u *tokens.User) { u.Emails[1] = tokens.Email{Value: "b@j.org", Type: "other"} }},
		{"remove an address by filter", `{"op": "remove", "path": "emails[type eq \"home\"]"}`,
			func(u *tokens.User) { u.Emails = u.Emails[:1] }},
		{"remove what no filter matches", `{"op": "remove", "path": "emails[type eq \"fax\"]"}`,
			func(u *tokens.User) {}},
		{"remove a sub-attribute of filtered values", `{"op": "remove", "path": "emails[type eq \"work\"].primary"}`,
			func(u *tokens.User) { u.Emails[0].Primary = false }},
		{"add an address", `{"op": "add", "path": "emails", "value": [{"value": "x@example.com", "type": "other"}]}`,
			func(u *tokens.User) { u.Emails = append(u.Emails, tokens.Email{Value: "x@example.com", Type: "other"}) }},
		{"add an address already there", `{"op": "add", "path": "emails", "value": {"value": "babs@jensen.org"}}`,
			func(u *tokens.User) {}},
		{"replace every address", `{"op": "replace", "path": "emails", "value": [{"value": "only@example.com", "primary": "true"}]}`,
			func(u *tokens.User) { u.Emails = []tokens.Email{{Value: "only@example.com", Primary: true}} }},
		{"remove every address", `{"op": "remove", "path": "emails"}`,
			func(u *tokens.User) { u.Emails = nil }},
		{"remove listed addresses only", `{"op": "Remove", "path": "emails", "value": [{"value": "babs@jensen.org"}]}`,
			func(u *tokens.User) { u.Emails = u.Emails[:1] }},
		{"a sub-attribute", `{"op": "replace", "path": "name.familyName", "value": "Smith"}`,
			func(u *tokens.User) { u.FamilyName = "Smith" }},
		{"a sub-attribute with the core URN", `{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName", "value": "B"}`,
			func(u *tokens.User) { u.GivenName = "B" }},
		{"remove a sub-attribute", `{"op": "remove", "path": "name.givenName"}`,
			func(u *tokens.User) { u.GivenName = "" }},
		{"remove the name", `{"op": "remove", "path": "name"}`,
			func(u *tokens.User) { u.GivenName, u.FamilyName = "", "" }},
		{"manager as a bare id", `{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "usr_new"}`,
			func(u *tokens.User) { u.ManagerID = "usr_new" }},
		{"manager as an object", `{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "usr_new"}}`,
			func(u *tokens.User) { u.ManagerID = "usr_new" }},
		{"manager.value", `{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "usr_new"}`,
			func(u *tokens.User) { u.ManagerID = "usr_new" }},
		{"remove the manager", `{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}`,
			func(u *tokens.User) { u.ManagerID = "" }},
		{"remove the extension", `{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}`,
			func(u *tokens.User) { u.ManagerID, u.EmployeeNumber = "", "" }},
		{"an attribute outside the schema is dropped", `{"op": "add", "path": "phoneNumbers[type eq \"work\"].value", "value": "555"}`,
			func(u *tokens.User) {}},
		{"an attribute of another schema in a pathless value is dropped", `{"op": "replace", "value": {"urn:ietf:params:scim:schemas:extension:Custom:2.0:User:badge": "7", "nickName": "B"}}`,
			func(u *tokens.User) {}},

		// Sites: Okta sends string arrays, Entra one string, comma-separated for several.
		{"okta adds sites", `{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": ["Perth", "Darwin"]}`,
			func(u *tokens.User) { u.Sites = append(u.Sites, "Perth", "Darwin") }},
		{"entra adds one site as a string", `{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "Perth"}`,
			func(u *tokens.User) { u.Sites = append(u.Sites, "Perth") }},
		{"entra replaces the sites with a comma-separated string", `{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "Perth, Darwin"}`,
			func(u *tokens.User) { u.Sites = []string{"Perth", "Darwin"} }},
		{"sites as value objects", `{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": [{"value": "Perth"}]}`,
			func(u *tokens.User) { u.Sites = append(u.Sites, "Perth") }},
		{"adding a site in another letter case changes nothing", `{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": ["SYDNEY"]}`,
			func(u *tokens.User) {}},
		{"remove a site by value, in any letter case", `{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "sydney"}`,
			func(u *tokens.User) { u.Sites = []string{"Melbourne"} }},
		{"remove a site by filter", `{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites[value eq \"MELBOURNE\"]"}`,
			func(u *tokens.User) { u.Sites = []string{"Sydney"} }},
		{"remove every site", `{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites"}`,
			func(u *tokens.User) { u.Sites = []string{} }},
		{"replace the sites with nothing", `{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": []}`,
			func(u *tokens.User) { u.Sites = []string{} }},
		{"pathless, keyed by the flattened path", `{"op": "Replace", "value": {"urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites": "Perth"}}`,
			func(u *tokens.User) { u.Sites = []string{"Perth"} }},
		{"pathless, with the whole extension", `{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:scimgate:2.0:User": {"sites": "Perth,Sydney"}}}`,
			func(u *tokens.User) { u.Sites = append(u.Sites, "Perth") }},
		{"sites in order of operations", `{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "A,B"}, {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "a"}, {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User:sites", "value": "C"}`,
			func(u *tokens.User) { u.Sites = []string{"B", "C"} }},
		{"attribute names in other letter case", `{"op": "replace", "value": {"DISPLAYNAME": "B", "Name.GivenName": "C"}}`,
			func(u *tokens.User) { u.DisplayName, u.GivenName = "B", "C" }},
		{"operations apply in order", `{"op": "replace", "path": "displayName", "value": "1"}, {"op": "remove", "path": "displayName"}, {"op": "add", "path": "displayName", "value": "3"}`,
			func(u *tokens.User) { u.DisplayName = "3" }},

		// RFC 7644 3.5.2: making a value primary makes the one that was
		// primary no longer so.
		{"add a primary address", `{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": true}]}`,
			func(u *tokens.User) {
				u.Emails[0].Primary = false
				u.Emails = append(u.Emails, tokens.Email{Value: "new@example.com", Type: "other", Primary: true})
			}},
		{"make another address primary", `{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}`,
			func(u *tokens.User) { u.Emails[0].Primary, u.Emails[1].Primary = false, true }},
		{"make another address primary without a path", `{"op": "replace", "value": {"emails[value eq \"babs@jensen.org\"].primary": true}}`,
			func(u *tokens.User) { u.Emails[0].Primary, u.Emails[1].Primary = false, true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := patchUser(t, entraPatch(tt.ops))
			if err != nil {
				t.Fatalf("patch: %v", err)
			}
			want := sampleUser()
			tt.change(want)
			want.CreatedAt, want.UpdatedAt, want.Version = time.Time{}, time.Time{}, 0
			if len(want.Emails) == 0 {
				want.Emails = nil
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("patch %s:\ngot  %s\nwant %s", tt.ops, g, w)
			}
		})
	}
}

func TestPatchGroupMembers(t *testing.T) {
	cur := &tokens.Group{ID: "grp_1", OrgID: "org_1", DisplayName: "Eng", MemberIDs: []string{"usr_a", "usr_b", "usr_c"}}
	tests := []struct {
		name string
		ops  string
		want []string
	}{
		{"entra removes only the listed members", `{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "usr_b"}]}`,
			[]string{"usr_a", "usr_c"}},
		{"entra removes several", `{"op": "Remove", "path": "members", "value": [{"value": "usr_a"}, {"value": "usr_c"}]}`,
			[]string{"usr_b"}},
		{"a member that is not there", `{"op": "Remove", "path": "members", "value": [{"value": "usr_x"}]}`,
			[]string{"usr_a", "usr_b", "usr_c"}},
		{"okta removes by filter", `{"op": "remove", "path": "members[value eq \"usr_a\"]"}`,
			[]string{"usr_b", "usr_c"}},
		{"ids compare with letter case", `{"op": "remove", "path": "members[value eq \"USR_A\"]"}`,
			[]string{"usr_a", "usr_b", "usr_c"}},
		{"remove all", `{"op": "remove", "path": "members"}`, nil},
		{"add", `{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "usr_d"}, {"value": "usr_a"}]}`,
			[]string{"usr_a", "usr_b", "usr_c", "usr_d"}},
		{"add one alone", `{"op": "add", "path": "members", "value": {"value": "usr_d"}}`,
			[]string{"usr_a", "usr_b", "usr_c", "usr_d"}},
		{"replace", `{"op": "replace", "path": "members", "value": [{"value": "usr_d", "display": "d"}]}`,
			[]string{"usr_d"}},
		{"pathless add", `{"op": "add", "value": {"members": [{"value": "usr_e"}]}}`,
			[]string{"usr_a", "usr_b", "usr_c", "usr_e"}},
		{"okta rename with the id", `{"op": "replace", "value": {"id": "grp_1", "displayName": "Eng"}}`,
			[]string{"usr_a", "usr_b", "usr_c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := parsePatch([]byte(entraPatch(tt.ops)), testLimits)
			if err != nil {
				t.Fatal(err)
			}
			rep := testGroups.render(cur)
			if err := applyPatch(rep, ops, &groupShape, testLimits); err != nil {
				t.Fatal(err)
			}
			next := &tokens.Group{}
			if err := groupFrom(rep, next); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(next.MemberIDs, tt.want) || next.DisplayName != "Eng" {
				t.Errorf("members %v, name %q; want %v, Eng", next.MemberIDs, next.DisplayName, tt.want)
			}
		})
	}
}
