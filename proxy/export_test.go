package proxy

import (
	"net/http"

	"github.com/scimgate/scimgate/tokens"
)

// Admit exposes the auth path to benchmarks.
func (p *Proxy) Admit(r *http.Request) (*tokens.Identity, error) { return p.admit(r) }
