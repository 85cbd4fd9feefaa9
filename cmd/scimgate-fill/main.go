// Command scimgate-fill fills a scimgate database quickly with one org of
// many people, groups and tokens, for benchmarks and load tests:
//
//	go run ./cmd/scimgate-fill --database DSN --org acme --users 100000 --tokens 1000000 --groups 20 \
//	    --sample 1000 --sample-file tokens.txt
//
// It writes through the store's bulk loader (multi-row INSERTs in
// transactions of a few thousand rows), not through the command line or the
// service, so no audit event and no change-log entry is written: fill a
// database before starting scimgate on it, or restart scimgate after.
// The tokens are real: the hashes of fresh secrets, a sample of which it
// writes out for load tests. The org is created if it does not exist, and
// one service token for SCIM (platform.users and platform.groups) is made
// through the service and printed, so that SCIM benchmarks can call in.
//
// The data are made from --seed: the same flags give the same names,
// addresses, times and memberships (IDs and secrets are random).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "scimgate-fill: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

// options are the command's flags.
type options struct {
	database      string
	org           string
	users         int
	tokens        int
	groups        int
	groupsPerUser int
	everyone      bool
	serviceTokens int
	ignoreLimits  bool
	sample        int
	sampleFile    string
	seed          uint64
	days          int
	analyze       bool
	jsonOut       bool
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("scimgate-fill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.database, "database", getenv("SCIMGATE_DATABASE"), "a SQLite file path or a postgres:// URL (env SCIMGATE_DATABASE); required")
	fs.StringVar(&o.org, "org", "acme", "the organization to fill, created if it does not exist")
	fs.IntVar(&o.users, "users", 1000, "how many people to add")
	fs.IntVar(&o.tokens, "tokens", 0, "how many user tokens to add, spread over the active people added")
	fs.IntVar(&o.groups, "groups", 0, "how many groups to add")
	fs.IntVar(&o.groupsPerUser, "groups-per-user", 2, "how many of the groups each person added joins (at most --groups)")
	fs.BoolVar(&o.everyone, "everyone-group", false, "also add a group holding every person added (a large group)")
	fs.IntVar(&o.serviceTokens, "service-tokens", 0, "how many service tokens to add besides the SCIM one (an org holds at most 20)")
	fs.BoolVar(&o.ignoreLimits, "ignore-limits", false, "keep every token active, even beyond 10 per person (otherwise the surplus is added expired)")
	fs.IntVar(&o.sample, "sample", 0, "write the plaintext of this many active user tokens (chosen at random) to --sample-file")
	fs.StringVar(&o.sampleFile, "sample-file", "", "where --sample writes, one token a line (created with mode 0600)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the names, addresses, times and memberships")
	fs.IntVar(&o.days, "days", 365, "people are created over this many days before now")
	fs.BoolVar(&o.analyze, "analyze", true, "refresh the planner's statistics (ANALYZE) when done")
	fs.BoolVar(&o.jsonOut, "json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return o, usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return o, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case o.database == "":
		return o, usageError{errors.New("--database is required (a SQLite file path or a postgres:// URL)")}
	case o.users < 0 || o.tokens < 0 || o.groups < 0 || o.serviceTokens < 0 || o.sample < 0:
		return o, usageError{errors.New("counts must not be negative")}
	case o.tokens > 0 && o.users == 0:
		return o, usageError{errors.New("--tokens needs --users: user tokens belong to people")}
	case o.serviceTokens > tokens.MaxActiveServiceTokens-1:
		return o, usageError{fmt.Errorf("--service-tokens: an org holds at most %d service tokens, one of them the SCIM token", tokens.MaxActiveServiceTokens)}
	case o.sample > 0 && o.sampleFile == "":
		return o, usageError{errors.New("--sample needs --sample-file")}
	case o.sample > o.tokens:
		return o, usageError{fmt.Errorf("--sample %d is more than --tokens %d", o.sample, o.tokens)}
	case o.days < 1:
		return o, usageError{errors.New("--days must be at least 1")}
	}
	o.groupsPerUser = min(max(o.groupsPerUser, 0), o.groups)
	return o, nil
}

// summary is what a fill made.
type summary struct {
	Org           string  `json:"org"`
	OrgID         string  `json:"org_id"`
	Dialect       string  `json:"dialect"`
	Users         int     `json:"users"`
	ActiveUsers   int     `json:"active_users"`
	Groups        int     `json:"groups"`
	Memberships   int     `json:"memberships"`
	Tokens        int     `json:"tokens"`
	ActiveTokens  int     `json:"active_tokens"`
	ServiceTokens int     `json:"service_tokens"`
	SCIMToken     string  `json:"scim_token"`
	SampleFile    string  `json:"sample_file,omitempty"`
	Sampled       int     `json:"sampled"`
	Seconds       float64 `json:"seconds"`
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseOptions(args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	store, err := sqlstore.Open(ctx, o.database)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	policy, err := tokens.NewPolicy(tokens.PolicyConfig{})
	if err != nil {
		return err
	}
	f := &filler{opts: o, store: store, svc: tokens.NewService(store, policy), now: time.Now().UTC(),
		rng: rand.New(rand.NewPCG(o.seed, o.seed^0x5c196a7e)), log: stderr}
	sum, err := f.fill(ctx)
	if err != nil {
		return err
	}
	sum.Seconds = time.Since(start).Seconds()
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	fmt.Fprintf(stdout, "org %s (%s) on %s: %d users (%d active), %d groups with %d memberships, %d user tokens (%d active), %d service tokens, in %.1fs\n",
		sum.Org, sum.OrgID, sum.Dialect, sum.Users, sum.ActiveUsers, sum.Groups, sum.Memberships, sum.Tokens, sum.ActiveTokens,
		sum.ServiceTokens, sum.Seconds)
	fmt.Fprintf(stdout, "scim token: %s\n", sum.SCIMToken)
	if sum.SampleFile != "" {
		fmt.Fprintf(stdout, "%d token plaintexts in %s\n", sum.Sampled, sum.SampleFile)
	}
	return nil
}

type filler struct {
	opts  options
	store *sqlstore.Store
	svc   *tokens.Service
	now   time.Time
	rng   *rand.Rand
	log   io.Writer
}

// chunk is how many rows of a kind one BulkLoad call gets, so that memory
// stays bounded with a million tokens.
const chunk = 20000

func (f *filler) fill(ctx context.Context) (*summary, error) {
	o := f.opts
	org, err := f.svc.OrgByName(ctx, o.org)
	if tokens.ErrorCode(err) == tokens.NotFound {
		org, err = f.svc.CreateOrg(ctx, tokens.Operator, o.org, 0)
	}
	if err != nil {
		return nil, err
	}
	sum := &summary{Org: org.Name, OrgID: org.ID, Dialect: f.store.Dialect()}

	// Numbering continues after the org's users, so that a second fill of
	// the same org adds people rather than failing on taken names.
	_, existing, err := f.svc.Users(ctx, org.ID, tokens.UserFilter{Count: 1, WithRemoved: true})
	if err != nil {
		return nil, err
	}
	users, err := f.addUsers(ctx, org, existing)
	if err != nil {
		return nil, err
	}
	sum.Users = len(users)
	for _, u := range users {
		if u.active {
			sum.ActiveUsers++
		}
	}
	f.progress("users", sum.Users)
	if sum.Groups, sum.Memberships, err = f.addGroups(ctx, org, users); err != nil {
		return nil, err
	}
	f.progress("groups", sum.Groups)
	sampled, err := f.addTokens(ctx, org, users, sum)
	if err != nil {
		return nil, err
	}
	f.progress("user tokens", sum.Tokens)
	if o.sample > 0 {
		if err := writeSample(o.sampleFile, sampled); err != nil {
			return nil, err
		}
		sum.SampleFile, sum.Sampled = o.sampleFile, len(sampled)
	}
	for i := range o.serviceTokens {
		_, _, err := f.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{Name: fmt.Sprintf("fill-service-%d", i+1)})
		if err != nil {
			return nil, err
		}
		sum.ServiceTokens++
	}
	_, secret, err := f.svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{
		Name: fmt.Sprintf("fill-scim-%d", f.now.Unix()), PermissionSets: []string{tokens.PermUsers, tokens.PermGroups}})
	if err != nil {
		return nil, fmt.Errorf("create the SCIM token: %w", err)
	}
	sum.ServiceTokens++
	sum.SCIMToken = secret.Plaintext()
	if o.analyze {
		if err := f.store.Analyze(ctx); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

func (f *filler) progress(what string, n int) {
	fmt.Fprintf(f.log, "scimgate-fill: %d %s added (%.1fs)\n", n, what, time.Since(f.now).Seconds())
}

// person is what the later steps need of a user added.
type person struct {
	id      string
	active  bool
	created time.Time
}

var givenNames = []string{"Ada", "Alan", "Amara", "Barbara", "Bjarne", "Carmen", "Chen", "Dennis", "Dorothy", "Edsger",
	"Elena", "Farah", "Frances", "Grace", "Guido", "Hedy", "Ines", "Ivan", "Jean", "Joan", "Ken", "Katherine", "Linus",
	"Leslie", "Margaret", "Mei", "Niklaus", "Nadia", "Olu", "Priya", "Quentin", "Radia", "Rob", "Sophie", "Sanjay",
	"Tim", "Ursula", "Vint", "Wei", "Xavier", "Yukihiro", "Zara", "Émile", "Øystein"}

var familyNames = []string{"Lovelace", "Turing", "Okafor", "Liskov", "Stroustrup", "Ortiz", "Wang", "Ritchie",
	"Vaughan", "Dijkstra", "Petrova", "Haddad", "Allen", "Hopper", "van Rossum", "Lamarr", "García", "Sutherland",
	"Sammet", "Clarke", "Thompson", "Johnson", "Torvalds", "Lamport", "Hamilton", "Zhang", "Wirth", "Malik", "Adeyemi",
	"Raman", "Tarantino", "Perlman", "Pike", "Wilson", "Gupta", "Berners-Lee", "Franklin", "Cerf", "Li", "Leroy",
	"Matsumoto", "Ahmed", "Zola", "Dahl"}

func (f *filler) addUsers(ctx context.Context, org *tokens.Org, existing int) ([]person, error) {
	o := f.opts
	people := make([]person, 0, o.users)
	span := time.Duration(o.days) * 24 * time.Hour
	// Creation times grow with the number, as the IdP pushed people over
	// the days; each was modified at some time since.
	step := span / time.Duration(max(o.users, 1))
	batch := make([]tokens.User, 0, chunk)
	for i := range o.users {
		n := existing + i + 1
		given := givenNames[f.rng.IntN(len(givenNames))]
		family := familyNames[f.rng.IntN(len(familyNames))]
		local := strings.ToLower(strings.ReplaceAll(given+"."+family, " ", "")) + fmt.Sprintf(".%d", n)
		created := f.now.Add(-span + time.Duration(i)*step + time.Duration(f.rng.Int64N(int64(step)+1)))
		modified := created.Add(time.Duration(f.rng.Int64N(int64(f.now.Sub(created)) + 1)))
		u := tokens.User{
			ID: tokens.NewID("usr"), OrgID: org.ID, UserName: local + "@example.com",
			ExternalID:  fmt.Sprintf("00u%08d%08x", n, f.rng.Uint32()),
			DisplayName: given + " " + family, GivenName: given, FamilyName: family,
			Emails:         []tokens.Email{{Value: local + "@example.com", Type: "work", Primary: true}},
			EmployeeNumber: fmt.Sprint(100000 + n),
			Active:         f.rng.IntN(100) < 97,
			CreatedAt:      created, UpdatedAt: modified, Version: 1 + int64(f.rng.IntN(4)),
		}
		if f.rng.IntN(10) < 3 {
			u.Emails = append(u.Emails, tokens.Email{Value: fmt.Sprintf("%s%d@mail.example.org", strings.ToLower(given), n), Type: "home"})
		}
		batch = append(batch, u)
		people = append(people, person{id: u.ID, active: u.Active, created: created})
		if len(batch) == chunk || i == o.users-1 {
			if err := f.store.BulkLoad(ctx, sqlstore.Bulk{Users: batch}); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	return people, nil
}

var groupWords = []string{"Engineering", "Sales", "Support", "Finance", "Legal", "Marketing", "Design", "Research",
	"Operations", "Security", "Data", "Platform", "Mobile", "Web", "Infrastructure", "People", "Partners", "Billing",
	"Growth", "Quality"}

func (f *filler) addGroups(ctx context.Context, org *tokens.Org, people []person) (groups, memberships int, err error) {
	o := f.opts
	if o.groups == 0 && !o.everyone {
		return 0, 0, nil
	}
	tag := tokens.NewID("g")[2:8] // random: group names are unique per org, and a second fill adds groups
	all := make([]tokens.Group, o.groups)
	for i := range all {
		all[i] = tokens.Group{ID: tokens.NewID("grp"), OrgID: org.ID,
			DisplayName: fmt.Sprintf("%s %d (%s)", groupWords[i%len(groupWords)], i+1, tag),
			ExternalID:  fmt.Sprintf("00g%08d%s", i+1, tag),
			CreatedAt:   f.now.Add(-time.Duration(o.days) * 24 * time.Hour), UpdatedAt: f.now, Version: 1}
	}
	for _, p := range people {
		for _, g := range f.rng.Perm(o.groups)[:o.groupsPerUser] {
			all[g].MemberIDs = append(all[g].MemberIDs, p.id)
		}
	}
	if o.everyone {
		g := tokens.Group{ID: tokens.NewID("grp"), OrgID: org.ID, DisplayName: "Everyone (" + tag + ")",
			CreatedAt: f.now, UpdatedAt: f.now, Version: 1}
		for _, p := range people {
			g.MemberIDs = append(g.MemberIDs, p.id)
		}
		all = append(all, g)
	}
	for _, g := range all {
		memberships += len(g.MemberIDs)
	}
	if err := f.store.BulkLoad(ctx, sqlstore.Bulk{Groups: all}); err != nil {
		return 0, 0, err
	}
	return len(all), memberships, nil
}

// addTokens gives the active people user tokens in turn, at most
// tokens.MaxActiveUserTokens active ones each unless limits are ignored,
// and returns a random sample of the active ones' plaintexts.
func (f *filler) addTokens(ctx context.Context, org *tokens.Org, people []person, sum *summary) ([]string, error) {
	o := f.opts
	var owners []person
	for _, p := range people {
		if p.active {
			owners = append(owners, p)
		}
	}
	if o.tokens > 0 && len(owners) == 0 {
		return nil, errors.New("no active person to give tokens to")
	}
	var sample []string
	seen := 0 // active tokens so far, for reservoir sampling
	batch := make([]tokens.Token, 0, chunk)
	window := time.Duration(org.UserTokenInactivityDays) * 24 * time.Hour
	for k := range o.tokens {
		owner := owners[k%len(owners)]
		round := k / len(owners)
		secret := tokens.NewSecret(tokens.KindUser)
		// Created and last used within the inactivity window, so that the
		// server's inactivity sweep leaves them alone.
		created := f.now.Add(-time.Duration(f.rng.Int64N(int64(window / 2))))
		if created.Before(owner.created) {
			created = owner.created
		}
		tok := tokens.Token{ID: tokens.NewID("tok"), OrgID: org.ID, Kind: tokens.KindUser, OwnerID: owner.id,
			Name: fmt.Sprintf("fill-%d", round+1), DisplayPrefix: secret.DisplayPrefix(), Hash: secret.Hash(),
			InactivityDays: org.UserTokenInactivityDays, Status: tokens.StatusActive,
			CreatedAt: created, StatusChangedAt: created}
		if f.rng.IntN(10) < 8 {
			tok.LastUsedAt = created.Add(time.Duration(f.rng.Int64N(int64(f.now.Sub(created)) + 1)))
			tok.UseCount = 1 + f.rng.Int64N(10000)
		}
		if round >= tokens.MaxActiveUserTokens && !o.ignoreLimits {
			tok.Status, tok.StatusReason = tokens.StatusExpired, tokens.ReasonInactivity
		}
		if tok.Status == tokens.StatusActive {
			sum.ActiveTokens++
			seen++
			switch {
			case len(sample) < o.sample:
				sample = append(sample, secret.Plaintext())
			case o.sample > 0:
				if j := f.rng.IntN(seen); j < o.sample {
					sample[j] = secret.Plaintext()
				}
			}
		}
		batch = append(batch, tok)
		if len(batch) == chunk || k == o.tokens-1 {
			if err := f.store.BulkLoad(ctx, sqlstore.Bulk{Tokens: batch}); err != nil {
				return nil, err
			}
			sum.Tokens += len(batch)
			batch = batch[:0]
			if sum.Tokens%200000 == 0 {
				f.progress("user tokens", sum.Tokens)
			}
		}
	}
	return sample, nil
}

func writeSample(path string, plaintexts []string) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write the token sample: %w", err)
	}
	_, err = io.WriteString(file, strings.Join(plaintexts, "\n")+"\n")
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the token sample %s: %w", path, err)
	}
	return nil
}
