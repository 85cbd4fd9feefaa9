package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scimgate/scimgate/tokens"
)

var wholeToken = regexp.MustCompile(`^sg[us]_[0-9A-Za-z]{38}$`)

// FuzzReadTokens reads tokens out of any text, as "token report" does.
// Every token found is in the text and shaped like a token; a real token
// planted between spaces in the text is always found.
//
//	go test ./cmd/scimgate -run '^$' -fuzz FuzzReadTokens -fuzztime 30s
func FuzzReadTokens(f *testing.F) {
	f.Add("Authorization: Bearer ", " # from the CI log")
	f.Add("export TOKEN=sgs_", "\nsgu_0123456789012345678901234567890123456789")
	f.Add("", "")
	f.Add("é\x00\r\n", "\xff")
	f.Fuzz(func(t *testing.T, before, after string) {
		planted := tokens.NewSecret(tokens.KindService).Plaintext()
		text := before + " " + planted + " " + after
		found, _, err := readTokens(strings.NewReader(text))
		if err != nil {
			if len(text) > maxInputLine {
				return // a line longer than allowed is refused, not misread
			}
			t.Fatalf("readTokens: %v", err)
		}
		for _, tok := range found {
			if !wholeToken.MatchString(tok) || !strings.Contains(text, tok) {
				t.Fatalf("found %q, which is no token of the text", tok)
			}
		}
		if !slices.Contains(found, planted) {
			t.Fatalf("the planted token was not found in %q: %q", text, found)
		}
	})
}
