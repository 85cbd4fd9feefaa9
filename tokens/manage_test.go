package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The caller-aware management rules (tokens.Manager), on SQLite and on
// PostgreSQL when SCIMGATE_TEST_POSTGRES_DSN is set.

// mgmtFixture is an org with three people and service tokens of different
// powers:
//
//   - alice is in "Token Admins": platform.tokens and api.read
//   - bob is in no group: no permission at all
//   - carol is in "HR": platform.users
//   - bootstrap holds the built-in permissions (platform.users, .groups, .tokens)
//   - reader holds api.read; tokadmin holds platform.tokens only
type mgmtFixture struct {
	svc  *tokens.Service
	auth *tokens.Authenticator
	org  *tokens.Org
	now  atomic.Pointer[time.Time]

	alice, bob, carol        *tokens.User
	aliceTok, bobTok, carTok string
	bootstrap, reader, admin string // plaintexts
	bootstrapID, readerID    string
}

func newMgmtFixture(t *testing.T, dialect string) *mgmtFixture {
	t.Helper()
	ctx := context.Background()
	store := sqltest.Open(t, dialect)
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{
		Permissions: []string{"api.read", "api.write"},
		Sets: map[string][]string{
			"reader":      {"api.read"},
			"writer":      {"api.read", "api.write"},
			"token-admin": {tokens.PermTokens},
		},
		GroupSets: map[string][]string{
			"Token Admins": {"token-admin", "reader"},
			"HR":           {tokens.PermUsers},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &mgmtFixture{svc: tokens.NewService(store, policy)}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.now.Store(&start)
	clock := func() time.Time { return *f.now.Load() }
	f.svc.Now = clock
	f.auth = tokens.NewAuthenticator(store, policy, tokens.AuthOptions{Now: clock})
	f.svc.OnCommit = f.auth.Apply
	if f.org, err = f.svc.CreateOrg(ctx, tokens.Operator, "acme", 0); err != nil {
		t.Fatal(err)
	}
	f.alice = f.person(t, "alice")
	f.bob = f.person(t, "bob")
	f.carol = f.person(t, "carol")
	f.group(t, "Token Admins", f.alice)
	f.group(t, "HR", f.carol)
	f.aliceTok = f.userToken(t, f.alice, "alice laptop")
	f.bobTok = f.userToken(t, f.bob, "bob laptop")
	f.carTok = f.userToken(t, f.carol, "carol laptop")
	f.bootstrapID, f.bootstrap = f.serviceToken(t, "bootstrap", tokens.BuiltinPermissions...)
	f.readerID, f.reader = f.serviceToken(t, "reader", "reader")
	_, f.admin = f.serviceToken(t, "tokadmin", tokens.PermTokens)
	return f
}

func (f *mgmtFixture) person(t *testing.T, name string) *tokens.User {
	t.Helper()
	u := &tokens.User{OrgID: f.org.ID, UserName: name, Active: true}
	if err := f.svc.CreateUser(context.Background(), tokens.Operator, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *mgmtFixture) group(t *testing.T, name string, members ...*tokens.User) *tokens.Group {
	t.Helper()
	g := &tokens.Group{OrgID: f.org.ID, DisplayName: name}
	for _, m := range members {
		g.MemberIDs = append(g.MemberIDs, m.ID)
	}
	if err := f.svc.CreateGroup(context.Background(), tokens.Operator, g); err != nil {
		t.Fatal(err)
	}
	return g
}

// userToken and serviceToken advance the clock first, so that listings
// (in order of creation) have a known order.
func (f *mgmtFixture) userToken(t *testing.T, u *tokens.User, name string) string {
	t.Helper()
	f.advance(time.Millisecond)
	_, sec, err := f.svc.CreateUserToken(context.Background(), tokens.Operator, f.org.ID, u.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return sec.Plaintext()
}

func (f *mgmtFixture) serviceToken(t *testing.T, name string, sets ...string) (id, plaintext string) {
	t.Helper()
	f.advance(time.Millisecond)
	st, sec, err := f.svc.CreateServiceToken(context.Background(), tokens.Operator, f.org.ID,
		tokens.ServiceTokenSpec{Name: name, PermissionSets: sets})
	if err != nil {
		t.Fatal(err)
	}
	return st.ID, sec.Plaintext()
}

// as authenticates a token as the admin API does and manages as its caller.
func (f *mgmtFixture) as(t *testing.T, plaintext string) *tokens.Manager {
	t.Helper()
	id, err := f.auth.Authenticate(context.Background(), plaintext)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return f.svc.As(tokens.CallerOf(id))
}

func (f *mgmtFixture) advance(d time.Duration) {
	next := f.now.Load().Add(d)
	f.now.Store(&next)
}

// wantRefusal checks an error's code and that its message says what it must.
func wantRefusal(t *testing.T, what string, err error, code tokens.Code, says ...string) {
	t.Helper()
	if got := tokens.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %s), want code %s", what, err, got, code)
	}
	var e *tokens.Error
	errors.As(err, &e)
	for _, s := range says {
		if !strings.Contains(e.Message, s) {
			t.Errorf("%s: message %q does not say %q", what, e.Message, s)
		}
	}
}

func TestManagement(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *mgmtFixture)
	}{
		{"Me", testMe},
		{"PersonCreatesOwnUserTokens", testPersonCreatesOwnUserTokens},
		{"UserTokenLimit", testManagedUserTokenLimit},
		{"PersonSeesOnlyOwnTokens", testPersonSeesOnlyOwnTokens},
		{"AdminSeesEveryUserToken", testAdminSeesEveryUserToken},
		{"Pagination", testPagination},
		{"ServiceTokensNeedPermTokens", testServiceTokensNeedPermTokens},
		{"ServiceTokenDefaults", testServiceTokenDefaults},
		{"NoEscalation", testNoEscalation},
		{"ServiceTokenLifecycle", testServiceTokenLifecycle},
		{"TokenStopsItself", testTokenStopsItself},
		{"Seats", testSeats},
		{"AuditNamesTheActor", testAuditNamesTheActor},
		{"OtherOrgIsInvisible", testOtherOrgIsInvisible},
		{"PermissionsAreReadAtEachCall", testPermissionsAreReadAtEachCall},
		{"InactivityShowsInListings", testInactivityShowsInListings},
		{"LeakReport", testLeakReport},
		{"Inspect", testInspect},
	}
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, newMgmtFixture(t, dialect))
				})
			}
		})
	}
}

func testMe(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	me, err := f.as(t, f.aliceTok).Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.Kind != tokens.KindUser || me.Name != "alice" || me.OrgName != "acme" || me.ID != f.alice.ID {
		t.Errorf("Me = %+v, want person alice of acme", me)
	}
	if !slices.Equal(me.Groups, []string{"Token Admins"}) || !slices.Equal(me.Permissions, []string{"api.read", tokens.PermTokens}) {
		t.Errorf("Me groups %v permissions %v", me.Groups, me.Permissions)
	}
	if me.ActiveUserTokens != 1 || me.MaxUserTokens != 10 || me.Token == nil || me.Token.Name != "alice laptop" {
		t.Errorf("Me tokens: %d of %d, token %+v", me.ActiveUserTokens, me.MaxUserTokens, me.Token)
	}
	svc, err := f.as(t, f.reader).Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Kind != tokens.KindService || svc.Name != "reader" || !slices.Equal(svc.PermissionSets, []string{"reader"}) ||
		!slices.Equal(svc.Permissions, []string{"api.read"}) || svc.MaxUserTokens != 0 || svc.Groups != nil {
		t.Errorf("Me of a service token = %+v", svc)
	}
}

func testPersonCreatesOwnUserTokens(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	info, secret, err := f.as(t, f.bobTok).CreateUserToken(ctx, "ci script")
	if err != nil {
		t.Fatal(err)
	}
	if info.OwnerID != f.bob.ID || info.OwnerName != "bob" || info.Kind != tokens.KindUser || info.Status != tokens.StatusActive {
		t.Errorf("created %+v, want an active user token of bob", info)
	}
	if want := f.now.Load().Add(45 * 24 * time.Hour); !info.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", info.ExpiresAt, want)
	}
	id, err := f.auth.Authenticate(ctx, secret.Plaintext())
	if err != nil || id.OwnerName != "bob" {
		t.Fatalf("the new token authenticates as %+v, %v; want bob", id, err)
	}
	// A service token, however powerful, never creates a user token.
	_, _, err = f.as(t, f.bootstrap).CreateUserToken(ctx, "for someone")
	wantRefusal(t, "service token creates a user token", err, tokens.Forbidden, "only a person", `service user "bootstrap"`)
}

func testManagedUserTokenLimit(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	m := f.as(t, f.bobTok) // bob already holds one
	for i := 2; i <= tokens.MaxActiveUserTokens; i++ {
		if _, _, err := m.CreateUserToken(ctx, fmt.Sprint("t", i)); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	_, _, err := m.CreateUserToken(ctx, "eleventh")
	wantRefusal(t, "11th user token", err, tokens.LimitReached, "10 active tokens", "delete one first")
	me, err := m.Me(ctx)
	if err != nil || me.ActiveUserTokens != 10 {
		t.Fatalf("Me: %d active user tokens, %v; want 10", me.ActiveUserTokens, err)
	}
}

func testPersonSeesOnlyOwnTokens(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	bob := f.as(t, f.bobTok)
	page, err := bob.UserTokens(ctx, tokens.TokenQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tokens) != 1 || page.Tokens[0].OwnerName != "bob" {
		t.Fatalf("bob lists %+v, want his one token", page.Tokens)
	}
	own := page.Tokens[0]
	if own.Name != "bob laptop" || !strings.HasPrefix(own.DisplayPrefix, "sgu_") || own.CreatedAt.IsZero() || own.ExpiresAt.IsZero() {
		t.Errorf("listed %+v: want name, display prefix, created and expiry", own)
	}
	_, err = bob.UserTokens(ctx, tokens.TokenQuery{OwnerName: "alice"})
	wantRefusal(t, "bob lists alice's tokens", err, tokens.Forbidden, "platform.tokens", `user "bob"`)
	_, err = bob.UserTokens(ctx, tokens.TokenQuery{OwnerID: f.alice.ID})
	wantRefusal(t, "bob lists alice's tokens by ID", err, tokens.Forbidden, "platform.tokens")

	alicePage, err := f.as(t, f.aliceTok).UserTokens(ctx, tokens.TokenQuery{OwnerName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	aliceTokenID := alicePage.Tokens[0].ID
	_, err = bob.UserToken(ctx, aliceTokenID)
	wantRefusal(t, "bob reads alice's token", err, tokens.Forbidden, "platform.tokens")
	_, err = bob.DeleteUserToken(ctx, aliceTokenID)
	wantRefusal(t, "bob deletes alice's token", err, tokens.Forbidden, "deleting another person's user token", "platform.tokens")
	if _, err := f.auth.Authenticate(ctx, f.aliceTok); err != nil {
		t.Fatalf("alice's token after bob's refused delete: %v", err)
	}

	// Bob deletes a second token of his own; it is refused at once.
	_, second, err := bob.CreateUserToken(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	secondID, _ := f.auth.Authenticate(ctx, second.Plaintext())
	if self, err := bob.DeleteUserToken(ctx, secondID.TokenID); err != nil || self {
		t.Fatalf("bob deletes his second token: self %v, %v", self, err)
	}
	if _, err := f.auth.Authenticate(ctx, second.Plaintext()); err != tokens.ErrUnknownToken {
		t.Errorf("deleted token authenticates: %v, want ErrUnknownToken", err)
	}
}

func testAdminSeesEveryUserToken(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	for _, admin := range []struct{ name, token string }{{"alice (person)", f.aliceTok}, {"tokadmin (service)", f.admin}} {
		page, err := f.as(t, admin.token).UserTokens(ctx, tokens.TokenQuery{})
		if err != nil {
			t.Fatalf("%s: %v", admin.name, err)
		}
		var owners []string
		for _, tok := range page.Tokens {
			owners = append(owners, tok.OwnerName)
		}
		if !slices.Equal(owners, []string{"alice", "bob", "carol"}) {
			t.Errorf("%s lists owners %v, want alice, bob, carol", admin.name, owners)
		}
	}
	alice := f.as(t, f.aliceTok)
	filtered, err := alice.UserTokens(ctx, tokens.TokenQuery{OwnerName: "BOB"})
	if err != nil || len(filtered.Tokens) != 1 || filtered.Tokens[0].OwnerName != "bob" {
		t.Fatalf("owner filter: %+v, %v", filtered, err)
	}
	byName, err := alice.UserTokens(ctx, tokens.TokenQuery{NamePrefix: "carol"})
	if err != nil || len(byName.Tokens) != 1 || byName.Tokens[0].Name != "carol laptop" {
		t.Fatalf("name prefix filter: %+v, %v", byName, err)
	}
	if none, err := alice.UserTokens(ctx, tokens.TokenQuery{NamePrefix: "Carol"}); err != nil || len(none.Tokens) != 0 {
		t.Errorf("name prefix is case-sensitive: %+v, %v", none, err)
	}
	_, err = alice.UserTokens(ctx, tokens.TokenQuery{OwnerName: "nobody"})
	wantRefusal(t, "unknown owner", err, tokens.NotFound, `"nobody"`)
	_, err = alice.UserTokens(ctx, tokens.TokenQuery{Status: "dead"})
	wantRefusal(t, "unknown status", err, tokens.Invalid, "active, revoked or expired")

	// The admin deletes bob's token; bob's next request is refused.
	bobs := filtered.Tokens[0]
	if self, err := alice.DeleteUserToken(ctx, bobs.ID); err != nil || self {
		t.Fatalf("alice deletes bob's token: self %v, %v", self, err)
	}
	if _, err := f.auth.Authenticate(ctx, f.bobTok); err != tokens.ErrUnknownToken {
		t.Errorf("bob's deleted token: %v, want ErrUnknownToken", err)
	}
	// A person without platform.tokens cannot, nor can a token of
	// another power.
	_, err = f.as(t, f.reader).UserTokens(ctx, tokens.TokenQuery{})
	wantRefusal(t, "reader lists user tokens", err, tokens.Forbidden, "listing user tokens", "platform.tokens", `service user "reader"`)
}

func testPagination(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	users := []*tokens.User{f.alice, f.bob, f.carol}
	for i := range 24 { // 27 user tokens in all, three at a time at the same instant
		if i%3 == 0 {
			f.advance(time.Microsecond)
		}
		if _, _, err := f.svc.CreateUserToken(ctx, tokens.Operator, f.org.ID, users[i%3].ID, fmt.Sprintf("bulk %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice := f.as(t, f.aliceTok)
	var all []tokens.TokenInfo
	q := tokens.TokenQuery{Limit: 10}
	pages := 0
	for {
		page, err := alice.UserTokens(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, page.Tokens...)
		if page.Next == "" {
			break
		}
		if len(page.Tokens) != 10 {
			t.Fatalf("a page before the last holds %d tokens, want 10", len(page.Tokens))
		}
		q.Cursor = page.Next
	}
	if pages != 3 || len(all) != 27 {
		t.Fatalf("%d pages, %d tokens; want 3 pages of 27 tokens", pages, len(all))
	}
	seen := map[string]bool{}
	for i, tok := range all {
		if seen[tok.ID] {
			t.Fatalf("token %s listed twice", tok.ID)
		}
		seen[tok.ID] = true
		if i > 0 && (tok.CreatedAt.Before(all[i-1].CreatedAt) || tok.CreatedAt.Equal(all[i-1].CreatedAt) && tok.ID < all[i-1].ID) {
			t.Fatalf("tokens out of order at %d", i)
		}
	}
	// A page exactly full has no next page.
	exact, err := alice.UserTokens(ctx, tokens.TokenQuery{Limit: 27})
	if err != nil || len(exact.Tokens) != 27 || exact.Next != "" {
		t.Fatalf("limit 27: %d tokens, next %q, %v", len(exact.Tokens), exact.Next, err)
	}
	for _, bad := range []string{"garbage", "dDox", q.Cursor + "x"} {
		_, err := alice.UserTokens(ctx, tokens.TokenQuery{Cursor: bad})
		wantRefusal(t, "cursor "+bad, err, tokens.Invalid, "start again")
	}
	// An audit cursor is no token cursor.
	auditPage, err := alice.Audit(ctx, tokens.AuditQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.UserTokens(ctx, tokens.TokenQuery{Cursor: auditPage.Next})
	wantRefusal(t, "audit cursor for tokens", err, tokens.Invalid)
	for _, limit := range []int{-1, tokens.MaxPageSize + 1} {
		_, err := alice.UserTokens(ctx, tokens.TokenQuery{Limit: limit})
		wantRefusal(t, fmt.Sprint("limit ", limit), err, tokens.Invalid, "limit must be 1 to 1000")
	}
}

func testServiceTokensNeedPermTokens(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	for _, who := range []struct{ name, token, says string }{
		{"bob (person)", f.bobTok, `user "bob"`},
		{"carol (platform.users only)", f.carTok, `user "carol"`},
		{"reader (service)", f.reader, `service user "reader"`},
	} {
		m := f.as(t, who.token)
		calls := map[string]error{}
		_, _, calls["create"] = m.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "x"})
		_, calls["list"] = m.ServiceTokens(ctx, tokens.TokenQuery{})
		_, calls["get"] = m.ServiceToken(ctx, f.bootstrapID)
		_, calls["edit"] = m.EditServiceToken(ctx, f.bootstrapID, tokens.ServiceTokenEdit{Name: ptr("renamed")})
		_, calls["revoke"] = m.RevokeServiceToken(ctx, f.bootstrapID)
		_, _, calls["regenerate"] = m.RegenerateServiceToken(ctx, f.bootstrapID)
		calls["delete"] = m.DeleteServiceToken(ctx, f.bootstrapID)
		_, calls["audit"] = m.Audit(ctx, tokens.AuditQuery{})
		_, calls["permission sets"] = m.PermissionSets(ctx)
		for call, err := range calls {
			wantRefusal(t, who.name+" "+call, err, tokens.Forbidden, "platform.tokens", who.says)
		}
	}
	if _, err := f.auth.Authenticate(ctx, f.bootstrap); err != nil {
		t.Fatalf("bootstrap after refused changes: %v", err)
	}
}

func testServiceTokenDefaults(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	alice := f.as(t, f.aliceTok)
	sets, err := alice.PermissionSets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var grantable []string
	for _, s := range sets {
		if s.Grantable {
			grantable = append(grantable, s.Name)
		} else if len(s.Missing) == 0 {
			t.Errorf("set %s is not grantable but misses nothing", s.Name)
		}
		if s.Name == "writer" && !slices.Equal(s.Missing, []string{"api.write"}) {
			t.Errorf("writer misses %v, want api.write", s.Missing)
		}
	}
	want := []string{"api.read", tokens.PermTokens, "reader", "token-admin"}
	if !slices.Equal(grantable, want) {
		t.Errorf("alice may grant %v, want %v", grantable, want)
	}
	info, secret, err := alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.PermissionSets, want) || info.InactivityDays != 45 || info.OwnerName != "deploy" {
		t.Errorf("created %+v: want every grantable set and 45 days", info)
	}
	id, err := f.auth.Authenticate(ctx, secret.Plaintext())
	if err != nil || !slices.Equal(id.Permissions, []string{"api.read", tokens.PermTokens}) {
		t.Fatalf("new service token authenticates with %v, %v", id, err)
	}
	for _, days := range []int{31, 60, 180} {
		info, _, err := alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: fmt.Sprint("w", days), InactivityDays: days, PermissionSets: []string{"reader"}})
		if err != nil || info.InactivityDays != days {
			t.Errorf("window %d: %+v, %v", days, info, err)
		}
	}
	_, _, err = alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "w30", InactivityDays: 30})
	wantRefusal(t, "window 30", err, tokens.Invalid, "31, 45, 60 or 180")
	_, _, err = alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "x", PermissionSets: []string{"nope"}})
	wantRefusal(t, "unknown set", err, tokens.Invalid, `"nope"`)
	sec := tokens.NewSecret(tokens.KindService)
	_, _, err = alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "x", Secret: &sec})
	wantRefusal(t, "chosen secret", err, tokens.Invalid, "generated")
}

func testNoEscalation(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	alice := f.as(t, f.aliceTok) // platform.tokens, api.read
	_, _, err := alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "w", PermissionSets: []string{"writer"}})
	wantRefusal(t, "alice grants writer", err, tokens.Forbidden, "api.write", `user "alice"`, "nobody grants")
	_, _, err = alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "u", PermissionSets: []string{tokens.PermUsers}})
	wantRefusal(t, "alice grants platform.users", err, tokens.Forbidden, tokens.PermUsers)

	tokadmin := f.as(t, f.admin) // platform.tokens only
	_, _, err = tokadmin.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "r", PermissionSets: []string{"reader"}})
	wantRefusal(t, "tokadmin grants reader", err, tokens.Forbidden, "api.read", `service user "tokadmin"`)
	info, _, err := tokadmin.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "peer"})
	if err != nil || !slices.Equal(info.PermissionSets, []string{tokens.PermTokens, "token-admin"}) {
		t.Fatalf("tokadmin creates with its defaults: %+v, %v", info, err)
	}

	// Editing: not to more than the caller holds, and not a token that
	// holds more, even to rename it.
	_, err = alice.EditServiceToken(ctx, f.readerID, tokens.ServiceTokenEdit{PermissionSets: []string{"writer"}})
	wantRefusal(t, "alice edits reader to writer", err, tokens.Forbidden, "api.write")
	_, err = alice.EditServiceToken(ctx, f.bootstrapID, tokens.ServiceTokenEdit{Name: ptr("mine now")})
	wantRefusal(t, "alice renames bootstrap", err, tokens.Forbidden, tokens.PermGroups)
	edited, err := alice.EditServiceToken(ctx, f.readerID, tokens.ServiceTokenEdit{Name: ptr("reader2"), InactivityDays: ptr(60)})
	if err != nil || edited.Name != "reader2" || edited.InactivityDays != 60 || !slices.Equal(edited.PermissionSets, []string{"reader"}) {
		t.Fatalf("alice edits reader: %+v, %v", edited, err)
	}

	// Regenerating hands over a new secret: only to who holds everything
	// the token does. Revoking a more powerful token is allowed.
	if _, err := alice.RevokeServiceToken(ctx, f.bootstrapID); err != nil {
		t.Fatalf("alice revokes bootstrap: %v", err)
	}
	_, _, err = alice.RegenerateServiceToken(ctx, f.bootstrapID)
	wantRefusal(t, "alice regenerates bootstrap", err, tokens.Forbidden, tokens.PermGroups, "nobody grants")
	if info, err := f.svc.TokenInfo(ctx, f.org.ID, f.bootstrapID); err != nil || info.Status != tokens.StatusRevoked {
		t.Fatalf("bootstrap after a refused regenerate: %+v, %v", info, err)
	}
}

func testServiceTokenLifecycle(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	alice := f.as(t, f.aliceTok)
	info, first, err := alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "sync", PermissionSets: []string{"reader"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := alice.ServiceToken(ctx, info.ID)
	if err != nil || got.Name != "sync" || got.OwnerName != "sync" || got.OrgName != "acme" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	_, _, err = alice.RegenerateServiceToken(ctx, info.ID)
	wantRefusal(t, "regenerate an active token", err, tokens.WrongState, "only a revoked token")
	err = alice.DeleteServiceToken(ctx, info.ID)
	wantRefusal(t, "delete an active token", err, tokens.WrongState, "revoke it before deleting")

	if self, err := alice.RevokeServiceToken(ctx, info.ID); err != nil || self {
		t.Fatalf("revoke: self %v, %v", self, err)
	}
	if _, err := f.auth.Authenticate(ctx, first.Plaintext()); err != tokens.ErrRevokedToken {
		t.Fatalf("revoked token: %v, want ErrRevokedToken", err)
	}
	_, err = alice.RevokeServiceToken(ctx, info.ID)
	wantRefusal(t, "revoke twice", err, tokens.WrongState, "already revoked")
	regen, second, err := alice.RegenerateServiceToken(ctx, info.ID)
	if err != nil || regen.Status != tokens.StatusActive || regen.DisplayPrefix != second.DisplayPrefix() {
		t.Fatalf("regenerate: %+v, %v", regen, err)
	}
	if _, err := f.auth.Authenticate(ctx, second.Plaintext()); err != nil {
		t.Fatalf("regenerated token: %v", err)
	}
	if _, err := f.auth.Authenticate(ctx, first.Plaintext()); err != tokens.ErrUnknownToken {
		t.Fatalf("old secret after regenerate: %v, want ErrUnknownToken", err)
	}
	if _, err := alice.RevokeServiceToken(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.DeleteServiceToken(ctx, info.ID); err != nil {
		t.Fatalf("delete a revoked token: %v", err)
	}
	_, err = alice.ServiceToken(ctx, info.ID)
	wantRefusal(t, "get a deleted token", err, tokens.NotFound)
	// A user token is not a service token, and the other way round.
	_, err = alice.ServiceToken(ctx, f.as(t, f.bobTok).Caller().TokenID)
	wantRefusal(t, "a user token as a service token", err, tokens.NotFound)
	_, err = alice.DeleteUserToken(ctx, f.readerID)
	wantRefusal(t, "a service token as a user token", err, tokens.NotFound)
}

func testTokenStopsItself(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	// reader holds no platform.tokens, yet revokes itself.
	reader := f.as(t, f.reader)
	_, err := reader.RevokeServiceToken(ctx, f.bootstrapID)
	wantRefusal(t, "reader revokes another token", err, tokens.Forbidden, "platform.tokens")
	self, err := reader.RevokeServiceToken(ctx, f.readerID)
	if err != nil || !self {
		t.Fatalf("reader revokes itself: self %v, %v", self, err)
	}
	if _, err := f.auth.Authenticate(ctx, f.reader); err != tokens.ErrRevokedToken {
		t.Fatalf("self-revoked token: %v, want ErrRevokedToken", err)
	}
	// The Manager of a stopped token refuses everything after.
	_, err = reader.Me(ctx)
	wantRefusal(t, "Me with a revoked token", err, tokens.Unauthenticated, "revoked")

	bob := f.as(t, f.bobTok)
	info, err := bob.RevokeOwnToken(ctx)
	if err != nil || info.OwnerName != "bob" {
		t.Fatalf("bob deletes his own token: %+v, %v", info, err)
	}
	if _, err := f.auth.Authenticate(ctx, f.bobTok); err != tokens.ErrUnknownToken {
		t.Fatalf("self-deleted token: %v, want ErrUnknownToken", err)
	}
	_, err = bob.Me(ctx)
	wantRefusal(t, "Me with a deleted token", err, tokens.Unauthenticated, "no longer exists")

	admin := f.as(t, f.admin)
	info, err = admin.RevokeOwnToken(ctx)
	if err != nil || info.Kind != tokens.KindService {
		t.Fatalf("tokadmin revokes itself: %+v, %v", info, err)
	}
	_, err = f.svc.As(tokens.Caller{OrgID: f.org.ID, Kind: tokens.KindUser, OwnerID: f.alice.ID, Via: "console"}).RevokeOwnToken(ctx)
	wantRefusal(t, "a session without a token", err, tokens.Invalid, "did not come with a token")
}

func testSeats(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	dave := f.person(t, "dave") // active, no token: still a seat
	erin := f.person(t, "erin")
	f.userToken(t, erin, "x")
	if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, erin.ID); err != nil {
		t.Fatal(err)
	}
	_ = dave
	seats, err := f.as(t, f.carTok).Seats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := tokens.Seats{OrgName: "acme", ActivePeople: 4, PeopleWithActiveTokens: 3, ServiceUsers: 3, ActiveServiceTokens: 3}
	if *seats != want {
		t.Errorf("seats = %+v, want %+v", *seats, want)
	}
	for _, who := range []string{f.aliceTok, f.admin, f.bobTok} {
		_, err := f.as(t, who).Seats(ctx)
		wantRefusal(t, "seats without platform.users", err, tokens.Forbidden, tokens.PermUsers)
	}
	if seats, err := f.as(t, f.bootstrap).Seats(ctx); err != nil || seats.ActivePeople != 4 {
		t.Errorf("bootstrap reads seats: %+v, %v", seats, err)
	}
}

func testAuditNamesTheActor(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	alice := f.as(t, f.aliceTok)
	info, _, err := alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "audited", PermissionSets: []string{"reader"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.as(t, f.admin).RevokeServiceToken(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	page, err := alice.Audit(ctx, tokens.AuditQuery{Target: info.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 {
		t.Fatalf("events of %s: %+v", info.ID, page.Events)
	}
	revoke, create := page.Events[0], page.Events[1]
	if create.Action != "token.create" || !strings.HasPrefix(create.Actor, "user alice (token tok_") {
		t.Errorf("create event %+v: want actor user alice with her token", create)
	}
	if revoke.Action != "token.revoke" || !strings.HasPrefix(revoke.Actor, "service user tokadmin (token tok_") {
		t.Errorf("revoke event %+v: want actor service user tokadmin", revoke)
	}
	session := f.svc.As(tokens.Caller{OrgID: f.org.ID, Kind: tokens.KindUser, OwnerID: f.bob.ID, Via: "console"})
	if _, _, err := session.CreateUserToken(ctx, "from the console"); err != nil {
		t.Fatal(err)
	}
	byAction, err := alice.Audit(ctx, tokens.AuditQuery{Action: "token.create", Limit: 1})
	if err != nil || len(byAction.Events) != 1 || byAction.Events[0].Actor != "user bob (console)" || byAction.Next == "" {
		t.Fatalf("newest token.create: %+v, %v", byAction, err)
	}
	older, err := alice.Audit(ctx, tokens.AuditQuery{Action: "token.create", Limit: 1, Cursor: byAction.Next})
	if err != nil || len(older.Events) != 1 || older.Events[0].ID >= byAction.Events[0].ID {
		t.Fatalf("next audit page: %+v, %v", older, err)
	}
}

func testOtherOrgIsInvisible(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	other, err := f.svc.CreateOrg(ctx, tokens.Operator, "other", 0)
	if err != nil {
		t.Fatal(err)
	}
	st, sec, err := f.svc.CreateServiceToken(ctx, tokens.Operator, other.ID, tokens.ServiceTokenSpec{Name: "theirs", PermissionSets: tokens.BuiltinPermissions})
	if err != nil {
		t.Fatal(err)
	}
	alice := f.as(t, f.aliceTok)
	_, err = alice.RevokeServiceToken(ctx, st.ID)
	wantRefusal(t, "revoke another org's token", err, tokens.NotFound)
	_, err = alice.ServiceToken(ctx, st.ID)
	wantRefusal(t, "get another org's token", err, tokens.NotFound)
	theirs := f.as(t, sec.Plaintext())
	page, err := theirs.UserTokens(ctx, tokens.TokenQuery{})
	if err != nil || len(page.Tokens) != 0 {
		t.Fatalf("other org lists %+v, %v; want none of acme's", page, err)
	}
	events, err := theirs.Audit(ctx, tokens.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Events {
		if e.OrgID != other.ID {
			t.Errorf("other org sees event %+v of another org", e)
		}
	}
	_, err = theirs.DeleteUserToken(ctx, f.as(t, f.bobTok).Caller().TokenID)
	wantRefusal(t, "delete another org's user token", err, tokens.NotFound)
}

func testPermissionsAreReadAtEachCall(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	alice := f.as(t, f.aliceTok)
	if _, err := alice.ServiceTokens(ctx, tokens.TokenQuery{}); err != nil {
		t.Fatal(err)
	}
	// Alice leaves "Token Admins": the same Manager is refused at once.
	groups, _, err := f.svc.Groups(ctx, f.org.ID, tokens.GroupFilter{DisplayName: "Token Admins"})
	if err != nil {
		t.Fatal(err)
	}
	g := groups[0]
	g.MemberIDs = nil
	if err := f.svc.ReplaceGroup(ctx, tokens.Operator, &g, 0); err != nil {
		t.Fatal(err)
	}
	_, err = alice.ServiceTokens(ctx, tokens.TokenQuery{})
	wantRefusal(t, "alice after leaving the group", err, tokens.Forbidden, "platform.tokens")
	// Deactivated: nothing works any more.
	if _, err := f.svc.DeactivateUser(ctx, tokens.Operator, f.org.ID, f.alice.ID); err != nil {
		t.Fatal(err)
	}
	session := f.svc.As(tokens.Caller{OrgID: f.org.ID, Kind: tokens.KindUser, OwnerID: f.alice.ID, Via: "console"})
	_, err = session.Me(ctx)
	wantRefusal(t, "a session of a deactivated person", err, tokens.Unauthenticated, "deactivated")
	_, err = f.svc.As(tokens.Caller{OrgID: f.org.ID, Kind: tokens.KindService, OwnerID: "svc_x"}).Me(ctx)
	wantRefusal(t, "a service user without a token", err, tokens.Unauthenticated)
	_, err = f.svc.As(tokens.Caller{}).Me(ctx)
	wantRefusal(t, "no caller", err, tokens.Unauthenticated)
}

func testInactivityShowsInListings(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	alice := f.as(t, f.aliceTok)
	f.advance(44 * 24 * time.Hour)
	// Alice and the tokadmin token stay in use; the rest go unused.
	alice = f.as(t, f.aliceTok)
	if _, err := f.auth.Authenticate(ctx, f.admin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	f.advance(2 * 24 * time.Hour)
	page, err := alice.UserTokens(ctx, tokens.TokenQuery{Status: tokens.StatusExpired})
	if err != nil {
		t.Fatal(err)
	}
	var expired []string
	for _, tok := range page.Tokens {
		expired = append(expired, tok.OwnerName)
		if tok.StatusReason != tokens.ReasonInactivity || !tok.ExpiresAt.IsZero() {
			t.Errorf("expired token %+v: want reason inactivity and no expiry date", tok)
		}
	}
	if !slices.Equal(expired, []string{"bob", "carol"}) {
		t.Errorf("expired by inactivity: %v, want bob, carol", expired)
	}
	active, err := alice.UserTokens(ctx, tokens.TokenQuery{Status: tokens.StatusActive})
	if err != nil || len(active.Tokens) != 1 || active.Tokens[0].OwnerName != "alice" || active.Tokens[0].LastUsedAt.IsZero() {
		t.Fatalf("active: %+v, %v", active, err)
	}
	if active.Tokens[0].UseCount == 0 {
		t.Errorf("alice's token shows no use")
	}
}

func testLeakReport(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	alice := f.as(t, f.aliceTok)
	dead, deadSecret, err := alice.CreateServiceToken(ctx, tokens.ServiceTokenSpec{Name: "old", PermissionSets: []string{"reader"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RevokeServiceToken(ctx, dead.ID); err != nil {
		t.Fatal(err)
	}
	unknown := tokens.NewSecret(tokens.KindUser).Plaintext()
	leaks := []tokens.Leak{
		{Token: f.reader, FoundAt: "https://github.com/acme/app/blob/main/.env"},
		{Token: " " + f.bobTok + "\n", FoundAt: "build log\x1b[31m"},
		{Token: deadSecret.Plaintext()},
		{Token: unknown},
		{Token: "sgs_not-a-token"},
		{Token: f.reader}, // twice: answered the same
	}
	findings, err := f.svc.ReportLeak(ctx, tokens.AnonymousReporter("203.0.113.9"), leaks)
	if err != nil {
		t.Fatal(err)
	}
	want := []tokens.LeakOutcome{tokens.LeakRevoked, tokens.LeakDeleted, tokens.LeakAlreadyDead, tokens.LeakUnknown, tokens.LeakMalformed, tokens.LeakRevoked}
	for i, fd := range findings {
		if fd.Outcome != want[i] {
			t.Errorf("finding %d: %s, want %s", i, fd.Outcome, want[i])
		}
		if fd.Token != nil {
			t.Errorf("finding %d: an anonymous reporter sees details %+v", i, fd.Token)
		}
	}
	if findings[0].DisplayPrefix != f.reader[:8] || findings[0].Kind != tokens.KindService || findings[4].DisplayPrefix != "" {
		t.Errorf("prefixes: %+v", findings)
	}
	if !findings[0].Outcome.WasLive() || findings[2].Outcome.WasLive() {
		t.Errorf("WasLive wrong")
	}
	if _, err := f.auth.Authenticate(ctx, f.reader); err != tokens.ErrRevokedToken {
		t.Errorf("reported service token: %v, want ErrRevokedToken", err)
	}
	if _, err := f.auth.Authenticate(ctx, f.bobTok); err != tokens.ErrUnknownToken {
		t.Errorf("reported user token: %v, want ErrUnknownToken", err)
	}
	info, err := f.svc.TokenInfo(ctx, f.org.ID, f.readerID)
	if err != nil || info.Status != tokens.StatusRevoked || info.StatusReason != tokens.ReasonLeaked {
		t.Errorf("reported service token: %+v, %v; want revoked (leaked)", info, err)
	}
	events, err := alice.Audit(ctx, tokens.AuditQuery{Action: "token.leak_report"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Events) != 3 {
		t.Fatalf("leak events: %+v, want 3 (revoked, deleted, already dead)", events.Events)
	}
	for _, e := range events.Events {
		if e.Actor != "anonymous report from 203.0.113.9" || strings.ContainsAny(e.Detail, "\x1b\n") {
			t.Errorf("leak event %+v: want the reporter's address and no control characters", e)
		}
	}
	if d := events.Events[len(events.Events)-1].Detail; !strings.Contains(d, "found at https://github.com/acme/app/blob/main/.env") || !strings.Contains(d, "revoked") {
		t.Errorf("first leak event detail %q: want where it was found and what was done", d)
	}

	// An authenticated reporter sees details of what it may see only.
	aliceSecond := f.userToken(t, f.alice, "second")
	findings, err = f.as(t, f.carTok).ReportLeak(ctx, []tokens.Leak{{Token: f.carTok}, {Token: aliceSecond}})
	if err != nil {
		t.Fatal(err)
	}
	if findings[0].Outcome != tokens.LeakDeleted || findings[0].Token == nil || findings[0].Token.OwnerName != "carol" {
		t.Errorf("carol reports her own token: %+v", findings[0])
	}
	if findings[1].Outcome != tokens.LeakDeleted || findings[1].Token != nil {
		t.Errorf("carol reports alice's token: %+v; want deleted, no details", findings[1])
	}
	// The operator sees everything.
	findings, err = f.svc.ReportLeak(ctx, tokens.Operator, []tokens.Leak{{Token: f.admin}})
	if err != nil || findings[0].Token == nil || findings[0].Token.OrgName != "acme" || findings[0].Token.Name != "tokadmin" {
		t.Errorf("operator report: %+v, %v", findings, err)
	}
	// A report of unknown and malformed tokens only is answered alike,
	// without a write.
	findings, err = f.svc.ReportLeak(ctx, tokens.AnonymousReporter("203.0.113.10"), []tokens.Leak{{Token: unknown}, {Token: "x"}})
	if err != nil || findings[0].Outcome != tokens.LeakUnknown || findings[0].DisplayPrefix != unknown[:8] || findings[1].Outcome != tokens.LeakMalformed {
		t.Errorf("report of unknown tokens: %+v, %v", findings, err)
	}
	_, err = f.svc.ReportLeak(ctx, tokens.Operator, nil)
	wantRefusal(t, "empty report", err, tokens.Invalid, "at least one")
	_, err = f.svc.ReportLeak(ctx, tokens.Operator, make([]tokens.Leak, tokens.MaxLeakReportTokens+1))
	wantRefusal(t, "oversized report", err, tokens.Invalid, "split the report")
}

func testInspect(t *testing.T, f *mgmtFixture) {
	ctx := context.Background()
	info, err := f.svc.InspectToken(ctx, f.reader)
	if err != nil || info.ID != f.readerID || info.OrgName != "acme" || info.OwnerName != "reader" || info.Status != tokens.StatusActive {
		t.Fatalf("operator inspects reader: %+v, %v", info, err)
	}
	_, err = f.svc.InspectToken(ctx, "sgu_garbage")
	wantRefusal(t, "inspect garbage", err, tokens.Invalid, "not a scimgate token")
	_, err = f.svc.InspectToken(ctx, tokens.NewSecret(tokens.KindService).Plaintext())
	wantRefusal(t, "inspect unknown", err, tokens.NotFound, "never issued")

	bob := f.as(t, f.bobTok)
	if info, err := bob.InspectToken(ctx, f.bobTok); err != nil || info.OwnerName != "bob" {
		t.Errorf("bob inspects his token: %+v, %v", info, err)
	}
	_, err = bob.InspectToken(ctx, f.aliceTok)
	wantRefusal(t, "bob inspects alice's token", err, tokens.Forbidden, "platform.tokens")
	if info, err := f.as(t, f.aliceTok).InspectToken(ctx, f.bobTok); err != nil || info.OwnerName != "bob" {
		t.Errorf("alice (platform.tokens) inspects bob's token: %+v, %v", info, err)
	}
	// Inspecting changes nothing.
	if _, err := f.auth.Authenticate(ctx, f.bobTok); err != nil {
		t.Errorf("bob's token after inspection: %v", err)
	}
}
