package proxy_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The code between the README markers below is the upstream example in
// README.md ("Verifying the assertion upstream"), word for word:
// TestREADMEShowsTheTestedUpstreamExample keeps the two equal, and the
// assertion tests verify every assertion with it.

// README: begin

// Caller is who called, as scimgate vouches for it.
type Caller struct {
	jwt.Claims           // iss, aud, sub (the owner's ID), iat, exp
	Kind        string   `json:"kind"` // "user" or "service"
	Name        string   `json:"name"` // user name, or the service user's name
	Org         string   `json:"org"`
	OrgID       string   `json:"org_id"`
	TokenID     string   `json:"token_id"`
	Permissions []string `json:"permissions"`
	Groups      []string `json:"groups"`    // user tokens only
	Sites       []string `json:"sites"`     // user tokens only
	Method      string   `json:"method"`    // with bind_request
	PathHash    string   `json:"path_hash"` // with bind_request
}

// FetchKeys reads scimgate's JWKS. Keys rotate: fetch it again when an
// assertion names a key it does not hold (jose.ErrJWKSKidNotFound), and
// at least every hour.
func FetchKeys(jwksURL string) (*jose.JSONWebKeySet, error) {
	resp, err := http.Get(jwksURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", jwksURL, resp.Status)
	}
	var keys jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&keys); err != nil {
		return nil, fmt.Errorf("GET %s: %w", jwksURL, err)
	}
	return &keys, nil
}

// VerifyCaller checks the assertion scimgate put in the request. issuer
// and audience are proxy.assertion.issuer and .audience.
func VerifyCaller(r *http.Request, keys *jose.JSONWebKeySet, issuer, audience string) (*Caller, error) {
	tok, err := jwt.ParseSigned(r.Header.Get("X-Scimgate-Assertion"),
		[]jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return nil, err // missing or malformed
	}
	var c Caller
	if err := tok.Claims(keys, &c); err != nil {
		return nil, err // not signed by scimgate, or a key not fetched yet
	}
	expected := jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: time.Now()}
	if err := c.ValidateWithLeeway(expected, 30*time.Second); err != nil {
		return nil, err // expired, or meant for another upstream
	}
	if c.PathHash != "" { // bind_request: made for this request only
		sum := sha256.Sum256([]byte(r.URL.Path))
		if c.Method != r.Method || c.PathHash != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return nil, errors.New("the assertion was made for another request")
		}
	}
	return &c, nil
}

// README: end

func TestREADMEShowsTheTestedUpstreamExample(t *testing.T) {
	src, err := os.ReadFile("upstream_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, code, _ := strings.Cut(string(src), "// README: begin\n\n")
	code, _, _ = strings.Cut(code, "\n// README: end")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The README's snippet is the code above, after its import block.
	if !strings.Contains(string(readme), "\n"+code+"```\n") {
		t.Errorf("README.md does not show the upstream example of upstream_example_test.go word for word; paste this after its import block:\n%s", code)
	}
}
