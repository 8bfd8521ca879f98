package ipam

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Family is an IP address family.
type Family int

// The zero Family is IPv4, the common case.
const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// other returns the other family.
func (f Family) other() Family { return 1 - f }

// Pool is one address pool as the allocator sees it: the parsed form of an
// IPAddressPool. Matching Services against spec.serviceAllocation is the
// caller's business; the allocator only needs the result (see Candidate).
type Pool struct {
	Name   string
	Ranges []Range

	// AutoAssign lets automatic allocation pick this pool. Explicit requests
	// and AllocateFromPool use the pool regardless.
	AutoAssign bool

	// AvoidBuggyIPs excludes every IPv4 address whose last octet is 0 or 255,
	// whatever the prefix length, as MetalLB does. It has no effect on IPv6.
	AvoidBuggyIPs bool

	// Priority orders automatic allocation: a lower number is tried first,
	// and 0 means unset, tried after every pool that has a priority (as in
	// MetalLB, where 0 and unset are the same). Negative numbers sort before
	// positive ones.
	Priority int
}

// ParseRanges parses the address entries of one pool, in order, reporting
// every bad entry at once.
func ParseRanges(entries []string) ([]Range, error) {
	out := make([]Range, 0, len(entries))
	var errs []error
	for _, e := range entries {
		r, err := ParseRange(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// OverlapError reports two pool entries that share addresses. The two may
// belong to the same pool.
type OverlapError struct {
	PoolA, EntryA string
	PoolB, EntryB string
}

func (e *OverlapError) Error() string {
	if e.PoolA == e.PoolB {
		return fmt.Sprintf("pool %q: entry %q overlaps its entry %q; an address may belong to only one entry, so merge or shrink them",
			e.PoolA, e.EntryB, e.EntryA)
	}
	return fmt.Sprintf("pool %q entry %q overlaps pool %q entry %q; an address may belong to only one pool, so shrink one of them",
		e.PoolB, e.EntryB, e.PoolA, e.EntryA)
}

// ValidatePools checks a complete set of pools the way the config parser and
// the admission webhook must: every pool has a name, names are unique, every
// pool has at least one range, and no two ranges overlap, within a pool or
// across pools. It reports every problem found, in a stable order.
func ValidatePools(pools []Pool) error {
	var errs []error
	seen := make(map[string]bool, len(pools))
	type owned struct {
		r    Range
		pool string
	}
	var all []owned
	for _, p := range pools {
		switch {
		case p.Name == "":
			errs = append(errs, errors.New("a pool has no name"))
		case seen[p.Name]:
			errs = append(errs, fmt.Errorf("pool %q is defined twice; pool names must be unique", p.Name))
		}
		seen[p.Name] = true
		if len(p.Ranges) == 0 {
			errs = append(errs, fmt.Errorf("pool %q has no addresses: spec.addresses needs at least one CIDR or range", p.Name))
		}
		for _, r := range p.Ranges {
			if !r.First.IsValid() || !r.Last.IsValid() || r.First.Is4() != r.Last.Is4() || r.Last.Less(r.First) {
				errs = append(errs, fmt.Errorf("pool %q: invalid range %s", p.Name, r))
				continue
			}
			all = append(all, owned{r, p.Name})
		}
	}
	// Sorted by start, a range overlaps an earlier one exactly when it starts
	// at or before the furthest end seen so far.
	slices.SortStableFunc(all, func(a, b owned) int { return a.r.First.Compare(b.r.First) })
	var reach *owned
	for i := range all {
		cur := &all[i]
		if reach != nil && reach.r.First.Is4() == cur.r.First.Is4() && !reach.r.Last.Less(cur.r.First) {
			errs = append(errs, &OverlapError{PoolA: reach.pool, EntryA: reach.r.Entry(), PoolB: cur.pool, EntryB: cur.r.Entry()})
		}
		if reach == nil || reach.r.First.Is4() != cur.r.First.Is4() || reach.r.Last.Less(cur.r.Last) {
			reach = cur
		}
	}
	return errors.Join(errs...)
}

// comparePriority orders pinned pools for automatic allocation: pools with a
// priority first, lowest number first, then pools without one; ties by name.
func comparePriority(a, b *pool) int {
	ap, bp := a.cfg.Priority != 0, b.cfg.Priority != 0
	switch {
	case ap && !bp:
		return -1
	case !ap && bp:
		return 1
	case ap && bp && a.cfg.Priority != b.cfg.Priority:
		return cmp.Compare(a.cfg.Priority, b.cfg.Priority)
	}
	return cmp.Compare(a.cfg.Name, b.cfg.Name)
}
