package ipam

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestNonBuggyArithmetic(t *testing.T) {
	count := uint64(0)
	k := uint64(0)
	for n := uint64(0); n < 5000; n++ {
		if got := nonBuggyBelow(n); got != count {
			t.Fatalf("nonBuggyBelow(%d) = %d, want %d", n, got, count)
		}
		if last := n % 256; last != 0 && last != 255 {
			if got := nthNonBuggy(k); got != n {
				t.Fatalf("nthNonBuggy(%d) = %d, want %d", k, got, n)
			}
			k++
			count++
		}
	}
	// The top of the IPv4 space.
	if got := nthNonBuggy(nonBuggyBelow(0xFFFFFFFE)); got != 0xFFFFFFFE {
		t.Errorf("nthNonBuggy at the top = %#x", got)
	}
}

// TestSpaceIndexing checks the index <-> address mapping against a plain
// enumeration, with and without avoidBuggyIPs, across several ranges.
func TestSpaceIndexing(t *testing.T) {
	for _, tt := range []struct {
		entries []string
		buggy   bool
		is4     bool
	}{
		{[]string{"198.18.0.250-198.18.2.3", "198.18.5.0/30", "198.18.4.255/32"}, true, true},
		{[]string{"198.18.0.250-198.18.2.3", "198.18.5.0/30"}, false, true},
		{[]string{"2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::3", "2001:db8:5::/126"}, true, false},
	} {
		rs, err := ParseRanges(tt.entries)
		if err != nil {
			t.Fatal(err)
		}
		sp := newSpace(rs, tt.is4, tt.buggy)
		sorted := slices.Clone(rs)
		slices.SortFunc(sorted, func(a, b Range) int { return a.First.Compare(b.First) })
		var want []netip.Addr
		for _, r := range sorted {
			for a := r.First; ; a = a.Next() {
				if !(tt.buggy && isBuggy(a)) {
					want = append(want, a)
				}
				if a == r.Last {
					break
				}
			}
		}
		if int64(len(want)) != sp.capacity.Int64() {
			t.Fatalf("%v: capacity %s, want %d", tt.entries, sp.capacity, len(want))
		}
		for i, a := range want {
			if got := sp.addrAt(u64(uint64(i))); got != a {
				t.Fatalf("%v: addrAt(%d) = %s, want %s", tt.entries, i, got, a)
			}
			if idx, ok := sp.indexOf(a); !ok || idx != u64(uint64(i)) {
				t.Fatalf("%v: indexOf(%s) = %v %v, want %d", tt.entries, a, idx, ok, i)
			}
		}
		if tt.buggy && tt.is4 {
			if _, ok := sp.indexOf(netip.MustParseAddr("198.18.1.0")); ok {
				t.Errorf("buggy address 198.18.1.0 has an index")
			}
			if _, ok := sp.indexOf(netip.MustParseAddr("198.18.4.255")); ok {
				t.Errorf("buggy-only range 198.18.4.255/32 has an index")
			}
		}
	}
}

// TestSpaceUsedSet drives markUsed/markFree randomly and compares the
// interval set with a plain set after every step.
func TestSpaceUsedSet(t *testing.T) {
	rs, _ := ParseRanges([]string{"198.18.0.0/26"})
	sp := newSpace(rs, true, false)
	model := map[uint64]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 20000; step++ {
		i := rng.Uint64N(64)
		if rng.IntN(2) == 0 {
			sp.markUsed(u64(i))
			model[i] = true
		} else {
			sp.markFree(u64(i))
			delete(model, i)
		}
		if sp.inUse != int64(len(model)) {
			t.Fatalf("step %d: inUse %d, want %d", step, sp.inUse, len(model))
		}
		wantFirst, wantOK := uint64(0), false
		for j := uint64(0); j < 64; j++ {
			if !model[j] {
				wantFirst, wantOK = j, true
				break
			}
		}
		got, ok := sp.firstFree()
		if ok != wantOK || (ok && got != u64(wantFirst)) {
			t.Fatalf("step %d: firstFree = %v %v, want %d %v", step, got, ok, wantFirst, wantOK)
		}
		// Intervals are disjoint, non-adjacent and sorted.
		var prev *ival
		sp.used.Ascend(func(iv ival) bool {
			if iv.end.less(iv.start) || (prev != nil && !prev.end.inc().less(iv.start)) {
				t.Fatalf("step %d: bad intervals %v then %v", step, prev, iv)
			}
			p := iv
			prev = &p
			return true
		})
		for j := uint64(0); j < 64; j++ {
			if sp.isUsed(u64(j)) != model[j] {
				t.Fatalf("step %d: isUsed(%d) = %v", step, j, !model[j])
			}
		}
	}
}

// TestSpaceAllIPv6 covers the space that ends at the largest index.
func TestSpaceAllIPv6(t *testing.T) {
	rs, _ := ParseRanges([]string{"::/0"})
	sp := newSpace(rs, false, false)
	top := u128{^uint64(0), ^uint64(0)}
	if got := sp.addrAt(top); got != netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") {
		t.Errorf("addrAt(max) = %s", got)
	}
	sp.markUsed(top)
	sp.markUsed(top.dec())
	sp.markFree(top)
	if !sp.isUsed(top.dec()) || sp.isUsed(top) {
		t.Error("top of the space is mis-tracked")
	}
}
