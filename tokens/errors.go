package tokens

import (
	"errors"
	"fmt"
)

// Code classifies a domain error so that each transport can map it to its
// own response in one place.
type Code string

const (
	Invalid        Code = "invalid"         // the request itself is wrong
	NotFound       Code = "not_found"       // no such thing in this org
	Conflict       Code = "conflict"        // a uniqueness rule
	LimitReached   Code = "limit_reached"   // 10 user tokens, 20 service tokens
	WrongState     Code = "wrong_state"     // e.g. regenerating an active token
	VersionChanged Code = "version_changed" // optimistic concurrency (If-Match)
	Internal       Code = "internal"
)

// The codes of the caller-aware management calls (see Caller).
const (
	// Forbidden: the caller may not do this: a permission it lacks, another
	// person's token, a permission it would grant without holding it. The
	// message names the rule.
	Forbidden Code = "forbidden"
	// Unauthenticated: the caller's credential stopped working while the
	// request was under way: its token was revoked or deleted, or its owner
	// deactivated. A console signs the person out.
	Unauthenticated Code = "unauthenticated"
)

// Error is a domain error: a code and a message a person can act on.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or Internal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrNotFound is what a Store returns for a missing row; Service turns it
// into an *Error that names what is missing.
var ErrNotFound = errors.New("not found")

// ErrUnavailable marks a Store error that means the database cannot be
// reached, as opposed to a query that failed.
var ErrUnavailable = errors.New("store unavailable")
