package tokens

import (
	"strings"
	"time"
)

// UserMatches reports whether a user meets a condition, by the rules of
// Query; groupIDs are the IDs of the user's groups (for AttrGroup). A store
// answers queries its own way (in SQL); this is what it must agree with,
// and what its tests compare it to.
func UserMatches(c Cond, u *User, groupIDs []string) bool {
	return matchCond(c, func(a Attr) attrValues {
		switch a {
		case AttrID:
			return textValues(u.ID, true)
		case AttrExternalID:
			return textValues(u.ExternalID, false)
		case AttrUserName:
			return textValues(u.UserName, true)
		case AttrDisplayName:
			return textValues(u.DisplayName, false)
		case AttrEmail:
			var v attrValues
			for _, e := range u.Emails {
				if e.Value != "" {
					v.texts = append(v.texts, e.Value)
				}
			}
			return v
		case AttrActive:
			return attrValues{boolean: &u.Active}
		case AttrGroup:
			return attrValues{texts: groupIDs}
		case AttrCreated:
			return attrValues{time: u.CreatedAt, isTime: true}
		case AttrLastModified:
			return attrValues{time: u.UpdatedAt, isTime: true}
		}
		return attrValues{}
	})
}

// GroupMatches reports whether a group meets a condition, by the rules of
// Query.
func GroupMatches(c Cond, g *Group) bool {
	return matchCond(c, func(a Attr) attrValues {
		switch a {
		case AttrID:
			return textValues(g.ID, true)
		case AttrExternalID:
			return textValues(g.ExternalID, false)
		case AttrDisplayName:
			return textValues(g.DisplayName, true)
		case AttrMember:
			return attrValues{texts: g.MemberIDs}
		case AttrCreated:
			return attrValues{time: g.CreatedAt, isTime: true}
		case AttrLastModified:
			return attrValues{time: g.UpdatedAt, isTime: true}
		}
		return attrValues{}
	})
}

// attrValues are the values of an attribute of one resource.
type attrValues struct {
	texts   []string
	boolean *bool
	time    time.Time
	isTime  bool
}

// textValues is a single text value; an optional one is absent when empty.
func textValues(s string, required bool) attrValues {
	if s == "" && !required {
		return attrValues{}
	}
	return attrValues{texts: []string{s}}
}

func matchCond(c Cond, values func(Attr) attrValues) bool {
	switch c := c.(type) {
	case nil:
		return true // no condition: every resource
	case And:
		for _, sub := range c {
			if !matchCond(sub, values) {
				return false
			}
		}
		return true
	case Or:
		for _, sub := range c {
			if matchCond(sub, values) {
				return true
			}
		}
		return false
	case Not:
		return !matchCond(c.Cond, values)
	case Compare:
		return matchCompare(c, values(c.Attr))
	}
	return false
}

func matchCompare(c Compare, v attrValues) bool {
	switch {
	case v.isTime:
		if c.Op == OpPr {
			return true
		}
		want, ok := c.Value.(time.Time)
		return ok && compareTimes(v.time.Truncate(time.Millisecond), c.Op, want)
	case v.boolean != nil:
		want, ok := c.Value.(bool)
		return c.Op == OpPr || ok && c.Op == OpEq && *v.boolean == want
	}
	if c.Op == OpPr {
		return len(v.texts) > 0
	}
	want, ok := c.Value.(string)
	if !ok {
		return false
	}
	if !c.Attr.CaseExact() {
		want = strings.ToLower(want)
	}
	for _, s := range v.texts {
		if !c.Attr.CaseExact() {
			s = strings.ToLower(s)
		}
		if compareTexts(s, c.Op, want) {
			return true
		}
	}
	return false
}

func compareTexts(s string, op Op, want string) bool {
	switch op {
	case OpEq:
		return s == want
	case OpSw:
		return strings.HasPrefix(s, want)
	case OpEw:
		return strings.HasSuffix(s, want)
	case OpCo:
		return strings.Contains(s, want)
	}
	return ordered(strings.Compare(s, want), op)
}

func compareTimes(t time.Time, op Op, want time.Time) bool {
	return ordered(t.Compare(want), op)
}

func ordered(cmp int, op Op) bool {
	switch op {
	case OpEq:
		return cmp == 0
	case OpGt:
		return cmp > 0
	case OpGe:
		return cmp >= 0
	case OpLt:
		return cmp < 0
	case OpLe:
		return cmp <= 0
	}
	return false
}
