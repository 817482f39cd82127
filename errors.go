// Package mcert holds what every other package shares: the domain error type that the web layer
// turns into PROTOCOL.md's JSON error body, and the catalog of its codes (codes.go).
package mcert

import (
	"errors"
	"time"
)

// Kind classifies an error for the transport: each kind maps to one HTTP status.
type Kind string

const (
	Invalid      Kind = "invalid"      // malformed or unacceptable input: 400
	Unauthorized Kind = "unauthorized" // missing or bad session or credential: 401
	Forbidden    Kind = "forbidden"    // understood but not allowed: 403
	NotFound     Kind = "not_found"    // unknown id or token: 404
	Conflict     Kind = "conflict"     // already exists, or a one-time token already used: 409
	Expired      Kind = "expired"      // a one-time token past its lifetime: 410
	TooMany      Kind = "too_many"     // rate limited: 429 with Retry-After
	Internal     Kind = "internal"     // anything else; details are logged, never shown

	// The kinds of the transport's own refusals, which the domain never makes.
	BadMethod    Kind = "bad_method"     // a method the route does not serve: 405
	TooLarge     Kind = "too_large"      // a body over the limit: 413
	BadMediaType Kind = "bad_media_type" // a body that is not JSON: 415
	Unavailable  Kind = "unavailable"    // a service that cannot answer now: 503
)

// Error is an error meant for the client: Code is the stable snake_case machine code of
// PROTOCOL.md's error body and Message the sentence for people, which says what to do. Errors
// are made from the catalog's entries (Code.New, Code.Newf), never by hand, so that every code
// has its texts for the pages (TestNoCodeOutsideCatalog).
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	RetryAfter time.Duration // for TooMany: when the client may try again
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorKind is the kind of err, or Internal when err is not an *Error.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
