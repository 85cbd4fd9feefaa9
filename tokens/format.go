package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash/crc32"
)

// A token reads like "sgs_" + 32 random base62 characters + 6 base62
// characters of CRC32 checksum, e.g. sgs_4kT…Qe9vX2. The kind prefix makes a
// leaked token greppable and tells user tokens from service tokens at a
// glance; the checksum lets Parse reject a mistyped or random string without
// touching the cache or the database (the same scheme as GitHub's ghp_ tokens).
const (
	userPrefix    = "sgu_"
	servicePrefix = "sgs_"
	prefixLen     = 4
	randomLen     = 32 // 32 × log2(62) ≈ 190 bits from crypto/rand
	checksumLen   = 6  // 62^6 > 2^32: every CRC32 fits
	tokenLen      = prefixLen + randomLen + checksumLen

	// displayLen is how much of a token is safe to show and log: the kind
	// prefix and 4 random characters (24 of the 190 bits).
	displayLen = prefixLen + 4
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed is returned by Parse for anything that is not a well-formed
// scimgate token: wrong length, prefix, alphabet or checksum.
var ErrMalformed = errors.New("malformed token")

// Secret is a parsed, well-formed token. It is only ever held in memory, and
// it formats as its display prefix so that it cannot leak through a log line.
type Secret struct {
	Kind  Kind
	value [tokenLen]byte
}

// Hash is the SHA-256 of a token, the only form in which a token is stored.
type Hash [sha256.Size]byte

// NewSecret returns a fresh token of the given kind.
func NewSecret(kind Kind) Secret {
	var b [randomLen]byte
	// Rejection sampling keeps every character uniform over the alphabet:
	// 248 = 4×62 is the largest multiple of 62 that fits in a byte.
	var buf [64]byte
	for n := 0; n < randomLen; {
		rand.Read(buf[:]) // never returns an error since Go 1.24
		for _, c := range buf {
			if c < 248 && n < randomLen {
				b[n] = base62[c%62]
				n++
			}
		}
	}
	sec := Secret{Kind: kind}
	copy(sec.value[:], kindPrefix(kind))
	copy(sec.value[prefixLen:], b[:])
	putChecksum(sec.value[prefixLen+randomLen:], checksum(sec.value[:prefixLen+randomLen]))
	return sec
}

// Parse checks a token's shape and checksum. It does no I/O, so it is safe
// to call on anything a client sends.
func Parse(s string) (Secret, error) {
	if len(s) != tokenLen {
		return Secret{}, ErrMalformed
	}
	var kind Kind
	switch s[:prefixLen] {
	case userPrefix:
		kind = KindUser
	case servicePrefix:
		kind = KindService
	default:
		return Secret{}, ErrMalformed
	}
	sec := Secret{Kind: kind}
	copy(sec.value[:], s)
	for _, c := range sec.value[prefixLen:] {
		if !isBase62(c) {
			return Secret{}, ErrMalformed
		}
	}
	var want [checksumLen]byte
	putChecksum(want[:], checksum(sec.value[:prefixLen+randomLen]))
	if want != [checksumLen]byte(sec.value[prefixLen+randomLen:]) {
		return Secret{}, ErrMalformed
	}
	return sec, nil
}

// Plaintext returns the token itself. Call it only to show the token once to
// the person who created or regenerated it.
func (s Secret) Plaintext() string { return string(s.value[:]) }

// Hash returns the SHA-256 of the token.
func (s Secret) Hash() Hash { return sha256.Sum256(s.value[:]) }

// DisplayPrefix is the part of the token that may be shown and logged.
func (s Secret) DisplayPrefix() string { return string(s.value[:displayLen]) }

// String and GoString keep the plaintext out of fmt and log output.
func (s Secret) String() string   { return s.DisplayPrefix() + "…" }
func (s Secret) GoString() string { return "tokens.Secret{" + s.String() + "}" }

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

func kindPrefix(k Kind) string {
	if k == KindUser {
		return userPrefix
	}
	return servicePrefix
}

var crcTable = crc32.MakeTable(crc32.IEEE)

// checksum is CRC32 (IEEE), as crc32.ChecksumIEEE computes it. The plain
// table loop keeps its argument on the stack, which the assembly versions
// behind crc32.ChecksumIEEE do not: Parse stays free of allocations.
func checksum(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc = crcTable[byte(crc)^c] ^ crc>>8
	}
	return ^crc
}

func putChecksum(dst []byte, sum uint32) {
	for i := checksumLen - 1; i >= 0; i-- {
		dst[i] = base62[sum%62]
		sum /= 62
	}
}
