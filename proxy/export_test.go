package proxy

import (
	"net/http"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// Admit exposes the auth path to benchmarks.
func (p *Proxy) Admit(r *http.Request) (*tokens.Identity, error) { return p.admit(r) }

// OnDecide has f told the method and path of every decision.
func (p *Proxy) OnDecide(f func(method, path string)) { p.decided = f }

// CanonicalPath exposes the canonicaliser to its fuzz test.
func CanonicalPath(raw string, allowSemicolons bool) (path, rawOut string, err error) {
	path, rawOut, e := canonicalPath(raw, allowSemicolons)
	if e != nil {
		return "", "", e
	}
	return path, rawOut, nil
}

// SetRepeatInterval shortens the interval of the repeated-error log.
func (p *Proxy) SetRepeatInterval(d time.Duration) { p.repeats.interval = d }

// SigningKeyID is the ID of the key k signs with at now, or "".
func SigningKeyID(k *Keyring, now time.Time) string {
	if sk := k.current(now.UnixNano()); sk != nil {
		return sk.id
	}
	return ""
}
