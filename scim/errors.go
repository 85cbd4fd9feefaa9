package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/scimgate/scimgate/tokens"
)

const contentType = "application/scim+json"

// badRequest is a 400 with the scimType RFC 7644 3.12 gives the problem.
func badRequest(scimType scimerrors.ScimType, format string, args ...any) error {
	return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func invalidValue(format string, args ...any) error {
	return badRequest(scimerrors.ScimTypeInvalidValue, format, args...)
}

func invalidSyntax(format string, args ...any) error {
	return badRequest(scimerrors.ScimTypeInvalidSyntax, format, args...)
}

func invalidPath(format string, args ...any) error {
	return badRequest(scimerrors.ScimTypeInvalidPath, format, args...)
}

func noTarget(format string, args ...any) error {
	return badRequest(scimerrors.ScimTypeNoTarget, format, args...)
}

func mutability(format string, args ...any) error {
	return badRequest(scimerrors.ScimTypeMutability, format, args...)
}

// tooLarge is a 413: the request asks for more work than the server takes
// in one request, and the same change split into smaller requests would
// be accepted. RFC 7644 3.12 gives 413 for a bulk request over
// maxOperations, the same kind of limit; a 400 would tell the client its
// data is wrong, which it is not.
func tooLarge(format string, args ...any) error {
	return scimerrors.ScimError{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf(format, args...)}
}

// unavailableError is an authenticator that could not decide.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// errPreconditionFailed answers an If-Match that names another version.
var errPreconditionFailed = scimerrors.ScimError{Status: http.StatusPreconditionFailed,
	Detail: "the resource has changed since the version If-Match names: read it again"}

// scimError turns any error met while serving a request into the SCIM error
// to answer with. It is the one place where statuses and scimTypes are
// chosen; internal errors are logged here and answered without their text.
func (h *handler) scimError(r *http.Request, err error) scimerrors.ScimError {
	var (
		scimErr    scimerrors.ScimError
		domainErr  *tokens.Error
		authErr    *tokens.AuthError
		missing    *missingPermissionError
		tooLarge   *http.MaxBytesError
		authFailed *unavailableError
	)
	switch {
	case errors.As(err, &scimErr):
		return scimErr
	case errors.As(err, &authErr):
		return scimerrors.ScimError{Status: http.StatusUnauthorized, Detail: authErr.Message}
	case errors.As(err, &missing):
		return scimerrors.ScimError{Status: http.StatusForbidden, Detail: missing.Error()}
	case errors.As(err, &tooLarge):
		return scimerrors.ScimError{Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit)}
	case errors.As(err, &domainErr) && domainErr.Code != tokens.Internal:
		switch domainErr.Code {
		case tokens.NotFound:
			return scimerrors.ScimError{Status: http.StatusNotFound, Detail: domainErr.Message}
		case tokens.Conflict:
			return scimerrors.ScimError{Status: http.StatusConflict, ScimType: scimerrors.ScimTypeUniqueness, Detail: domainErr.Message}
		case tokens.VersionChanged:
			return scimerrors.ScimError{Status: http.StatusPreconditionFailed, Detail: domainErr.Message}
		case tokens.Invalid:
			return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidValue, Detail: domainErr.Message}
		default: // WrongState, LimitReached: no SCIM operation should meet them
			return scimerrors.ScimError{Status: http.StatusConflict, Detail: domainErr.Message}
		}
	case r.Context().Err() != nil:
		// The client went away: nobody reads the answer, nothing to log.
		return scimerrors.ScimError{Status: http.StatusServiceUnavailable, Detail: "the request was cancelled"}
	case errors.As(err, &authFailed), errors.Is(err, tokens.ErrUnavailable):
		h.log.ErrorContext(r.Context(), "scim: store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		return scimerrors.ScimError{Status: http.StatusServiceUnavailable,
			Detail: "scimgate cannot reach its store right now: retry shortly"}
	default:
		h.log.ErrorContext(r.Context(), "scim: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		return scimerrors.ScimError{Status: http.StatusInternalServerError,
			Detail: "internal error: the details are in scimgate's log"}
	}
}

// writeError answers a request with the SCIM error for err.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := h.scimError(r, err)
	if e.Status == http.StatusUnauthorized {
		challenge := `Bearer realm="scimgate", error="invalid_token"`
		if errors.Is(err, tokens.ErrNoToken) {
			challenge = `Bearer realm="scimgate"` // RFC 6750 3.1: no error code without credentials
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	writeSCIMError(w, e)
}

func writeSCIMError(w http.ResponseWriter, e scimerrors.ScimError) {
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	if e.Status == http.StatusServiceUnavailable {
		hdr.Set("Retry-After", "5")
	}
	body, _ := json.Marshal(e) // cannot fail: strings and an int
	w.WriteHeader(e.Status)
	w.Write(body)
}

// fail is what a resource method returns to the library for err. The
// library answers an error whose status RFC 7644 does not list for the
// method with a 500 of its own wording; 503 is such a status, so the error
// is also kept for failureWriter to answer with instead.
func (h *handler) fail(r *http.Request, err error) error {
	e := h.scimError(r, err)
	if e.Status == http.StatusServiceUnavailable {
		requestOf(r).failure.err = &e
	}
	return e
}

type failure struct{ err *scimerrors.ScimError }

// failureWriter replaces the library's 500 for an error it could not pass on
// with the error itself.
type failureWriter struct {
	http.ResponseWriter
	failure  *failure
	replaced bool
}

func (w *failureWriter) WriteHeader(status int) {
	if status == http.StatusInternalServerError && w.failure.err != nil {
		w.replaced = true
		writeSCIMError(w.ResponseWriter, *w.failure.err)
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *failureWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}
