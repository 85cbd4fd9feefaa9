package tokens

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// A Query asks for one page of an org's users or groups: those that meet a
// condition, in an order, from an offset. Transports build it (SCIM from a
// filter); the store answers it in the database, by index where one
// serves, exactly as if the condition were tested on every resource of
// the org with the rules below.
//
// The rules, which the SCIM filter evaluator shares:
//   - Text attributes are case-insensitive (both sides lower-cased as Go's
//     strings.ToLower does) except AttrID, AttrExternalID, AttrMember and
//     AttrGroup, which are case-exact. Order comparisons (gt, ge, lt, le)
//     compare the bytes of the (lower-cased) UTF-8 strings, which is
//     Unicode code point order.
//   - An attribute that is absent (empty) meets no comparison but a negated
//     one: displayName sw "" holds for every user with a display name.
//   - AttrEmail, AttrMember and AttrGroup are multi-valued: a comparison
//     holds when one of the values meets it, and pr when there is a value.
//   - Times are compared at millisecond precision: a stored time is cut to
//     the millisecond (as SCIM shows it) before it is compared with the
//     given one, which may be more precise.
type Query struct {
	// Where selects the resources; nil selects every one. Removed users
	// are never selected.
	Where Cond
	// SortBy orders the page: AttrCreated (the default, also for ""),
	// AttrUserName (users), AttrDisplayName or AttrLastModified; ties are
	// broken by ID. Text sorts as it compares.
	SortBy     Attr
	Descending bool
	// Offset skips that many matches; Limit bounds the page (0: no
	// resources, only the total).
	Offset, Limit int
	// WithTotal asks for the number of matches. The store counts them only
	// when the page cannot tell: a page that is not full, and not empty
	// past the end, gives the total itself.
	WithTotal bool
}

// Attr is an attribute a Query can test or sort by.
type Attr string

const (
	AttrID           Attr = "id"
	AttrExternalID   Attr = "externalId"
	AttrUserName     Attr = "userName"    // users only
	AttrDisplayName  Attr = "displayName" // users and groups
	AttrEmail        Attr = "email"       // users: any of their addresses
	AttrActive       Attr = "active"      // users: a bool
	AttrGroup        Attr = "group"       // users: the ID of a group they are in
	AttrMember       Attr = "member"      // groups: the user ID of a member
	AttrCreated      Attr = "created"     // a time
	AttrLastModified Attr = "lastModified"
)

// Op is how a Compare compares.
type Op string

const (
	OpEq Op = "eq"
	OpSw Op = "sw" // starts with
	OpEw Op = "ew" // ends with
	OpCo Op = "co" // contains
	OpPr Op = "pr" // present: has a non-empty value
	OpGt Op = "gt"
	OpGe Op = "ge"
	OpLt Op = "lt"
	OpLe Op = "le"
)

// Cond is a condition of a Query: a Compare, And, Or or Not.
type Cond interface{ isCond() }

// Compare tests an attribute. Value is a string for text attributes, a
// bool for AttrActive and a time.Time for AttrCreated and
// AttrLastModified; it is ignored by OpPr.
type Compare struct {
	Attr  Attr
	Op    Op
	Value any
}

// And holds when every condition holds (an empty And always does).
type And []Cond

// Or holds when one of the conditions holds (an empty Or never does).
type Or []Cond

// Not holds when its condition does not.
type Not struct{ Cond Cond }

func (Compare) isCond() {}
func (And) isCond()     {}
func (Or) isCond()      {}
func (Not) isCond()     {}

// ResourceKind tells which attributes a Query may use.
type ResourceKind string

const (
	KindUsers  ResourceKind = "users"
	KindGroups ResourceKind = "groups"
)

var attrKinds = map[Attr][]ResourceKind{
	AttrID: {KindUsers, KindGroups}, AttrExternalID: {KindUsers, KindGroups}, AttrDisplayName: {KindUsers, KindGroups},
	AttrCreated: {KindUsers, KindGroups}, AttrLastModified: {KindUsers, KindGroups},
	AttrUserName: {KindUsers}, AttrEmail: {KindUsers}, AttrActive: {KindUsers}, AttrGroup: {KindUsers},
	AttrMember: {KindGroups},
}

// CaseExact reports whether text values of the attribute compare with
// their letter case.
func (a Attr) CaseExact() bool {
	return a == AttrID || a == AttrExternalID || a == AttrMember || a == AttrGroup
}

// IsTime reports whether the attribute holds a time.
func (a Attr) IsTime() bool { return a == AttrCreated || a == AttrLastModified }

// Check reports what is wrong with a query of resources of kind: an
// attribute the kind does not have, a comparison its type does not
// support, a value of the wrong type, a negative page.
func (q Query) Check(kind ResourceKind) error {
	if q.Offset < 0 || q.Limit < 0 {
		return Errorf(Invalid, "a query's offset and limit must not be negative")
	}
	switch q.SortBy {
	case "", AttrCreated, AttrLastModified, AttrDisplayName:
	case AttrUserName:
		if kind != KindUsers {
			return Errorf(Invalid, "%s cannot be sorted by %s", kind, q.SortBy)
		}
	default:
		return Errorf(Invalid, "%s cannot be sorted by %s", kind, q.SortBy)
	}
	if q.Where == nil {
		return nil
	}
	return checkCond(q.Where, kind)
}

func checkCond(c Cond, kind ResourceKind) error {
	switch c := c.(type) {
	case And:
		for _, sub := range c {
			if err := checkCond(sub, kind); err != nil {
				return err
			}
		}
	case Or:
		for _, sub := range c {
			if err := checkCond(sub, kind); err != nil {
				return err
			}
		}
	case Not:
		if c.Cond == nil {
			return Errorf(Invalid, "not of nothing")
		}
		return checkCond(c.Cond, kind)
	case Compare:
		return c.check(kind)
	default:
		return Errorf(Invalid, "unknown condition %T", c)
	}
	return nil
}

func (c Compare) check(kind ResourceKind) error {
	kinds, known := attrKinds[c.Attr]
	if !known || !slices.Contains(kinds, kind) {
		return Errorf(Invalid, "%s have no attribute %s to query", kind, c.Attr)
	}
	switch c.Op {
	case OpEq, OpSw, OpEw, OpCo, OpPr, OpGt, OpGe, OpLt, OpLe:
	default:
		return Errorf(Invalid, "unknown comparison %q", c.Op)
	}
	if c.Op == OpPr {
		return nil
	}
	switch {
	case c.Attr == AttrActive:
		if _, ok := c.Value.(bool); !ok || c.Op != OpEq {
			return Errorf(Invalid, "%s can only be compared with eq to true or false", c.Attr)
		}
	case c.Attr.IsTime():
		if _, ok := c.Value.(time.Time); !ok {
			return Errorf(Invalid, "%s must be compared with a time", c.Attr)
		}
		if c.Op == OpSw || c.Op == OpEw || c.Op == OpCo {
			return Errorf(Invalid, "%s is a time: compare it with eq, gt, ge, lt or le", c.Attr)
		}
	default:
		if _, ok := c.Value.(string); !ok {
			return Errorf(Invalid, "%s must be compared with a string, not %T", c.Attr, c.Value)
		}
	}
	return nil
}

// String shows a condition in SCIM-like syntax, for errors and traces.
func (c Compare) String() string {
	if c.Op == OpPr {
		return fmt.Sprintf("%s pr", c.Attr)
	}
	return fmt.Sprintf("%s %s %q", c.Attr, c.Op, fmt.Sprint(c.Value))
}

// QueryUsers returns a page of an org's users and, when q.WithTotal, how
// many match in all (-1 otherwise).
func (s *Service) QueryUsers(ctx context.Context, orgID string, q Query) (users []User, total int, err error) {
	if err := q.Check(KindUsers); err != nil {
		return nil, 0, err
	}
	err = s.view(ctx, func(tx Tx) error {
		users, total, err = tx.QueryUsers(orgID, q)
		return err
	})
	return users, total, err
}

// QueryGroups returns a page of an org's groups and, when q.WithTotal, how
// many match in all (-1 otherwise). Their MemberIDs are read only when
// withMembers is set: a large group's members cost more than the rest of
// a page.
func (s *Service) QueryGroups(ctx context.Context, orgID string, q Query, withMembers bool) (groups []Group, total int, err error) {
	if err := q.Check(KindGroups); err != nil {
		return nil, 0, err
	}
	err = s.view(ctx, func(tx Tx) error {
		groups, total, err = tx.QueryGroups(orgID, q, withMembers)
		return err
	})
	return groups, total, err
}

// MemberCounts returns how many members each of an org's groups has, by
// group ID; groups that are not the org's are left out.
func (s *Service) MemberCounts(ctx context.Context, orgID string, groupIDs []string) (counts map[string]int, err error) {
	err = s.view(ctx, func(tx Tx) error {
		counts, err = tx.MemberCounts(orgID, groupIDs)
		return err
	})
	return counts, err
}

// GroupMembers returns a page of a group's member IDs in their order (by
// ID), from offset, at most limit of them (0: all).
func (s *Service) GroupMembers(ctx context.Context, orgID, groupID string, offset, limit int) (ids []string, err error) {
	if offset < 0 || limit < 0 {
		return nil, Errorf(Invalid, "a page of members must not start or end before the first")
	}
	err = s.view(ctx, func(tx Tx) error {
		ids, err = tx.GroupMembers(orgID, groupID, offset, limit)
		return notFound(err, "group %s not found", groupID)
	})
	return ids, err
}
