package cloud

import (
	"errors"
	"fmt"
)

// Error codes shared by providers. The API codes are Hetzner's, which other
// clouds' errors map onto; CodeNetwork is ours, for a request that got no
// answer.
const (
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden"
	CodeTokenReadonly = "token_readonly"
	CodeNotFound      = "not_found"
	CodeRateLimited   = "rate_limit_exceeded"
	CodeLocked        = "locked"
	CodeConflict      = "conflict"
	CodeNetwork       = "network"
)

// ErrNotEligible marks a node that has no server a floating IP can be
// assigned to: its providerID names another kind of machine, or no server
// has its name. It is permanent.
var ErrNotEligible = errors.New("node has no cloud server")

// APIError is a failed call to a provider's API.
type APIError struct {
	// Op is what was asked, for the message: "get floating IP 7".
	Op string
	// Code is the API's error code, or CodeNetwork.
	Code string
	// Status is the HTTP status; 0 when there was no answer.
	Status int
	Err    error
}

func (e *APIError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: %s (HTTP %d): %v", e.Op, e.Code, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Op, e.Code, e.Err)
}

func (e *APIError) Unwrap() error { return e.Err }

// Class says what to do about an error.
type Class int

const (
	// Retryable errors go away by themselves: back off and try again, a
	// bounded number of times.
	Retryable Class = iota
	// Permanent errors need an operator (a wrong or read-only token, an IP
	// or server that does not exist): report once, do not retry.
	Permanent
)

func (c Class) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "retryable"
}

// Classify sorts err. Errors that are neither an *APIError nor
// ErrNotEligible (a failed action, a malformed answer) are retryable: the
// retry cap bounds them.
func Classify(err error) Class {
	if errors.Is(err, ErrNotEligible) {
		return Permanent
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return Retryable
	}
	switch ae.Code {
	// Errors that need a person: a wrong or read-only token, an IP or server
	// that does not exist, a request the API will never accept.
	case CodeUnauthorized, CodeForbidden, CodeTokenReadonly, CodeNotFound,
		"invalid_input", "json_error", "protected", "unsupported_error":
		return Permanent
	// Errors that pass: the budget refills, a running action ends, a
	// concurrent change settles, the backend recovers.
	case CodeRateLimited, CodeLocked, CodeConflict, CodeNetwork,
		"service_error", "server_error", "bad_gateway", "timeout",
		"maintenance", "resource_unavailable", "unknown_error":
		return Retryable
	}
	// Any other 4xx gets the same answer when sent again.
	if ae.Status >= 400 && ae.Status < 500 {
		return Permanent
	}
	return Retryable
}

// ErrorCode returns err's API code, or "" when err is not an *APIError; for
// metrics and reports.
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}
