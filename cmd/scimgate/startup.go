package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
)

// Start-up and shutdown of serve: the listeners are bound and answer at
// once (a port in use fails the start), /readyz says 503 until the database
// answers and the change-log follower has its starting point, and again
// from the moment shutdown begins, so that load balancers stop sending
// requests before the listeners close.

// gate is a handler whose handler is swapped once serve is ready.
type gate struct{ h atomic.Pointer[http.Handler] }

func newGate(h http.Handler) *gate {
	g := &gate{}
	g.set(h)
	return g
}

func (g *gate) set(h http.Handler) { g.h.Store(&h) }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*g.h.Load()).ServeHTTP(w, r) }

// storeHealth is what readiness asks of the store.
type storeHealth interface {
	Ping(ctx context.Context) error
	WriteFailure() error
}

// readiness is what /readyz reports.
type readiness struct {
	draining atomic.Bool
	starting atomic.Pointer[string] // why serve is not ready yet; nil once it is
	store    atomic.Pointer[storeHealth]
}

func newReadiness() *readiness {
	r := &readiness{}
	r.setStarting("opening the database")
	return r
}

func (r *readiness) setStarting(why string) { r.starting.Store(&why) }

// ready is called once serve serves every request.
func (r *readiness) ready(store storeHealth) {
	r.store.Store(&store)
	r.starting.Store(nil)
}

// Ping is nil when serve is ready: started, not shutting down, and its
// database answers and takes writes.
func (r *readiness) Ping(ctx context.Context) error {
	if r.draining.Load() {
		return errors.New("shutting down")
	}
	if why := r.starting.Load(); why != nil {
		return errors.New("starting: " + *why)
	}
	st := *r.store.Load()
	if err := st.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := st.WriteFailure(); err != nil {
		return fmt.Errorf("the database cannot be written: %w", err)
	}
	return nil
}

// startingProxy answers the proxy listener until serve is ready: no token
// can be checked without the database.
func startingProxy() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"unavailable","reason":"starting","message":"scimgate is starting and cannot check tokens yet: try again shortly"}`+"\n")
	})
}

// startingSCIM answers /scim/v2 until serve is ready, in SCIM's error format
// (RFC 7644 section 3.12).
func startingSCIM() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"scimgate is starting and cannot reach its database yet: try again shortly"}`+"\n")
	})
}

// waitForStore opens and migrates the database. PostgreSQL that cannot be
// reached yet (it starts after scimgate, a failover, a network not up yet)
// is waited for, with backoff, logging why; any other error ends the wait.
// It returns ctx's error if ctx ends first.
func waitForStore(ctx context.Context, cfg *Config, logger *slog.Logger, ready *readiness, opts ...sqlstore.Option) (*sqlstore.Store, error) {
	const firstBackoff, maxBackoff = 250 * time.Millisecond, 5 * time.Second
	// Only the default database file is created: a database named in the
	// configuration must exist, so that a mistyped path fails instead of
	// starting a new, empty database (and printing a new admin token).
	create := cfg.Database == ""
	backoff := firstBackoff
	started := time.Now()
	for attempt := 1; ; attempt++ {
		store, err := openStore(ctx, cfg, create, opts...)
		if err == nil {
			if attempt > 1 {
				logger.Info("database reached", "after", time.Since(started).Round(time.Millisecond).String(), "attempts", attempt)
			}
			return store, nil
		}
		if !isPostgres(cfg.DatabaseDSN()) || !errors.Is(err, tokens.ErrUnavailable) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		ready.setStarting("waiting for the database: " + firstLine(err.Error()))
		logger.Warn("waiting for the database: /readyz answers 503 until it is reached", "err", err,
			"attempt", attempt, "retry_in", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// startServers serves every listener in the background and returns the
// channel on which a server that fails reports.
func startServers(servers []namedServer) <-chan error {
	failed := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("%s server: %w", s.name, err)
			}
		}()
	}
	return failed
}

// shutDown stops the servers gracefully. /readyz answers 503 from its
// start; after delay (so that load balancers see it and stop sending
// requests), every server but the management one stops accepting and
// finishes its requests, then the management one, all within timeout.
func shutDown(ctx context.Context, logger *slog.Logger, ready *readiness, delay, timeout time.Duration, servers []namedServer) error {
	ready.draining.Store(true)
	if delay > 0 {
		logger.Info("shutting down: /readyz answers 503; requests are still served for shutdown_delay", "shutdown_delay", delay.String())
		time.Sleep(delay)
	}
	logger.Info("shutting down", "timeout", timeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	var err error
	for _, last := range []bool{false, true} {
		for _, s := range servers {
			if (s.name == "management") != last {
				continue
			}
			if shutdownErr := s.srv.Shutdown(shutdownCtx); shutdownErr != nil {
				s.srv.Close()
				err = errors.Join(err, fmt.Errorf("shut down %s server: %w", s.name, shutdownErr))
			}
		}
	}
	return err
}

// startingManagement is the management listener's handler until serve is
// ready: health, readiness and metrics, and a SCIM endpoint that says 503.
func startingManagement(ready pinger, metrics http.Handler) http.Handler {
	return managementRoutes(ready, startingSCIM(), metrics, nil)
}
