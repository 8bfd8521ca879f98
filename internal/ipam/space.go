package ipam

import (
	"math/big"
	"net/netip"
	"slices"

	"github.com/google/btree"
)

// A space holds the allocatable addresses of one family of one pool, numbered
// 0, 1, 2, ... in address order. Addresses that avoidBuggyIPs excludes get no
// number, so the space is gap-free and "lowest free address" is a search for
// the lowest unused index. Used indices are kept as an ordered set of
// disjoint, non-adjacent intervals: memory grows with the allocations (and
// less when they are contiguous), never with the size of the pool, and every
// operation costs O(log n).
type space struct {
	is4   bool
	spans []span // allocatable spans in address order; indices ascend with them
	used  *btree.BTreeG[ival]

	capacity *big.Int // number of allocatable addresses
	inUse    int64    // distinct addresses in use
}

// span is one configured range, restricted to its allocatable addresses.
type span struct {
	lo, hi  u128 // numeric first and last address of the range
	buggy   bool // IPv4 with avoidBuggyIPs: index math skips .0 and .255
	base    u128 // index of the first allocatable address
	lastIdx u128 // index of the last allocatable address
	fLo     uint64
}

// ival is an inclusive interval of used indices.
type ival struct{ start, end u128 }

func newSpace(ranges []Range, is4, avoidBuggy bool) *space {
	sorted := slices.Clone(ranges)
	slices.SortFunc(sorted, func(a, b Range) int { return a.First.Compare(b.First) })
	s := &space{
		is4:      is4,
		used:     btree.NewG(32, func(a, b ival) bool { return a.start.less(b.start) }),
		capacity: new(big.Int),
	}
	var next u128
	for _, r := range sorted {
		if r.First.Is4() != is4 {
			continue
		}
		sp := span{lo: addrU128(r.First), hi: addrU128(r.Last), base: next}
		var count u128 // number of allocatable addresses minus one, once known to be non-zero
		if is4 && avoidBuggy {
			sp.buggy = true
			sp.fLo = nonBuggyBelow(sp.lo.lo)
			n := nonBuggyBelow(sp.hi.lo+1) - sp.fLo
			if n == 0 {
				continue // e.g. 192.0.2.255/32: nothing may be handed out
			}
			count = u64(n - 1)
		} else {
			count = sp.hi.sub(sp.lo)
		}
		sp.lastIdx = sp.base.add(count)
		s.spans = append(s.spans, sp)
		s.capacity.Add(s.capacity, count.big())
		s.capacity.Add(s.capacity, big.NewInt(1))
		// Only the space covering all of IPv6 ends at the maximum index, and
		// then there is no next span.
		next = sp.lastIdx.inc()
	}
	return s
}

// nonBuggyBelow counts the IPv4 addresses in [0, n) whose last octet is
// neither 0 nor 255.
func nonBuggyBelow(n uint64) uint64 {
	return n - (n+255)/256 - n/256
}

// nthNonBuggy is the inverse of nonBuggyBelow: the address with k allocatable
// addresses below it. Each /24 contributes offsets 1 to 254.
func nthNonBuggy(k uint64) uint64 {
	return k/254*256 + k%254 + 1
}

func isBuggy(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	last := a.As4()[3]
	return last == 0 || last == 255
}

func (s *space) empty() bool { return len(s.spans) == 0 }

// indexOf returns the index of a, or false if a is not allocatable here.
func (s *space) indexOf(a netip.Addr) (u128, bool) {
	if a.Is4() != s.is4 {
		return u128{}, false
	}
	v := addrU128(a)
	i, _ := slices.BinarySearchFunc(s.spans, v, func(sp span, v u128) int {
		if sp.hi.less(v) {
			return -1
		}
		return 1
	})
	if i == len(s.spans) || v.less(s.spans[i].lo) {
		return u128{}, false
	}
	sp := &s.spans[i]
	if sp.buggy {
		if isBuggy(a) {
			return u128{}, false
		}
		return sp.base.add(u64(nonBuggyBelow(v.lo) - sp.fLo)), true
	}
	return sp.base.add(v.sub(sp.lo)), true
}

// addrAt returns the address with index idx, which must be in the space.
func (s *space) addrAt(idx u128) netip.Addr {
	i, _ := slices.BinarySearchFunc(s.spans, idx, func(sp span, idx u128) int {
		if sp.lastIdx.less(idx) {
			return -1
		}
		return 1
	})
	sp := &s.spans[i]
	off := idx.sub(sp.base)
	if sp.buggy {
		return u128Addr(u64(nthNonBuggy(sp.fLo+off.lo)), true)
	}
	return u128Addr(sp.lo.add(off), s.is4)
}

// containing returns the used interval holding idx, if any.
func (s *space) containing(idx u128) (ival, bool) {
	var found ival
	ok := false
	s.used.DescendLessOrEqual(ival{start: idx}, func(iv ival) bool {
		found, ok = iv, !iv.end.less(idx)
		return false
	})
	return found, ok
}

// firstFree returns the lowest unused index. Intervals are merged, so the
// index after the one starting at zero is free.
func (s *space) firstFree() (u128, bool) {
	if s.empty() {
		return u128{}, false
	}
	first, ok := s.used.Min()
	if !ok || first.start != (u128{}) {
		return u128{}, true
	}
	last := s.spans[len(s.spans)-1].lastIdx
	if first.end.cmp(last) >= 0 {
		return u128{}, false
	}
	return first.end.inc(), true
}

// isUsed reports whether the address with index idx is in use.
func (s *space) isUsed(idx u128) bool {
	_, ok := s.containing(idx)
	return ok
}

// markUsed adds idx to the used set, merging with its neighbours.
func (s *space) markUsed(idx u128) {
	// The interval with the greatest start <= idx either holds idx already
	// or, if it ends just before idx, is the left neighbour to merge with.
	var left ival
	hasLeft := false
	s.used.DescendLessOrEqual(ival{start: idx}, func(iv ival) bool {
		left, hasLeft = iv, true
		return false
	})
	if hasLeft && !left.end.less(idx) {
		return // already used
	}
	hasLeft = hasLeft && left.end.inc() == idx
	var right ival
	hasRight := false
	if !idx.isMax() {
		right, hasRight = s.used.Get(ival{start: idx.inc()})
	}
	switch {
	case hasLeft && hasRight:
		s.used.Delete(right)
		s.used.ReplaceOrInsert(ival{left.start, right.end})
	case hasLeft:
		s.used.ReplaceOrInsert(ival{left.start, idx})
	case hasRight:
		s.used.Delete(right)
		s.used.ReplaceOrInsert(ival{idx, right.end})
	default:
		s.used.ReplaceOrInsert(ival{idx, idx})
	}
	s.inUse++
}

// markFree removes idx from the used set, splitting its interval.
func (s *space) markFree(idx u128) {
	iv, ok := s.containing(idx)
	if !ok {
		return
	}
	switch {
	case iv.start == idx && iv.end == idx:
		s.used.Delete(iv)
	case iv.start == idx:
		s.used.Delete(iv)
		s.used.ReplaceOrInsert(ival{idx.inc(), iv.end})
	case iv.end == idx:
		s.used.ReplaceOrInsert(ival{iv.start, idx.dec()})
	default:
		s.used.ReplaceOrInsert(ival{iv.start, idx.dec()})
		s.used.ReplaceOrInsert(ival{idx.inc(), iv.end})
	}
	s.inUse--
}
