package ipam

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The brute-force model of the property test (property_test.go). It calls
// none of ipam's code: it parses the pool entries, skips buggy addresses,
// orders pools and applies the sharing rules itself, from the rules in
// doc.go, and only shares the plain data types.

// pinnedPools are the pools whose (imagined) serviceAllocation matches every
// service in the test.
var pinnedPools = map[string]bool{"alpha": true, "gamma": true}

// mPool is the model's pool: its allocatable addresses, enumerated.
type mPool struct {
	slotPool
	addrs [2][]netip.Addr // by family, ascending
}

func modelFamily(ad netip.Addr) Family {
	if ad.Is4() {
		return IPv4
	}
	return IPv6
}

func otherFamily(f Family) Family {
	if f == IPv4 {
		return IPv6
	}
	return IPv4
}

// entryAddrs enumerates a pool entry, a CIDR (host bits masked) or an
// inclusive range "a-b".
func entryAddrs(t testing.TB, e string) []netip.Addr {
	var first, last netip.Addr
	if p, err := netip.ParsePrefix(e); err == nil {
		first = p.Masked().Addr()
		last = first
		for range (1 << (first.BitLen() - p.Bits())) - 1 {
			last = last.Next()
		}
	} else {
		a, b, ok := strings.Cut(e, "-")
		var err1, err2 error
		first, err1 = netip.ParseAddr(a)
		last, err2 = netip.ParseAddr(b)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("model: bad pool entry %q", e)
		}
	}
	var out []netip.Addr
	for ad := first; ad.Compare(last) <= 0; ad = ad.Next() {
		out = append(out, ad)
	}
	return out
}

func newMPool(t testing.TB, sp slotPool) mPool {
	p := mPool{slotPool: sp}
	for _, e := range sp.entries {
		for _, ad := range entryAddrs(t, e) {
			// avoidBuggyIPs skips IPv4 addresses ending in .0 or .255.
			if sp.buggy && ad.Is4() && (ad.As4()[3] == 0 || ad.As4()[3] == 255) {
				continue
			}
			f := modelFamily(ad)
			p.addrs[f] = append(p.addrs[f], ad)
		}
	}
	for f := range p.addrs {
		slices.SortFunc(p.addrs[f], netip.Addr.Compare)
	}
	return p
}

func (p mPool) has(ad netip.Addr) bool {
	return slices.Contains(p.addrs[modelFamily(ad)], ad)
}

// model is the allocator's expected state, kept by the model alone.
type model struct {
	cfg   []mPool
	where map[string]Allocation
	svcs  map[string]Service
}

func newModel(cfg []mPool) *model {
	return &model{cfg: cfg, where: map[string]Allocation{}, svcs: map[string]Service{}}
}

func (m *model) clone() *model {
	c := newModel(m.cfg)
	for k, al := range m.where {
		c.where[k] = Allocation{Pool: al.Pool, Addrs: slices.Clone(al.Addrs)}
		c.svcs[k] = m.svcs[k]
	}
	return c
}

func (m *model) set(svc Service, al Allocation) {
	m.where[svc.Key], m.svcs[svc.Key] = al, svc
}

func (m *model) drop(key string) {
	delete(m.where, key)
	delete(m.svcs, key)
}

// holders lists the services on ad, by key.
func (m *model) holders(ad netip.Addr) []Service {
	var out []Service
	for k, al := range m.where {
		if slices.Contains(al.Addrs, ad) {
			out = append(out, m.svcs[k])
		}
	}
	slices.SortFunc(out, func(a, b Service) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

func (m *model) pool(name string) (mPool, bool) {
	for _, p := range m.cfg {
		if p.name == name {
			return p, true
		}
	}
	return mPool{}, false
}

// homeOf finds the single pool from which all addrs are allocatable, or the
// reason there is none.
func (m *model) homeOf(addrs []netip.Addr) (string, Reason) {
	home := ""
	for _, ad := range addrs {
		found := ""
		for _, p := range m.cfg {
			if p.has(ad) {
				found = p.name
			}
		}
		switch {
		case found == "":
			return "", ReasonNotInAnyPool
		case home != "" && found != home:
			return "", ReasonPoolMismatch
		}
		home = found
	}
	return home, ""
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

// shareReason is why svc may not join ad, "" if it may; wasOn says svc held
// ad before this request (a key change in place).
func (m *model) shareReason(ad netip.Addr, svc Service, wasOn bool) Reason {
	hs := m.holders(ad)
	if len(hs) == 0 {
		return ""
	}
	key := hs[0].SharingKey // every holder has the same one
	switch {
	case svc.SharingKey == "" || svc.SharingKey != key:
		if wasOn {
			return ReasonSharingKeyConflict
		}
		return ReasonAddressInUse
	case hs[0].BackendKey != svc.BackendKey:
		return ReasonBackendConflict
	}
	for _, h := range hs {
		if !portsDisjoint(h.Ports, svc.Ports) {
			return ReasonPortConflict
		}
	}
	return ""
}

// pick is the documented per-pool rule, by enumeration: a service with a
// sharing key joins the lowest address it may share, else the lowest free
// address wins. m must not hold svc.
func (m *model) pick(p mPool, f Family, svc Service) (netip.Addr, bool) {
	if svc.SharingKey != "" {
		for _, ad := range p.addrs[f] {
			if hs := m.holders(ad); len(hs) > 0 && m.shareReason(ad, svc, false) == "" {
				return ad, true
			}
		}
	}
	for _, ad := range p.addrs[f] {
		if len(m.holders(ad)) == 0 {
			return ad, true
		}
	}
	return netip.Addr{}, false
}

// choose applies the family policy over the ordered pools, skipping
// autoAssign=false ones when auto; without a result it gives the reason.
func (m *model) choose(svc Service, order []mPool, auto bool) (Allocation, Reason) {
	fam := svc.Families
	prim, oth := fam.Primary, otherFamily(fam.Primary)
	type res struct {
		pool mPool
		addr [2]netip.Addr
		ok   [2]bool
	}
	var rs []res
	for _, p := range order {
		if auto && !p.auto {
			continue
		}
		r := res{pool: p}
		for _, f := range []Family{IPv4, IPv6} {
			r.addr[f], r.ok[f] = m.pick(p, f, svc)
		}
		rs = append(rs, r)
	}
	both := func(r res) Allocation {
		return Allocation{r.pool.name, []netip.Addr{r.addr[prim], r.addr[oth]}}
	}
	switch fam.Policy {
	case SingleStack:
		for _, r := range rs {
			if r.ok[prim] {
				return Allocation{r.pool.name, []netip.Addr{r.addr[prim]}}, ""
			}
		}
	case RequireDualStack, PreferDualStack:
		for _, r := range rs {
			if r.ok[prim] && r.ok[oth] {
				return both(r), ""
			}
		}
		if fam.Policy == PreferDualStack {
			for _, f := range []Family{prim, oth} {
				for _, r := range rs {
					if r.ok[f] {
						return Allocation{r.pool.name, []netip.Addr{r.addr[f]}}, ""
					}
				}
			}
		}
	}
	// Exhausted: some pool has addresses of a wanted family, none for svc.
	fams := []Family{prim}
	if fam.Policy != SingleStack {
		fams = append(fams, oth)
	}
	for _, r := range rs {
		for _, f := range fams {
			if !r.ok[f] && len(r.pool.addrs[f]) > 0 {
				return Allocation{}, ReasonPoolExhausted
			}
		}
	}
	if auto {
		return Allocation{}, ReasonNoPoolMatches
	}
	return Allocation{}, ReasonFamilyMismatch
}

// order is the documented candidate order of the offered pools: pinned
// ones by priority (set, ascending, then unset) and name, then unpinned
// ones by name. Unknown names are dropped.
func (m *model) order(cands []Candidate) []mPool {
	pinned := map[string]bool{}
	var known []mPool
	for _, c := range cands {
		p, ok := m.pool(c.Pool)
		if !ok {
			continue
		}
		if _, seen := pinned[p.name]; !seen {
			known = append(known, p)
		}
		pinned[p.name] = pinned[p.name] || c.Pinned
	}
	slices.SortFunc(known, func(a, b mPool) int {
		pa, pb := pinned[a.name], pinned[b.name]
		switch {
		case pa != pb:
			if pa {
				return -1
			}
			return 1
		case pa && (a.prio != 0) != (b.prio != 0):
			if a.prio != 0 {
				return -1
			}
			return 1
		case pa && a.prio != b.prio:
			return cmp.Compare(a.prio, b.prio)
		}
		return cmp.Compare(a.name, b.name)
	})
	return known
}

// keep is what a re-allocation keeps of prev, completed from prev's pool,
// or false when prev does not suit svc any more. m must not hold svc.
func (m *model) keep(svc Service, prev Allocation) (Allocation, bool) {
	fam := svc.Families
	var keep []netip.Addr
	for _, ad := range prev.Addrs {
		if fam.Policy != SingleStack || modelFamily(ad) == fam.Primary {
			keep = append(keep, ad)
		}
	}
	if len(keep) == 0 {
		return Allocation{}, false
	}
	for _, ad := range keep {
		if m.shareReason(ad, svc, true) != "" {
			return Allocation{}, false
		}
	}
	if len(keep) == 1 && fam.Policy != SingleStack {
		p, _ := m.pool(prev.Pool)
		if ad, ok := m.pick(p, otherFamily(modelFamily(keep[0])), svc); ok {
			keep = append(keep, ad)
		} else if fam.Policy == RequireDualStack {
			return Allocation{}, false
		}
	}
	if len(keep) == 2 && modelFamily(keep[0]) != fam.Primary {
		keep[0], keep[1] = keep[1], keep[0]
	}
	return Allocation{prev.Pool, keep}, true
}

// allocate predicts Allocate (order: the candidates; auto) or
// AllocateFromPool (order: that pool; !auto), and applies it.
func (m *model) allocate(svc Service, order []mPool, auto bool) (Allocation, Reason) {
	prev, had := m.where[svc.Key]
	prevSvc := m.svcs[svc.Key]
	m.drop(svc.Key)
	if had && slices.ContainsFunc(order, func(p mPool) bool { return p.name == prev.Pool }) {
		if al, ok := m.keep(svc, prev); ok {
			m.set(svc, al)
			return al, ""
		}
	}
	al, why := m.choose(svc, order, auto)
	switch {
	case why == "":
		m.set(svc, al)
	case had: // a failed call changes nothing
		m.set(prevSvc, prev)
	}
	return al, why
}

// assign predicts Assign and applies it.
func (m *model) assign(svc Service, addrs []netip.Addr) (Allocation, Reason) {
	fam := svc.Families
	switch {
	case len(addrs) == 0:
		return Allocation{}, ReasonInvalidRequest
	case len(addrs) > 2:
		return Allocation{}, ReasonTooManyAddresses
	case len(addrs) == 2 && addrs[0].Is4() == addrs[1].Is4(),
		fam.Policy == SingleStack && (len(addrs) != 1 || modelFamily(addrs[0]) != fam.Primary),
		fam.Policy == RequireDualStack && len(addrs) != 2:
		return Allocation{}, ReasonFamilyMismatch
	}
	home, why := m.homeOf(addrs)
	if why != "" {
		return Allocation{}, why
	}
	prev, had := m.where[svc.Key]
	others := m.clone()
	others.drop(svc.Key)
	for _, ad := range addrs {
		if why := others.shareReason(ad, svc, had && slices.Contains(prev.Addrs, ad)); why != "" {
			return Allocation{}, why
		}
	}
	got := slices.Clone(addrs)
	if len(got) == 2 && modelFamily(got[0]) != fam.Primary {
		got[0], got[1] = got[1], got[0]
	}
	al := Allocation{home, got}
	m.drop(svc.Key)
	m.set(svc, al)
	return al, ""
}

// setPools predicts SetPools: every service whose addresses are still
// allocatable from one pool stays, re-homed; the others are displaced.
func (m *model) setPools(cfg []mPool) map[string]Reason {
	m.cfg = cfg
	displaced := map[string]Reason{}
	for k, al := range m.where {
		home, why := m.homeOf(al.Addrs)
		if why != "" {
			displaced[k] = why
			continue
		}
		al.Pool = home
		m.where[k] = al
	}
	for k := range displaced {
		m.drop(k)
	}
	return displaced
}

// check compares the allocator's whole state with the model's.
func (m *model) check(t *testing.T, a *Allocator, step int) {
	t.Helper()
	got := map[string]string{}
	for _, as := range a.Assignments() {
		got[as.Service.Key] = fmt.Sprint(as.Allocation)
	}
	want := map[string]string{}
	for k, al := range m.where {
		want[k] = fmt.Sprint(al)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("step %d: allocator holds %v, model %v", step, got, want)
	}
	for _, p := range m.cfg {
		for f := range p.addrs {
			for _, ad := range p.addrs[f] {
				var keys []string
				for _, h := range m.holders(ad) {
					keys = append(keys, h.Key)
				}
				if got := a.Holders(ad); !slices.Equal(got, keys) {
					t.Fatalf("step %d: Holders(%s) = %v, want %v", step, ad, got, keys)
				}
			}
		}
	}
	if len(a.AllStats()) != len(m.cfg) {
		t.Fatalf("step %d: %d pools counted, %d configured", step, len(a.AllStats()), len(m.cfg))
	}
	for _, p := range m.cfg {
		s, ok := a.Stats(p.name)
		if !ok {
			t.Fatalf("step %d: no stats for %s", step, p.name)
		}
		holding := 0
		for _, al := range m.where {
			if al.Pool == p.name {
				holding++
			}
		}
		if s.Services != holding {
			t.Fatalf("step %d: pool %s: %d services counted, brute force %d", step, p.name, s.Services, holding)
		}
		for _, f := range []Family{IPv4, IPv6} {
			used := 0
			for _, ad := range p.addrs[f] {
				if len(m.holders(ad)) > 0 {
					used++
				}
			}
			c := s.IPv4
			if f == IPv6 {
				c = s.IPv6
			}
			if c.InUse != int64(used) || c.Capacity.Int64() != int64(len(p.addrs[f])) {
				t.Fatalf("step %d: pool %s %s: counted %d of %s, brute force %d of %d", step, p.name, f, c.InUse, c.Capacity, used, len(p.addrs[f]))
			}
		}
	}
}
