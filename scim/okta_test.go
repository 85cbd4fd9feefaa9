package scim

import (
	"fmt"
	"slices"
	"testing"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The request bodies below are those of Okta's "SCIM 2.0 Protocol
// Reference" (developer.okta.com/docs/reference/scim/scim-20), quoted as
// published; only the ids are the ones this server assigned.

const oktaCreateUser = `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "test.user@okta.local",
    "name": {
        "givenName": "Test",
        "familyName": "User"
    },
    "emails": [{
        "primary": true,
        "value": "test.user@okta.local",
        "type": "work"
    }],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": true
}`

func oktaPutUser(active bool) string {
	return fmt.Sprintf(`{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "{{user}}",
    "userName": "test.user@okta.local",
    "name": {
        "givenName": "Another",
        "middleName": "Excited",
        "familyName": "User"
    },
    "emails": [{
        "primary": true,
        "value": "test.user@okta.local",
        "type": "work",
        "display": "test.user@okta.local"
    }],
    "active": %t,
    "groups": [],
    "meta": {
        "resourceType": "User"
    }
}`, active)
}

const oktaDeactivate = `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "active": false
        }
    }]
}`

func TestOktaRequests(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			replay(t, newFixture(t, dialect), oktaSteps)
		})
	}
}

var oktaSteps = []step{
	{
		name:   "determine that the user does not exist",
		method: "GET", path: "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100",
		status: 200,
		want: map[string]any{
			"schemas[0]": "urn:ietf:params:scim:api:messages:2.0:ListResponse", "totalResults": 0.0,
			"startIndex": 1.0, "itemsPerPage": 0.0, "Resources": []any{},
		},
	},
	{
		name:   "create the user",
		method: "POST", path: "/scim/v2/Users", body: oktaCreateUser,
		status: 201,
		want: map[string]any{
			"userName": "test.user@okta.local", "externalId": "00ujl29u0le5T6Aj10h7", "active": true,
			"displayName": "Test User", "name.givenName": "Test", "name.familyName": "User",
			"emails[0].value": "test.user@okta.local", "emails[0].type": "work", "emails[0].primary": true,
			"meta.resourceType": "User", "meta.version": `W/"1"`,
			"password": absent, "locale": absent,
		},
		save: map[string]string{"user": "id"},
		check: func(t *testing.T, r *response) {
			id, _ := r.body["id"].(string)
			if loc := r.header.Get("Location"); loc != "/scim/v2/Users/"+id || loc != get(r.body, "meta.location") {
				t.Errorf("Location %q, meta.location %v, want both /scim/v2/Users/%s", loc, get(r.body, "meta.location"), id)
			}
			if tag := r.header.Get("ETag"); tag != `W/"1"` {
				t.Errorf("ETag %q, want W/\"1\"", tag)
			}
		},
	},
	{
		name:   "create the user again, in other letter case: 409",
		method: "POST", path: "/scim/v2/Users", body: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName": "TEST.User@okta.local", "active": true}`,
		status: 409,
		want:   map[string]any{"scimType": "uniqueness", "status": "409"},
	},
	{
		name:   "determine that the user exists",
		method: "GET", path: "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100",
		status: 200,
		want: map[string]any{"totalResults": 1.0, "itemsPerPage": 1.0, "Resources[0].id": "{{user}}",
			"Resources[0].userName": "test.user@okta.local"},
	},
	{
		name:   "retrieve the user",
		method: "GET", path: "/scim/v2/Users/{{user}}",
		status: 200,
		want:   map[string]any{"id": "{{user}}", "active": true, "schemas[0]": userURN},
	},
	{
		name:   "update the user (PUT)",
		method: "PUT", path: "/scim/v2/Users/{{user}}", body: oktaPutUser(true),
		status: 200,
		want: map[string]any{
			"name.givenName": "Another", "name.familyName": "User", "active": true, "emails[0].value": "test.user@okta.local",
			// PUT replaces every attribute: those Okta's body omits are gone.
			"externalId": absent, "displayName": absent, "meta.version": `W/"2"`,
		},
	},
	{
		name:   "deactivate the user (PATCH without path)",
		method: "PATCH", path: "/scim/v2/Users/{{user}}", body: oktaDeactivate,
		status: 200,
		want:   map[string]any{"id": "{{user}}", "active": false, "userName": "test.user@okta.local", "name.givenName": "Another"},
	},
	{
		name:   "reactivate the user (PUT)",
		method: "PUT", path: "/scim/v2/Users/{{user}}", body: oktaPutUser(true),
		status: 200,
		want:   map[string]any{"active": true},
	},
	{
		name:   "deactivate the user (PUT, custom app integrations)",
		method: "PUT", path: "/scim/v2/Users/{{user}}", body: oktaPutUser(false),
		status: 200,
		want:   map[string]any{"active": false},
	},
	{
		name:   "create a second user",
		method: "POST", path: "/scim/v2/Users",
		body:   `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "second.user@okta.local", "active": true, "groups": [], "password": "x"}`,
		status: 201,
		save:   map[string]string{"user2": "id"},
	},
	{
		name:   "create the group",
		method: "POST", path: "/scim/v2/Groups", body: `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "displayName": "Test SCIMv2",
    "members": []
}`,
		status: 201,
		want:   map[string]any{"displayName": "Test SCIMv2", "meta.resourceType": "Group", "schemas[0]": groupURN},
		save:   map[string]string{"group": "id"},
	},
	{
		name:   "update the group name (PATCH without path, the value carries the id)",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}", body: `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "id": "{{group}}",
            "displayName": "Test SCIMv20"
        }
    }]
}`,
		status: 204,
	},
	{
		name:   "retrieve the group",
		method: "GET", path: "/scim/v2/Groups/{{group}}",
		status: 200,
		want:   map[string]any{"id": "{{group}}", "displayName": "Test SCIMv20", "members": []any{}},
	},
	{
		name:   "update the group membership: remove one, add one",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}", body: `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
          "op": "remove",
          "path": "members[value eq \"{{user2}}\"]"
        },
        {
          "op": "add",
          "path": "members",
          "value": [{
              "value": "{{user}}",
              "display": "test.user@okta.local"
        }]
    }]
}`,
		status: 204,
	},
	{
		name:   "retrieve the group after the membership update",
		method: "GET", path: "/scim/v2/Groups/{{group}}",
		status: 200,
		want:   map[string]any{"members[0].value": "{{user}}"},
		check:  wantCount("members", 1),
	},
	{
		name:   "push the full membership (replace)",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}", body: `{
  "schemas": [
    "urn:ietf:params:scim:api:messages:2.0:PatchOp"
  ],
  "Operations": [
    {
      "op": "replace",
      "path": "members",
      "value": [
        {
          "value": "{{user}}",
          "display": "test.user@okta.local"
        },
        {
          "value": "{{user2}}",
          "display": "test.user@okta.local"
        }
      ]
    }
  ]
}`,
		status: 204,
	},
	{
		name:   "retrieve the group after the full push",
		method: "GET", path: "/scim/v2/Groups/{{group}}",
		status: 200,
		check:  wantCount("members", 2),
	},
	{
		name:   "remove a member with members[value eq …]",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}",
		body:   `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": "members[value eq \"{{user}}\"]"}]}`,
		status: 204,
	},
	{
		name:   "retrieve the group after the removal",
		method: "GET", path: "/scim/v2/Groups/{{group}}",
		status: 200,
		want:   map[string]any{"members[0].value": "{{user2}}"},
		check:  wantCount("members", 1),
		save:   map[string]string{"version": "meta.version"},
	},
	{
		name:   "the name update sent with every membership change changes nothing",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}",
		body:   `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"id": "{{group}}", "displayName": "Test SCIMv20"}}]}`,
		status: 204,
	},
	{
		name:   "the group's version did not change",
		method: "GET", path: "/scim/v2/Groups/{{group}}",
		status: 200,
		want:   map[string]any{"meta.version": "{{version}}"},
	},
	{
		name:   "update the group name (PUT, custom app integrations)",
		method: "PUT", path: "/scim/v2/Groups/{{group}}",
		body:   `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "{{group}}", "displayName": "Test SCIMv21", "members": [{"value": "{{user}}", "display": "test.user@okta.local"}]}`,
		status: 200,
		want:   map[string]any{"displayName": "Test SCIMv21", "members[0].value": "{{user}}"},
		check:  wantCount("members", 1),
	},
	{
		name:   "list the groups",
		method: "GET", path: "/scim/v2/Groups?startIndex=1&count=100",
		status: 200,
		want:   map[string]any{"totalResults": 1.0, "Resources[0].id": "{{group}}"},
	},
	{
		name:   "delete the group",
		method: "DELETE", path: "/scim/v2/Groups/{{group}}",
		status: 204,
	},
	{
		name:   "the group is gone",
		method: "GET", path: "/scim/v2/Groups/{{group}}",
		status: 404,
		want:   map[string]any{"status": "404", "schemas[0]": "urn:ietf:params:scim:api:messages:2.0:Error"},
	},
}

// Okta imports page by page with startIndex and count and needs the same
// order whatever the page size.
func TestOktaPagination(t *testing.T) {
	f := newFixture(t, "sqlite")
	var want []string
	for i := range 7 {
		want = append(want, f.createUser(fmt.Sprintf("user%d@okta.local", i)))
	}
	for _, size := range []int{1, 2, 3, 7, 100} {
		var got []string
		for start := 1; start <= 7; start += size {
			r := f.do("GET", fmt.Sprintf("/scim/v2/Users?startIndex=%d&count=%d", start, size), "")
			if get(r.body, "totalResults") != 7.0 || get(r.body, "startIndex") != float64(start) ||
				get(r.body, "itemsPerPage") != float64(count(r, "Resources")) {
				t.Fatalf("page at %d of %d: %s", start, size, r.raw)
			}
			for _, res := range r.body["Resources"].([]any) {
				got = append(got, res.(map[string]any)["id"].(string))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d: %v, want %v", size, got, want)
		}
		// The same pages through a filter evaluated in memory.
		got = nil
		for start := 1; start <= 7; start += size {
			r := f.do("GET", fmt.Sprintf("/scim/v2/Users?filter=userName+sw+%%22user%%22&startIndex=%d&count=%d", start, size), "")
			if get(r.body, "totalResults") != 7.0 {
				t.Fatalf("filtered page at %d of %d: %s", start, size, r.raw)
			}
			for _, res := range r.body["Resources"].([]any) {
				got = append(got, res.(map[string]any)["id"].(string))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("filtered pages of %d: %v, want %v", size, got, want)
		}
	}
	r := f.do("GET", "/scim/v2/Users?count=0", "")
	if get(r.body, "totalResults") != 7.0 || count(r, "Resources") != 0 {
		t.Errorf("count=0: %s", r.raw)
	}
	r = f.do("GET", "/scim/v2/Users?startIndex=100&count=10", "")
	if get(r.body, "totalResults") != 7.0 || count(r, "Resources") != 0 {
		t.Errorf("startIndex past the end: %s", r.raw)
	}
	r = f.do("GET", "/scim/v2/Users?count=1000", "")
	if count(r, "Resources") != 7 {
		t.Errorf("count above the maximum: %s", r.raw)
	}
}
