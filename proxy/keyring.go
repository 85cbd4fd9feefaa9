package proxy

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/scimgate/scimgate/tokens"
)

// SigningKeyStore keeps the assertion signing keys where every replica
// finds them; tokens/sqlstore implements it.
type SigningKeyStore interface {
	// SigningKeys returns every stored key.
	SigningKeys(ctx context.Context) ([]tokens.SigningKey, error)
	// UpdateSigningKeys gives the stored keys to decide under a lock that
	// every other caller (on any replica) waits for, then adds and deletes
	// what decide returns, in one transaction.
	UpdateSigningKeys(ctx context.Context, decide func(keys []tokens.SigningKey) (add []tokens.SigningKey, remove []string, err error)) error
}

// The signature algorithms of the assertion.
const (
	ES256 = "ES256" // ECDSA on P-256 with SHA-256: what every JWT library verifies
	EdDSA = "EdDSA" // Ed25519
)

// KeyringOptions configure a Keyring. Zero values take the defaults shown.
type KeyringOptions struct {
	// Algorithm is the algorithm of new keys: ES256 (default) or EdDSA.
	// Changing it rotates to a key of the new algorithm, published
	// PublishAhead before it signs.
	Algorithm string
	// RotateEvery is how long a key signs before the next one takes over,
	// default 7 days.
	RotateEvery time.Duration
	// PublishAhead is how long the next key is in the JWKS before it signs
	// anything, default 1h: upstreams that cache the JWKS for less than
	// this never meet a key they do not know.
	PublishAhead time.Duration
	// AssertionTTL is the longest lifetime of an assertion, default 2m: a
	// key stays published that long (and a minute more, for clock skew)
	// after the last moment any replica may sign with it.
	AssertionTTL time.Duration
	// PollInterval is how often the stored keys are read (new keys of
	// other replicas) and rotation is considered, default
	// min(PublishAhead/4, 1m).
	PollInterval time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// clockSkew is what keys stay published beyond the lifetime of their last
// assertion, for upstreams whose clock is behind.
const clockSkew = time.Minute

// Keyring holds the assertion signing keys that every replica shares
// through the store, rotates them, and serves them as a JWKS.
//
// Keys rotate on a schedule with overlap: the next key is created and
// published PublishAhead before it signs; a key signs until the next one
// is active (at the latest until its NotAfter, RotateEvery+PublishAhead
// after it started, in case a replica never learns of the next key); and
// it stays published until every assertion it may have signed has
// expired. Any replica may rotate, under the store's lock, so a fleet adds
// one key, not one per replica. Replicas learn of keys by reading the
// store every PollInterval: a new key is published an hour (PublishAhead)
// before it signs, so a poll of a few rows a minute is immediate enough,
// and it needs nothing of the token change log.
type Keyring struct {
	store SigningKeyStore
	opts  KeyringOptions
	state atomic.Pointer[keySet]
	mu    sync.Mutex // one Refresh at a time
}

// keySet is the keys as loaded, ActiveFrom order, and their JWKS.
type keySet struct {
	keys []*signingKey
	jwks []byte
}

type signingKey struct {
	id         string
	algorithm  string
	signer     jose.Signer
	public     jose.JSONWebKey
	activeFrom int64 // Unix nanoseconds
	notAfter   int64
}

// errNoSigningKey is an assertion that cannot be signed: no loaded key may
// sign now, which happens only when this replica could not read the store
// for longer than PublishAhead around a rotation.
var errNoSigningKey = errors.New("no signing key is active: the store could not be read to load the current one")

// NewKeyring loads the keys from store, creating the first one on the
// first start and rotating if one is due. Run keeps them current.
func NewKeyring(ctx context.Context, store SigningKeyStore, opts KeyringOptions) (*Keyring, error) {
	if opts.Algorithm == "" {
		opts.Algorithm = ES256
	}
	if opts.Algorithm != ES256 && opts.Algorithm != EdDSA {
		return nil, fmt.Errorf("signing algorithm %q: want %s or %s", opts.Algorithm, ES256, EdDSA)
	}
	if opts.RotateEvery <= 0 {
		opts.RotateEvery = 7 * 24 * time.Hour
	}
	if opts.PublishAhead <= 0 {
		opts.PublishAhead = time.Hour
	}
	if opts.AssertionTTL <= 0 {
		opts.AssertionTTL = 2 * time.Minute
	}
	if opts.RotateEvery < 2*opts.PublishAhead {
		return nil, fmt.Errorf("key rotation every %s must be at least twice the publication ahead of use (%s)", opts.RotateEvery, opts.PublishAhead)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = min(opts.PublishAhead/4, time.Minute)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Keyring{store: store, opts: opts}
	if err := k.Refresh(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Run refreshes the keys every PollInterval until ctx ends.
func (k *Keyring) Run(ctx context.Context) {
	t := time.NewTicker(k.opts.PollInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := k.Refresh(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			k.opts.Logger.Warn("refresh assertion signing keys: signing on with the keys loaded", "err", err)
			failing = true
		case err == nil && failing:
			k.opts.Logger.Info("refresh assertion signing keys: the store answers again")
			failing = false
		}
	}
}

// Refresh reads the stored keys, rotates if a rotation is due (or creates
// the first key), and loads the result.
func (k *Keyring) Refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := k.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := k.opts.Now()
	if add, remove := k.plan(keys, now); add || len(remove) > 0 {
		// Decide again under the lock: another replica may have just done it.
		var added []tokens.SigningKey
		var removed []string
		err := k.store.UpdateSigningKeys(ctx, func(keys []tokens.SigningKey) ([]tokens.SigningKey, []string, error) {
			add, remove := k.plan(keys, now)
			added, removed = nil, remove
			if add {
				key, err := k.generate(keys, now)
				if err != nil {
					return nil, nil, err
				}
				added = []tokens.SigningKey{key}
			}
			return added, removed, nil
		})
		if err != nil {
			return err
		}
		for _, key := range added {
			k.opts.Logger.Info("assertion signing key added", "kid", key.ID, "algorithm", key.Algorithm,
				"signs_from", key.ActiveFrom.UTC().Format(time.RFC3339))
		}
		if len(removed) > 0 {
			k.opts.Logger.Info("assertion signing keys withdrawn: their last assertions have expired", "kids", removed)
		}
		if keys, err = k.store.SigningKeys(ctx); err != nil {
			return err
		}
	}
	return k.load(keys)
}

// plan decides whether a key must be added and which keys may go.
func (k *Keyring) plan(keys []tokens.SigningKey, now time.Time) (add bool, remove []string) {
	cur, newest := currentKey(keys, now), -1
	for i := range keys {
		if newest < 0 || keys[i].ActiveFrom.After(keys[newest].ActiveFrom) {
			newest = i
		}
	}
	switch {
	case cur < 0:
		add = true // the first start, or every key lapsed
	case newest == cur:
		c := &keys[cur]
		due := !now.Before(c.ActiveFrom.Add(k.opts.RotateEvery - k.opts.PublishAhead))
		add = due || c.Algorithm != k.opts.Algorithm
	}
	for i := range keys {
		key := &keys[i]
		if i != cur && !key.ActiveFrom.After(now) && now.After(key.NotAfter.Add(k.opts.AssertionTTL+clockSkew)) {
			remove = append(remove, key.ID)
		}
	}
	return add, remove
}

// currentKey is the index of the key that signs at now, or -1: of the keys
// started and not past NotAfter, the last to start.
func currentKey(keys []tokens.SigningKey, now time.Time) int {
	cur := -1
	for i := range keys {
		k := &keys[i]
		if !k.ActiveFrom.After(now) && now.Before(k.NotAfter) && (cur < 0 || k.ActiveFrom.After(keys[cur].ActiveFrom)) {
			cur = i
		}
	}
	return cur
}

// generate makes the next key: active at once when none is, otherwise
// when the current one's time is up, and never before PublishAhead from
// now.
func (k *Keyring) generate(keys []tokens.SigningKey, now time.Time) (tokens.SigningKey, error) {
	from := now
	if cur := currentKey(keys, now); cur >= 0 {
		from = keys[cur].ActiveFrom.Add(k.opts.RotateEvery)
		if keys[cur].Algorithm != k.opts.Algorithm || from.Before(now.Add(k.opts.PublishAhead)) {
			from = now.Add(k.opts.PublishAhead)
		}
	}
	var priv crypto.Signer
	var err error
	switch k.opts.Algorithm {
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return tokens.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return tokens.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	pub := jose.JSONWebKey{Key: priv.Public()}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return tokens.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	return tokens.SigningKey{
		ID:         base64.RawURLEncoding.EncodeToString(thumb),
		Algorithm:  k.opts.Algorithm,
		PrivateKey: der,
		CreatedAt:  now,
		ActiveFrom: from,
		NotAfter:   from.Add(k.opts.RotateEvery + k.opts.PublishAhead),
	}, nil
}

// load makes keys the ones this replica signs with and publishes.
func (k *Keyring) load(keys []tokens.SigningKey) error {
	old := map[string]*signingKey{}
	if s := k.state.Load(); s != nil {
		for _, sk := range s.keys {
			old[sk.id] = sk
		}
	}
	set := &keySet{}
	var jwks jose.JSONWebKeySet
	for _, key := range keys {
		sk := old[key.ID]
		if sk == nil {
			var err error
			if sk, err = parseSigningKey(key); err != nil {
				return err
			}
		}
		set.keys = append(set.keys, sk)
		jwks.Keys = append(jwks.Keys, sk.public)
	}
	slices.SortStableFunc(set.keys, func(a, b *signingKey) int { return cmp.Compare(a.activeFrom, b.activeFrom) })
	var err error
	if set.jwks, err = json.Marshal(jwks); err != nil {
		return fmt.Errorf("encode JWKS: %w", err)
	}
	k.state.Store(set)
	return nil
}

func parseSigningKey(key tokens.SigningKey) (*signingKey, error) {
	priv, err := x509.ParsePKCS8PrivateKey(key.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", key.ID, err)
	}
	var alg jose.SignatureAlgorithm
	switch key.Algorithm {
	case ES256:
		alg = jose.ES256
		if _, ok := priv.(*ecdsa.PrivateKey); !ok {
			return nil, fmt.Errorf("signing key %s: not an ECDSA key", key.ID)
		}
	case EdDSA:
		alg = jose.EdDSA
		if _, ok := priv.(ed25519.PrivateKey); !ok {
			return nil, fmt.Errorf("signing key %s: not an Ed25519 key", key.ID)
		}
	default:
		return nil, fmt.Errorf("signing key %s: unknown algorithm %q", key.ID, key.Algorithm)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", key.ID, err)
	}
	public := jose.JSONWebKey{Key: priv.(crypto.Signer).Public(), KeyID: key.ID, Algorithm: key.Algorithm, Use: "sig"}
	return &signingKey{
		id:         key.ID,
		algorithm:  key.Algorithm,
		signer:     signer,
		public:     public,
		activeFrom: key.ActiveFrom.UnixNano(),
		notAfter:   key.NotAfter.UnixNano(),
	}, nil
}

// current is the loaded key that signs at now (Unix nanoseconds), or nil.
func (k *Keyring) current(now int64) *signingKey {
	keys := k.state.Load().keys
	for i := len(keys) - 1; i >= 0; i-- {
		if sk := keys[i]; sk.activeFrom <= now && now < sk.notAfter {
			return sk
		}
	}
	return nil
}

// KeyIDs lists the published key IDs, in the order they sign.
func (k *Keyring) KeyIDs() []string {
	var ids []string
	for _, sk := range k.state.Load().keys {
		ids = append(ids, sk.id)
	}
	return ids
}

// ServeHTTP serves the public keys as a JSON Web Key Set (RFC 7517), for
// GET /.well-known/jwks.json. It may be cached for a fraction of
// PublishAhead, so that a cache never misses a key before it signs.
func (k *Keyring) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	maxAge := min(k.opts.PublishAhead/4, 5*time.Minute)
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	w.Write(k.state.Load().jwks)
}
