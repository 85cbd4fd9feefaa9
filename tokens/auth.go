package tokens

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// Identity is who a token speaks for: what the proxy forwards upstream and
// logs. One Identity is shared by every request with the same token, so it
// must not be changed.
type Identity struct {
	TokenID       string
	DisplayPrefix string
	Kind          Kind
	OwnerID       string
	OwnerName     string
	OrgID         string
	OrgName       string
	Groups        []string // a person's groups; nil for service tokens
	Sites         []string // a person's sites, sorted; nil for service tokens
	Permissions   []string // sorted
}

// Has reports whether the identity holds a permission.
func (id *Identity) Has(permission string) bool {
	for _, p := range id.Permissions {
		if p == permission {
			return true
		}
	}
	return false
}

// AuthError is why a token is refused, in words a caller can act on.
type AuthError struct {
	Reason  string // a stable, machine-readable word
	Message string
}

func (e *AuthError) Error() string { return e.Message }

// The refusals. They are values, not built per request, so that a flood of
// bad tokens costs no allocation.
var (
	ErrNoToken          = &AuthError{"missing", "no bearer token: send the header Authorization: Bearer <token>"}
	ErrMalformedToken   = &AuthError{"malformed", "the bearer token is not a well-formed scimgate token: check that it was copied whole"}
	ErrUnknownToken     = &AuthError{"unknown", "the token does not exist: it was deleted, regenerated or never issued"}
	ErrRevokedToken     = &AuthError{"revoked", "the token was revoked: regenerate it or create a new one"}
	ErrInactiveToken    = &AuthError{"inactive", "the token expired after going unused for longer than its inactivity window: create a new one"}
	ErrOwnerDeactivated = &AuthError{"owner_deactivated", "the token's user is deactivated: its tokens no longer work"}
	ErrOwnerRemoved     = &AuthError{"owner_removed", "the token's user has left the organization: its tokens no longer work"}
)

// AuthOptions tune the Authenticator. Zero values take the defaults shown.
type AuthOptions struct {
	CacheSize   int           // entries, default 100000
	CacheTTL    time.Duration // how long a looked-up token is trusted at most, default 5m
	NegativeTTL time.Duration // how long an unknown hash is remembered, default 10s
	// StaleAfter: when the change-log follower has not caught up for this
	// long, cached entries are not trusted and every request asks the store.
	// 0 means no follower runs and entries are trusted until CacheTTL.
	StaleAfter time.Duration
	// LookupTimeout bounds one store lookup on a cache miss, default 5s.
	LookupTimeout time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// Authenticator turns a bearer token into an Identity. A cached token costs
// no I/O and no allocation: the checksum refuses garbage, an LRU keyed by the
// token's hash answers the rest, and uses are counted in memory for a
// background flush. Only a miss reads the store, once for all concurrent
// requests with the same token.
type Authenticator struct {
	store  Store
	policy *Policy
	opts   AuthOptions

	cache *lru.Cache[Hash, *entry]
	// byToken and byOwner find the cache entries a change names.
	mu      sync.Mutex
	byToken map[string]map[Hash]struct{}
	byOwner map[string]map[Hash]struct{}
	// epoch grows with every invalidation; a lookup that raced with one does
	// not cache its possibly stale answer.
	epoch atomic.Uint64

	// synced is when the follower last caught up (Unix nanoseconds).
	synced atomic.Int64
	// seq is the last change-log entry applied.
	seq atomic.Int64
	// applied receives a value (coalesced) whenever seq grows; see Applied.
	applied chan struct{}

	lookups singleflight.Group
	usage   usageBuffer

	stats authStats
	tel   authTelemetry
}

// entry is what the cache holds for one token hash: an identity, or the
// refusal the store's answer implies.
type entry struct {
	identity *Identity
	refusal  *AuthError
	expires  int64 // Unix nanoseconds

	// For the inactivity check and the usage flush (identity entries only).
	tokenID       string
	ownerID       string
	activeSince   int64 // Unix seconds: last stored use, or (re)activation
	windowSeconds int64
	lastUse       atomic.Int64 // Unix seconds, in this process
	uses          atomic.Int64 // since the last flush
}

// NewAuthenticator returns an Authenticator reading store and resolving
// permissions with policy.
func NewAuthenticator(store Store, policy *Policy, opts AuthOptions) *Authenticator {
	if opts.CacheSize <= 0 {
		opts.CacheSize = 100000
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 5 * time.Minute
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 10 * time.Second
	}
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		store:   store,
		policy:  policy,
		opts:    opts,
		byToken: map[string]map[Hash]struct{}{},
		byOwner: map[string]map[Hash]struct{}{},
		applied: make(chan struct{}, 1),
	}
	a.cache, _ = lru.NewWithEvict(opts.CacheSize, a.unindex) // only fails for size <= 0
	a.synced.Store(opts.Now().UnixNano())
	return a
}

// Authenticate checks a bearer token. It returns an *AuthError for a refused
// token, and an error wrapping ErrUnavailable when the token is not cached
// and the store cannot be asked: never an identity it could not verify.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (*Identity, error) {
	if !a.tel.instrumented {
		id, _, err := a.authenticate(ctx, token)
		return id, err
	}
	start := time.Now()
	var span trace.Span
	if a.tel.tracing && trace.SpanFromContext(ctx).IsRecording() {
		ctx, span = a.tel.tracer.Start(ctx, "scimgate.auth")
	}
	id, hit, err := a.authenticate(ctx, token)
	a.tel.latency.Record(ctx, time.Since(start).Seconds())
	if span != nil {
		outcome, reason := "allowed", ""
		switch e := err.(type) {
		case nil:
		case *AuthError:
			outcome, reason = "refused", e.Reason
		default:
			outcome, reason = "unavailable", "store_unavailable"
			span.RecordError(err)
			span.SetStatus(codes.Error, "store unavailable")
		}
		span.SetAttributes(attribute.Bool("scimgate.auth.cache_hit", hit),
			attribute.String("scimgate.auth.outcome", outcome), attribute.String("scimgate.auth.reason", reason))
		if id != nil {
			span.SetAttributes(attribute.String("scimgate.token.id", id.TokenID))
		}
		span.End()
	}
	return id, err
}

func (a *Authenticator) authenticate(ctx context.Context, token string) (id *Identity, hit bool, err error) {
	defer func() {
		// A type switch, not errors.As: refusals are never wrapped here, and
		// errors.As would cost an allocation per request.
		switch e := err.(type) {
		case nil:
			a.stats.allowed.Add(1)
		case *AuthError:
			a.stats.refusal(e)
		default:
			a.stats.unavailable.Add(1)
		}
	}()
	if token == "" {
		return nil, false, ErrNoToken
	}
	secret, err := Parse(token)
	if err != nil {
		return nil, false, ErrMalformedToken
	}
	h := secret.Hash()
	now := a.opts.Now()
	nowNano := now.UnixNano()
	e, hit := a.cache.Get(h)
	if !hit || nowNano > e.expires || a.stale(nowNano) {
		hit = false
		a.stats.misses.Add(1)
		if e, err = a.lookup(ctx, h); err != nil {
			return nil, false, err
		}
	} else {
		a.stats.hits.Add(1)
	}
	if e.refusal != nil {
		return nil, hit, e.refusal
	}
	sec := nowNano / int64(time.Second)
	last := e.lastUse.Load()
	if max(last, e.activeSince)+e.windowSeconds < sec {
		return nil, hit, ErrInactiveToken
	}
	if last != sec {
		e.lastUse.Store(sec)
	}
	if e.uses.Add(1) == 1 {
		a.usage.add(e)
	}
	return e.identity, hit, nil
}

func (a *Authenticator) stale(nowNano int64) bool {
	return a.opts.StaleAfter > 0 && nowNano-a.synced.Load() > int64(a.opts.StaleAfter)
}

// lookup reads a token from the store, once for all concurrent callers.
func (a *Authenticator) lookup(ctx context.Context, h Hash) (*entry, error) {
	v, err, _ := a.lookups.Do(string(h[:]), func() (any, error) {
		epoch := a.epoch.Load()
		// One caller's cancelled request must not fail the others waiting on it.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.LookupTimeout)
		defer cancel()
		cred, err := a.store.LookupCredential(qctx, h)
		now := a.opts.Now()
		var e *entry
		switch {
		case errors.Is(err, ErrNotFound):
			e = &entry{refusal: ErrUnknownToken, expires: now.Add(a.opts.NegativeTTL).UnixNano()}
		case err != nil:
			return nil, err
		default:
			e = a.entryFor(cred, now)
		}
		if a.epoch.Load() == epoch {
			a.add(h, e, cred)
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

func (a *Authenticator) entryFor(c *StoredCredential, now time.Time) *entry {
	t := &c.Token
	e := &entry{tokenID: t.ID, ownerID: t.OwnerID, expires: now.Add(a.opts.CacheTTL).UnixNano()}
	switch {
	case t.Status == StatusRevoked:
		e.refusal = ErrRevokedToken
	case t.Status == StatusExpired && t.StatusReason == ReasonUserRemoved, c.OwnerRemoved:
		e.refusal = ErrOwnerRemoved
	case t.Status == StatusExpired && t.StatusReason == ReasonUserDeactivated, !c.OwnerActive:
		e.refusal = ErrOwnerDeactivated
	case t.Status != StatusActive:
		e.refusal = ErrInactiveToken
	}
	if e.refusal != nil {
		return e
	}
	sets := c.PermissionSets
	if t.Kind == KindUser {
		sets = a.policy.UserSets(c.Groups)
	}
	e.identity = &Identity{
		TokenID:       t.ID,
		DisplayPrefix: t.DisplayPrefix,
		Kind:          t.Kind,
		OwnerID:       t.OwnerID,
		OwnerName:     c.OwnerName,
		OrgID:         t.OrgID,
		OrgName:       c.OrgName,
		Groups:        c.Groups,
		Sites:         c.Sites,
		Permissions:   a.policy.Resolve(sets),
	}
	e.activeSince = max(t.LastUsedAt.Unix(), t.StatusChangedAt.Unix(), t.CreatedAt.Unix())
	e.windowSeconds = int64(t.InactivityWindow() / time.Second)
	return e
}

func (a *Authenticator) add(h Hash, e *entry, c *StoredCredential) {
	if c != nil {
		a.mu.Lock()
		index(a.byToken, c.Token.ID, h)
		index(a.byOwner, c.Token.OwnerID, h)
		a.mu.Unlock()
	}
	if a.cache.Add(h, e) {
		a.stats.evictions.Add(1)
	}
}

func index(m map[string]map[Hash]struct{}, key string, h Hash) {
	set := m[key]
	if set == nil {
		set = map[Hash]struct{}{}
		m[key] = set
	}
	set[h] = struct{}{}
}

// unindex is the cache's eviction callback.
func (a *Authenticator) unindex(h Hash, e *entry) {
	if e.tokenID == "" {
		return // an unknown hash was never indexed
	}
	a.mu.Lock()
	drop(a.byToken, e.tokenID, h)
	drop(a.byOwner, e.ownerID, h)
	a.mu.Unlock()
}

func drop(m map[string]map[Hash]struct{}, key string, h Hash) {
	if set := m[key]; set != nil {
		delete(set, h)
		if len(set) == 0 {
			delete(m, key)
		}
	}
}

// Apply makes the cache forget every token the changes name, directly or by
// owner. Service.OnCommit and the follower call it.
func (a *Authenticator) Apply(changes []Change) {
	if len(changes) == 0 {
		return
	}
	a.epoch.Add(1)
	var hashes []Hash
	a.mu.Lock()
	for _, c := range changes {
		for h := range a.byToken[c.TokenID] {
			hashes = append(hashes, h)
		}
		for h := range a.byOwner[c.OwnerID] {
			hashes = append(hashes, h)
		}
	}
	a.mu.Unlock()
	for _, h := range hashes {
		if a.cache.Remove(h) {
			a.stats.invalidations.Add(1)
		}
	}
}

// Purge empties the cache.
func (a *Authenticator) Purge() {
	a.epoch.Add(1)
	a.cache.Purge()
}

// Len is the number of cached entries.
func (a *Authenticator) Len() int { return a.cache.Len() }
