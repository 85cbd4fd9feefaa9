package scim

import (
	"net/http"
	"slices"
	"strings"

	elimity "github.com/elimity-com/scim"

	"github.com/scimgate/scimgate/tokens"
)

// groups serves /Groups over tokens.Service. A group's members are users;
// membership grants the permission sets of the group (tokens.Policy), and
// every change of it reaches the members' tokens at once.
type groups struct{ h *handler }

var _ elimity.ResourceHandler = (*groups)(nil)

func (g *groups) render(group *tokens.Group) map[string]any {
	members := make([]any, len(group.MemberIDs))
	for i, id := range group.MemberIDs {
		members[i] = map[string]any{"value": id, "$ref": g.h.location("/Users", id), "type": "User"}
	}
	rep := map[string]any{
		"schemas":     []any{groupURN},
		"id":          group.ID,
		"displayName": group.DisplayName,
		"members":     members,
		"meta":        resourceMeta("Group", g.h.location("/Groups", group.ID), group.CreatedAt, group.UpdatedAt, group.Version),
	}
	if group.ExternalID != "" {
		rep["externalId"] = group.ExternalID
	}
	return rep
}

// addDisplays sets the display of each member of a group's representation
// whose name is in displays.
func addDisplays(rep map[string]any, displays map[string]string) {
	if len(displays) == 0 {
		return
	}
	for _, m := range elements(rep["members"]) {
		if member, ok := m.(map[string]any); ok {
			if id, _ := member["value"].(string); displays[id] != "" {
				member["display"] = displays[id]
			}
		}
	}
}

// displaysOf reads the names to show for the members of groups, unless the
// request's projection leaves members out.
func (g *groups) displaysOf(r *http.Request, found []tokens.Group, proj projection) (map[string]string, error) {
	if !proj.includes("members", &groupShape) {
		return nil, nil
	}
	var ids []string
	for i := range found {
		ids = append(ids, found[i].MemberIDs...)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return g.h.svc.DisplayNames(r.Context(), requestOf(r).orgID(), ids)
}

// single is the resource of one group, with its members' names.
func (g *groups) single(r *http.Request, group *tokens.Group) (elimity.Resource, error) {
	proj := projectionOf(r)
	displays, err := g.displaysOf(r, []tokens.Group{*group}, proj)
	if err != nil {
		return elimity.Resource{}, g.h.fail(r, err)
	}
	return g.resource(group, proj, displays), nil
}

// groupFrom sets every attribute of group from a representation.
func groupFrom(rep map[string]any, group *tokens.Group) error {
	var err error
	if group.DisplayName, err = stringValue(getFold(rep, "displayName"), "displayName"); err != nil {
		return err
	}
	if group.ExternalID, err = stringValue(getFold(rep, "externalId"), "externalId"); err != nil {
		return err
	}
	group.MemberIDs = nil
	for _, m := range elements(getFold(rep, "members")) {
		id := m
		if member, ok := m.(map[string]any); ok {
			if kind, _ := getFold(member, "type").(string); kind != "" && !strings.EqualFold(kind, "User") {
				return invalidValue("a group's members must be users, not %s", kind)
			}
			id = getFold(member, "value")
		}
		s, ok := id.(string)
		if !ok || s == "" {
			return invalidValue("each member needs a value: the id of a user")
		}
		if !storable(s) {
			return invalidValue("member %q is not a user of this organization", s)
		}
		group.MemberIDs = append(group.MemberIDs, s)
	}
	slices.Sort(group.MemberIDs)
	group.MemberIDs = slices.Compact(group.MemberIDs)
	return nil
}

func sameGroup(a, b *tokens.Group) bool {
	return a.DisplayName == b.DisplayName && a.ExternalID == b.ExternalID &&
		slices.Equal(slices.Sorted(slices.Values(a.MemberIDs)), slices.Sorted(slices.Values(b.MemberIDs)))
}

// checkMembers refuses members that are not users of the org, as a bad
// value (400): the domain's not-found would read as "no such group".
// Members already in the group (known) are not read again; the others are
// read in batches.
func (g *groups) checkMembers(r *http.Request, group *tokens.Group, known []string) error {
	isKnown := make(map[string]bool, len(known))
	for _, id := range known {
		isKnown[id] = true
	}
	var added []string
	for _, id := range group.MemberIDs {
		if !isKnown[id] {
			added = append(added, id)
		}
	}
	if len(added) == 0 {
		return nil
	}
	users, err := g.h.svc.DisplayNames(r.Context(), group.OrgID, added)
	if err != nil {
		return err
	}
	for _, id := range added {
		if _, ok := users[id]; !ok {
			return invalidValue("member %q is not a user of this organization", id)
		}
	}
	return nil
}

func (g *groups) resource(group *tokens.Group, proj projection, displays map[string]string) elimity.Resource {
	rep := g.render(group)
	addDisplays(rep, displays)
	proj.apply(rep, &groupShape)
	return libraryResource(rep, group.ID, group.CreatedAt, group.UpdatedAt, group.Version)
}

func (g *groups) get(r *http.Request, id string) (*tokens.Group, error) {
	if !storable(id) {
		return nil, tokens.Errorf(tokens.NotFound, "group %q not found", id)
	}
	return g.h.svc.Group(r.Context(), requestOf(r).orgID(), id)
}

func (g *groups) Create(r *http.Request, attrs elimity.ResourceAttributes) (elimity.Resource, error) {
	req := requestOf(r)
	group := &tokens.Group{OrgID: req.orgID()}
	err := groupFrom(attrs, group)
	if err == nil {
		err = g.checkMembers(r, group, nil)
	}
	if err == nil {
		err = g.h.svc.CreateGroup(r.Context(), req.actor(), group)
	}
	if err != nil {
		return elimity.Resource{}, g.h.fail(r, err)
	}
	req.stamp(group.CreatedAt, group.UpdatedAt)
	return g.single(r, group)
}

func (g *groups) Get(r *http.Request, id string) (elimity.Resource, error) {
	group, err := g.get(r, id)
	if err != nil {
		return elimity.Resource{}, g.h.fail(r, err)
	}
	return g.single(r, group)
}

// GetAll completes elimity.ResourceHandler; handler.ServeHTTP serves lists
// (see list.go), and this answers the same if the library ever asks.
func (g *groups) GetAll(r *http.Request, _ elimity.ListRequestParams) (elimity.Page, error) {
	req, err := g.h.parseList(r, "/Groups")
	if err != nil {
		return elimity.Page{}, g.h.fail(r, err)
	}
	page, total, err := g.query(r, req)
	if err != nil {
		return elimity.Page{}, g.h.fail(r, err)
	}
	return libraryPage(page, total), nil
}

// Replace is PUT: the name, externalId and members are replaced.
func (g *groups) Replace(r *http.Request, id string, attrs elimity.ResourceAttributes) (elimity.Resource, error) {
	group, err := g.update(r, id, func(cur *tokens.Group) (*tokens.Group, error) {
		next := &tokens.Group{ID: cur.ID, OrgID: cur.OrgID}
		return next, groupFrom(attrs, next)
	})
	if err != nil {
		return elimity.Resource{}, g.h.fail(r, err)
	}
	requestOf(r).stamp(group.CreatedAt, group.UpdatedAt)
	return g.single(r, group)
}

// patch applies PATCH operations; it returns the group's representation
// and version.
func (g *groups) patch(r *http.Request, id string, ops []patchOp) (map[string]any, int64, error) {
	group, err := g.update(r, id, func(cur *tokens.Group) (*tokens.Group, error) {
		rep := g.render(cur)
		if err := applyPatch(rep, ops, &groupShape, g.h.patchLimits()); err != nil {
			return nil, err
		}
		next := &tokens.Group{ID: cur.ID, OrgID: cur.OrgID}
		return next, groupFrom(rep, next)
	})
	if err != nil {
		return nil, 0, err
	}
	rep := g.render(group)
	if proj := projectionOf(r); proj.requested() { // else the answer is a 204
		displays, err := g.displaysOf(r, []tokens.Group{*group}, proj)
		if err != nil {
			return nil, 0, err
		}
		addDisplays(rep, displays)
	}
	return rep, group.Version, nil
}

// update writes the group change builds from the current one, through
// ReplaceGroup, which makes the caches of joining and leaving members
// forget them.
func (g *groups) update(r *http.Request, id string, change func(cur *tokens.Group) (*tokens.Group, error)) (*tokens.Group, error) {
	req := requestOf(r)
	return update(r, req.orgID()+"/Groups/"+id,
		func() (*tokens.Group, int64, error) {
			group, err := g.get(r, id)
			if err != nil {
				return nil, 0, err
			}
			return group, group.Version, nil
		},
		func(cur *tokens.Group) (*tokens.Group, error) {
			next, err := change(cur)
			if err == nil {
				err = g.checkMembers(r, next, cur.MemberIDs)
			}
			return next, err
		},
		sameGroup,
		func(next *tokens.Group, version int64) error {
			return g.h.svc.ReplaceGroup(r.Context(), req.actor(), next, version)
		})
}

func (g *groups) Delete(r *http.Request, id string) error {
	req := requestOf(r)
	group, err := g.get(r, id)
	if err == nil {
		err = ifMatchOf(r).check(group.Version)
	}
	if err == nil {
		err = g.h.svc.DeleteGroup(r.Context(), req.actor(), req.orgID(), id)
	}
	if err != nil {
		return g.h.fail(r, err)
	}
	return nil
}
