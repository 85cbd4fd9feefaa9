package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ---- User tokens ----

// CreateUserToken creates a token for an active person. A person holds at
// most MaxActiveUserTokens active tokens. The Secret is shown once and never
// stored.
func (s *Service) CreateUserToken(ctx context.Context, actor Actor, orgID, userID, name string) (*Token, Secret, error) {
	if err := checkName("token name", name); err != nil {
		return nil, Secret{}, err
	}
	secret := NewSecret(KindUser)
	tok := &Token{ID: NewID("tok"), OrgID: orgID, Kind: KindUser, OwnerID: userID, Name: name,
		DisplayPrefix: secret.DisplayPrefix(), Hash: secret.Hash(), Status: StatusActive}
	err := s.update(ctx, actor, func(t *txn) error {
		org, err := t.Org(orgID)
		if err != nil {
			return notFound(err, "org %s not found", orgID)
		}
		u, err := t.LockUser(orgID, userID)
		if err == nil && u.Removed {
			err = ErrNotFound
		}
		if err != nil {
			return notFound(err, "user %s not found", userID)
		}
		if !u.Active {
			return Errorf(WrongState, "user %q is deactivated: only an active user can have tokens", u.UserName)
		}
		n, err := t.CountTokens(TokenFilter{OrgID: orgID, Kind: KindUser, OwnerID: userID, Status: StatusActive})
		if err != nil {
			return err
		}
		if n >= MaxActiveUserTokens {
			return Errorf(LimitReached, "user %q already has %d active tokens, the most a user may have: delete one first", u.UserName, n)
		}
		tok.InactivityDays = org.UserTokenInactivityDays
		tok.CreatedAt, tok.StatusChangedAt = t.now, t.now
		if err := t.CreateToken(tok); err != nil {
			return err
		}
		return t.audit(orgID, "token.create", tok.ID, fmt.Sprintf("user token %q (%s) for %s", name, tok.DisplayPrefix, u.UserName))
	})
	if err != nil {
		return nil, Secret{}, fmt.Errorf("create token for user %s: %w", userID, err)
	}
	return tok, secret, nil
}

// UserTokens lists an org's user tokens; with userID, only that person's.
func (s *Service) UserTokens(ctx context.Context, orgID, userID string) (toks []Token, err error) {
	err = s.view(ctx, func(tx Tx) error {
		toks, err = tx.Tokens(TokenFilter{OrgID: orgID, Kind: KindUser, OwnerID: userID})
		return err
	})
	return toks, err
}

// DeleteUserToken deletes a user token; the next request with it is refused.
// With ownerID set, only a token of that person can be deleted.
func (s *Service) DeleteUserToken(ctx context.Context, actor Actor, orgID, ownerID, tokenID string) error {
	err := s.update(ctx, actor, func(t *txn) error {
		tok, err := tokenOfKind(t, orgID, tokenID, KindUser)
		if err != nil {
			return err
		}
		if ownerID != "" && tok.OwnerID != ownerID {
			return Errorf(NotFound, "user token %s not found", tokenID)
		}
		if err := t.DeleteToken(tok.OrgID, tok.ID); err != nil {
			return err
		}
		if err := t.audit(tok.OrgID, "token.delete", tok.ID, fmt.Sprintf("user token %q (%s)", tok.Name, tok.DisplayPrefix)); err != nil {
			return err
		}
		return t.rekeyed(tok.ID, tok.Hash, nil)
	})
	if err != nil {
		return fmt.Errorf("delete user token %s: %w", tokenID, err)
	}
	return nil
}

// tokenOfKind reads a token; orgID "" finds it in any org.
func tokenOfKind(tx Tx, orgID, id string, kind Kind) (*Token, error) {
	if !isText(id) {
		return nil, Errorf(NotFound, "%s token %q not found", kind, id)
	}
	tok, err := tx.Token(orgID, id)
	if err == nil && tok.Kind != kind {
		err = ErrNotFound
	}
	if err != nil {
		return nil, notFound(err, "%s token %s not found", kind, id)
	}
	return tok, nil
}

// ---- Service tokens ----

// ServiceToken is a service token with the service user that owns it.
type ServiceToken struct {
	Token
	PermissionSets []string
}

// ServiceTokenSpec is what a new service token is created with.
type ServiceTokenSpec struct {
	Name string
	// InactivityDays is one of ServiceInactivityDays; 0 means the default, 45.
	InactivityDays int
	// PermissionSets are set or permission names; nil means all of them.
	PermissionSets []string
	// Secret, if set, is used instead of a fresh one (the bootstrap token
	// given by the operator).
	Secret *Secret
}

func checkServiceDays(days int) error {
	if !slices.Contains(ServiceInactivityDays, days) {
		return Errorf(Invalid, "inactivity window must be 31, 45, 60 or 180 days, not %d", days)
	}
	return nil
}

// CreateServiceToken creates a service user and its token. An org holds at
// most MaxActiveServiceTokens active service tokens.
func (s *Service) CreateServiceToken(ctx context.Context, actor Actor, orgID string, spec ServiceTokenSpec) (*ServiceToken, Secret, error) {
	var st *ServiceToken
	var secret Secret
	err := s.update(ctx, actor, func(t *txn) (err error) {
		st, secret, err = s.createServiceToken(t, orgID, spec)
		return err
	})
	if err != nil {
		return nil, Secret{}, fmt.Errorf("create service token %q: %w", spec.Name, err)
	}
	return st, secret, nil
}

func (s *Service) createServiceToken(t *txn, orgID string, spec ServiceTokenSpec) (*ServiceToken, Secret, error) {
	if err := checkName("token name", spec.Name); err != nil {
		return nil, Secret{}, err
	}
	if spec.InactivityDays == 0 {
		spec.InactivityDays = DefaultInactivityDays
	}
	if err := checkServiceDays(spec.InactivityDays); err != nil {
		return nil, Secret{}, err
	}
	sets := spec.PermissionSets
	if sets == nil {
		sets = s.policy.AllSets()
	}
	if err := s.policy.CheckSets(sets); err != nil {
		return nil, Secret{}, err
	}
	secret := NewSecret(KindService)
	if spec.Secret != nil {
		if spec.Secret.Kind != KindService {
			return nil, Secret{}, Errorf(Invalid, "a service token must start with %s", servicePrefix)
		}
		secret = *spec.Secret
	}
	if _, err := t.LockOrg(orgID); err != nil {
		return nil, Secret{}, notFound(err, "org %s not found", orgID)
	}
	if err := serviceLimit(t, orgID); err != nil {
		return nil, Secret{}, err
	}
	su := &ServiceUser{ID: NewID("svc"), OrgID: orgID, Name: spec.Name, PermissionSets: sortedUnique(sets), CreatedAt: t.now}
	tok := &Token{ID: NewID("tok"), OrgID: orgID, Kind: KindService, OwnerID: su.ID, Name: spec.Name,
		DisplayPrefix: secret.DisplayPrefix(), Hash: secret.Hash(), InactivityDays: spec.InactivityDays,
		Status: StatusActive, CreatedAt: t.now, StatusChangedAt: t.now}
	if err := t.CreateServiceUser(su); err != nil {
		return nil, Secret{}, err
	}
	if err := t.CreateToken(tok); err != nil {
		return nil, Secret{}, err
	}
	err := t.audit(orgID, "token.create", tok.ID, fmt.Sprintf("service token %q (%s), %d days, sets %s",
		tok.Name, tok.DisplayPrefix, tok.InactivityDays, strings.Join(su.PermissionSets, ",")))
	return &ServiceToken{Token: *tok, PermissionSets: su.PermissionSets}, secret, err
}

// serviceLimit must run with the org locked.
func serviceLimit(tx Tx, orgID string) error {
	n, err := tx.CountTokens(TokenFilter{OrgID: orgID, Kind: KindService, Status: StatusActive})
	if err != nil {
		return err
	}
	if n >= MaxActiveServiceTokens {
		return Errorf(LimitReached, "the org already has %d active service tokens, the most it may have: revoke one first", n)
	}
	return nil
}

// ServiceTokens lists an org's service tokens with their permission sets.
func (s *Service) ServiceTokens(ctx context.Context, orgID string) (out []ServiceToken, err error) {
	err = s.view(ctx, func(tx Tx) error {
		out = nil // a second run, after a lost connection, starts afresh
		toks, err := tx.Tokens(TokenFilter{OrgID: orgID, Kind: KindService})
		if err != nil {
			return err
		}
		for _, tok := range toks {
			su, err := tx.ServiceUser(tok.OrgID, tok.OwnerID)
			if err != nil {
				return fmt.Errorf("service user of token %s: %w", tok.ID, err)
			}
			out = append(out, ServiceToken{Token: tok, PermissionSets: su.PermissionSets})
		}
		return nil
	})
	return out, err
}

// ServiceTokenEdit changes a service token; nil fields stay as they are.
type ServiceTokenEdit struct {
	Name           *string
	InactivityDays *int
	PermissionSets []string // nil: unchanged
}

// EditServiceToken renames a service token, changes its inactivity window or
// its permission sets. The change reaches every cache at once.
func (s *Service) EditServiceToken(ctx context.Context, actor Actor, orgID, tokenID string, e ServiceTokenEdit) (*ServiceToken, error) {
	if e.Name != nil {
		if err := checkName("token name", *e.Name); err != nil {
			return nil, err
		}
	}
	if e.InactivityDays != nil {
		if err := checkServiceDays(*e.InactivityDays); err != nil {
			return nil, err
		}
	}
	if e.PermissionSets != nil {
		if err := s.policy.CheckSets(e.PermissionSets); err != nil {
			return nil, err
		}
	}
	var out *ServiceToken
	err := s.update(ctx, actor, func(t *txn) error {
		tok, err := tokenOfKind(t, orgID, tokenID, KindService)
		if err != nil {
			return err
		}
		su, err := t.ServiceUser(tok.OrgID, tok.OwnerID)
		if err != nil {
			return fmt.Errorf("service user of token %s: %w", tok.ID, err)
		}
		var what []string
		if e.Name != nil && *e.Name != tok.Name {
			what = append(what, fmt.Sprintf("name %q → %q", tok.Name, *e.Name))
			tok.Name, su.Name = *e.Name, *e.Name
		}
		if e.InactivityDays != nil && *e.InactivityDays != tok.InactivityDays {
			what = append(what, fmt.Sprintf("inactivity %d → %d days", tok.InactivityDays, *e.InactivityDays))
			tok.InactivityDays = *e.InactivityDays
		}
		if e.PermissionSets != nil {
			sets := sortedUnique(e.PermissionSets)
			if !slices.Equal(sets, su.PermissionSets) {
				what = append(what, fmt.Sprintf("sets %s → %s", strings.Join(su.PermissionSets, ","), strings.Join(sets, ",")))
				su.PermissionSets = sets
			}
		}
		out = &ServiceToken{Token: *tok, PermissionSets: su.PermissionSets}
		if len(what) == 0 {
			return nil
		}
		if err := t.UpdateServiceUser(su); err != nil {
			return err
		}
		if err := t.UpdateToken(tok); err != nil {
			return err
		}
		if err := t.audit(tok.OrgID, "token.edit", tok.ID, strings.Join(what, "; ")); err != nil {
			return err
		}
		return t.invalidate(tok.ID, "")
	})
	if err != nil {
		return nil, fmt.Errorf("edit service token %s: %w", tokenID, err)
	}
	return out, nil
}

// RevokeServiceToken stops an active service token at once. It can then be
// regenerated or deleted.
func (s *Service) RevokeServiceToken(ctx context.Context, actor Actor, orgID, tokenID string) error {
	err := s.update(ctx, actor, func(t *txn) error {
		tok, err := tokenOfKind(t, orgID, tokenID, KindService)
		if err != nil {
			return err
		}
		if tok.Status == StatusRevoked {
			return Errorf(WrongState, "service token %s is already revoked", tokenID)
		}
		tok.Status, tok.StatusReason, tok.StatusChangedAt = StatusRevoked, ReasonRevoked, t.now
		if err := t.UpdateToken(tok); err != nil {
			return err
		}
		if err := t.audit(tok.OrgID, "token.revoke", tok.ID, fmt.Sprintf("service token %q (%s)", tok.Name, tok.DisplayPrefix)); err != nil {
			return err
		}
		return t.invalidate(tok.ID, "")
	})
	if err != nil {
		return fmt.Errorf("revoke service token %s: %w", tokenID, err)
	}
	return nil
}

// RegenerateServiceToken gives a revoked service token a new secret and makes
// it active again, for the same service user. The old secret never works
// again. Only a revoked token can be regenerated.
func (s *Service) RegenerateServiceToken(ctx context.Context, actor Actor, orgID, tokenID string) (*ServiceToken, Secret, error) {
	secret := NewSecret(KindService)
	var out *ServiceToken
	err := s.update(ctx, actor, func(t *txn) error {
		tok, err := tokenOfKind(t, orgID, tokenID, KindService)
		if err != nil {
			return err
		}
		if tok.Status != StatusRevoked {
			return Errorf(WrongState, "service token %s is %s: only a revoked token can be regenerated (revoke it first)", tokenID, tok.Status)
		}
		if _, err := t.LockOrg(tok.OrgID); err != nil {
			return err
		}
		if err := serviceLimit(t, tok.OrgID); err != nil {
			return err
		}
		su, err := t.ServiceUser(tok.OrgID, tok.OwnerID)
		if err != nil {
			return fmt.Errorf("service user of token %s: %w", tok.ID, err)
		}
		oldHash := tok.Hash
		tok.Hash, tok.DisplayPrefix = secret.Hash(), secret.DisplayPrefix()
		tok.Status, tok.StatusReason, tok.StatusChangedAt = StatusActive, "", t.now
		if err := t.UpdateToken(tok); err != nil {
			return err
		}
		if err := t.audit(tok.OrgID, "token.regenerate", tok.ID, fmt.Sprintf("service token %q, new secret %s", tok.Name, tok.DisplayPrefix)); err != nil {
			return err
		}
		out = &ServiceToken{Token: *tok, PermissionSets: su.PermissionSets}
		return t.rekeyed(tok.ID, oldHash, &tok.Hash)
	})
	if err != nil {
		return nil, Secret{}, fmt.Errorf("regenerate service token %s: %w", tokenID, err)
	}
	return out, secret, nil
}

// DeleteServiceToken deletes a revoked service token and its service user.
// An active token must be revoked first.
func (s *Service) DeleteServiceToken(ctx context.Context, actor Actor, orgID, tokenID string) error {
	err := s.update(ctx, actor, func(t *txn) error {
		tok, err := tokenOfKind(t, orgID, tokenID, KindService)
		if err != nil {
			return err
		}
		if tok.Status == StatusActive {
			return Errorf(WrongState, "service token %s is active: revoke it before deleting it", tokenID)
		}
		if err := t.DeleteToken(tok.OrgID, tok.ID); err != nil {
			return err
		}
		if err := t.DeleteServiceUser(tok.OrgID, tok.OwnerID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := t.audit(tok.OrgID, "token.delete", tok.ID, fmt.Sprintf("service token %q (%s)", tok.Name, tok.DisplayPrefix)); err != nil {
			return err
		}
		return t.rekeyed(tok.ID, tok.Hash, nil)
	})
	if err != nil {
		return fmt.Errorf("delete service token %s: %w", tokenID, err)
	}
	return nil
}

// ---- Inactivity, audit, bootstrap ----

// ExpireInactive marks every active token whose inactivity window ended
// more than grace ago as expired, with reason inactivity. The authenticator
// already refuses such tokens; this makes the state visible and final.
// Grace covers last-used times that replicas still hold in memory (they
// are written in batches): a token used just before its window ended must
// not be expired because the use is not in the store yet.
func (s *Service) ExpireInactive(ctx context.Context, grace time.Duration) (expired int, err error) {
	err = s.update(ctx, Actor("scimgate"), func(t *txn) error {
		toks, err := t.InactiveTokens(t.now.Add(-grace))
		if err != nil {
			return err
		}
		for i := range toks {
			tok := &toks[i]
			tok.Status, tok.StatusReason, tok.StatusChangedAt = StatusExpired, ReasonInactivity, t.now
			if err := t.UpdateToken(tok); err != nil {
				return err
			}
			detail := fmt.Sprintf("%s token %q (%s): unused for %d days", tok.Kind, tok.Name, tok.DisplayPrefix, tok.InactivityDays)
			if err := t.audit(tok.OrgID, "token.expire", tok.ID, detail); err != nil {
				return err
			}
			if err := t.invalidate(tok.ID, ""); err != nil {
				return err
			}
		}
		expired = len(toks)
		t.expire(ReasonInactivity, expired)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire inactive tokens: %w", err)
	}
	return expired, nil
}

// Audit lists audit events, newest first.
func (s *Service) Audit(ctx context.Context, f AuditFilter) (events []AuditEvent, err error) {
	err = s.view(ctx, func(tx Tx) error {
		events, err = tx.Audit(f)
		return err
	})
	return events, err
}

// Bootstrap makes a new installation usable: when there is no org yet, it
// creates org "default" and a service token "bootstrap" that holds the
// built-in permissions, in one transaction. With a plaintext token given,
// that one is used. It returns a nil token when the store already had an
// org; replicas that bootstrap together on one PostgreSQL database get a
// Conflict error but one.
func (s *Service) Bootstrap(ctx context.Context, plaintext string) (*ServiceToken, Secret, error) {
	spec := ServiceTokenSpec{Name: "bootstrap", PermissionSets: BuiltinPermissions}
	if plaintext != "" {
		sec, err := Parse(plaintext)
		if err != nil {
			return nil, Secret{}, Errorf(Invalid, "the bootstrap token is not a well-formed scimgate service token (leave it unset and scimgate makes one)")
		}
		spec.Secret = &sec
	}
	var st *ServiceToken
	var secret Secret
	err := s.update(ctx, Operator, func(t *txn) error {
		orgs, err := t.Orgs()
		if err != nil || len(orgs) > 0 {
			return err
		}
		org, err := createOrg(t, "default", 0)
		if err != nil {
			return err
		}
		st, secret, err = s.createServiceToken(t, org.ID, spec)
		return err
	})
	if err != nil {
		return nil, Secret{}, fmt.Errorf("bootstrap: %w", err)
	}
	return st, secret, nil
}
