package config

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/ipam"
)

// BGP advertisement defaults and limits.
const (
	DefaultAggregationLength   = 32
	DefaultAggregationLengthV6 = 128
	// MaxCommunities is the most communities one advertisement may carry.
	MaxCommunities = 63
)

// BGPAdvertisement is a validated BGPAdvertisement with its pools and
// communities resolved.
type BGPAdvertisement struct {
	Name string
	// Pools are the names of the existing pools it applies to, sorted.
	Pools []string
	// AggregationLength and AggregationLengthV6 are the announced prefix
	// lengths for IPv4 and IPv6 addresses.
	AggregationLength   int
	AggregationLengthV6 int
	// LocalPref is the LOCAL_PREF to send; 0 means not set.
	LocalPref uint32
	// Communities are the resolved communities, sorted, without repeats.
	Communities []Community
	// Peers are the names of the peers to announce to, sorted; empty means
	// every peer.
	Peers []string
	// NodeSelectors limit the announcing nodes; empty means every node.
	NodeSelectors []labels.Selector
	// ServiceSelectors limit the Services; empty means every Service.
	ServiceSelectors []labels.Selector
}

// HasPool reports whether the advertisement applies to the pool.
func (a *BGPAdvertisement) HasPool(name string) bool {
	_, ok := slices.BinarySearch(a.Pools, name)
	return ok
}

// MatchesNode reports whether a node with these labels announces.
func (a *BGPAdvertisement) MatchesNode(nodeLabels map[string]string) bool {
	return matchesAll(a.NodeSelectors, nodeLabels)
}

// MatchesService reports whether the advertisement applies to a Service
// with these labels.
func (a *BGPAdvertisement) MatchesService(svcLabels map[string]string) bool {
	return matchesAll(a.ServiceSelectors, svcLabels)
}

// MatchesPeer reports whether routes go to the named peer.
func (a *BGPAdvertisement) MatchesPeer(name string) bool {
	if len(a.Peers) == 0 {
		return true
	}
	_, ok := slices.BinarySearch(a.Peers, name)
	return ok
}

func (b *builder) buildBGPAdvertisements(pools []*Pool, peers []*Peer, cs communitySet) []*BGPAdvertisement {
	var out []*BGPAdvertisement
	for _, o := range objects(b, KindBGPAdvertisement, b.r.BGPAdvertisements, func(a *v1beta1.BGPAdvertisement) *metav1.ObjectMeta { return &a.ObjectMeta }) {
		out = append(out, b.buildBGPAdvertisement(o.ref, &o.obj.Spec, pools, peers, cs))
	}
	b.checkBGPAdvertisementSets(out, pools)
	return out
}

func (b *builder) buildBGPAdvertisement(r ref, s *v1beta1.BGPAdvertisementSpec, pools []*Pool, peers []*Peer, cs communitySet) *BGPAdvertisement {
	spec := field.NewPath("spec")
	a := &BGPAdvertisement{Name: r.name, LocalPref: s.LocalPref}
	a.Pools = b.selectPools(r, s.IPAddressPools, s.IPAddressPoolSelectors, pools)
	a.NodeSelectors, _ = b.selectors(r, spec.Child("nodeSelectors"), s.NodeSelectors, useNodes)
	a.ServiceSelectors, _ = b.selectors(r, spec.Child("serviceSelectors"), s.ServiceSelectors, useServices)

	a.AggregationLength = b.aggregation(r, spec.Child("aggregationLength"), s.AggregationLength, DefaultAggregationLength)
	a.AggregationLengthV6 = b.aggregation(r, spec.Child("aggregationLengthV6"), s.AggregationLengthV6, DefaultAggregationLengthV6)
	if len(s.ServiceSelectors) > 0 {
		if a.AggregationLength != DefaultAggregationLength {
			b.fail(r, spec.Child("aggregationLength"), fmt.Sprintf(
				"aggregationLength %d cannot be combined with serviceSelectors: an aggregated route would also cover Services the selectors leave out; use 32 or remove serviceSelectors", a.AggregationLength))
		}
		if a.AggregationLengthV6 != DefaultAggregationLengthV6 {
			b.fail(r, spec.Child("aggregationLengthV6"), fmt.Sprintf(
				"aggregationLengthV6 %d cannot be combined with serviceSelectors: an aggregated route would also cover Services the selectors leave out; use 128 or remove serviceSelectors", a.AggregationLengthV6))
		}
	}
	for _, name := range a.Pools {
		p := findPool(pools, name)
		b.checkAggregation(r, spec.Child("aggregationLength"), p, false, a.AggregationLength)
		b.checkAggregation(r, spec.Child("aggregationLengthV6"), p, true, a.AggregationLengthV6)
	}

	a.Communities = b.communities(r, s.Communities, cs)

	for _, i := range b.uniqueStrings(r, spec.Child("peers"), s.Peers, "peer name") {
		if n := s.Peers[i]; findByName(peers, n, func(p *Peer) string { return p.Name }) == nil {
			b.warn(r, spec.Child("peers").Index(i), fmt.Sprintf(
				"BGPPeer %q does not exist; nothing is announced to it until it is created", n))
		}
	}
	a.Peers = slices.Sorted(slices.Values(slices.Clone(s.Peers)))
	return a
}

// aggregation validates an aggregation length; max is also the default.
func (b *builder) aggregation(r ref, p *field.Path, v *int32, max int) int {
	if v == nil {
		return max
	}
	if *v < 1 || int(*v) > max {
		b.fail(r, p, fmt.Sprintf("%s %d must be from 1 to %d (unset means %d)", lastElem(p), *v, max, max))
		return max
	}
	return int(*v)
}

// checkAggregation refuses an aggregation length shorter than the shortest
// prefix of the pool's ranges of one family: the route would announce more
// than the pool's own addresses in the pool's widest block.
func (b *builder) checkAggregation(r ref, p *field.Path, pool *Pool, v6 bool, length int) {
	if pool == nil {
		return
	}
	shortest := -1
	var from string
	for _, rg := range pool.Ranges {
		if rg.First.Is6() != v6 {
			continue
		}
		for _, pf := range rg.Prefixes() {
			if shortest < 0 || pf.Bits() < shortest {
				shortest, from = pf.Bits(), rg.Entry()
			}
		}
	}
	if shortest >= 0 && length < shortest {
		b.fail(r, p, fmt.Sprintf(
			"%s %d is shorter than /%d, the widest prefix of pool %q (entry %q), so the route would cover addresses outside the pool; use at least %d",
			lastElem(p), length, shortest, pool.Name, from, shortest))
	}
}

// communities validates and resolves an advertisement's communities.
func (b *builder) communities(r ref, in []string, cs communitySet) []Community {
	list := field.NewPath("spec", "communities")
	if len(in) > MaxCommunities {
		b.fail(r, list, fmt.Sprintf("%d communities listed; at most %d are allowed per advertisement", len(in), MaxCommunities))
	}
	var out []Community
	seen := map[string]int{}
	for i, c := range in {
		p := list.Index(i)
		if j, dup := seen[c]; dup {
			b.fail(r, p, fmt.Sprintf("community %q repeats entry [%d]; remove one of them", c, j))
			continue
		}
		seen[c] = i
		switch {
		case c == "":
			b.fail(r, p, "empty community; "+communityExamples)
		case isCommunityLiteral(c):
			v, err := ParseCommunity(c)
			if err != nil {
				b.fail(r, p, err.Error())
				continue
			}
			out = append(out, v)
		case cs.broken[c]:
			// The Community object's own problem says what is wrong.
		default:
			v, ok := cs.byName[c]
			if !ok {
				b.wait(r, p, fmt.Sprintf(
					"no Community object defines the alias %q (yet); the advertisement is applied once one does. "+
						"If it was meant as a value, %s", c, communityExamples))
				continue
			}
			out = append(out, v)
		}
	}
	slices.SortFunc(out, compareCommunities)
	return slices.CompactFunc(out, func(x, y Community) bool { return x == y })
}

// checkBGPAdvertisementSets applies the rules between advertisements:
// no two identical ones, and one LOCAL_PREF per route. It indexes the
// advertisements instead of comparing every pair: the webhook runs it on
// the whole set, twice per request.
func (b *builder) checkBGPAdvertisementSets(ads []*BGPAdvertisement, pools []*Pool) {
	spec := field.NewPath("spec")
	refOf := func(a *BGPAdvertisement) ref {
		return ref{kind: KindBGPAdvertisement, namespace: b.r.Namespace, name: a.Name}
	}

	// Identical ones: the first by name keeps its meaning, the others are
	// refused and take no part in the localPref rule (the first carries it).
	first := make(map[string]string, len(ads))
	var kept []int
	for i, a := range ads {
		k := adKey(a)
		if p, dup := first[k]; dup {
			b.fail(refOf(a), spec, fmt.Sprintf("identical to BGPAdvertisement %q; remove one of them", p))
			continue
		}
		first[k] = a.Name
		kept = append(kept, i)
	}

	// Two advertisements can only put different LOCAL_PREFs on one route if
	// they announce a pool of theirs with the same aggregation length, so
	// only the members of such a group are compared, and only when the
	// group holds more than one localPref. With service selectors the two
	// may never meet on one Service; the speaker checks that at
	// announcement time.
	type group struct {
		pool   string
		v6     bool
		length int
	}
	members := map[group][]int{}
	for _, i := range kept {
		a := ads[i]
		if len(a.ServiceSelectors) > 0 {
			continue
		}
		for _, name := range a.Pools {
			pool := findPool(pools, name)
			if hasFamily(pool, false) {
				g := group{name, false, a.AggregationLength}
				members[g] = append(members[g], i)
			}
			if hasFamily(pool, true) {
				g := group{name, true, a.AggregationLengthV6}
				members[g] = append(members[g], i)
			}
		}
	}
	groups := slices.SortedFunc(maps.Keys(members), func(x, y group) int {
		return cmp.Or(cmp.Compare(x.pool, y.pool), cmp.Compare(boolInt(x.v6), boolInt(y.v6)), cmp.Compare(x.length, y.length))
	})
	covers := map[int]nodeCover{}
	cover := func(i int) nodeCover {
		c, ok := covers[i]
		if !ok {
			c = b.nodeCover(ads[i].NodeSelectors)
			covers[i] = c
		}
		return c
	}
	// conflicts maps a pair (later, earlier) to the first pool by name on
	// which they conflict, which the message names.
	conflicts := map[[2]int]string{}
	for _, g := range groups {
		byPref := map[uint32][]int{}
		for _, i := range members[g] {
			byPref[ads[i].LocalPref] = append(byPref[ads[i].LocalPref], i)
		}
		if len(byPref) < 2 {
			continue
		}
		for _, j := range members[g] {
			q := ads[j]
			for pref, earlier := range byPref {
				if pref == q.LocalPref {
					continue
				}
				for _, i := range earlier {
					if i >= j {
						break
					}
					pair := [2]int{j, i}
					if _, done := conflicts[pair]; done {
						continue
					}
					if peersOverlap(ads[i].Peers, q.Peers) && cover(i).overlaps(cover(j)) {
						conflicts[pair] = g.pool
					}
				}
			}
		}
	}
	pairs := slices.SortedFunc(maps.Keys(conflicts), func(x, y [2]int) int {
		return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]))
	})
	for _, pair := range pairs {
		q, p := ads[pair[0]], ads[pair[1]]
		b.fail(refOf(q), spec.Child("localPref"), fmt.Sprintf(
			"localPref %d differs from BGPAdvertisement %q's %d, but both announce pool %q with the same aggregation length "+
				"to the same peers from the same nodes, and a route carries one LOCAL_PREF; use the same localPref, "+
				"or separate them by peers, nodeSelectors or aggregation length",
			q.LocalPref, p.Name, p.LocalPref, conflicts[pair]))
	}
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// adKey is an advertisement's meaning as text, for spotting identical ones.
func adKey(a *BGPAdvertisement) string {
	cs := make([]string, len(a.Communities))
	for i, c := range a.Communities {
		cs[i] = c.String()
	}
	return fmt.Sprintf("%v|%d|%d|%d|%v|%v|%s|%s", a.Pools, a.AggregationLength, a.AggregationLengthV6, a.LocalPref,
		cs, a.Peers, selectorKey(a.NodeSelectors), selectorKey(a.ServiceSelectors))
}

func peersOverlap(x, y []string) bool {
	if len(x) == 0 || len(y) == 0 {
		return true
	}
	for _, n := range x {
		if _, ok := slices.BinarySearch(y, n); ok {
			return true
		}
	}
	return false
}

// hasFamily reports whether the pool has IPv6 (v6) or IPv4 ranges.
func hasFamily(p *Pool, v6 bool) bool {
	if p == nil {
		return false
	}
	return slices.ContainsFunc(p.Ranges, func(r ipam.Range) bool { return r.First.Is6() == v6 })
}

func findPool(pools []*Pool, name string) *Pool {
	return findByName(pools, name, func(p *Pool) string { return p.Name })
}

// findByName finds an element in a list sorted by name.
func findByName[T any](list []*T, name string, nameOf func(*T) string) *T {
	return find(list, name, nameOf)
}

// lastElem is the field name at the end of a path, for messages.
func lastElem(p *field.Path) string {
	s := p.String()
	if i := strings.LastIndex(s, "."); i >= 0 {
		return s[i+1:]
	}
	return s
}
