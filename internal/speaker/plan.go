// Package speaker is Herald's per-node announcer: it decides which Service
// addresses this node answers for (Layer 2), and drives the ARP and NDP
// responders, the ServiceL2Status objects, Events and metrics. The decision
// itself is Plan, a function of plain inputs; the rest translates
// Kubernetes objects in and effects out.
package speaker

import (
	"net/netip"
	"slices"
	"sort"

	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/election"
)

// Node is what the plan needs to know about a node.
type Node struct {
	Name   string
	Labels map[string]string
	// NetworkUnavailable is the NetworkUnavailable=True condition.
	NetworkUnavailable bool
}

// LabelExcludeLB keeps a node out of every announcement.
const LabelExcludeLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// Service is a LoadBalancer Service with addresses.
type Service struct {
	Key    string // namespace/name
	Labels map[string]string
	Addrs  []netip.Addr // status.loadBalancer.ingress, first is the election key
	Pool   string       // the pool holding the addresses
	// Local is externalTrafficPolicy: Local.
	Local bool
	// EndpointNodes are the nodes with a ready or serving endpoint.
	EndpointNodes map[string]bool
	// Shared marks a Service whose address other Services use too.
	Shared bool
}

// Inputs is everything the plan is computed from.
type Inputs struct {
	Config   *config.Config
	Nodes    map[string]Node
	Live     map[string]bool // members alive (memberlist), or all nodes without it
	Services []Service
}

// Announcement is one Service's Layer 2 decision.
type Announcement struct {
	Service string
	Addrs   []netip.Addr
	// Owner is the elected node; empty when no node may announce.
	Owner string
	// Interfaces named by the advertisements (union); empty means the
	// default selection.
	Interfaces []string
	// Reason says why no node announces, when Owner is empty.
	Reason string
}

// Plan decides, for every Service, which node announces it. Every speaker
// computes the same plan from the same inputs. Services sharing an address
// are decided together, on the union of their constraints' intersection,
// so one address always has one owner (MetalLB #558, #968).
func Plan(in Inputs) []Announcement {
	// Group Services by their election key (first address).
	groups := map[netip.Addr][]Service{}
	for _, s := range in.Services {
		if len(s.Addrs) == 0 {
			continue
		}
		groups[s.Addrs[0]] = append(groups[s.Addrs[0]], s)
	}
	keys := make([]netip.Addr, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Less(keys[j]) })

	var out []Announcement
	for _, k := range keys {
		svcs := groups[k]
		sort.Slice(svcs, func(i, j int) bool { return svcs[i].Key < svcs[j].Key })
		// Candidate nodes: eligible for every Service on the address.
		var cands map[string]bool
		var ifaces []string
		var ads []*config.L2Advertisement
		anyIface := false
		reason := ""
		for _, s := range svcs {
			c, sads, ifs, all, why := eligible(in, s)
			for _, a := range sads {
				if !slices.Contains(ads, a) {
					ads = append(ads, a)
				}
			}
			ifaces = append(ifaces, ifs...)
			anyIface = anyIface || all
			if cands == nil {
				cands = c
			} else {
				for n := range cands {
					if !c[n] {
						delete(cands, n)
					}
				}
			}
			if why != "" && reason == "" {
				reason = why
			}
		}
		names := make([]string, 0, len(cands))
		for n := range cands {
			names = append(names, n)
		}
		owner, ok := election.OwnerWeighted(k.String(), names, preferences(in, ads, names))
		if !ok && reason == "" {
			reason = "no eligible node: none is alive, selected by an L2Advertisement, network-available and, for Local policy, holding a ready endpoint"
		}
		if ok {
			reason = ""
		}
		// An advertisement without interfaces allows every suitable one,
		// so the union is "all".
		if anyIface {
			ifaces = nil
		}
		ifaces = uniqueSorted(ifaces)
		for _, s := range svcs {
			out = append(out, Announcement{Service: s.Key, Addrs: s.Addrs, Owner: owner, Interfaces: ifaces, Reason: reason})
		}
	}
	return out
}

// preferences weighs each candidate node: the weights of the preferences it
// matches in each advertisement that applies and selects it (an
// advertisement has no say about nodes it does not select). nil when no
// advertisement has preferences, which is the plain election.
func preferences(in Inputs, ads []*config.L2Advertisement, names []string) map[string]int {
	var w map[string]int
	for _, a := range ads {
		if len(a.PreferredNodes) == 0 {
			continue
		}
		if w == nil {
			w = make(map[string]int, len(names))
		}
		for _, n := range names {
			l := in.Nodes[n].Labels
			if a.MatchesNode(l) {
				w[n] += a.Preference(l)
			}
		}
	}
	return w
}

// eligible returns the nodes that may announce the Service, the
// advertisements that apply to it, the interfaces they name (all: one of
// them names none), and why no node may when that is so.
func eligible(in Inputs, s Service) (nodes map[string]bool, ads []*config.L2Advertisement, ifaces []string, all bool, why string) {
	if in.Config == nil {
		return nil, nil, nil, false, "no valid configuration"
	}
	for _, a := range in.Config.L2Advertisements {
		if a.HasPool(s.Pool) && a.MatchesService(s.Labels) {
			ads = append(ads, a)
		}
	}
	if len(ads) == 0 {
		return nil, nil, nil, false, "no L2Advertisement selects pool " + s.Pool + " for this Service"
	}
	if len(s.EndpointNodes) == 0 {
		return nil, nil, nil, false, "the Service has no ready or serving endpoint"
	}
	out := map[string]bool{}
	for _, a := range ads {
		ifaces = append(ifaces, a.Interfaces...)
		all = all || len(a.Interfaces) == 0
	}
	for name, n := range in.Nodes {
		if !in.Live[name] || n.NetworkUnavailable {
			continue
		}
		if _, excluded := n.Labels[LabelExcludeLB]; excluded {
			continue
		}
		if s.Local && !s.EndpointNodes[name] {
			continue
		}
		for _, a := range ads {
			if a.MatchesNode(n.Labels) {
				out[name] = true
				break
			}
		}
	}
	return out, ads, ifaces, all, ""
}

func uniqueSorted(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	sort.Strings(in)
	out := in[:1]
	for _, s := range in[1:] {
		if s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}
