package proxy

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestActivityLogDropsWhenFullAndCounts(t *testing.T) {
	l := NewActivityLog(2) // Run is not running: nothing drains it
	req := httptest.NewRequest("GET", "/x", nil)
	for range 5 {
		l.record(req, nil, nil, &recorder{status: 200}, time.Now())
	}
	if got := l.Dropped(); got != 3 {
		t.Errorf("Dropped() = %d after 5 records into a buffer of 2, want 3", got)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \\ backslash`, "ctl \x00\x1f\n", "é ✓ 😀", "\xff\xfe bad utf8", "/path?x=<y>&z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: not a JSON string: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want && utf8.ValidString(s) {
			t.Fatalf("appendJSONString(%q) decodes to %q", s, got)
		}
	})
}
