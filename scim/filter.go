package scim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	fp "github.com/scim2/filter-parser/v2"
)

// target is where an attribute path (RFC 7644 3.5.2, "path") points.
type target struct {
	// extension is the URN of the extension holding the attribute, "" for
	// the core schema.
	extension string
	// attr is the attribute; "" when the path is a whole extension.
	attr string
	// sub is the sub-attribute: name.givenName, or emails[…].value.
	sub string
	// filter selects values of a multi-valued attribute: members[value eq "…"].
	filter fp.Expression
	// unknown marks an attribute of a schema the resource does not have.
	unknown bool
}

// parseTarget parses an attribute path of a resource of shape. A path in
// an unknown schema (urn:…:CustomExtension:Attr) is not an error: it is
// marked unknown, and its operation dropped like any unknown attribute.
func parseTarget(path string, shape *resourceShape) (target, error) {
	var t target
	p := strings.TrimSpace(path)
	if len(p) >= 4 && strings.EqualFold(p[:4], "urn:") {
		known := false
		// The library's parser reads urn:…:enterprise:2.0:User alone as
		// attribute "User" of schema urn:…:enterprise:2.0: split here.
		for _, urn := range append([]string{shape.core}, shape.extensions...) {
			if len(p) < len(urn) || !strings.EqualFold(p[:len(urn)], urn) {
				continue
			}
			rest := p[len(urn):]
			if rest == "" {
				if urn == shape.core {
					return t, invalidPath("the path %q names a schema, not an attribute", path)
				}
				t.extension = urn
				return t, nil
			}
			if rest[0] != ':' {
				continue
			}
			p, known = rest[1:], true
			if urn != shape.core {
				t.extension = urn
			}
			break
		}
		if !known {
			return target{unknown: true}, nil
		}
	}
	parsed, err := parsePath(p)
	if err != nil || parsed.AttributePath.URIPrefix != nil || parsed.AttributePath.AttributeName == "" {
		return t, invalidPath("%q is not an attribute path such as name.givenName or members[value eq \"id\"]", path)
	}
	t.attr = parsed.AttributePath.AttributeName
	t.filter = parsed.ValueExpression
	switch {
	case parsed.ValueExpression == nil:
		t.sub = parsed.AttributePath.SubAttributeName()
	case parsed.AttributePath.SubAttribute != nil:
		return t, invalidPath("%q filters the values of a sub-attribute", path)
	default:
		t.sub = parsed.SubAttributeName()
	}
	return t, nil
}

// parsePath and parseFilter guard against a panic in the parser: bad input
// must be a 400, whatever it is.
func parsePath(p string) (path fp.Path, err error) {
	if path, ok := quickValuePath(p); ok {
		return path, nil
	}
	return parsePathGenerally(p)
}

func parsePathGenerally(p string) (path fp.Path, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("parse path: %v", v)
		}
	}()
	return fp.ParsePath([]byte(p))
}

func parseFilter(f string) (e fp.Expression, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("parse filter: %v", v)
		}
	}()
	return fp.ParseFilter([]byte(f))
}

// matches reports whether a representation satisfies a filter (RFC 7644
// 3.4.2.2). parent names the multi-valued attribute rep is a value of, ""
// for a whole resource. Strings compare without regard to letter case
// unless the attribute is caseExact; ordering on two RFC 3339 times
// compares the times.
func matches(e fp.Expression, rep map[string]any, shape *resourceShape, parent string) bool {
	switch e := e.(type) {
	case *fp.LogicalExpression:
		if e.Operator == fp.OR {
			return matches(e.Left, rep, shape, parent) || matches(e.Right, rep, shape, parent)
		}
		return matches(e.Left, rep, shape, parent) && matches(e.Right, rep, shape, parent)
	case *fp.NotExpression:
		return !matches(e.Expression, rep, shape, parent)
	case *fp.ValuePath:
		values, name := attributeValues(rep, e.AttributePath, shape, parent)
		for _, v := range values {
			if m, ok := v.(map[string]any); ok && matches(e.ValueFilter, m, shape, name) {
				return true
			}
		}
		return false
	case *fp.AttributeExpression:
		values, name := attributeValues(rep, e.AttributePath, shape, parent)
		caseExact, dateTime := shape.caseExact[name], parent == "" && dateTimeAttrs[name]
		op := fp.CompareOperator(strings.ToLower(string(e.Operator)))
		found := false
		for _, v := range values {
			if m, ok := v.(map[string]any); ok {
				v = getFold(m, "value") // a complex value compares by its value
			}
			switch op {
			case fp.PR:
				found = present(v)
			case fp.NE:
				found = compare(v, fp.EQ, compareValue(e), caseExact, dateTime)
			default:
				found = compare(v, op, compareValue(e), caseExact, dateTime)
			}
			if found {
				break
			}
		}
		if op == fp.NE {
			return !found
		}
		return found
	}
	return false
}

// compareValue is the value a comparison compares with. The parser keeps a
// string's escapes (W/\"3\"); a filter's strings are JSON strings.
func compareValue(e *fp.AttributeExpression) any {
	s, ok := e.CompareValue.(string)
	if !ok || !strings.Contains(s, `\`) {
		return e.CompareValue
	}
	var unquoted string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &unquoted); err != nil {
		return s
	}
	return unquoted
}

// attributeValues returns the values an attribute path selects in rep,
// arrays flattened, and the path's lower-cased dotted name.
func attributeValues(rep map[string]any, ap fp.AttributePath, shape *resourceShape, parent string) ([]any, string) {
	name := strings.ToLower(ap.AttributeName)
	if parent != "" {
		name = parent + "." + name
	}
	if uri := ap.URI(); uri != "" && !strings.EqualFold(uri, shape.core) {
		i := slices.IndexFunc(shape.extensions, func(ext string) bool { return strings.EqualFold(ext, uri) })
		if i < 0 || parent != "" {
			return nil, name
		}
		rep, _ = getFold(rep, shape.extensions[i]).(map[string]any)
	}
	values := elements(getFold(rep, ap.AttributeName))
	if sub := ap.SubAttributeName(); sub != "" {
		var subValues []any
		for _, v := range values {
			if m, ok := v.(map[string]any); ok {
				subValues = append(subValues, elements(getFold(m, sub))...)
			}
		}
		return subValues, name + "." + strings.ToLower(sub)
	}
	return values, name
}

func present(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// compare compares one value. A dateTime attribute (meta.created,
// meta.lastModified) compares as a time for eq and the orderings, at the
// precision it is shown with; any other two strings that both read as
// RFC 3339 times are ordered as times.
func compare(v any, op fp.CompareOperator, want any, caseExact, dateTime bool) bool {
	switch v := v.(type) {
	case string:
		s, ok := want.(string)
		if !ok {
			return false
		}
		if dateTime && (op == fp.EQ || op == fp.GT || op == fp.GE || op == fp.LT || op == fp.LE) {
			t1, err1 := parseDateTime(v)
			t2, err2 := parseDateTime(s)
			if err1 == nil && err2 == nil {
				return ordered(t1.Compare(t2), op)
			}
		}
		if op == fp.GT || op == fp.GE || op == fp.LT || op == fp.LE {
			t1, err1 := time.Parse(time.RFC3339, v)
			t2, err2 := time.Parse(time.RFC3339, s)
			if err1 == nil && err2 == nil {
				return ordered(t1.Compare(t2), op)
			}
		}
		if !caseExact {
			v, s = strings.ToLower(v), strings.ToLower(s)
		}
		switch op {
		case fp.EQ:
			return v == s
		case fp.CO:
			return strings.Contains(v, s)
		case fp.SW:
			return strings.HasPrefix(v, s)
		case fp.EW:
			return strings.HasSuffix(v, s)
		}
		return ordered(strings.Compare(v, s), op)
	case bool:
		b, err := boolValue(want, "")
		return err == nil && op == fp.EQ && v == b
	default:
		a, ok1 := number(v)
		b, ok2 := number(want)
		if !ok1 || !ok2 {
			return false
		}
		switch {
		case a < b:
			return ordered(-1, op)
		case a > b:
			return ordered(1, op)
		}
		return ordered(0, op)
	}
}

func ordered(cmp int, op fp.CompareOperator) bool {
	switch op {
	case fp.EQ:
		return cmp == 0
	case fp.GT:
		return cmp > 0
	case fp.GE:
		return cmp >= 0
	case fp.LT:
		return cmp < 0
	case fp.LE:
		return cmp <= 0
	}
	return false
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// rewriteFilter turns a comparison on a sub-attribute of a value path,
//
//	emails[type eq "work"].value eq "a@example.com"
//
// which is how Entra looks a user up by work address but is outside the
// filter grammar of RFC 7644, into the value path it means:
//
//	emails[type eq "work" and value eq "a@example.com"]
//
// Any other filter is returned unchanged.
func rewriteFilter(f string) string {
	if !strings.Contains(f, "].") {
		return f
	}
	var b strings.Builder
	for i := 0; i < len(f); {
		switch f[i] {
		case '"':
			end := endOfString(f, i)
			b.WriteString(f[i:end])
			i = end
			continue
		case ']':
			if cmp, end, ok := subComparison(f, i+1); ok {
				b.WriteString(" and ")
				b.WriteString(cmp)
				b.WriteByte(']')
				i = end
				continue
			}
		}
		b.WriteByte(f[i])
		i++
	}
	return b.String()
}

// endOfString returns the index after the string literal opening at i.
func endOfString(f string, i int) int {
	for j := i + 1; j < len(f); j++ {
		switch f[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(f)
}

// subComparison reads `.sub op value` at i and returns it as `sub op value`.
func subComparison(f string, i int) (cmp string, end int, ok bool) {
	if i >= len(f) || f[i] != '.' {
		return "", 0, false
	}
	j := i + 1
	for j < len(f) && isNameByte(f[j]) {
		j++
	}
	sub := f[i+1 : j]
	if sub == "" {
		return "", 0, false
	}
	k := skipSpaces(f, j)
	if k == j {
		return "", 0, false
	}
	opStart := k
	for k < len(f) && ('a' <= f[k]|0x20 && f[k]|0x20 <= 'z') {
		k++
	}
	op := strings.ToLower(f[opStart:k])
	switch op {
	case "pr":
		return sub + " pr", k, true
	case "eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le":
	default:
		return "", 0, false
	}
	v := skipSpaces(f, k)
	if v == k || v >= len(f) {
		return "", 0, false
	}
	valueEnd := v
	if f[v] == '"' {
		valueEnd = endOfString(f, v)
	} else {
		for valueEnd < len(f) && f[valueEnd] != ' ' && f[valueEnd] != ')' && f[valueEnd] != ']' {
			valueEnd++
		}
	}
	return sub + " " + op + " " + f[v:valueEnd], valueEnd, true
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '$' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func skipSpaces(f string, i int) int {
	for i < len(f) && f[i] == ' ' {
		i++
	}
	return i
}
