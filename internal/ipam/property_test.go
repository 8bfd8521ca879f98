package ipam

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// The property test drives the allocator with a seeded random sequence of
// operations and predicts every result with a brute-force model that keeps
// its own state and enumerates the (deliberately small) pools address by
// address (property_model_test.go).

// slotPool is one pool definition, given to the allocator through
// ParseRanges and to the model through its own parser.
type slotPool struct {
	name    string
	auto    bool
	buggy   bool
	prio    int
	entries []string
}

// poolSlot is one pool that the configuration switches between variants of.
// Slots use disjoint address blocks, so no mix of variants overlaps.
type poolSlot []*slotPool // nil = the pool is absent

func propertySlots() []poolSlot {
	mk := func(name string, auto, buggy bool, prio int, entries ...string) *slotPool {
		return &slotPool{name, auto, buggy, prio, entries}
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

func TestAllocatorProperties(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { runProperties(t, seed, 2500) })
	}
}

func runProperties(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0x4845524c))
	slots := propertySlots()
	choice := make([]int, len(slots))
	// config is the chosen variants, for the allocator and for the model.
	config := func() ([]Pool, []mPool) {
		var pools []Pool
		var mpools []mPool
		for i, s := range slots {
			if sp := s[choice[i]]; sp != nil {
				p := mkPool(t, sp.name, sp.auto, sp.entries...)
				p.AvoidBuggyIPs, p.Priority = sp.buggy, sp.prio
				pools = append(pools, p)
				mpools = append(mpools, newMPool(t, *sp))
			}
		}
		return pools, mpools
	}
	pools, mpools := config()
	a := newAllocator(t, pools...)
	m := newModel(mpools)

	var universe []netip.Addr
	for _, s := range slots {
		for _, sp := range s {
			if sp == nil {
				continue
			}
			for _, e := range sp.entries {
				for _, ad := range entryAddrs(t, e) {
					if !slices.Contains(universe, ad) {
						universe = append(universe, ad)
					}
				}
			}
		}
	}
	universe = append(universe, ips("198.18.0.249", "203.0.113.1", "2001:db8:b::10")...)

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
	candidates := func() []Candidate {
		var out []Candidate
		for _, p := range m.cfg {
			out = append(out, Candidate{Pool: p.name, Pinned: pinnedPools[p.name]})
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
		before := fmt.Sprint(a.Assignments())
		key := keys[rng.IntN(len(keys))]
		prev, hadPrev := m.where[key]
		// expect compares a call's outcome with the model's prediction; a
		// failed call must leave the allocator as it was.
		expect := func(name, op string, got Allocation, err error, want Allocation, why Reason) {
			t.Helper()
			if ReasonOf(err) != why || (err != nil && why == "") {
				t.Fatalf("step %d: %s: error %v (%q), model says %q", step, op, err, ReasonOf(err), why)
			}
			if why == "" && fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("step %d: %s = %v, model says %v", step, op, got, want)
			}
			if why != "" && fmt.Sprint(a.Assignments()) != before {
				t.Fatalf("step %d: %s failed (%v) but changed the state", step, op, err)
			}
			tally[name+" "+cmp.Or(string(why), "ok")]++
		}

		switch op := rng.IntN(100); {
		case op < 35: // automatic allocation with new parameters
			svc := randomService(key)
			cands := candidates()
			got, err := a.Allocate(svc, cands)
			want, why := m.allocate(svc, m.order(cands), true)
			expect("allocate", fmt.Sprintf("Allocate(%+v) held %v", svc, prev), got, err, want, why)
		case op < 45: // the same parameters again: nothing moves (a
			// dual-stack service holding one family may gain the other)
			if !hadPrev {
				continue
			}
			svc := m.svcs[key]
			cands := candidates()
			got, err := a.Allocate(svc, cands)
			if err != nil || got.Pool != prev.Pool || !slices.Equal(got.Addrs[:len(prev.Addrs)], prev.Addrs) && !slices.Equal(got.Addrs[len(got.Addrs)-len(prev.Addrs):], prev.Addrs) {
				t.Fatalf("step %d: re-allocating %s moved it from %v to %v (%v)", step, key, prev, got, err)
			}
			want, why := m.allocate(svc, m.order(cands), true)
			expect("again", fmt.Sprintf("Allocate(%+v) again, held %v", svc, prev), got, err, want, why)
		case op < 50: // a sharing-key change only
			if !hadPrev {
				continue
			}
			svc := m.svcs[key]
			svc.SharingKey = []string{"", "k1", "k2", "k3"}[rng.IntN(4)]
			cands := candidates()
			got, err := a.Allocate(svc, cands)
			want, why := m.allocate(svc, m.order(cands), true)
			expect("key-change", fmt.Sprintf("key change Allocate(%+v) held %v", svc, prev), got, err, want, why)
		case op < 58: // from a named pool, sometimes one that does not exist
			name := "ghost"
			if len(m.cfg) > 0 && rng.IntN(10) != 0 {
				name = m.cfg[rng.IntN(len(m.cfg))].name
			}
			svc := randomService(key)
			got, err := a.AllocateFromPool(svc, name)
			var want Allocation
			why := ReasonUnknownPool
			if p, ok := m.pool(name); ok {
				want, why = m.allocate(svc, []mPool{p}, false)
			}
			expect("from-pool", fmt.Sprintf("AllocateFromPool(%+v, %s) held %v", svc, name, prev), got, err, want, why)
		case op < 78: // explicit addresses
			svc := randomService(key)
			n := 1 + rng.IntN(2)
			if rng.IntN(20) == 0 {
				n = 3 + rng.IntN(2)
			}
			if rng.IntN(40) == 0 {
				n = 0
			}
			var req []netip.Addr
			for range n {
				req = append(req, universe[rng.IntN(len(universe))])
			}
			if n > 0 && n < 3 && rng.IntN(4) != 0 { // mostly well-formed requests, often for held addresses
				fams := []Family{svc.Families.Primary}
				if svc.Families.Policy == RequireDualStack || (svc.Families.Policy == PreferDualStack && rng.IntN(2) == 0) {
					fams = append(fams, otherFamily(svc.Families.Primary))
				}
				req = req[:0]
				for _, f := range fams {
					var pickFrom []netip.Addr
					for _, ad := range universe {
						if modelFamily(ad) == f && (len(m.holders(ad)) > 0 || rng.IntN(3) == 0) {
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
			want, why := m.assign(svc, req)
			expect("assign", fmt.Sprintf("Assign(%+v, %v) held %v", svc, req, prev), got, err, want, why)
		case op < 88: // release
			got, ok := a.Release(key)
			if ok != hadPrev || (ok && fmt.Sprint(got) != fmt.Sprint(prev)) {
				t.Fatalf("step %d: Release(%s) = %v %v, held %v", step, key, got, ok, prev)
			}
			if _, still := a.Get(key); still {
				t.Fatalf("step %d: %s still allocated after Release", step, key)
			}
			m.drop(key)
		case op < 95: // pool change
			i := rng.IntN(len(slots))
			choice[i] = rng.IntN(len(slots[i]))
			pools, mpools := config()
			displaced, err := a.SetPools(pools)
			if err != nil {
				t.Fatalf("step %d: SetPools: %v", step, err)
			}
			old := m.clone()
			want := m.setPools(mpools)
			got := map[string]Reason{}
			for _, d := range displaced {
				got[d.Key] = ReasonOf(d.Err)
				if fmt.Sprint(d.Previous) != fmt.Sprint(old.where[d.Key]) {
					t.Fatalf("step %d: displaced %s with previous %v, held %v", step, d.Key, d.Previous, old.where[d.Key])
				}
			}
			if !maps.Equal(got, want) {
				t.Fatalf("step %d: SetPools displaced %v, model says %v", step, got, want)
			}
			tally["setpools"]++
			tally["displaced"] += len(displaced)
		default: // restart: rebuild from the recorded assignments
			fresh := New()
			pools, _ := config()
			if _, err := fresh.SetPools(pools); err != nil {
				t.Fatal(err)
			}
			for _, as := range a.Assignments() {
				got, err := fresh.Assign(as.Service, as.Allocation.Addrs, nil)
				if err != nil || fmt.Sprint(got) != fmt.Sprint(as.Allocation) {
					t.Fatalf("step %d: restoring %v: %v %v", step, as, got, err)
				}
			}
			if fmt.Sprint(fresh.Assignments()) != before || fmt.Sprint(fresh.AllStats()) != fmt.Sprint(a.AllStats()) {
				t.Fatalf("step %d: restart changed the state", step)
			}
			a = fresh
		}
		m.check(t, a, step)
		for ad := range allAddrs(m) {
			if len(m.holders(ad)) > 1 {
				tally["shared-address-steps"]++
				break
			}
		}
	}
}

// allAddrs is the set of addresses the model's services hold.
func allAddrs(m *model) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, al := range m.where {
		for _, ad := range al.Addrs {
			out[ad] = true
		}
	}
	return out
}
