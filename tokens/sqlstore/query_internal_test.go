package sqlstore

import (
	"strings"
	"testing"
)

func TestPrefixSuccessor(t *testing.T) {
	tests := []struct {
		prefix, want string
		ok           bool
	}{
		{"a", "b", true},
		{"ab", "ac", true},
		{"é", "ê", true},
		{"a\U0010FFFF", "b", true},
		{"\U0010FFFF", "", false},
		{"\U0010FFFF\U0010FFFF", "", false},
		{"x\uD7FF", "x\uE000", true},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := prefixSuccessor(tt.prefix)
		if got != tt.want || ok != tt.ok {
			t.Errorf("prefixSuccessor(%q) = %q, %v; want %q, %v", tt.prefix, got, ok, tt.want, tt.ok)
		}
		if !ok {
			continue
		}
		// Every string with the prefix sorts before it, and the prefix
		// itself is not one of them.
		for _, s := range []string{tt.prefix, tt.prefix + "\U0010FFFF", tt.prefix + "zzz"} {
			if strings.Compare(s, got) >= 0 {
				t.Errorf("%q starts with %q but is not below its successor %q", s, tt.prefix, got)
			}
		}
	}
}
