package tokens

import (
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
)

func TestNewSecretParses(t *testing.T) {
	for _, kind := range []Kind{KindUser, KindService} {
		seen := map[string]bool{}
		for range 1000 {
			s := NewSecret(kind)
			p, err := Parse(s.Plaintext())
			if err != nil {
				t.Fatalf("Parse(NewSecret(%s)) = %v, want nil", kind, err)
			}
			if p.Kind != kind || p.Hash() != s.Hash() {
				t.Fatalf("Parse(%s…) = kind %s, want %s with the same hash", s.DisplayPrefix(), p.Kind, kind)
			}
			if seen[s.Plaintext()] {
				t.Fatalf("NewSecret repeated a token")
			}
			seen[s.Plaintext()] = true
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := NewSecret(KindService).Plaintext()
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"random", "not-a-token"},
		{"github token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"},
		{"one char short", good[:len(good)-1]},
		{"one char long", good + "x"},
		{"unknown prefix", "sgx_" + good[4:]},
		{"upper-case prefix", strings.ToUpper(good[:4]) + good[4:]},
		{"typo in the random part", flip(10)},
		{"typo in the checksum", flip(len(good) - 1)},
		{"non-base62 byte", good[:20] + "-" + good[21:]},
		{"multi-byte rune", good[:20] + "é" + good[22:]},
		{"kind swapped", "sgu_" + good[4:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.in); err != ErrMalformed {
				t.Errorf("Parse(%q) = %v, want ErrMalformed", tt.in, err)
			}
		})
	}
}

func TestSecretDoesNotLeakThroughFormatting(t *testing.T) {
	s := NewSecret(KindUser)
	for _, verb := range []string{"%v", "%s", "%+v", "%#v"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(out, s.Plaintext()[displayLen:]) {
			t.Errorf("fmt %s printed the secret: %q", verb, out)
		}
	}
	if got := s.DisplayPrefix(); !strings.HasPrefix(s.Plaintext(), got) || len(got) != displayLen {
		t.Errorf("DisplayPrefix() = %q, want the first %d characters", got, displayLen)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(NewSecret(KindUser).Plaintext())
	f.Add(NewSecret(KindService).Plaintext())
	f.Add("sgs_")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		// Whatever parses must be exactly what was given, and stable.
		if s.Plaintext() != in {
			t.Fatalf("Parse(%q).Plaintext() = %q", in, s.Plaintext())
		}
		if again, err := Parse(s.Plaintext()); err != nil || again != s {
			t.Fatalf("Parse is not stable on %q", in)
		}
	})
}

func BenchmarkParseAndHash(b *testing.B) {
	tok := NewSecret(KindService).Plaintext()
	b.ReportAllocs()
	for b.Loop() {
		s, err := Parse(tok)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Hash()
	}
}

func TestChecksumIsCRC32(t *testing.T) {
	for _, in := range []string{"", "a", "sgs_0123456789abcdefghijABCDEFGHIJ01"} {
		if got, want := checksum([]byte(in)), crc32.ChecksumIEEE([]byte(in)); got != want {
			t.Errorf("checksum(%q) = %08x, want %08x", in, got, want)
		}
	}
}
