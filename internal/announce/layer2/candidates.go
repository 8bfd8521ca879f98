package layer2

import (
	"slices"

	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/config"
)

// Elector is who may announce in Layer 2: the L2Advertisements' say.
type Elector struct{}

// ElectionKey: Services on one address share its owner, whatever their
// other addresses.
func (Elector) ElectionKey(s announce.Service) string { return s.Addrs[0].String() }

// Candidates are the nodes eligible for every Service of group: alive,
// network-available, not excluded from load balancers, selected by an
// L2Advertisement that selects the Service's pool and the Service, and, for
// externalTrafficPolicy: Local, holding a ready endpoint. Weights come from
// the advertisements' preferredNodeSelectors.
func (Elector) Candidates(in announce.Inputs, group []announce.Service) announce.Candidates {
	var ads []*config.L2Advertisement
	nodes, why := announce.EligibleForAll(group, func(s announce.Service) (map[string]bool, string) {
		c, sads, w := eligible(in, s)
		for _, a := range sads {
			if !slices.Contains(ads, a) {
				ads = append(ads, a)
			}
		}
		return c, w
	})
	out := announce.Candidates{Nodes: nodes, Why: why, Weights: preferences(in, ads, nodes)}
	if len(out.Nodes) == 0 && out.Why == "" {
		out.Why = "no eligible node: none is alive, selected by an L2Advertisement, network-available and, for Local policy, holding a ready endpoint"
	}
	return out
}

// preferences weighs each candidate node: the weights of the preferences it
// matches in each advertisement that applies and selects it (an
// advertisement has no say about nodes it does not select). nil when no
// advertisement has preferences, which is the plain election.
func preferences(in announce.Inputs, ads []*config.L2Advertisement, names []string) map[string]int {
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

// advertisements are the L2Advertisements that apply to s.
func advertisements(in announce.Inputs, s announce.Service) []*config.L2Advertisement {
	if in.Config == nil {
		return nil
	}
	var ads []*config.L2Advertisement
	for _, a := range in.Config.L2Advertisements {
		if a.HasPool(s.Pool) && a.MatchesService(s.Labels) {
			ads = append(ads, a)
		}
	}
	return ads
}

// eligible returns the nodes that may announce s, the advertisements that
// apply to it, and why no node may when that is so.
func eligible(in announce.Inputs, s announce.Service) (map[string]bool, []*config.L2Advertisement, string) {
	if in.Config == nil {
		return nil, nil, "no valid configuration"
	}
	ads := advertisements(in, s)
	if len(ads) == 0 {
		return nil, nil, "no L2Advertisement selects pool " + s.Pool + " for this Service"
	}
	if len(s.EndpointNodes) == 0 {
		return nil, nil, announce.ReasonNoEndpoints
	}
	out := map[string]bool{}
	for name, n := range in.Nodes {
		if !in.Live[name] || n.NetworkUnavailable || n.Excluded() {
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
	return out, ads, ""
}

// interfaces are the interfaces the advertisements of the Services on one
// address name (their union); nil means the default selection, which one
// advertisement without interfaces allows.
func interfaces(in announce.Inputs, group []announce.Service) []string {
	var out []string
	for _, s := range group {
		for _, a := range advertisements(in, s) {
			if len(a.Interfaces) == 0 {
				return nil
			}
			out = append(out, a.Interfaces...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
