package scim

import (
	"testing"

	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The request bodies below are those of Microsoft's "Tutorial: Develop and
// plan provisioning for a SCIM endpoint in Microsoft Entra ID"
// (learn.microsoft.com/entra/identity/app-provisioning/
// use-scim-to-provision-users-and-groups), quoted as published; only the
// ids are the ones this server assigned. Steps the tutorial describes in
// words (string booleans, pathless replace keyed by paths, the manager as a
// bare id, the test connection) follow what the provisioning service sends.

const entraCreateUser = `{
    "schemas": [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
    "active": true,
    "emails": [{
        "primary": true,
        "type": "work",
        "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
    }],
    "meta": {
        "resourceType": "User"
    },
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName"
    },
    "roles": []
}`

func TestEntraRequests(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			replay(t, newFixture(t, dialect), entraSteps)
		})
	}
}

func entraPatch(operations string) string {
	return `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [` + operations + `]}`
}

var entraSteps = []step{
	{
		name:   "test connection: a random user name",
		method: "GET", path: `/scim/v2/Users?filter=userName eq "3b4a8e2f-6a0c-4cbd-9f3e-0f6c2d9a1b7e"`,
		status: 200,
		want:   map[string]any{"totalResults": 0.0, "Resources": []any{}, "schemas[0]": "urn:ietf:params:scim:api:messages:2.0:ListResponse"},
	},
	{
		name:   "test connection: a random user id",
		method: "GET", path: `/scim/v2/Users?filter=id eq "3b4a8e2f-6a0c-4cbd-9f3e-0f6c2d9a1b7e"`,
		status: 200,
		want:   map[string]any{"totalResults": 0.0, "Resources": []any{}},
	},
	{
		name:   "test connection: a random group",
		method: "GET", path: `/scim/v2/Groups?excludedAttributes=members&filter=displayName eq "5e0d7c1a-2b3f-4e6a-8c9d-1f2e3a4b5c6d"`,
		status: 200,
		want:   map[string]any{"totalResults": 0.0, "Resources": []any{}},
	},
	{
		name:   "create user",
		method: "POST", path: "/scim/v2/Users", body: entraCreateUser,
		status: 201,
		want: map[string]any{
			"userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee", "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
			"active": true, "name.formatted": "givenName familyName", "name.familyName": "familyName", "name.givenName": "givenName",
			"emails[0].value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com", "emails[0].type": "work",
			"emails[0].primary": true, "meta.resourceType": "User", "roles": absent,
		},
		save: map[string]string{"user": "id"},
	},
	{
		name:   "create a user with the booleans as strings",
		method: "POST", path: "/scim/v2/Users",
		body: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"externalId": "9c1f2e3d", "userName": "Manager_User@testuser.com", "active": "True",
			"emails": [{"primary": "True", "type": "work", "value": "manager_user@testuser.com"}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "1", "manager": ""}}`,
		status: 201,
		want:   map[string]any{"active": true, "emails[0].primary": true},
		save:   map[string]string{"manager": "id"},
	},
	{
		name:   "get user",
		method: "GET", path: "/scim/v2/Users/{{user}}",
		status: 200,
		want:   map[string]any{"id": "{{user}}", "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"},
	},
	{
		name:   "get user: not found",
		method: "GET", path: "/scim/v2/Users/5171a35d82074e068ce2",
		status: 404,
		want:   map[string]any{"schemas[0]": "urn:ietf:params:scim:api:messages:2.0:Error", "status": "404"},
	},
	{
		name:   "get user by query",
		method: "GET", path: `/scim/v2/Users?filter=userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"`,
		status: 200,
		want:   map[string]any{"totalResults": 1.0, "Resources[0].id": "{{user}}", "startIndex": 1.0},
	},
	{
		name:   "get user by query on externalId",
		method: "GET", path: `/scim/v2/Users?filter=externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
		status: 200,
		want:   map[string]any{"totalResults": 1.0, "Resources[0].id": "{{user}}"},
	},
	{
		name:   "get user by query on the work address",
		method: "GET", path: `/scim/v2/Users?filter=emails[type eq "work"].value eq "TEST_USER_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"`,
		status: 200,
		want:   map[string]any{"totalResults": 1.0, "Resources[0].id": "{{user}}"},
	},
	{
		name:   "get user by query - zero results",
		method: "GET", path: `/scim/v2/Users?filter=userName eq "non-existent user"`,
		status: 200,
		want:   map[string]any{"totalResults": 0.0, "Resources": []any{}},
	},
	{
		name:   "update user [multi-valued properties]",
		method: "PATCH", path: "/scim/v2/Users/{{user}}", body: `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
            {
            "op": "Replace",
            "path": "emails[type eq \"work\"].value",
            "value": "updatedEmail@microsoft.com"
            },
            {
            "op": "Replace",
            "path": "name.familyName",
            "value": "updatedFamilyName"
            }
    ]
}`,
		status: 200,
		want: map[string]any{
			"emails[0].value": "updatedEmail@microsoft.com", "emails[0].type": "work", "emails[0].primary": true,
			"name.familyName": "updatedFamilyName", "name.formatted": "givenName updatedFamilyName", "name.givenName": "givenName",
		},
		check: wantCount("emails", 1),
	},
	{
		name:   "update user [single-valued properties]",
		method: "PATCH", path: "/scim/v2/Users/{{user}}", body: `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "userName",
        "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    }]
}`,
		status: 200,
		want:   map[string]any{"userName": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com", "emails[0].value": "updatedEmail@microsoft.com"},
	},
	{
		name:   "replace without path, keyed by attribute paths",
		method: "PATCH", path: "/scim/v2/Users/{{user}}",
		body: entraPatch(`{"op": "Replace", "value": {
			"name.givenName": "Barbara",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
			"displayName": "Barbara Jensen"}}`),
		status: 200,
		want: map[string]any{
			"name.givenName": "Barbara", "name.familyName": "updatedFamilyName", "displayName": "Barbara Jensen",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.employeeNumber": "701984",
		},
	},
	{
		name:   "set the manager as a bare id",
		method: "PATCH", path: "/scim/v2/Users/{{user}}",
		body:   entraPatch(`{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "{{manager}}"}`),
		status: 200,
		want: map[string]any{
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value":  "{{manager}}",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.employeeNumber": "701984",
		},
	},
	{
		name:   "add a work address the user lacks through a value filter",
		method: "PATCH", path: "/scim/v2/Users/{{manager}}",
		body:   entraPatch(`{"op": "Add", "path": "emails[type eq \"other\"].value", "value": "proxy@testuser.com"}`),
		status: 200,
		want:   map[string]any{"emails[1].value": "proxy@testuser.com", "emails[1].type": "other"},
	},
	{
		name:   "put the manager as a bare id",
		method: "PUT", path: "/scim/v2/Users/{{manager}}",
		body: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"userName": "Manager_User@testuser.com", "active": "True",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "2", "manager": "{{user}}"}}`,
		status: 200,
		want: map[string]any{
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value": "{{user}}",
			"emails": absent,
		},
	},
	{
		name:   "remove the manager",
		method: "PATCH", path: "/scim/v2/Users/{{user}}",
		body:   entraPatch(`{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "{{manager}}"}`),
		status: 200,
		want:   map[string]any{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager": absent},
	},
	{
		name:   "disable user",
		method: "PATCH", path: "/scim/v2/Users/{{user}}", body: `{
    "Operations": [
        {
            "op": "Replace",
            "path": "active",
            "value": false
        }
    ],
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ]
}`,
		status: 200,
		want:   map[string]any{"active": false},
	},
	{
		name:   "enable user, the boolean as a string",
		method: "PATCH", path: "/scim/v2/Users/{{user}}",
		body:   entraPatch(`{"op": "Replace", "path": "active", "value": "True"}`),
		status: 200,
		want:   map[string]any{"active": true},
	},
	{
		name:   "disable user, the boolean as a string",
		method: "PATCH", path: "/scim/v2/Users/{{user}}",
		body:   entraPatch(`{"op": "Replace", "path": "active", "value": "False"}`),
		status: 200,
		want:   map[string]any{"active": false},
	},
	{
		name:   "a disabled user is still returned",
		method: "GET", path: `/scim/v2/Users?filter=userName eq "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"`,
		status: 200,
		want:   map[string]any{"totalResults": 1.0, "Resources[0].active": false},
	},
	{
		name:   "create group",
		method: "POST", path: "/scim/v2/Groups", body: `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "displayName",
    "meta": {
        "resourceType": "Group"
    }
}`,
		status: 201,
		want:   map[string]any{"externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "displayName", "meta.resourceType": "Group"},
		save:   map[string]string{"group": "id"},
	},
	{
		name:   "get group",
		method: "GET", path: "/scim/v2/Groups/{{group}}?excludedAttributes=members",
		status: 200,
		want:   map[string]any{"id": "{{group}}", "displayName": "displayName", "members": absent, "meta.resourceType": "Group"},
	},
	{
		name:   "get group by displayName",
		method: "GET", path: `/scim/v2/Groups?excludedAttributes=members&filter=displayName eq "displayName"`,
		status: 200,
		want:   map[string]any{"totalResults": 1.0, "Resources[0].id": "{{group}}", "Resources[0].members": absent},
	},
	{
		name:   "update group [non-member attributes]",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}", body: `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "displayName",
        "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    }]
}`,
		status: 204,
	},
	{
		name:   "update group [add members]",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}", body: `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Add",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "{{user}}"
        }]
    }]
}`,
		status: 204,
	},
	{
		name:   "add a second member",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}",
		body:   entraPatch(`{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "{{manager}}"}]}`),
		status: 204,
	},
	{
		name:   "is the user a member",
		method: "GET", path: `/scim/v2/Groups?excludedAttributes=members&filter=id eq "{{group}}" and members eq "{{user}}"`,
		status: 200,
		want:   map[string]any{"totalResults": 1.0, "Resources[0].displayName": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"},
	},
	{
		name:   "update group [remove members]",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}", body: `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Remove",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "{{user}}"
        }]
    }]
}`,
		status: 204,
	},
	{
		name:   "only the listed member left",
		method: "GET", path: "/scim/v2/Groups/{{group}}",
		status: 200,
		want:   map[string]any{"members[0].value": "{{manager}}"},
		check:  wantCount("members", 1),
	},
	{
		name:   "the user is no longer a member",
		method: "GET", path: `/scim/v2/Groups?excludedAttributes=members&filter=id eq "{{group}}" and members eq "{{user}}"`,
		status: 200,
		want:   map[string]any{"totalResults": 0.0},
	},
	{
		name:   "a group PATCH that names attributes answers with the group",
		method: "PATCH", path: "/scim/v2/Groups/{{group}}?excludedAttributes=members",
		body:   entraPatch(`{"op": "Replace", "path": "externalId", "value": "60f1bb27-2e1e-402d-bcc4-ec999564a194"}`),
		status: 200,
		want:   map[string]any{"externalId": "60f1bb27-2e1e-402d-bcc4-ec999564a194", "members": absent, "id": "{{group}}"},
	},
	{
		name:   "delete user",
		method: "DELETE", path: "/scim/v2/Users/{{user}}",
		status: 204,
	},
	{
		name:   "a deleted user is gone",
		method: "GET", path: "/scim/v2/Users/{{user}}",
		status: 404,
	},
	{
		name:   "delete group",
		method: "DELETE", path: "/scim/v2/Groups/{{group}}",
		status: 204,
	},
}
