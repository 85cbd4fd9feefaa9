package tokens

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Actor names who made a change, for the audit trail.
type Actor string

// Operator is the actor of the command line: whoever can reach the database.
const Operator Actor = "operator"

// TokenActor names a change made with an API token (an admin, or an
// identity provider over SCIM). It carries the token's ID and display prefix,
// never the token.
func TokenActor(tokenID, ownerName string) Actor {
	return Actor("token:" + tokenID + " (" + ownerName + ")")
}

// Service applies the lifecycle rules of orgs, users, groups and tokens. Every
// change runs in one store transaction together with its audit events and
// change-log entries.
type Service struct {
	store  Store
	policy *Policy

	// Now is the clock; tests replace it.
	Now func() time.Time
	// OnCommit, if set, receives the change-log entries of each committed
	// transaction before the call that made them returns, so that this
	// process's own cache forgets them at once.
	OnCommit func([]Change)
	// UnknownSites says what CreateUser and ReplaceUser do with a site the
	// org does not have; empty means CreateUnknownSites.
	UnknownSites UnknownSitePolicy

	tel serviceTelemetry
}

// NewService returns a Service over store that resolves permissions with policy.
func NewService(store Store, policy *Policy) *Service {
	return &Service{store: store, policy: policy, Now: time.Now}
}

// Policy returns the permission policy the service enforces.
func (s *Service) Policy() *Policy { return s.policy }

// txn wraps a Tx with what every change also writes.
type txn struct {
	Tx
	actor   Actor
	now     time.Time
	changes []Change
	expired map[Reason]int
	span    trace.Span
	named   bool
}

func (t *txn) audit(orgID, action, target, detail string) error {
	if !t.named {
		// The span is named after what the change does: "scimgate.token.revoke".
		t.span.SetName("scimgate." + action)
		t.span.SetAttributes(attribute.String("scimgate.org.id", orgID), attribute.String("scimgate.target", target))
		t.named = true
	}
	return t.AppendAudit(&AuditEvent{OrgID: orgID, At: t.now, Actor: string(t.actor), Action: action, Target: target, Detail: detail})
}

// expire counts tokens expired for a reason, for the metric and the trace.
func (t *txn) expire(reason Reason, n int) {
	if n == 0 {
		return
	}
	if t.expired == nil {
		t.expired = map[Reason]int{}
	}
	t.expired[reason] += n
	t.span.AddEvent("tokens expired", trace.WithAttributes(attribute.Int("scimgate.tokens.expired", n), attribute.String("scimgate.reason", string(reason))))
}

// invalidate notes that a token, or every token of an owner, may have to be
// refused or re-read. The change-log rows are written when fn is done: the
// append takes a database-wide lock on PostgreSQL (so that sequences commit in
// order), and taking it last, with every row lock already held, is what keeps
// two transactions from waiting on each other.
func (t *txn) invalidate(tokenID, ownerID string) error {
	t.changes = append(t.changes, Change{TokenID: tokenID, OwnerID: ownerID, At: t.now})
	return nil
}

// CreateToken creates a token and announces its hash to every process's
// index of live tokens. Overriding the store's method here means no
// lifecycle rule that creates a token can forget the announcement: an
// index that misses a token refuses it on every other replica.
func (t *txn) CreateToken(tok *Token) error {
	if err := t.Tx.CreateToken(tok); err != nil {
		return err
	}
	t.changes = append(t.changes, Change{TokenID: tok.ID, At: t.now, Added: IndexKey(tok.Hash)})
	return nil
}

// rekeyed notes that a token's hash changed from old to fresh (a
// regenerated secret) or, with fresh nil, is gone (a deleted token): caches
// forget the token and indexes of live tokens follow.
func (t *txn) rekeyed(tokenID string, old Hash, fresh *Hash) error {
	c := Change{TokenID: tokenID, At: t.now, Removed: IndexKey(old)}
	if fresh != nil {
		c.Added = IndexKey(*fresh)
	}
	t.changes = append(t.changes, c)
	return nil
}

func (s *Service) update(ctx context.Context, actor Actor, fn func(*txn) error) (err error) {
	span := trace.SpanFromContext(ctx) // a no-op span unless instrumented
	if s.tel.tracer != nil {
		ctx, span = s.tel.tracer.Start(ctx, "scimgate.tokens.update", trace.WithAttributes(attribute.String("scimgate.actor", string(actor))))
		defer func() {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, string(ErrorCode(err)))
			}
			span.End()
		}()
	}
	var committed *txn
	err = s.store.Update(ctx, func(tx Tx) error {
		t := &txn{Tx: tx, actor: actor, now: s.Now().UTC(), span: noopSpan}
		if s.tel.tracer != nil {
			t.span = span
		}
		if err := runGuard(ctx, t); err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
		for i := range t.changes {
			if err := tx.AppendChange(&t.changes[i]); err != nil {
				return err
			}
		}
		committed = t
		return nil
	})
	if err != nil {
		return err
	}
	if len(committed.changes) > 0 && s.OnCommit != nil {
		s.OnCommit(committed.changes)
	}
	if s.tel.expired != nil {
		for reason, n := range committed.expired {
			s.tel.expired.Add(ctx, int64(n), metric.WithAttributes(attribute.String("reason", string(reason))))
		}
	}
	return nil
}

var noopSpan = trace.SpanFromContext(context.Background())

func (s *Service) view(ctx context.Context, fn func(Tx) error) error {
	return s.store.View(ctx, fn)
}

// notFound turns a store's ErrNotFound into an error that says what is missing.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, ErrNotFound) {
		return Errorf(NotFound, format, args...)
	}
	return err
}

// NewID returns a random identifier with a readable prefix ("tok", "usr", …).
func NewID(prefix string) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b [16]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + "_" + string(b[:])
}

func checkName(what, name string) error {
	if strings.TrimSpace(name) == "" {
		return Errorf(Invalid, "%s must not be empty", what)
	}
	if len(name) > 200 {
		return Errorf(Invalid, "%s is longer than 200 bytes", what)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return Errorf(Invalid, "%s must not contain control characters", what)
	}
	return nil
}

// maxDisplayNameBytes bounds a user's display name: it is indexed (for
// filters and sorting), and an index entry has a size limit.
const maxDisplayNameBytes = 1024

func checkDisplayName(name string) error {
	if len(name) > maxDisplayNameBytes {
		return Errorf(Invalid, "displayName is longer than %d bytes", maxDisplayNameBytes)
	}
	return nil
}

// ---- Organizations ----

// CreateOrg creates an organization. userTokenDays is the inactivity window
// of its user tokens; 0 means DefaultInactivityDays.
func (s *Service) CreateOrg(ctx context.Context, actor Actor, name string, userTokenDays int) (*Org, error) {
	var o *Org
	err := s.update(ctx, actor, func(t *txn) (err error) {
		o, err = createOrg(t, name, userTokenDays)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create org %q: %w", name, err)
	}
	return o, nil
}

func createOrg(t *txn, name string, userTokenDays int) (*Org, error) {
	if err := checkName("org name", name); err != nil {
		return nil, err
	}
	if userTokenDays == 0 {
		userTokenDays = DefaultInactivityDays
	}
	if userTokenDays < 1 || userTokenDays > 3650 {
		return nil, Errorf(Invalid, "user token inactivity window must be 1 to 3650 days, not %d", userTokenDays)
	}
	if _, err := t.OrgByName(name); err == nil {
		return nil, Errorf(Conflict, "org %q already exists", name)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	o := &Org{ID: NewID("org"), Name: name, UserTokenInactivityDays: userTokenDays, CreatedAt: t.now}
	if err := t.CreateOrg(o); err != nil {
		return nil, err
	}
	return o, t.audit(o.ID, "org.create", o.ID, "org "+name)
}

// Orgs lists every organization.
func (s *Service) Orgs(ctx context.Context) (orgs []Org, err error) {
	err = s.view(ctx, func(tx Tx) error {
		orgs, err = tx.Orgs()
		return err
	})
	return orgs, err
}

// OrgByName finds an organization by its name.
func (s *Service) OrgByName(ctx context.Context, name string) (o *Org, err error) {
	err = s.view(ctx, func(tx Tx) error {
		o, err = tx.OrgByName(name)
		return notFound(err, "org %q not found", name)
	})
	return o, err
}

// ---- Users ----

// CreateUser adds a person to an org. The user name must be free in the org,
// whatever its letter case.
func (s *Service) CreateUser(ctx context.Context, actor Actor, u *User) error {
	if err := checkName("userName", u.UserName); err != nil {
		return err
	}
	if err := checkDisplayName(u.DisplayName); err != nil {
		return err
	}
	u.ID = NewID("usr")
	err := s.update(ctx, actor, func(t *txn) error {
		if _, err := t.Org(u.OrgID); err != nil {
			return notFound(err, "org %s not found", u.OrgID)
		}
		if err := userNameFree(t, u.OrgID, u.UserName, ""); err != nil {
			return err
		}
		u.CreatedAt, u.UpdatedAt, u.Version = t.now, t.now, 1
		if err := t.CreateUser(u); err != nil {
			return err
		}
		if err := t.audit(u.OrgID, "user.create", u.ID, "user "+u.UserName); err != nil {
			return err
		}
		return s.writeSites(t, u)
	})
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.UserName, err)
	}
	return nil
}

func userNameFree(tx Tx, orgID, userName, exceptID string) error {
	other, err := tx.UserByName(orgID, userName)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case other.ID != exceptID:
		return Errorf(Conflict, "user name %q is already taken in this org", userName)
	}
	return nil
}

// User returns a user of an org that has not been removed.
func (s *Service) User(ctx context.Context, orgID, id string) (u *User, err error) {
	err = s.view(ctx, func(tx Tx) error {
		u, err = tx.User(orgID, id)
		if err == nil && u.Removed {
			err = ErrNotFound
		}
		return notFound(err, "user %s not found", id)
	})
	return u, err
}

// UserByName finds a user of an org by user name, case-insensitively.
func (s *Service) UserByName(ctx context.Context, orgID, userName string) (u *User, err error) {
	err = s.view(ctx, func(tx Tx) error {
		u, err = tx.UserByName(orgID, userName)
		return notFound(err, "user %q not found", userName)
	})
	return u, err
}

// Users lists an org's users and how many match in all.
func (s *Service) Users(ctx context.Context, orgID string, f UserFilter) (users []User, total int, err error) {
	err = s.view(ctx, func(tx Tx) error {
		users, total, err = tx.Users(orgID, f)
		return err
	})
	return users, total, err
}

// ReplaceUser writes every attribute of u, as a SCIM PUT or PATCH does. If
// ifVersion is not 0 it must match the stored version. A user who goes from
// active to inactive loses every active token, in the same transaction. It
// returns how many tokens were expired.
func (s *Service) ReplaceUser(ctx context.Context, actor Actor, u *User, ifVersion int64) (expired int, err error) {
	if err := checkName("userName", u.UserName); err != nil {
		return 0, err
	}
	if err := checkDisplayName(u.DisplayName); err != nil {
		return 0, err
	}
	err = s.update(ctx, actor, func(t *txn) error {
		old, err := t.LockUser(u.OrgID, u.ID)
		if err == nil && old.Removed {
			err = ErrNotFound
		}
		if err != nil {
			return notFound(err, "user %s not found", u.ID)
		}
		if ifVersion != 0 && ifVersion != old.Version {
			return Errorf(VersionChanged, "user %s is at version %d, not %d", u.ID, old.Version, ifVersion)
		}
		if !strings.EqualFold(old.UserName, u.UserName) {
			if err := userNameFree(t, u.OrgID, u.UserName, u.ID); err != nil {
				return err
			}
		}
		u.CreatedAt, u.UpdatedAt, u.Version, u.Removed = old.CreatedAt, t.now, old.Version+1, false
		if err := t.UpdateUser(u); err != nil {
			return err
		}
		if err := t.audit(u.OrgID, "user.update", u.ID, "user "+u.UserName); err != nil {
			return err
		}
		if err := s.writeSites(t, u); err != nil {
			return err
		}
		if old.Active && !u.Active {
			expired, err = s.deactivated(t, u, "user.deactivate", ReasonUserDeactivated)
			return err
		}
		// A new user name, new sites or a reactivation change what the
		// cache holds.
		return t.invalidate("", u.ID)
	})
	if err != nil {
		return 0, fmt.Errorf("update user %s: %w", u.ID, err)
	}
	return expired, nil
}

// DeactivateUser marks a person inactive and expires their tokens, as an
// identity provider does over SCIM. It is for setups without SCIM.
func (s *Service) DeactivateUser(ctx context.Context, actor Actor, orgID, userID string) (expired int, err error) {
	err = s.update(ctx, actor, func(t *txn) error {
		u, err := t.LockUser(orgID, userID)
		if err == nil && u.Removed {
			err = ErrNotFound
		}
		if err != nil {
			return notFound(err, "user %s not found", userID)
		}
		if !u.Active {
			return Errorf(WrongState, "user %q is already inactive", u.UserName)
		}
		u.Active, u.UpdatedAt, u.Version = false, t.now, u.Version+1
		if err := t.UpdateUser(u); err != nil {
			return err
		}
		expired, err = s.deactivated(t, u, "user.deactivate", ReasonUserDeactivated)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("deactivate user %s: %w", userID, err)
	}
	return expired, nil
}

// RemoveUser deletes a person from an org (SCIM DELETE): the user leaves
// every group and every active token of theirs expires. The row stays for
// the audit trail.
func (s *Service) RemoveUser(ctx context.Context, actor Actor, orgID, userID string) (expired int, err error) {
	err = s.update(ctx, actor, func(t *txn) error {
		u, err := t.LockUser(orgID, userID)
		if err == nil && u.Removed {
			err = ErrNotFound
		}
		if err != nil {
			return notFound(err, "user %s not found", userID)
		}
		groups, _, err := t.Groups(orgID, GroupFilter{MemberID: userID})
		if err != nil {
			return err
		}
		for i := range groups {
			g := &groups[i]
			g.MemberIDs = slices.DeleteFunc(g.MemberIDs, func(id string) bool { return id == userID })
			g.UpdatedAt, g.Version = t.now, g.Version+1
			if err := t.UpdateGroup(g); err != nil {
				return err
			}
		}
		u.Active, u.Removed, u.UpdatedAt, u.Version = false, true, t.now, u.Version+1
		if err := t.UpdateUser(u); err != nil {
			return err
		}
		if err := t.SetUserSites(u.ID, nil); err != nil {
			return err
		}
		u.Sites = []string{}
		expired, err = s.deactivated(t, u, "user.remove", ReasonUserRemoved)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove user %s: %w", userID, err)
	}
	return expired, nil
}

// deactivated records a user's deactivation or removal and expires their
// active tokens with reason.
func (s *Service) deactivated(t *txn, u *User, action string, reason Reason) (int, error) {
	if err := t.audit(u.OrgID, action, u.ID, "user "+u.UserName); err != nil {
		return 0, err
	}
	n, err := s.expireUserTokens(t, u, reason)
	if err != nil {
		return 0, err
	}
	t.expire(reason, n)
	return n, t.invalidate("", u.ID)
}

func (s *Service) expireUserTokens(t *txn, u *User, reason Reason) (int, error) {
	active, err := t.Tokens(TokenFilter{OrgID: u.OrgID, Kind: KindUser, OwnerID: u.ID, Status: StatusActive})
	if err != nil {
		return 0, err
	}
	for i := range active {
		tok := &active[i]
		tok.Status, tok.StatusReason, tok.StatusChangedAt = StatusExpired, reason, t.now
		if err := t.UpdateToken(tok); err != nil {
			return 0, err
		}
		if err := t.audit(u.OrgID, "token.expire", tok.ID, fmt.Sprintf("user token %q (%s) of %s: %s", tok.Name, tok.DisplayPrefix, u.UserName, reason)); err != nil {
			return 0, err
		}
	}
	return len(active), nil
}

// ExpireUserTokens expires every active token of a user with the given
// reason (ReasonUserDeactivated or ReasonUserRemoved).
func (s *Service) ExpireUserTokens(ctx context.Context, actor Actor, orgID, userID string, reason Reason) (expired int, err error) {
	if reason != ReasonUserDeactivated && reason != ReasonUserRemoved {
		return 0, Errorf(Invalid, "reason must be %s or %s", ReasonUserDeactivated, ReasonUserRemoved)
	}
	err = s.update(ctx, actor, func(t *txn) error {
		u, err := t.LockUser(orgID, userID)
		if err != nil {
			return notFound(err, "user %s not found", userID)
		}
		if expired, err = s.expireUserTokens(t, u, reason); err != nil {
			return err
		}
		t.expire(reason, expired)
		return t.invalidate("", u.ID)
	})
	if err != nil {
		return 0, fmt.Errorf("expire tokens of user %s: %w", userID, err)
	}
	return expired, nil
}

// ---- Groups ----

// CreateGroup creates a group with its members.
func (s *Service) CreateGroup(ctx context.Context, actor Actor, g *Group) error {
	if err := checkName("displayName", g.DisplayName); err != nil {
		return err
	}
	g.ID = NewID("grp")
	err := s.update(ctx, actor, func(t *txn) error {
		if err := groupNameFree(t, g.OrgID, g.DisplayName, ""); err != nil {
			return err
		}
		if err := checkMembers(t, g, nil); err != nil {
			return err
		}
		g.CreatedAt, g.UpdatedAt, g.Version = t.now, t.now, 1
		if err := t.CreateGroup(g); err != nil {
			return err
		}
		if err := t.audit(g.OrgID, "group.create", g.ID, "group "+g.DisplayName); err != nil {
			return err
		}
		return invalidateOwners(t, g.MemberIDs)
	})
	if err != nil {
		return fmt.Errorf("create group %q: %w", g.DisplayName, err)
	}
	return nil
}

func groupNameFree(tx Tx, orgID, name, exceptID string) error {
	same, _, err := tx.Groups(orgID, GroupFilter{DisplayName: name})
	if err != nil {
		return err
	}
	for _, o := range same {
		if o.ID != exceptID {
			return Errorf(Conflict, "group %q already exists in this org", name)
		}
	}
	return nil
}

// checkMembers refuses members that are not users of the org. Those in
// known (the members the group already has) are not read again; the others
// are read in batches, not one query each.
func checkMembers(tx Tx, g *Group, known []string) error {
	g.MemberIDs = sortedUnique(g.MemberIDs)
	isKnown := make(map[string]bool, len(known))
	for _, id := range known {
		isKnown[id] = true
	}
	var added []string
	for _, id := range g.MemberIDs {
		if !isKnown[id] {
			added = append(added, id)
		}
	}
	if len(added) == 0 {
		return nil
	}
	users, err := tx.DisplayNames(g.OrgID, added)
	if err != nil {
		return err
	}
	for _, id := range added {
		if _, ok := users[id]; !ok {
			return Errorf(NotFound, "member %s is not a user of this org", id)
		}
	}
	return nil
}

func invalidateOwners(t *txn, userIDs []string) error {
	for _, id := range userIDs {
		if err := t.invalidate("", id); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceGroup writes a group's name and members. If ifVersion is not 0 it
// must match the stored version. Members who joined or left, or all members
// on a rename, get their cached permissions re-read.
func (s *Service) ReplaceGroup(ctx context.Context, actor Actor, g *Group, ifVersion int64) error {
	if err := checkName("displayName", g.DisplayName); err != nil {
		return err
	}
	err := s.update(ctx, actor, func(t *txn) error {
		old, err := t.LockGroup(g.OrgID, g.ID)
		if err != nil {
			return notFound(err, "group %s not found", g.ID)
		}
		if ifVersion != 0 && ifVersion != old.Version {
			return Errorf(VersionChanged, "group %s is at version %d, not %d", g.ID, old.Version, ifVersion)
		}
		if !strings.EqualFold(old.DisplayName, g.DisplayName) {
			if err := groupNameFree(t, g.OrgID, g.DisplayName, g.ID); err != nil {
				return err
			}
		}
		if err := checkMembers(t, g, old.MemberIDs); err != nil {
			return err
		}
		g.CreatedAt, g.UpdatedAt, g.Version = old.CreatedAt, t.now, old.Version+1
		if err := t.UpdateGroup(g); err != nil {
			return err
		}
		if err := t.audit(g.OrgID, "group.update", g.ID, "group "+g.DisplayName); err != nil {
			return err
		}
		affected := symmetricDifference(old.MemberIDs, g.MemberIDs)
		if old.DisplayName != g.DisplayName {
			affected = append(slices.Clone(old.MemberIDs), g.MemberIDs...)
		}
		return invalidateOwners(t, sortedUnique(affected))
	})
	if err != nil {
		return fmt.Errorf("update group %s: %w", g.ID, err)
	}
	return nil
}

// symmetricDifference is what is in a or in b but not both, in time linear
// in their lengths: groups have tens of thousands of members.
func symmetricDifference(a, b []string) []string {
	inA := make(map[string]bool, len(a))
	for _, x := range a {
		inA[x] = true
	}
	inB := make(map[string]bool, len(b))
	for _, x := range b {
		inB[x] = true
	}
	var d []string
	for _, x := range a {
		if !inB[x] {
			d = append(d, x)
		}
	}
	for _, x := range b {
		if !inA[x] {
			d = append(d, x)
		}
	}
	return d
}

// DeleteGroup deletes a group; its members lose what it granted at once.
func (s *Service) DeleteGroup(ctx context.Context, actor Actor, orgID, id string) error {
	err := s.update(ctx, actor, func(t *txn) error {
		g, err := t.LockGroup(orgID, id)
		if err != nil {
			return notFound(err, "group %s not found", id)
		}
		if err := t.DeleteGroup(orgID, id); err != nil {
			return err
		}
		if err := t.audit(orgID, "group.delete", id, "group "+g.DisplayName); err != nil {
			return err
		}
		return invalidateOwners(t, g.MemberIDs)
	})
	if err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	return nil
}

// Group returns a group of an org.
func (s *Service) Group(ctx context.Context, orgID, id string) (g *Group, err error) {
	err = s.view(ctx, func(tx Tx) error {
		g, err = tx.Group(orgID, id)
		return notFound(err, "group %s not found", id)
	})
	return g, err
}

// Groups lists an org's groups and how many match in all.
func (s *Service) Groups(ctx context.Context, orgID string, f GroupFilter) (groups []Group, total int, err error) {
	err = s.view(ctx, func(tx Tx) error {
		groups, total, err = tx.Groups(orgID, f)
		return err
	})
	return groups, total, err
}
