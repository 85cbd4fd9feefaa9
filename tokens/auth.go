package tokens

import (
	"context"
	"errors"
	"fmt"
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
	// NegativeCacheSize bounds how many unknown hashes are remembered, in a
	// cache of their own so that unknown tokens never evict good ones;
	// default 10000.
	NegativeCacheSize int
	// LookupConcurrency bounds the store lookups in flight at once, so that
	// a flood of misses cannot take every database connection; default 8.
	LookupConcurrency int
	// LookupQueueTimeout is how long a miss waits for a turn among them
	// before it is answered as unavailable; default 1s.
	LookupQueueTimeout time.Duration
	// IndexSyncInterval: once LoadIndex has run and while the follower is
	// current, a token missing from the index of live tokens is refused
	// after one more read of the change log, begun after the request
	// arrived (so that a token made on another replica a moment ago works).
	// Every waiting request shares that read; such reads begin at most this
	// often. Default 20ms.
	IndexSyncInterval time.Duration
	Now               func() time.Time
	Logger            *slog.Logger
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
	// lookupSlots holds a token per store lookup in flight.
	lookupSlots chan struct{}
	usage       usageBuffer

	// negative remembers hashes the store did not find, apart from cache.
	negative *lru.Cache[Hash, negativeEntry]
	// added grows whenever a change adds a token hash: negative entries
	// made before are void, so a token created since is looked up again.
	added atomic.Uint64

	// index is the set of every stored token's IndexKey; nil until
	// LoadIndex. Only trusted while the follower is current.
	index atomic.Pointer[tokenIndex]
	// catchUp is held by one CatchUp (or the end of LoadIndex) at a time,
	// so that changes apply in order.
	catchUp chan struct{}
	syncs   syncState

	stats authStats
	tel   authTelemetry

	// beforeCaching, if set, runs when a lookup's answer is about to be
	// cached: tests invalidate the token at that moment.
	beforeCaching func()
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
	if opts.NegativeCacheSize <= 0 {
		opts.NegativeCacheSize = 10000
	}
	if opts.LookupConcurrency <= 0 {
		opts.LookupConcurrency = 8
	}
	if opts.LookupQueueTimeout <= 0 {
		opts.LookupQueueTimeout = time.Second
	}
	if opts.IndexSyncInterval <= 0 {
		opts.IndexSyncInterval = 20 * time.Millisecond
	}
	a := &Authenticator{
		store:       store,
		policy:      policy,
		opts:        opts,
		byToken:     map[string]map[Hash]struct{}{},
		byOwner:     map[string]map[Hash]struct{}{},
		applied:     make(chan struct{}, 1),
		lookupSlots: make(chan struct{}, opts.LookupConcurrency),
		catchUp:     make(chan struct{}, 1),
	}
	a.syncs.next = make(chan struct{})
	a.cache, _ = lru.NewWithEvict(opts.CacheSize, a.unindex) // only fails for size <= 0
	a.negative, _ = lru.New[Hash, negativeEntry](opts.NegativeCacheSize)
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
		if e, err = a.miss(ctx, h, nowNano); err != nil {
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

// unknownEntry is the answer for a token that does not exist: one value,
// so that refusing one costs no allocation.
var unknownEntry = &entry{refusal: ErrUnknownToken}

// negativeEntry remembers that the store did not find a hash.
type negativeEntry struct {
	expires int64  // Unix nanoseconds
	added   uint64 // Authenticator.added when the store was asked
}

// errLookupsBusy answers a miss that found no free lookup slot in time.
var errLookupsBusy = fmt.Errorf("too many token lookups waiting for the database (auth.lookup_concurrency): %w", ErrUnavailable)

// miss answers a token that is not cached. While the index of live tokens
// is trusted, a token missing from it is refused without a store lookup;
// the negative cache answers unknown tokens the store was asked about
// lately; the store answers the rest.
func (a *Authenticator) miss(ctx context.Context, h Hash, nowNano int64) (*entry, error) {
	if x := a.trustedIndex(nowNano); x != nil {
		// Read before the index: a sync counts only if it began after this.
		began := a.syncs.begun.Load()
		k := IndexKey(h)
		if !x.contains(k) {
			switch fresh, err := a.awaitSync(ctx, began); {
			case err != nil:
				return nil, err
			case fresh && !x.contains(k):
				a.stats.indexRefusals.Add(1)
				return unknownEntry, nil
			}
			// Found after all, or the change log could not be read: the
			// store decides.
		}
	}
	if n, ok := a.negative.Get(h); ok && nowNano <= n.expires && n.added == a.added.Load() {
		a.stats.negativeHits.Add(1)
		return unknownEntry, nil
	}
	return a.lookup(ctx, h)
}

// trustedIndex is the index of live tokens if it may refuse tokens now: it
// is loaded and the follower has caught up within StaleAfter.
func (a *Authenticator) trustedIndex(nowNano int64) *tokenIndex {
	if a.opts.StaleAfter <= 0 || a.stale(nowNano) {
		return nil
	}
	return a.index.Load()
}

// lookup reads a token from the store, once for all concurrent callers, and
// at most LookupConcurrency at a time.
func (a *Authenticator) lookup(ctx context.Context, h Hash) (*entry, error) {
	v, err, _ := a.lookups.Do(string(h[:]), func() (any, error) {
		epoch, added := a.epoch.Load(), a.added.Load()
		// One caller's cancelled request must not fail the others waiting on it.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.LookupTimeout)
		defer cancel()
		if !a.takeLookupSlot(qctx) {
			a.stats.lookupsShed.Add(1)
			return nil, errLookupsBusy
		}
		a.stats.storeLookups.Add(1)
		cred, err := a.store.LookupCredential(qctx, h)
		<-a.lookupSlots
		now := a.opts.Now()
		switch {
		case errors.Is(err, ErrNotFound):
			if a.epoch.Load() == epoch {
				a.negative.Add(h, negativeEntry{expires: now.Add(a.opts.NegativeTTL).UnixNano(), added: added})
			}
			return unknownEntry, nil
		case err != nil:
			return nil, err
		}
		e := a.entryFor(cred, now)
		if a.epoch.Load() == epoch {
			if a.beforeCaching != nil {
				a.beforeCaching()
			}
			a.add(h, e, cred)
			// An invalidation between the check above and the entry being
			// indexed looked for it too early and evicted nothing: check
			// again now that it is cached. One after this finds it indexed.
			if a.epoch.Load() != epoch {
				a.cache.Remove(h)
			}
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

// takeLookupSlot waits up to LookupQueueTimeout (and ctx) for a turn to ask
// the store.
func (a *Authenticator) takeLookupSlot(ctx context.Context) bool {
	select {
	case a.lookupSlots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.opts.LookupQueueTimeout)
	defer t.Stop()
	select {
	case a.lookupSlots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
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
	a.mu.Lock()
	index(a.byToken, c.Token.ID, h)
	index(a.byOwner, c.Token.OwnerID, h)
	a.mu.Unlock()
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
// owner, and the index of live tokens add and drop the hashes they name.
// Service.OnCommit and the follower call it.
func (a *Authenticator) Apply(changes []Change) {
	if len(changes) == 0 {
		return
	}
	if x := a.index.Load(); x != nil {
		x.apply(changes)
	}
	for _, c := range changes {
		if c.Added != 0 {
			a.added.Add(1) // after the index: a miss that sees the new count sees the hash
			break
		}
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

// Purge empties the cache and the negative cache.
func (a *Authenticator) Purge() {
	a.epoch.Add(1)
	a.cache.Purge()
	a.negative.Purge()
}

// Len is the number of cached entries.
func (a *Authenticator) Len() int { return a.cache.Len() }
