package scim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// Every way an identity provider deactivates or removes a person refuses
// the person's tokens on the very next authentication: the cascade runs in
// the same transaction and the cache forgets the tokens before the SCIM
// response is sent.
func TestDeactivationRefusesTokens(t *testing.T) {
	shapes := []struct {
		name   string
		method string
		body   string // %s is the user name
		status int
		want   *tokens.AuthError
	}{
		{"okta PATCH without path", "PATCH", oktaDeactivate, 200, tokens.ErrOwnerDeactivated},
		{"okta PUT active false", "PUT", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName": "%s", "name": {"givenName": "Test", "familyName": "User"}, "active": false, "groups": []}`, 200, tokens.ErrOwnerDeactivated},
		{"entra PATCH Replace active \"False\"", "PATCH",
			entraPatch(`{"op": "Replace", "path": "active", "value": "False"}`), 200, tokens.ErrOwnerDeactivated},
		{"entra PATCH Replace active false", "PATCH",
			entraPatch(`{"op": "Replace", "path": "active", "value": false}`), 200, tokens.ErrOwnerDeactivated},
		{"PATCH without path, a string", "PATCH",
			entraPatch(`{"op": "replace", "value": {"ACTIVE": "false"}}`), 200, tokens.ErrOwnerDeactivated},
		{"DELETE", "DELETE", "", 204, tokens.ErrOwnerRemoved},
	}
	for _, dialect := range sqltest.Dialects(t) {
		f := newFixture(t, dialect)
		ctx := context.Background()
		for i, shape := range shapes {
			t.Run(dialect+"/"+shape.name, func(t *testing.T) {
				f.t = t
				userName := fmt.Sprintf("person%d@example.com", i)
				id := f.createUser(userName)
				token := f.userToken(id)
				body := shape.body
				if strings.Contains(body, "%s") {
					body = fmt.Sprintf(body, userName)
				}
				r := f.do(shape.method, "/scim/v2/Users/"+id, body)
				if r.status != shape.status {
					t.Fatalf("%s: status %d: %s", shape.method, r.status, r.raw)
				}
				if _, err := f.auth.Authenticate(ctx, token); err != shape.want {
					t.Fatalf("Authenticate right after %s = %v, want %v", shape.name, err, shape.want)
				}
				toks, err := f.svc.UserTokens(ctx, f.org.ID, id)
				if err != nil {
					t.Fatal(err)
				}
				wantReason := tokens.ReasonUserDeactivated
				if shape.want == tokens.ErrOwnerRemoved {
					wantReason = tokens.ReasonUserRemoved
				}
				if len(toks) != 1 || toks[0].Status != tokens.StatusExpired || toks[0].StatusReason != wantReason {
					t.Errorf("tokens after %s: %+v, want one expired with reason %s", shape.name, toks, wantReason)
				}
				events, err := f.svc.Audit(ctx, tokens.AuditFilter{OrgID: f.org.ID, Target: toks[0].ID})
				if err != nil {
					t.Fatal(err)
				}
				if len(events) == 0 || !strings.Contains(events[0].Actor, f.tokenID) {
					t.Errorf("the expiry's audit event %+v does not name the identity provider's token %s", events, f.tokenID)
				}
				if shape.want == tokens.ErrOwnerRemoved {
					return
				}
				// Reactivation does not revive the expired token.
				r = f.do("PATCH", "/scim/v2/Users/"+id, entraPatch(`{"op": "Replace", "path": "active", "value": "True"}`))
				if r.status != 200 || r.body["active"] != true {
					t.Fatalf("reactivate: %d %s", r.status, r.raw)
				}
				if _, err := f.auth.Authenticate(ctx, token); err == nil {
					t.Error("a token expired by deactivation works again after reactivation")
				}
				f.userToken(id) // a new one works
			})
		}
	}
}

// A change of membership changes the member's groups and permissions at
// once, whatever shape it takes.
func TestMembershipChangesEffectiveGroups(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newFixture(t, dialect)
			ctx := context.Background()
			alice := f.createUser("alice@example.com")
			bob := f.createUser("bob@example.com")
			aliceToken := f.userToken(alice)
			bobToken := f.userToken(bob)

			wantGroups := func(step, token string, want ...string) {
				t.Helper()
				id, err := f.auth.Authenticate(ctx, token)
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				if !slices.Equal(id.Groups, want) && !(len(id.Groups) == 0 && len(want) == 0) {
					t.Errorf("%s: groups %v, want %v", step, id.Groups, want)
				}
				if reads := id.Has("orders.read"); reads != slices.Contains(want, "Engineering") {
					t.Errorf("%s: orders.read %t with groups %v", step, reads, id.Groups)
				}
			}
			wantGroups("before", aliceToken)

			r := f.do("POST", "/scim/v2/Groups", fmt.Sprintf(`{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
				"displayName": "Engineering", "members": [{"value": %q}]}`, alice))
			if r.status != 201 {
				t.Fatalf("create group: %d %s", r.status, r.raw)
			}
			group := "/scim/v2/Groups/" + r.body["id"].(string)
			wantGroups("created with alice", aliceToken, "Engineering")
			wantGroups("created without bob", bobToken)

			steps := []struct {
				name, method, body string
				alice, bob         []string
			}{
				{"entra add bob", "PATCH", entraPatch(fmt.Sprintf(`{"op": "Add", "path": "members", "value": [{"$ref": null, "value": %q}]}`, bob)),
					[]string{"Engineering"}, []string{"Engineering"}},
				{"entra remove alice", "PATCH", entraPatch(fmt.Sprintf(`{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": %q}]}`, alice)),
					nil, []string{"Engineering"}},
				{"okta add alice", "PATCH", entraPatch(fmt.Sprintf(`{"op": "add", "path": "members", "value": [{"value": %q, "display": "alice"}]}`, alice)),
					[]string{"Engineering"}, []string{"Engineering"}},
				{"okta remove bob", "PATCH", entraPatch(fmt.Sprintf(`{"op": "remove", "path": "members[value eq \"%s\"]"}`, bob)),
					[]string{"Engineering"}, nil},
				{"okta replace all members with bob", "PATCH", entraPatch(fmt.Sprintf(`{"op": "replace", "path": "members", "value": [{"value": %q}]}`, bob)),
					nil, []string{"Engineering"}},
				{"remove all members", "PATCH", entraPatch(`{"op": "remove", "path": "members"}`),
					nil, nil},
				{"PUT with alice", "PUT", fmt.Sprintf(`{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "members": [{"value": %q}]}`, alice),
					[]string{"Engineering"}, nil},
				{"rename", "PATCH", entraPatch(`{"op": "Replace", "path": "displayName", "value": "Sales"}`),
					[]string{"Sales"}, nil},
				{"delete", "DELETE", "", nil, nil},
			}
			for _, st := range steps {
				r := f.do(st.method, group, st.body)
				if r.status >= 300 {
					t.Fatalf("%s: %d %s", st.name, r.status, r.raw)
				}
				wantGroups(st.name+": alice", aliceToken, st.alice...)
				wantGroups(st.name+": bob", bobToken, st.bob...)
			}
		})
	}
}

func TestServiceUsersAreNotUsers(t *testing.T) {
	f := newFixture(t, "sqlite")
	f.createUser("person@example.com")
	r := f.do("GET", "/scim/v2/Users", "")
	if get(r.body, "totalResults") != 1.0 || get(r.body, "Resources[0].userName") != "person@example.com" {
		t.Errorf("/Users lists more than the one person: %s", r.raw)
	}
	r = f.do("GET", `/scim/v2/Users?filter=userName+eq+%22okta%22`, "")
	if get(r.body, "totalResults") != 0.0 {
		t.Errorf("the service user is found by name: %s", r.raw)
	}
}

func TestOrgsAreSeparate(t *testing.T) {
	f := newFixture(t, "sqlite")
	id := f.createUser("person@example.com")
	other, err := f.svc.CreateOrg(context.Background(), tokens.Operator, "other", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := f.svc.CreateServiceToken(context.Background(), tokens.Operator, other.ID,
		tokens.ServiceTokenSpec{Name: "entra", PermissionSets: []string{tokens.PermUsers, tokens.PermGroups}})
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + secret.Plaintext()
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/scim/v2/Users/" + id, ""},
		{"PUT", "/scim/v2/Users/" + id, `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "taken"}`},
		{"PATCH", "/scim/v2/Users/" + id, oktaDeactivate},
		{"DELETE", "/scim/v2/Users/" + id, ""},
	} {
		if r := f.do(req.method, req.path, req.body, "Authorization", auth); r.status != 404 {
			t.Errorf("%s %s from another org: %d %s", req.method, req.path, r.status, r.raw)
		}
	}
	r := f.do("GET", "/scim/v2/Users", "", "Authorization", auth)
	if get(r.body, "totalResults") != 0.0 {
		t.Errorf("another org lists the user: %s", r.raw)
	}
	// The same user name is free in another org.
	r = f.do("POST", "/scim/v2/Users", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "person@example.com"}`, "Authorization", auth)
	if r.status != 201 {
		t.Errorf("the user name is taken across orgs: %d %s", r.status, r.raw)
	}
	if r := f.do("GET", "/scim/v2/Users/"+id, ""); r.status != 200 || r.body["active"] != true {
		t.Errorf("the other org changed the user: %s", r.raw)
	}
}

// Concurrent PATCHes of one group, as an identity provider's parallel
// workers send them, lose no member: a write that raced with another starts
// over from the new state.
func TestConcurrentMembershipPatches(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newFixture(t, dialect)
			r := f.do("POST", "/scim/v2/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Crowd"}`)
			group := "/scim/v2/Groups/" + r.body["id"].(string)
			var ids []string
			for i := range 8 {
				ids = append(ids, f.createUser(fmt.Sprintf("crowd%d@example.com", i)))
			}
			var wg sync.WaitGroup
			for _, id := range ids {
				wg.Go(func() {
					r := f.do("PATCH", group, entraPatch(fmt.Sprintf(`{"op": "Add", "path": "members", "value": [{"value": %q}]}`, id)))
					if r.status != 204 {
						t.Errorf("add %s: %d %s", id, r.status, r.raw)
					}
				})
			}
			wg.Wait()
			r = f.do("GET", group, "")
			if n := count(r, "members"); n != len(ids) {
				t.Errorf("%d members after %d concurrent adds: %s", n, len(ids), r.raw)
			}
		})
	}
}
