package ipam

import (
	"cmp"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/btree"
)

// Port is a (protocol, port) pair a service exposes. Two services sharing an
// address may not use the same pair.
type Port struct {
	Protocol string // "TCP", "UDP" or "SCTP"
	Port     int32
}

func (p Port) String() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Port) }

// StackPolicy is the service's IP family policy.
type StackPolicy int

// The zero StackPolicy is SingleStack.
const (
	// SingleStack: one address of the primary family.
	SingleStack StackPolicy = iota
	// PreferDualStack: one address of each family if one pool can give
	// both, else one of the primary family, else one of the other. Callers
	// pass SingleStack for a PreferDualStack service that has only one
	// ClusterIP family.
	PreferDualStack
	// RequireDualStack: one address of each family from the same pool.
	RequireDualStack
)

func (p StackPolicy) String() string {
	switch p {
	case SingleStack:
		return "SingleStack"
	case PreferDualStack:
		return "PreferDualStack"
	case RequireDualStack:
		return "RequireDualStack"
	}
	return fmt.Sprintf("StackPolicy(%d)", int(p))
}

// Families says which address families a service wants.
type Families struct {
	Policy  StackPolicy
	Primary Family // the single family, or the first one for dual-stack
}

// Service is what the allocator needs to know about a service.
type Service struct {
	Key      string // "namespace/name"
	Families Families

	// SharingKey lets services share an address (metallb.io/allow-shared-ip);
	// empty means never share.
	SharingKey string
	// BackendKey is empty for externalTrafficPolicy Cluster and the selector
	// string for Local: only services with equal backend keys share.
	BackendKey string
	Ports      []Port
}

// Candidate is a pool offered for automatic allocation. The caller builds
// the list from the pools whose serviceAllocation matches the service
// (Pinned) and the pools that have no serviceAllocation (not Pinned), and
// should include autoAssign=false pools too so that failure messages can say
// why they were skipped. Pools whose serviceAllocation does not match must not
// be offered.
type Candidate struct {
	Pool   string
	Pinned bool
}

// Allocation is the result of an allocation: the pool and one address, or
// two of different families, the service's primary family first.
type Allocation struct {
	Pool  string
	Addrs []netip.Addr
}

// Assignment pairs a service with its allocation, as listed by Assignments.
type Assignment struct {
	Service    Service
	Allocation Allocation
}

// Displaced is a service that SetPools released because its addresses no
// longer fit the pools. Err says why.
type Displaced struct {
	Key      string
	Previous Allocation
	Err      error
}

// Allocator hands out addresses from pools to services and remembers who
// holds what. It is not safe for concurrent use: the controller serialises
// calls.
//
// Every mutating call is all-or-nothing: when it returns an error, the
// allocator is exactly as it was, including any allocation the service held
// before. The caller decides whether to Release it.
type Allocator struct {
	pools    map[string]*pool
	ranges   []poolRange // every configured range, sorted, for address lookups
	services map[string]*svcState
	addrs    map[netip.Addr]*addrState
	nextSeq  uint64
}

type pool struct {
	cfg    Pool
	v4, v6 *space
	// shared indexes, per sharing key, backend key and family, the addresses
	// whose holders share under that key, so a service with the same key can
	// join them without scanning the pool.
	shared map[shareKey]*btree.BTreeG[netip.Addr]
	// services counts the services holding addresses from the pool.
	services int
}

type shareKey struct {
	sharing, backend string
	family           Family
}

type poolRange struct {
	r    Range
	pool *pool
}

// addrState describes one address in use.
type addrState struct {
	pool       *pool
	idx        u128
	sharingKey string
	backendKey string
	users      []string        // service keys, in arrival order
	ports      map[Port]string // which service uses each pair
}

type svcState struct {
	svc   Service
	pool  *pool
	addrs []netip.Addr
	seq   uint64 // order of first allocation, kept across moves
}

// New returns an allocator with no pools.
func New() *Allocator {
	return &Allocator{
		pools:    map[string]*pool{},
		services: map[string]*svcState{},
		addrs:    map[netip.Addr]*addrState{},
	}
}

func newPool(cfg Pool) *pool {
	cfg.Ranges = slices.Clone(cfg.Ranges)
	return &pool{
		cfg:    cfg,
		v4:     newSpace(cfg.Ranges, true, cfg.AvoidBuggyIPs),
		v6:     newSpace(cfg.Ranges, false, cfg.AvoidBuggyIPs),
		shared: map[shareKey]*btree.BTreeG[netip.Addr]{},
	}
}

func (p *pool) space(f Family) *space {
	if f == IPv6 {
		return p.v6
	}
	return p.v4
}

// sameAddresses reports whether two pool definitions hand out the same
// addresses, so that the existing pool state can be kept.
func sameAddresses(a, b Pool) bool {
	if a.AvoidBuggyIPs != b.AvoidBuggyIPs || len(a.Ranges) != len(b.Ranges) {
		return false
	}
	key := func(r Range) [2]netip.Addr { return [2]netip.Addr{r.First, r.Last} }
	ka, kb := make([][2]netip.Addr, 0, len(a.Ranges)), make([][2]netip.Addr, 0, len(b.Ranges))
	for i := range a.Ranges {
		ka, kb = append(ka, key(a.Ranges[i])), append(kb, key(b.Ranges[i]))
	}
	byStart := func(x, y [2]netip.Addr) int { return x[0].Compare(y[0]) }
	slices.SortFunc(ka, byStart)
	slices.SortFunc(kb, byStart)
	return slices.Equal(ka, kb)
}

// SetPools replaces the pool configuration. The pools are validated first
// (see ValidatePools); if they are invalid nothing changes.
//
// Pools whose addresses and avoidBuggyIPs are unchanged keep their state, so
// a change of autoAssign or priority costs nothing. Services in a pool that
// was removed, renamed or redefined are re-associated with the pool that now
// contains their addresses, keeping those addresses; a service whose
// addresses are no longer all allocatable from one pool is released and
// returned, sorted by key, so the caller can allocate it again. No other
// service is touched.
func (a *Allocator) SetPools(pools []Pool) ([]Displaced, error) {
	if err := ValidatePools(pools); err != nil {
		return nil, fmt.Errorf("invalid pools: %w", err)
	}
	next := make(map[string]*pool, len(pools))
	for _, cfg := range pools {
		if old := a.pools[cfg.Name]; old != nil && sameAddresses(old.cfg, cfg) {
			old.cfg.AutoAssign, old.cfg.Priority = cfg.AutoAssign, cfg.Priority
			next[cfg.Name] = old
			continue
		}
		next[cfg.Name] = newPool(cfg)
	}

	// Lift out the services of pools that are gone or redefined. All holders
	// of an address belong to the same pool, so their address states go
	// with them.
	var homeless []*svcState
	for _, st := range a.services {
		if next[st.pool.cfg.Name] != st.pool {
			homeless = append(homeless, st)
		}
	}
	slices.SortFunc(homeless, func(x, y *svcState) int { return cmp.Compare(x.seq, y.seq) })
	for _, st := range homeless {
		delete(a.services, st.svc.Key)
		for _, ad := range st.addrs {
			delete(a.addrs, ad)
		}
	}

	a.pools = next
	a.ranges = a.ranges[:0]
	for _, p := range next {
		for _, r := range p.cfg.Ranges {
			a.ranges = append(a.ranges, poolRange{r, p})
		}
	}
	slices.SortFunc(a.ranges, func(x, y poolRange) int { return x.r.First.Compare(y.r.First) })

	var displaced []Displaced
	for _, st := range homeless {
		p, err := a.homeOf(st.svc.Key, st.addrs)
		if err != nil {
			displaced = append(displaced, Displaced{Key: st.svc.Key, Previous: st.allocation(), Err: err})
			continue
		}
		st.pool = p
		a.attach(st)
	}
	slices.SortFunc(displaced, func(x, y Displaced) int { return cmp.Compare(x.Key, y.Key) })
	return displaced, nil
}

// homeOf returns the one pool from which all the addresses are allocatable.
func (a *Allocator) homeOf(key string, addrs []netip.Addr) (*pool, *Error) {
	var home *pool
	for _, ad := range addrs {
		p, err := a.poolFor(key, ad)
		if err != nil {
			return nil, err
		}
		if home != nil && home != p {
			return nil, &Error{
				Reason: ReasonPoolMismatch, Service: key, Address: ad,
				Message: fmt.Sprintf("%s is in pool %q but %s is in pool %q; both addresses of a dual-stack service must come from one pool",
					addrs[0], home.cfg.Name, ad, p.cfg.Name),
			}
		}
		home = p
	}
	return home, nil
}

// poolFor returns the pool from which ad can be allocated.
func (a *Allocator) poolFor(key string, ad netip.Addr) (*pool, *Error) {
	i, _ := slices.BinarySearchFunc(a.ranges, ad, func(pr poolRange, ad netip.Addr) int {
		if pr.r.Last.Less(ad) {
			return -1
		}
		return 1
	})
	if i == len(a.ranges) || !a.ranges[i].r.Contains(ad) {
		return nil, &Error{
			Reason: ReasonNotInAnyPool, Service: key, Address: ad,
			Message: fmt.Sprintf("[%q] is not allowed in config: %s is in no address pool", ad, ad),
		}
	}
	p := a.ranges[i].pool
	if _, ok := p.space(familyOf(ad)).indexOf(ad); !ok {
		return nil, &Error{
			Reason: ReasonNotInAnyPool, Service: key, Address: ad,
			Message: fmt.Sprintf("[%q] is not allowed in config: it is in pool %q, whose avoidBuggyIPs excludes addresses ending in .0 or .255",
				ad, p.cfg.Name),
		}
	}
	return p, nil
}

// PoolOf returns the name of the pool from which ad can be allocated, or
// false if it lies in no pool or avoidBuggyIPs excludes it.
func (a *Allocator) PoolOf(ad netip.Addr) (string, bool) {
	p, err := a.poolFor("", ad)
	if err != nil {
		return "", false
	}
	return p.cfg.Name, true
}

// Allocate gives the service addresses from the first candidate pool that
// can serve its family policy, and returns them.
//
// If the service already holds addresses from a candidate pool that still
// suit it (its family policy and the sharing rules with its new sharing key,
// backend key and ports), it keeps them: allocation never moves a service
// without cause. A PreferDualStack or RequireDualStack service holding one
// family gains the other from the same pool when it has one free; a
// SingleStack service holding two keeps the primary one.
//
// Candidates are tried in an order that does not depend on the order given:
// pinned pools first (priority set, lowest first; then priority unset; ties
// by name), then unpinned pools by name. Pools with autoAssign=false are
// never picked. For PreferDualStack the whole list is searched for a pool
// with both families free, then for the primary family, then the other.
// Within a pool, see pick for which address wins.
//
// When nothing fits, the error lists every candidate and why it was skipped.
func (a *Allocator) Allocate(svc Service, candidates []Candidate) (Allocation, error) {
	if err := checkService(svc); err != nil {
		return Allocation{}, err
	}
	order, notes := a.orderCandidates(candidates)
	prev := a.detach(svc.Key)
	if prev != nil && slices.Contains(order, prev.pool) {
		if alloc, ok := a.tryKeep(svc, prev); ok {
			return alloc, nil
		}
	}
	p, addrs, why, exhausted := a.pickFromPools(svc, order, true)
	if p == nil {
		a.restore(prev)
		reason := ReasonNoPoolMatches
		if exhausted {
			reason = ReasonPoolExhausted
		}
		for _, n := range why {
			notes = append(notes, n.String())
		}
		msg := "no available IPs: no address pool is offered to this service (none is configured, or no pool's serviceAllocation matches it)"
		if len(notes) > 0 {
			msg = "no available IPs: " + strings.Join(notes, "; ")
		}
		return Allocation{}, &Error{Reason: reason, Service: svc.Key, Message: msg}
	}
	return a.commit(svc, p, addrs, prev), nil
}

// AllocateFromPool gives the service addresses from the named pool (the
// metallb.io/address-pool annotation), whether or not the pool has
// autoAssign. A service that already holds suitable addresses from that pool
// keeps them, as with Allocate.
func (a *Allocator) AllocateFromPool(svc Service, poolName string) (Allocation, error) {
	if err := checkService(svc); err != nil {
		return Allocation{}, err
	}
	p := a.pools[poolName]
	if p == nil {
		return Allocation{}, &Error{Reason: ReasonUnknownPool, Service: svc.Key,
			Message: fmt.Sprintf("unknown pool %q", poolName)}
	}
	prev := a.detach(svc.Key)
	if prev != nil && prev.pool == p {
		if alloc, ok := a.tryKeep(svc, prev); ok {
			return alloc, nil
		}
	}
	got, addrs, why, exhausted := a.pickFromPools(svc, []*pool{p}, false)
	if got == nil {
		a.restore(prev)
		reason := ReasonFamilyMismatch
		if exhausted {
			reason = ReasonPoolExhausted
		}
		return Allocation{}, &Error{Reason: reason, Service: svc.Key,
			Message: fmt.Sprintf("no available IPs in pool %q: %s", poolName, why[0].why)}
	}
	return a.commit(svc, got, addrs, prev), nil
}

// Assign gives the service exactly the requested addresses
// (spec.loadBalancerIP, the metallb.io/loadBalancerIPs annotation, or the
// addresses found in its status when the controller starts). At most two
// addresses, of different families, fitting the family policy (PreferDualStack
// accepts one or two); all must be allocatable from one pool, whatever its
// autoAssign. accept, if not nil, may refuse that pool (serviceAllocation
// compatibility, or a pool named by annotation): its error is wrapped. The
// sharing rules apply; a service that is the only holder of an address may
// change its own sharing key. As with every allocation, the addresses are
// returned primary family first.
func (a *Allocator) Assign(svc Service, addrs []netip.Addr, accept func(pool string) error) (Allocation, error) {
	if err := checkService(svc); err != nil {
		return Allocation{}, err
	}
	if err := checkRequested(svc, addrs); err != nil {
		return Allocation{}, err
	}
	p, perr := a.homeOf(svc.Key, addrs)
	if perr != nil {
		return Allocation{}, perr
	}
	if accept != nil {
		if err := accept(p.cfg.Name); err != nil {
			return Allocation{}, &Error{Reason: ReasonPoolNotAllowed, Service: svc.Key, Address: addrs[0], Err: err,
				Message: fmt.Sprintf("%s is in pool %q, which this service may not use: %v", joinAddrs(addrs), p.cfg.Name, err)}
		}
	}
	prev := a.detach(svc.Key)
	for _, ad := range addrs {
		if err := a.checkShare(ad, svc, prev); err != nil {
			a.restore(prev)
			return Allocation{}, err
		}
	}
	addrs = slices.Clone(addrs)
	if len(addrs) == 2 && familyOf(addrs[0]) != svc.Families.Primary {
		addrs[0], addrs[1] = addrs[1], addrs[0]
	}
	return a.commit(svc, p, addrs, prev), nil
}

// Release forgets the service's allocation and returns it; false if it had
// none. An address is free again once its last holder is released.
func (a *Allocator) Release(key string) (Allocation, bool) {
	st := a.detach(key)
	if st == nil {
		return Allocation{}, false
	}
	return st.allocation(), true
}

// Get returns the service's current allocation.
func (a *Allocator) Get(key string) (Allocation, bool) {
	st := a.services[key]
	if st == nil {
		return Allocation{}, false
	}
	return st.allocation(), true
}

// Holders returns the keys of the services on the address, sorted.
func (a *Allocator) Holders(ad netip.Addr) []string {
	as := a.addrs[ad]
	if as == nil {
		return nil
	}
	out := slices.Clone(as.users)
	slices.Sort(out)
	return out
}

// Assignments lists every service and its allocation in the order the
// services were first allocated. Replaying it through Assign on a fresh
// allocator with the same pools rebuilds the same state.
func (a *Allocator) Assignments() []Assignment {
	sts := make([]*svcState, 0, len(a.services))
	for _, st := range a.services {
		sts = append(sts, st)
	}
	slices.SortFunc(sts, func(x, y *svcState) int { return cmp.Compare(x.seq, y.seq) })
	out := make([]Assignment, len(sts))
	for i, st := range sts {
		svc := st.svc
		svc.Ports = slices.Clone(svc.Ports)
		out[i] = Assignment{Service: svc, Allocation: st.allocation()}
	}
	return out
}

func (st *svcState) allocation() Allocation {
	return Allocation{Pool: st.pool.cfg.Name, Addrs: slices.Clone(st.addrs)}
}

func checkService(svc Service) *Error {
	switch {
	case svc.Key == "":
		return &Error{Reason: ReasonInvalidRequest, Message: "the service key is empty"}
	case svc.Families.Policy < SingleStack || svc.Families.Policy > RequireDualStack:
		return &Error{Reason: ReasonInvalidRequest, Service: svc.Key,
			Message: fmt.Sprintf("unknown IP family policy %s", svc.Families.Policy)}
	case svc.Families.Primary != IPv4 && svc.Families.Primary != IPv6:
		return &Error{Reason: ReasonInvalidRequest, Service: svc.Key,
			Message: fmt.Sprintf("unknown IP family %d", int(svc.Families.Primary))}
	}
	return nil
}

// checkRequested checks the shape of an explicit request against the
// service's family policy.
func checkRequested(svc Service, addrs []netip.Addr) *Error {
	fail := func(r Reason, format string, args ...any) *Error {
		return &Error{Reason: r, Service: svc.Key, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case len(addrs) == 0:
		return fail(ReasonInvalidRequest, "no address requested")
	case len(addrs) > 2:
		return fail(ReasonTooManyAddresses, "more than two addresses requested (%s): a service can have at most one IPv4 and one IPv6 address", joinAddrs(addrs))
	}
	for _, ad := range addrs {
		if !ad.IsValid() || ad.Zone() != "" {
			return fail(ReasonInvalidRequest, "requested address %q is not a valid IP address", ad.String())
		}
	}
	if len(addrs) == 2 && addrs[0].Is4() == addrs[1].Is4() {
		return fail(ReasonFamilyMismatch, "%s and %s have the same family: a dual-stack service needs one IPv4 and one IPv6 address", addrs[0], addrs[1])
	}
	fam := svc.Families
	switch {
	case fam.Policy == SingleStack && (len(addrs) != 1 || familyOf(addrs[0]) != fam.Primary):
		return fail(ReasonFamilyMismatch, "requested loadBalancer IP(s) %s does not match the ipFamily of the service (single-stack %s)", joinAddrs(addrs), fam.Primary)
	case fam.Policy == RequireDualStack && len(addrs) != 2:
		return fail(ReasonFamilyMismatch, "requested loadBalancer IP(s) %s does not match the ipFamily of the service (RequireDualStack needs one IPv4 and one IPv6 address)", joinAddrs(addrs))
	}
	return nil
}

func joinAddrs(addrs []netip.Addr) string {
	parts := make([]string, len(addrs))
	for i, ad := range addrs {
		parts[i] = ad.String()
	}
	return strings.Join(parts, ", ")
}

func quoteKeys(keys []string) string {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	parts := make([]string, len(sorted))
	for i, k := range sorted {
		parts[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(parts, ", ")
}

func describeBackend(k string) string {
	if k == "" {
		return "externalTrafficPolicy Cluster"
	}
	return fmt.Sprintf("externalTrafficPolicy Local with selector %q", k)
}

// checkShare applies the sharing rules for putting svc on ad. prev is the
// service's previous state (already detached), to tell a key change apart
// from a plain clash.
func (a *Allocator) checkShare(ad netip.Addr, svc Service, prev *svcState) *Error {
	as := a.addrs[ad]
	if as == nil {
		return nil
	}
	holders := quoteKeys(as.users)
	if svc.SharingKey == "" || svc.SharingKey != as.sharingKey {
		if prev != nil && slices.Contains(prev.addrs, ad) {
			return &Error{Reason: ReasonSharingKeyConflict, Service: svc.Key, Address: ad, Holder: as.users[0],
				Message: fmt.Sprintf("can't change sharing key for %q, address %s also in use by %s; only a service alone on its address may change its sharing key",
					svc.Key, ad, holders)}
		}
		var why string
		switch {
		case as.sharingKey == "":
			why = "which does not allow sharing"
		case svc.SharingKey == "":
			why = fmt.Sprintf("under sharing key %q, and this service has no sharing key", as.sharingKey)
		default:
			why = fmt.Sprintf("under sharing key %q, not %q", as.sharingKey, svc.SharingKey)
		}
		return &Error{Reason: ReasonAddressInUse, Service: svc.Key, Address: ad, Holder: as.users[0],
			Message: fmt.Sprintf("address %s is already in use by %s, %s; services share an address only when all set the same sharing key (metallb.io/allow-shared-ip)",
				ad, holders, why)}
	}
	if as.backendKey != svc.BackendKey {
		return &Error{Reason: ReasonBackendConflict, Service: svc.Key, Address: ad, Holder: as.users[0],
			Message: fmt.Sprintf("address %s is shared by %s with %s, but this service has %s; services sharing an address must all use Cluster, or all use Local with the same selector",
				ad, holders, describeBackend(as.backendKey), describeBackend(svc.BackendKey))}
	}
	for _, p := range svc.Ports {
		if h, ok := as.ports[p]; ok {
			return &Error{Reason: ReasonPortConflict, Service: svc.Key, Address: ad, Holder: h,
				Message: fmt.Sprintf("port %s is already in use on %q by %q", p, ad, h)}
		}
	}
	return nil
}

func portsFree(as *addrState, ports []Port) bool {
	for _, p := range ports {
		if _, ok := as.ports[p]; ok {
			return false
		}
	}
	return true
}

// orderCandidates resolves and sorts the candidates (see Allocate) and
// returns notes for the unknown ones.
func (a *Allocator) orderCandidates(cands []Candidate) ([]*pool, []string) {
	pinned := map[*pool]bool{}
	var notes []string
	for _, c := range cands {
		p := a.pools[c.Pool]
		if p == nil {
			notes = append(notes, fmt.Sprintf("pool %q unknown", c.Pool))
			continue
		}
		pinned[p] = pinned[p] || c.Pinned
	}
	order := make([]*pool, 0, len(pinned))
	for p := range pinned {
		order = append(order, p)
	}
	slices.SortFunc(order, func(x, y *pool) int {
		switch {
		case pinned[x] && !pinned[y]:
			return -1
		case !pinned[x] && pinned[y]:
			return 1
		case pinned[x]:
			return comparePriority(x, y)
		}
		return cmp.Compare(x.cfg.Name, y.cfg.Name)
	})
	slices.Sort(notes)
	return order, notes
}

// pick returns the address of family f that svc gets from p, if any. A
// service with a sharing key first joins the lowest address already shared
// under the same sharing and backend keys whose holders leave its ports
// free; otherwise, and for services without a sharing key, the lowest free
// address of the pool wins. (MetalLB takes whichever of the two comes first
// in the pool; preferring to join keeps shared services packed even after
// lower addresses are released.) Joining walks the addresses shared under
// that key, so its cost grows with how many there are.
func (a *Allocator) pick(p *pool, f Family, svc Service) (netip.Addr, bool) {
	sp := p.space(f)
	if sp.empty() {
		return netip.Addr{}, false
	}
	if svc.SharingKey != "" {
		if set := p.shared[shareKey{svc.SharingKey, svc.BackendKey, f}]; set != nil {
			var found netip.Addr
			set.Ascend(func(ad netip.Addr) bool {
				if portsFree(a.addrs[ad], svc.Ports) {
					found = ad
					return false
				}
				return true
			})
			if found.IsValid() {
				return found, true
			}
		}
	}
	idx, ok := sp.firstFree()
	if !ok {
		return netip.Addr{}, false
	}
	return sp.addrAt(idx), true
}

// whyNot explains why p has no address of family f for svc, as a phrase
// following the pool's name, and whether the cause is exhaustion (rather than
// the pool not having that family at all).
func (a *Allocator) whyNot(p *pool, f Family, svc Service) (string, bool) {
	sp := p.space(f)
	if sp.empty() {
		if f == IPv4 && p.cfg.AvoidBuggyIPs && hasFamily(p.cfg.Ranges, IPv4) {
			return "has no usable IPv4 addresses (avoidBuggyIPs excludes them all)", false
		}
		return fmt.Sprintf("has no %s addresses", f), false
	}
	msg := fmt.Sprintf("exhausted (%d of %s %s in use", sp.inUse, sp.capacity, f)
	if svc.SharingKey != "" && p.shared[shareKey{svc.SharingKey, svc.BackendKey, f}] != nil {
		msg += fmt.Sprintf("; the addresses shared under key %q already use this service's ports", svc.SharingKey)
	}
	return msg + ")", true
}

func hasFamily(rs []Range, f Family) bool {
	for _, r := range rs {
		if r.Family() == f {
			return true
		}
	}
	return false
}

// poolNote says why a pool could not serve a request.
type poolNote struct{ pool, why string }

func (n poolNote) String() string { return fmt.Sprintf("pool %q %s", n.pool, n.why) }

// pickFromPools applies the family policy over the ordered pools and returns
// the winning pool and addresses, primary family first; or nil with one note
// per pool and whether any pool was merely exhausted.
func (a *Allocator) pickFromPools(svc Service, order []*pool, auto bool) (*pool, []netip.Addr, []poolNote, bool) {
	fam := svc.Families
	type found struct {
		addr [2]netip.Addr // by Family
		ok   [2]bool
	}
	var (
		notes     []poolNote
		exhausted bool
		usable    []*pool
		results   []found
	)
	for _, p := range order {
		if auto && !p.cfg.AutoAssign {
			continue
		}
		var r found
		r.addr[fam.Primary], r.ok[fam.Primary] = a.pick(p, fam.Primary, svc)
		if fam.Policy != SingleStack {
			o := fam.Primary.other()
			r.addr[o], r.ok[o] = a.pick(p, o, svc)
		}
		switch {
		case fam.Policy == SingleStack && r.ok[fam.Primary]:
			return p, []netip.Addr{r.addr[fam.Primary]}, nil, false
		case fam.Policy == RequireDualStack && r.ok[IPv4] && r.ok[IPv6]:
			return p, []netip.Addr{r.addr[fam.Primary], r.addr[fam.Primary.other()]}, nil, false
		}
		usable = append(usable, p)
		results = append(results, r)
	}
	if fam.Policy == PreferDualStack {
		for i, r := range results {
			if r.ok[IPv4] && r.ok[IPv6] {
				return usable[i], []netip.Addr{r.addr[fam.Primary], r.addr[fam.Primary.other()]}, nil, false
			}
		}
		for _, f := range []Family{fam.Primary, fam.Primary.other()} {
			for i, r := range results {
				if r.ok[f] {
					return usable[i], []netip.Addr{r.addr[f]}, nil, false
				}
			}
		}
	}
	// Nothing fits: explain each pool in the order it was considered.
	fams := []Family{fam.Primary}
	if fam.Policy != SingleStack {
		fams = append(fams, fam.Primary.other())
	}
	i := 0
	for _, p := range order {
		if auto && !p.cfg.AutoAssign {
			notes = append(notes, poolNote{p.cfg.Name, "autoAssign=false"})
			continue
		}
		var parts []string
		for _, f := range fams {
			if results[i].ok[f] {
				continue
			}
			why, full := a.whyNot(p, f, svc)
			exhausted = exhausted || full
			parts = append(parts, why)
		}
		notes = append(notes, poolNote{p.cfg.Name, strings.Join(parts, " and ")})
		i++
	}
	return nil, nil, notes, exhausted
}

// tryKeep re-attaches the service's previous addresses if they still suit it,
// completing or trimming a dual-stack allocation in the same pool.
func (a *Allocator) tryKeep(svc Service, prev *svcState) (Allocation, bool) {
	fam := svc.Families
	var keep []netip.Addr
	for _, ad := range prev.addrs {
		if fam.Policy != SingleStack || familyOf(ad) == fam.Primary {
			keep = append(keep, ad)
		}
	}
	if len(keep) == 0 {
		return Allocation{}, false
	}
	for _, ad := range keep {
		if a.checkShare(ad, svc, prev) != nil {
			return Allocation{}, false
		}
	}
	if len(keep) == 1 && fam.Policy != SingleStack {
		if ad, ok := a.pick(prev.pool, familyOf(keep[0]).other(), svc); ok {
			keep = append(keep, ad)
		} else if fam.Policy == RequireDualStack {
			return Allocation{}, false
		}
	}
	if len(keep) == 2 && familyOf(keep[0]) != fam.Primary {
		keep[0], keep[1] = keep[1], keep[0]
	}
	return a.commit(svc, prev.pool, keep, prev), true
}

// commit records the allocation, keeping the service's original position in
// the creation order.
func (a *Allocator) commit(svc Service, p *pool, addrs []netip.Addr, prev *svcState) Allocation {
	st := &svcState{svc: svc, pool: p, addrs: addrs}
	st.svc.Ports = uniquePorts(svc.Ports)
	if prev != nil {
		st.seq = prev.seq
	} else {
		st.seq = a.nextSeq
		a.nextSeq++
	}
	a.attach(st)
	return st.allocation()
}

func uniquePorts(ports []Port) []Port {
	out := slices.Clone(ports)
	slices.SortFunc(out, func(x, y Port) int {
		return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), cmp.Compare(x.Port, y.Port))
	})
	return slices.Compact(out)
}

func (a *Allocator) restore(prev *svcState) {
	if prev != nil {
		a.attach(prev)
	}
}

// attach records st on each of its addresses; they must be allocatable from
// st.pool and the sharing rules must already have been checked.
func (a *Allocator) attach(st *svcState) {
	a.services[st.svc.Key] = st
	st.pool.services++
	for _, ad := range st.addrs {
		as := a.addrs[ad]
		if as == nil {
			f := familyOf(ad)
			sp := st.pool.space(f)
			idx, _ := sp.indexOf(ad)
			as = &addrState{pool: st.pool, idx: idx, sharingKey: st.svc.SharingKey, backendKey: st.svc.BackendKey,
				ports: make(map[Port]string, len(st.svc.Ports))}
			a.addrs[ad] = as
			sp.markUsed(idx)
			if as.sharingKey != "" {
				k := shareKey{as.sharingKey, as.backendKey, f}
				set := st.pool.shared[k]
				if set == nil {
					set = btree.NewG(8, netip.Addr.Less)
					st.pool.shared[k] = set
				}
				set.ReplaceOrInsert(ad)
			}
		}
		as.users = append(as.users, st.svc.Key)
		for _, p := range st.svc.Ports {
			as.ports[p] = st.svc.Key
		}
	}
}

// detach removes the service from its addresses, freeing those it held
// alone, and returns its state (nil if it had none).
func (a *Allocator) detach(key string) *svcState {
	st := a.services[key]
	if st == nil {
		return nil
	}
	delete(a.services, key)
	st.pool.services--
	for _, ad := range st.addrs {
		as := a.addrs[ad]
		as.users = slices.DeleteFunc(as.users, func(u string) bool { return u == key })
		for _, p := range st.svc.Ports {
			if as.ports[p] == key {
				delete(as.ports, p)
			}
		}
		if len(as.users) > 0 {
			continue
		}
		delete(a.addrs, ad)
		f := familyOf(ad)
		as.pool.space(f).markFree(as.idx)
		if as.sharingKey != "" {
			k := shareKey{as.sharingKey, as.backendKey, f}
			if set := as.pool.shared[k]; set != nil {
				set.Delete(ad)
				if set.Len() == 0 {
					delete(as.pool.shared, k)
				}
			}
		}
	}
	return st
}

// FamilyCount counts one family of one pool, in distinct addresses: an
// address shared by several services counts once. Capacity excludes the
// addresses avoidBuggyIPs skips.
type FamilyCount struct {
	InUse    int64
	Capacity *big.Int
}

// Free returns Capacity - InUse.
func (c FamilyCount) Free() *big.Int {
	return new(big.Int).Sub(c.Capacity, big.NewInt(c.InUse))
}

// PoolStats counts a pool's addresses per family.
type PoolStats struct {
	Pool       string
	Services   int // services holding addresses from the pool
	IPv4, IPv6 FamilyCount
}

// PoolStatus is the MetalLB-compatible view of PoolStats used for
// IPAddressPool.status and metrics: int64 counters that saturate at
// math.MaxInt64 instead of overflowing (a /64 holds 2^64 addresses).
type PoolStatus struct {
	AssignedIPv4, AssignedIPv6   int64
	AvailableIPv4, AvailableIPv6 int64
}

// Status returns the saturating int64 view.
func (s PoolStats) Status() PoolStatus {
	sat := func(b *big.Int) int64 {
		if b.IsInt64() {
			return b.Int64()
		}
		if b.Sign() < 0 {
			return 0
		}
		return 1<<63 - 1
	}
	return PoolStatus{
		AssignedIPv4: s.IPv4.InUse, AssignedIPv6: s.IPv6.InUse,
		AvailableIPv4: sat(s.IPv4.Free()), AvailableIPv6: sat(s.IPv6.Free()),
	}
}

// Stats returns the counts of the named pool. The cost does not depend on the
// pool's size or its number of allocations.
func (a *Allocator) Stats(poolName string) (PoolStats, bool) {
	p := a.pools[poolName]
	if p == nil {
		return PoolStats{}, false
	}
	return PoolStats{
		Pool:     poolName,
		Services: p.services,
		IPv4:     FamilyCount{InUse: p.v4.inUse, Capacity: new(big.Int).Set(p.v4.capacity)},
		IPv6:     FamilyCount{InUse: p.v6.inUse, Capacity: new(big.Int).Set(p.v6.capacity)},
	}, true
}

// AllStats returns the counts of every pool, sorted by pool name.
func (a *Allocator) AllStats() []PoolStats {
	out := make([]PoolStats, 0, len(a.pools))
	for name := range a.pools {
		s, _ := a.Stats(name)
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y PoolStats) int { return cmp.Compare(x.Pool, y.Pool) })
	return out
}
