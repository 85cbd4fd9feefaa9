package scim

import (
	"context"
	"net/http"
	"slices"
	"strings"

	elimity "github.com/elimity-com/scim"
	fp "github.com/scim2/filter-parser/v2"

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
	return g.single(r, group)
}

func (g *groups) Get(r *http.Request, id string) (elimity.Resource, error) {
	group, err := g.get(r, id)
	if err != nil {
		return elimity.Resource{}, g.h.fail(r, err)
	}
	return g.single(r, group)
}

func (g *groups) GetAll(r *http.Request, params elimity.ListRequestParams) (elimity.Page, error) {
	var filter fp.Expression
	if params.FilterValidator != nil {
		filter = params.FilterValidator.GetFilter()
	}
	return g.list(r, filter, params.StartIndex, params.Count, projectionOf(r))
}

// list answers a query in the order of creation, so that pages are stable.
func (g *groups) list(r *http.Request, filter fp.Expression, startIndex, count int, proj projection) (elimity.Page, error) {
	ctx, orgID := r.Context(), requestOf(r).orgID()
	var found []tokens.Group
	var total int
	var err error
	if filter == nil {
		// count 0 asks for totalResults alone; Count 0 would mean all.
		found, total, err = g.h.svc.Groups(ctx, orgID, tokens.GroupFilter{Offset: startIndex - 1, Count: max(count, 1)})
		found = found[:min(len(found), count)]
	} else {
		found, total, err = g.query(ctx, orgID, filter, startIndex, count)
	}
	if err != nil {
		return elimity.Page{}, g.h.fail(r, err)
	}
	displays, err := g.displaysOf(r, found, proj)
	if err != nil {
		return elimity.Page{}, g.h.fail(r, err)
	}
	page := elimity.Page{TotalResults: total, Resources: make([]elimity.Resource, len(found))}
	for i := range found {
		page.Resources[i] = g.resource(&found[i], proj, displays)
	}
	return page, nil
}

// query evaluates a filter over the groups the store selects by its
// anchor: an equality on id, displayName, externalId or a member, or else
// every group of the org.
func (g *groups) query(ctx context.Context, orgID string, filter fp.Expression, startIndex, count int) ([]tokens.Group, int, error) {
	keep := func(group *tokens.Group) bool { return matches(filter, g.render(group), &groupShape, "") }
	var selector tokens.GroupFilter
	fetch := func(offset, limit int) ([]tokens.Group, error) {
		selector.Offset, selector.Count = offset, limit
		found, _, err := g.h.svc.Groups(ctx, orgID, selector)
		return found, err
	}
	a, anchored := findAnchor(anchors(filter, &groupShape), "id", "displayname", "externalid", "members.value")
	switch {
	case anchored && !storable(a.value):
		return nil, 0, nil // nothing stored equals it
	case anchored && a.attr == "id":
		fetch = func(offset, _ int) ([]tokens.Group, error) {
			group, err := g.h.svc.Group(ctx, orgID, a.value)
			if offset > 0 || tokens.ErrorCode(err) == tokens.NotFound {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return []tokens.Group{*group}, nil
		}
	case anchored && a.attr == "displayname":
		selector.DisplayName = a.value
	case anchored && a.attr == "externalid":
		selector.ExternalID = a.value
	case anchored && a.attr == "members.value":
		selector.MemberID = a.value
	}
	return scanPage(fetch, keep, startIndex, count)
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
