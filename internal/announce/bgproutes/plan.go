package bgproutes

import (
	"net/netip"
	"slices"
	"sort"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/config"
)

// Route is one prefix this node advertises over BGP, with its attributes.
type Route struct {
	Prefix      netip.Prefix
	LocalPref   uint32
	Communities []config.Community
	// Peers are the BGPPeer names to advertise to; nil means every peer.
	Peers []string
	// Services are the Services the prefix carries, sorted.
	Services []string
}

// Routes is this node's part in BGP: its sessions and what it advertises.
type Routes struct {
	Peers  []*config.Peer
	Routes []Route
	// ServicePeers maps each advertised Service to the peers it is sent
	// to (nil: every peer of the node), for ServiceBGPStatus.
	ServicePeers map[string][]string
	// Announced maps each advertised Service to its addresses, for
	// metallb_speaker_announced and the Events.
	Announced announce.Announced
}

// Plan decides what node advertises. Unlike Layer 2 there is no
// election: every eligible node advertises, and the routers spread traffic
// over them (ECMP). A node is eligible for a Service when a BGPAdvertisement
// selects the Service's pool, the Service and the node; the node is not
// NetworkUnavailable nor excluded from load balancers; and the Service has
// a ready endpoint, on this very node for externalTrafficPolicy: Local.
func Plan(in announce.Inputs, node string) Routes {
	plan := Routes{ServicePeers: map[string][]string{}, Announced: announce.Announced{}}
	n, known := in.Nodes[node]
	if in.Config == nil || !known {
		return plan
	}
	for _, p := range in.Config.Peers {
		if p.MatchesNode(n.Labels) {
			plan.Peers = append(plan.Peers, p)
		}
	}
	if len(plan.Peers) == 0 || n.NetworkUnavailable {
		return plan
	}
	if _, excluded := n.Labels[announce.LabelExcludeLB]; excluded {
		return plan
	}
	routes := map[netip.Prefix]*Route{}
	allPeers := map[netip.Prefix]bool{}
	for _, s := range in.Services {
		if len(s.EndpointNodes) == 0 || (s.Local && !s.EndpointNodes[node]) {
			continue
		}
		var svcPeers []string
		svcAll := false
		for _, ad := range in.Config.BGPAdvertisements {
			if !ad.HasPool(s.Pool) || !ad.MatchesNode(n.Labels) || !selects(ad.ServiceSelectors, s.Labels) {
				continue
			}
			if len(ad.Peers) == 0 {
				svcAll = true
			}
			svcPeers = append(svcPeers, ad.Peers...)
			for _, a := range s.Addrs {
				bits := ad.AggregationLength
				if a.Is6() {
					bits = ad.AggregationLengthV6
				}
				pfx, err := a.Prefix(bits)
				if err != nil {
					continue
				}
				r := routes[pfx]
				if r == nil {
					r = &Route{Prefix: pfx}
					routes[pfx] = r
				}
				// Validation refuses conflicting localPrefs for one pool;
				// across pools the highest wins.
				if ad.LocalPref > r.LocalPref {
					r.LocalPref = ad.LocalPref
				}
				r.Communities = append(r.Communities, ad.Communities...)
				if len(ad.Peers) == 0 {
					allPeers[pfx] = true
				}
				r.Peers = append(r.Peers, ad.Peers...)
				r.Services = append(r.Services, s.Key)
			}
		}
		if svcAll {
			plan.ServicePeers[s.Key] = nil
		} else if len(svcPeers) > 0 {
			plan.ServicePeers[s.Key] = uniqueSorted(svcPeers)
		}
		if _, ok := plan.ServicePeers[s.Key]; ok {
			plan.Announced[s.Key] = s.Addrs
		}
	}
	for pfx, r := range routes {
		if allPeers[pfx] {
			r.Peers = nil
		} else {
			r.Peers = uniqueSorted(r.Peers)
		}
		r.Services = uniqueSorted(r.Services)
		r.Communities = uniqueCommunities(r.Communities)
		plan.Routes = append(plan.Routes, *r)
	}
	sort.Slice(plan.Routes, func(i, j int) bool {
		a, b := plan.Routes[i].Prefix, plan.Routes[j].Prefix
		if a.Addr() != b.Addr() {
			return a.Addr().Less(b.Addr())
		}
		return a.Bits() < b.Bits()
	})
	return plan
}

// selects: no selector selects everything; otherwise any one must match.
func selects(sels []labels.Selector, l map[string]string) bool {
	if len(sels) == 0 {
		return true
	}
	for _, s := range sels {
		if s.Matches(labels.Set(l)) {
			return true
		}
	}
	return false
}

func uniqueCommunities(in []config.Community) []config.Community {
	seen := map[config.Community]bool{}
	var out []config.Community
	for _, c := range in {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func uniqueSorted(in []string) []string {
	slices.Sort(in)
	return slices.Compact(in)
}
