package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

var sessionPolicy = tokens.SessionPolicy{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}

// TestSessions runs the console session rules on SQLite, and on PostgreSQL
// when SCIMGATE_TEST_POSTGRES_DSN is set.
func TestSessions(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"OpenAndResume", testSessionOpenAndResume},
		{"Timeouts", testSessionTimeouts},
		{"OwnerChanges", testSessionOwnerChanges},
		{"TokenStops", testSessionTokenStops},
		{"Refusals", testSessionRefusals},
		{"Close", testSessionClose},
		{"StaleDeleted", testSessionStaleDeleted},
	}
	for _, dialect := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			if dialect == sqlstore.Postgres && os.Getenv(sqltest.EnvPostgresDSN) == "" {
				t.Skip(sqltest.EnvPostgresDSN + " not set: PostgreSQL store tests skipped")
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, newFixture(t, sqltest.Open(t, dialect)))
				})
			}
		})
	}
}

func (f *fixture) openSession(t *testing.T, u *tokens.User, tokenID string) (*tokens.Session, string) {
	t.Helper()
	method := tokens.SignInSSO
	if tokenID != "" {
		method = tokens.SignInToken
	}
	sess, secret, err := f.svc.OpenSession(context.Background(), u.OrgID, u.ID, method, tokenID, sessionPolicy)
	if err != nil {
		t.Fatal(err)
	}
	return sess, secret
}

// wantEnded checks that the secret's session is over for the given reason,
// and stays over (it was deleted, so the next load says "unknown").
func (f *fixture) wantEnded(t *testing.T, secret, reason string) {
	t.Helper()
	_, _, err := f.svc.ResumeSession(context.Background(), secret, sessionPolicy)
	var ended *tokens.SessionEndedError
	if !errors.As(err, &ended) || ended.Reason != reason {
		t.Fatalf("ResumeSession = %v, want the session ended with reason %q", err, reason)
	}
	if _, _, err := f.svc.ResumeSession(context.Background(), secret, sessionPolicy); !errors.As(err, &ended) || ended.Reason != "unknown" {
		t.Fatalf("ResumeSession after the end = %v, want reason unknown (the session deleted)", err)
	}
}

func testSessionOpenAndResume(t *testing.T, f *fixture) {
	ctx := context.Background()
	admins := &tokens.Group{OrgID: f.org.ID, DisplayName: "Admins", MemberIDs: []string{f.user.ID}}
	if err := f.svc.CreateGroup(ctx, tokens.Operator, admins); err != nil {
		t.Fatal(err)
	}
	sess, secret := f.openSession(t, f.user, "")
	if len(secret) < 40 || strings.Contains(secret, sess.ID) {
		t.Fatalf("session secret %q is too short or holds the public ID", secret)
	}
	if sess.Hash == ([32]byte{}) || sess.Method != tokens.SignInSSO || !sess.ExpiresAt.Equal(t0.Add(12*time.Hour)) {
		t.Errorf("OpenSession = %+v", sess)
	}
	got, id, err := f.svc.ResumeSession(ctx, secret, sessionPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != sess.ID || id.Kind != tokens.KindUser || id.OwnerID != f.user.ID || id.OwnerName != "alice" ||
		id.OrgName != "acme" || id.TokenID != "" || len(id.Groups) != 1 || id.Groups[0] != "Admins" {
		t.Errorf("ResumeSession = %+v, %+v", got, id)
	}
	if _, _, err := f.svc.ResumeSession(ctx, secret+"x", sessionPolicy); !errors.Is(err, tokens.ErrSessionUnknown) {
		t.Errorf("ResumeSession(wrong secret) = %v, want ErrSessionUnknown", err)
	}
	if _, _, err := f.svc.ResumeSession(ctx, "", sessionPolicy); !errors.Is(err, tokens.ErrSessionUnknown) {
		t.Errorf("ResumeSession(\"\") = %v, want ErrSessionUnknown", err)
	}
	// Only the hash is stored: the secret's hash finds it, nothing else does.
	events, err := f.svc.Audit(ctx, tokens.AuditFilter{OrgID: f.org.ID, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Action != "console.sign_in" || !strings.Contains(events[0].Actor, "alice") ||
		strings.Contains(events[0].Detail, secret) {
		t.Errorf("audit after sign-in = %+v, want console.sign_in by alice without the secret", events)
	}
}

func testSessionTimeouts(t *testing.T, f *fixture) {
	ctx := context.Background()
	_, idle := f.openSession(t, f.user, "")
	// Activity every 20 minutes keeps a 30-minute idle timeout at bay...
	for range 3 {
		f.clock.Add(20 * time.Minute)
		if _, _, err := f.svc.ResumeSession(ctx, idle, sessionPolicy); err != nil {
			t.Fatalf("after 20 minutes of idleness: %v", err)
		}
	}
	// ...and 30 minutes without any ends the session.
	f.clock.Add(30 * time.Minute)
	f.wantEnded(t, idle, "idle")

	_, busy := f.openSession(t, f.user, "")
	for elapsed := time.Duration(0); elapsed < 12*time.Hour-10*time.Minute; elapsed += 10 * time.Minute {
		f.clock.Add(10 * time.Minute)
		if _, _, err := f.svc.ResumeSession(ctx, busy, sessionPolicy); err != nil {
			t.Fatalf("after %v of activity: %v", elapsed, err)
		}
	}
	f.clock.Add(10 * time.Minute)
	f.wantEnded(t, busy, "expired")

	// A lower absolute timeout in the configuration applies to open sessions.
	_, secret := f.openSession(t, f.user, "")
	f.clock.Add(2 * time.Hour)
	shorter := tokens.SessionPolicy{Idle: 3 * time.Hour, Absolute: time.Hour}
	var ended *tokens.SessionEndedError
	if _, _, err := f.svc.ResumeSession(ctx, secret, shorter); !errors.As(err, &ended) || ended.Reason != "expired" {
		t.Errorf("two hours into a session with a one-hour limit: %v, want expired", err)
	}
}

func testSessionOwnerChanges(t *testing.T, f *fixture) {
	ctx := context.Background()
	bob := f.newUser(t, f.org.ID, "bob")
	_, aliceSecret := f.openSession(t, f.user, "")
	_, bobSecret := f.openSession(t, bob, "")
	if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	f.wantEnded(t, aliceSecret, "deactivated")
	if _, err := f.svc.RemoveUser(ctx, tokens.Operator, f.org.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	f.wantEnded(t, bobSecret, "removed")

	// Permissions follow the groups at every load.
	carol := f.newUser(t, f.org.ID, "carol")
	_, secret := f.openSession(t, carol, "")
	_, id, err := f.svc.ResumeSession(ctx, secret, sessionPolicy)
	if err != nil || len(id.Groups) != 0 {
		t.Fatalf("ResumeSession = %+v, %v", id, err)
	}
	g := &tokens.Group{OrgID: f.org.ID, DisplayName: "Ops", MemberIDs: []string{carol.ID}}
	if err := f.svc.CreateGroup(ctx, tokens.Operator, g); err != nil {
		t.Fatal(err)
	}
	if _, id, err = f.svc.ResumeSession(ctx, secret, sessionPolicy); err != nil || len(id.Groups) != 1 {
		t.Errorf("after joining a group: %+v, %v, want the group", id, err)
	}
}

func testSessionTokenStops(t *testing.T, f *fixture) {
	ctx := context.Background()
	tok, _ := f.userToken(t, f.user)
	sess, secret := f.openSession(t, f.user, tok.ID)
	_, id, err := f.svc.ResumeSession(ctx, secret, sessionPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Method != tokens.SignInToken || id.TokenID != tok.ID || id.DisplayPrefix != tok.DisplayPrefix {
		t.Errorf("session %+v identity %+v, want the token's", sess, id)
	}
	if err := f.svc.DeleteUserToken(ctx, tokens.Operator, f.org.ID, "", tok.ID); err != nil {
		t.Fatal(err)
	}
	f.wantEnded(t, secret, "token")

	// A token past its inactivity window stops the session too, before any
	// sweep marks it expired.
	tok, _ = f.userToken(t, f.user)
	long := tokens.SessionPolicy{Idle: 100 * 24 * time.Hour, Absolute: 100 * 24 * time.Hour}
	if _, secret, err = f.svc.OpenSession(ctx, f.org.ID, f.user.ID, tokens.SignInToken, tok.ID, long); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Duration(tok.InactivityDays)*24*time.Hour + time.Minute)
	var ended *tokens.SessionEndedError
	if _, _, err := f.svc.ResumeSession(ctx, secret, long); !errors.As(err, &ended) || ended.Reason != "token" {
		t.Errorf("session of a token unused past its window: %v, want reason token", err)
	}
}

func testSessionRefusals(t *testing.T, f *fixture) {
	ctx := context.Background()
	bob := f.newUser(t, f.org.ID, "bob")
	bobTok, _ := f.userToken(t, bob)
	svc, _ := f.serviceToken(t, f.org.ID)
	tests := []struct {
		name    string
		userID  string
		method  tokens.SignInMethod
		tokenID string
		p       tokens.SessionPolicy
	}{
		{"someone else's token", f.user.ID, tokens.SignInToken, bobTok.ID, sessionPolicy},
		{"a service token", f.user.ID, tokens.SignInToken, svc.ID, sessionPolicy},
		{"token method without a token", f.user.ID, tokens.SignInToken, "", sessionPolicy},
		{"sso with a token", f.user.ID, tokens.SignInSSO, bobTok.ID, sessionPolicy},
		{"unknown method", f.user.ID, "password", "", sessionPolicy},
		{"no timeouts", f.user.ID, tokens.SignInSSO, "", tokens.SessionPolicy{}},
		{"unknown user", "usr_nobody", tokens.SignInSSO, "", sessionPolicy},
	}
	for _, tt := range tests {
		if _, _, err := f.svc.OpenSession(ctx, f.org.ID, tt.userID, tt.method, tt.tokenID, tt.p); err == nil {
			t.Errorf("OpenSession(%s) succeeded, want an error", tt.name)
		}
	}
	if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.svc.OpenSession(ctx, f.org.ID, bob.ID, tokens.SignInSSO, "", sessionPolicy)
	var ended *tokens.SessionEndedError
	if !errors.As(err, &ended) || ended.Reason != "deactivated" {
		t.Errorf("OpenSession(deactivated user) = %v, want reason deactivated", err)
	}
}

func testSessionClose(t *testing.T, f *fixture) {
	ctx := context.Background()
	_, secret := f.openSession(t, f.user, "")
	_, other := f.openSession(t, f.user, "")
	if err := f.svc.CloseSession(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.ResumeSession(ctx, secret, sessionPolicy); !errors.Is(err, tokens.ErrSessionUnknown) {
		t.Errorf("ResumeSession after sign-out = %v, want ErrSessionUnknown", err)
	}
	if err := f.svc.CloseSession(ctx, secret); err != nil {
		t.Errorf("closing a closed session: %v, want nil", err)
	}
	if _, _, err := f.svc.ResumeSession(ctx, other, sessionPolicy); err != nil {
		t.Errorf("signing out of one session ended another: %v", err)
	}
}

func testSessionStaleDeleted(t *testing.T, f *fixture) {
	ctx := context.Background()
	for range 3 {
		f.openSession(t, f.user, "")
	}
	f.clock.Add(time.Hour) // past the idle timeout of all three
	f.openSession(t, f.user, "")
	var n int
	if err := f.s.DB().GetContext(ctx, &n, `SELECT count(*) FROM console_sessions`); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d sessions stored after opening one past the idle timeout of three others, want 1", n)
	}
}
