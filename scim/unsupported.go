package scim

import (
	"strings"

	fp "github.com/scim2/filter-parser/v2"
)

// unsupportedFilter refuses a query of users that filters on groups:
// User.groups is read-only and filled after the query, so such a filter
// would match no one, silently. The error says how to ask instead.
func unsupportedFilter(endpoint, filter string) error {
	if endpoint != "/Users" || filter == "" {
		return nil
	}
	e, err := parseFilter(filter)
	if err != nil {
		return nil // the library answers for a filter that does not parse
	}
	if !namesGroups(e) {
		return nil
	}
	return badRequest("invalidFilter", "users cannot be filtered on groups: ask for a user's groups with "+
		`GET /Groups?filter=members.value eq "<user id>", or for a group's members with GET /Groups/<group id>`)
}

func namesGroups(e fp.Expression) bool {
	isGroups := func(p fp.AttributePath) bool {
		uri := p.URI()
		return strings.EqualFold(p.AttributeName, "groups") && (uri == "" || strings.EqualFold(uri, userURN))
	}
	switch e := e.(type) {
	case *fp.LogicalExpression:
		return namesGroups(e.Left) || namesGroups(e.Right)
	case *fp.NotExpression:
		return namesGroups(e.Expression)
	case *fp.ValuePath:
		return isGroups(e.AttributePath)
	case *fp.AttributeExpression:
		return isGroups(e.AttributePath)
	}
	return false
}
