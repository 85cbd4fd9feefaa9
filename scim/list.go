package scim

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	elimity "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	elimityfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	fp "github.com/scim2/filter-parser/v2"

	"github.com/scimgate/scimgate/tokens"
)

// Lists (GET /Users, GET /Groups, POST …/.search) and the reads of one
// resource are served here rather than by the library, so that
//
//   - a filter is answered by the store where it can be (see pushdown),
//     with one count per request, and none when the page tells the total;
//     what the store cannot answer is evaluated here over at most
//     MaxFilterCandidates resources it selects, never over a whole org;
//   - sortBy and sortOrder order the results in the store;
//   - a group's members are read only when the response includes them, and
//     a client can page them;
//   - meta.created and meta.lastModified carry milliseconds (the library
//     writes whole seconds).

const listResponseURN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

// defaultMaxFilterCandidates is Options.MaxFilterCandidates by default.
const defaultMaxFilterCandidates = 10000

// listRequest is what a list request asks for.
type listRequest struct {
	filter     fp.Expression // nil: none
	rawFilter  string        // as given, rewritten (see rewriteFilter)
	startIndex int           // 1-based
	count      int
	sortBy     tokens.Attr
	descending bool
	proj       projection
	members    memberPage
}

// memberPage is which of a group's members a response holds: all (the
// default), or a page of them asked for with
// attributes=members[startIndex=1&count=100].
type memberPage struct {
	paged             bool
	startIndex, count int
}

// parseList reads the parameters of a list request on endpoint, as the
// library would (count capped at maxPageSize, startIndex at least 1, the
// filter validated against the resource type's schemas), plus sortBy,
// sortOrder and a page of members.
func (h *handler) parseList(r *http.Request, endpoint string) (listRequest, error) {
	q := r.URL.Query()
	var bad []string
	req := listRequest{startIndex: 1, count: maxPageSize}
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			bad = append(bad, "count")
		}
		req.count = min(max(n, 0), maxPageSize)
	}
	if s := q.Get("startIndex"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			bad = append(bad, "startIndex")
		}
		req.startIndex = max(n, 1)
	}
	if len(bad) > 0 {
		return req, scimerrors.ScimErrorBadParams(bad)
	}
	var err error
	if req.proj, req.members, err = listProjection(r, endpoint); err != nil {
		return req, err
	}
	if req.sortBy, req.descending, err = sortOf(q.Get("sortBy"), q.Get("sortOrder"), endpoint); err != nil {
		return req, err
	}
	if f := strings.TrimSpace(q.Get("filter")); f != "" {
		req.rawFilter = rewriteFilter(f)
		if req.filter, err = h.validateFilter(req.rawFilter, endpoint); err != nil {
			return req, err
		}
	}
	return req, nil
}

// validateFilter parses a filter and checks it against the schemas of the
// resource type, with the common attributes (id, externalId, meta), as
// the library does for the lists it serves.
func (h *handler) validateFilter(f, endpoint string) (fp.Expression, error) {
	rt := h.resourceTypes[endpoint]
	withCommon := rt.Schema
	withCommon.Attributes = append(append([]schema.CoreAttribute(nil), rt.Schema.Attributes...), schema.CommonAttributes()...)
	var extensions []schema.Schema
	for _, ext := range rt.SchemaExtensions {
		extensions = append(extensions, ext.Schema)
	}
	validator, err := newFilterValidator(f, withCommon, extensions)
	if err != nil {
		return nil, scimerrors.ScimErrorInvalidFilter
	}
	if err := checkDateTimes(validator.GetFilter()); err != nil {
		return nil, err
	}
	return validator.GetFilter(), nil
}

// checkDateTimes refuses a comparison of meta.created or meta.lastModified
// with a value that is no xsd:dateTime: the library lets it through, and it
// would match nothing (or, compared as text, the wrong resources) where the
// client means a delta query.
func checkDateTimes(e fp.Expression) error {
	switch e := e.(type) {
	case *fp.LogicalExpression:
		if err := checkDateTimes(e.Left); err != nil {
			return err
		}
		return checkDateTimes(e.Right)
	case *fp.NotExpression:
		return checkDateTimes(e.Expression)
	case *fp.AttributeExpression:
		ap := e.AttributePath
		name := strings.ToLower(ap.AttributeName + "." + ap.SubAttributeName())
		if !dateTimeAttrs[name] || strings.EqualFold(string(e.Operator), string(fp.PR)) {
			return nil
		}
		v, ok := compareValue(e).(string)
		if ok {
			if _, err := parseDateTime(v); err == nil {
				return nil
			}
		}
		return badRequest("invalidFilter", "%s.%s compares with an xsd:dateTime such as \"2026-01-02T03:04:05.678Z\", not %v",
			ap.AttributeName, ap.SubAttributeName(), e.CompareValue)
	}
	return nil
}

// newFilterValidator guards against a panic in the library's validator:
// bad input must be a 400, whatever it is.
func newFilterValidator(f string, s schema.Schema, extensions []schema.Schema) (v elimityfilter.Validator, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("validate filter: %v", p)
		}
	}()
	if v, err = elimityfilter.NewValidator(f, s, extensions...); err != nil {
		return v, err
	}
	return v, v.Validate()
}

// sortOf reads sortBy and sortOrder (RFC 7644 3.4.2.3). Without sortBy the
// order is that of creation; sortOrder defaults to ascending.
func sortOf(sortBy, sortOrder, endpoint string) (tokens.Attr, bool, error) {
	descending := false
	switch strings.ToLower(strings.TrimSpace(sortOrder)) {
	case "", "ascending":
	case "descending":
		descending = true
	default:
		return "", false, invalidValue("sortOrder must be ascending or descending, not %q", sortOrder)
	}
	name := strings.TrimSpace(sortBy)
	core := userURN
	if endpoint == "/Groups" {
		core = groupURN
	}
	if len(name) > len(core) && strings.EqualFold(name[:len(core)+1], core+":") {
		name = name[len(core)+1:]
	}
	switch strings.ToLower(name) {
	case "":
		return "", false, nil
	case "username":
		if endpoint == "/Users" {
			return tokens.AttrUserName, descending, nil
		}
	case "displayname":
		return tokens.AttrDisplayName, descending, nil
	case "meta.lastmodified":
		return tokens.AttrLastModified, descending, nil
	case "meta.created":
		return tokens.AttrCreated, descending, nil
	}
	supported := "userName, displayName, meta.created or meta.lastModified"
	if endpoint == "/Groups" {
		supported = "displayName, meta.created or meta.lastModified"
	}
	return "", false, invalidValue("sortBy: %s can be sorted by %s, not %q", strings.TrimPrefix(endpoint, "/"), supported, sortBy)
}

// memberPageSyntax is a page of members in attributes, as Oracle's
// identity domains spell it: members[startIndex=1&count=100] (the & sent
// as %26).
var memberPageSyntax = regexp.MustCompile(`(?i)^(?:` + regexp.QuoteMeta(groupURN) + `:)?members\[(.*)\]$`)

// listProjection is a request's projection, with a page of members taken
// out of attributes (on /Groups).
func listProjection(r *http.Request, endpoint string) (projection, memberPage, error) {
	proj := projectionOf(r)
	var page memberPage
	for i, a := range proj.attributes {
		m := memberPageSyntax.FindStringSubmatch(a)
		if m == nil || endpoint != "/Groups" {
			continue
		}
		page = memberPage{paged: true, startIndex: 1}
		for param := range strings.SplitSeq(m[1], "&") {
			key, value, _ := strings.Cut(strings.TrimSpace(param), "=")
			n, err := strconv.Atoi(strings.TrimSpace(value))
			switch {
			case err != nil:
				return proj, page, invalidValue("%s: %q is not startIndex=N or count=N", a, param)
			case strings.EqualFold(key, "startIndex"):
				page.startIndex = max(n, 1)
			case strings.EqualFold(key, "count"):
				page.count = max(n, 0)
			default:
				return proj, page, invalidValue("%s: a page of members takes startIndex and count, not %q", a, key)
			}
		}
		if page.count == 0 {
			return proj, page, invalidValue("%s: a page of members needs a count, such as members[startIndex=1&count=1000]", a)
		}
		proj.attributes[i] = "members"
	}
	return proj, page, nil
}

// serveList answers GET /Users and GET /Groups (and the searches made
// into them).
func (h *handler) serveList(w http.ResponseWriter, r *http.Request, endpoint string) {
	req, err := h.parseList(r, endpoint)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var page []map[string]any
	var total int
	if endpoint == "/Users" {
		page, total, err = h.users.query(r, req)
	} else {
		page, total, err = h.groups.query(r, req)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	resources := make([]any, len(page))
	for i := range page {
		resources[i] = page[i]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []string{listResponseURN},
		"totalResults": total,
		"itemsPerPage": len(page),
		"startIndex":   req.startIndex,
		"Resources":    resources,
	})
}

// tooManyCandidates refuses a filter the store cannot narrow down enough.
func tooManyCandidates(kind tokens.ResourceKind, limit int) error {
	return badRequest(scimerrors.ScimTypeTooMany, "the filter would be evaluated on more than %d %s: add a condition on "+
		"an attribute scimgate selects by index (id, externalId, %smeta.created or meta.lastModified, with eq, sw, ew, co, "+
		"gt, ge, lt, le or pr), joined by and", limit, kind, map[tokens.ResourceKind]string{
		tokens.KindUsers:  "userName, displayName, emails, active, ",
		tokens.KindGroups: "displayName, members, ",
	}[kind])
}

// pageOf is the part of a list a request's page covers.
func pageOf[T any](all []T, req listRequest) []T {
	from := min(req.startIndex-1, len(all))
	return all[from:min(len(all), from+req.count)]
}

// query answers a list request of users.
func (u *users) query(r *http.Request, req listRequest) ([]map[string]any, int, error) {
	ctx, orgID := r.Context(), requestOf(r).orgID()
	cond, exact := tokens.Cond(nil), true
	if req.filter != nil {
		cond, exact = pushdown(req.filter, &userShape, tokens.KindUsers)
	}
	if !exact {
		// User.groups is read after the query: evaluated in memory, a
		// filter on it would match no one. groups.value alone is
		// answered by the store, exactly.
		if err := unsupportedFilter("/Users", req.rawFilter); err != nil {
			return nil, 0, err
		}
	}
	q := tokens.Query{Where: cond, SortBy: req.sortBy, Descending: req.descending}
	var found []tokens.User
	var total int
	if exact {
		q.Offset, q.Limit, q.WithTotal = req.startIndex-1, req.count, true
		var err error
		if found, total, err = u.h.svc.QueryUsers(ctx, orgID, q); err != nil {
			return nil, 0, err
		}
	} else {
		q.Limit = u.h.maxCandidates() + 1
		candidates, _, err := u.h.svc.QueryUsers(ctx, orgID, q)
		if err != nil {
			return nil, 0, err
		}
		if len(candidates) > u.h.maxCandidates() {
			return nil, 0, tooManyCandidates(tokens.KindUsers, u.h.maxCandidates())
		}
		var matched []tokens.User
		for i := range candidates {
			if matches(req.filter, u.render(&candidates[i]), &userShape, "") {
				matched = append(matched, candidates[i])
			}
		}
		found, total = pageOf(matched, req), len(matched)
	}
	groups, err := u.groupsOf(r, found, req.proj)
	if err != nil {
		return nil, 0, err
	}
	page := make([]map[string]any, len(found))
	for i := range found {
		rep := u.render(&found[i])
		u.addGroups(rep, groups[found[i].ID])
		page[i] = u.h.listed("/Users", rep, req.proj, &userShape)
	}
	return page, total, nil
}

// query answers a list request of groups. Members are read when the
// response shows them, or when a filter the store cannot answer looks at
// them.
func (g *groups) query(r *http.Request, req listRequest) ([]map[string]any, int, error) {
	ctx, orgID := r.Context(), requestOf(r).orgID()
	cond, exact := tokens.Cond(nil), true
	if req.filter != nil {
		cond, exact = pushdown(req.filter, &groupShape, tokens.KindGroups)
	}
	shown := req.proj.includes("members", &groupShape)
	q := tokens.Query{Where: cond, SortBy: req.sortBy, Descending: req.descending}
	var found []tokens.Group
	var total int
	if exact {
		q.Offset, q.Limit, q.WithTotal = req.startIndex-1, req.count, true
		var err error
		if found, total, err = g.h.svc.QueryGroups(ctx, orgID, q, shown && !req.members.paged); err != nil {
			return nil, 0, err
		}
	} else {
		q.Limit = g.h.maxCandidates() + 1
		candidates, _, err := g.h.svc.QueryGroups(ctx, orgID, q, mentionsMembers(req.filter))
		if err != nil {
			return nil, 0, err
		}
		if len(candidates) > g.h.maxCandidates() {
			return nil, 0, tooManyCandidates(tokens.KindGroups, g.h.maxCandidates())
		}
		var matched []tokens.Group
		for i := range candidates {
			if matches(req.filter, g.render(&candidates[i]), &groupShape, "") {
				matched = append(matched, candidates[i])
			}
		}
		found, total = pageOf(matched, req), len(matched)
		if shown && !req.members.paged && !mentionsMembers(req.filter) {
			if err := g.fillMembers(ctx, orgID, found); err != nil {
				return nil, 0, err
			}
		}
	}
	if shown && req.members.paged {
		for i := range found {
			ids, err := g.h.svc.GroupMembers(ctx, orgID, found[i].ID, req.members.startIndex-1, req.members.count)
			if err != nil {
				return nil, 0, err
			}
			found[i].MemberIDs = ids
		}
	}
	displays, err := g.displaysOf(r, found, req.proj)
	if err != nil {
		return nil, 0, err
	}
	page := make([]map[string]any, len(found))
	for i := range found {
		rep := g.render(&found[i])
		addDisplays(rep, displays)
		page[i] = g.h.listed("/Groups", rep, req.proj, &groupShape)
	}
	return page, total, nil
}

// fillMembers reads the members of groups read without them.
func (g *groups) fillMembers(ctx context.Context, orgID string, found []tokens.Group) error {
	for i := range found {
		ids, err := g.h.svc.GroupMembers(ctx, orgID, found[i].ID, 0, 0)
		if err != nil {
			return err
		}
		found[i].MemberIDs = ids
	}
	return nil
}

// mentionsMembers reports whether a filter looks at members (so that
// evaluating it in memory needs them).
func mentionsMembers(e fp.Expression) bool {
	switch e := e.(type) {
	case *fp.LogicalExpression:
		return mentionsMembers(e.Left) || mentionsMembers(e.Right)
	case *fp.NotExpression:
		return mentionsMembers(e.Expression)
	case *fp.AttributeExpression:
		return strings.EqualFold(e.AttributePath.AttributeName, "members")
	case *fp.ValuePath:
		return strings.EqualFold(e.AttributePath.AttributeName, "members")
	}
	return false
}

// listed is a representation as a response shows it: projected, with the
// schemas of its resource type (as the library writes them).
func (h *handler) listed(endpoint string, rep map[string]any, proj projection, shape *resourceShape) map[string]any {
	proj.apply(rep, shape)
	rt := h.resourceTypes[endpoint]
	schemas := []any{rt.Schema.ID}
	for _, ext := range rt.SchemaExtensions {
		schemas = append(schemas, ext.Schema.ID)
	}
	rep["schemas"] = schemas
	return rep
}

func (h *handler) maxCandidates() int {
	if h.opts.MaxFilterCandidates > 0 {
		return h.opts.MaxFilterCandidates
	}
	return defaultMaxFilterCandidates
}

// serveGet answers GET /Users/{id} and GET /Groups/{id}.
func (h *handler) serveGet(w http.ResponseWriter, r *http.Request, endpoint, id string) {
	proj, members, err := listProjection(r, endpoint)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var rep map[string]any
	var version int64
	if endpoint == "/Users" {
		var user *tokens.User
		var groups map[string][]tokens.GroupRef
		if user, err = h.users.get(r, id); err == nil {
			groups, err = h.users.groupsOf(r, []tokens.User{*user}, proj)
		}
		if err == nil {
			rep, version = h.users.render(user), user.Version
			h.users.addGroups(rep, groups[user.ID])
			h.listed(endpoint, rep, proj, &userShape)
		}
	} else {
		var group *tokens.Group
		var displays map[string]string
		if group, err = h.groups.read(r, id, proj.includes("members", &groupShape), members); err == nil {
			displays, err = h.groups.displaysOf(r, []tokens.Group{*group}, proj)
		}
		if err == nil {
			rep, version = h.groups.render(group), group.Version
			addDisplays(rep, displays)
			h.listed(endpoint, rep, proj, &groupShape)
		}
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(version))
	writeJSON(w, http.StatusOK, rep)
}

// read reads a group of the request's org, its members only when wanted.
func (g *groups) read(r *http.Request, id string, withMembers bool, page memberPage) (*tokens.Group, error) {
	ctx, orgID := r.Context(), requestOf(r).orgID()
	if !storable(id) {
		return nil, tokens.Errorf(tokens.NotFound, "group %q not found", id)
	}
	found, _, err := g.h.svc.QueryGroups(ctx, orgID, tokens.Query{Limit: 1,
		Where: tokens.Compare{Attr: tokens.AttrID, Op: tokens.OpEq, Value: id}}, false)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, tokens.Errorf(tokens.NotFound, "group %s not found", id)
	}
	group := &found[0]
	if withMembers {
		offset, limit := 0, 0
		if page.paged {
			offset, limit = page.startIndex-1, page.count
		}
		if group.MemberIDs, err = g.h.svc.GroupMembers(ctx, orgID, id, offset, limit); err != nil {
			return nil, err
		}
	}
	return group, nil
}

// libraryPage turns a page of representations into what the library's
// GetAll returns (the library is not asked for lists, see ServeHTTP).
func libraryPage(page []map[string]any, total int) elimity.Page {
	p := elimity.Page{TotalResults: total, Resources: make([]elimity.Resource, len(page))}
	for i, rep := range page {
		id, _ := rep["id"].(string)
		p.Resources[i] = elimity.Resource{ID: id, Attributes: rep}
	}
	return p
}

// stamp notes the times of the resource a POST or PUT answers with, so
// that ServeHTTP can show them with milliseconds in the library's answer.
func (req *request) stamp(created, modified time.Time) {
	req.times = &resourceTimes{created: created, modified: modified}
}

type resourceTimes struct{ created, modified time.Time }

// millisecondMeta rewrites meta.created and meta.lastModified of a
// resource the library wrote (in whole seconds) with milliseconds.
func millisecondMeta(body []byte, t *resourceTimes) []byte {
	for _, f := range []struct {
		key string
		at  time.Time
	}{{"created", t.created}, {"lastModified", t.modified}} {
		seconds := []byte(`"` + f.key + `":"` + f.at.UTC().Format(time.RFC3339) + `"`)
		body = bytes.Replace(body, seconds, []byte(`"`+f.key+`":"`+rfc3339(f.at)+`"`), 1)
	}
	return body
}
