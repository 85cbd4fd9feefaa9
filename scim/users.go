package scim

import (
	"net/http"
	"slices"

	elimity "github.com/elimity-com/scim"

	"github.com/scimgate/scimgate/tokens"
)

// users serves /Users over tokens.Service. Service users are not users in
// the domain, so they never appear here.
type users struct{ h *handler }

var _ elimity.ResourceHandler = (*users)(nil)

// render is the SCIM representation of a user.
func (u *users) render(user *tokens.User) map[string]any {
	rep := map[string]any{
		"schemas":  []any{userURN, enterpriseUserURN, scimgateUserURN},
		"id":       user.ID,
		"userName": user.UserName,
		"active":   user.Active,
		"meta":     resourceMeta("User", u.h.location("/Users", user.ID), user.CreatedAt, user.UpdatedAt, user.Version),
	}
	if user.ExternalID != "" {
		rep["externalId"] = user.ExternalID
	}
	if user.DisplayName != "" {
		rep["displayName"] = user.DisplayName
	}
	name := map[string]any{}
	if user.GivenName != "" {
		name["givenName"] = user.GivenName
	}
	if user.FamilyName != "" {
		name["familyName"] = user.FamilyName
	}
	if len(name) > 0 {
		formatted := user.GivenName
		if user.FamilyName != "" && formatted != "" {
			formatted += " "
		}
		name["formatted"] = formatted + user.FamilyName
		rep["name"] = name
	}
	if len(user.Emails) > 0 {
		emails := make([]any, len(user.Emails))
		for i, e := range user.Emails {
			email := map[string]any{"value": e.Value}
			if e.Type != "" {
				email["type"] = e.Type
			}
			if e.Primary {
				email["primary"] = true
			}
			emails[i] = email
		}
		rep["emails"] = emails
	}
	enterprise := map[string]any{}
	if user.EmployeeNumber != "" {
		enterprise["employeeNumber"] = user.EmployeeNumber
	}
	if user.ManagerID != "" {
		enterprise["manager"] = map[string]any{"value": user.ManagerID, "$ref": u.h.location("/Users", user.ManagerID)}
	}
	if len(enterprise) > 0 {
		rep[enterpriseUserURN] = enterprise
	}
	if len(user.Sites) > 0 {
		sites := make([]any, len(user.Sites))
		for i, s := range user.Sites {
			sites[i] = s
		}
		rep[scimgateUserURN] = map[string]any{"sites": sites}
	}
	return rep
}

// addGroups sets the read-only groups of a user's representation.
func (u *users) addGroups(rep map[string]any, groups []tokens.GroupRef) {
	if len(groups) == 0 {
		return
	}
	list := make([]any, len(groups))
	for i, g := range groups {
		list[i] = map[string]any{"value": g.ID, "$ref": u.h.location("/Groups", g.ID), "display": g.DisplayName}
	}
	rep["groups"] = list
}

// groupsOf reads the groups of users, unless the request's projection
// leaves groups out.
func (u *users) groupsOf(r *http.Request, found []tokens.User, proj projection) (map[string][]tokens.GroupRef, error) {
	if len(found) == 0 || !proj.includes("groups", &userShape) {
		return nil, nil
	}
	ids := make([]string, len(found))
	for i := range found {
		ids[i] = found[i].ID
	}
	return u.h.svc.GroupsOfUsers(r.Context(), requestOf(r).orgID(), ids)
}

// userFrom sets every attribute of user from a representation. An absent
// active leaves user.Active as it is: omitting it must not deactivate.
func userFrom(rep map[string]any, user *tokens.User) error {
	name, err := object(getFold(rep, "name"), "name")
	if err != nil {
		return err
	}
	enterprise, err := object(getFold(rep, enterpriseUserURN), enterpriseUserURN)
	if err != nil {
		return err
	}
	ext, err := object(getFold(rep, scimgateUserURN), scimgateUserURN)
	if err != nil {
		return err
	}
	if user.Sites, err = sitesFrom(ext); err != nil {
		return err
	}
	for _, f := range []struct {
		field *string
		from  map[string]any
		name  string
	}{
		{&user.UserName, rep, "userName"},
		{&user.ExternalID, rep, "externalId"},
		{&user.DisplayName, rep, "displayName"},
		{&user.GivenName, name, "givenName"},
		{&user.FamilyName, name, "familyName"},
		{&user.EmployeeNumber, enterprise, "employeeNumber"},
	} {
		if *f.field, err = stringValue(getFold(f.from, f.name), f.name); err != nil {
			return err
		}
	}
	manager := getFold(enterprise, "manager")
	if m, ok := manager.(map[string]any); ok {
		manager = getFold(m, "value")
	} // else a bare id, as Entra sends it, or nothing
	if user.ManagerID, err = stringValue(manager, "manager"); err != nil {
		return err
	}
	if user.Emails, err = emailsFrom(getFold(rep, "emails")); err != nil {
		return err
	}
	if v := getFold(rep, "active"); v != nil {
		if user.Active, err = boolValue(v, "active"); err != nil {
			return err
		}
	}
	return nil
}

// object reads a complex attribute; absent and null are an empty one.
func object(v any, name string) (map[string]any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	}
	return nil, invalidValue("%s must be an object", name)
}

func emailsFrom(v any) ([]tokens.Email, error) {
	var emails []tokens.Email
	primaries := 0
	for _, e := range elements(v) {
		var email tokens.Email
		var err error
		switch e := e.(type) {
		case string:
			email.Value, err = stringValue(e, "emails.value")
		case map[string]any:
			if email.Value, err = stringValue(getFold(e, "value"), "emails.value"); err != nil {
				return nil, err
			}
			if email.Type, err = stringValue(getFold(e, "type"), "emails.type"); err != nil {
				return nil, err
			}
			if p := getFold(e, "primary"); p != nil {
				email.Primary, err = boolValue(p, "emails.primary")
			}
		default:
			err = invalidValue("each of emails must be an object with a value")
		}
		if err != nil {
			return nil, err
		}
		if email.Value == "" {
			continue // nothing to keep
		}
		if email.Primary {
			primaries++
		}
		emails = append(emails, email)
	}
	if primaries > 1 {
		return nil, invalidValue("at most one of emails may be primary")
	}
	return emails, nil
}

func sameUser(a, b *tokens.User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.DisplayName == b.DisplayName &&
		a.GivenName == b.GivenName && a.FamilyName == b.FamilyName && slices.Equal(a.Emails, b.Emails) &&
		a.EmployeeNumber == b.EmployeeNumber && a.ManagerID == b.ManagerID && a.Active == b.Active &&
		sameSites(a.Sites, b.Sites)
}

func (u *users) resource(user *tokens.User, proj projection, groups []tokens.GroupRef) elimity.Resource {
	rep := u.render(user)
	u.addGroups(rep, groups)
	proj.apply(rep, &userShape)
	return libraryResource(rep, user.ID, user.CreatedAt, user.UpdatedAt, user.Version)
}

func (u *users) get(r *http.Request, id string) (*tokens.User, error) {
	if !storable(id) {
		return nil, tokens.Errorf(tokens.NotFound, "user %q not found", id)
	}
	return u.h.svc.User(r.Context(), requestOf(r).orgID(), id)
}

// Create adds a user; active defaults to true.
func (u *users) Create(r *http.Request, attrs elimity.ResourceAttributes) (elimity.Resource, error) {
	req := requestOf(r)
	user := &tokens.User{OrgID: req.orgID(), Active: true}
	if err := userFrom(attrs, user); err != nil {
		return elimity.Resource{}, u.h.fail(r, err)
	}
	user.Sites = req.sites
	if err := u.h.svc.CreateUser(r.Context(), req.actor(), user); err != nil {
		return elimity.Resource{}, u.h.fail(r, err)
	}
	req.stamp(user.CreatedAt, user.UpdatedAt)
	return u.resource(user, projectionOf(r), nil), nil // a new user is in no group
}

func (u *users) Get(r *http.Request, id string) (elimity.Resource, error) {
	user, err := u.get(r, id)
	if err != nil {
		return elimity.Resource{}, u.h.fail(r, err)
	}
	return u.single(r, user)
}

// single is the resource of one user, with its groups.
func (u *users) single(r *http.Request, user *tokens.User) (elimity.Resource, error) {
	proj := projectionOf(r)
	groups, err := u.groupsOf(r, []tokens.User{*user}, proj)
	if err != nil {
		return elimity.Resource{}, u.h.fail(r, err)
	}
	return u.resource(user, proj, groups[user.ID]), nil
}

// GetAll completes elimity.ResourceHandler; handler.ServeHTTP serves lists
// (see list.go), and this answers the same if the library ever asks.
func (u *users) GetAll(r *http.Request, _ elimity.ListRequestParams) (elimity.Page, error) {
	req, err := u.h.parseList(r, "/Users")
	if err != nil {
		return elimity.Page{}, u.h.fail(r, err)
	}
	page, total, err := u.query(r, req)
	if err != nil {
		return elimity.Page{}, u.h.fail(r, err)
	}
	return libraryPage(page, total), nil
}

// Replace is PUT: every attribute is replaced; those the body omits are
// cleared, except active and the sites, which keep their values.
func (u *users) Replace(r *http.Request, id string, attrs elimity.ResourceAttributes) (elimity.Resource, error) {
	req := requestOf(r)
	user, err := u.update(r, id, func(cur *tokens.User) (*tokens.User, error) {
		next := &tokens.User{ID: cur.ID, OrgID: cur.OrgID, Active: cur.Active}
		if err := userFrom(attrs, next); err != nil {
			return nil, err
		}
		next.Sites = nil // kept
		if req.sitesGiven {
			next.Sites = req.sites
		}
		return next, nil
	})
	if err != nil {
		return elimity.Resource{}, u.h.fail(r, err)
	}
	req.stamp(user.CreatedAt, user.UpdatedAt)
	return u.single(r, user)
}

// patch applies PATCH operations; it returns the user's representation and
// version.
func (u *users) patch(r *http.Request, id string, ops []patchOp) (map[string]any, int64, error) {
	user, err := u.update(r, id, func(cur *tokens.User) (*tokens.User, error) {
		rep := u.render(cur)
		if err := applyPatch(rep, ops, &userShape, u.h.patchLimits()); err != nil {
			return nil, err
		}
		next := &tokens.User{ID: cur.ID, OrgID: cur.OrgID, Active: cur.Active}
		return next, userFrom(rep, next)
	})
	if err != nil {
		return nil, 0, err
	}
	rep := u.render(user)
	groups, err := u.groupsOf(r, []tokens.User{*user}, projectionOf(r))
	if err != nil {
		return nil, 0, err
	}
	u.addGroups(rep, groups[user.ID])
	return rep, user.Version, nil
}

// update writes the user change builds from the current one, through
// ReplaceUser: a user going from active to inactive loses every token in
// the same transaction.
func (u *users) update(r *http.Request, id string, change func(cur *tokens.User) (*tokens.User, error)) (*tokens.User, error) {
	req := requestOf(r)
	return update(r, req.orgID()+"/Users/"+id,
		func() (*tokens.User, int64, error) {
			user, err := u.get(r, id)
			if err != nil {
				return nil, 0, err
			}
			return user, user.Version, nil
		},
		change, sameUser,
		func(next *tokens.User, version int64) error {
			_, err := u.h.svc.ReplaceUser(r.Context(), req.actor(), next, version)
			return err
		})
}

// Delete removes the user from the org: soft deletion, every token of the
// user expired.
func (u *users) Delete(r *http.Request, id string) error {
	req := requestOf(r)
	user, err := u.get(r, id)
	if err == nil {
		err = ifMatchOf(r).check(user.Version)
	}
	if err == nil {
		_, err = u.h.svc.RemoveUser(r.Context(), req.actor(), req.orgID(), id)
	}
	if err != nil {
		return u.h.fail(r, err)
	}
	return nil
}
