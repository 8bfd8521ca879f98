package ipam

import (
	"errors"
	"net/netip"
)

// Reason is a short, stable, machine-readable cause of an allocation failure,
// suitable for a metric label or a condition reason.
type Reason string

// Reasons reported by *Error.
const (
	// ReasonInvalidRequest: the request itself is malformed (no service key,
	// no address, an unknown family policy).
	ReasonInvalidRequest Reason = "InvalidRequest"
	// ReasonNoPoolMatches: no candidate pool could serve the request at all
	// (none given, autoAssign=false, wrong family, unknown).
	ReasonNoPoolMatches Reason = "NoPoolMatches"
	// ReasonPoolExhausted: a suitable pool exists but has no address left
	// for this service.
	ReasonPoolExhausted Reason = "PoolExhausted"
	// ReasonUnknownPool: the pool named in the request does not exist.
	ReasonUnknownPool Reason = "UnknownPool"
	// ReasonNotInAnyPool: a requested address lies in no pool, or in a pool
	// whose avoidBuggyIPs excludes it.
	ReasonNotInAnyPool Reason = "NotInAnyPool"
	// ReasonPoolNotAllowed: the pool holding a requested address is not
	// allowed for the service (the caller's accept function said no).
	ReasonPoolNotAllowed Reason = "PoolNotAllowed"
	// ReasonPoolMismatch: the two requested addresses lie in different pools.
	ReasonPoolMismatch Reason = "PoolMismatch"
	// ReasonAddressInUse: the address is held by another service and the two
	// do not have the same non-empty sharing key.
	ReasonAddressInUse Reason = "AddressInUse"
	// ReasonBackendConflict: same sharing key, but the backend keys differ
	// (Cluster with Local, or Local with a different selector).
	ReasonBackendConflict Reason = "BackendConflict"
	// ReasonPortConflict: sharing is allowed but a (protocol, port) pair is
	// already used on the address.
	ReasonPortConflict Reason = "PortConflict"
	// ReasonSharingKeyConflict: a service that shares its address with
	// others tried to change its sharing key in place.
	ReasonSharingKeyConflict Reason = "SharingKeyConflict"
	// ReasonFamilyMismatch: the addresses' families do not fit the service's
	// family policy, or two requested addresses have the same family.
	ReasonFamilyMismatch Reason = "FamilyMismatch"
	// ReasonTooManyAddresses: more than two addresses were requested.
	ReasonTooManyAddresses Reason = "TooManyAddresses"
)

// Error is the error returned by every allocation operation. Message is a
// complete sentence for a human (an Event or a log line); Reason is for
// machines. Use errors.As to get it, or ReasonOf.
type Error struct {
	Reason  Reason
	Service string     // the service key the request was for
	Address netip.Addr // the address concerned, when there is one
	Holder  string     // the service already on Address, for conflicts
	Message string
	Err     error // an underlying cause, such as the caller's accept error
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of an *Error in err's chain, or "" if there is
// none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
