package announce

import (
	"net/netip"
	"slices"
	"testing"
)

// endpointElector elects, for a group, among the live nodes holding an
// endpoint of every Service of it, as the modes do for Local policy.
type endpointElector struct{}

func (endpointElector) ElectionKey(s Service) string { return s.Addrs[0].String() }

func (endpointElector) Candidates(in Inputs, group []Service) Candidates {
	nodes, why := EligibleForAll(group, func(s Service) (map[string]bool, string) {
		if len(s.EndpointNodes) == 0 {
			return nil, ReasonNoEndpoints
		}
		out := map[string]bool{}
		for n := range s.EndpointNodes {
			if in.Live[n] {
				out[n] = true
			}
		}
		return out, ""
	})
	return Candidates{Nodes: nodes, Why: why}
}

// TestElectServicesWithoutEndpoints: Services on one key share one owner,
// chosen among the nodes all of the Services with endpoints allow; a
// Service with none is announced by nobody and takes nothing from the
// others (a new Deployment's Service beside a served one, on a shared
// address or a floating /64).
func TestElectServicesWithoutEndpoints(t *testing.T) {
	eps := func(nodes ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range nodes {
			m[n] = true
		}
		return m
	}
	on := func(key string, endpoints map[string]bool) Service {
		return Service{Key: key, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.9")}, EndpointNodes: endpoints}
	}
	tests := []struct {
		name string
		svcs []Service
		want map[string][]string
		why  map[string]string
	}{
		{"both served: within both", []Service{on("a/x", eps("n1", "n2")), on("a/y", eps("n2", "n3"))},
			map[string][]string{"a/x": {"n2"}, "a/y": {"n2"}}, nil},
		{"one without endpoints: the other keeps its owner", []Service{on("a/x", eps("n1")), on("a/y", nil)},
			map[string][]string{"a/x": {"n1"}, "a/y": {""}}, map[string]string{"a/y": ReasonNoEndpoints}},
		{"an empty endpoint set is none", []Service{on("a/x", eps("n3")), on("a/y", eps())},
			map[string][]string{"a/x": {"n3"}, "a/y": {""}}, map[string]string{"a/y": ReasonNoEndpoints}},
		{"none has endpoints: nobody, and the mode says why", []Service{on("a/x", nil), on("a/y", nil)},
			map[string][]string{"a/x": {""}, "a/y": {""}}, map[string]string{"a/x": ReasonNoEndpoints, "a/y": ReasonNoEndpoints}},
		{"disjoint endpoints: nobody rather than two owners", []Service{on("a/x", eps("n1")), on("a/y", eps("n2"))},
			map[string][]string{"a/x": {""}, "a/y": {""}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := inputs([]string{"n1", "n2", "n3"}, tc.svcs...)
			got := Elect(in, endpointElector{})
			if len(got) != len(tc.svcs) {
				t.Fatalf("%d announcements for %d Services", len(got), len(tc.svcs))
			}
			for _, a := range got {
				if !slices.Contains(tc.want[a.Service], a.Owner) {
					t.Errorf("%s: owner %q, want one of %q", a.Service, a.Owner, tc.want[a.Service])
				}
				if why, ok := tc.why[a.Service]; ok && a.Reason != why {
					t.Errorf("%s: reason %q, want %q", a.Service, a.Reason, why)
				}
				if a.Owner == "" && a.Reason == "" {
					t.Errorf("%s: announced by nobody, with no reason", a.Service)
				}
			}
		})
	}
}

// incumbentElector elects among the live nodes, keeping the key with
// incumbent while it is one of them, weighted as given.
type incumbentElector struct {
	incumbent string
	weights   map[string]int
}

func (incumbentElector) ElectionKey(s Service) string { return s.Addrs[0].String() }

func (e incumbentElector) Candidates(in Inputs, _ []Service) Candidates {
	var nodes []string
	for n := range in.Live {
		if in.Live[n] {
			nodes = append(nodes, n)
		}
	}
	slices.Sort(nodes)
	return Candidates{Nodes: nodes, Weights: e.weights, Incumbent: e.incumbent}
}

// TestElectIncumbent: a key stays with the node holding it while that node
// is a candidate, so a node that joins or comes back moves nothing; once
// the holder is not a candidate, the plain election decides.
func TestElectIncumbent(t *testing.T) {
	all := []string{"n1", "n2", "n3", "n4"}
	svc := Service{Key: "a/x", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.9")}, EndpointNodes: map[string]bool{"n1": true}}
	winner := func(live []string, weights map[string]int) string {
		got := Elect(inputs(live, svc), incumbentElector{weights: weights})
		return got[0].Owner
	}
	hash := winner(all, nil)
	other := all[(slices.Index(all, hash)+1)%len(all)] // a node the hash does not choose
	without := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == other })
	weighted := map[string]int{hash: 100}
	tests := []struct {
		name      string
		live      []string
		incumbent string
		weights   map[string]int
		want      string
	}{
		{"no holder: the hash", all, "", nil, hash},
		{"the holder keeps it against the hash", all, other, nil, other},
		{"the holder keeps it against the weights", all, other, weighted, other},
		{"a holder that is not a candidate: the hash", without, other, nil, winner(without, nil)},
		{"a holder unknown to the cluster: the hash", all, "gone", nil, hash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Elect(inputs(tc.live, svc), incumbentElector{incumbent: tc.incumbent, weights: tc.weights})
			if len(got) != 1 || got[0].Owner != tc.want {
				t.Fatalf("got %+v, want owner %s", got, tc.want)
			}
		})
	}
}
