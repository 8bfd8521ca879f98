package layer2

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/config"
)

func parseSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	l, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPlan(t *testing.T) {
	sel := func(s string) labels.Selector { return parseSelector(t, s) }
	cfg := func(ads ...*config.L2Advertisement) *config.Config { return &config.Config{L2Advertisements: ads} }
	all := &config.L2Advertisement{Name: "all", Pools: []string{"p"}}
	rackA := &config.L2Advertisement{Name: "rack-a", Pools: []string{"p"}, NodeSelectors: []labels.Selector{sel("rack=a")}}
	onlyWeb := &config.L2Advertisement{Name: "web", Pools: []string{"p"}, ServiceSelectors: []labels.Selector{sel("app=web")}, Interfaces: []string{"eth1"}}
	nodes := map[string]announce.Node{
		"n1": {Name: "n1", Labels: map[string]string{"rack": "a"}},
		"n2": {Name: "n2", Labels: map[string]string{"rack": "a"}},
		"n3": {Name: "n3", Labels: map[string]string{"rack": "b"}},
		"n4": {Name: "n4", Labels: map[string]string{"rack": "b", announce.LabelExcludeLB: ""}},
		"n5": {Name: "n5", NetworkUnavailable: true},
	}
	live := map[string]bool{"n1": true, "n2": true, "n3": true, "n4": true, "n5": true}
	eps := map[string]bool{"n1": true, "n2": true, "n3": true}
	svc := func(key, ip string, mod ...func(*announce.Service)) announce.Service {
		s := announce.Service{Key: key, Addrs: []netip.Addr{netip.MustParseAddr(ip)}, Pool: "p", EndpointNodes: eps}
		for _, m := range mod {
			m(&s)
		}
		return s
	}
	tests := []struct {
		name string
		in   announce.Inputs
		// allowed owners for each service; "" means nobody
		want   map[string][]string
		ifaces map[string]string
	}{
		{"eligible excludes label, NetworkUnavailable, dead", announce.Inputs{Config: cfg(all), Nodes: nodes,
			Live:     map[string]bool{"n1": false, "n2": true, "n3": true, "n4": true, "n5": true},
			Services: []announce.Service{svc("a/x", "192.0.2.1")}}, map[string][]string{"a/x": {"n2", "n3"}}, nil},
		{"node selector", announce.Inputs{Config: cfg(rackA), Nodes: nodes, Live: live,
			Services: []announce.Service{svc("a/x", "192.0.2.1")}}, map[string][]string{"a/x": {"n1", "n2"}}, nil},
		{"Local policy follows endpoints", announce.Inputs{Config: cfg(all), Nodes: nodes, Live: live,
			Services: []announce.Service{svc("a/x", "192.0.2.1", func(s *announce.Service) { s.Local = true; s.EndpointNodes = map[string]bool{"n3": true} })}},
			map[string][]string{"a/x": {"n3"}}, nil},
		{"no endpoints: nobody", announce.Inputs{Config: cfg(all), Nodes: nodes, Live: live,
			Services: []announce.Service{svc("a/x", "192.0.2.1", func(s *announce.Service) { s.EndpointNodes = nil })}},
			map[string][]string{"a/x": {""}}, nil},
		{"no advertisement for the pool", announce.Inputs{Config: cfg(all), Nodes: nodes, Live: live,
			Services: []announce.Service{svc("a/x", "192.0.2.1", func(s *announce.Service) { s.Pool = "other" })}},
			map[string][]string{"a/x": {""}}, nil},
		{"service selector and interfaces", announce.Inputs{Config: cfg(onlyWeb), Nodes: nodes, Live: live,
			Services: []announce.Service{svc("a/web", "192.0.2.1", func(s *announce.Service) { s.Labels = map[string]string{"app": "web"} }), svc("a/db", "192.0.2.2")}},
			map[string][]string{"a/web": {"n1", "n2", "n3"}, "a/db": {""}}, map[string]string{"a/web": "eth1"}},
		{"an advertisement without interfaces means all", announce.Inputs{Config: cfg(onlyWeb, all), Nodes: nodes, Live: live,
			Services: []announce.Service{svc("a/web", "192.0.2.1", func(s *announce.Service) { s.Labels = map[string]string{"app": "web"} })}},
			map[string][]string{"a/web": {"n1", "n2", "n3"}}, map[string]string{"a/web": ""}},
		{"shared address: one owner, within both Local sets", announce.Inputs{Config: cfg(all), Nodes: nodes, Live: live,
			Services: []announce.Service{
				svc("a/tcp", "192.0.2.9", func(s *announce.Service) { s.Local = true; s.EndpointNodes = map[string]bool{"n1": true, "n2": true} }),
				svc("a/udp", "192.0.2.9", func(s *announce.Service) { s.Local = true; s.EndpointNodes = map[string]bool{"n2": true, "n3": true} }),
			}}, map[string][]string{"a/tcp": {"n2"}, "a/udp": {"n2"}}, nil},
		{"shared address: a Service without endpoints takes nothing from the other", announce.Inputs{Config: cfg(all), Nodes: nodes, Live: live,
			Services: []announce.Service{
				svc("a/tcp", "192.0.2.9"),
				svc("a/udp", "192.0.2.9", func(s *announce.Service) { s.EndpointNodes = nil }),
			}}, map[string][]string{"a/tcp": {"n1", "n2", "n3"}, "a/udp": {""}}, nil},
		{"shared address, Local: a Service without endpoints takes nothing from the other", announce.Inputs{Config: cfg(all), Nodes: nodes, Live: live,
			Services: []announce.Service{
				svc("a/tcp", "192.0.2.9", func(s *announce.Service) { s.Local = true; s.EndpointNodes = map[string]bool{"n3": true} }),
				svc("a/udp", "192.0.2.9", func(s *announce.Service) { s.Local = true; s.EndpointNodes = map[string]bool{} }),
			}}, map[string][]string{"a/tcp": {"n3"}, "a/udp": {""}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]announce.Announcement{}
			for _, a := range plan(tc.in) {
				got[a.Service] = a
			}
			for key, allowed := range tc.want {
				a, ok := got[key]
				if !ok {
					t.Fatalf("%s: not in the plan", key)
				}
				okOwner := false
				for _, n := range allowed {
					okOwner = okOwner || a.Owner == n
				}
				if !okOwner {
					t.Errorf("%s: owner %q, want one of %q (reason %q)", key, a.Owner, allowed, a.Reason)
				}
				if a.Owner == "" && a.Reason == "" {
					t.Errorf("%s: no owner and no reason", key)
				}
			}
			for key, want := range tc.ifaces {
				if ifs := strings.Join(interfacesOf(tc.in, got[key]), ","); ifs != want {
					t.Errorf("%s: interfaces %q, want %q", key, ifs, want)
				}
			}
		})
	}
}

// TestPlanDeterministic: every speaker computes the same owners whatever
// order its inputs come in.
func TestPlanDeterministic(t *testing.T) {
	cfg := &config.Config{L2Advertisements: []*config.L2Advertisement{{Name: "all", Pools: []string{"p"}}}}
	nodes := map[string]announce.Node{"n1": {Name: "n1"}, "n2": {Name: "n2"}, "n3": {Name: "n3"}}
	live := map[string]bool{"n1": true, "n2": true, "n3": true}
	eps := map[string]bool{"n1": true, "n2": true, "n3": true}
	var svcs []announce.Service
	for i := 0; i < 50; i++ {
		svcs = append(svcs, announce.Service{Key: string(rune('a'+i%26)) + "/" + string(rune('a'+i/26)), Pool: "p", EndpointNodes: eps,
			Addrs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})}})
	}
	first := map[string]string{}
	for _, a := range plan(announce.Inputs{Config: cfg, Nodes: nodes, Live: live, Services: svcs}) {
		first[a.Service] = a.Owner
	}
	rev := make([]announce.Service, len(svcs))
	for i := range svcs {
		rev[len(svcs)-1-i] = svcs[i]
	}
	for _, a := range plan(announce.Inputs{Config: cfg, Nodes: nodes, Live: live, Services: rev}) {
		if first[a.Service] != a.Owner {
			t.Errorf("%s: owner %s then %s", a.Service, first[a.Service], a.Owner)
		}
	}
}

// TestPlanPreferred: preferredNodeSelectors elect, for every address, the
// eligible node whose matching preferences weigh the most (summed over the
// advertisements that apply and select the node); the hash decides among
// equals, and a dead preferred node hands over to the next.
func TestPlanPreferred(t *testing.T) {
	sel := func(s string) labels.Selector { return parseSelector(t, s) }
	pref := func(w int32, s string) config.PreferredNode { return config.PreferredNode{Weight: w, Selector: sel(s)} }
	ad := func(name, nodeSel string, prefs ...config.PreferredNode) *config.L2Advertisement {
		a := &config.L2Advertisement{Name: name, Pools: []string{"p"}, PreferredNodes: prefs}
		if nodeSel != "" {
			a.NodeSelectors = []labels.Selector{sel(nodeSel)}
		}
		return a
	}
	nodes := map[string]announce.Node{
		"n1": {Name: "n1", Labels: map[string]string{"rack": "a", "disk": "ssd"}},
		"n2": {Name: "n2", Labels: map[string]string{"rack": "a"}},
		"n3": {Name: "n3", Labels: map[string]string{"rack": "b", "disk": "ssd"}},
		"n4": {Name: "n4", Labels: map[string]string{"rack": "b", announce.LabelExcludeLB: ""}},
	}
	allLive := map[string]bool{"n1": true, "n2": true, "n3": true, "n4": true}
	tests := []struct {
		name string
		ads  []*config.L2Advertisement
		live map[string]bool
		// owners allowed for every address
		want []string
	}{
		{"one preferred node", []*config.L2Advertisement{ad("all", "", pref(50, "rack=b"))}, allLive, []string{"n3"}},
		{"weights add up", []*config.L2Advertisement{ad("all", "", pref(30, "rack=a"), pref(20, "disk=ssd"))}, allLive, []string{"n1"}},
		{"heavier preference wins", []*config.L2Advertisement{ad("all", "", pref(10, "rack=a"), pref(60, "rack=b"))}, allLive, []string{"n3"}},
		{"summed over advertisements", []*config.L2Advertisement{
			ad("x", "", pref(40, "rack=a")), ad("y", "", pref(30, "disk=ssd"), pref(20, "rack=b"))}, allLive, []string{"n1"}},
		{"no weight from an advertisement that does not select the node", []*config.L2Advertisement{
			ad("rack-a", "rack=a", pref(90, "rack=b")), ad("all", "", pref(10, "rack=a"))}, allLive, []string{"n1", "n2"}},
		{"an excluded node cannot be preferred", []*config.L2Advertisement{ad("all", "", pref(50, "rack=b"), pref(10, "rack=a"))},
			allLive, []string{"n3"}},
		{"the preferred node dies: the next by weight", []*config.L2Advertisement{ad("all", "", pref(50, "rack=b"), pref(10, "disk=ssd"))},
			map[string]bool{"n1": true, "n2": true, "n4": true}, []string{"n1"}},
		{"no preference matches: the hash alone", []*config.L2Advertisement{ad("all", "", pref(50, "rack=z"))}, allLive, []string{"n1", "n2", "n3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eps := map[string]bool{"n1": true, "n2": true, "n3": true, "n4": true}
			var svcs []announce.Service
			// Enough addresses that the hash alone would elect each node
			// for some of them.
			for i := range 30 {
				svcs = append(svcs, announce.Service{Key: fmt.Sprintf("a/s%d", i), Pool: "p", EndpointNodes: eps,
					Addrs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})}})
			}
			owners := map[string]int{}
			for _, a := range plan(announce.Inputs{Config: &config.Config{L2Advertisements: tc.ads}, Nodes: nodes, Live: tc.live, Services: svcs}) {
				owners[a.Owner]++
			}
			for o := range owners {
				if !slices.Contains(tc.want, o) {
					t.Errorf("owners %v, want only %v", owners, tc.want)
					break
				}
			}
		})
	}
}

// plan is the Layer 2 election, as the loop runs it.
func plan(in announce.Inputs) []announce.Announcement { return announce.Elect(in, Elector{}) }

// interfacesOf are the interfaces a's advertisements name for its address.
func interfacesOf(in announce.Inputs, a announce.Announcement) []string {
	var group []announce.Service
	for _, s := range in.Services {
		if Elector.ElectionKey(Elector{}, s) == a.Key {
			group = append(group, s)
		}
	}
	return interfaces(in, group)
}
