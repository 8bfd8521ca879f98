package config

import (
	"cmp"
	"slices"
	"strings"
)

// The kinds a Problem can be about.
const (
	KindIPAddressPool    = "IPAddressPool"
	KindL2Advertisement  = "L2Advertisement"
	KindBGPAdvertisement = "BGPAdvertisement"
	KindBGPPeer          = "BGPPeer"
	KindBFDProfile       = "BFDProfile"
	KindCommunity        = "Community"
	// KindCloudAdvertisement is herald-lb.io's, not metallb.io's.
	KindCloudAdvertisement = "CloudAdvertisement"
)

// kindRank orders problems the way an operator reads a configuration:
// pools first, then what announces them (Layer 2, cloud, BGP), then the
// BGP details.
func kindRank(kind string) int {
	switch kind {
	case KindIPAddressPool:
		return 0
	case KindL2Advertisement:
		return 1
	case KindCloudAdvertisement:
		return 2
	case KindBGPAdvertisement:
		return 3
	case KindBGPPeer:
		return 4
	case KindBFDProfile:
		return 5
	case KindCommunity:
		return 6
	}
	return 7
}

// Problem is one thing wrong with one object of the configuration.
type Problem struct {
	Kind      string
	Namespace string
	Name      string
	// Field is the path of the offending field, such as
	// "spec.nodeSelectors[0].matchLabels[kubernetes.io/hostname]"; empty when
	// the problem is with the object as a whole.
	Field string
	// Message says what is wrong and how to fix it.
	Message string
	// Transient marks a problem that goes away by itself once another object
	// appears (a Secret, a BFDProfile, a Community alias): the configuration
	// must not be applied yet, but it is not wrong, so a webhook lets it in
	// and a controller waits for the missing object instead of reporting the
	// configuration as invalid.
	Transient bool
}

// String formats the problem as "Kind/name: field: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Kind)
	b.WriteString("/")
	b.WriteString(p.Name)
	if p.Field != "" {
		b.WriteString(": ")
		b.WriteString(p.Field)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a configuration, in a stable order. A
// non-empty Problems is an error.
type Problems []Problem

// Error joins the problems, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Transient reports whether there is at least one problem and every one is
// transient: the configuration only waits for objects that do not exist yet.
func (ps Problems) Transient() bool {
	if len(ps) == 0 {
		return false
	}
	for _, p := range ps {
		if !p.Transient {
			return false
		}
	}
	return true
}

// Permanent returns the problems that are not transient: the ones a webhook
// must refuse.
func (ps Problems) Permanent() Problems {
	var out Problems
	for _, p := range ps {
		if !p.Transient {
			out = append(out, p)
		}
	}
	return out
}

// About returns the problems about one object.
func (ps Problems) About(kind, name string) Problems {
	var out Problems
	for _, p := range ps {
		if p.Kind == kind && p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

// sortProblems orders problems by kind, then object name, keeping the order
// in which the checks found them within one object (which follows the
// object's fields).
func sortProblems(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)),
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Namespace, b.Namespace),
		)
	})
}

// ref identifies the object a problem is about.
type ref struct {
	kind, namespace, name string
}
