package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The fleet: several scimgate serve replicas on one database, revocations of
// every kind (service-token revoke, user-token delete and user deactivate
// by the command line, SCIM PATCH active:false through a replica), probes
// of every replica every millisecond from the commit on, background load
// through every replica, and database connections killed. TestFleet checks
// correctness on PostgreSQL (every replica refuses within fleetBound, no
// request accepted by a replica after it refused, no valid token refused);
// TestFleetSQLite does the same for a server and the command line in two
// processes on one SQLite file; TestFleetBench measures.

var (
	fleetBench = flag.Bool("fleet.bench", false, "run TestFleetBench: revocation latency per replica, printed as tables")
	fleetN     = flag.Int("fleet.n", 100, "TestFleetBench: revocations per scenario")
	fleetRate  = flag.Int("fleet.rate", 2000, "TestFleetBench: background requests per second, over all replicas, in the loaded scenarios")
	fleetIdle  = flag.Duration("fleet.idle", 10*time.Second, "TestFleetBench: how long the idle server's CPU time is measured")
)

// fleetBound is how long after a commit the tests let every replica take to
// refuse: generous, since a shared 2-core CI machine running -race can
// stall any process for a while. The benchmark reports the real numbers.
const fleetBound = 2 * time.Second

// The kinds of revocation, each with the refusal reason it must cause.
type revocationKind int

const (
	serviceTokenRevoke revocationKind = iota
	userTokenDelete
	userDeactivateCLI
	userDeactivateSCIM
	revocationKinds
)

func (k revocationKind) String() string {
	return [...]string{"service-token revoke", "user-token delete", "user deactivate (CLI)", "SCIM PATCH active:false"}[k]
}

func (k revocationKind) reason() string {
	return [...]string{"revoked", "unknown", "owner_deactivated", "owner_deactivated"}[k]
}

// fleetOrg is the org the replicas bootstrap, whose bootstrap token is the
// SCIM token; SCIM sees only its own org.
const fleetOrg = "default"

// fleet is a set of running replicas on one database.
type fleet struct {
	t         *testing.T
	dsn       string
	replicas  []*fleetReplica
	cli       func(args ...string) (string, error)
	scimToken string
	client    *http.Client
	commits   commitObserver
	admin     *sqlstore.Store
	next      atomic.Int64 // names subjects
}

type fleetReplica struct {
	name     string
	appName  string // its PostgreSQL application_name, to find its connections
	proxyURL string
	scimURL  string
	serve    *runningServe
}

// startFleet starts n replicas on a fresh database of the dialect (for
// SQLite: one, since SQLite serves one host), with the bootstrap token as
// the SCIM token, and a command line: in this process for PostgreSQL (its
// own connections, as another process would have), in another process for
// SQLite (the case the file watch is for).
func startFleet(t *testing.T, dialect string, n int) *fleet {
	t.Helper()
	up := newRecordingUpstream(t)
	f := &fleet{t: t, scimToken: tokens.NewSecret(tokens.KindService).Plaintext(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}}
	t.Cleanup(f.client.CloseIdleConnections)
	env := map[string]string{"SCIMGATE_BOOTSTRAP_TOKEN": f.scimToken, "SCIMGATE_ACTIVITY_LOG_PATH": "off", "SCIMGATE_LOG_LEVEL": "warn"}
	id := strings.ToLower(tokens.NewID("f"))[2:10]
	switch dialect {
	case sqlstore.Postgres:
		f.dsn = sqltest.PostgresDSN(t)
		c := &testCLI{t: t, dsn: f.dsn}
		c.ok("migrate")
		f.cli = func(args ...string) (string, error) {
			stdout, stderr, err := c.run(args...)
			if err != nil {
				return stdout, fmt.Errorf("%w; stderr: %s", err, stderr)
			}
			return stdout, nil
		}
	case sqlstore.SQLite:
		f.dsn = newSQLiteDB(t)
		f.cli = cliProcess(t, f.dsn)
	}
	ctx := context.Background()
	admin, err := sqlstore.Open(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	f.admin = admin
	for i := range n {
		r := &fleetReplica{name: fmt.Sprintf("replica-%d", i+1), appName: fmt.Sprintf("scimgate_fleet_%s_%d", id, i+1)}
		dsn := f.dsn
		if dialect == sqlstore.Postgres {
			dsn += "&application_name=" + r.appName
		}
		r.serve = startServe(t, dsn, env, "--upstream", up.URL)
		r.proxyURL = "http://" + r.serve.addrs["proxy"] + "/probe"
		r.scimURL = "http://" + r.serve.addrs["management"] + "/scim/v2"
		f.replicas = append(f.replicas, r)
	}
	switch dialect {
	case sqlstore.Postgres:
		f.commits = newPostgresCommits(t, f.dsn, admin)
	case sqlstore.SQLite:
		f.commits = newSQLiteCommits(t, admin)
	}
	return f
}

// cliProcess runs scimgate commands as processes of their own: the test
// binary, which runs main when runMainEnv is set.
func cliProcess(t *testing.T, dsn string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		cmd := exec.Command(os.Args[0], append([]string{"--database", dsn}, args...)...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("scimgate %s: %w; stderr: %s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), nil
	}
}

func (f *fleet) cliJSON(v any, args ...string) error {
	out, err := f.cli(append(args, "--json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// subject is a token about to be revoked, and how.
type subject struct {
	kind   revocationKind
	token  string
	id     string // the token's ID, or its owner's
	user   string // the owner's user name
	revoke func() error
}

// newSubject creates a token to revoke by kind, the SCIM one through
// replica via.
func (f *fleet) newSubject(kind revocationKind, via *fleetReplica) (*subject, error) {
	n := f.next.Add(1)
	s := &subject{kind: kind, user: fmt.Sprintf("person-%d", n)}
	var tok createdToken
	if kind == serviceTokenRevoke {
		if err := f.cliJSON(&tok, "service-token", "create", "--org", fleetOrg, "--name", fmt.Sprintf("svc-%d", n), "--permissions", "platform.users"); err != nil {
			return nil, err
		}
		s.token, s.id = tok.Token, tok.ID
		s.revoke = func() error { _, err := f.cli("service-token", "revoke", s.id); return err }
		return s, nil
	}
	var u userView
	if err := f.cliJSON(&u, "user", "create", "--org", fleetOrg, "--user-name", s.user); err != nil {
		return nil, err
	}
	if err := f.cliJSON(&tok, "user-token", "create", "--org", fleetOrg, "--user", s.user, "--name", "laptop"); err != nil {
		return nil, err
	}
	s.token = tok.Token
	switch kind {
	case userTokenDelete:
		s.revoke = func() error { _, err := f.cli("user-token", "delete", tok.ID); return err }
	case userDeactivateCLI:
		s.revoke = func() error { _, err := f.cli("user", "deactivate", "--org", fleetOrg, "--user", s.user); return err }
	case userDeactivateSCIM:
		s.revoke = func() error {
			body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`
			req, _ := http.NewRequest("PATCH", via.scimURL+"/Users/"+u.ID, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+f.scimToken)
			req.Header.Set("Content-Type", "application/scim+json")
			resp, err := f.client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
				b, _ := io.ReadAll(resp.Body)
				return fmt.Errorf("SCIM PATCH through %s: %d %s", via.name, resp.StatusCode, b)
			}
			return nil
		}
	}
	return s, nil
}

// call sends one request with token through a replica's proxy and returns
// the status and the refusal reason.
func (f *fleet) call(r *fleetReplica, token string) (int, string, error) {
	req, _ := http.NewRequest("GET", r.proxyURL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body struct{ Reason string }
	if resp.StatusCode != http.StatusOK {
		json.NewDecoder(resp.Body).Decode(&body)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, body.Reason, nil
}

// probeResult is what probing one replica for a revoked token found.
type probeResult struct {
	refusedAt  time.Time // when the first refusal came back; zero if none
	reason     string
	lateAccept bool  // a request accepted after one was refused
	err        error // an unexpected answer
}

// probe asks replica r with token every millisecond until ctx ends, and for
// afterRefusal once it is refused, to catch a late accept.
func (f *fleet) probe(ctx context.Context, r *fleetReplica, token string, afterRefusal time.Duration) probeResult {
	var res probeResult
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		code, reason, err := f.call(r, token)
		now := time.Now()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				res.err = err
			}
			return res
		case code == http.StatusOK:
			if !res.refusedAt.IsZero() {
				res.lateAccept = true
				return res
			}
		case code == http.StatusUnauthorized:
			if res.refusedAt.IsZero() {
				res.refusedAt, res.reason = now, reason
			}
		default:
			res.err = fmt.Errorf("%s answered %d %s", r.name, code, reason)
			return res
		}
		if !res.refusedAt.IsZero() && now.Sub(res.refusedAt) >= afterRefusal {
			return res
		}
		select {
		case <-ctx.Done():
			return res
		case <-tick.C:
		}
	}
}

// revocation is one measured revocation: per replica, how long after the
// commit its first refusal came back.
type revocation struct {
	kind    revocationKind
	after   []time.Duration // per replica
	killed  []int           // replicas whose connections were killed just before
	problem error
}

// revoke creates a subject of kind, has every replica accept it, probes
// every replica, revokes it (SCIM through replica via) and measures. kill,
// if not nil, runs just before the revocation.
func (f *fleet) revoke(kind revocationKind, via int, kill func() []int) revocation {
	rv := revocation{kind: kind}
	s, err := f.newSubject(kind, f.replicas[via])
	if err != nil {
		rv.problem = err
		return rv
	}
	for _, r := range f.replicas {
		if code, reason, err := f.call(r, s.token); err != nil || code != http.StatusOK {
			rv.problem = fmt.Errorf("false refusal: %s answered %d %q %v for a valid token before its revocation", r.name, code, reason, err)
			return rv
		}
	}
	if kill != nil {
		rv.killed = kill()
	}
	if err := f.commits.arm(); err != nil {
		rv.problem = err
		return rv
	}
	// The probes end fleetBound after the commit (see below); this bounds
	// a revocation that never commits, or a commit the observer misses.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := make([]probeResult, len(f.replicas))
	var wg sync.WaitGroup
	for i, r := range f.replicas {
		wg.Go(func() { results[i] = f.probe(ctx, r, s.token, 20*time.Millisecond) })
	}
	committed := make(chan time.Time, 1)
	commitErr := make(chan error, 1)
	go func() {
		at, err := f.commits.committed(ctx)
		if err != nil {
			commitErr <- err
			return
		}
		committed <- at
	}()
	if err := s.revoke(); err != nil {
		cancel()
		wg.Wait()
		rv.problem = fmt.Errorf("%s: %w", kind, err)
		return rv
	}
	var at time.Time
	select {
	case at = <-committed:
	case err := <-commitErr:
		cancel()
		wg.Wait()
		rv.problem = fmt.Errorf("%s: the commit was not seen: %w", kind, err)
		return rv
	}
	// Measured from the commit: the command's own start-up (a process,
	// opening the database) is not the replicas' doing.
	stop := time.AfterFunc(time.Until(at.Add(fleetBound)), cancel)
	defer stop.Stop()
	wg.Wait()
	for i, res := range results {
		r := f.replicas[i]
		switch {
		case res.err != nil:
			rv.problem = errors.Join(rv.problem, fmt.Errorf("%s: %w", kind, res.err))
		case res.lateAccept:
			rv.problem = errors.Join(rv.problem, fmt.Errorf("%s: %s accepted the token after refusing it", kind, r.name))
		case res.refusedAt.IsZero():
			rv.problem = errors.Join(rv.problem, fmt.Errorf("%s: %s still accepted the token %v after the commit", kind, r.name, fleetBound))
		case res.reason != kind.reason():
			rv.problem = errors.Join(rv.problem, fmt.Errorf("%s: %s refused with reason %q, want %q", kind, r.name, res.reason, kind.reason()))
		}
		rv.after = append(rv.after, res.refusedAt.Sub(at))
	}
	return rv
}

// killConnections terminates the PostgreSQL connections of the replicas
// (a restart or failover, as each sees it) and waits until they are gone.
func (f *fleet) killConnections(replicas ...int) []int {
	f.t.Helper()
	ctx := context.Background()
	var names []string
	for _, i := range replicas {
		names = append(names, f.replicas[i].appName)
	}
	var pids []int
	if err := f.admin.DB().SelectContext(ctx, &pids,
		`SELECT pid FROM pg_stat_activity WHERE application_name = ANY($1)`, names); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.admin.DB().ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, pids); err != nil {
		f.t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(time.Millisecond) {
		var left int
		if err := f.admin.DB().GetContext(ctx, &left, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids); err != nil {
			f.t.Fatal(err)
		}
		if left == 0 {
			return replicas
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("connections of %v still there 15s after pg_terminate_backend", names)
		}
	}
}

// ---- Commits ----

// commitObserver tells when the revocation committed, seen from outside
// every replica: arm notes the change log's end, committed waits for an
// entry past it.
type commitObserver interface {
	arm() error
	committed(ctx context.Context) (time.Time, error)
}

// postgresCommits sees commits through a LISTEN connection of its own: the
// notification is sent at commit. Other tests' schemas notify on the same
// channel, so each notification is checked against this schema's log.
type postgresCommits struct {
	store    *sqlstore.Store
	last     int64
	armed    time.Time
	received chan time.Time
}

func newPostgresCommits(t *testing.T, dsn string, store *sqlstore.Store) *postgresCommits {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+sqlstore.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	p := &postgresCommits{store: store, received: make(chan time.Time, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				return
			}
			select {
			case p.received <- time.Now():
			default:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; conn.Close(context.Background()) })
	return p
}

func (p *postgresCommits) arm() (err error) {
	p.armed = time.Now()
	p.last, err = p.store.LastChange(context.Background())
	return err
}

func (p *postgresCommits) committed(ctx context.Context) (time.Time, error) {
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case at := <-p.received:
			if at.Before(p.armed) {
				continue
			}
			seq, err := p.store.LastChange(ctx)
			if err != nil {
				return time.Time{}, err
			}
			if seq > p.last {
				return at, nil
			}
		}
	}
}

// sqliteCommits sees commits by polling PRAGMA data_version on a connection
// of its own every 100µs, checking the change log on each change.
type sqliteCommits struct {
	store   *sqlstore.Store
	conn    interface{ Close() error }
	version func() (int64, error)
	last    int64
	seen    int64
}

func newSQLiteCommits(t *testing.T, store *sqlstore.Store) *sqliteCommits {
	t.Helper()
	conn, err := store.DB().Connx(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sqliteCommits{store: store, conn: conn, version: func() (v int64, err error) {
		err = conn.GetContext(context.Background(), &v, "PRAGMA data_version")
		return v, err
	}}
}

func (s *sqliteCommits) arm() (err error) {
	if s.seen, err = s.version(); err != nil {
		return err
	}
	s.last, err = s.store.LastChange(context.Background())
	return err
}

func (s *sqliteCommits) committed(ctx context.Context) (time.Time, error) {
	for ctx.Err() == nil {
		v, err := s.version()
		if err != nil {
			return time.Time{}, err
		}
		if v != s.seen {
			at := time.Now()
			s.seen = v
			seq, err := s.store.LastChange(ctx)
			if err != nil {
				return time.Time{}, err
			}
			if seq > s.last {
				return at, nil
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
	return time.Time{}, ctx.Err()
}

// ---- Load ----

// load sends requests with valid tokens through every replica at a steady
// rate; every one must be accepted.
type load struct {
	sent, accepted atomic.Int64
	mu             sync.Mutex
	refusals       []string
	stop           func()
}

// startLoad sends rate requests a second in total, spread over the
// replicas and tokens, until stopped.
func (f *fleet) startLoad(rate int, tokens []string) *load {
	l := &load{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	workers := max(1, min(16, rate/100))
	interval := time.Duration(float64(time.Second) * float64(workers) / float64(rate))
	for w := range workers {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := w; ; i += workers {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				r := f.replicas[i%len(f.replicas)]
				code, reason, err := f.call(r, tokens[i%len(tokens)])
				l.sent.Add(1)
				if err == nil && code == http.StatusOK {
					l.accepted.Add(1)
					continue
				}
				if ctx.Err() != nil {
					return
				}
				l.mu.Lock()
				l.refusals = append(l.refusals, fmt.Sprintf("%s: %d %q %v", r.name, code, reason, err))
				l.mu.Unlock()
			}
		})
	}
	l.stop = func() { cancel(); wg.Wait() }
	return l
}

// loadTokens creates user tokens that are never revoked, for the load.
func (f *fleet) loadTokens(n int) []string {
	f.t.Helper()
	var out []string
	for u := 0; len(out) < n; u++ {
		user := fmt.Sprintf("load-%d", u)
		if _, err := f.cli("user", "create", "--org", fleetOrg, "--user-name", user); err != nil {
			f.t.Fatal(err)
		}
		for i := 0; i < 5 && len(out) < n; i++ {
			var tok createdToken
			if err := f.cliJSON(&tok, "user-token", "create", "--org", fleetOrg, "--user", user, "--name", fmt.Sprintf("t%d", i)); err != nil {
				f.t.Fatal(err)
			}
			out = append(out, tok.Token)
		}
	}
	return out
}

// ---- Scenarios ----

// scenario runs n revocations, kinds and replicas in turn, and returns them.
func (f *fleet) scenario(n int, kill func(i int) []int) []revocation {
	var out []revocation
	for i := range n {
		var k func() []int
		if kill != nil {
			k = func() []int { return kill(i) }
		}
		out = append(out, f.revoke(revocationKind(i%int(revocationKinds)), i%len(f.replicas), k))
	}
	return out
}

func (f *fleet) check(what string, rvs []revocation, l *load) {
	f.t.Helper()
	for _, rv := range rvs {
		if rv.problem != nil {
			f.t.Errorf("%s: %v", what, rv.problem)
		}
	}
	if l != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.refusals) > 0 {
			f.t.Errorf("%s: %d of %d requests with valid tokens were not accepted, such as %s", what, len(l.refusals), l.sent.Load(), l.refusals[0])
		}
		if l.accepted.Load() == 0 {
			f.t.Errorf("%s: the load sent nothing", what)
		}
	}
}

// TestFleet: three replicas on one fresh PostgreSQL database, revocations
// of every kind through the command line and SCIM, background load through
// every replica; every replica refuses each revoked token within
// fleetBound and never accepts it again, and no valid token is refused;
// then the same right after one replica's connections, and after every
// replica's connections, were killed.
func TestFleet(t *testing.T) {
	if os.Getenv(sqltest.EnvPostgresDSN) == "" {
		t.Skip(sqltest.EnvPostgresDSN + " not set: the PostgreSQL fleet test is skipped")
	}
	f := startFleet(t, sqlstore.Postgres, 3)
	l := f.startLoad(150, f.loadTokens(6))
	rvs := f.scenario(int(revocationKinds)*2, nil)
	f.check("under load", rvs, nil)
	rvs = f.scenario(int(revocationKinds), func(i int) []int { return f.killConnections(i % len(f.replicas)) })
	f.check("after one replica's connections were killed", rvs, nil)
	rvs = f.scenario(2, func(int) []int { return f.killConnections(0, 1, 2) })
	f.check("after every replica's connections were killed", rvs, nil)
	l.stop()
	f.check("load", nil, l)
	t.Logf("%d requests of background load, all accepted", l.accepted.Load())
}

// TestFleetSQLite: a server and the command line in two processes on one
// SQLite file. Every revocation is refused by the server within fleetBound
// (milliseconds in fact: the file watch), and by the time the command says
// the server refuses it, it does.
func TestFleetSQLite(t *testing.T) {
	f := startFleet(t, sqlstore.SQLite, 1)
	l := f.startLoad(100, f.loadTokens(3))
	rvs := f.scenario(int(revocationKinds), nil)
	f.check("sqlite", rvs, nil)

	// The command's word holds: once it says the server refuses the token,
	// the next request is refused.
	s, err := f.newSubject(serviceTokenRevoke, f.replicas[0])
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := f.call(f.replicas[0], s.token); err != nil || code != 200 {
		t.Fatalf("a new token: %d %v", code, err)
	}
	out, err := f.cli("service-token", "revoke", s.id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "refused by the one scimgate server running on this database") {
		t.Errorf("service-token revoke printed %q, want it to say the one server refuses it", out)
	}
	if code, reason, err := f.call(f.replicas[0], s.token); err != nil || code != 401 || reason != "revoked" {
		t.Errorf("right after the command said so: %d %q %v, want 401 revoked", code, reason, err)
	}
	l.stop()
	f.check("load", nil, l)
}

// ---- Benchmark ----

// TestFleetBench measures revocation latency: for each scenario, per
// replica and for the last replica of each revocation, p50, p99 and max of
// the time from the commit to the first refusal. Run it with
//
//	go test ./cmd/scimgate -run TestFleetBench -v -fleet.bench -fleet.n 100
//
// (SCIMGATE_TEST_POSTGRES_DSN set for the PostgreSQL scenarios).
func TestFleetBench(t *testing.T) {
	if !*fleetBench {
		t.Skip("a benchmark: run with -fleet.bench (see the README)")
	}
	n := *fleetN
	fmt.Printf("fleet benchmark: %d revocations per scenario, kinds in turn (%s); latency from the commit to the first refusal\n",
		n, strings.Join([]string{serviceTokenRevoke.String(), userTokenDelete.String(), userDeactivateCLI.String(), userDeactivateSCIM.String()}, ", "))
	if os.Getenv(sqltest.EnvPostgresDSN) != "" {
		f := startFleet(t, sqlstore.Postgres, 3)
		toks := f.loadTokens(20)
		report(t, "postgres, 3 replicas, idle", f.scenario(n, nil), f.replicas, nil)
		l := f.startLoad(*fleetRate, toks)
		report(t, fmt.Sprintf("postgres, 3 replicas, %d req/s of load", *fleetRate), f.scenario(n, nil), f.replicas, l)
		report(t, fmt.Sprintf("postgres, %d req/s, one replica's connections killed before every revocation", *fleetRate),
			f.scenario(n, func(i int) []int { return f.killConnections(i % len(f.replicas)) }), f.replicas, l)
		report(t, fmt.Sprintf("postgres, %d req/s, every replica's connections killed before every revocation", *fleetRate),
			f.scenario(n, func(int) []int { return f.killConnections(0, 1, 2) }), f.replicas, l)
		l.stop()
		if len(l.refusals) > 0 {
			t.Errorf("%d valid requests refused, such as %s", len(l.refusals), l.refusals[0])
		}
		fmt.Printf("load: %d requests with valid tokens, %d accepted\n", l.sent.Load(), l.accepted.Load())
	} else {
		fmt.Println("postgres scenarios skipped: " + sqltest.EnvPostgresDSN + " not set")
	}
	f := startFleet(t, sqlstore.SQLite, 1)
	report(t, "sqlite, server and command line in two processes, idle", f.scenario(n, nil), f.replicas, nil)
	rate := min(*fleetRate, 500)
	l := f.startLoad(rate, f.loadTokens(5))
	report(t, fmt.Sprintf("sqlite, server and command line in two processes, %d req/s", rate), f.scenario(n, nil), f.replicas, l)
	l.stop()
	idleCPU(t)
}

// report prints a scenario's latencies and fails the test on a wrong answer.
func report(t *testing.T, name string, rvs []revocation, replicas []*fleetReplica, l *load) {
	t.Helper()
	fmt.Printf("\n%s (n=%d)\n", name, len(rvs))
	fmt.Printf("  %-28s %9s %9s %9s\n", "", "p50", "p99", "max")
	var last, killed []time.Duration
	perReplica := make([][]time.Duration, len(replicas))
	for _, rv := range rvs {
		if rv.problem != nil {
			t.Errorf("%s: %v", name, rv.problem)
			continue
		}
		last = append(last, slices.Max(rv.after))
		for i, d := range rv.after {
			perReplica[i] = append(perReplica[i], d)
			if slices.Contains(rv.killed, i) && len(rv.killed) < len(replicas) {
				killed = append(killed, d)
			}
		}
	}
	row := func(label string, ds []time.Duration) {
		if len(ds) == 0 {
			return
		}
		fmt.Printf("  %-28s %9s %9s %9s\n", label, ms(percentile(ds, 50)), ms(percentile(ds, 99)), ms(slices.Max(ds)))
	}
	for i, r := range replicas {
		row(r.name, perReplica[i])
	}
	row("the killed replica", killed)
	if len(replicas) > 1 {
		row("every replica (the last)", last)
	}
	if l != nil {
		l.mu.Lock()
		fmt.Printf("  load so far: %d requests, %d accepted\n", l.sent.Load(), l.accepted.Load())
		l.mu.Unlock()
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + "ms"
}

// idleCPU runs an idle server (SQLite, and PostgreSQL when configured) as a
// process of its own and prints the CPU time it uses.
func idleCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		fmt.Println("idle CPU: not measured (no /proc)")
		return
	}
	dsns := map[string]string{"sqlite": newSQLiteDB(t)}
	if os.Getenv(sqltest.EnvPostgresDSN) != "" {
		dsns["postgres"] = sqltest.PostgresDSN(t)
	}
	fmt.Println()
	for _, name := range []string{"sqlite", "postgres"} {
		dsn, ok := dsns[name]
		if !ok {
			continue
		}
		cmd := exec.Command(os.Args[0], "serve", "--database", dsn, "--upstream", "http://127.0.0.1:9",
			"--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), runMainEnv+"=1", "SCIMGATE_LOG_LEVEL=warn")
		cmd.Stderr, cmd.Stdout = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // started, bootstrapped
		before := cpuTicks(t, cmd.Process.Pid)
		time.Sleep(*fleetIdle)
		used := time.Duration(cpuTicks(t, cmd.Process.Pid)-before) * 10 * time.Millisecond // USER_HZ is 100
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		fmt.Printf("idle server (%s): %v of CPU in %v (%.2f%% of one core)\n", name, used, *fleetIdle, 100*used.Seconds()/fleetIdle.Seconds())
	}
}

// cpuTicks is a process's user and system time, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}
