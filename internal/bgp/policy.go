package bgp

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// How advertisements reach peers.
//
// GoBGP keeps one global RIB and applies only the global export policy to
// ordinary (non route-server) neighbours. So each advertised prefix is one
// plain local path (ORIGIN IGP, unspecified next hop, which GoBGP rewrites
// to the session's local address), and everything per peer is done by the
// global export policy: one statement per (peer, family, attribute set)
// that matches the peer's address and the prefixes, sets communities,
// large communities and LOCAL_PREF, and accepts. The default export action
// is reject, so a prefix goes only where a statement sends it.
//
// Setting communities by policy rather than on the path also matters for
// correctness: GoBGP refuses to export a path that carries a well-known
// community such as NO_ADVERTISE (65535:65282) before policy runs, while
// communities added by export policy are sent as configured.

const (
	exportPolicyName = "herald-export"
	importPolicyName = "herald-import"
)

// importPolicy accepts only locally originated paths; with the default
// import action set to reject, everything received from peers is dropped.
func importPolicy() *api.Policy {
	return &api.Policy{Name: importPolicyName, Statements: []*api.Statement{{
		Name:       "herald-local-only",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}
}

// routeAttrs are the per-peer attributes of one advertised prefix.
type routeAttrs struct {
	LocalPref   uint32
	Communities []uint32    // sorted, unique
	Large       [][3]uint32 // sorted, unique
}

func (a routeAttrs) equal(b routeAttrs) bool {
	return a.LocalPref == b.LocalPref && slices.Equal(a.Communities, b.Communities) && slices.Equal(a.Large, b.Large)
}

// key identifies an attribute set, so prefixes sharing one are matched by a
// single statement.
func (a routeAttrs) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lp=%d c=", a.LocalPref)
	for _, c := range a.Communities {
		b.WriteString(communityString(c) + ",")
	}
	b.WriteString(" l=")
	for _, l := range a.Large {
		b.WriteString(largeCommunityString(l) + ",")
	}
	return b.String()
}

func communityString(c uint32) string { return fmt.Sprintf("%d:%d", c>>16, c&0xffff) }

func largeCommunityString(l [3]uint32) string { return fmt.Sprintf("%d:%d:%d", l[0], l[1], l[2]) }

func compareLarge(a, b [3]uint32) int {
	for i := range a {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// plan maps peer name to the prefixes it is sent and their attributes.
type plan map[string]map[netip.Prefix]routeAttrs

// normalizeAds validates ads and masks their prefixes.
func normalizeAds(ads []Advertisement) ([]Advertisement, error) {
	out := make([]Advertisement, 0, len(ads))
	for i, ad := range ads {
		if !ad.Prefix.IsValid() {
			return nil, fmt.Errorf("advertisement %d: invalid prefix", i)
		}
		addr, bits := ad.Prefix.Addr(), ad.Prefix.Bits()
		if addr.Is4In6() {
			addr, bits = addr.Unmap(), max(0, bits-96)
		}
		ad.Prefix = netip.PrefixFrom(addr, bits).Masked()
		out = append(out, ad)
	}
	return out, nil
}

// buildPlan decides, per peer, which prefixes it gets with which
// attributes. Advertisements of one prefix to one peer are merged: the
// union of communities, and the highest LOCAL_PREF (MetalLB rejects
// conflicting values earlier, at configuration time). Prefixes of a family
// the session does not carry are left out, and LOCAL_PREF is dropped for
// eBGP sessions. Peer names in Advertisement.Peers that are not configured
// are ignored: that peer may simply not run on this node.
func buildPlan(cfg Config, peers map[string]Peer, ads []Advertisement) plan {
	out := make(plan, len(peers))
	for name, p := range peers {
		routes := make(map[netip.Prefix]routeAttrs)
		for _, ad := range ads {
			if len(ad.Peers) > 0 && !slices.Contains(ad.Peers, name) {
				continue
			}
			if !p.carries(ad.Prefix.Addr().Is4()) {
				continue
			}
			a := routes[ad.Prefix]
			if cfg.isIBGP(p) {
				a.LocalPref = max(a.LocalPref, ad.LocalPref)
			}
			a.Communities = append(slices.Clone(a.Communities), ad.Communities...)
			for _, l := range ad.LargeCommunities {
				a.Large = append(a.Large, l)
			}
			routes[ad.Prefix] = a
		}
		for pfx, a := range routes {
			slices.Sort(a.Communities)
			a.Communities = slices.Compact(a.Communities)
			slices.SortFunc(a.Large, compareLarge)
			a.Large = slices.Compact(a.Large)
			routes[pfx] = a
		}
		out[name] = routes
	}
	return out
}

// changedPeers returns the peers whose routes differ between two plans.
func changedPeers(old, cur plan) []string {
	var out []string
	for name, routes := range cur {
		if !maps.EqualFunc(old[name], routes, routeAttrs.equal) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// exportPolicy renders a plan as GoBGP defined sets and the global export
// policy. Output is deterministic for a given input.
func exportPolicy(peers map[string]Peer, pl plan) ([]*api.DefinedSet, *api.Policy) {
	var sets []*api.DefinedSet
	pol := &api.Policy{Name: exportPolicyName}
	names := slices.Sorted(maps.Keys(pl))
	for i, name := range names {
		p, ok := peers[name]
		if !ok || len(pl[name]) == 0 {
			continue
		}
		nbr := fmt.Sprintf("herald-peer-%d", i)
		sets = append(sets, &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR,
			Name:        nbr,
			List:        []string{netip.PrefixFrom(p.Address.Unmap(), p.Address.Unmap().BitLen()).String()},
		})

		// Group prefixes by family and attribute set; GoBGP prefix sets
		// hold a single family.
		type group struct {
			attrs    routeAttrs
			prefixes []netip.Prefix
		}
		groups := make(map[string]*group)
		for pfx, a := range pl[name] {
			k := fmt.Sprintf("v4=%t %s", pfx.Addr().Is4(), a.key())
			g, ok := groups[k]
			if !ok {
				g = &group{attrs: a}
				groups[k] = g
			}
			g.prefixes = append(g.prefixes, pfx)
		}
		for j, k := range slices.Sorted(maps.Keys(groups)) {
			g := groups[k]
			slices.SortFunc(g.prefixes, netip.Prefix.Compare)
			pfxSet := fmt.Sprintf("herald-peer-%d-routes-%d", i, j)
			ds := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: pfxSet}
			for _, pfx := range g.prefixes {
				ds.Prefixes = append(ds.Prefixes, &api.Prefix{
					IpPrefix:      pfx.String(),
					MaskLengthMin: uint32(pfx.Bits()),
					MaskLengthMax: uint32(pfx.Bits()),
				})
			}
			sets = append(sets, ds)
			pol.Statements = append(pol.Statements, &api.Statement{
				Name: pfxSet,
				Conditions: &api.Conditions{
					NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nbr},
					PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: pfxSet},
				},
				Actions: statementActions(g.attrs, otherNextHop(p, g.prefixes[0])),
			})
		}
	}
	return sets, pol
}

// otherNextHop is the next hop to set on pfx's group for p: p's
// OtherNextHop when pfx is of the other family than the session, else
// none (GoBGP uses the session's local address).
func otherNextHop(p Peer, pfx netip.Prefix) netip.Addr {
	if pfx.Addr().Is4() == p.Address.Unmap().Is4() {
		return netip.Addr{}
	}
	return p.OtherNextHop.Unmap()
}

func statementActions(a routeAttrs, nextHop netip.Addr) *api.Actions {
	act := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT}
	if nextHop.IsValid() {
		act.Nexthop = &api.NexthopAction{Address: nextHop.String()}
	}
	if len(a.Communities) > 0 {
		c := &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE}
		for _, v := range a.Communities {
			c.Communities = append(c.Communities, communityString(v))
		}
		act.Community = c
	}
	if len(a.Large) > 0 {
		c := &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE}
		for _, v := range a.Large {
			c.Communities = append(c.Communities, largeCommunityString(v))
		}
		act.LargeCommunity = c
	}
	// buildPlan already zeroed LocalPref for eBGP sessions; GoBGP also
	// strips LOCAL_PREF towards eBGP peers after export policy.
	if a.LocalPref != 0 {
		act.LocalPref = &api.LocalPrefAction{Value: a.LocalPref}
	}
	return act
}

// localPath is the global-RIB path for an advertised prefix.
func localPath(pfx netip.Prefix) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(pfx)
	if err != nil {
		return nil, fmt.Errorf("prefix %s: %w", pfx, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	family := bgp.RF_IPv4_UC
	if pfx.Addr().Is4() {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, fmt.Errorf("prefix %s: %w", pfx, err)
		}
		attrs = append(attrs, nh)
	} else {
		family = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(family, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, fmt.Errorf("prefix %s: %w", pfx, err)
		}
		attrs = append(attrs, mp)
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}, nil
}
