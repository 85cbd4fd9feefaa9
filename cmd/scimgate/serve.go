package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/scimgate/scimgate/admin"
	"github.com/scimgate/scimgate/proxy"
	"github.com/scimgate/scimgate/scim"
	"github.com/scimgate/scimgate/telemetry"
	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
)

// serve runs the sidecar with a validated configuration until ctx is done,
// then shuts down gracefully within cfg.ShutdownTimeout. It binds its
// listeners first (they answer 503 until it is ready, /healthz 200), waits
// for the database, applies migrations, bootstraps an empty database and
// serves the management endpoints. Logs go to stderr as JSON; stdout is for
// the activity log (activity_log.path "-"). Each bound listener address is
// logged and passed to the hook of withListenHook, so that tests can listen
// on ":0".
func serve(ctx context.Context, cfg *Config, stdout, stderr io.Writer) error {
	level, err := cfg.LogLevel()
	if err != nil {
		return err
	}
	logger := telemetry.NewLogger(stderr, level)
	tel, err := cfg.Telemetry.setup(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// Last, so that the spans of the shutdown itself are exported.
		flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(flush); err != nil {
			logger.Warn("flush telemetry", "err", err)
		}
	}()
	policy, err := cfg.Policy()
	if err != nil {
		return err
	}
	activity, activityOut, err := openActivityLog(cfg.ActivityLog, stdout)
	if err != nil {
		return err
	}
	defer activityOut.Close()

	ready := newReadiness()
	proxyGate := newGate(startingProxy())
	managementGate := newGate(startingManagement(ready, tel.MetricsHandler))
	management := managementServer(managementGate, logger)
	servers := []namedServer{
		{name: "proxy", addr: cfg.Proxy.Listen, srv: proxyServer(cfg, proxyGate, logger)},
		{name: "management", addr: cfg.Management.Listen, srv: management},
	}
	// The admin API and the console get a listener of their own with
	// admin.listen; otherwise they are served on the management listener.
	adminGate := newGate(startingProxy())
	if cfg.Admin.Listen != "" {
		// Bound before the management listener, which tests wait for last.
		servers = slices.Insert(servers, 1, namedServer{name: "admin", addr: cfg.Admin.Listen, srv: adminServer(adminGate, logger)})
	}
	for i := range servers {
		s := &servers[i]
		if s.ln, err = listen(ctx, logger, s.name, s.addr); err != nil {
			closeListeners(servers[:i])
			return err
		}
	}
	// TLS per listener, and the HTTP listeners of ACME's HTTP-01 (tls.go).
	servers, stopTLS, err := secureListeners(ctx, cfg, logger, servers)
	if err != nil {
		closeListeners(servers)
		return err
	}
	defer stopTLS()
	failed := startServers(servers)
	// A start that fails stops at once; a running server drains first
	// (shutdown_delay).
	stopServers := func(delay time.Duration) error {
		return shutDown(ctx, logger, ready, delay, cfg.ShutdownTimeout, servers)
	}

	var storeOpts []sqlstore.Option
	if tel.Tracing {
		storeOpts = append(storeOpts, sqlstore.WithTracerProvider(tel.TracerProvider))
	}
	store, err := waitForStore(ctx, cfg, logger, ready, storeOpts...)
	if err != nil {
		stopErr := stopServers(0)
		if ctx.Err() != nil {
			logger.Info("scimgate stopped before it reached its database")
			return stopErr
		}
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close database", "err", err)
		}
	}()
	if sqlstore.IsMemory(cfg.DatabaseDSN()) {
		logger.Warn("the database is in memory: everything is lost when scimgate stops, and no command can reach it")
	}
	svc := tokens.NewService(store, policy)
	auth := tokens.NewAuthenticator(store, policy, tokens.AuthOptions{
		CacheSize:   cfg.Auth.CacheSize,
		CacheTTL:    cfg.Auth.CacheTTL,
		NegativeTTL: cfg.Auth.NegativeCacheTTL,
		StaleAfter:  cfg.Auth.StaleAfter,
		Logger:      logger,

		NegativeCacheSize:  cfg.Auth.NegativeCacheSize,
		LookupConcurrency:  cfg.Auth.LookupConcurrency,
		LookupQueueTimeout: cfg.Auth.LookupQueueTimeout,
		IndexSyncInterval:  cfg.Auth.IndexSyncInterval,
	})
	// What this process changes, its own cache forgets before the call returns.
	svc.OnCommit = auth.Apply
	if err := errors.Join(auth.Instrument(tel.TracerProvider, tel.MeterProvider),
		svc.Instrument(tel.TracerProvider, tel.MeterProvider)); err != nil {
		stopServers(0)
		return fmt.Errorf("instrument: %w", err)
	}
	ready.setStarting("bootstrapping the database")
	if err := bootstrap(ctx, svc, cfg, logger, stderr); err != nil {
		stopServers(0)
		return err
	}
	keyring, err := newKeyring(ctx, cfg, store, logger)
	if err != nil {
		stopServers(0)
		return err
	}
	gateway, err := newProxy(cfg, auth, activity, tel, logger, keyring)
	if err != nil {
		stopServers(0)
		return err
	}
	// Validated: create or refuse.
	svc.UnknownSites, _ = tokens.ParseUnknownSitePolicy(cfg.SCIM.UnknownSites)
	scimHandler, err := scim.New(svc, auth, scim.Options{
		BaseURL:        cfg.SCIM.BaseURL,
		Logger:         logger,
		TracerProvider: tracerIfTracing(tel),
		Propagator:     tel.Propagator,
		MeterProvider:  tel.MeterProvider,

		MaxPatchOperations: cfg.SCIM.MaxPatchOperations,
		MaxPatchValues:     cfg.SCIM.MaxPatchValues,

		MaxFilterCandidates: cfg.SCIM.MaxFilterCandidates,
	})
	if err != nil {
		stopServers(0)
		return err
	}
	adminHandler, err := admin.New(svc, auth, admin.Options{
		AnonymousLeakReportsPerSecond: cfg.Admin.AnonymousLeakReportsPerSecond,
		Logger:                        logger,
	})
	if err != nil {
		stopServers(0)
		return err
	}
	// The web console, at / beside /api/v1/ wherever the admin API is
	// served (console.go).
	con, err := newConsole(cfg, svc, auth, logger)
	if err != nil {
		stopServers(0)
		return err
	}

	// The background work outlives the servers' drain: the last requests'
	// uses are flushed and their activity written after it.
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wake := make(chan struct{}, 1)
	followStart := time.Now()
	wg.Go(func() { store.Listen(background, wake, logger) })
	wg.Go(func() { auth.Follow(background, cfg.Auth.PollInterval, wake) })
	if cfg.Auth.TokenIndex {
		wg.Go(func() { auth.RunIndexLoader(background, time.Second) })
	}
	wg.Go(func() { auth.RunUsageFlusher(background, cfg.Auth.LastUsedFlushInterval) })
	wg.Go(func() {
		sweepInactive(background, svc, cfg.Auth.SweepInterval, 2*cfg.Auth.LastUsedFlushInterval, logger)
	})
	wg.Go(func() { store.RunOptimizer(background, optimizeInterval, logger) })
	wg.Go(func() { store.RunServerReports(background, thisServer(), auth.AppliedSeq, auth.Applied(), logger) })
	if activity != nil {
		wg.Go(func() { activity.Run(background, activityOut) })
	}
	if keyring != nil {
		wg.Go(func() { keyring.Run(background) })
	}
	// No token is cached before the follower has its starting point in
	// the change log: a token cached before it, and revoked before it was
	// read, would never be evicted.
	ready.setStarting("reading the change log")
	for !auth.Synced().After(followStart) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	proxyGate.set(gateway)
	managementHandler := managementRoutes(ready, scimHandler, tel.MetricsHandler, jwksHandler(keyring))
	if cfg.Admin.Listen == "" {
		managementHandler = withAdminAPI(withConsole(managementHandler, con), adminHandler)
	} else {
		adminGate.set(consoleBesideAPI(adminHandler, con))
	}
	managementGate.set(managementHandler)
	ready.ready(store)

	logger.Info("scimgate started", "version", readBuildInfo().Version, "database", databaseKind(cfg), "upstream", cfg.Proxy.Upstream)
	select {
	case <-ctx.Done():
	case err = <-failed:
		logger.Error("shutting down", "err", err)
	}
	err = errors.Join(err, stopServers(cfg.ShutdownDelay))
	stopBackground()
	wg.Wait()
	if activity != nil && activity.Dropped() > 0 {
		logger.Warn("activity log lines dropped: the writer could not keep up", "dropped", activity.Dropped())
	}
	logger.Info("scimgate stopped")
	return err
}

// thisServer is how this process reports itself in the servers table.
func thisServer() sqlstore.Server {
	host, _ := os.Hostname()
	now := time.Now()
	return sqlstore.Server{ID: tokens.NewID("srv"), Host: host, PID: os.Getpid(), Version: readBuildInfo().Version, StartedAt: now, SeenAt: now}
}

func newProxy(cfg *Config, auth *tokens.Authenticator, activity *proxy.ActivityLog, tel *telemetry.Telemetry, logger *slog.Logger, keyring *proxy.Keyring) (*proxy.Proxy, error) {
	upstream, err := url.Parse(cfg.Proxy.Upstream)
	if err != nil {
		return nil, fmt.Errorf("proxy.upstream: %w", err)
	}
	routes := make([]proxy.Route, len(cfg.Proxy.Routes))
	for i, r := range cfg.Proxy.Routes {
		routes[i] = proxy.Route{PathPrefix: r.PathPrefix, Methods: r.Methods, Permission: r.Permission}
	}
	opts := proxy.Options{
		Upstream:             upstream,
		Transport:            proxy.NewTransport(cfg.Proxy.MaxIdleConnsPerHost, cfg.Proxy.UpstreamTimeout),
		HeaderPrefix:         cfg.Proxy.IdentityHeaderPrefix,
		IdentityHeaders:      cfg.Proxy.IdentityHeaders,
		ForwardAuthorization: cfg.Proxy.ForwardAuthorization,
		PublicPaths:          cfg.Proxy.PublicPaths,
		Routes:               routes,
		Activity:             activity,
		Logger:               logger,
		TracerProvider:       tracerIfTracing(tel),
		Propagator:           tel.Propagator,
		MeterProvider:        tel.MeterProvider,
	}
	setRequestRules(&opts, cfg, keyring) // requestrules.go
	return proxy.New(auth, opts)
}

// tracerIfTracing is nil when nothing would record a span, so that the proxy
// skips tracing work altogether.
func tracerIfTracing(tel *telemetry.Telemetry) trace.TracerProvider {
	if !tel.Tracing {
		return nil
	}
	return tel.TracerProvider
}

// proxyServer is the proxy's listener, with the limits that keep slow or
// oversized clients from holding it.
func proxyServer(cfg *Config, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.Proxy.ReadHeaderTimeout,
		ReadTimeout:       cfg.Proxy.ReadTimeout,
		WriteTimeout:      cfg.Proxy.WriteTimeout,
		IdleTimeout:       cfg.Proxy.IdleTimeout,
		MaxHeaderBytes:    cfg.Proxy.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// openActivityLog opens where the activity log goes: stdout for "-", a file
// appended to, or nowhere for "off" (then the log is nil).
func openActivityLog(c ActivityLogConfig, stdout io.Writer) (*proxy.ActivityLog, io.WriteCloser, error) {
	switch c.Path {
	case "off":
		return nil, nopCloser{io.Discard}, nil
	case "-":
		return proxy.NewActivityLog(c.Buffer), nopCloser{stdout}, nil
	}
	f, err := os.OpenFile(c.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("activity_log.path: %w", err)
	}
	return proxy.NewActivityLog(c.Buffer), f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// namedServer is an HTTP server and the address it listens on.
type namedServer struct {
	name string
	addr string
	srv  *http.Server
	ln   net.Listener
}

// listenHookKey carries the test hook of withListenHook in a context.
type listenHookKey struct{}

// withListenHook returns a context under which serve calls onListen with
// each listener's name ("management", later "proxy") and bound address, once
// it is bound and before requests are served. Tests pass ":0" addresses and
// learn the ports this way; the same addresses are logged as "listening".
func withListenHook(ctx context.Context, onListen func(name string, addr net.Addr)) context.Context {
	return context.WithValue(ctx, listenHookKey{}, onListen)
}

func listen(ctx context.Context, logger *slog.Logger, name, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", name, err)
	}
	logger.Info("listening", "listener", name, "addr", ln.Addr().String())
	if onListen, ok := ctx.Value(listenHookKey{}).(func(string, net.Addr)); ok {
		onListen(name, ln.Addr())
	}
	return ln, nil
}

func closeListeners(servers []namedServer) {
	for _, s := range servers {
		s.ln.Close()
	}
}

// managementRoutes serves the health endpoints for orchestrators and load
// balancers, the SCIM endpoint for identity providers when scimHandler is not
// nil, Prometheus metrics when metrics is not nil, and the identity
// assertion's keys when jwks is not nil.
func managementRoutes(store pinger, scimHandler, metrics, jwks http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.Handle("GET /readyz", handleReadyz(store))
	if scimHandler != nil {
		mux.Handle(scim.Prefix+"/", scimHandler)
	}
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	if jwks != nil {
		mux.Handle("GET /.well-known/jwks.json", jwks)
	}
	return mux
}

// withAdminAPI serves the admin API (admin.Prefix) next to what h serves.
func withAdminAPI(h, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(admin.Prefix+"/", api)
	mux.Handle("/", h)
	return mux
}

// managementServer is the management listener. It takes request bodies
// from anyone (SCIM, and by default the admin API's anonymous leak report
// and the console's sign-in), all small: slow clients are cut off as on
// the admin API's own listener, and idle connections closed.
func managementServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// adminServer is the admin API's own listener: bodies are small, so slow
// clients are cut off early.
func adminServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

type pinger interface {
	Ping(ctx context.Context) error
}

// handleHealthz answers while the process is up: liveness.
func handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// handleReadyz answers 200 while ready says so within a second: readiness
// (see readiness: not while starting or shutting down, nor while the
// database cannot be read or written). Without the database no token can be
// checked.
func handleReadyz(ready pinger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready: "+firstLine(err.Error())+"\n")
			return
		}
		io.WriteString(w, "ready\n")
	})
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// bootstrap makes an empty database usable at once: org "default" and a
// service token that can provision users and groups and manage tokens.
func bootstrap(ctx context.Context, svc *tokens.Service, cfg *Config, logger *slog.Logger, stderr io.Writer) error {
	st, secret, err := svc.Bootstrap(ctx, cfg.BootstrapToken)
	if tokens.ErrorCode(err) == tokens.Conflict {
		// Replicas starting together on one PostgreSQL: another one won.
		logger.Info("bootstrap skipped: another scimgate created org \"default\" first")
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if st == nil {
		if cfg.BootstrapToken != "" {
			logger.Info("bootstrap_token not used: the database already has an org")
		}
		return nil
	}
	logger.Info("bootstrapped", "org", "default", "token_id", st.ID, "token_prefix", st.DisplayPrefix,
		"permissions", strings.Join(st.PermissionSets, ","), "configured_token", cfg.BootstrapToken != "")
	if cfg.BootstrapToken != "" {
		// The operator chose this token and has it: never echo a secret.
		fmt.Fprintf(stderr, "scimgate: created org \"default\" and service token %s (%s…) from the configured bootstrap_token (SCIMGATE_BOOTSTRAP_TOKEN); it holds %s\n",
			st.ID, st.DisplayPrefix, strings.Join(st.PermissionSets, ", "))
		return nil
	}
	bar := strings.Repeat("=", 78)
	fmt.Fprintf(stderr, `%s
scimgate: first start. Created org "default" and this bootstrap service token:

    %s

Save it now: it is shown only this once (scimgate stores only its hash).
Token ID: %s. It holds %s:
it can provision users and groups over SCIM and manage every token of the org.
Revoke it with "scimgate service-token revoke %s" once you have your own.
%s
`, bar, secret.Plaintext(), st.ID, strings.Join(st.PermissionSets, ", "), st.ID, bar)
	return nil
}

// optimizeInterval is how often serve refreshes SQLite's planner
// statistics (see sqlstore.Store.RunOptimizer).
const optimizeInterval = time.Hour

// sweepInactive marks tokens expired once their inactivity window ends, so
// that listings show what the authenticator already refuses.
// grace is how long a use may wait in some replica's memory before it is
// written (see tokens.Service.ExpireInactive).
func sweepInactive(ctx context.Context, svc *tokens.Service, every, grace time.Duration, logger *slog.Logger) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		n, err := svc.ExpireInactive(ctx, grace)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("sweep inactive tokens", "err", err)
		case n > 0:
			logger.Info("expired inactive tokens", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func databaseKind(cfg *Config) string {
	if isPostgres(cfg.DatabaseDSN()) {
		return "postgres"
	}
	return "sqlite " + cfg.DatabaseDSN()
}
