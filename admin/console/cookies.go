package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// Cookie names. Under TLS the session cookie takes the __Host- prefix, which
// browsers accept only Secure, for the whole host and no other.
const (
	sessionCookieName       = "scimgate_session"
	secureSessionCookieName = "__Host-scimgate_session"
	flashCookieName         = "scimgate_flash"
	revealCookieName        = "scimgate_reveal"
	ssoCookieName           = "scimgate_sso"
)

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opts.SecureCookies }

func (c *Console) cookie(r *http.Request, name, value, path string, maxAge int, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: c.secure(r), SameSite: sameSite}
}

func (c *Console) sessionCookieName(r *http.Request) string {
	if c.secure(r) {
		return secureSessionCookieName
	}
	return sessionCookieName
}

// sessionCookie is the session secret the browser sent, or "".
func (c *Console) sessionCookie(r *http.Request) string {
	ck, err := r.Cookie(c.sessionCookieName(r))
	if err != nil {
		return ""
	}
	return ck.Value
}

// setSessionCookie gives the browser its session secret. It is a session
// cookie (no Max-Age): the server decides when the session ends. SameSite
// Lax, so that the identity provider's redirect back lands signed in; every
// state change is a POST, which Lax does not send cross-site.
func (c *Console) setSessionCookie(w http.ResponseWriter, r *http.Request, secret string) {
	http.SetCookie(w, c.cookie(r, c.sessionCookieName(r), secret, "/", 0, http.SameSiteLaxMode))
}

func (c *Console) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, c.cookie(r, c.sessionCookieName(r), "", "/", -1, http.SameSiteLaxMode))
	http.SetCookie(w, c.cookie(r, revealCookieName, "", "/", -1, http.SameSiteStrictMode))
}

// setFlash leaves a notice for the next page the browser loads.
func (c *Console) setFlash(w http.ResponseWriter, r *http.Request, msg string) {
	http.SetCookie(w, c.cookie(r, flashCookieName, url.QueryEscape(msg), "/", 60, http.SameSiteStrictMode))
}

// takeFlash reads and clears the notice left by the previous request.
func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) string {
	ck, err := r.Cookie(flashCookieName)
	if err != nil {
		return ""
	}
	http.SetCookie(w, c.cookie(r, flashCookieName, "", "/", -1, http.SameSiteStrictMode))
	msg, err := url.QueryUnescape(ck.Value)
	if err != nil || len(msg) > 500 {
		return ""
	}
	return msg
}

// reveal is a new token's secret on its way to the one page that shows it.
type reveal struct {
	TokenID   string `json:"id"`
	Name      string `json:"name"`
	Plaintext string `json:"token"`
	// Regenerated: a revoked token got a new secret, rather than a new token.
	Regenerated bool `json:"regenerated,omitempty"`
}

// A token's secret is shown once, on the page the browser lands on after
// the POST that made it (so that reloading never posts again). It gets
// there in a cookie that lives a minute, is read once and cleared, and is
// sealed (AES-GCM) under a key derived from the session secret: the server
// stores nothing, any replica can show it, and the cookie alone is useless.
const revealMaxAge = 60

func revealKey(sessionSecret string) []byte {
	m := hmac.New(sha256.New, []byte(sessionSecret))
	m.Write([]byte("scimgate console reveal v1"))
	return m.Sum(nil)
}

func sealReveal(sessionSecret string, v reveal) (string, error) {
	block, err := aes.NewCipher(revealKey(sessionSecret))
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(gcm.Seal(nonce, nonce, plain, []byte(revealCookieName))), nil
}

func openReveal(sessionSecret, sealed string) (reveal, error) {
	var v reveal
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return v, err
	}
	block, err := aes.NewCipher(revealKey(sessionSecret))
	if err != nil {
		return v, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return v, err
	}
	if len(raw) < gcm.NonceSize() {
		return v, errors.New("sealed token too short")
	}
	plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], []byte(revealCookieName))
	if err != nil {
		return v, err
	}
	return v, json.Unmarshal(plain, &v)
}

func (c *Console) setReveal(w http.ResponseWriter, r *http.Request, s *session, v reveal) error {
	sealed, err := sealReveal(s.secret, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, c.cookie(r, revealCookieName, sealed, "/", revealMaxAge, http.SameSiteStrictMode))
	return nil
}

// takeReveal returns the secret to show once, and clears it.
func (c *Console) takeReveal(w http.ResponseWriter, r *http.Request, s *session) *reveal {
	ck, err := r.Cookie(revealCookieName)
	if err != nil {
		return nil
	}
	http.SetCookie(w, c.cookie(r, revealCookieName, "", "/", -1, http.SameSiteStrictMode))
	v, err := openReveal(s.secret, ck.Value)
	if err != nil {
		return nil
	}
	return &v
}

// ssoAttempt is what the sign-in cookie remembers between the redirect to
// the identity provider and its redirect back.
type ssoAttempt struct {
	State    string    `json:"s"`
	Verifier string    `json:"v"` // PKCE code verifier
	Nonce    string    `json:"n"`
	Started  time.Time `json:"t"`
}
