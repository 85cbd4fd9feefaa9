package proxy

import (
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// identityHeaders are the names other auth proxies use to pass an identity
// upstream (oauth2-proxy, Pomerium, Apache's REMOTE_USER, Grafana's auth
// proxy). A client that sends one directly must not be believed by an
// upstream that also trusts them, so they never pass. Nor do the forwarding
// headers: ReverseProxy sets those itself from the connection.
var identityHeaders = map[string]bool{
	"x-forwarded-user":                  true,
	"x-forwarded-email":                 true,
	"x-forwarded-groups":                true,
	"x-forwarded-preferred-username":    true,
	"x-forwarded-access-token":          true,
	"x-auth-request-user":               true,
	"x-auth-request-email":              true,
	"x-auth-request-groups":             true,
	"x-auth-request-preferred-username": true,
	"x-auth-request-access-token":       true,
	"x-remote-user":                     true,
	"x-remote-email":                    true,
	"x-remote-groups":                   true,
	"remote-user":                       true,
	"x-webauth-user":                    true,
	"x-pomerium-jwt-assertion":          true,
	"x-forwarded-for":                   true,
	"x-forwarded-host":                  true,
	"x-forwarded-proto":                 true,
	"x-forwarded-port":                  true,
	"x-forwarded-prefix":                true,
	"x-real-ip":                         true,
	"forwarded":                         true,
}

// IdentityHeaders names the identity headers the proxy can set: the header
// is the prefix plus its title-cased name ("token_id" → X-Scimgate-Token-Id).
var IdentityHeaders = []string{"kind", "id", "name", "org", "org_id", "token_id", "permissions", "groups", "sites"}

// DefaultIdentityHeaders are forwarded when Options.IdentityHeaders is nil:
// all but org_id, which the org's (unique) name already identifies. Each
// header costs the upstream a parse on every request.
var DefaultIdentityHeaders = []string{"kind", "id", "name", "org", "token_id", "permissions", "groups", "sites"}

// headerNames are the canonical names of the identity headers scimgate sets;
// an empty name is a header not forwarded.
type headerNames struct {
	prefix      string // lower case, "-" only
	kind        string
	id          string
	name        string
	org         string
	orgID       string
	groups      string
	sites       string
	permissions string
	tokenID     string
}

func newHeaderNames(prefix string, forward []string) (headerNames, error) {
	if forward == nil {
		forward = DefaultIdentityHeaders
	}
	for _, f := range forward {
		if !slices.Contains(IdentityHeaders, f) {
			return headerNames{}, fmt.Errorf("identity header %q: want one of %s", f, strings.Join(IdentityHeaders, ", "))
		}
	}
	c := func(s string) string {
		if !slices.Contains(forward, strings.ReplaceAll(strings.ToLower(s), "-", "_")) {
			return ""
		}
		return textproto.CanonicalMIMEHeaderKey(prefix + s)
	}
	return headerNames{
		prefix:      normalizeHeaderName(prefix),
		kind:        c("Kind"),
		id:          c("Id"),
		name:        c("Name"),
		org:         c("Org"),
		orgID:       c("Org-Id"),
		groups:      c("Groups"),
		sites:       c("Sites"),
		permissions: c("Permissions"),
		tokenID:     c("Token-Id"),
	}, nil
}

func normalizeHeaderName(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// stripSpoofed deletes every header a client could use to pose as someone:
// anything under scimgate's prefix and the identity headers above, in any
// letter case and with "_" for "-" (some servers treat them alike).
func (n *headerNames) stripSpoofed(h http.Header) {
	for k := range h {
		if n.spoofable(k) {
			delete(h, k)
		}
	}
}

func (n *headerNames) spoofable(k string) bool {
	// Fast path without allocation: most headers share neither the prefix's
	// first letter nor an "x-"/"r"/"f" start.
	if len(k) == 0 {
		return false
	}
	if len(k) >= len(n.prefix) && equalHeaderName(k[:len(n.prefix)], n.prefix) {
		return true
	}
	switch k[0] | 0x20 {
	case 'x', 'r', 'f':
		return identityHeaders[normalizeHeaderName(k)]
	}
	return false
}

// equalHeaderName compares a header name with a lower-case, "-" name,
// ignoring case and treating "_" as "-".
func equalHeaderName(k, norm string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != norm[i] {
			return false
		}
	}
	return true
}

// escapeValue makes a name safe for a header value and for a comma list:
// ",", "%", control characters and bytes beyond ASCII are percent-encoded.
func escapeValue(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if needsEscape(s[i]) {
			break
		}
	}
	if i == len(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		if c := s[i]; needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(c byte) bool { return c < 0x20 || c >= 0x7f || c == ',' || c == '%' }

func joinEscaped(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return escapeValue(names[0])
	}
	var b strings.Builder
	for i, s := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(escapeValue(s))
	}
	return b.String()
}
