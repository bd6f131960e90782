// Package usererr carries errors meant for the person on the other end of
// the API: a kind (which picks the HTTP status), a stable machine code, and
// a sentence that is safe to show. The wrapped cause is for operators only
// and never leaves the server. Every package may import it.
package usererr

import (
	"errors"
	"fmt"
)

// Kind classifies a user error; internal/api maps it to an HTTP status.
type Kind int

const (
	Invalid         Kind = iota + 1 // 400: the request is malformed or out of range
	Unauthenticated                 // 401: no, expired, revoked or replayed credentials
	Forbidden                       // 403: authenticated, but policy or a guardrail says no
	NotFound                        // 404: the named thing does not exist
	Conflict                        // 409: the state does not allow it now (already used, drifted, busy)
	TooLarge                        // 413: the body is over the limit
	RateLimited                     // 429: too many attempts
)

// HTTPStatus is the status an HTTP API answers with for k; 400 for an
// unknown kind.
func (k Kind) HTTPStatus() int {
	switch k {
	case Unauthenticated:
		return 401
	case Forbidden:
		return 403
	case NotFound:
		return 404
	case Conflict:
		return 409
	case TooLarge:
		return 413
	case RateLimited:
		return 429
	default:
		return 400
	}
}

// Error is a user-facing error.
type Error struct {
	Kind Kind
	// Code is a stable, machine-readable name, e.g. "capacity_floor".
	Code string
	// Msg is a complete sentence for a person: what, why, and what would pass.
	Msg string
	// Details carries optional structured data for clients (e.g. verdicts).
	Details any
	// Err is the cause, for operators' logs only.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a user error of kind k.
func New(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns a user error of kind k whose cause is err.
func Wrap(err error, k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Msg: fmt.Sprintf(format, args...), Err: err}
}

// As returns the user error in err's chain, if any.
func As(err error) (*Error, bool) {
	var ue *Error
	ok := errors.As(err, &ue)
	return ue, ok
}
