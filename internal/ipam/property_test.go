package ipam

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// The property test drives the allocator with a seeded random sequence of
// operations and checks every result against a brute-force model that
// enumerates the (deliberately small) pools address by address.

// poolSlot is one pool that the configuration switches between variants of.
// Slots use disjoint address blocks, so no mix of variants overlaps.
type poolSlot []*Pool // nil = the pool is absent

func propertySlots(t testing.TB) []poolSlot {
	mk := func(name string, auto, buggy bool, prio int, entries ...string) *Pool {
		p := mkPool(t, name, auto, entries...)
		p.AvoidBuggyIPs, p.Priority = buggy, prio
		return &p
	}
	return []poolSlot{
		{
			mk("alpha", true, true, 1, "198.18.0.250-198.18.1.5"),
			mk("alpha", true, false, 3, "198.18.0.252-198.18.1.2"),
			mk("alpha", true, true, 1, "198.18.0.250-198.18.1.5", "2001:db8:a::/126"),
			nil,
		},
		{
			mk("beta", true, false, 0, "198.18.4.0/29", "2001:db8:b::/126"),
			mk("beta", true, false, 0, "198.18.4.0/30", "2001:db8:b::/127"),
			mk("beta2", true, false, 0, "198.18.4.0/29", "2001:db8:b::/126"),
			mk("beta", true, false, 0, "198.18.4.0/29"),
		},
		{
			mk("gamma", false, false, 0, "198.18.8.0/30"),
			mk("gamma", true, false, 2, "198.18.8.0/30"),
			mk("gamma", true, false, 0, "198.18.8.0/30"),
			nil,
		},
		{
			mk("delta", true, false, 0, "2001:db8:d::ffff:ffff:ffff:fffe-2001:db8:d:1::1"),
			mk("delta", true, false, 0, "2001:db8:d::ffff:ffff:ffff:ffff-2001:db8:d:1::2"),
			nil,
		},
	}
}

// pinnedPools are the pools whose (imagined) serviceAllocation matches every
// service in the test.
var pinnedPools = map[string]bool{"alpha": true, "gamma": true}

type model struct {
	cfg     []Pool
	holders map[netip.Addr][]Service
	where   map[string]Allocation
	svcs    map[string]Service
}

func newModel(cfg []Pool, asg []Assignment) *model {
	m := &model{cfg: cfg, holders: map[netip.Addr][]Service{}, where: map[string]Allocation{}, svcs: map[string]Service{}}
	for _, a := range asg {
		m.where[a.Service.Key] = a.Allocation
		m.svcs[a.Service.Key] = a.Service
		for _, ad := range a.Allocation.Addrs {
			m.holders[ad] = append(m.holders[ad], a.Service)
		}
	}
	return m
}

func allocatable(p Pool, ad netip.Addr) bool {
	if p.AvoidBuggyIPs && isBuggy(ad) {
		return false
	}
	for _, r := range p.Ranges {
		if r.Contains(ad) {
			return true
		}
	}
	return false
}

// addresses enumerates a pool's allocatable addresses of one family, lowest
// first.
func addresses(p Pool, f Family) []netip.Addr {
	var out []netip.Addr
	for _, r := range p.Ranges {
		if r.Family() != f {
			continue
		}
		for ad := r.First; ; ad = ad.Next() {
			if allocatable(p, ad) {
				out = append(out, ad)
			}
			if ad == r.Last {
				break
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func (m *model) pool(name string) (Pool, bool) {
	for _, p := range m.cfg {
		if p.Name == name {
			return p, true
		}
	}
	return Pool{}, false
}

// homeOf finds the single pool from which all addrs are allocatable.
func (m *model) homeOf(addrs []netip.Addr) (string, bool) {
	home := ""
	for _, ad := range addrs {
		found := ""
		for _, p := range m.cfg {
			if allocatable(p, ad) {
				found = p.Name
			}
		}
		if found == "" || (home != "" && found != home) {
			return "", false
		}
		home = found
	}
	return home, home != ""
}

func portsDisjoint(a, b []Port) bool {
	for _, p := range a {
		if slices.Contains(b, p) {
			return false
		}
	}
	return true
}

func mayShare(a, b Service) bool {
	return a.SharingKey != "" && a.SharingKey == b.SharingKey && a.BackendKey == b.BackendKey && portsDisjoint(a.Ports, b.Ports)
}

// canJoin reports whether svc may be put on ad, ignoring svc's own holding.
func (m *model) canJoin(ad netip.Addr, svc Service) bool {
	for _, h := range m.holders[ad] {
		if h.Key != svc.Key && !mayShare(h, svc) {
			return false
		}
	}
	return true
}

func (m *model) othersOn(ad netip.Addr, key string) int {
	n := 0
	for _, h := range m.holders[ad] {
		if h.Key != key {
			n++
		}
	}
	return n
}

// pick is the documented per-pool rule, by enumeration.
func (m *model) pick(p Pool, f Family, svc Service) (netip.Addr, bool) {
	addrs := addresses(p, f)
	if svc.SharingKey != "" {
		for _, ad := range addrs {
			if m.othersOn(ad, svc.Key) > 0 && m.canJoin(ad, svc) {
				return ad, true
			}
		}
	}
	for _, ad := range addrs {
		if m.othersOn(ad, svc.Key) == 0 {
			return ad, true
		}
	}
	return netip.Addr{}, false
}

// choose applies the family policy over the ordered pools.
func (m *model) choose(svc Service, order []Pool) (Allocation, bool) {
	fam := svc.Families
	type res struct {
		addr [2]netip.Addr
		ok   [2]bool
	}
	var rs []res
	for _, p := range order {
		var r res
		for _, f := range []Family{IPv4, IPv6} {
			r.addr[f], r.ok[f] = m.pick(p, f, svc)
		}
		rs = append(rs, r)
	}
	prim, oth := fam.Primary, fam.Primary.other()
	switch fam.Policy {
	case SingleStack:
		for i, r := range rs {
			if r.ok[prim] {
				return Allocation{order[i].Name, []netip.Addr{r.addr[prim]}}, true
			}
		}
	case RequireDualStack:
		for i, r := range rs {
			if r.ok[prim] && r.ok[oth] {
				return Allocation{order[i].Name, []netip.Addr{r.addr[prim], r.addr[oth]}}, true
			}
		}
	case PreferDualStack:
		for i, r := range rs {
			if r.ok[prim] && r.ok[oth] {
				return Allocation{order[i].Name, []netip.Addr{r.addr[prim], r.addr[oth]}}, true
			}
		}
		for _, f := range []Family{prim, oth} {
			for i, r := range rs {
				if r.ok[f] {
					return Allocation{order[i].Name, []netip.Addr{r.addr[f]}}, true
				}
			}
		}
	}
	return Allocation{}, false
}

// autoOrder is the documented candidate order, restricted to autoAssign.
func (m *model) autoOrder() []Pool {
	var pinned, rest []Pool
	for _, p := range m.cfg {
		switch {
		case !p.AutoAssign:
		case pinnedPools[p.Name]:
			pinned = append(pinned, p)
		default:
			rest = append(rest, p)
		}
	}
	slices.SortFunc(pinned, func(a, b Pool) int {
		if (a.Priority != 0) != (b.Priority != 0) {
			if a.Priority != 0 {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(rest, func(a, b Pool) int { return cmp.Compare(a.Name, b.Name) })
	return append(pinned, rest...)
}

// keepable returns the addresses a re-allocation must keep, if any.
func (m *model) keepable(svc Service, prev Allocation) []netip.Addr {
	var keep []netip.Addr
	for _, ad := range prev.Addrs {
		if svc.Families.Policy != SingleStack || familyOf(ad) == svc.Families.Primary {
			keep = append(keep, ad)
		}
	}
	for _, ad := range keep {
		if !m.canJoin(ad, svc) {
			return nil
		}
	}
	if svc.Families.Policy == RequireDualStack && len(keep) == 1 {
		return nil // may move if the other family is not free in the pool
	}
	return keep
}

// assignOK says whether an explicit request must succeed.
func (m *model) assignOK(svc Service, addrs []netip.Addr) bool {
	if len(addrs) == 0 || len(addrs) > 2 || (len(addrs) == 2 && addrs[0].Is4() == addrs[1].Is4()) {
		return false
	}
	switch svc.Families.Policy {
	case SingleStack:
		if len(addrs) != 1 || familyOf(addrs[0]) != svc.Families.Primary {
			return false
		}
	case RequireDualStack:
		if len(addrs) != 2 {
			return false
		}
	}
	if _, ok := m.homeOf(addrs); !ok {
		return false
	}
	for _, ad := range addrs {
		if !m.canJoin(ad, svc) {
			return false
		}
	}
	return true
}

// check verifies the allocator's whole state against the rules.
func (m *model) check(t *testing.T, a *Allocator, step int) {
	t.Helper()
	for key, al := range m.where {
		svc := m.svcs[key]
		home, ok := m.homeOf(al.Addrs)
		if !ok || home != al.Pool {
			t.Fatalf("step %d: %s holds %v from %q, allocatable from %q", step, key, al.Addrs, al.Pool, home)
		}
		fam := svc.Families
		switch {
		case fam.Policy == SingleStack && (len(al.Addrs) != 1 || familyOf(al.Addrs[0]) != fam.Primary),
			fam.Policy == RequireDualStack && len(al.Addrs) != 2,
			len(al.Addrs) == 2 && (al.Addrs[0].Is4() == al.Addrs[1].Is4() || familyOf(al.Addrs[0]) != fam.Primary):
			t.Fatalf("step %d: %s (%v) holds %v", step, key, fam, al.Addrs)
		}
	}
	for ad, hs := range m.holders {
		for i := range hs {
			for j := i + 1; j < len(hs); j++ {
				if !mayShare(hs[i], hs[j]) {
					t.Fatalf("step %d: %s shared by %+v and %+v", step, ad, hs[i], hs[j])
				}
			}
		}
		var keys []string
		for _, h := range hs {
			keys = append(keys, h.Key)
		}
		slices.Sort(keys)
		if got := a.Holders(ad); !slices.Equal(got, keys) {
			t.Fatalf("step %d: Holders(%s) = %v, want %v", step, ad, got, keys)
		}
	}
	if len(a.AllStats()) != len(m.cfg) {
		t.Fatalf("step %d: %d pools counted, %d configured", step, len(a.AllStats()), len(m.cfg))
	}
	for _, p := range m.cfg {
		s, ok := a.Stats(p.Name)
		if !ok {
			t.Fatalf("step %d: no stats for %s", step, p.Name)
		}
		holding := 0
		for _, al := range m.where {
			if al.Pool == p.Name {
				holding++
			}
		}
		if s.Services != holding {
			t.Fatalf("step %d: pool %s: %d services counted, brute force %d", step, p.Name, s.Services, holding)
		}
		for _, f := range []Family{IPv4, IPv6} {
			all := addresses(p, f)
			used := 0
			for _, ad := range all {
				if len(m.holders[ad]) > 0 {
					used++
				}
			}
			c := s.IPv4
			if f == IPv6 {
				c = s.IPv6
			}
			if c.InUse != int64(used) || c.Capacity.Int64() != int64(len(all)) {
				t.Fatalf("step %d: pool %s %s: counted %d of %s, brute force %d of %d", step, p.Name, f, c.InUse, c.Capacity, used, len(all))
			}
		}
	}
}

func TestAllocatorProperties(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { runProperties(t, seed, 2500) })
	}
}

func runProperties(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0x4845524c))
	slots := propertySlots(t)
	choice := make([]int, len(slots))
	config := func() []Pool {
		var out []Pool
		for i, s := range slots {
			if p := s[choice[i]]; p != nil {
				out = append(out, *p)
			}
		}
		return out
	}
	a := newAllocator(t, config()...)

	var universe []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range slots {
		for _, p := range s {
			if p == nil {
				continue
			}
			for _, f := range []Family{IPv4, IPv6} {
				for _, ad := range addresses(Pool{Ranges: p.Ranges}, f) {
					if !seen[ad] {
						seen[ad] = true
						universe = append(universe, ad)
					}
				}
			}
		}
	}
	universe = append(universe, ips("198.18.0.249", "198.18.1.0", "203.0.113.1", "2001:db8:b::10")...)

	keys := make([]string, 24)
	for i := range keys {
		keys[i] = fmt.Sprintf("ns%d/svc%d", i%3, i)
	}
	portChoices := []Port{{"TCP", 80}, {"TCP", 443}, {"UDP", 53}, {"TCP", 22}}
	randomService := func(key string) Service {
		svc := Service{Key: key}
		switch rng.IntN(10) {
		case 0, 1, 2, 3:
		case 4:
			svc.Families = Families{SingleStack, IPv6}
		case 5, 6:
			svc.Families = Families{PreferDualStack, Family(rng.IntN(2))}
		default:
			svc.Families = Families{RequireDualStack, Family(rng.IntN(2))}
		}
		svc.SharingKey = []string{"", "", "k1", "k2"}[rng.IntN(4)]
		svc.BackendKey = []string{"", "", "sel-a", "sel-b"}[rng.IntN(4)]
		for _, p := range portChoices {
			if rng.IntN(3) == 0 {
				svc.Ports = append(svc.Ports, p)
			}
		}
		return svc
	}
	candidates := func(m *model) []Candidate {
		var out []Candidate
		for _, p := range m.cfg {
			out = append(out, Candidate{Pool: p.Name, Pinned: pinnedPools[p.Name]})
		}
		if rng.IntN(10) == 0 {
			out = append(out, Candidate{Pool: "ghost"})
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}

	// tally counts outcomes, logged with -v, to show what the run exercised.
	tally := map[string]int{}
	defer func() { t.Logf("outcomes: %v", tally) }()
	for step := 0; step < steps; step++ {
		m := newModel(config(), a.Assignments())
		before := fmt.Sprint(a.Assignments())
		key := keys[rng.IntN(len(keys))]
		prev, hadPrev := m.where[key]
		// unchangedExcept checks that no other service moved.
		unchangedExcept := func(key string) {
			after := newModel(m.cfg, a.Assignments())
			for k, al := range m.where {
				if k == key {
					continue
				}
				if got := after.where[k]; fmt.Sprint(got) != fmt.Sprint(al) {
					t.Fatalf("step %d: %s moved from %v to %v during an operation on %s", step, k, al, got, key)
				}
			}
		}
		failedCleanly := func(err error) {
			if ReasonOf(err) == "" {
				t.Fatalf("step %d: untyped error %v", step, err)
			}
			if fmt.Sprint(a.Assignments()) != before {
				t.Fatalf("step %d: failed operation changed the state: %v", step, err)
			}
		}

		switch op := rng.IntN(100); {
		case op < 35: // automatic allocation with new parameters
			svc := randomService(key)
			got, err := a.Allocate(svc, candidates(m))
			var keep []netip.Addr
			if hadPrev {
				keep = m.keepable(svc, prev)
			}
			switch {
			case len(keep) > 0:
				if err != nil || got.Pool != prev.Pool || !containsAll(got.Addrs, keep) {
					t.Fatalf("step %d: %s held %v, may keep %v, got %v %v", step, key, prev, keep, got, err)
				}
			case !hadPrev:
				want, ok := m.choose(svc, m.autoOrder())
				if ok != (err == nil) || (ok && fmt.Sprint(want) != fmt.Sprint(got)) {
					t.Fatalf("step %d: Allocate(%+v) = %v %v, model says %v %v", step, svc, got, err, want, ok)
				}
			}
			if err != nil {
				failedCleanly(err)
			}
			tally[fmt.Sprintf("allocate ok=%v kept=%v", err == nil, len(keep) > 0)]++
			unchangedExcept(key)
		case op < 45: // the same parameters again: nothing moves
			if !hadPrev {
				continue
			}
			svc := m.svcs[key]
			got, err := a.Allocate(svc, candidates(m))
			if err != nil || got.Pool != prev.Pool || !containsAll(got.Addrs, prev.Addrs) {
				t.Fatalf("step %d: re-allocating %s moved it from %v to %v (%v)", step, key, prev, got, err)
			}
			unchangedExcept(key)
		case op < 50: // a sharing-key change only
			if !hadPrev {
				continue
			}
			svc := m.svcs[key]
			svc.SharingKey = []string{"", "k1", "k2", "k3"}[rng.IntN(4)]
			got, err := a.Allocate(svc, candidates(m))
			if keep := m.keepable(svc, prev); len(keep) > 0 && (err != nil || !containsAll(got.Addrs, keep)) {
				t.Fatalf("step %d: key change on %s: held %v, may keep %v, got %v %v", step, key, prev, keep, got, err)
			}
			if err != nil {
				failedCleanly(err)
			}
			unchangedExcept(key)
		case op < 58: // from a named pool
			if len(m.cfg) == 0 {
				continue
			}
			p := m.cfg[rng.IntN(len(m.cfg))]
			svc := randomService(key)
			got, err := a.AllocateFromPool(svc, p.Name)
			if !hadPrev {
				want, ok := m.choose(svc, []Pool{p})
				if ok != (err == nil) || (ok && fmt.Sprint(want) != fmt.Sprint(got)) {
					t.Fatalf("step %d: AllocateFromPool(%+v, %s) = %v %v, model says %v %v", step, svc, p.Name, got, err, want, ok)
				}
			} else if keep := m.keepable(svc, prev); prev.Pool == p.Name && len(keep) > 0 && (err != nil || !containsAll(got.Addrs, keep)) {
				t.Fatalf("step %d: AllocateFromPool moved %s from %v to %v %v", step, key, prev, got, err)
			}
			if err != nil {
				failedCleanly(err)
			}
			unchangedExcept(key)
		case op < 78: // explicit addresses
			svc := randomService(key)
			n := 1 + rng.IntN(2)
			if rng.IntN(20) == 0 {
				n = 3
			}
			var req []netip.Addr
			for range n {
				req = append(req, universe[rng.IntN(len(universe))])
			}
			if rng.IntN(4) != 0 { // mostly well-formed requests, often for held addresses
				fams := []Family{svc.Families.Primary}
				if svc.Families.Policy == RequireDualStack || (svc.Families.Policy == PreferDualStack && rng.IntN(2) == 0) {
					fams = append(fams, svc.Families.Primary.other())
				}
				req = req[:0]
				for _, f := range fams {
					var pickFrom []netip.Addr
					for _, ad := range universe {
						if familyOf(ad) == f && (len(m.holders[ad]) > 0 || rng.IntN(3) == 0) {
							pickFrom = append(pickFrom, ad)
						}
					}
					if len(pickFrom) > 0 {
						req = append(req, pickFrom[rng.IntN(len(pickFrom))])
					}
				}
			}
			if hadPrev && rng.IntN(3) == 0 {
				req = slices.Clone(prev.Addrs) // re-request what it holds, possibly with a new key
			}
			got, err := a.Assign(svc, req, nil)
			want := m.assignOK(svc, req)
			if want != (err == nil) {
				t.Fatalf("step %d: Assign(%+v, %v) = %v %v, model says ok=%v", step, svc, req, got, err, want)
			}
			if err == nil {
				home, _ := m.homeOf(req)
				if got.Pool != home || len(got.Addrs) != len(req) || !containsAll(got.Addrs, req) {
					t.Fatalf("step %d: Assign returned %v for %v", step, got, req)
				}
			} else {
				failedCleanly(err)
			}
			tally["assign "+string(ReasonOf(err))]++
			unchangedExcept(key)
		case op < 88: // release
			got, ok := a.Release(key)
			if ok != hadPrev || (ok && fmt.Sprint(got) != fmt.Sprint(prev)) {
				t.Fatalf("step %d: Release(%s) = %v %v, held %v", step, key, got, ok, prev)
			}
			if _, still := a.Get(key); still {
				t.Fatalf("step %d: %s still allocated after Release", step, key)
			}
			unchangedExcept(key)
		case op < 95: // pool change
			i := rng.IntN(len(slots))
			choice[i] = rng.IntN(len(slots[i]))
			next := newModel(config(), nil)
			displaced, err := a.SetPools(config())
			if err != nil {
				t.Fatalf("step %d: SetPools: %v", step, err)
			}
			gone := map[string]bool{}
			for _, d := range displaced {
				gone[d.Key] = true
				if ReasonOf(d.Err) == "" || fmt.Sprint(d.Previous) != fmt.Sprint(m.where[d.Key]) {
					t.Fatalf("step %d: displaced %+v", step, d)
				}
			}
			tally["setpools"]++
			tally["displaced"] += len(displaced)
			after := newModel(config(), a.Assignments())
			for k, al := range m.where {
				home, ok := next.homeOf(al.Addrs)
				if ok == gone[k] {
					t.Fatalf("step %d: %s at %v: still allocatable=%v (in %q) but displaced=%v", step, k, al.Addrs, ok, home, gone[k])
				}
				if ok && (after.where[k].Pool != home || !slices.Equal(after.where[k].Addrs, al.Addrs)) {
					t.Fatalf("step %d: %s moved from %v to %v on a pool change", step, k, al, after.where[k])
				}
			}
		default: // restart: rebuild from the recorded assignments
			fresh := New()
			if _, err := fresh.SetPools(config()); err != nil {
				t.Fatal(err)
			}
			for _, as := range a.Assignments() {
				got, err := fresh.Assign(as.Service, as.Allocation.Addrs, nil)
				if err != nil || got.Pool != as.Allocation.Pool {
					t.Fatalf("step %d: restoring %v: %v %v", step, as, got, err)
				}
			}
			if fmt.Sprint(fresh.Assignments()) != before || fmt.Sprint(fresh.AllStats()) != fmt.Sprint(a.AllStats()) {
				t.Fatalf("step %d: restart changed the state", step)
			}
			a = fresh
		}
		final := newModel(config(), a.Assignments())
		final.check(t, a, step)
		for _, hs := range final.holders {
			if len(hs) > 1 {
				tally["shared-address-steps"]++
				break
			}
		}
	}
}

func containsAll(have, want []netip.Addr) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
