package scim

import (
	"slices"
	"strings"

	fp "github.com/scim2/filter-parser/v2"
)

// valueList is a multi-valued attribute while a PATCH changes it: its
// values, indexed so that finding, adding and removing a value costs O(1)
// whatever the number of values (a group has tens of thousands of
// members). A removed value is marked gone, not deleted, until values()
// writes the list back; an index entry may be stale (the value changed or
// went), so every lookup checks the value it finds.
type valueList struct {
	container map[string]any // where the attribute lives
	key       string         // its name there

	items []any
	gone  []bool
	// keyOf is equal for two values exactly when they are the same value
	// of the attribute; byKey finds values by it, and keys holds each
	// value's key when it was last indexed.
	keyOf func(any) string
	byKey map[string][]int
	keys  []string
	// byValue finds values by the strings a filter value eq "…" compares
	// with, lower-cased when folded; built on the first such filter, with
	// each value's strings when last indexed in filterKeys.
	byValue    map[string][]int
	filterKeys [][]string
	folded     bool
}

func newValueList(container map[string]any, key string, values []any, keyOf func(any) string) *valueList {
	l := &valueList{container: container, key: key, keyOf: keyOf,
		items: make([]any, 0, len(values)), gone: make([]bool, 0, len(values)),
		keys: make([]string, 0, len(values)), byKey: make(map[string][]int, len(values))}
	for _, v := range values {
		l.push(v)
	}
	return l
}

// push appends a value and returns its position.
func (l *valueList) push(v any) int {
	i := len(l.items)
	l.items = append(l.items, v)
	l.gone = append(l.gone, false)
	l.keys = append(l.keys, "")
	if l.byValue != nil {
		l.filterKeys = append(l.filterKeys, nil)
	}
	l.index(i, true)
	return i
}

// changed indexes the value at i again after it changed in place.
func (l *valueList) changed(i int) { l.index(i, false) }

// index adds the value at i to the indexes under its keys, unless they are
// the ones it is already indexed under: changing a value in place many
// times must not grow them.
func (l *valueList) index(i int, fresh bool) {
	if k := l.keyOf(l.items[i]); fresh || k != l.keys[i] {
		l.keys[i] = k
		l.byKey[k] = append(l.byKey[k], i)
	}
	if l.byValue == nil {
		return
	}
	strs := filterStrings(l.items[i])
	if !fresh && slices.Equal(strs, l.filterKeys[i]) {
		return
	}
	l.filterKeys[i] = strs
	for _, s := range strs {
		s = l.fold(s)
		l.byValue[s] = append(l.byValue[s], i)
	}
}

func (l *valueList) kill(i int) { l.gone[i] = true }

// live reports whether the value at i is there and still has key k.
func (l *valueList) live(i int, k string) bool { return !l.gone[i] && l.keys[i] == k }

// has reports whether a value with key k is in the list. Entries for
// values that went or changed are dropped as they are met, so that each
// costs one look.
func (l *valueList) has(k string) bool {
	pos := l.byKey[k]
	for len(pos) > 0 {
		if l.live(pos[0], k) {
			l.byKey[k] = pos
			return true
		}
		pos = pos[1:]
	}
	delete(l.byKey, k)
	return false
}

// add appends the values not in the list yet.
func (l *valueList) add(values []any) {
	for _, v := range values {
		if !l.has(l.keyOf(v)) {
			l.push(v)
		}
	}
}

// remove removes every value that is one of values.
func (l *valueList) remove(values []any) {
	for _, v := range values {
		k := l.keyOf(v)
		for _, i := range l.byKey[k] {
			if l.live(i, k) {
				l.kill(i)
			}
		}
		delete(l.byKey, k) // every value it named is gone
	}
}

// values is what is left, in order.
func (l *valueList) values() []any {
	out := make([]any, 0, len(l.items))
	for i, v := range l.items {
		if !l.gone[i] {
			out = append(out, v)
		}
	}
	return out
}

// selectFilter returns the positions, in order, of the values a value
// filter selects, as matches would decide it. A filter value eq "…", what
// Okta and Entra send to pick a member, is answered from an index; any
// other reads every value. A simple value (a site's name) is seen as
// {"value": …}.
func (l *valueList) selectFilter(e fp.Expression, shape *resourceShape, parent string) []int {
	var out []int
	if want, ok := valueEquality(e); ok {
		if l.byValue == nil {
			l.folded = !shape.caseExact[parent+".value"]
			l.byValue = map[string][]int{}
			l.filterKeys = make([][]string, len(l.items))
			for i := range l.items {
				l.index(i, false)
			}
		}
		// Entries of values that went or changed are dropped as met.
		k := l.fold(want)
		pos := l.byValue[k]
		kept := pos[:0]
		for _, i := range pos {
			if !l.gone[i] && matches(e, asObject(l.items[i]), shape, parent) {
				kept = append(kept, i)
			}
		}
		l.byValue[k] = kept
		out = slices.Clone(kept)
		slices.Sort(out)
		return slices.Compact(out)
	}
	for i, v := range l.items {
		if !l.gone[i] && matches(e, asObject(v), shape, parent) {
			out = append(out, i)
		}
	}
	return out
}

func (l *valueList) fold(s string) string {
	if l.folded {
		return strings.ToLower(s)
	}
	return s
}

// valueEquality returns the string of a filter value eq "…".
func valueEquality(e fp.Expression) (string, bool) {
	a, ok := e.(*fp.AttributeExpression)
	if !ok || !strings.EqualFold(string(a.Operator), string(fp.EQ)) || a.AttributePath.URIPrefix != nil ||
		a.AttributePath.SubAttribute != nil || !strings.EqualFold(a.AttributePath.AttributeName, "value") {
		return "", false
	}
	s, ok := compareValue(a).(string)
	return s, ok
}

// filterStrings are the strings a filter value eq "…" compares a value
// with (see matches): its "value", each string of it if it is an array,
// and the "value" of an object in it.
func filterStrings(v any) []string {
	var out []string
	for _, x := range elements(getFold(asObject(v), "value")) {
		if m, ok := x.(map[string]any); ok {
			x = getFold(m, "value")
		}
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// asObject is a value of a multi-valued attribute as a filter sees it: a
// complex value as it is, a simple one as {"value": v}.
func asObject(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{"value": v}
}
