package scim

import (
	"strings"
	"unicode/utf8"

	fp "github.com/scim2/filter-parser/v2"
)

// quickValuePath parses the one path shape identity providers send by the
// hundred in a PATCH, name[value eq "string"] with an optional .sub after
// it (Okta removes each group member with members[value eq "id"]), without
// the general parser, which costs a few thousand allocations a path. It
// returns what parsePath returns for the same path, and false for anything
// else: a string with an escape, other spacing or letter case, a URN.
func quickValuePath(p string) (fp.Path, bool) {
	open := strings.IndexByte(p, '[')
	if open < 0 || !isAttrName(p[:open]) {
		return fp.Path{}, false
	}
	const prefix = `[value eq "`
	rest := p[open:]
	if !strings.HasPrefix(rest, prefix) {
		return fp.Path{}, false
	}
	rest = rest[len(prefix):]
	end := strings.IndexByte(rest, '"')
	if end < 0 || !plainString(rest[:end]) || !strings.HasPrefix(rest[end:], `"]`) {
		return fp.Path{}, false
	}
	value, after := rest[:end], rest[end+2:]
	path := fp.Path{
		AttributePath: fp.AttributePath{AttributeName: p[:open]},
		ValueExpression: &fp.AttributeExpression{
			AttributePath: fp.AttributePath{AttributeName: "value"},
			Operator:      fp.EQ,
			CompareValue:  value,
		},
	}
	if after != "" {
		sub, ok := strings.CutPrefix(after, ".")
		if !ok || !isAttrName(sub) {
			return fp.Path{}, false
		}
		path.SubAttribute = &sub
	}
	return path, true
}

// isAttrName reports whether s is an ATTRNAME of RFC 7644 3.10: a letter,
// then letters, digits, "-" and "_".
func isAttrName(s string) bool {
	if s == "" || !('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z') {
			return false
		}
	}
	return true
}

// plainString reports whether s is a JSON string's content that needs no
// unescaping: valid UTF-8 without control characters, quotes or
// backslashes.
func plainString(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == utf8.RuneError {
			return false
		}
	}
	return true
}
