package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/scimgate/scimgate/proxy"
	"github.com/scimgate/scimgate/tokens/sqlstore"
)

// The database keeps the signing keys every replica shares.
var _ proxy.SigningKeyStore = (*sqlstore.Store)(nil)

// newKeyring loads the assertion signing keys shared by every replica
// through the database (creating the first on the first start), or
// returns nil when the assertion is off.
func newKeyring(ctx context.Context, cfg *Config, store proxy.SigningKeyStore, logger *slog.Logger) (*proxy.Keyring, error) {
	a := cfg.Proxy.Assertion
	if !a.Enabled {
		return nil, nil
	}
	keyring, err := proxy.NewKeyring(ctx, store, proxy.KeyringOptions{
		Algorithm:    a.Algorithm,
		RotateEvery:  a.KeyRotation,
		PublishAhead: a.KeyPublishAhead,
		AssertionTTL: a.TTL,
		Logger:       logger,
	})
	if err != nil {
		return nil, fmt.Errorf("proxy.assertion: %w", err)
	}
	logger.Info("identity assertion on", "header", a.Header, "algorithm", a.Algorithm, "keys", keyring.KeyIDs(), "bind_request", a.BindRequest)
	return keyring, nil
}

// assertionOptions are the proxy's assertion options, nil when it is off.
func assertionOptions(cfg *Config, keyring *proxy.Keyring) *proxy.AssertionOptions {
	if keyring == nil {
		return nil
	}
	a := cfg.Proxy.Assertion
	return &proxy.AssertionOptions{
		Keyring:     keyring,
		Header:      a.Header,
		Issuer:      a.Issuer,
		Audience:    a.Audience,
		TTL:         a.TTL,
		BindRequest: a.BindRequest,
	}
}

// jwksHandler serves the keyring's JWKS; nil when the assertion is off.
func jwksHandler(keyring *proxy.Keyring) http.Handler {
	if keyring == nil {
		return nil
	}
	return keyring
}

// setRequestRules sets the proxy options of the canonical request, the
// headers stripped and the identity assertion.
func setRequestRules(opts *proxy.Options, cfg *Config, keyring *proxy.Keyring) {
	opts.RoutesCaseSensitive = !cfg.Proxy.RoutesIgnoreCase
	opts.PublicPathsIgnoreCase = cfg.Proxy.PublicPathsIgnoreCase
	opts.AllowPathSemicolons = cfg.Proxy.AllowPathSemicolons
	opts.Methods = cfg.Proxy.Methods
	opts.StripHeaders = cfg.Proxy.StripHeaders
	opts.Assertion = assertionOptions(cfg, keyring)
}
