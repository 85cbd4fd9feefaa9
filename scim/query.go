package scim

import (
	"strings"
	"time"

	fp "github.com/scim2/filter-parser/v2"

	"github.com/scimgate/scimgate/tokens"
)

// A filter is answered by the store where it can be: pushdown translates it
// into a tokens.Query condition that the store evaluates exactly in SQL,
// by index. The part it cannot translate (name.givenName, emails.type, a
// value filter that ties two sub-attributes to one address, …) is left to
// matches, the evaluator in memory, over the resources the translated part
// selects: pushdown then returns a condition that every match meets (a
// superset), and says it is not exact.

// queryAttr is what pushdown needs to know of a filterable attribute.
type queryAttr struct {
	attr     tokens.Attr
	dateTime bool
	boolean  bool
}

// queryAttrs are the attributes the store can answer, by lower-cased
// dotted name ("emails" alone compares emails.value).
var queryAttrs = map[tokens.ResourceKind]map[string]queryAttr{
	tokens.KindUsers: {
		"id":                {attr: tokens.AttrID},
		"externalid":        {attr: tokens.AttrExternalID},
		"username":          {attr: tokens.AttrUserName},
		"displayname":       {attr: tokens.AttrDisplayName},
		"emails":            {attr: tokens.AttrEmail},
		"emails.value":      {attr: tokens.AttrEmail},
		"active":            {attr: tokens.AttrActive, boolean: true},
		"groups":            {attr: tokens.AttrGroup},
		"groups.value":      {attr: tokens.AttrGroup},
		"meta.created":      {attr: tokens.AttrCreated, dateTime: true},
		"meta.lastmodified": {attr: tokens.AttrLastModified, dateTime: true},
	},
	tokens.KindGroups: {
		"id":                {attr: tokens.AttrID},
		"externalid":        {attr: tokens.AttrExternalID},
		"displayname":       {attr: tokens.AttrDisplayName},
		"members":           {attr: tokens.AttrMember},
		"members.value":     {attr: tokens.AttrMember},
		"meta.created":      {attr: tokens.AttrCreated, dateTime: true},
		"meta.lastmodified": {attr: tokens.AttrLastModified, dateTime: true},
	},
}

// dateTimeAttrs are the dateTime attributes of both resources, compared as
// times (at the millisecond they are shown with) rather than as text.
var dateTimeAttrs = set("meta.created", "meta.lastmodified")

// pushdown returns a condition every resource that matches e meets, and
// whether it is exactly e. A nil condition selects every resource.
func pushdown(e fp.Expression, shape *resourceShape, kind tokens.ResourceKind) (tokens.Cond, bool) {
	switch e := e.(type) {
	case *fp.LogicalExpression:
		l, lExact := pushdown(e.Left, shape, kind)
		r, rExact := pushdown(e.Right, shape, kind)
		if e.Operator == fp.OR {
			if l == nil || r == nil {
				return nil, false // one side may hold for anything
			}
			return tokens.Or{l, r}, lExact && rExact
		}
		return and(l, r), lExact && rExact
	case *fp.NotExpression:
		inner, exact := pushdown(e.Expression, shape, kind)
		if !exact || inner == nil {
			return nil, false // the complement of a superset is no superset
		}
		return tokens.Not{Cond: inner}, true
	case *fp.AttributeExpression:
		name, ok := attrName(e.AttributePath, shape)
		if !ok {
			return nil, false
		}
		return compareCond(name, e, kind)
	case *fp.ValuePath:
		name, ok := attrName(e.AttributePath, shape)
		if !ok || strings.Contains(name, ".") {
			return nil, false
		}
		return valueFilterCond(name, e.ValueFilter, kind)
	}
	return nil, false
}

// and joins two conditions, either of which may be nil (no condition).
func and(l, r tokens.Cond) tokens.Cond {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	}
	return tokens.And{l, r}
}

// attrName is the lower-cased dotted name of a core attribute path, as
// queryAttrs keys it.
func attrName(ap fp.AttributePath, shape *resourceShape) (string, bool) {
	if uri := ap.URI(); uri != "" && !strings.EqualFold(uri, shape.core) {
		return "", false // an extension: not in the store's columns
	}
	name := strings.ToLower(ap.AttributeName)
	if sub := ap.SubAttributeName(); sub != "" {
		name += "." + strings.ToLower(sub)
	}
	return name, true
}

// compareCond translates one comparison, which matches compares the same
// way (see tokens.Query).
func compareCond(name string, e *fp.AttributeExpression, kind tokens.ResourceKind) (tokens.Cond, bool) {
	qa, ok := queryAttrs[kind][name]
	if !ok {
		return nil, false
	}
	op := fp.CompareOperator(strings.ToLower(string(e.Operator)))
	if op == fp.PR {
		return tokens.Compare{Attr: qa.attr, Op: tokens.OpPr}, true
	}
	var value any
	switch v := compareValue(e).(type) {
	case string:
		switch {
		case qa.boolean:
			return nil, false
		case qa.dateTime:
			t, err := parseDateTime(v)
			if err != nil {
				return nil, false
			}
			value = t
		case !storable(v):
			return nil, false // nothing stored holds it; matches decides
		default:
			value = v
		}
	case bool:
		if !qa.boolean {
			return nil, false
		}
		value = v
	default:
		return nil, false
	}
	var tokOp tokens.Op
	switch op {
	case fp.EQ, fp.NE:
		tokOp = tokens.OpEq
	case fp.SW, fp.EW, fp.CO:
		if qa.dateTime || qa.boolean {
			return nil, false // compared as text by matches
		}
		tokOp = tokens.Op(op)
	case fp.GT, fp.GE, fp.LT, fp.LE:
		if qa.boolean {
			return nil, false
		}
		tokOp = tokens.Op(op)
	default:
		return nil, false
	}
	c := tokens.Compare{Attr: qa.attr, Op: tokOp, Value: value}
	if op == fp.NE {
		return tokens.Not{Cond: c}, true
	}
	return c, true
}

// valueFilterCond translates emails[…] or members[…]: a value meeting the
// filter exists. Comparisons of the value itself translate, and so does an
// or of them; an and needs both to hold of one value, which the store's
// conditions cannot say, so it translates to the superset "a value meets
// the one and a value meets the other".
func valueFilterCond(attr string, e fp.Expression, kind tokens.ResourceKind) (tokens.Cond, bool) {
	switch e := e.(type) {
	case *fp.LogicalExpression:
		l, lExact := valueFilterCond(attr, e.Left, kind)
		r, rExact := valueFilterCond(attr, e.Right, kind)
		if e.Operator == fp.OR {
			if l == nil || r == nil {
				return nil, false
			}
			return tokens.Or{l, r}, lExact && rExact
		}
		return and(l, r), false
	case *fp.AttributeExpression:
		if e.AttributePath.URI() != "" || e.AttributePath.SubAttribute != nil || !strings.EqualFold(e.AttributePath.AttributeName, "value") {
			return nil, false // emails[type eq "work"]: not in the store's columns
		}
		return compareCond(attr+".value", e, kind)
	}
	return nil, false
}

// parseDateTime reads an xsd:dateTime as filters carry it: RFC 3339, or
// without a zone, which means UTC (as the SCIM library that validates
// filters reads it).
func parseDateTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
}
