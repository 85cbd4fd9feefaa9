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
// headers: ReverseProxy sets those itself from the connection. Nor do the
// other names of the client's address (Akamai's and Cloudflare's, Fastly's,
// Client-Ip, which Rails' remote_ip reads): as X-Real-Ip, an upstream
// behind scimgate could take them for the address scimgate saw.
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
	"x-client-ip":                       true,
	"client-ip":                         true,
	"true-client-ip":                    true,
	"x-cluster-client-ip":               true,
	"cf-connecting-ip":                  true,
	"fastly-client-ip":                  true,
	"x-original-forwarded-for":          true,
	"forwarded":                         true,
}

// IdentityHeaders names the identity headers the proxy can set: the header
// is the prefix plus its title-cased name ("token_id" → X-Scimgate-Token-Id).
var IdentityHeaders = []string{"kind", "id", "name", "org", "org_id", "token_id", "permissions", "groups", "sites"}

// DefaultIdentityHeaders are forwarded when Options.IdentityHeaders is nil:
// all but org_id, which the org's (unique) name already identifies. Each
// header costs the upstream a parse on every request.
var DefaultIdentityHeaders = []string{"kind", "id", "name", "org", "token_id", "permissions", "groups", "sites"}

// DefaultStripHeaders are deleted from every request when
// Options.StripHeaders is nil: headers that make some frameworks take
// another URL or method than the one the rules were checked on, and the
// identity headers of cloud front ends and TLS terminators, which an
// upstream deployed behind one may believe. A trailing "*" matches any
// ending.
var DefaultStripHeaders = []string{
	// URL and method overrides (Symfony, Laravel, Zend, IIS, Rails, Express).
	"X-Original-Url", "X-Original-Uri", "X-Original-Path", "X-Rewrite-Url", "X-Override-Url",
	"X-Forwarded-Url", "X-Forwarded-Uri", "X-Forwarded-Path", "X-Envoy-Original-Path",
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Forwarded-Method",
	// AWS ALB, Google IAP, Cloudflare Access, Azure App Service (Easy Auth).
	"X-Amzn-Oidc-*", "X-Goog-Iap-Jwt-Assertion", "X-Goog-Authenticated-User-*",
	"Cf-Access-Jwt-Assertion", "Cf-Access-Authenticated-User-Email", "X-Ms-Client-Principal*",
	"X-Ms-Token-Aad-*",
	// Client certificates passed on by TLS terminators (Envoy, nginx, HAProxy).
	"X-Forwarded-Client-Cert", "X-Client-Cert*", "X-Ssl-Client-*", "Ssl-Client-*",
	// More of other gateways' identity headers than the fixed set in
	// identityHeaders: Kong, Pomerium, Google Cloud Endpoints and API
	// Gateway, oauth2-proxy's and Grafana's other names, Authelia.
	"X-Consumer-*", "X-Authenticated-*", "X-Credential-Identifier", "X-Anonymous-Consumer", "X-Userinfo",
	"X-Pomerium-*", "X-Endpoint-Api-Userinfo", "X-Apigateway-Api-Userinfo", "X-Auth-Request-*", "X-Webauth-*",
	"X-Remote-Group", "Remote-Groups", "Remote-Email", "Remote-Name",
}

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
	// assertion is the signed assertion's header; "" when there is none.
	assertion string

	// strip are the configured headers to delete, lower case with "-":
	// exact names, and prefixes (from "name*").
	strip         map[string]bool
	stripPrefixes []string
	// firstBytes marks the lower-case first letters of every name that
	// spoofable deletes, so that most headers are passed over at once.
	firstBytes [256]bool
}

func newHeaderNames(prefix string, forward, strip []string, assertion string) (headerNames, error) {
	if forward == nil {
		forward = DefaultIdentityHeaders
	}
	if strip == nil {
		strip = DefaultStripHeaders
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
	n := headerNames{
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
		strip:       map[string]bool{},
	}
	if assertion != "" {
		if !validHeaderPattern(assertion) || strings.HasSuffix(assertion, "*") {
			return headerNames{}, fmt.Errorf("assertion header %q is not a header name", assertion)
		}
		n.assertion = textproto.CanonicalMIMEHeaderKey(assertion)
		n.strip[normalizeHeaderName(assertion)] = true
	}
	for _, s := range strip {
		if !validHeaderPattern(s) {
			return headerNames{}, fmt.Errorf("header to strip %q: want a header name, or the start of one followed by *", s)
		}
		if p, ok := strings.CutSuffix(s, "*"); ok {
			n.stripPrefixes = append(n.stripPrefixes, normalizeHeaderName(p))
		} else {
			n.strip[normalizeHeaderName(s)] = true
		}
	}
	n.firstBytes[n.prefix[0]] = true
	for name := range identityHeaders {
		n.firstBytes[name[0]] = true
	}
	for name := range n.strip {
		n.firstBytes[name[0]] = true
	}
	for _, p := range n.stripPrefixes {
		n.firstBytes[p[0]] = true
	}
	return n, nil
}

// validHeaderPattern reports whether s is a header name (letters, digits
// and "-" or "_"), optionally ending in "*".
func validHeaderPattern(s string) bool {
	s = strings.TrimSuffix(s, "*")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// set lists the headers admit sets, which Rewrite sets again on the
// outgoing request.
func (n *headerNames) set() []string {
	var out []string
	for _, k := range []string{n.kind, n.id, n.name, n.org, n.orgID, n.groups, n.sites, n.permissions, n.tokenID, n.assertion} {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

func normalizeHeaderName(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// clean deletes every header a client could use to pose as someone or to
// make the upstream read another URL or method, and removes such names
// from the Connection header, where ReverseProxy would take them for
// hop-by-hop headers and delete scimgate's own (the class of
// CVE-2022-31813). Trailers are cleaned too.
func (n *headerNames) clean(r *http.Request) {
	h := r.Header
	for k := range h {
		if n.spoofable(k) {
			delete(h, k)
		}
	}
	if c := h["Connection"]; len(c) > 0 {
		n.cleanConnection(h, c)
	}
	for k := range r.Trailer {
		if n.spoofable(k) || equalHeaderName(k, "authorization") {
			delete(r.Trailer, k)
		}
	}
}

// cleanConnection drops from the Connection header every token that names
// a header scimgate sets, deletes or checks.
func (n *headerNames) cleanConnection(h http.Header, values []string) {
	protected := func(token string) bool {
		token = textproto.TrimString(token)
		return n.spoofable(token) || equalHeaderName(token, "authorization")
	}
	dirty := false
	for _, v := range values {
		for token := range strings.SplitSeq(v, ",") {
			if protected(token) {
				dirty = true
			}
		}
	}
	if !dirty {
		return
	}
	var kept []string
	for _, v := range values {
		for token := range strings.SplitSeq(v, ",") {
			if t := textproto.TrimString(token); t != "" && !protected(t) {
				kept = append(kept, t)
			}
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(kept, ", ")}
}

// spoofable reports whether the header k must not reach the upstream from
// the client: anything under scimgate's prefix, the identity headers
// above, the assertion header and the configured strip list, in any letter
// case and with "_" for "-" (some servers treat them alike).
func (n *headerNames) spoofable(k string) bool {
	if len(k) == 0 || !n.firstBytes[lower(k[0])] {
		return false
	}
	if len(k) >= len(n.prefix) && equalHeaderName(k[:len(n.prefix)], n.prefix) {
		return true
	}
	for _, p := range n.stripPrefixes {
		if len(k) >= len(p) && equalHeaderName(k[:len(p)], p) {
			return true
		}
	}
	var buf [96]byte
	if len(k) > len(buf) {
		return n.spoofableLong(k)
	}
	norm := buf[:len(k)]
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' {
			c = '-'
		}
		norm[i] = lower(c)
	}
	// Indexing a map with string(bytes) does not allocate.
	return identityHeaders[string(norm)] || n.strip[string(norm)]
}

// spoofableLong is spoofable's exact-name check for a name too long to
// normalize on the stack; no name of the lists is that long but a
// configured one might be.
func (n *headerNames) spoofableLong(k string) bool {
	for name := range n.strip {
		if equalHeaderName(k, name) {
			return true
		}
	}
	return false
}

// equalHeaderName compares a header name with a lower-case, "-" name,
// ignoring case and treating "_" as "-".
func equalHeaderName(k, norm string) bool {
	if len(k) != len(norm) {
		return false
	}
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
