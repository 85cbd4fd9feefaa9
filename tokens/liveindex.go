package tokens

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The index of live tokens lets a replica refuse a token that does not
// exist without asking the database, so that a flood of made-up tokens
// (the checksum is public: anyone can mint well-formed ones) costs no query.
//
// It holds the IndexKey of every stored token, whatever its status (a
// revoked token still gets its precise refusal from the store). LoadIndex
// reads it page by page at start; from then on the change log keeps it
// current: every creation, regeneration and deletion carries the key it
// adds or removes (Change.Added, Change.Removed). A removal that arrives
// late costs a store lookup that finds nothing; an addition must never be
// missed, and that is what the rest of this file is about.
//
// A token created on another replica reaches this one through the change
// log within the propagation delay (milliseconds with PostgreSQL's
// LISTEN/NOTIFY, auth.poll_interval on SQLite). A request in that window
// must not be refused, so a token missing from the index is refused only
// after a read of the change log that began after the request arrived:
// any token its client could have known of by then was committed before
// that read, so the read sees it. Every request waiting at once shares one
// read, and such reads begin at most every IndexSyncInterval, so a flood
// costs at most one cheap change-log query per interval and no lookup,
// while a brand-new token waits at most about one interval, once. If the
// change log cannot be read, the store decides, as without an index.

// indexPage is how many hashes one query of LoadIndex reads.
const indexPage = 10000

// syncState tells waiting requests when the change log has been read.
type syncState struct {
	// begun counts the CatchUp calls that started reading; ok is the
	// number of the last one that read the log to its end.
	begun, ok atomic.Uint64

	mu sync.Mutex
	// next is closed when the running (or next) CatchUp ends, then replaced.
	next chan struct{}
	// pending: a read for waiting requests is scheduled and has not begun.
	pending  bool
	lastRead time.Time
}

// lockCatchUp waits for the catch-up lock, or for ctx to end.
func (a *Authenticator) lockCatchUp(ctx context.Context) error {
	select {
	case a.catchUp <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the change-log reader: %w", ctx.Err())
	}
}

func (a *Authenticator) unlockCatchUp() { <-a.catchUp }

// syncEnded wakes every request waiting for a read of the change log; n is
// the number of the read that ended (0 if it never began) and ok whether it
// read the log to its end.
func (a *Authenticator) syncEnded(n uint64, ok bool) {
	s := &a.syncs
	if ok && n > s.ok.Load() {
		s.ok.Store(n)
	}
	s.mu.Lock()
	close(s.next)
	s.next = make(chan struct{})
	s.mu.Unlock()
}

// awaitSync waits until a read of the change log that began after read
// number began has ended, asking for one if none is coming. It reports
// whether one succeeded; an error only when ctx ends first.
func (a *Authenticator) awaitSync(ctx context.Context, began uint64) (bool, error) {
	// The first read to end may be one that began before the request; the
	// second began after it.
	for range 2 {
		if a.syncs.ok.Load() > began {
			return true, nil
		}
		ended := a.requestSync()
		if a.syncs.ok.Load() > began {
			return true, nil
		}
		select {
		case <-ended:
		case <-ctx.Done():
			return false, fmt.Errorf("wait for the change log: %w", ctx.Err())
		}
	}
	return a.syncs.ok.Load() > began, nil
}

// requestSync makes sure a read of the change log is coming and returns a
// channel closed when the next read ends.
func (a *Authenticator) requestSync() <-chan struct{} {
	s := &a.syncs
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending {
		s.pending = true
		go a.readForWaiters()
	}
	return s.next
}

// readForWaiters reads the change log for the requests waiting on it, no
// sooner than IndexSyncInterval after the last such read began.
func (a *Authenticator) readForWaiters() {
	s := &a.syncs
	s.mu.Lock()
	wait := time.Until(s.lastRead.Add(a.opts.IndexSyncInterval))
	s.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
	s.mu.Lock()
	// From here on a new request needs a newer read.
	s.pending = false
	s.lastRead = time.Now()
	s.mu.Unlock()
	a.stats.indexSyncs.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.LookupTimeout)
	defer cancel()
	if err := a.CatchUp(ctx); err != nil {
		a.opts.Logger.Debug("read change log for tokens missing from the index", "err", err)
	}
}

// LoadIndex reads the hash of every stored token into the index of live
// tokens, one page at a time, and applies the changes made meanwhile. From
// then on Apply keeps it current, and while the follower is current (see
// AuthOptions.StaleAfter) a token missing from it is refused without a
// store lookup. Before it returns, misses go to the store.
func (a *Authenticator) LoadIndex(ctx context.Context) error {
	from, err := a.store.LastChange(ctx)
	if err != nil {
		return fmt.Errorf("load token index: %w", err)
	}
	x := newTokenIndex(0)
	var after Hash
	for {
		page, err := a.store.TokenHashes(ctx, after, indexPage)
		if err != nil {
			return fmt.Errorf("load token index: %w", err)
		}
		x.mu.Lock()
		for _, h := range page {
			x.add(IndexKey(h))
		}
		x.mu.Unlock()
		if len(page) < indexPage {
			break
		}
		after = page[len(page)-1]
	}
	// Under the catch-up lock, so that no change is applied to the cache
	// alone between this read and the index taking over.
	if err := a.lockCatchUp(ctx); err != nil {
		return fmt.Errorf("load token index: %w", err)
	}
	defer a.unlockCatchUp()
	for {
		changes, err := a.store.ChangesSince(ctx, from, 1000)
		if err != nil {
			return fmt.Errorf("load token index: %w", err)
		}
		x.apply(changes)
		if len(changes) > 0 {
			from = changes[len(changes)-1].Seq
		}
		if len(changes) < 1000 {
			break
		}
	}
	x.seq.Store(from)
	a.index.Store(x)
	return nil
}

// RunIndexLoader loads the index of live tokens (LoadIndex), retrying every
// retry until it succeeds or ctx ends.
func (a *Authenticator) RunIndexLoader(ctx context.Context, retry time.Duration) {
	for {
		start := time.Now()
		err := a.LoadIndex(ctx)
		if err == nil {
			st := a.Index()
			a.opts.Logger.Info("token index loaded: unknown tokens are refused without a database query",
				"tokens", st.Tokens, "bytes", st.Bytes, "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if ctx.Err() != nil {
			return
		}
		a.opts.Logger.Warn("load token index; unknown tokens are looked up in the database meanwhile", "err", err, "retry_in", retry)
		if !sleep(ctx, retry) {
			return
		}
	}
}

// IndexStats describes the index of live tokens.
type IndexStats struct {
	Loaded bool
	Tokens int // keys held
	Bytes  int // memory of the table
}

// Index describes the index of live tokens.
func (a *Authenticator) Index() IndexStats {
	x := a.index.Load()
	if x == nil {
		return IndexStats{}
	}
	return IndexStats{Loaded: true, Tokens: x.len(), Bytes: x.bytes()}
}

// catchUpFrom is where CatchUp reads the change log from: the last change
// applied, or the index's if it is behind (the follower may have started
// past changes the index has not seen).
func (a *Authenticator) catchUpFrom() int64 {
	from := a.seq.Load()
	if x := a.index.Load(); x != nil {
		from = min(from, x.seq.Load())
	}
	return from
}
