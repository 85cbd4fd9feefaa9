package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// TestStore runs the store suite on SQLite, and on PostgreSQL when
// SCIMGATE_TEST_POSTGRES_DSN is set; every test gets a fresh database.
func TestStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *sqlstore.Store)
	}{
		{"UserTokenLimit", testUserTokenLimit},
		{"ServiceTokenLimit", testServiceTokenLimit},
		{"WrongStates", testWrongStates},
		{"RegenerateRevoked", testRegenerateRevoked},
		{"UserNames", testUserNames},
		{"TwoOrgs", testTwoOrgs},
		{"Deactivation", testDeactivation},
		{"RemoveUser", testRemoveUser},
		{"LookupCredential", testLookupCredential},
		{"RecordUsage", testRecordUsage},
		{"InactiveTokens", testInactiveTokens},
		{"ExpireInactive", testExpireInactive},
		{"ChangeLog", testChangeLog},
		{"TokenHashes", testTokenHashes},
		{"ParallelUserTokens", testParallelUserTokens},
		{"ParallelServiceTokens", testParallelServiceTokens},
		{"Users", testUsers},
		{"Groups", testGroups},
		{"Audit", testAudit},
		{"TokenAnyOrg", testTokenAnyOrg},
		{"Rollback", testRollback},
		{"RoundTrip", testRoundTrip},
		{"Closed", testClosed},
		{"Notify", testNotify},
	}
	for _, dialect := range []string{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			if dialect == sqlstore.Postgres && os.Getenv(sqltest.EnvPostgresDSN) == "" {
				t.Skip(sqltest.EnvPostgresDSN + " not set: PostgreSQL store tests skipped")
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					s := sqltest.Open(t, dialect)
					if got := s.Dialect(); got != dialect {
						t.Fatalf("Dialect() = %q, want %q", got, dialect)
					}
					tt.fn(t, s)
				})
			}
		})
	}
}

// clock is a fake Service.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

type fixture struct {
	s     *sqlstore.Store
	svc   *tokens.Service
	clock *clock
	org   *tokens.Org
	user  *tokens.User // active, in org
}

func newFixture(t *testing.T, s *sqlstore.Store) *fixture {
	t.Helper()
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s, svc: tokens.NewService(s, policy), clock: &clock{now: t0}}
	f.svc.Now = f.clock.Now
	f.org = f.newOrg(t, "acme")
	f.user = f.newUser(t, f.org.ID, "alice")
	return f
}

func (f *fixture) newOrg(t *testing.T, name string) *tokens.Org {
	t.Helper()
	o, err := f.svc.CreateOrg(context.Background(), tokens.Operator, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (f *fixture) newUser(t *testing.T, orgID, name string) *tokens.User {
	t.Helper()
	u := &tokens.User{OrgID: orgID, UserName: name, Active: true,
		Emails: []tokens.Email{{Value: name + "@Example.com", Primary: true}}}
	if err := f.svc.CreateUser(context.Background(), tokens.Operator, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) userToken(t *testing.T, u *tokens.User) (*tokens.Token, tokens.Secret) {
	t.Helper()
	tok, sec, err := f.svc.CreateUserToken(context.Background(), tokens.Operator, u.OrgID, u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	return tok, sec
}

func (f *fixture) serviceToken(t *testing.T, orgID string) (*tokens.ServiceToken, tokens.Secret) {
	t.Helper()
	tok, sec, err := f.svc.CreateServiceToken(context.Background(), tokens.Operator, orgID, tokens.ServiceTokenSpec{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	return tok, sec
}

func (f *fixture) token(t *testing.T, id string) *tokens.Token {
	t.Helper()
	var tok *tokens.Token
	err := f.s.View(context.Background(), func(tx tokens.Tx) (err error) {
		tok, err = tx.Token("", id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantCode(t *testing.T, what string, err error, code tokens.Code) {
	t.Helper()
	if got := tokens.ErrorCode(err); err == nil || got != code {
		t.Fatalf("%s: error %v (code %s), want code %s", what, err, got, code)
	}
}

func testUserTokenLimit(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	var first *tokens.Token
	for i := range tokens.MaxActiveUserTokens {
		tok, _ := f.userToken(t, f.user)
		if i == 0 {
			first = tok
		}
	}
	_, _, err := f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, f.user.ID, "one too many")
	wantCode(t, "11th user token", err, tokens.LimitReached)
	if err := f.svc.DeleteUserToken(ctx, tokens.Operator, f.org.ID, f.user.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	f.userToken(t, f.user) // a deleted token frees its place
}

func testServiceTokenLimit(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	var first *tokens.ServiceToken
	for i := range tokens.MaxActiveServiceTokens {
		tok, _ := f.serviceToken(t, f.org.ID)
		if i == 0 {
			first = tok
		}
	}
	_, _, err := f.svc.CreateServiceToken(ctx, tokens.Operator, f.org.ID, tokens.ServiceTokenSpec{Name: "21st"})
	wantCode(t, "21st service token", err, tokens.LimitReached)
	// User tokens do not count toward the org's service tokens, and the
	// other way round.
	f.userToken(t, f.user)

	if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, f.org.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	f.serviceToken(t, f.org.ID) // a revoked token frees its place
	_, _, err = f.svc.RegenerateServiceToken(ctx, tokens.Operator, f.org.ID, first.ID)
	wantCode(t, "regenerate at the limit", err, tokens.LimitReached)
}

func testWrongStates(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	svcTok, _ := f.serviceToken(t, f.org.ID)
	_, _, err := f.svc.RegenerateServiceToken(ctx, tokens.Operator, f.org.ID, svcTok.ID)
	wantCode(t, "regenerate an active token", err, tokens.WrongState)
	err = f.svc.DeleteServiceToken(ctx, tokens.Operator, f.org.ID, svcTok.ID)
	wantCode(t, "delete an active service token", err, tokens.WrongState)

	if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, f.user.ID, "late")
	wantCode(t, "token for a deactivated user", err, tokens.WrongState)
	_, _, err = f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, "usr_missing", "x")
	wantCode(t, "token for a missing user", err, tokens.NotFound)
	_, _, err = f.svc.CreateServiceToken(ctx, tokens.Operator, "org_missing", tokens.ServiceTokenSpec{Name: "x"})
	wantCode(t, "service token in a missing org", err, tokens.NotFound)
}

func testRegenerateRevoked(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	tok, oldSecret := f.serviceToken(t, f.org.ID)
	if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, f.org.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	c, err := s.LookupCredential(ctx, oldSecret.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if c.Token.Status != tokens.StatusRevoked || c.Token.StatusReason != tokens.ReasonRevoked {
		t.Errorf("revoked token: status %s (%s), want revoked (revoked)", c.Token.Status, c.Token.StatusReason)
	}
	regen, newSecret, err := f.svc.RegenerateServiceToken(ctx, tokens.Operator, f.org.ID, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupCredential(ctx, oldSecret.Hash()); !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("LookupCredential(old secret) after regenerate: %v, want ErrNotFound", err)
	}
	c, err = s.LookupCredential(ctx, newSecret.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if c.Token.ID != tok.ID || c.Token.Status != tokens.StatusActive || c.Token.OwnerID != tok.OwnerID {
		t.Errorf("regenerated token: %+v, want active token %s of the same owner", c.Token, tok.ID)
	}
	if regen.DisplayPrefix != newSecret.DisplayPrefix() || c.Token.DisplayPrefix != newSecret.DisplayPrefix() {
		t.Errorf("display prefix %q, stored %q, want %q", regen.DisplayPrefix, c.Token.DisplayPrefix, newSecret.DisplayPrefix())
	}

	if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, f.org.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteServiceToken(ctx, tokens.Operator, f.org.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupCredential(ctx, newSecret.Hash()); !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("LookupCredential after delete: %v, want ErrNotFound", err)
	}
	err = s.View(ctx, func(tx tokens.Tx) error {
		_, err := tx.ServiceUser(f.org.ID, tok.OwnerID)
		return err
	})
	if !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("service user after deleting its token: %v, want ErrNotFound", err)
	}
}

func testUserNames(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	err := f.svc.CreateUser(ctx, tokens.Operator, &tokens.User{OrgID: f.org.ID, UserName: "ALICE", Active: true})
	wantCode(t, "user name in other letter case", err, tokens.Conflict)

	// The unique index holds even when the check before it is skipped.
	err = s.Update(ctx, func(tx tokens.Tx) error {
		return tx.CreateUser(&tokens.User{ID: "usr_dup", OrgID: f.org.ID, UserName: "Alice", Active: true})
	})
	wantCode(t, "CreateUser with a taken name", err, tokens.Conflict)
	if !strings.Contains(err.Error(), "user name is already taken") {
		t.Errorf("conflict message %q does not say what is taken", err)
	}
	err = s.Update(ctx, func(tx tokens.Tx) error {
		return tx.CreateOrg(&tokens.Org{ID: "org_dup", Name: "acme", UserTokenInactivityDays: 45})
	})
	wantCode(t, "CreateOrg with a taken name", err, tokens.Conflict)

	// A removed user frees the name.
	if _, err := f.svc.RemoveUser(ctx, tokens.Operator, f.org.ID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	again := f.newUser(t, f.org.ID, "Alice")
	got, err := f.svc.UserByName(ctx, f.org.ID, "aLiCe")
	if err != nil || got.ID != again.ID {
		t.Errorf("UserByName(aLiCe) = %v, %v, want the new user %s", got, err, again.ID)
	}
}

func testTwoOrgs(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	other := f.newOrg(t, "globex")
	alice2 := f.newUser(t, other.ID, "alice")
	for range tokens.MaxActiveUserTokens {
		f.userToken(t, f.user)
	}
	tok2, _ := f.userToken(t, alice2) // alice's limit in acme does not apply in globex
	toks, err := f.svc.UserTokens(ctx, other.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 1 || toks[0].ID != tok2.ID {
		t.Errorf("globex tokens = %v, want just %s", toks, tok2.ID)
	}
	if _, _, err := f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, alice2.ID, "x"); tokens.ErrorCode(err) != tokens.NotFound {
		t.Errorf("token for globex's alice in acme: %v, want not found", err)
	}
}

func testDeactivation(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	bob := f.newUser(t, f.org.ID, "bob")
	a1, sec1 := f.userToken(t, f.user)
	a2, _ := f.userToken(t, f.user)
	b1, _ := f.userToken(t, bob)
	svcTok, _ := f.serviceToken(t, f.org.ID)

	f.clock.Add(time.Hour)
	n, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("DeactivateUser expired %d tokens, want 2", n)
	}
	for _, id := range []string{a1.ID, a2.ID} {
		tok := f.token(t, id)
		if tok.Status != tokens.StatusExpired || tok.StatusReason != tokens.ReasonUserDeactivated || !tok.StatusChangedAt.Equal(t0.Add(time.Hour).Truncate(time.Microsecond)) {
			t.Errorf("alice's token %s: %s (%s) at %v, want expired (user_deactivated) at %v", id, tok.Status, tok.StatusReason, tok.StatusChangedAt, t0.Add(time.Hour))
		}
	}
	for _, id := range []string{b1.ID, svcTok.ID} {
		if tok := f.token(t, id); tok.Status != tokens.StatusActive {
			t.Errorf("token %s of someone else: %s, want active", id, tok.Status)
		}
	}
	c, err := s.LookupCredential(ctx, sec1.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if c.OwnerActive || c.OwnerRemoved {
		t.Errorf("credential of a deactivated user: OwnerActive %v, OwnerRemoved %v, want false, false", c.OwnerActive, c.OwnerRemoved)
	}
}

func testRemoveUser(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	bob := f.newUser(t, f.org.ID, "bob")
	g := &tokens.Group{OrgID: f.org.ID, DisplayName: "Admins", MemberIDs: []string{f.user.ID, bob.ID}}
	if err := f.svc.CreateGroup(ctx, tokens.Operator, g); err != nil {
		t.Fatal(err)
	}
	_, sec := f.userToken(t, f.user)
	n, err := f.svc.RemoveUser(ctx, tokens.Operator, f.org.ID, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("RemoveUser expired %d tokens, want 1", n)
	}
	got, err := f.svc.Group(ctx, f.org.ID, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.MemberIDs, []string{bob.ID}) {
		t.Errorf("members after removing alice = %v, want [%s]", got.MemberIDs, bob.ID)
	}
	c, err := s.LookupCredential(ctx, sec.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if c.OwnerActive || !c.OwnerRemoved || len(c.Groups) != 0 || c.Token.StatusReason != tokens.ReasonUserRemoved {
		t.Errorf("credential of a removed user: active %v removed %v groups %v reason %s, want false true [] user_removed",
			c.OwnerActive, c.OwnerRemoved, c.Groups, c.Token.StatusReason)
	}
	if _, err := f.svc.User(ctx, f.org.ID, f.user.ID); tokens.ErrorCode(err) != tokens.NotFound {
		t.Errorf("User(removed) = %v, want not found", err)
	}
	users, total, err := f.svc.Users(ctx, f.org.ID, tokens.UserFilter{})
	if err != nil || total != 1 || len(users) != 1 || users[0].ID != bob.ID {
		t.Errorf("Users = %v, %d, %v, want just bob", users, total, err)
	}
	users, total, err = f.svc.Users(ctx, f.org.ID, tokens.UserFilter{WithRemoved: true})
	removed := slices.IndexFunc(users, func(u tokens.User) bool { return u.ID == f.user.ID })
	if err != nil || total != 2 || len(users) != 2 || removed < 0 || !users[removed].Removed || users[removed].Active {
		t.Errorf("Users(WithRemoved) = %v, %d, %v, want removed alice and bob", users, total, err)
	}
}

func testLookupCredential(t *testing.T, s *sqlstore.Store) {
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{
		Permissions: []string{"orders.read"},
		Sets:        map[string][]string{"reader": {"orders.read"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s)
	f.svc = tokens.NewService(s, policy)
	f.svc.Now = f.clock.Now
	ctx := context.Background()
	for _, name := range []string{"zeta", "Alpha", "beta"} {
		members := []string{f.user.ID}
		if name == "beta" {
			members = nil
		}
		if err := f.svc.CreateGroup(ctx, tokens.Operator, &tokens.Group{OrgID: f.org.ID, DisplayName: name, MemberIDs: members}); err != nil {
			t.Fatal(err)
		}
	}
	tok, sec := f.userToken(t, f.user)
	c, err := s.LookupCredential(ctx, sec.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if c.Token.ID != tok.ID || c.Token.Hash != sec.Hash() || c.Token.Kind != tokens.KindUser || c.Token.OwnerID != f.user.ID ||
		c.Token.InactivityDays != tokens.DefaultInactivityDays || !c.Token.CreatedAt.Equal(t0.Truncate(time.Microsecond)) ||
		!c.Token.LastUsedAt.IsZero() {
		t.Errorf("credential token = %+v, want %+v", c.Token, tok)
	}
	if c.OrgName != "acme" || c.OwnerName != "alice" || !c.OwnerActive || c.OwnerRemoved || c.PermissionSets != nil {
		t.Errorf("credential = org %q owner %q active %v removed %v sets %v, want acme alice true false nil",
			c.OrgName, c.OwnerName, c.OwnerActive, c.OwnerRemoved, c.PermissionSets)
	}
	if want := []string{"Alpha", "zeta"}; !slices.Equal(c.Groups, want) {
		t.Errorf("credential groups = %q, want %q", c.Groups, want)
	}

	_, ssec, err := f.svc.CreateServiceToken(ctx, tokens.Operator, f.org.ID, tokens.ServiceTokenSpec{
		Name: "deployer", PermissionSets: []string{"reader", tokens.PermTokens}})
	if err != nil {
		t.Fatal(err)
	}
	c, err = s.LookupCredential(ctx, ssec.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if c.OwnerName != "deployer" || !c.OwnerActive || c.Groups != nil || c.Token.Kind != tokens.KindService ||
		!slices.Equal(c.PermissionSets, []string{tokens.PermTokens, "reader"}) {
		t.Errorf("service credential = owner %q active %v groups %v kind %s sets %q, want deployer true nil service [%s reader]",
			c.OwnerName, c.OwnerActive, c.Groups, c.Token.Kind, c.PermissionSets, tokens.PermTokens)
	}
	if _, err := s.LookupCredential(ctx, tokens.NewSecret(tokens.KindUser).Hash()); !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("LookupCredential(unknown) = %v, want ErrNotFound", err)
	}
}

func testRecordUsage(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	tok1, sec1 := f.userToken(t, f.user)
	tok2, _ := f.userToken(t, f.user)
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)

	if err := s.RecordUsage(ctx, nil); err != nil {
		t.Fatalf("RecordUsage(nil) = %v", err)
	}
	if err := s.RecordUsage(ctx, []tokens.Usage{{TokenID: tok1.ID, LastUsed: t2, Count: 3}}); err != nil {
		t.Fatal(err)
	}
	// An earlier time than the stored one does not win; counts add up, also
	// for a token named twice in one batch; unknown tokens are ignored.
	err := s.RecordUsage(ctx, []tokens.Usage{
		{TokenID: tok1.ID, LastUsed: t1, Count: 2},
		{TokenID: tok2.ID, LastUsed: t1, Count: 1},
		{TokenID: "tok_gone", LastUsed: t1, Count: 1},
		{TokenID: tok2.ID, LastUsed: t0, Count: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id    string
		last  time.Time
		count int64
	}{{tok1.ID, t2, 5}, {tok2.ID, t1, 5}} {
		tok := f.token(t, tt.id)
		if !tok.LastUsedAt.Equal(tt.last.Truncate(time.Microsecond)) || tok.UseCount != tt.count || tok.LastUsedAt.Location() != time.UTC {
			t.Errorf("token %s: last used %v, count %d, want %v, %d", tt.id, tok.LastUsedAt, tok.UseCount, tt.last, tt.count)
		}
	}
	// A batch larger than one statement's parameters allow.
	var big []tokens.Usage
	for i := range 2500 {
		big = append(big, tokens.Usage{TokenID: fmt.Sprintf("tok_%d", i), LastUsed: t2, Count: 1})
	}
	big = append(big, tokens.Usage{TokenID: tok2.ID, LastUsed: t2.Add(time.Minute), Count: 1})
	if err := s.RecordUsage(ctx, big); err != nil {
		t.Fatal(err)
	}
	if tok := f.token(t, tok2.ID); !tok.LastUsedAt.Equal(t2.Add(time.Minute).Truncate(time.Microsecond)) || tok.UseCount != 6 {
		t.Errorf("after a big batch: last used %v, count %d, want %v, 6", tok.LastUsedAt, tok.UseCount, t2.Add(time.Minute))
	}
	c, err := s.LookupCredential(ctx, sec1.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Token.LastUsedAt.Equal(t2.Truncate(time.Microsecond)) || c.Token.UseCount != 5 {
		t.Errorf("credential: last used %v, count %d, want %v, 5", c.Token.LastUsedAt, c.Token.UseCount, t2)
	}
}

func testInactiveTokens(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	tok, _ := f.userToken(t, f.user) // created at t0, 45 days
	window := time.Duration(tok.InactivityDays) * 24 * time.Hour
	inactive := func(now time.Time) bool {
		t.Helper()
		var toks []tokens.Token
		err := s.View(ctx, func(tx tokens.Tx) (err error) {
			toks, err = tx.InactiveTokens(now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(toks, func(x tokens.Token) bool { return x.ID == tok.ID })
	}
	start := t0.Truncate(time.Microsecond)
	if inactive(start.Add(window)) {
		t.Error("inactive exactly when the window ends, want still active")
	}
	if !inactive(start.Add(window + time.Microsecond)) {
		t.Error("not inactive a microsecond after the window, want inactive")
	}
	used := t0.Add(10 * 24 * time.Hour)
	if err := s.RecordUsage(ctx, []tokens.Usage{{TokenID: tok.ID, LastUsed: used, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if inactive(start.Add(window + time.Microsecond)) {
		t.Error("inactive though used 10 days after creation")
	}
	if !inactive(used.Truncate(time.Microsecond).Add(window + time.Microsecond)) {
		t.Error("not inactive a window after its last use")
	}
	if err := f.svc.DeleteUserToken(ctx, tokens.Operator, f.org.ID, "", tok.ID); err != nil {
		t.Fatal(err)
	}
	if inactive(t0.Add(1000 * 24 * time.Hour)) {
		t.Error("a deleted token is inactive")
	}
}

func testExpireInactive(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	userTok, _ := f.userToken(t, f.user) // 45 days
	days31 := 31
	svcTok, _, err := f.svc.CreateServiceToken(ctx, tokens.Operator, f.org.ID, tokens.ServiceTokenSpec{Name: "ci", InactivityDays: days31})
	if err != nil {
		t.Fatal(err)
	}
	usedTok, _ := f.userToken(t, f.user)
	if err := s.RecordUsage(ctx, []tokens.Usage{{TokenID: usedTok.ID, LastUsed: t0.Add(40 * 24 * time.Hour), Count: 1}}); err != nil {
		t.Fatal(err)
	}

	f.clock.Add(31*24*time.Hour + time.Second)
	// A use in some replica's memory, not yet written, could be a second
	// old: within the grace, nothing expires.
	if n, err := f.svc.ExpireInactive(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("ExpireInactive a second after 31 days, with a minute's grace = %d, %v, want 0", n, err)
	}
	if n, err := f.svc.ExpireInactive(ctx, 0); err != nil || n != 1 {
		t.Fatalf("ExpireInactive after 31 days = %d, %v, want 1", n, err)
	}
	if tok := f.token(t, svcTok.ID); tok.Status != tokens.StatusExpired || tok.StatusReason != tokens.ReasonInactivity {
		t.Errorf("31-day service token: %s (%s), want expired (inactivity)", tok.Status, tok.StatusReason)
	}
	f.clock.Add(14 * 24 * time.Hour)
	if n, err := f.svc.ExpireInactive(ctx, 0); err != nil || n != 1 {
		t.Fatalf("ExpireInactive after 45 days = %d, %v, want 1", n, err)
	}
	if tok := f.token(t, userTok.ID); tok.Status != tokens.StatusExpired || tok.StatusReason != tokens.ReasonInactivity {
		t.Errorf("unused user token: %s (%s), want expired (inactivity)", tok.Status, tok.StatusReason)
	}
	if tok := f.token(t, usedTok.ID); tok.Status != tokens.StatusActive {
		t.Errorf("user token used on day 40: %s, want active", tok.Status)
	}
	if n, err := f.svc.ExpireInactive(ctx, 0); err != nil || n != 0 {
		t.Errorf("ExpireInactive again = %d, %v, want 0", n, err)
	}
}

// testTokenHashes pages through every stored token's hash, whatever its
// status, in byte order.
func testTokenHashes(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	want := map[tokens.Hash]bool{}
	for range 5 {
		tok, _ := f.userToken(t, f.user)
		want[tok.Hash] = true
	}
	st, _ := f.serviceToken(t, f.org.ID)
	if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, f.org.ID, st.ID); err != nil {
		t.Fatal(err)
	}
	want[st.Hash] = true // revoked, still stored
	var got []tokens.Hash
	var after tokens.Hash
	for pages := 0; ; pages++ {
		page, err := s.TokenHashes(ctx, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 4 || pages > 3 {
			t.Fatalf("TokenHashes(limit 4) returned %d hashes on page %d", len(page), pages)
		}
		got = append(got, page...)
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1]
	}
	if len(got) != len(want) {
		t.Fatalf("TokenHashes listed %d hashes, want %d", len(got), len(want))
	}
	for i, h := range got {
		if !want[h] {
			t.Errorf("TokenHashes listed a hash of no token: %x", h[:4])
		}
		if i > 0 && bytes.Compare(got[i-1][:], h[:]) >= 0 {
			t.Errorf("TokenHashes out of order at %d", i)
		}
	}
}

func testChangeLog(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	var committed []tokens.Change
	f.svc.OnCommit = func(c []tokens.Change) { committed = append(committed, c...) }
	if last, err := s.LastChange(ctx); err != nil || last != 0 {
		t.Fatalf("LastChange of an empty log = %d, %v, want 0", last, err)
	}
	svcTok, _ := f.serviceToken(t, f.org.ID)
	userTok, _ := f.userToken(t, f.user)
	if err := f.svc.RevokeServiceToken(ctx, tokens.Operator, f.org.ID, svcTok.ID); err != nil {
		t.Fatal(err)
	}
	regenerated, _, err := f.svc.RegenerateServiceToken(ctx, tokens.Operator, f.org.ID, svcTok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteUserToken(ctx, tokens.Operator, f.org.ID, "", userTok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	all, err := s.ChangesSince(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Creations, regenerations and deletions carry the index keys of the
	// hashes they add and remove (keys above 2^63 included: they are
	// stored as signed 64 bits).
	svcKey, userKey, newKey := tokens.IndexKey(svcTok.Hash), tokens.IndexKey(userTok.Hash), tokens.IndexKey(regenerated.Hash)
	want := []tokens.Change{
		{TokenID: svcTok.ID, Added: svcKey}, {TokenID: userTok.ID, Added: userKey},
		{TokenID: svcTok.ID}, {TokenID: svcTok.ID, Removed: svcKey, Added: newKey},
		{TokenID: userTok.ID, Removed: userKey}, {OwnerID: f.user.ID},
	}
	if len(all) != len(want) {
		t.Fatalf("ChangesSince(0) = %+v, want %d changes", all, len(want))
	}
	for i, c := range all {
		if c.TokenID != want[i].TokenID || c.OwnerID != want[i].OwnerID || c.Added != want[i].Added ||
			c.Removed != want[i].Removed || !c.At.Equal(t0.Truncate(time.Microsecond)) {
			t.Errorf("change %d = %+v, want %+v at %v", i, c, want[i], t0)
		}
		if i > 0 && c.Seq <= all[i-1].Seq {
			t.Errorf("change %d has seq %d after %d", i, c.Seq, all[i-1].Seq)
		}
		if committed[i].Seq != c.Seq {
			t.Errorf("OnCommit change %d has seq %d, the log %d", i, committed[i].Seq, c.Seq)
		}
	}
	if last, err := s.LastChange(ctx); err != nil || last != all[len(all)-1].Seq {
		t.Errorf("LastChange = %d, %v, want %d", last, err, all[len(all)-1].Seq)
	}
	if got, err := s.ChangesSince(ctx, all[0].Seq, 1); err != nil || len(got) != 1 || got[0].Seq != all[1].Seq {
		t.Errorf("ChangesSince(%d, 1) = %+v, %v, want change %d", all[0].Seq, got, err, all[1].Seq)
	}
	// A rolled back transaction leaves no change behind.
	err = s.Update(ctx, func(tx tokens.Tx) error {
		if err := tx.AppendChange(&tokens.Change{TokenID: "tok_x", At: t0}); err != nil {
			return err
		}
		return errors.New("changed my mind")
	})
	if err == nil {
		t.Fatal("Update returned nil for a failing fn")
	}
	if got, err := s.ChangesSince(ctx, all[len(all)-1].Seq, 0); err != nil || len(got) != 0 {
		t.Errorf("changes after a rollback = %+v, %v, want none", got, err)
	}
}

// parallel runs n calls of create at once and counts successes and
// LimitReached refusals; any other error fails the test.
func parallel(t *testing.T, n int, create func() error) (ok, refused int) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			err := create()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case tokens.ErrorCode(err) == tokens.LimitReached:
				refused++
			default:
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("parallel create: %v", err)
	}
	return ok, refused
}

func testParallelUserTokens(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	ok, refused := parallel(t, 30, func() error {
		_, _, err := f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, f.user.ID, "parallel")
		return err
	})
	if ok != tokens.MaxActiveUserTokens || refused != 30-tokens.MaxActiveUserTokens {
		t.Errorf("30 parallel user tokens: %d created, %d refused, want %d and %d", ok, refused, tokens.MaxActiveUserTokens, 30-tokens.MaxActiveUserTokens)
	}

	if s.Dialect() != sqlstore.SQLite {
		return
	}
	// A second process on the same file (a CLI next to the server) does
	// not share the first one's writer queue: SQLite's own lock and its
	// busy timeout must keep the limit, and no "database is locked" may
	// surface.
	bob := f.newUser(t, f.org.ID, "bob")
	var dbPath string
	if err := s.DB().GetContext(ctx, &dbPath, `SELECT file FROM pragma_database_list WHERE name = 'main'`); err != nil {
		t.Fatal(err)
	}
	other, err := sqlstore.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	services := []*tokens.Service{f.svc, tokens.NewService(other, policy)}
	var i int
	var mu sync.Mutex
	ok, refused = parallel(t, 30, func() error {
		mu.Lock()
		svc := services[i%2]
		i++
		mu.Unlock()
		_, _, err := svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, bob.ID, "two processes")
		return err
	})
	if ok != tokens.MaxActiveUserTokens || refused != 30-tokens.MaxActiveUserTokens {
		t.Errorf("30 parallel user tokens from two stores: %d created, %d refused, want %d and %d", ok, refused, tokens.MaxActiveUserTokens, 30-tokens.MaxActiveUserTokens)
	}
}

func testParallelServiceTokens(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	ok, refused := parallel(t, 40, func() error {
		_, _, err := f.svc.CreateServiceToken(ctx, tokens.Operator, f.org.ID, tokens.ServiceTokenSpec{Name: "parallel"})
		return err
	})
	if ok != tokens.MaxActiveServiceTokens || refused != 40-tokens.MaxActiveServiceTokens {
		t.Errorf("40 parallel service tokens: %d created, %d refused, want %d and %d", ok, refused, tokens.MaxActiveServiceTokens, 40-tokens.MaxActiveServiceTokens)
	}
	n := 0
	err := s.View(ctx, func(tx tokens.Tx) (err error) {
		n, err = tx.CountTokens(tokens.TokenFilter{OrgID: f.org.ID, Kind: tokens.KindService, Status: tokens.StatusActive})
		return err
	})
	if err != nil || n != tokens.MaxActiveServiceTokens {
		t.Errorf("active service tokens = %d, %v, want %d", n, err, tokens.MaxActiveServiceTokens)
	}
}

func testUsers(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	var names []string
	for i := range 4 {
		f.clock.Add(time.Second) // distinct creation times: a stable order
		u := f.newUser(t, f.org.ID, fmt.Sprintf("user%d", i))
		names = append(names, u.UserName)
	}
	carol := &tokens.User{OrgID: f.org.ID, UserName: "carol", ExternalID: "okta-42", Active: true,
		Emails: []tokens.Email{{Value: "Carol@Example.COM", Type: "work"}, {Value: "c@home.example"}}}
	f.clock.Add(time.Second)
	if err := f.svc.CreateUser(ctx, tokens.Operator, carol); err != nil {
		t.Fatal(err)
	}
	userNames := func(us []tokens.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.UserName)
		}
		return out
	}
	tests := []struct {
		f     tokens.UserFilter
		want  []string
		total int
	}{
		{tokens.UserFilter{}, append(append([]string{"alice"}, names...), "carol"), 6},
		{tokens.UserFilter{Offset: 1, Count: 2}, names[:2], 6},
		{tokens.UserFilter{Offset: 5}, []string{"carol"}, 6},
		{tokens.UserFilter{Offset: 9, Count: 2}, nil, 6},
		{tokens.UserFilter{UserName: "CAROL"}, []string{"carol"}, 1},
		{tokens.UserFilter{ExternalID: "okta-42"}, []string{"carol"}, 1},
		{tokens.UserFilter{Email: "carol@example.com"}, []string{"carol"}, 1},
		{tokens.UserFilter{Email: "C@HOME.example"}, []string{"carol"}, 1},
		{tokens.UserFilter{Email: "example.com"}, nil, 0},
		{tokens.UserFilter{Email: "%"}, nil, 0},
	}
	for _, tt := range tests {
		got, total, err := f.svc.Users(ctx, f.org.ID, tt.f)
		if err != nil || total != tt.total || !slices.Equal(userNames(got), tt.want) {
			t.Errorf("Users(%+v) = %q, %d, %v, want %q, %d", tt.f, userNames(got), total, err, tt.want, tt.total)
		}
	}
	got, err := f.svc.User(ctx, f.org.ID, carol.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Emails, carol.Emails) || got.ExternalID != "okta-42" || got.Version != 1 {
		t.Errorf("User(carol) = %+v, want %+v", got, carol)
	}
	// New addresses replace the old ones in the search.
	carol.Emails = []tokens.Email{{Value: "carol@new.example"}}
	if _, err := f.svc.ReplaceUser(ctx, tokens.Operator, carol, 1); err != nil {
		t.Fatal(err)
	}
	for email, want := range map[string]int{"carol@example.com": 0, "Carol@New.Example": 1} {
		if _, total, err := f.svc.Users(ctx, f.org.ID, tokens.UserFilter{Email: email}); err != nil || total != want {
			t.Errorf("Users(Email %q) after an update: %d, %v, want %d", email, total, err, want)
		}
	}
	_, err = f.svc.ReplaceUser(ctx, tokens.Operator, carol, 1)
	wantCode(t, "ReplaceUser at an old version", err, tokens.VersionChanged)
}

func testGroups(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	ctx := context.Background()
	bob := f.newUser(t, f.org.ID, "bob")
	admins := &tokens.Group{OrgID: f.org.ID, DisplayName: "Admins", ExternalID: "ext-1", MemberIDs: []string{bob.ID, f.user.ID}}
	devs := &tokens.Group{OrgID: f.org.ID, DisplayName: "devs", MemberIDs: []string{bob.ID}}
	for _, g := range []*tokens.Group{admins, devs} {
		f.clock.Add(time.Second)
		if err := f.svc.CreateGroup(ctx, tokens.Operator, g); err != nil {
			t.Fatal(err)
		}
	}
	err := f.svc.CreateGroup(ctx, tokens.Operator, &tokens.Group{OrgID: f.org.ID, DisplayName: "ADMINS"})
	wantCode(t, "group name in other letter case", err, tokens.Conflict)
	err = s.Update(ctx, func(tx tokens.Tx) error {
		return tx.CreateGroup(&tokens.Group{ID: "grp_dup", OrgID: f.org.ID, DisplayName: "DEVS"})
	})
	wantCode(t, "CreateGroup with a taken name", err, tokens.Conflict)

	got, err := f.svc.Group(ctx, f.org.ID, admins.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values([]string{bob.ID, f.user.ID})); !slices.Equal(got.MemberIDs, want) || got.ExternalID != "ext-1" {
		t.Errorf("Group(admins) = %+v, want members %v", got, want)
	}
	for _, tt := range []struct {
		f    tokens.GroupFilter
		want []string
	}{
		{tokens.GroupFilter{}, []string{"Admins", "devs"}},
		{tokens.GroupFilter{MemberID: f.user.ID}, []string{"Admins"}},
		{tokens.GroupFilter{MemberID: bob.ID}, []string{"Admins", "devs"}},
		{tokens.GroupFilter{DisplayName: "DEVS"}, []string{"devs"}},
		{tokens.GroupFilter{ExternalID: "ext-1"}, []string{"Admins"}},
		{tokens.GroupFilter{Offset: 1, Count: 1}, []string{"devs"}},
	} {
		gs, _, err := f.svc.Groups(ctx, f.org.ID, tt.f)
		var names []string
		for _, g := range gs {
			names = append(names, g.DisplayName)
		}
		if err != nil || !slices.Equal(names, tt.want) {
			t.Errorf("Groups(%+v) = %q, %v, want %q", tt.f, names, err, tt.want)
		}
	}
	groupsOf := func(userID string) []string {
		t.Helper()
		var names []string
		err := s.View(ctx, func(tx tokens.Tx) (err error) {
			names, err = tx.GroupsOfUser(userID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if got := groupsOf(bob.ID); !slices.Equal(got, []string{"Admins", "devs"}) {
		t.Errorf("GroupsOfUser(bob) = %q, want [Admins devs]", got)
	}

	// Replacing the members replaces the rows.
	devs.MemberIDs = []string{f.user.ID}
	if err := f.svc.ReplaceGroup(ctx, tokens.Operator, devs, 1); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(bob.ID); !slices.Equal(got, []string{"Admins"}) {
		t.Errorf("GroupsOfUser(bob) after leaving devs = %q, want [Admins]", got)
	}
	if err := f.svc.DeleteGroup(ctx, tokens.Operator, f.org.ID, admins.ID); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(bob.ID); len(got) != 0 {
		t.Errorf("GroupsOfUser(bob) after deleting admins = %q, want none", got)
	}
	if _, err := f.svc.Group(ctx, f.org.ID, admins.ID); tokens.ErrorCode(err) != tokens.NotFound {
		t.Errorf("Group(deleted) = %v, want not found", err)
	}
	err = s.Update(ctx, func(tx tokens.Tx) error { return tx.DeleteGroup(f.org.ID, admins.ID) })
	if !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("DeleteGroup(deleted) = %v, want ErrNotFound", err)
	}
}

func testAudit(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	err := s.Update(ctx, func(tx tokens.Tx) error {
		for i := range 120 {
			org, target := "org_a", fmt.Sprintf("t%d", i%3)
			if i%2 == 1 {
				org = "org_b"
			}
			e := &tokens.AuditEvent{OrgID: org, At: t0.Add(time.Duration(i) * time.Second), Actor: "operator",
				Action: "test", Target: target, Detail: fmt.Sprint(i)}
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
			if e.ID == 0 {
				return errors.New("AppendAudit left ID 0")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	audit := func(f tokens.AuditFilter) []tokens.AuditEvent {
		t.Helper()
		var events []tokens.AuditEvent
		err := s.View(ctx, func(tx tokens.Tx) (err error) {
			events, err = tx.Audit(f)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return events
	}
	all := audit(tokens.AuditFilter{})
	if len(all) != 100 || all[0].Detail != "119" || all[99].Detail != "20" || !all[0].At.Equal(t0.Add(119*time.Second).Truncate(time.Microsecond)) {
		t.Errorf("Audit() = %d events from %q to %q, want the newest 100, 119 to 20", len(all), all[0].Detail, all[len(all)-1].Detail)
	}
	some := audit(tokens.AuditFilter{OrgID: "org_a", Target: "t0", Limit: 3})
	var details []string
	for _, e := range some {
		details = append(details, e.Detail)
		if e.OrgID != "org_a" || e.Target != "t0" {
			t.Errorf("Audit(org_a, t0) returned %+v", e)
		}
	}
	if want := []string{"114", "108", "102"}; !slices.Equal(details, want) {
		t.Errorf("Audit(org_a, t0, 3) = %q, want %q", details, want)
	}
}

func testTokenAnyOrg(t *testing.T, s *sqlstore.Store) {
	f := newFixture(t, s)
	other := f.newOrg(t, "globex")
	tok, _ := f.userToken(t, f.user)
	err := s.View(context.Background(), func(tx tokens.Tx) error {
		if got, err := tx.Token("", tok.ID); err != nil || got.ID != tok.ID {
			t.Errorf("Token(\"\", %s) = %v, %v", tok.ID, got, err)
		}
		if got, err := tx.Token(f.org.ID, tok.ID); err != nil || got.OrgID != f.org.ID {
			t.Errorf("Token(acme, %s) = %v, %v", tok.ID, got, err)
		}
		if _, err := tx.Token(other.ID, tok.ID); !errors.Is(err, tokens.ErrNotFound) {
			t.Errorf("Token(globex, acme's token) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testRollback(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx tokens.Tx) error {
		if err := tx.CreateOrg(&tokens.Org{ID: "org_1", Name: "one", CreatedAt: t0}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Update = %v, want fn's error", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "panic in fn" {
				t.Errorf("recovered %v, want fn's panic", p)
			}
		}()
		s.Update(ctx, func(tx tokens.Tx) error {
			if err := tx.CreateOrg(&tokens.Org{ID: "org_2", Name: "two", CreatedAt: t0}); err != nil {
				return err
			}
			panic("panic in fn")
		})
	}()
	var orgs []tokens.Org
	err = s.View(ctx, func(tx tokens.Tx) (err error) {
		orgs, err = tx.Orgs()
		return err
	})
	if err != nil || len(orgs) != 0 {
		t.Errorf("orgs after two rolled back transactions = %v, %v, want none", orgs, err)
	}
	// The store still works: the connections went back clean.
	if err := s.Update(ctx, func(tx tokens.Tx) error {
		return tx.CreateOrg(&tokens.Org{ID: "org_3", Name: "three", CreatedAt: t0})
	}); err != nil {
		t.Fatal(err)
	}
}

func testRoundTrip(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	local := time.FixedZone("UTC+2", 2*60*60)
	created := time.Date(2026, 1, 2, 3, 4, 5, 6007008, local)
	o := &tokens.Org{ID: "org_rt", Name: "rt", UserTokenInactivityDays: 7, CreatedAt: created}
	su := &tokens.ServiceUser{ID: "svc_rt", OrgID: o.ID, Name: "robot", CreatedAt: created}
	tok := &tokens.Token{ID: "tok_rt", OrgID: o.ID, Kind: tokens.KindService, OwnerID: su.ID, Name: "robot",
		DisplayPrefix: "sgs_abcd", Hash: tokens.NewSecret(tokens.KindService).Hash(), InactivityDays: 31,
		Status: tokens.StatusActive, StatusChangedAt: created, CreatedAt: created}
	err := s.Update(ctx, func(tx tokens.Tx) error {
		if err := tx.CreateOrg(o); err != nil {
			return err
		}
		if err := tx.CreateServiceUser(su); err != nil {
			return err
		}
		return tx.CreateToken(tok)
	})
	if err != nil {
		t.Fatal(err)
	}
	var got *tokens.Token
	var gotSU *tokens.ServiceUser
	var gotOrg *tokens.Org
	err = s.View(ctx, func(tx tokens.Tx) (err error) {
		if got, err = tx.Token(o.ID, tok.ID); err != nil {
			return err
		}
		if gotOrg, err = tx.OrgByName("rt"); err != nil {
			return err
		}
		gotSU, err = tx.ServiceUser(o.ID, su.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := *tok
	want.CreatedAt = created.UTC().Truncate(time.Microsecond)
	want.StatusChangedAt = want.CreatedAt
	if *got != want {
		t.Errorf("token round trip:\n got %+v\nwant %+v", *got, want)
	}
	if !got.LastUsedAt.IsZero() {
		t.Errorf("LastUsedAt of a new token = %v, want zero", got.LastUsedAt)
	}
	if gotOrg.CreatedAt != want.CreatedAt || gotOrg.ID != o.ID || gotOrg.UserTokenInactivityDays != 7 {
		t.Errorf("org round trip = %+v", gotOrg)
	}
	if gotSU.Name != "robot" || len(gotSU.PermissionSets) != 0 || gotSU.CreatedAt != want.CreatedAt {
		t.Errorf("service user round trip = %+v", gotSU)
	}
	// A second token with the same secret breaks the unique hash.
	err = s.Update(ctx, func(tx tokens.Tx) error {
		dup := *tok
		dup.ID = "tok_dup"
		return tx.CreateToken(&dup)
	})
	wantCode(t, "CreateToken with a taken hash", err, tokens.Conflict)
	// Missing rows.
	err = s.Update(ctx, func(tx tokens.Tx) error {
		missing := *tok
		missing.ID = "tok_missing"
		return tx.UpdateToken(&missing)
	})
	if !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("UpdateToken(missing) = %v, want ErrNotFound", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Errorf("Migrate twice: %v", err)
	}
}

func testClosed(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	s.Close()
	if err := s.Ping(ctx); !errors.Is(err, tokens.ErrUnavailable) {
		t.Errorf("Ping on a closed store = %v, want ErrUnavailable", err)
	}
	if _, err := s.LookupCredential(ctx, tokens.Hash{}); !errors.Is(err, tokens.ErrUnavailable) {
		t.Errorf("LookupCredential on a closed store = %v, want ErrUnavailable", err)
	}
	if err := s.Update(ctx, func(tokens.Tx) error { return nil }); !errors.Is(err, tokens.ErrUnavailable) {
		t.Errorf("Update on a closed store = %v, want ErrUnavailable", err)
	}
}

// testNotify checks that a committed change is announced on NotifyChannel
// with its sequence number.
func testNotify(t *testing.T, s *sqlstore.Store) {
	if s.Dialect() != sqlstore.Postgres {
		t.Skip("LISTEN/NOTIFY is PostgreSQL's")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The channel is database-wide: other tests' changes arrive too.
	conn, err := pgx.Connect(ctx, os.Getenv(sqltest.EnvPostgresDSN))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+sqlstore.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	var c tokens.Change
	err = s.Update(ctx, func(tx tokens.Tx) error {
		c = tokens.Change{TokenID: "tok_notify", At: t0}
		return tx.AppendChange(&c)
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("no notification with payload %d: %v", c.Seq, err)
		}
		if n.Payload == fmt.Sprint(c.Seq) {
			return
		}
	}
}
