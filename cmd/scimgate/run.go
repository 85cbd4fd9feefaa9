package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
)

// run is the whole program: main only calls it, and tests call it with their
// own arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr, stdin: stdinOf(ctx)}
	defer c.close()
	// With --json, main prints the error as JSON (printError), and nothing
	// else goes to stderr: the usage texts below are left out.
	defer func() {
		if err != nil && c.global.json {
			err = &jsonError{err}
		}
	}()
	usageOut := func() io.Writer {
		if c.global.json {
			return io.Discard
		}
		return stderr
	}

	root := newFlagSet("scimgate")
	c.global.register(root)
	showVersion := root.Bool("version", false, "print the version and exit")
	if err := root.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return nil
		}
		c.global.json = c.global.json || jsonRequested(args[1:])
		printUsage(usageOut())
		return &usageError{err}
	}
	if *showVersion {
		return c.printVersion()
	}
	rest := root.Args()
	if len(rest) == 0 {
		printUsage(usageOut())
		return usagef("no command given")
	}
	if rest[0] == "help" {
		return c.help(rest[1:])
	}

	cmd, cmdArgs, err := findCommand(rest)
	if err != nil {
		if isGroup(rest[0]) {
			printGroupUsage(usageOut(), rest[0])
		} else {
			printUsage(usageOut())
		}
		return err
	}
	if cmd == nil { // a group of commands, such as "scimgate org --help"
		printGroupUsage(stdout, rest[0])
		return nil
	}
	fs := newFlagSet("scimgate " + cmd.name)
	c.global.register(fs)
	act := cmd.define(fs)
	positional, err := parseFlags(fs, cmdArgs)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, cmd)
		return nil
	}
	if err == nil && len(positional) != len(cmd.args) {
		err = wrongArgs(cmd, positional)
	}
	if err != nil {
		// The flag package stops at the first bad flag: a --json after it
		// still asks for a JSON error.
		c.global.json = c.global.json || jsonRequested(cmdArgs)
		printCommandUsage(usageOut(), cmd)
		var u *usageError
		if !errors.As(err, &u) {
			err = &usageError{fmt.Errorf("%s: %w", cmd.name, err)}
		}
		return err
	}
	if c.global.server != "" && !cmd.remote {
		return usagef("%s has no remote form: it opens the database itself (leave out --server)", cmd.name)
	}
	return act(ctx, c, positional)
}

// jsonRequested reports whether args hold a --json flag that is true, for
// when they could not be parsed.
func jsonRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-json", "--json", "-json=true", "--json=true", "-json=1", "--json=1":
			return true
		}
	}
	return false
}

// findCommand finds the command args start with, and returns the args after
// its name. A nil command with no error means the user asked for the help of
// a group ("scimgate org --help").
func findCommand(args []string) (*command, []string, error) {
	group := args[0]
	if !isGroup(group) {
		for i := range commands {
			if commands[i].name == group {
				return &commands[i], args[1:], nil
			}
		}
		return nil, nil, usagef("unknown command %q (run \"scimgate --help\" for the list)", group)
	}
	if len(args) < 2 {
		return nil, nil, usagef("%s: which one? (run \"scimgate %s --help\")", group, group)
	}
	if isHelpFlag(args[1]) {
		return nil, args, nil
	}
	name := group + " " + args[1]
	for i := range commands {
		if commands[i].name == name {
			return &commands[i], args[2:], nil
		}
	}
	return nil, nil, usagef("unknown command %q (run \"scimgate %s --help\" for the list)", name, group)
}

func (c *cli) help(topic []string) error {
	if len(topic) == 0 {
		printUsage(c.stdout)
		return nil
	}
	if isGroup(topic[0]) && len(topic) == 1 {
		printGroupUsage(c.stdout, topic[0])
		return nil
	}
	name := strings.Join(topic, " ")
	for i := range commands {
		if commands[i].name == name {
			printCommandUsage(c.stdout, &commands[i])
			return nil
		}
	}
	printUsage(c.stderr)
	return usagef("unknown command %q", name)
}

func isHelpFlag(s string) bool {
	switch s {
	case "-h", "-help", "--help":
		return true
	}
	return false
}

func isGroup(name string) bool {
	for _, cmd := range commands {
		if g, _, ok := strings.Cut(cmd.name, " "); ok && g == name {
			return true
		}
	}
	return false
}

func wrongArgs(cmd *command, got []string) error {
	switch {
	case len(cmd.args) == 0:
		return usagef("%s takes no arguments, got %q", cmd.name, got)
	case len(got) == 0:
		return usagef("%s: give the %s", cmd.name, strings.Join(cmd.args, " "))
	default:
		return usagef("%s takes one %s, got %q", cmd.name, strings.Join(cmd.args, " "), got)
	}
}

// newFlagSet returns a flag set that reports errors to run instead of
// printing them, so that the usage and the message are printed once each.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses flags wherever they are among the arguments, so that
// "service-token revoke ID --json" works like "service-token revoke --json ID".
// Everything after "--" is an argument.
func parseFlags(fs *flag.FlagSet, args []string) (positional []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// globalFlags are accepted before the command and by every command.
type globalFlags struct {
	config   string
	database string
	json     bool
	remoteFlags
}

// register binds the global flags to fs. Their defaults are the values
// already parsed, so a command's flag set keeps what came before the command.
func (g *globalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "config", g.config, "read the YAML configuration file (env SCIMGATE_CONFIG)")
	fs.StringVar(&g.database, "database", g.database, "the database: a SQLite file path or a postgres:// URL (env SCIMGATE_DATABASE)")
	fs.BoolVar(&g.json, "json", g.json, "print machine-readable JSON")
	g.remoteFlags.register(fs) // remote.go
}

// cli is what a command runs with.
type cli struct {
	global         globalFlags
	getenv         func(string) string
	stdout, stderr io.Writer
	stdin          io.Reader       // what "token report" and "token inspect" read
	store          *sqlstore.Store // opened by service
	// lastChange is the newest change-log entry this command committed
	// (0: none), and when; see confirmApplied.
	lastChange  int64
	committedAt time.Time
}

// config loads and validates the configuration with the global flags and
// the command's overrides.
func (c *cli) config(overrides configOverrides) (*Config, error) {
	path := c.global.config
	if path == "" {
		path = c.getenv("SCIMGATE_CONFIG")
	}
	overrides.Database = c.global.database
	cfg, err := LoadConfig(path, c.getenv, overrides)
	if err != nil {
		return nil, &usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return nil, &usageError{fmt.Errorf("config: %w", err)}
	}
	return cfg, nil
}

// service opens the configured database, brings its schema up to date
// (cheap when it already is) and returns the domain service over it. A
// SQLite file that does not exist is an error (a mistyped path must not
// become a new, empty database): only migrate (create) and serve make one.
func (c *cli) service(ctx context.Context) (*tokens.Service, error) {
	return c.openService(ctx, false)
}

func (c *cli) openService(ctx context.Context, create bool) (*tokens.Service, error) {
	cfg, err := c.config(configOverrides{})
	if err != nil {
		return nil, err
	}
	policy, err := cfg.Policy()
	if err != nil {
		return nil, &usageError{err}
	}
	if sqlstore.IsMemory(cfg.DatabaseDSN()) {
		return nil, usagef("database %q: an in-memory database lives only as long as one process, so a command cannot reach the one a server holds; give the server's file or postgres:// URL", cfg.DatabaseDSN())
	}
	c.store, err = openStore(ctx, cfg, create)
	if err != nil {
		return nil, err
	}
	svc := tokens.NewService(c.store, policy)
	svc.OnCommit = func(changes []tokens.Change) {
		c.lastChange = max(c.lastChange, changes[len(changes)-1].Seq)
		c.committedAt = time.Now()
	}
	return svc, nil
}

// serviceForOrg is service, then the org named by --org.
func (c *cli) serviceForOrg(ctx context.Context, orgName string) (*tokens.Service, *tokens.Org, error) {
	svc, err := c.service(ctx)
	if err != nil {
		return nil, nil, err
	}
	org, err := svc.OrgByName(ctx, orgName)
	if err != nil {
		return nil, nil, err
	}
	return svc, org, nil
}

func (c *cli) close() {
	if c.store != nil {
		c.store.Close()
		c.store = nil
	}
}

// openStore opens the database and applies pending migrations. A SQLite
// file that does not exist is created (with its directory) only if create
// is set; otherwise it is a usage error naming the path and what to do.
func openStore(ctx context.Context, cfg *Config, create bool, opts ...sqlstore.Option) (*sqlstore.Store, error) {
	dsn := cfg.DatabaseDSN()
	if !create {
		opts = append(opts, sqlstore.ExistingOnly())
	}
	store, err := sqlstore.Open(ctx, dsn, opts...)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, missingDatabase(cfg)
	}
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// missingDatabase explains a SQLite database file that is not there.
func missingDatabase(cfg *Config) error {
	path := cfg.DatabaseDSN()
	if cfg.Database == "" {
		return usagef("no database at %s (data_dir %s): run \"scimgate serve\" there to create it, run \"scimgate migrate\" to create an empty one, or give --database", path, cfg.DataDir)
	}
	return usagef("database %s does not exist: check the path; to create an empty database there, run \"scimgate migrate --database %s\"", path, path)
}

// ---- Usage ----

const exitCodesHelp = `Exit codes:
  0  success
  1  error: the database cannot be reached, or something unexpected
  2  usage: a wrong command, flag, argument, configuration or value
  3  not found: the org, user, token or site named does not exist
  4  refused: a name taken, a limit reached, a token in the wrong state,
     or (with --server) a permission the token lacks
  5  unauthorized (with --server): the server refused the token
`

func printUsage(w io.Writer) {
	fmt.Fprint(w, `scimgate is an identity sidecar and auth proxy that speaks SCIM.

Usage:
  scimgate [global flags] <command> [flags] [arguments]

Global flags, accepted before the command and by every command:
`)
	printGlobalFlags(w)
	fmt.Fprintln(w, "\nCommands:")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %s\n        %s\n", strings.TrimSpace(cmd.name+" "+cmd.synopsis), cmd.summary)
	}
	fmt.Fprint(w, "\nRun \"scimgate <command> --help\" for a command's flags.\n\n"+remoteHelp+"\n"+exitCodesHelp)
}

func printGroupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage:\n")
	for _, cmd := range commands {
		if strings.HasPrefix(cmd.name, group+" ") {
			fmt.Fprintf(w, "  scimgate %s\n        %s\n", strings.TrimSpace(cmd.name+" "+cmd.synopsis), cmd.summary)
		}
	}
	fmt.Fprintf(w, "\nRun \"scimgate %s <command> --help\" for a command's flags.\n", group)
}

func printCommandUsage(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: scimgate %s\n\n%s\n", strings.TrimSpace(cmd.name+" "+cmd.synopsis), cmd.help)
	fs := newFlagSet(cmd.name)
	cmd.define(fs)
	if hasFlags(fs) {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, fs, cmd.synopsis)
	}
	fmt.Fprintln(w, "\nGlobal flags:")
	printGlobalFlags(w)
}

func printGlobalFlags(w io.Writer) {
	fs := newFlagSet("global")
	new(globalFlags).register(fs)
	printFlags(w, fs, "[--config FILE] [--database DSN] [--json] [--server URL] [--token-file FILE] [--server-ca FILE]")
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// printFlags prints flags GNU style (--name VALUE), which is how the help
// and the README write them; Go's flag package accepts both - and --. Each
// flag's value is named as in the synopsis.
func printFlags(w io.Writer, fs *flag.FlagSet, synopsis string) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		arg := ""
		if m := regexp.MustCompile(`--` + regexp.QuoteMeta(f.Name) + ` ([^\s\]]+)`).FindStringSubmatch(synopsis); m != nil {
			arg = " " + m[1]
		}
		usage := f.Usage
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, usage)
	})
	tw.Flush()
}
