package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// Caller is who makes a management request: a person, through one of their
// user tokens or a console session, or a service user, through its token.
// A transport builds it from what it authenticated (CallerOf for a token)
// and passes it to Service.As.
//
// A Caller names the caller; it grants nothing by itself. Every Manager call
// re-reads, in its own transaction, whether the caller's token is still
// active, whether a person is still active, and which permissions the
// caller holds now (a person's through their groups, a service user's
// directly). So a Caller kept in a session never does more than its owner
// may do at the moment of the call, and a change made by SCIM or another
// admin applies to the very next call.
type Caller struct {
	OrgID string
	// Kind is KindUser for a person, KindService for a service user.
	Kind Kind
	// OwnerID is the person's user ID or the service user's ID.
	OwnerID string
	// TokenID is the token the request came with; it must still be active.
	// It is empty for a person signed in another way (a console session
	// after SSO); a service user always acts through its token.
	TokenID string
	// Via says, for the audit trail, how a caller without a token signed
	// in, e.g. "console". Ignored when TokenID is set.
	Via string
}

// CallerOf is the caller an authenticated token speaks for.
func CallerOf(id *Identity) Caller {
	return Caller{OrgID: id.OrgID, Kind: id.Kind, OwnerID: id.OwnerID, TokenID: id.TokenID}
}

// authority is what a caller is and may do, as read in the transaction of
// one call.
type authority struct {
	caller Caller
	org    *Org
	name   string // the person's user name, or the service user's name
	token  *Token // the token the request came with, if any
	groups []string
	// sets are the permission sets held; permissions what they resolve to.
	sets        []string
	permissions []string
}

// authorize reads what c is and may do now. A caller whose token or owner
// no longer works gets an Unauthenticated error.
//
// The inactivity window is not checked here: the authenticator checks it
// against the last use it holds in memory, which the store learns only at
// the next flush.
func (s *Service) authorize(tx Tx, c Caller) (*authority, error) {
	if c.OrgID == "" || c.OwnerID == "" || (c.Kind != KindUser && c.Kind != KindService) {
		return nil, Errorf(Unauthenticated, "no caller: authenticate with a token")
	}
	if c.Kind == KindService && c.TokenID == "" {
		return nil, Errorf(Unauthenticated, "a service user acts only through its token")
	}
	org, err := tx.Org(c.OrgID)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(Unauthenticated, "the caller's org %s no longer exists", c.OrgID)
	}
	if err != nil {
		return nil, err
	}
	a := &authority{caller: c, org: org}
	if c.TokenID != "" {
		tok, err := tx.Token(c.OrgID, c.TokenID)
		if err == nil && (tok.Kind != c.Kind || tok.OwnerID != c.OwnerID) {
			err = ErrNotFound
		}
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, Errorf(Unauthenticated, "the token this request was made with no longer exists: it was deleted")
		case err != nil:
			return nil, err
		case tok.Status != StatusActive:
			return nil, Errorf(Unauthenticated, "the token this request was made with is %s: it no longer works", describeStatus(tok.Status, tok.StatusReason))
		}
		a.token = tok
	}
	switch c.Kind {
	case KindUser:
		u, err := tx.User(c.OrgID, c.OwnerID)
		if err == nil && u.Removed {
			err = ErrNotFound
		}
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, Errorf(Unauthenticated, "user %s is no longer a member of org %q", c.OwnerID, org.Name)
		case err != nil:
			return nil, err
		case !u.Active:
			return nil, Errorf(Unauthenticated, "user %q is deactivated: their tokens and sessions no longer work", u.UserName)
		}
		a.name = u.UserName
		if a.groups, err = tx.GroupsOfUser(u.ID); err != nil {
			return nil, err
		}
		a.sets = sortedUnique(s.policy.UserSets(a.groups))
	case KindService:
		su, err := tx.ServiceUser(c.OrgID, c.OwnerID)
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(Unauthenticated, "service user %s no longer exists", c.OwnerID)
		}
		if err != nil {
			return nil, err
		}
		a.name = su.Name
		a.sets = su.PermissionSets
	}
	a.permissions = s.policy.Resolve(a.sets)
	return a, nil
}

func describeStatus(st Status, reason Reason) string {
	if reason == "" || string(reason) == string(st) {
		return string(st)
	}
	return fmt.Sprintf("%s (%s)", st, reason)
}

// who names the caller in a refusal: `user "alice"`, `service user "ci"`.
func (a *authority) who() string {
	if a.caller.Kind == KindService {
		return fmt.Sprintf("service user %q", a.name)
	}
	return fmt.Sprintf("user %q", a.name)
}

// actor names the caller in the audit trail: the person or service user,
// and the token or the way they signed in.
func (a *authority) actor() Actor {
	var b strings.Builder
	if a.caller.Kind == KindService {
		b.WriteString("service user ")
	} else {
		b.WriteString("user ")
	}
	b.WriteString(a.name)
	switch {
	case a.token != nil:
		fmt.Fprintf(&b, " (token %s %s)", a.token.ID, a.token.DisplayPrefix)
	case a.caller.Via != "":
		fmt.Fprintf(&b, " (%s)", a.caller.Via)
	}
	return Actor(b.String())
}

func (a *authority) has(permission string) bool {
	_, ok := slices.BinarySearch(a.permissions, permission)
	return ok
}

// require refuses unless the caller holds permission; doing says what the
// caller tried, for the message: "listing service tokens".
func (a *authority) require(permission, doing string) error {
	if a.has(permission) {
		return nil
	}
	return Errorf(Forbidden, "%s needs permission %s, which %s does not hold", doing, permission, a.who())
}

// mayGrant refuses permission sets that hold a permission the caller lacks,
// naming the first such permission: nobody grants a permission they do not
// hold. what names the token that would hold them.
func (a *authority) mayGrant(p *Policy, sets []string, what string) error {
	for _, perm := range p.Resolve(sets) {
		if !a.has(perm) {
			return Errorf(Forbidden, "%s would hold permission %s, which %s does not hold: nobody grants a permission they do not hold",
				what, perm, a.who())
		}
	}
	return nil
}

// grantable lists the sets and single permissions whose every permission
// the caller holds: what a new service token gets when none are chosen.
func (a *authority) grantable(p *Policy) []string {
	var out []string
	for _, set := range p.AllSets() {
		if a.missing(p, set) == nil {
			out = append(out, set)
		}
	}
	return out
}

// missing lists the permissions of a set the caller does not hold.
func (a *authority) missing(p *Policy, set string) []string {
	var out []string
	for _, perm := range p.Resolve([]string{set}) {
		if !a.has(perm) {
			out = append(out, perm)
		}
	}
	return out
}

// setActor makes the caller the actor of the transaction's audit events.
func (t *txn) setActor(a *authority) {
	t.actor = a.actor()
	t.span.SetAttributes(attribute.String("scimgate.actor", string(t.actor)))
}

// guardKey carries the guard of a caller-aware call in the context of the
// Service method it reuses.
type guardKey struct{}

// guard runs first in the transaction of a Service call made for a Caller:
// it checks that the caller may make the change (reading what it needs),
// and makes the caller the actor of the change's audit events. The change
// itself is the Service method's, so the command line and the caller-aware
// calls share every lifecycle rule, and the check and the change commit or
// fail together.
type guard func(t *txn) error

func withGuard(ctx context.Context, g guard) context.Context {
	return context.WithValue(ctx, guardKey{}, g)
}

// runGuard runs the guard ctx carries, if any.
func runGuard(ctx context.Context, t *txn) error {
	if g, ok := ctx.Value(guardKey{}).(guard); ok {
		return g(t)
	}
	return nil
}
