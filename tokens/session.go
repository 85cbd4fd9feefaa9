package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// SignInMethod is how a person opened a console session.
type SignInMethod string

const (
	// SignInSSO is single sign-on with the identity provider (OpenID Connect).
	SignInSSO SignInMethod = "sso"
	// SignInToken is signing in with one of the person's user API tokens.
	SignInToken SignInMethod = "token"
)

// Session is a person's web console session. It lives in the store, so that
// every replica knows it and any of them can end it; the browser holds only
// the secret, whose SHA-256 is all that is stored.
type Session struct {
	ID     string // public: safe to log
	Hash   Hash   // SHA-256 of the secret
	OrgID  string
	UserID string
	// TokenID is the user token the session was opened with; "" for SSO.
	// The session ends when that token stops working.
	TokenID    string
	Method     SignInMethod
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the session, whatever its activity.
	ExpiresAt time.Time
}

// SessionPolicy bounds a session's life.
type SessionPolicy struct {
	// Idle ends a session unused for this long.
	Idle time.Duration
	// Absolute ends a session this long after it was opened.
	Absolute time.Duration
}

// sessionTouchEvery is how stale a session's last-seen time may get before a
// page load writes it: a write per page load would make every read a write,
// and the idle timeout does not need to be exact to the second.
const sessionTouchEvery = time.Minute

// SessionEndedError says why a session is no longer valid, in words for the
// person whose session it was.
type SessionEndedError struct {
	Reason  string // a stable word: unknown, expired, idle, deactivated, removed, token
	Message string
}

func (e *SessionEndedError) Error() string { return e.Message }

// The reasons a session ends by itself.
var (
	ErrSessionUnknown = &SessionEndedError{"unknown", "you are signed out"}
	ErrSessionExpired = &SessionEndedError{"expired", "your session reached its time limit: sign in again"}
	ErrSessionIdle    = &SessionEndedError{"idle", "your session ended after a period without activity: sign in again"}
)

// hashSessionSecret is what is stored of a session secret.
func hashSessionSecret(secret string) Hash { return sha256.Sum256([]byte(secret)) }

// newSessionSecret is 32 random bytes, URL-safe: the cookie's value.
func newSessionSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// personActor names a person in the audit trail.
func personActor(u *User) Actor { return Actor("user:" + u.ID + " (" + u.UserName + ")") }

// OpenSession starts a console session for an active person of an org, signed
// in by method; tokenID names the user token they signed in with (method
// SignInToken), which must be theirs and active. It returns the session and
// the secret for the browser's cookie, which is never stored. Sessions past
// their end are deleted on the way.
func (s *Service) OpenSession(ctx context.Context, orgID, userID string, method SignInMethod, tokenID string, p SessionPolicy) (*Session, string, error) {
	if p.Idle <= 0 || p.Absolute <= 0 {
		return nil, "", Errorf(Invalid, "session timeouts must be above zero")
	}
	if (method == SignInToken) != (tokenID != "") {
		return nil, "", Errorf(Invalid, "a session opened with a token names it, and only then")
	}
	if method != SignInSSO && method != SignInToken {
		return nil, "", Errorf(Invalid, "unknown sign-in method %q", method)
	}
	secret := newSessionSecret()
	var sess *Session
	err := s.store.Update(ctx, func(tx Tx) error {
		now := s.Now().UTC()
		u, err := tx.User(orgID, userID)
		if err != nil {
			return notFound(err, "user %s not found", userID)
		}
		if ended := userEnded(u); ended != nil {
			return ended
		}
		if tokenID != "" {
			tok, err := tx.Token(orgID, tokenID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if err != nil || tok.Kind != KindUser || tok.OwnerID != userID {
				return Errorf(NotFound, "user token %s of user %s not found", tokenID, userID)
			}
			if ended := tokenEnded(tok, now); ended != nil {
				return ended
			}
		}
		if _, err := tx.DeleteStaleSessions(now, now.Add(-p.Idle)); err != nil {
			return err
		}
		sess = &Session{ID: NewID("ses"), Hash: hashSessionSecret(secret), OrgID: orgID, UserID: userID,
			TokenID: tokenID, Method: method, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(p.Absolute)}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		detail := fmt.Sprintf("%s signed in to the web console by single sign-on", u.UserName)
		if method == SignInToken {
			detail = fmt.Sprintf("%s signed in to the web console with user token %s", u.UserName, tokenID)
		}
		return tx.AppendAudit(&AuditEvent{OrgID: orgID, At: now, Actor: string(personActor(u)),
			Action: "console.sign_in", Target: u.ID, Detail: detail})
	})
	if err != nil {
		return nil, "", fmt.Errorf("open console session for user %s: %w", userID, err)
	}
	return sess, secret, nil
}

// ResumeSession finds the session of a cookie's secret and checks that it
// still holds: within its idle and absolute timeouts, its person active and
// in the org, and the token it was opened with still working. It returns the
// person's identity as of now (their groups and permissions re-read), or a
// *SessionEndedError saying why the session is over; an ended session is
// deleted. Every call reads the store, so that a change made on any replica
// counts at the next page load.
func (s *Service) ResumeSession(ctx context.Context, secret string, p SessionPolicy) (*Session, *Identity, error) {
	if secret == "" {
		return nil, nil, ErrSessionUnknown
	}
	h := hashSessionSecret(secret)
	var (
		sess  *Session
		id    *Identity
		ended *SessionEndedError
	)
	now := s.Now().UTC()
	err := s.store.View(ctx, func(tx Tx) (err error) {
		sess, err = tx.SessionByHash(h)
		if errors.Is(err, ErrNotFound) {
			ended = ErrSessionUnknown
			return nil
		}
		if err != nil {
			return err
		}
		id, ended, err = s.checkSession(tx, sess, now, p)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("resume console session: %w", err)
	}
	switch {
	case ended == ErrSessionUnknown:
		return nil, nil, ended
	case ended != nil:
		if err := s.store.Update(ctx, func(tx Tx) error { return tx.DeleteSession(sess.ID) }); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, fmt.Errorf("end console session %s: %w", sess.ID, err)
		}
		return nil, nil, ended
	case now.Sub(sess.LastSeenAt) >= sessionTouchEvery:
		err := s.store.Update(ctx, func(tx Tx) error { return tx.TouchSession(sess.ID, now) })
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, fmt.Errorf("touch console session %s: %w", sess.ID, err)
		}
		sess.LastSeenAt = now
	}
	return sess, id, nil
}

func (s *Service) checkSession(tx Tx, sess *Session, now time.Time, p SessionPolicy) (*Identity, *SessionEndedError, error) {
	// The shorter of the stored end and the configured one: lowering the
	// absolute timeout applies to sessions already open.
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.CreatedAt.Add(p.Absolute)) {
		return nil, ErrSessionExpired, nil
	}
	if now.Sub(sess.LastSeenAt) >= p.Idle {
		return nil, ErrSessionIdle, nil
	}
	u, err := tx.User(sess.OrgID, sess.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, userRemovedEnded, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if ended := userEnded(u); ended != nil {
		return nil, ended, nil
	}
	prefix := ""
	if sess.TokenID != "" {
		tok, err := tx.Token(sess.OrgID, sess.TokenID)
		if errors.Is(err, ErrNotFound) {
			return nil, tokenDeletedEnded, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if ended := tokenEnded(tok, now); ended != nil {
			return nil, ended, nil
		}
		prefix = tok.DisplayPrefix
	}
	org, err := tx.Org(sess.OrgID)
	if err != nil {
		return nil, nil, err
	}
	groups, err := tx.GroupsOfUser(u.ID)
	if err != nil {
		return nil, nil, err
	}
	return &Identity{
		TokenID:       sess.TokenID,
		DisplayPrefix: prefix,
		Kind:          KindUser,
		OwnerID:       u.ID,
		OwnerName:     u.UserName,
		OrgID:         org.ID,
		OrgName:       org.Name,
		Groups:        groups,
		Permissions:   s.policy.Resolve(s.policy.UserSets(groups)),
	}, nil, nil
}

var (
	userRemovedEnded     = &SessionEndedError{"removed", "your account is no longer part of this organization, so your session ended"}
	userDeactivatedEnded = &SessionEndedError{"deactivated", "your account is deactivated, so your session ended: ask your administrator"}
	tokenDeletedEnded    = &SessionEndedError{"token", "the API token you signed in with was deleted, so your session ended"}
	tokenStoppedEnded    = &SessionEndedError{"token", "the API token you signed in with no longer works, so your session ended"}
)

func userEnded(u *User) *SessionEndedError {
	switch {
	case u.Removed:
		return userRemovedEnded
	case !u.Active:
		return userDeactivatedEnded
	}
	return nil
}

func tokenEnded(tok *Token, now time.Time) *SessionEndedError {
	if tok.Status != StatusActive {
		return tokenStoppedEnded
	}
	since := tok.InactiveSince()
	if tok.StatusChangedAt.After(since) {
		since = tok.StatusChangedAt
	}
	if now.Sub(since) > tok.InactivityWindow() {
		return tokenStoppedEnded
	}
	return nil
}

// CloseSession ends the session of a cookie's secret (signing out). Ending a
// session that is already over is not an error.
func (s *Service) CloseSession(ctx context.Context, secret string) error {
	if secret == "" {
		return nil
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		sess, err := tx.SessionByHash(hashSessionSecret(secret))
		if err != nil {
			return err
		}
		return tx.DeleteSession(sess.ID)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("close console session: %w", err)
	}
	return nil
}
