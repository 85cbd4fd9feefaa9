package tokens

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

const instrumentationName = "github.com/scimgate/scimgate/tokens"

// authRefusals are the refusals counted one by one; their index in this list
// is their counter's.
var authRefusals = []*AuthError{ErrNoToken, ErrMalformedToken, ErrUnknownToken, ErrRevokedToken,
	ErrInactiveToken, ErrOwnerDeactivated, ErrOwnerRemoved}

// authStats are counted on the hot path with atomic adds only; the meter
// reads them when metrics are collected.
type authStats struct {
	hits, misses, evictions, invalidations atomic.Int64
	allowed, unavailable                   atomic.Int64
	// The way of a miss: refused by the index of live tokens, answered by
	// the negative cache, looked up in the store, or shed for want of a
	// lookup slot; and the change-log reads made for the index's misses.
	indexRefusals, negativeHits, storeLookups, lookupsShed, indexSyncs atomic.Int64
	refused                                                            [7]atomic.Int64 // by authRefusals index
}

func (s *authStats) refusal(e *AuthError) {
	for i, r := range authRefusals {
		if r == e {
			s.refused[i].Add(1)
			return
		}
	}
}

// authTelemetry is the Authenticator's tracer and synchronous instruments;
// the zero value records nothing.
type authTelemetry struct {
	tracer       trace.Tracer
	latency      metric.Float64Histogram
	flushTokens  metric.Int64Histogram
	flushTime    metric.Float64Histogram
	applied      metric.Int64Counter
	lag          metric.Float64Histogram
	instrumented bool
	// tracing is false for a no-op tracer provider: then no request span
	// can be recording, and looking for one is wasted work.
	tracing bool
}

// Instrument makes the Authenticator trace its decisions, flushes and
// change-log catch-ups, and report its metrics. Call it before use.
func (a *Authenticator) Instrument(tp trace.TracerProvider, mp metric.MeterProvider) error {
	m := mp.Meter(instrumentationName)
	t := &a.tel
	t.tracer = tp.Tracer(instrumentationName)
	_, noop := tp.(tracenoop.TracerProvider)
	t.tracing = !noop
	var err error
	if t.latency, err = m.Float64Histogram("scimgate.auth.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to authenticate a bearer token, cache hit or miss."),
		metric.WithExplicitBucketBoundaries(1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1)); err != nil {
		return err
	}
	if t.flushTokens, err = m.Int64Histogram("scimgate.usage.flush.tokens", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens whose last use one flush wrote (one statement per flush).")); err != nil {
		return err
	}
	if t.flushTime, err = m.Float64Histogram("scimgate.usage.flush.duration", metric.WithUnit("s"),
		metric.WithDescription("Time one last-used flush took.")); err != nil {
		return err
	}
	if t.applied, err = m.Int64Counter("scimgate.changelog.applied", metric.WithUnit("{change}"),
		metric.WithDescription("Change-log entries applied to this process's token cache.")); err != nil {
		return err
	}
	if t.lag, err = m.Float64Histogram("scimgate.changelog.propagation_lag", metric.WithUnit("s"),
		metric.WithDescription("From the change (a revocation, deactivation, …) in the database to its eviction from this process's cache."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return err
	}

	s := &a.stats
	hits, _ := m.Int64ObservableCounter("scimgate.auth.cache.hits", metric.WithDescription("Tokens answered from the cache."))
	misses, _ := m.Int64ObservableCounter("scimgate.auth.cache.misses", metric.WithDescription("Tokens looked up in the store."))
	evictions, _ := m.Int64ObservableCounter("scimgate.auth.cache.evictions", metric.WithDescription("Cache entries evicted to make room."))
	invalidations, _ := m.Int64ObservableCounter("scimgate.auth.cache.invalidations", metric.WithDescription("Cache entries forgotten because a change named them."))
	size, _ := m.Int64ObservableGauge("scimgate.auth.cache.size", metric.WithDescription("Cache entries."))
	storeLookups, _ := m.Int64ObservableCounter("scimgate.auth.store.lookups", metric.WithDescription("Token lookups sent to the store (one query each)."))
	shed, _ := m.Int64ObservableCounter("scimgate.auth.store.lookups_shed",
		metric.WithDescription("Misses answered as unavailable because auth.lookup_concurrency lookups were in flight for too long."))
	negativeHits, _ := m.Int64ObservableCounter("scimgate.auth.negative_cache.hits", metric.WithDescription("Unknown tokens answered from the negative cache."))
	indexRefusals, _ := m.Int64ObservableCounter("scimgate.auth.index.refusals",
		metric.WithDescription("Unknown tokens refused by the index of live tokens, without a store lookup."))
	indexSyncs, _ := m.Int64ObservableCounter("scimgate.auth.index.syncs",
		metric.WithDescription("Change-log reads made for tokens missing from the index (shared by every request waiting at once)."))
	indexSize, _ := m.Int64ObservableGauge("scimgate.auth.index.size", metric.WithDescription("Token hashes in the index of live tokens (0 until it is loaded)."))
	decisions, _ := m.Int64ObservableCounter("scimgate.auth.decisions",
		metric.WithDescription("Authentication decisions by outcome (allowed, refused, unavailable) and reason."))
	allowed := metric.WithAttributes(attribute.String("outcome", "allowed"))
	unavailable := metric.WithAttributes(attribute.String("outcome", "unavailable"), attribute.String("reason", "store_unavailable"))
	refused := make([]metric.ObserveOption, len(authRefusals))
	for i, e := range authRefusals {
		refused[i] = metric.WithAttributes(attribute.String("outcome", "refused"), attribute.String("reason", e.Reason))
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(hits, s.hits.Load())
		o.ObserveInt64(misses, s.misses.Load())
		o.ObserveInt64(evictions, s.evictions.Load())
		o.ObserveInt64(invalidations, s.invalidations.Load())
		o.ObserveInt64(size, int64(a.cache.Len()))
		o.ObserveInt64(storeLookups, s.storeLookups.Load())
		o.ObserveInt64(shed, s.lookupsShed.Load())
		o.ObserveInt64(negativeHits, s.negativeHits.Load())
		o.ObserveInt64(indexRefusals, s.indexRefusals.Load())
		o.ObserveInt64(indexSyncs, s.indexSyncs.Load())
		o.ObserveInt64(indexSize, int64(a.Index().Tokens))
		o.ObserveInt64(decisions, s.allowed.Load(), allowed)
		o.ObserveInt64(decisions, s.unavailable.Load(), unavailable)
		for i := range refused {
			o.ObserveInt64(decisions, s.refused[i].Load(), refused[i])
		}
		return nil
	}, hits, misses, evictions, invalidations, size, decisions,
		storeLookups, shed, negativeHits, indexRefusals, indexSyncs, indexSize)
	if err != nil {
		return err
	}
	t.instrumented = true
	return nil
}

func (t *authTelemetry) tracerOrNoop() trace.Tracer {
	if t.tracer == nil {
		return tracenoop.Tracer{}
	}
	return t.tracer
}

// recordApplied counts applied changes and how long each took to arrive.
func (t *authTelemetry) recordApplied(ctx context.Context, changes []Change, now time.Time) {
	if !t.instrumented || len(changes) == 0 {
		return
	}
	t.applied.Add(ctx, int64(len(changes)))
	for _, c := range changes {
		t.lag.Record(ctx, now.Sub(c.At).Seconds())
	}
}

// serviceTelemetry is the Service's tracer and instruments.
type serviceTelemetry struct {
	tracer  trace.Tracer
	expired metric.Int64Counter
}

// Instrument makes the Service trace every change it makes (named after its
// audit action) and count the tokens it expires, by reason.
func (s *Service) Instrument(tp trace.TracerProvider, mp metric.MeterProvider) error {
	expired, err := mp.Meter(instrumentationName).Int64Counter("scimgate.tokens.expired", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens expired, by reason: user_deactivated, user_removed or inactivity."))
	if err != nil {
		return err
	}
	s.tel = serviceTelemetry{tracer: tp.Tracer(instrumentationName), expired: expired}
	return nil
}
