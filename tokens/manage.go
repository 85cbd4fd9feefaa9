package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Manager is token management on behalf of one Caller: what the admin API,
// the web console and the remote command line offer. Get one with
// Service.As. Every method enforces who may do what, in the transaction of
// the call:
//
//   - Any caller reads its own profile (Me) and revokes or deletes the token
//     it came with (RevokeOwnToken, or the usual calls with its own ID).
//   - A person manages their own user tokens: creates them, for themselves
//     only and at most MaxActiveUserTokens active; lists and deletes them.
//     Only a person creates a user token: never a service token, never an
//     admin for someone else.
//   - Holding PermTokens (a person through their groups, or a service
//     token): list every user token of the org with its owner and delete
//     any; create, read, edit, revoke, regenerate (revoked only) and delete
//     (revoked only) service tokens; read the org's audit trail and the
//     permission sets that can be granted.
//   - Nobody grants a permission they do not hold: creating, editing or
//     regenerating a service token that would hold a permission the caller
//     lacks is refused, naming the permission.
//   - Holding PermUsers: the seats report.
//   - Everything stays in the caller's org: another org's token is not found.
//
// A refusal is an *Error with code Forbidden whose message names the rule
// and the permission; a caller whose token or person stopped working gets
// Unauthenticated; the lifecycle rules give WrongState, LimitReached,
// NotFound and Invalid as elsewhere. Each change is one transaction with its
// audit event, naming the person or service user as the actor, and its
// change-log entry, so that every replica refuses a changed token at once.
type Manager struct {
	s *Service
	c Caller
}

// As returns the token management of caller c.
func (s *Service) As(c Caller) *Manager { return &Manager{s: s, c: c} }

// Caller is who the Manager acts for.
func (m *Manager) Caller() Caller { return m.c }

// Page sizes of the listings.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// TokenInfo is a token as management shows it: never its secret or hash.
type TokenInfo struct {
	ID      string
	OrgID   string
	OrgName string
	Kind    Kind
	Name    string
	// DisplayPrefix is the public start of the token, safe to show.
	DisplayPrefix string
	// OwnerID and OwnerName are the person (user tokens) or the service user.
	OwnerID   string
	OwnerName string

	// Status is what the authenticator applies now: an active token past
	// its inactivity window is shown expired (reason inactivity) even before
	// the sweep records it.
	Status          Status
	StatusReason    Reason
	StatusChangedAt time.Time
	InactivityDays  int
	// ExpiresAt, for an active token, is when it expires unless it is used
	// before: its inactivity window after its last use (or creation, or
	// regeneration). Zero for a token that is not active.
	ExpiresAt  time.Time
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first used
	UseCount   int64
	// PermissionSets are a service token's; nil for a user token, which
	// has its owner's.
	PermissionSets []string
}

// InactivityDeadline is when an active token expires unless it is used
// before: its inactivity window after the latest of its last use, its
// creation and its last status change (a regenerated token starts afresh).
// It is the rule of the authenticator and of ExpireInactive.
func (t *Token) InactivityDeadline() time.Time {
	start := t.CreatedAt
	for _, at := range []time.Time{t.LastUsedAt, t.StatusChangedAt} {
		if at.After(start) {
			start = at
		}
	}
	return start.Add(t.InactivityWindow())
}

// infoOf describes a token as of now.
func infoOf(t *Token, orgName, ownerName string, sets []string, now time.Time) TokenInfo {
	info := TokenInfo{
		ID: t.ID, OrgID: t.OrgID, OrgName: orgName, Kind: t.Kind, Name: t.Name, DisplayPrefix: t.DisplayPrefix,
		OwnerID: t.OwnerID, OwnerName: ownerName,
		Status: t.Status, StatusReason: t.StatusReason, StatusChangedAt: t.StatusChangedAt,
		InactivityDays: t.InactivityDays, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, UseCount: t.UseCount,
		PermissionSets: sets,
	}
	if t.Kind == KindService && info.PermissionSets == nil {
		info.PermissionSets = []string{}
	}
	if t.Status == StatusActive {
		deadline := t.InactivityDeadline()
		if now.After(deadline) {
			info.Status, info.StatusReason, info.StatusChangedAt = StatusExpired, ReasonInactivity, deadline
		} else {
			info.ExpiresAt = deadline
		}
	}
	return info
}

// ---- Listing ----

// TokenQuery selects a page of tokens. Empty fields match everything.
type TokenQuery struct {
	// Status is active, revoked or expired, as TokenInfo.Status shows it.
	Status Status
	// OwnerID or OwnerName (a user name, case-insensitive) select one
	// person's user tokens. Not for service tokens.
	OwnerID   string
	OwnerName string
	// NamePrefix selects token names that start with it (case-sensitive).
	NamePrefix string
	// Cursor is TokenPage.Next of the previous page; empty for the first.
	Cursor string
	// Limit is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
}

// TokenPage is one page of a token listing, oldest first.
type TokenPage struct {
	Tokens []TokenInfo
	// Next is the cursor of the next page; empty on the last page.
	Next string
}

// cursor kinds, so that a cursor of one listing is refused by another.
const (
	tokenCursor = "t"
	auditCursor = "a"
)

func encodeCursor(kind string, parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strings.Join(parts, ":")))
}

func decodeCursor(kind, cursor string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	parts := strings.Split(string(b), ":")
	if err != nil || len(parts) != n+1 || parts[0] != kind {
		return nil, Errorf(Invalid, "cursor %q is not one this listing issued: start again without it", cursor)
	}
	return parts[1:], nil
}

func pageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageSize, nil
	case limit < 0 || limit > MaxPageSize:
		return 0, Errorf(Invalid, "limit must be 1 to %d, not %d", MaxPageSize, limit)
	}
	return limit, nil
}

// tokenPage reads one page of an org's tokens of one kind.
func (s *Service) tokenPage(tx Tx, org *Org, kind Kind, q TokenQuery) (*TokenPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	switch q.Status {
	case "", StatusActive, StatusRevoked, StatusExpired:
	default:
		return nil, Errorf(Invalid, "status must be active, revoked or expired, not %q", q.Status)
	}
	f := TokenPageFilter{OrgID: org.ID, Kind: kind, OwnerID: q.OwnerID, Status: q.Status, Now: s.Now().UTC(),
		NamePrefix: q.NamePrefix, Limit: limit + 1}
	if q.OwnerName != "" {
		if kind != KindUser {
			return nil, Errorf(Invalid, "an owner selects user tokens only: a service token's owner is its own service user")
		}
		u, err := tx.UserByName(org.ID, q.OwnerName)
		if err != nil {
			return nil, notFound(err, "no user named %q in org %q", q.OwnerName, org.Name)
		}
		if q.OwnerID != "" && q.OwnerID != u.ID {
			return nil, Errorf(Invalid, "owner %q and owner ID %s name two different people", q.OwnerName, q.OwnerID)
		}
		f.OwnerID = u.ID
	}
	if f.OwnerID != "" && kind != KindUser {
		return nil, Errorf(Invalid, "an owner selects user tokens only: a service token's owner is its own service user")
	}
	if q.Cursor != "" {
		parts, err := decodeCursor(tokenCursor, q.Cursor, 2)
		if err != nil {
			return nil, err
		}
		micros, perr := strconv.ParseInt(parts[0], 10, 64)
		if perr != nil || parts[1] == "" {
			return nil, Errorf(Invalid, "cursor %q is not one this listing issued: start again without it", q.Cursor)
		}
		f.AfterCreatedAt, f.AfterID = time.UnixMicro(micros).UTC(), parts[1]
	}
	rows, err := tx.TokenPage(f)
	if err != nil {
		return nil, err
	}
	page := &TokenPage{Tokens: make([]TokenInfo, 0, min(len(rows), limit))}
	for i := range rows {
		if i == limit {
			last := &rows[i-1].Token
			page.Next = encodeCursor(tokenCursor, strconv.FormatInt(last.CreatedAt.UnixMicro(), 10), last.ID)
			break
		}
		r := &rows[i]
		page.Tokens = append(page.Tokens, infoOf(&r.Token, org.Name, r.OwnerName, r.PermissionSets, f.Now))
	}
	return page, nil
}

// ListTokens lists an org's tokens of one kind, a page at a time, with no
// caller rules: for the command line that opens the database itself.
// Manager.UserTokens and Manager.ServiceTokens are the caller-aware ones.
func (s *Service) ListTokens(ctx context.Context, orgID string, kind Kind, q TokenQuery) (page *TokenPage, err error) {
	if kind != KindUser && kind != KindService {
		return nil, Errorf(Invalid, "kind must be user or service, not %q", kind)
	}
	err = s.view(ctx, func(tx Tx) error {
		org, err := tx.Org(orgID)
		if err != nil {
			return notFound(err, "org %s not found", orgID)
		}
		page, err = s.tokenPage(tx, org, kind, q)
		return err
	})
	return page, err
}

// TokenInfo describes one token, in any org when orgID is "", with no
// caller rules: for the command line that opens the database itself.
func (s *Service) TokenInfo(ctx context.Context, orgID, tokenID string) (info *TokenInfo, err error) {
	err = s.view(ctx, func(tx Tx) error {
		tok, err := tx.Token(orgID, tokenID)
		if err != nil {
			return notFound(err, "token %s not found", tokenID)
		}
		info, err = s.describe(tx, tok, "")
		return err
	})
	return info, err
}

// describe reads a token's org and owner names; orgName "" reads it too.
func (s *Service) describe(tx Tx, tok *Token, orgName string) (*TokenInfo, error) {
	if orgName == "" {
		org, err := tx.Org(tok.OrgID)
		if err != nil {
			return nil, fmt.Errorf("org of token %s: %w", tok.ID, err)
		}
		orgName = org.Name
	}
	var ownerName string
	var sets []string
	switch tok.Kind {
	case KindUser:
		u, err := tx.User(tok.OrgID, tok.OwnerID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if u != nil {
			ownerName = u.UserName
		}
	case KindService:
		su, err := tx.ServiceUser(tok.OrgID, tok.OwnerID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if su != nil {
			ownerName, sets = su.Name, su.PermissionSets
		}
	}
	info := infoOf(tok, orgName, ownerName, sets, s.Now().UTC())
	return &info, nil
}

// ---- Who the caller is ----

// Profile is what GET /me shows: who the caller is and what it holds.
type Profile struct {
	Kind    Kind
	OrgID   string
	OrgName string
	// ID and Name are the person's user ID and user name, or the service
	// user's.
	ID   string
	Name string
	// Token is the token the request came with; nil for a session.
	Token *TokenInfo
	// Groups are a person's groups; PermissionSets what the groups (and the
	// org's defaults) grant, or a service user's sets.
	Groups         []string
	PermissionSets []string
	Permissions    []string
	// ActiveUserTokens is how many of their MaxUserTokens active user
	// tokens a person holds; both are 0 for a service user.
	ActiveUserTokens int
	MaxUserTokens    int
}

// Me describes the caller.
func (m *Manager) Me(ctx context.Context) (p *Profile, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		p = &Profile{Kind: m.c.Kind, OrgID: a.org.ID, OrgName: a.org.Name, ID: m.c.OwnerID, Name: a.name,
			Groups: a.groups, PermissionSets: a.sets, Permissions: a.permissions}
		if p.Groups == nil && m.c.Kind == KindUser {
			p.Groups = []string{}
		}
		if p.PermissionSets == nil {
			p.PermissionSets = []string{}
		}
		if p.Permissions == nil {
			p.Permissions = []string{}
		}
		if a.token != nil {
			info := infoOf(a.token, a.org.Name, a.name, a.sets, m.s.Now().UTC())
			if m.c.Kind == KindUser {
				info.PermissionSets = nil
			}
			p.Token = &info
		}
		if m.c.Kind == KindUser {
			p.MaxUserTokens = MaxActiveUserTokens
			p.ActiveUserTokens, err = tx.CountTokens(TokenFilter{OrgID: a.org.ID, Kind: KindUser, OwnerID: m.c.OwnerID, Status: StatusActive})
		}
		return err
	})
	return p, err
}

// ---- User tokens ----

// CreateUserToken creates a user token for the caller, who must be a
// person: only a person creates a user token, for themselves. A person
// holds at most MaxActiveUserTokens active ones (LimitReached, saying so).
// The Secret is shown once and never stored.
func (m *Manager) CreateUserToken(ctx context.Context, name string) (*TokenInfo, Secret, error) {
	var a *authority
	gctx := withGuard(ctx, func(t *txn) (err error) {
		if a, err = m.s.authorize(t, m.c); err != nil {
			return err
		}
		t.setActor(a)
		if m.c.Kind != KindUser {
			return Errorf(Forbidden, "only a person creates a user token, for themselves: %s is not a person (create a service token instead)", a.who())
		}
		return nil
	})
	tok, secret, err := m.s.CreateUserToken(gctx, "", m.c.OrgID, m.c.OwnerID, name)
	if err != nil {
		return nil, Secret{}, err
	}
	info := infoOf(tok, a.org.Name, a.name, nil, m.s.Now().UTC())
	return &info, secret, nil
}

// UserTokens lists user tokens, a page at a time. With PermTokens the
// caller sees every user token of the org, each with its owner; q's owner
// selects one person (the caller's own ID for "my tokens"). A person
// without PermTokens sees their own tokens only, and naming anyone else is
// refused.
func (m *Manager) UserTokens(ctx context.Context, q TokenQuery) (page *TokenPage, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		if !a.has(PermTokens) {
			if m.c.Kind != KindUser {
				return a.require(PermTokens, "listing user tokens")
			}
			if (q.OwnerID != "" && q.OwnerID != m.c.OwnerID) || (q.OwnerName != "" && !strings.EqualFold(q.OwnerName, a.name)) {
				return a.require(PermTokens, "listing another person's user tokens")
			}
			q.OwnerID, q.OwnerName = m.c.OwnerID, ""
		}
		page, err = m.s.tokenPage(tx, a.org, KindUser, q)
		return err
	})
	return page, err
}

// UserToken shows one user token: the caller's own, or any of the org's
// with PermTokens.
func (m *Manager) UserToken(ctx context.Context, id string) (info *TokenInfo, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		tok, err := tokenOfKind(tx, m.c.OrgID, id, KindUser)
		if err != nil {
			return err
		}
		if !m.ownsUserToken(tok) {
			if err := a.require(PermTokens, "reading another person's user token"); err != nil {
				return err
			}
		}
		info, err = m.s.describe(tx, tok, a.org.Name)
		return err
	})
	return info, err
}

func (m *Manager) ownsUserToken(tok *Token) bool {
	return m.c.Kind == KindUser && tok.Kind == KindUser && tok.OwnerID == m.c.OwnerID
}

// DeleteUserToken deletes a user token: the caller's own, or any of the
// org's with PermTokens. The next request with it is refused. self reports
// that it was the token the request came with, which no longer works.
func (m *Manager) DeleteUserToken(ctx context.Context, id string) (self bool, err error) {
	gctx := withGuard(ctx, func(t *txn) error {
		a, err := m.s.authorize(t, m.c)
		if err != nil {
			return err
		}
		t.setActor(a)
		tok, err := tokenOfKind(t, m.c.OrgID, id, KindUser)
		if err != nil {
			return err
		}
		self = tok.ID == m.c.TokenID
		if m.ownsUserToken(tok) {
			return nil
		}
		return a.require(PermTokens, "deleting another person's user token")
	})
	if err := m.s.DeleteUserToken(gctx, "", m.c.OrgID, "", id); err != nil {
		return false, err
	}
	return self, nil
}

// ---- Service tokens ----

// CreateServiceToken creates a service user and its token (PermTokens).
// spec.PermissionSets nil means every set the caller may grant
// (PermissionSets lists them); each set must be one the caller may grant.
// spec.Secret must be nil: the secret is always generated.
func (m *Manager) CreateServiceToken(ctx context.Context, spec ServiceTokenSpec) (*TokenInfo, Secret, error) {
	if spec.Secret != nil {
		return nil, Secret{}, Errorf(Invalid, "a service token's secret is always generated by scimgate")
	}
	var info TokenInfo
	var secret Secret
	err := m.s.update(ctx, "", func(t *txn) error {
		a, err := m.s.authorize(t, m.c)
		if err != nil {
			return err
		}
		t.setActor(a)
		if err := a.require(PermTokens, "creating a service token"); err != nil {
			return err
		}
		if spec.PermissionSets == nil {
			spec.PermissionSets = a.grantable(m.s.policy)
		}
		if err := m.s.policy.CheckSets(spec.PermissionSets); err != nil {
			return err
		}
		if err := a.mayGrant(m.s.policy, spec.PermissionSets, fmt.Sprintf("the new service token %q", spec.Name)); err != nil {
			return err
		}
		var st *ServiceToken
		if st, secret, err = m.s.createServiceToken(t, m.c.OrgID, spec); err != nil {
			return err
		}
		info = infoOf(&st.Token, a.org.Name, st.Name, st.PermissionSets, t.now)
		return nil
	})
	if err != nil {
		return nil, Secret{}, fmt.Errorf("create service token %q: %w", spec.Name, err)
	}
	return &info, secret, nil
}

// ServiceTokens lists the org's service tokens, a page at a time
// (PermTokens). Owner filters do not apply.
func (m *Manager) ServiceTokens(ctx context.Context, q TokenQuery) (page *TokenPage, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		if err := a.require(PermTokens, "listing service tokens"); err != nil {
			return err
		}
		page, err = m.s.tokenPage(tx, a.org, KindService, q)
		return err
	})
	return page, err
}

// ServiceToken shows one service token: with PermTokens, or the caller's own.
func (m *Manager) ServiceToken(ctx context.Context, id string) (info *TokenInfo, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		tok, err := tokenOfKind(tx, m.c.OrgID, id, KindService)
		if err != nil {
			return err
		}
		if tok.ID != m.c.TokenID {
			if err := a.require(PermTokens, "reading a service token"); err != nil {
				return err
			}
		}
		info, err = m.s.describe(tx, tok, a.org.Name)
		return err
	})
	return info, err
}

// EditServiceToken renames a service token, changes its inactivity window
// or its permission sets (PermTokens). The token as edited must hold
// nothing the caller does not: a caller cannot edit a token more powerful
// than itself, even to rename it.
func (m *Manager) EditServiceToken(ctx context.Context, id string, e ServiceTokenEdit) (*TokenInfo, error) {
	var a *authority
	gctx := withGuard(ctx, func(t *txn) (err error) {
		if a, err = m.s.authorize(t, m.c); err != nil {
			return err
		}
		t.setActor(a)
		if err := a.require(PermTokens, "editing a service token"); err != nil {
			return err
		}
		tok, err := tokenOfKind(t, m.c.OrgID, id, KindService)
		if err != nil {
			return err
		}
		sets := e.PermissionSets
		if sets == nil {
			su, err := t.ServiceUser(tok.OrgID, tok.OwnerID)
			if err != nil {
				return fmt.Errorf("service user of token %s: %w", tok.ID, err)
			}
			sets = su.PermissionSets
		}
		return a.mayGrant(m.s.policy, sets, fmt.Sprintf("service token %q as edited", tok.Name))
	})
	st, err := m.s.EditServiceToken(gctx, "", m.c.OrgID, id, e)
	if err != nil {
		return nil, err
	}
	info := infoOf(&st.Token, a.org.Name, st.Name, st.PermissionSets, m.s.Now().UTC())
	return &info, nil
}

// RevokeServiceToken revokes a service token (PermTokens), or the token the
// request came with (no permission needed: any token may stop itself). self
// reports the latter: the caller's token no longer works.
func (m *Manager) RevokeServiceToken(ctx context.Context, id string) (self bool, err error) {
	gctx := withGuard(ctx, func(t *txn) error {
		a, err := m.s.authorize(t, m.c)
		if err != nil {
			return err
		}
		t.setActor(a)
		tok, err := tokenOfKind(t, m.c.OrgID, id, KindService)
		if err != nil {
			return err
		}
		if self = tok.ID == m.c.TokenID; self {
			return nil
		}
		return a.require(PermTokens, "revoking a service token")
	})
	if err := m.s.RevokeServiceToken(gctx, "", m.c.OrgID, id); err != nil {
		return false, err
	}
	return self, nil
}

// RegenerateServiceToken gives a revoked service token a new secret and
// makes it active again (PermTokens). Whoever regenerates a token holds its
// new secret, so the caller must hold every permission the token has.
func (m *Manager) RegenerateServiceToken(ctx context.Context, id string) (*TokenInfo, Secret, error) {
	var a *authority
	gctx := withGuard(ctx, func(t *txn) (err error) {
		if a, err = m.s.authorize(t, m.c); err != nil {
			return err
		}
		t.setActor(a)
		if err := a.require(PermTokens, "regenerating a service token"); err != nil {
			return err
		}
		tok, err := tokenOfKind(t, m.c.OrgID, id, KindService)
		if err != nil {
			return err
		}
		su, err := t.ServiceUser(tok.OrgID, tok.OwnerID)
		if err != nil {
			return fmt.Errorf("service user of token %s: %w", tok.ID, err)
		}
		return a.mayGrant(m.s.policy, su.PermissionSets, fmt.Sprintf("regenerated service token %q", tok.Name))
	})
	st, secret, err := m.s.RegenerateServiceToken(gctx, "", m.c.OrgID, id)
	if err != nil {
		return nil, Secret{}, err
	}
	info := infoOf(&st.Token, a.org.Name, st.Name, st.PermissionSets, m.s.Now().UTC())
	return &info, secret, nil
}

// DeleteServiceToken deletes a revoked service token and its service user
// (PermTokens).
func (m *Manager) DeleteServiceToken(ctx context.Context, id string) error {
	gctx := withGuard(ctx, func(t *txn) error {
		a, err := m.s.authorize(t, m.c)
		if err != nil {
			return err
		}
		t.setActor(a)
		return a.require(PermTokens, "deleting a service token")
	})
	return m.s.DeleteServiceToken(gctx, "", m.c.OrgID, id)
}

// RevokeOwnToken stops the token the request came with: a service token is
// revoked (an admin can regenerate it), a user token deleted. It returns
// the token as it was.
func (m *Manager) RevokeOwnToken(ctx context.Context) (*TokenInfo, error) {
	if m.c.TokenID == "" {
		return nil, Errorf(Invalid, "this session did not come with a token: there is no token of its own to revoke")
	}
	var info *TokenInfo
	err := m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		info, err = m.s.describe(tx, a.token, a.org.Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	if m.c.Kind == KindService {
		_, err = m.RevokeServiceToken(ctx, m.c.TokenID)
	} else {
		_, err = m.DeleteUserToken(ctx, m.c.TokenID)
	}
	return info, err
}

// ---- Permission sets, audit, seats ----

// PermissionSet is a permission set or single permission, and whether the
// caller may grant it.
type PermissionSet struct {
	Name        string
	Permissions []string
	// Grantable: the caller holds every permission of the set. Missing are
	// the ones it lacks.
	Grantable bool
	Missing   []string
}

// PermissionSets lists every set and single permission of the policy with
// whether the caller may grant it (PermTokens): the choices of a new
// service token, the grantable ones selected by default.
func (m *Manager) PermissionSets(ctx context.Context) (sets []PermissionSet, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		if err := a.require(PermTokens, "listing the permission sets a service token can be given"); err != nil {
			return err
		}
		for _, name := range m.s.policy.AllSets() {
			missing := a.missing(m.s.policy, name)
			sets = append(sets, PermissionSet{Name: name, Permissions: m.s.policy.Resolve([]string{name}),
				Grantable: missing == nil, Missing: missing})
		}
		return nil
	})
	return sets, err
}

// AuditQuery selects a page of audit events, newest first.
type AuditQuery struct {
	// Target selects the events about one thing (a token or user ID).
	Target string
	// Action selects one action, such as "token.revoke".
	Action string
	// Cursor is AuditPage.Next of the previous page; empty for the first.
	Cursor string
	// Limit is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
}

// AuditPage is one page of the audit trail, newest first.
type AuditPage struct {
	// OrgName is the org's name when the page is of one org.
	OrgName string
	Events  []AuditEvent
	// Next is the cursor of the next (older) page; empty on the last.
	Next string
}

// Audit reads the org's audit trail, a page at a time (PermTokens).
func (m *Manager) Audit(ctx context.Context, q AuditQuery) (page *AuditPage, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		if err := a.require(PermTokens, "reading the org's audit trail"); err != nil {
			return err
		}
		if page, err = auditPage(tx, a.org.ID, q); err == nil {
			page.OrgName = a.org.Name
		}
		return err
	})
	return page, err
}

// AuditTrail reads the audit trail of one org, or of every org with orgID
// "", a page at a time, with no caller rules: for the command line that
// opens the database itself.
func (s *Service) AuditTrail(ctx context.Context, orgID string, q AuditQuery) (page *AuditPage, err error) {
	err = s.view(ctx, func(tx Tx) error {
		page, err = auditPage(tx, orgID, q)
		return err
	})
	return page, err
}

func auditPage(tx Tx, orgID string, q AuditQuery) (*AuditPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	f := AuditFilter{OrgID: orgID, Target: q.Target, Action: q.Action, Limit: limit + 1}
	if q.Cursor != "" {
		parts, err := decodeCursor(auditCursor, q.Cursor, 1)
		if err != nil {
			return nil, err
		}
		if f.BeforeID, err = strconv.ParseInt(parts[0], 10, 64); err != nil || f.BeforeID <= 0 {
			return nil, Errorf(Invalid, "cursor %q is not one this listing issued: start again without it", q.Cursor)
		}
	}
	events, err := tx.Audit(f)
	if err != nil {
		return nil, err
	}
	page := &AuditPage{Events: events}
	if len(events) > limit {
		page.Events = events[:limit]
		page.Next = encodeCursor(auditCursor, strconv.FormatInt(events[limit-1].ID, 10))
	}
	return page, nil
}

// Seats is the seats report of an org: the seeds' billing rows.
type Seats struct {
	// OrgName is the org's name (Manager.Seats fills it in).
	OrgName string
	// ActivePeople is every active person of the org: each is a seat,
	// whether or not they hold a token.
	ActivePeople int
	// PeopleWithActiveTokens is how many of them hold an active user token.
	PeopleWithActiveTokens int
	// ServiceUsers are never a seat; ActiveServiceTokens is how many of
	// their tokens are active (at most MaxActiveServiceTokens).
	ServiceUsers        int
	ActiveServiceTokens int
}

// Seats reports the org's seats (PermUsers).
func (m *Manager) Seats(ctx context.Context) (seats *Seats, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		if err := a.require(PermUsers, "reading the org's seats"); err != nil {
			return err
		}
		if seats, err = tx.CountSeats(a.org.ID, m.s.Now().UTC()); err == nil {
			seats.OrgName = a.org.Name
		}
		return err
	})
	return seats, err
}

// Seats reports an org's seats with no caller rules: for the command line
// that opens the database itself.
func (s *Service) Seats(ctx context.Context, orgID string) (seats *Seats, err error) {
	err = s.view(ctx, func(tx Tx) error {
		org, err := tx.Org(orgID)
		if err != nil {
			return notFound(err, "org %s not found", orgID)
		}
		if seats, err = tx.CountSeats(org.ID, s.Now().UTC()); err == nil {
			seats.OrgName = org.Name
		}
		return err
	})
	return seats, err
}
