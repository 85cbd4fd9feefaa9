package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/scimgate/scimgate/tokens"
)

// sso is sign-in with an OpenID Connect provider. The provider's discovery
// document is read at the first sign-in, and again after a failure, so that
// scimgate starts while the provider is unreachable.
type sso struct {
	opts SSOOptions

	mu       sync.Mutex
	provider *oidc.Provider
}

func newSSO(o SSOOptions) (*sso, error) {
	if o.Issuer == "" || o.ClientID == "" || o.RedirectURL == "" {
		return nil, errors.New("console single sign-on needs the issuer, the client ID and the redirect URL")
	}
	if !slices.Contains(SSOClaims, o.Claim) {
		return nil, fmt.Errorf("console single sign-on: claim %q is not one of %s", o.Claim, strings.Join(SSOClaims, ", "))
	}
	if o.Scopes == nil {
		o.Scopes = []string{"email", "profile"}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &sso{opts: o}, nil
}

func (s *sso) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, s.opts.HTTPClient)
}

func (s *sso) getProvider(ctx context.Context) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	p, err := oidc.NewProvider(s.ctx(ctx), s.opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("read the identity provider's configuration at %s: %w", s.opts.Issuer, err)
	}
	s.provider = p
	return p, nil
}

func (s *sso) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     s.opts.ClientID,
		ClientSecret: s.opts.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  s.opts.RedirectURL,
		Scopes:       append([]string{oidc.ScopeOpenID}, s.opts.Scopes...),
	}
}

func randomString() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// signInPage is the data of the sign-in page.
type signInPage struct {
	basePage
	SSO       bool
	Ended     string // why the last session ended
	Error     string
	SignedOut bool
}

var endedMessages = map[string]string{
	"expired":     "Your session reached its time limit. Sign in again.",
	"idle":        "Your session ended after a period without activity. Sign in again.",
	"deactivated": "Your account is deactivated, so your session ended. Ask your administrator if this is a mistake.",
	"removed":     "Your account is no longer part of this organization, so your session ended.",
	"token":       "The API token you signed in with no longer works (it was deleted, or expired), so your session ended. Sign in again.",
}

func (c *Console) handleSignIn(w http.ResponseWriter, r *http.Request) {
	p := signInPage{basePage: basePage{Title: "Sign in"}, SSO: c.sso != nil,
		Ended: endedMessages[r.URL.Query().Get("ended")], SignedOut: r.URL.Query().Has("signed_out")}
	c.render(w, r, http.StatusOK, "signin", &p)
}

func (c *Console) signInError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := signInPage{basePage: basePage{Title: "Sign in"}, SSO: c.sso != nil, Error: msg}
	c.render(w, r, status, "signin", &p)
}

// handleSignInToken signs a person in with one of their user API tokens.
// The seeds: user tokens "can be used to log in"; service user API tokens
// cannot.
func (c *Console) handleSignInToken(w http.ResponseWriter, r *http.Request) {
	if err := limitForm(w, r); err != nil {
		c.signInError(w, r, http.StatusBadRequest, message(err))
		return
	}
	plaintext := formValue(r, "token")
	if plaintext == "" {
		c.signInError(w, r, http.StatusUnprocessableEntity, "Paste one of your user API tokens (it starts with sgu_).")
		return
	}
	id, err := c.auth.Authenticate(r.Context(), plaintext)
	var refused *tokens.AuthError
	switch {
	case errors.As(err, &refused):
		c.signInError(w, r, http.StatusUnauthorized, tokenRefusal(refused))
		return
	case err != nil:
		c.log.ErrorContext(r.Context(), "console sign-in with a token", "err", err)
		c.signInError(w, r, http.StatusServiceUnavailable, "The console cannot check tokens right now (its database is unreachable). Try again in a moment.")
		return
	case id.Kind != tokens.KindUser:
		c.log.InfoContext(r.Context(), "console sign-in refused: a service token", "token_id", id.TokenID, "token_prefix", id.DisplayPrefix)
		c.signInError(w, r, http.StatusForbidden, "This is a service user API token: service user API tokens cannot be used to log in. Sign in with single sign-on or with one of your own user API tokens.")
		return
	}
	c.openSession(w, r, id.OrgID, id.OwnerID, tokens.SignInToken, id.TokenID)
}

// tokenRefusal says why a token cannot sign in.
func tokenRefusal(e *tokens.AuthError) string {
	switch e {
	case tokens.ErrMalformedToken:
		return "That is not a scimgate API token: check that you copied all of it (it starts with sgu_)."
	case tokens.ErrUnknownToken:
		return "That token does not exist: it was deleted or regenerated, or it was never issued."
	}
	return message(errors.New(e.Message))
}

func (c *Console) openSession(w http.ResponseWriter, r *http.Request, orgID, userID string, method tokens.SignInMethod, tokenID string) {
	sess, secret, err := c.svc.OpenSession(r.Context(), orgID, userID, method, tokenID, c.policy)
	var ended *tokens.SessionEndedError
	switch {
	case errors.As(err, &ended):
		c.refuseSignIn(w, r, message(ended))
		return
	case err != nil:
		status, title := errorStatus(err)
		if status >= 500 {
			c.log.ErrorContext(r.Context(), "open console session", "err", err)
			c.errorPage(w, r, status, title, "You are not signed in. Try again in a moment.")
			return
		}
		c.refuseSignIn(w, r, message(err))
		return
	}
	c.log.InfoContext(r.Context(), "console sign-in", "session_id", sess.ID, "user_id", userID, "method", string(method), "token_id", tokenID)
	c.setSessionCookie(w, r, secret)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// refusedPage explains why a person cannot sign in.
type refusedPage struct {
	basePage
	Reason string
}

func (c *Console) refuseSignIn(w http.ResponseWriter, r *http.Request, reason string) {
	c.render(w, r, http.StatusForbidden, "refused", &refusedPage{basePage: basePage{Title: "You cannot sign in"}, Reason: reason})
}

func (c *Console) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if err := c.svc.CloseSession(r.Context(), c.sessionCookie(r)); err != nil {
		c.log.ErrorContext(r.Context(), "console sign-out", "err", err)
		c.errorPage(w, r, http.StatusServiceUnavailable, "Not signed out yet",
			"The console cannot reach its database to end your session. Try again in a moment.")
		return
	}
	c.clearSessionCookie(w, r)
	http.Redirect(w, r, "/signin?signed_out", http.StatusSeeOther)
}

// handleSSOStart sends the browser to the identity provider: authorization
// code flow with PKCE (S256), a state and a nonce, remembered in a
// short-lived cookie for the way back.
func (c *Console) handleSSOStart(w http.ResponseWriter, r *http.Request) {
	if c.sso == nil {
		c.errorPage(w, r, http.StatusNotFound, "Single sign-on is not set up",
			"Sign in with one of your user API tokens, or ask the operator to configure console.oidc.")
		return
	}
	p, err := c.sso.getProvider(r.Context())
	if err != nil {
		c.log.ErrorContext(r.Context(), "console single sign-on", "err", err)
		c.errorPage(w, r, http.StatusBadGateway, "The identity provider cannot be reached",
			"Try again in a moment, or sign in with one of your user API tokens.")
		return
	}
	a := ssoAttempt{State: randomString(), Verifier: oauth2.GenerateVerifier(), Nonce: randomString(), Started: time.Now()}
	raw, _ := json.Marshal(a) // cannot fail: strings and a time
	// Lax: the provider's redirect back is a top-level GET from its site.
	http.SetCookie(w, c.cookie(r, ssoCookieName, base64.RawURLEncoding.EncodeToString(raw), "/auth/", 600, http.SameSiteLaxMode))
	target := c.sso.oauth2Config(p).AuthCodeURL(a.State, oauth2.S256ChallengeOption(a.Verifier), oidc.Nonce(a.Nonce))
	http.Redirect(w, r, target, http.StatusFound)
}

// handleSSOCallback finishes single sign-on: it checks the state, exchanges
// the code with the PKCE verifier, verifies the ID token (signature,
// issuer, audience, expiry, nonce), reads the configured claim (from the ID
// token, or else the userinfo endpoint) and finds the SCIM-provisioned
// person of the configured org it names.
func (c *Console) handleSSOCallback(w http.ResponseWriter, r *http.Request) {
	if c.sso == nil {
		c.handleSSOStart(w, r)
		return
	}
	ck, err := r.Cookie(ssoCookieName)
	http.SetCookie(w, c.cookie(r, ssoCookieName, "", "/auth/", -1, http.SameSiteLaxMode))
	var a ssoAttempt
	if err == nil {
		raw, derr := base64.RawURLEncoding.DecodeString(ck.Value)
		err = errors.Join(derr, json.Unmarshal(raw, &a))
	}
	q := r.URL.Query()
	if err != nil || a.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(a.State)) != 1 || time.Since(a.Started) > 10*time.Minute {
		c.refuseSignIn(w, r, "This sign-in attempt expired or was not started from this browser. Start again from the sign-in page.")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "The identity provider did not sign you in (" + e + ")"
		if d := q.Get("error_description"); d != "" {
			msg += ": " + d
		}
		c.refuseSignIn(w, r, msg+".")
		return
	}
	ctx := c.sso.ctx(r.Context())
	p, err := c.sso.getProvider(ctx)
	if err != nil {
		c.log.ErrorContext(ctx, "console single sign-on", "err", err)
		c.errorPage(w, r, http.StatusBadGateway, "The identity provider cannot be reached", "Try again in a moment.")
		return
	}
	tok, err := c.sso.oauth2Config(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(a.Verifier))
	if err != nil {
		c.log.WarnContext(ctx, "console single sign-on: code exchange", "err", err)
		c.refuseSignIn(w, r, "The identity provider did not confirm this sign-in. Start again from the sign-in page.")
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idToken, err := p.Verifier(&oidc.Config{ClientID: c.sso.opts.ClientID}).Verify(ctx, rawID)
	if err != nil || subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(a.Nonce)) != 1 {
		c.log.WarnContext(ctx, "console single sign-on: ID token refused", "err", err)
		c.refuseSignIn(w, r, "The identity provider's answer could not be verified. Start again from the sign-in page.")
		return
	}
	value, err := c.claimValue(ctx, p, tok, idToken)
	if err != nil {
		c.refuseSignIn(w, r, message(err))
		return
	}
	u, err := c.findPerson(ctx, value)
	if err != nil {
		if status, _ := errorStatus(err); status >= 500 {
			c.log.ErrorContext(ctx, "console single sign-on: find the person", "err", err)
			c.errorPage(w, r, status, "The console cannot reach its database", "You are not signed in. Try again in a moment.")
			return
		}
		c.refuseSignIn(w, r, message(err))
		return
	}
	c.openSession(w, r, u.OrgID, u.ID, tokens.SignInSSO, "")
}

// ssoClaims are the claims that can find a person.
type ssoClaims struct {
	Subject           string `json:"sub"`
	Email             string `json:"email"`
	EmailVerified     *bool  `json:"email_verified"`
	PreferredUsername string `json:"preferred_username"`
}

func (s ssoClaims) get(claim string) string {
	switch claim {
	case "email":
		return s.Email
	case "preferred_username":
		return s.PreferredUsername
	}
	return s.Subject
}

// claimValue reads the configured claim from the ID token, or, when the
// provider keeps it out of the ID token, from its userinfo endpoint for the
// same subject.
func (c *Console) claimValue(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, idToken *oidc.IDToken) (string, error) {
	claim := c.sso.opts.Claim
	var cl ssoClaims
	if err := idToken.Claims(&cl); err != nil {
		return "", tokens.Errorf(tokens.Invalid, "the identity provider's ID token could not be read")
	}
	if cl.get(claim) == "" && p.UserInfoEndpoint() != "" {
		info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err == nil && info.Subject == idToken.Subject {
			err = info.Claims(&cl)
		}
		if err != nil {
			c.log.WarnContext(ctx, "console single sign-on: userinfo", "err", err)
		}
	}
	value := cl.get(claim)
	if value == "" {
		return "", tokens.Errorf(tokens.Invalid, "the identity provider did not say your %s, which this console uses to find you: ask the operator to have it sent", claim)
	}
	if claim == "email" && cl.EmailVerified != nil && !*cl.EmailVerified {
		return "", tokens.Errorf(tokens.Forbidden, "the identity provider says your email address %s is not verified: verify it there, then sign in again", value)
	}
	return value, nil
}

// findPerson finds the person of the configured org that a claim names.
func (c *Console) findPerson(ctx context.Context, value string) (*tokens.User, error) {
	org, err := c.svc.OrgByName(ctx, c.opts.Org)
	if err != nil {
		if tokens.ErrorCode(err) == tokens.NotFound {
			return nil, tokens.Errorf(tokens.NotFound, "the console's organization %q does not exist: ask the operator to fix console.org", c.opts.Org)
		}
		return nil, err
	}
	var f tokens.UserFilter
	what := ""
	switch c.sso.opts.Claim {
	case "email":
		f.Email, what = value, "the email address "+value
	case "preferred_username":
		f.UserName, what = value, "the user name "+value
	default:
		f.ExternalID, what = value, "the identity provider ID "+value
	}
	users, _, err := c.svc.Users(ctx, org.ID, f)
	if err != nil {
		return nil, err
	}
	switch {
	case len(users) == 0:
		return nil, tokens.Errorf(tokens.NotFound, "nobody with %s is provisioned in the organization %q. Ask your administrator to assign you to scimgate in the identity provider; you can sign in once it has provisioned you", what, org.Name)
	case len(users) > 1:
		return nil, tokens.Errorf(tokens.Conflict, "%d people of the organization %q have %s, so the console cannot tell which one you are: ask your administrator", len(users), org.Name, what)
	case !users[0].Active:
		return nil, tokens.Errorf(tokens.Forbidden, "your account %q in the organization %q is deactivated, so you cannot sign in: ask your administrator", users[0].UserName, org.Name)
	}
	return &users[0], nil
}
