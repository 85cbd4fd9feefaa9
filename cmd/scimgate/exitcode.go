package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/scimgate/scimgate/tokens"
)

// Exit codes of the command line, documented in README.md. exitCode is the
// only place that maps errors to them.
const (
	exitError    = 1 // anything else: the database cannot be reached, an internal error
	exitUsage    = 2 // the command line, the configuration or a value given is wrong
	exitNotFound = 3 // the org, user or token named does not exist
	exitRefused  = 4 // a rule refused the change: a name taken, a limit reached, a token in the wrong state
	// exitUnauthorized: with --server, the server refused the token the
	// command runs with (missing, unknown, revoked, expired).
	exitUnauthorized = 5
)

// usageError is a mistake in the command line or the configuration.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	switch tokens.ErrorCode(err) {
	case tokens.Invalid:
		return exitUsage
	case tokens.NotFound:
		return exitNotFound
	case tokens.Conflict, tokens.LimitReached, tokens.WrongState, tokens.VersionChanged:
		return exitRefused
	case tokens.Forbidden:
		return exitRefused
	case tokens.Unauthenticated:
		return exitUnauthorized
	}
	return exitError
}

// errorMessage is what the command line prints for err. A domain error's
// message is written for the person who made the request, so it stands
// alone; the operation it is wrapped in names internal IDs the person did
// not type.
func errorMessage(err error) string {
	var domain *tokens.Error
	if errors.As(err, &domain) && domain.Code != tokens.Internal {
		return domain.Message
	}
	return err.Error()
}

// jsonError is an error of a command run with --json: main prints it as
// JSON on stderr (printError).
type jsonError struct{ err error }

func (e *jsonError) Error() string { return e.err.Error() }
func (e *jsonError) Unwrap() error { return e.err }

// errorKind is a stable word for what went wrong, for scripts: "usage",
// "unavailable" (the database cannot be reached), a domain error's code
// ("not_found", "conflict", "limit_reached", "wrong_state", …) or "error".
func errorKind(err error) string {
	var u *usageError
	switch code := tokens.ErrorCode(err); {
	case errors.As(err, &u):
		return "usage"
	case code != tokens.Internal:
		return string(code)
	case errors.Is(err, tokens.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// printError writes what main prints for err: "scimgate: <message>", or
// with --json one JSON object, such as
// {"error":"org \"initech\" not found","code":"not_found","exit_code":3}.
func printError(w io.Writer, err error) {
	var j *jsonError
	if !errors.As(err, &j) {
		fmt.Fprintf(w, "scimgate: %s\n", errorMessage(err))
		return
	}
	b, _ := json.Marshal(struct {
		Error    string `json:"error"`
		Code     string `json:"code"`
		ExitCode int    `json:"exit_code"`
	}{errorMessage(err), errorKind(err), exitCode(err)})
	fmt.Fprintf(w, "%s\n", b)
}
