package proxy

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The canonical request. Access rules are decided on the same method and
// path that the upstream receives: admit rewrites the request's URL to the
// canonical form before any rule looks at it, and ReverseProxy forwards that
// URL. A path is canonical when
//
//   - it starts with "/" and holds no empty segment ("//"), no "." and no
//     ".." segment;
//   - no byte of it was a percent escape of an unreserved character
//     (A-Z a-z 0-9 - . _ ~): those are decoded;
//   - every other escape is written in upper case (%3A, not %3a).
//
// Dot segments are resolved (RFC 3986 5.2.4) and slashes merged, as Envoy's
// normalize_path and merge_slashes do. What servers disagree about is
// refused with a 400 instead of guessed at: an encoded "/" (%2F), a
// backslash (raw or %5C), a dot segment written with escapes (%2e%2e), an
// escaped "%" that starts another escape (%252e: double encoding), a
// semicolon (Tomcat and Spring cut "path parameters" at it: /admin;x is
// /admin there), a NUL or another control character, bytes that are not
// valid UTF-8 once decoded (overlong forms such as %c0%ae included), a raw
// "#", a malformed escape, and a path that climbs above the root.

// requestError is a request refused before authentication for being
// malformed or ambiguous. The values are built once, so that refusing a
// flood of them costs no allocation.
type requestError struct {
	status  int
	code    string
	reason  string
	message string
	ref     *refusal
}

func (e *requestError) Error() string { return e.message }

func newRequestError(status int, code, reason, message string) *requestError {
	e := &requestError{status: status, code: code, reason: reason, message: message}
	e.ref = &refusal{status: status, body: jsonBody(code, reason, message)}
	if status == http.StatusRequestTimeout {
		e.ref.close = true
	}
	return e
}

func badRequest(reason, message string) *requestError {
	return newRequestError(http.StatusBadRequest, "invalid_request", reason, message)
}

var (
	errPathNotOrigin = badRequest("invalid_path",
		"the request target must be a path starting with / (not *, an authority or an empty path)")
	errPathFragment = badRequest("invalid_path",
		"the request target contains a raw #: a fragment is never sent to a server; encode it as %23 if it is part of the path or query")
	errPathControl = badRequest("invalid_path",
		"the path contains a NUL or another control character")
	errPathUTF8 = badRequest("invalid_path",
		"the path decodes to bytes that are not valid UTF-8 (overlong and truncated sequences are refused)")
	errPathEscape = badRequest("invalid_path",
		"the path contains a malformed percent escape: % must be followed by two hexadecimal digits")
	errPathEncodedSlash = badRequest("ambiguous_path",
		"the path contains an encoded slash (%2F), which servers decode differently: it is refused")
	errPathBackslash = badRequest("ambiguous_path",
		`the path contains a backslash (\ or %5C), which some servers read as a slash: it is refused`)
	errPathEncodedDot = badRequest("ambiguous_path",
		"the path contains a dot segment written with percent escapes (such as %2e%2e): write . and .. plainly")
	errPathDoubleEncoded = badRequest("ambiguous_path",
		"the path contains an escaped % that starts another escape (such as %252e): double encoding is refused")
	errPathSemicolon = badRequest("ambiguous_path",
		"the path contains a semicolon, which some servers read as the start of path parameters (/admin;x is /admin there): it is refused unless proxy.allow_path_semicolons is set")
	errPathDotParameter = badRequest("ambiguous_path",
		"a path segment is empty, . or .. once its parameters (;…) are cut off, as some servers do: it is refused")
	errPathAboveRoot = badRequest("invalid_path",
		"the path climbs above the root with .. segments")
	errMethodNonCanonical = badRequest("non_canonical_method",
		"the method must be an upper-case token such as GET or POST")
	errMethodUnknown = badRequest("unknown_method",
		"the method is not an HTTP method scimgate knows: list it under proxy.methods to let it through")
	errDuplicateAuthorization = badRequest("duplicate_authorization",
		"the request has more than one Authorization header: send exactly one")
	errH2CUpgrade = badRequest("h2c_upgrade",
		"an upgrade to h2c would hand the connection to the upstream, past every rule: use HTTP/2 over TLS, or HTTP/1.1")
	errMalformedBody = badRequest("malformed_body",
		"the request body could not be read: it ended early or its chunked encoding is malformed")
	errBodyTimeout = newRequestError(http.StatusRequestTimeout, "request_timeout", "body_timeout",
		"the request body did not arrive in time: the proxy's read timeout ran out")
)

// pathChars classifies the bytes of a path as received.
var pathChars = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = pathUnreserved
		t[c-'a'+'A'] = pathUnreserved
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = pathUnreserved
	}
	for _, c := range "-._~" {
		t[c] = pathUnreserved
	}
	for _, c := range "!$&'()*+,=:@" { // sub-delims and pchar's ":" and "@", not ";"
		t[c] = pathSubDelim
	}
	t['/'] = pathSlash
	return t
}()

const (
	pathOther = iota // anything else: written as %XX in the canonical form
	pathUnreserved
	pathSubDelim
	pathSlash
)

const upperHex = "0123456789ABCDEF"

// canonicalURL rewrites u's path to its canonical form, or refuses it. A
// path already canonical costs a scan and no allocation.
func canonicalURL(u *url.URL, allowSemicolons bool) *requestError {
	if u.RawPath == "" && plainCanonical(u.Path, allowSemicolons) {
		// The path arrived as escape(u.Path) (url.URL keeps RawPath empty
		// exactly then), so no "/" or "." in it was escaped.
		return nil
	}
	path, raw, err := canonicalPath(u.EscapedPath(), allowSemicolons)
	if err != nil {
		return err
	}
	u.Path = path
	u.RawPath = raw
	if raw == path {
		u.RawPath = ""
	}
	return nil
}

// plainCanonical reports whether p, a decoded path, is canonical and made
// of bytes that need no escape (and so were not escaped).
func plainCanonical(p string, allowSemicolons bool) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	seg := 1 // start of the current segment
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c != '/' {
				if pathChars[c] == pathOther && !(c == ';' && allowSemicolons) {
					return false
				}
				continue
			}
		}
		switch p[seg:i] {
		case "":
			if i < len(p) { // "//"; a final "/" is a trailing slash
				return false
			}
		case ".", "..":
			return false
		}
		seg = i + 1
	}
	return true
}

// canonicalPath returns the canonical form of raw, a path as received:
// decoded (what rules match and url.URL.Path holds) and as it is sent on.
func canonicalPath(raw string, allowSemicolons bool) (path, rawOut string, err *requestError) {
	if raw == "" || raw[0] != '/' {
		return "", "", errPathNotOrigin
	}
	out := make([]byte, 0, len(raw)+8) // the canonical raw path
	dec := make([]byte, 0, len(raw))   // the same, decoded
	// Where each kept segment starts in out and dec, for "..".
	var starts [][2]int
	trailingSlash := false
	for rest := raw[1:]; ; {
		segment, next, more := strings.Cut(rest, "/")
		last := !more
		rest = next
		o, d := len(out), len(dec)
		out = append(out, '/')
		dec = append(dec, '/')
		var encodedDot bool
		out, dec, encodedDot, err = appendSegment(out, dec, segment, allowSemicolons)
		if err != nil {
			return "", "", err
		}
		name := dec[d+1:]
		switch {
		case isDotOrEmpty(name):
			out, dec = out[:o], dec[:d]
			if encodedDot {
				return "", "", errPathEncodedDot
			}
			if len(name) == 2 {
				if len(starts) == 0 {
					return "", "", errPathAboveRoot
				}
				s := starts[len(starts)-1]
				starts = starts[:len(starts)-1]
				out, dec = out[:s[0]], dec[:s[1]]
			}
			trailingSlash = last
		default:
			if allowSemicolons {
				if i := bytes.IndexByte(name, ';'); i >= 0 && isDotOrEmpty(name[:i]) {
					return "", "", errPathDotParameter
				}
			}
			if !utf8.Valid(name) {
				return "", "", errPathUTF8
			}
			if doubleEncoded(name) {
				return "", "", errPathDoubleEncoded
			}
			starts = append(starts, [2]int{o, d})
			trailingSlash = false
		}
		if last {
			break
		}
	}
	if trailingSlash || len(out) == 0 {
		out = append(out, '/')
		dec = append(dec, '/')
	}
	return string(dec), string(out), nil
}

// isDotOrEmpty reports whether a decoded segment is "", "." or "..".
func isDotOrEmpty(s []byte) bool {
	return len(s) == 0 || s[0] == '.' && (len(s) == 1 || len(s) == 2 && s[1] == '.')
}

// appendSegment appends one segment, as received, to the canonical raw and
// decoded paths.
func appendSegment(out, dec []byte, segment string, allowSemicolons bool) ([]byte, []byte, bool, *requestError) {
	encodedDot := false
	for i := 0; i < len(segment); i++ {
		c := segment[i]
		switch {
		case c == '%':
			if i+2 >= len(segment) || !isHex(segment[i+1]) || !isHex(segment[i+2]) {
				return out, dec, false, errPathEscape
			}
			v := unhex(segment[i+1])<<4 | unhex(segment[i+2])
			i += 2
			switch {
			case v == '/':
				return out, dec, false, errPathEncodedSlash
			case v == '\\':
				return out, dec, false, errPathBackslash
			case v < 0x20 || v == 0x7f:
				return out, dec, false, errPathControl
			case v == ';' && !allowSemicolons:
				return out, dec, false, errPathSemicolon
			case pathChars[v] == pathUnreserved:
				encodedDot = encodedDot || v == '.'
				out = append(out, v)
			default:
				out = append(out, '%', upperHex[v>>4], upperHex[v&15])
			}
			dec = append(dec, v)
		case c == '\\':
			return out, dec, false, errPathBackslash
		case c == '#':
			return out, dec, false, errPathFragment
		case c == ';':
			if !allowSemicolons {
				return out, dec, false, errPathSemicolon
			}
			out = append(out, c)
			dec = append(dec, c)
		case c < 0x20 || c == 0x7f:
			return out, dec, false, errPathControl
		case pathChars[c] == pathOther:
			out = append(out, '%', upperHex[c>>4], upperHex[c&15])
			dec = append(dec, c)
		default:
			out = append(out, c)
			dec = append(dec, c)
		}
	}
	return out, dec, encodedDot, nil
}

// doubleEncoded reports whether a decoded segment still holds an escape: a
// "%" followed by two hexadecimal digits, or IIS's %uXXXX.
func doubleEncoded(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
		if i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// checkPrefix reports why p cannot be a public path or route prefix: it
// must be a canonical decoded path, since it is compared with one.
func checkPrefix(p string, allowSemicolons bool) string {
	if p == "" || p[0] != '/' {
		return "must start with /"
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "must not contain control characters"
		case c == '\\':
			return `must not contain \`
		case c == ';' && !allowSemicolons:
			return "must not contain ; (requests with one are refused)"
		case c == '%':
			return "must be written decoded (a space, not %20): it is compared with the decoded path"
		}
	}
	if !utf8.ValidString(p) {
		return "must be valid UTF-8"
	}
	segments := strings.Split(p[1:], "/")
	for i, seg := range segments {
		switch {
		case seg == "" && i < len(segments)-1:
			return `must not contain "//"`
		case seg == "." || seg == "..":
			return "must not contain . or .. segments"
		}
	}
	return ""
}

// hasPathPrefix reports whether path is under prefix on a segment
// boundary: "/admin" covers "/admin" and "/admin/x", not "/administrator";
// "/public/" covers "/public/" and everything below it. With fold, letters
// match in any case (Unicode simple folding, as strings.EqualFold).
func hasPathPrefix(path, prefix string, fold bool) bool {
	var rest string
	var ok bool
	if fold {
		rest, ok = cutPrefixFold(path, prefix, equalFoldRune)
	} else {
		rest, ok = strings.CutPrefix(path, prefix)
	}
	return ok && onBoundary(rest, prefix)
}

// hasPathPrefixAnyCase is hasPathPrefix in any case, as widely as any
// upstream reads case: folding, and also the simple upper- and lower-case
// mappings (equalAnyCaseRune). For route rules, where matching more only
// demands more.
func hasPathPrefixAnyCase(path, prefix string) bool {
	rest, ok := cutPrefixFold(path, prefix, equalAnyCaseRune)
	return ok && onBoundary(rest, prefix)
}

// onBoundary reports whether rest, what follows prefix in a path, starts on
// a segment boundary.
func onBoundary(rest, prefix string) bool {
	return rest == "" || rest[0] == '/' || prefix[len(prefix)-1] == '/'
}

// cutPrefixFold is strings.CutPrefix, ignoring case: ASCII letters in any
// case, and other runes as equal says.
func cutPrefixFold(s, prefix string, equal func(a, b rune) bool) (string, bool) {
	for prefix != "" {
		if s == "" {
			return "", false
		}
		// ASCII, the common case, without decoding.
		if a, b := s[0], prefix[0]; a < utf8.RuneSelf && b < utf8.RuneSelf {
			if a != b && lower(a) != lower(b) {
				return "", false
			}
			s, prefix = s[1:], prefix[1:]
			continue
		}
		r, n := utf8.DecodeRuneInString(s)
		q, m := utf8.DecodeRuneInString(prefix)
		if !equal(r, q) {
			return "", false
		}
		s, prefix = s[n:], prefix[m:]
	}
	return s, true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// equalAnyCaseRune reports whether a and b are one letter to some upstream
// that ignores case: equal under Unicode simple folding, or under the
// simple upper- or lower-case mapping, as Java's equalsIgnoreCase, .NET's
// OrdinalIgnoreCase (ASP.NET Core routing, IIS) and toUpperCase compare.
// Folding alone keeps the dotless ı and the dotted İ apart from I and i,
// which those read as the same letter.
func equalAnyCaseRune(a, b rune) bool {
	if equalFoldRune(a, b) {
		return true
	}
	ua, ub := unicode.ToUpper(a), unicode.ToUpper(b)
	return ua == ub || unicode.ToLower(a) == unicode.ToLower(b) || unicode.ToLower(ua) == unicode.ToLower(ub)
}

// withoutParameters is path with the parameters of each segment cut off
// (/a;x=1/b;y → /a/b), as Tomcat, Jetty and Spring read it.
func withoutParameters(path string) string {
	if strings.IndexByte(path, ';') < 0 {
		return path
	}
	b := make([]byte, 0, len(path))
	for i := 0; i < len(path); i++ {
		if path[i] == ';' {
			for i < len(path) && path[i] != '/' {
				i++
			}
			if i == len(path) {
				break
			}
		}
		b = append(b, path[i])
	}
	return string(b)
}

// withoutTrailingDots returns path with the dots and spaces that end each
// segment removed, as Windows file names drop them, and whether there were
// any. Canonical paths hold no "." or ".." segment, so a segment of dots
// alone (such as "...") is one Windows reads as empty.
func withoutTrailingDots(path string) (string, bool) {
	if !hasTrailingDot(path) {
		return path, false
	}
	b := make([]byte, 0, len(path))
	for rest := path; ; {
		segment, next, more := strings.Cut(rest, "/")
		b = append(b, strings.TrimRight(segment, ". ")...)
		if !more {
			break
		}
		b = append(b, '/')
		rest = next
	}
	return string(b), true
}

func hasTrailingDot(path string) bool {
	for i := 0; i < len(path); i++ {
		if c := path[i]; (c == '.' || c == ' ') && (i+1 == len(path) || path[i+1] == '/') {
			return true
		}
	}
	return false
}

// Methods.

// DefaultMethods are the methods the proxy lets through when
// Options.Methods is nil. CONNECT and TRACE are left out: one opens a
// tunnel past every rule, the other echoes the request, identity headers
// included.
var DefaultMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// isMethodToken reports whether m is a method as scimgate accepts it: an
// HTTP token of upper-case letters, digits and "-", "_" or ".".
func isMethodToken(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// CheckPathPrefix returns why p cannot be a public path or a route prefix,
// or nil: a prefix is compared with canonical decoded paths, so it must be
// one.
func CheckPathPrefix(p string, allowSemicolons bool) error {
	if why := checkPrefix(p, allowSemicolons); why != "" {
		return errors.New(strconv.Quote(p) + " " + why)
	}
	return nil
}
