package tokens

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// usageBuffer collects the cache entries used since the last flush. An entry
// joins it on its first use after a flush, so a request costs one atomic add.
type usageBuffer struct {
	mu      sync.Mutex
	entries []*entry
}

func (b *usageBuffer) add(e *entry) {
	b.mu.Lock()
	b.entries = append(b.entries, e)
	b.mu.Unlock()
}

func (b *usageBuffer) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

func (b *usageBuffer) take() []*entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	es := b.entries
	b.entries = nil
	return es
}

// FlushUsage writes the last-used times and use counts gathered since the
// last flush, in one store statement. It returns how many tokens it wrote.
// On error the uses are kept for the next flush.
func (a *Authenticator) FlushUsage(ctx context.Context) (n int, err error) {
	es := a.usage.take()
	if len(es) == 0 {
		return 0, nil
	}
	if a.tel.instrumented {
		start := time.Now()
		var span trace.Span
		ctx, span = a.tel.tracer.Start(ctx, "scimgate.usage.flush")
		defer func() {
			a.tel.flushTime.Record(ctx, time.Since(start).Seconds())
			a.tel.flushTokens.Record(ctx, int64(n))
			span.SetAttributes(attribute.Int("scimgate.usage.tokens", n))
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "flush failed")
			}
			span.End()
		}()
	}
	byToken := make(map[string]*Usage, len(es))
	counts := make([]int64, len(es))
	for i, e := range es {
		n := e.uses.Swap(0)
		if n == 0 {
			continue
		}
		counts[i] = n
		last := time.Unix(e.lastUse.Load(), 0).UTC()
		u := byToken[e.tokenID]
		if u == nil {
			u = &Usage{TokenID: e.tokenID}
			byToken[e.tokenID] = u
		}
		u.Count += n
		if last.After(u.LastUsed) {
			u.LastUsed = last
		}
	}
	uses := make([]Usage, 0, len(byToken))
	for _, u := range byToken {
		uses = append(uses, *u)
	}
	if len(uses) == 0 {
		return 0, nil
	}
	if err := a.store.RecordUsage(ctx, uses); err != nil {
		// Give the counts back; each entry rejoins the buffer.
		for i, e := range es {
			if counts[i] > 0 && e.uses.Add(counts[i]) == counts[i] {
				a.usage.add(e)
			}
		}
		return 0, err
	}
	return len(uses), nil
}

// RunUsageFlusher flushes usage every interval until ctx ends, then once
// more with a fresh deadline so that a shutdown loses no use: a failed final
// flush is tried again (the store may be back a moment later) until that
// deadline, and uses that still could not be written are logged as lost,
// with how many tokens they were.
func (a *Authenticator) RunUsageFlusher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if _, err := a.FlushUsage(ctx); err != nil {
				a.opts.Logger.Warn("flush last-used times: kept for the next flush", "err", err, "tokens", a.usage.len())
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFlushTimeout)
			a.flushAtShutdown(fctx)
			cancel()
			return
		}
	}
}

// shutdownFlushTimeout bounds the last flush, retries included.
const shutdownFlushTimeout = 10 * time.Second

func (a *Authenticator) flushAtShutdown(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := a.FlushUsage(ctx)
		if err == nil {
			if attempt > 1 {
				a.opts.Logger.Info("flush last-used times at shutdown: written", "attempts", attempt)
			}
			return
		}
		if ctx.Err() != nil || !sleep(ctx, backoff) {
			a.opts.Logger.Error("flush last-used times at shutdown: not written, so these tokens' last uses since the previous flush are lost",
				"err", err, "tokens", a.usage.len(), "attempts", attempt)
			return
		}
		a.opts.Logger.Warn("flush last-used times at shutdown: trying again", "err", err, "attempt", attempt, "retry_in", backoff.String())
		backoff = min(2*backoff, time.Second)
	}
}

// Synced is when the change-log follower last caught up.
func (a *Authenticator) Synced() time.Time { return time.Unix(0, a.synced.Load()) }

// AppliedSeq is the last change-log sequence this process applied.
func (a *Authenticator) AppliedSeq() int64 { return a.seq.Load() }

func (a *Authenticator) signalApplied() {
	select {
	case a.applied <- struct{}{}:
	default:
	}
}

// Applied receives a value whenever AppliedSeq grows; values are coalesced,
// so a reader that falls behind reads AppliedSeq once for many. There is
// one channel per Authenticator: give it to one reader.
func (a *Authenticator) Applied() <-chan struct{} { return a.applied }

// CatchUp applies every change-log entry past the last one applied. One
// runs at a time; requests waiting for a token missing from the index of
// live tokens wait for one to end (see awaitSync).
func (a *Authenticator) CatchUp(ctx context.Context) (err error) {
	if err := a.lockCatchUp(ctx); err != nil {
		a.syncEnded(0, false)
		return err
	}
	defer a.unlockCatchUp()
	n := a.syncs.begun.Add(1)
	defer func() { a.syncEnded(n, err == nil) }()
	for {
		start := time.Now()
		changes, err := a.store.ChangesSince(ctx, a.catchUpFrom(), 1000)
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			// A span only when there was something to apply: an idle poll
			// four times a second is not worth a trace.
			_, span := a.tel.tracerOrNoop().Start(ctx, "scimgate.changelog.apply", trace.WithTimestamp(start),
				trace.WithAttributes(attribute.Int("scimgate.changelog.entries", len(changes)),
					attribute.Int64("scimgate.changelog.last_seq", changes[len(changes)-1].Seq)))
			a.Apply(changes)
			a.tel.recordApplied(ctx, changes, time.Now())
			last := changes[len(changes)-1].Seq
			a.seq.Store(max(a.seq.Load(), last))
			if x := a.index.Load(); x != nil {
				x.advance(last)
			}
			span.End()
			a.signalApplied()
		}
		if len(changes) < 1000 {
			a.synced.Store(a.opts.Now().UnixNano())
			return nil
		}
	}
}

// Follow keeps this process's cache in step with the change log until ctx
// ends. It starts at the newest entry (the cache is empty then), wakes on
// each signal from wake (PostgreSQL's NOTIFY, SQLite's change watch) and at
// least every poll. When the store cannot be read it retries from the last
// applied sequence, so no change is lost: soon (from 10ms, doubling up to
// poll), since a reconnecting store is usually back at once. Meanwhile the
// cache goes stale (see AuthOptions).
func (a *Authenticator) Follow(ctx context.Context, poll time.Duration, wake <-chan struct{}) {
	retry := min(followRetry, poll)
	for {
		seq, err := a.store.LastChange(ctx)
		if err == nil {
			a.seq.Store(seq)
			a.synced.Store(a.opts.Now().UnixNano())
			a.signalApplied()
			break
		}
		a.opts.Logger.Warn("read change log", "err", err)
		if !sleep(ctx, retry) {
			return
		}
		retry = min(2*retry, poll)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	// again fires when a failed catch-up is due for another try.
	again := time.NewTimer(poll)
	again.Stop()
	defer again.Stop()
	failing := false
	retry = min(followRetry, poll)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		case <-again.C:
		}
		err := a.CatchUp(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				a.opts.Logger.Warn("follow change log: cached tokens go stale until the store is back", "err", err, "seq", a.seq.Load())
				failing = true
			}
			again.Reset(retry)
			retry = min(2*retry, poll)
		case err == nil && failing:
			a.opts.Logger.Info("follow change log: caught up again", "seq", a.seq.Load())
			failing = false
			again.Stop()
			retry = min(followRetry, poll)
		}
	}
}

// followRetry is the first delay before a failed catch-up is tried again.
const followRetry = 10 * time.Millisecond

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
