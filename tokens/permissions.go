package tokens

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The built-in permissions. SCIM provisioning needs both PermUsers and
// PermGroups; PermTokens lets a token manage every token in its org.
const (
	PermUsers  = "platform.users"
	PermGroups = "platform.groups"
	PermTokens = "platform.tokens"
)

// BuiltinPermissions are known to every deployment.
var BuiltinPermissions = []string{PermUsers, PermGroups, PermTokens}

// Policy says which permissions a token has. Permission sets are named lists
// of permissions. A service user holds permission sets directly; a person gets
// the sets their groups grant, plus the default sets every user of an org has.
//
// Any single permission name also works where a set name is expected: it
// stands for the set holding just that permission.
type Policy struct {
	sets        map[string][]string // set name → sorted permissions
	groupSets   map[string][]string // lower-cased group display name → set names
	defaultSets []string
	permissions map[string]bool // every known permission
}

// PolicyConfig is what the configuration declares.
type PolicyConfig struct {
	// Permissions are custom permission names for the upstream API, on top
	// of BuiltinPermissions.
	Permissions []string
	// Sets maps a set name to its permissions.
	Sets map[string][]string
	// GroupSets maps a group's display name (case-insensitively) to the sets
	// it grants its members.
	GroupSets map[string][]string
	// DefaultSets are granted to every user of every org.
	DefaultSets []string
}

// NewPolicy checks the configuration and builds a Policy from it.
func NewPolicy(c PolicyConfig) (*Policy, error) {
	p := &Policy{
		sets:        map[string][]string{},
		groupSets:   map[string][]string{},
		permissions: map[string]bool{},
	}
	for _, perm := range append(slices.Clone(BuiltinPermissions), c.Permissions...) {
		if err := validName(perm); err != nil {
			return nil, fmt.Errorf("permission %q: %w", perm, err)
		}
		p.permissions[perm] = true
	}
	for name, perms := range c.Sets {
		if err := validName(name); err != nil {
			return nil, fmt.Errorf("permission set %q: %w", name, err)
		}
		if p.permissions[name] {
			return nil, fmt.Errorf("permission set %q: the name is already a permission", name)
		}
		for _, perm := range perms {
			if !p.permissions[perm] {
				return nil, fmt.Errorf("permission set %q: unknown permission %q (declare it under permissions)", name, perm)
			}
		}
		p.sets[name] = sortedUnique(perms)
	}
	for group, sets := range c.GroupSets {
		for _, s := range sets {
			if !p.knownSet(s) {
				return nil, fmt.Errorf("group %q grants unknown permission set %q", group, s)
			}
		}
		p.groupSets[strings.ToLower(group)] = sets
	}
	for _, s := range c.DefaultSets {
		if !p.knownSet(s) {
			return nil, fmt.Errorf("default permission set %q is unknown", s)
		}
	}
	p.defaultSets = c.DefaultSets
	return p, nil
}

func validName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '-' || r == ':' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return fmt.Errorf("only letters, digits and . _ - : may be used")
		}
	}
	return nil
}

func (p *Policy) knownSet(name string) bool {
	_, ok := p.sets[name]
	return ok || p.permissions[name]
}

// CheckSets returns an Invalid error naming the first unknown set.
func (p *Policy) CheckSets(names []string) error {
	for _, n := range names {
		if !p.knownSet(n) {
			return Errorf(Invalid, "unknown permission set %q (known: %s)", n, strings.Join(p.AllSets(), ", "))
		}
	}
	return nil
}

// AllSets lists every set and every single permission, sorted: what a new
// service token gets when no sets are chosen.
func (p *Policy) AllSets() []string {
	all := make([]string, 0, len(p.sets)+len(p.permissions))
	for n := range p.sets {
		all = append(all, n)
	}
	for n := range p.permissions {
		all = append(all, n)
	}
	sort.Strings(all)
	return all
}

// Resolve turns set names into the sorted, unique permissions they hold.
// Names no longer in the configuration grant nothing.
func (p *Policy) Resolve(sets []string) []string {
	var perms []string
	for _, s := range sets {
		if ps, ok := p.sets[s]; ok {
			perms = append(perms, ps...)
		} else if p.permissions[s] {
			perms = append(perms, s)
		}
	}
	return sortedUnique(perms)
}

// UserSets is the sets a person in the given groups holds.
func (p *Policy) UserSets(groupNames []string) []string {
	sets := slices.Clone(p.defaultSets)
	for _, g := range groupNames {
		sets = append(sets, p.groupSets[strings.ToLower(g)]...)
	}
	return sets
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}
