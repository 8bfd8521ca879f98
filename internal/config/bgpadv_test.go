package config

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/ipam"
)

// TestBGPAdvertisementSetsScale checks that the rules between
// advertisements are not quadratic in their number: the webhook runs them
// twice per request, and a slow one blocks every metallb.io write. The
// bounds are generous (linear work takes a small fraction of them); the old
// pairwise check took minutes for each case.
func TestBGPAdvertisementSetsScale(t *testing.T) {
	distinct := func(n int) Resources {
		r := Resources{Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24", "2001:db8::/120")}}
		for i := range n {
			r.BGPAdvertisements = append(r.BGPAdvertisements, bgpAdv(fmt.Sprintf("a%05d", i), v1beta1.BGPAdvertisementSpec{
				IPAddressPools: []string{"p"}, Communities: []string{fmt.Sprintf("65000:%d", i%65536), fmt.Sprintf("65001:%d", i/65536)}}))
		}
		return r
	}
	// One advertisement per node, each with its own localPref: a common
	// way to prefer some nodes, and one that must be compared pairwise.
	perNode := func(n int) Resources {
		r := Resources{Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")}}
		for i := range n {
			host := fmt.Sprintf("node-%05d", i)
			r.Nodes = append(r.Nodes, node(host, map[string]string{"kubernetes.io/hostname": host}))
			r.BGPAdvertisements = append(r.BGPAdvertisements, bgpAdv(host, v1beta1.BGPAdvertisementSpec{
				LocalPref: uint32(100 + i), NodeSelectors: []metav1.LabelSelector{sel("kubernetes.io/hostname", host)}}))
		}
		return r
	}
	tests := []struct {
		name  string
		res   Resources
		limit time.Duration
	}{
		{"10,000 distinct advertisements of one pool", distinct(10000), 2 * time.Second},
		{"1,000 per-node advertisements with their own localPref", perNode(1000), 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.Namespace = testNS
			done := make(chan Result, 1)
			start := time.Now()
			go func() { done <- Validate(tc.res) }()
			select {
			case res := <-done:
				if len(res.Problems) > 0 {
					t.Fatalf("problems: %v", res.Problems[:min(len(res.Problems), 5)])
				}
				t.Logf("validated in %s", time.Since(start))
			case <-time.After(tc.limit):
				// Fail at the bound; the validation left running ends
				// with the test binary.
				t.Fatalf("validation still running after %s", tc.limit)
			}
		})
	}
}

// TestBGPAdvertisementSetsModel compares the rules between advertisements
// with a direct reading of the documented rule, pair by pair, on random
// small sets: the same pairs must be reported, with the same pool.
func TestBGPAdvertisementSetsModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 6))
	pools := []v1beta1.IPAddressPool{pool("v4", "192.0.2.0/24"), pool("v6", "2001:db8::/120"), pool("dual", "198.51.100.0/24", "2001:db8:1::/120")}
	nodes := []corev1.Node{node("n1", map[string]string{"rack": "a"}), node("n2", map[string]string{"rack": "b", "zone": "z"}), node("n3", map[string]string{"zone": "z"})}
	pick := func(from []string) []string {
		var out []string
		for _, s := range from {
			if rng.IntN(3) == 0 {
				out = append(out, s)
			}
		}
		return out
	}
	nodeSels := [][]metav1.LabelSelector{nil, {sel("rack", "a")}, {sel("rack", "b")}, {sel("zone", "z")}, {sel("rack", "c")}}
	for round := range 300 {
		r := Resources{Namespace: testNS, Pools: pools, Nodes: nodes}
		for i := range 2 + rng.IntN(10) {
			s := v1beta1.BGPAdvertisementSpec{
				IPAddressPools: pick([]string{"v4", "v6", "dual"}),
				LocalPref:      uint32(rng.IntN(3) * 100),
				Peers:          pick([]string{"x", "y", "z"}),
				NodeSelectors:  nodeSels[rng.IntN(len(nodeSels))],
			}
			if rng.IntN(3) == 0 {
				s.AggregationLength = i32(int32(24 + rng.IntN(2)*8))
			}
			if rng.IntN(3) == 0 {
				s.AggregationLengthV6 = i32(int32(120 + rng.IntN(2)*8))
			}
			if rng.IntN(8) == 0 && s.AggregationLength == nil && s.AggregationLengthV6 == nil {
				s.ServiceSelectors = []metav1.LabelSelector{sel("app", "web")}
			}
			r.BGPAdvertisements = append(r.BGPAdvertisements, bgpAdv(fmt.Sprintf("a%02d", i), s))
		}
		res := Validate(r)
		var got []string
		for _, p := range res.Problems {
			if p.Kind == KindBGPAdvertisement && (p.Field == "spec.localPref" || p.Field == "spec") {
				got = append(got, p.Name+": "+p.Message)
			}
		}
		want := modelAdvertisementSets(t, r)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: got\n%q\nwant\n%q", round, got, want)
		}
	}
}

// modelAdvertisementSets applies the rules between advertisements as
// docs/configuration.md states them, pair by pair: an advertisement
// identical to an earlier one is reported once, against the first, and
// takes no further part (the first carries its meaning); two
// that announce a pool with the same aggregation length for a family the
// pool has, to overlapping peers from overlapping nodes, without service
// selectors, must share a localPref, reported on the later one with the
// first such pool by name.
func modelAdvertisementSets(t *testing.T, r Resources) []string {
	t.Helper()
	cfg := Validate(Resources{Namespace: testNS, Pools: r.Pools}).Config
	// Build each advertisement alone: the set rules are what is tested.
	var ads []*BGPAdvertisement
	for _, in := range r.BGPAdvertisements {
		one := Validate(Resources{Namespace: testNS, Pools: r.Pools, Nodes: r.Nodes, BGPAdvertisements: []v1beta1.BGPAdvertisement{in}})
		if one.Config == nil {
			t.Fatalf("advertisement %s alone: %v", in.Name, one.Problems)
		}
		ads = append(ads, one.Config.BGPAdvertisements[0])
	}
	family := func(pool string, v6 bool) bool {
		return slices.ContainsFunc(cfg.Pool(pool).Ranges, func(rg ipam.Range) bool { return rg.First.Is6() == v6 })
	}
	overlapNodes := func(x, y []metav1.LabelSelector) bool {
		if len(x) == 0 || len(y) == 0 {
			return true
		}
		for _, n := range r.Nodes {
			in := func(ss []metav1.LabelSelector) bool {
				return slices.ContainsFunc(ss, func(s metav1.LabelSelector) bool {
					for k, v := range s.MatchLabels {
						if n.Labels[k] != v {
							return false
						}
					}
					return true
				})
			}
			if in(x) && in(y) {
				return true
			}
		}
		return slices.ContainsFunc(x, func(s metav1.LabelSelector) bool {
			return slices.ContainsFunc(y, func(u metav1.LabelSelector) bool { return fmt.Sprint(s) == fmt.Sprint(u) })
		})
	}
	overlapPeers := func(x, y []string) bool {
		return len(x) == 0 || len(y) == 0 || slices.ContainsFunc(x, func(s string) bool { return slices.Contains(y, s) })
	}
	var out []string
	identical := map[int]bool{}
	for j, q := range ads {
		qs := r.BGPAdvertisements[j].Spec
		for i, p := range ads[:j] {
			if !identical[i] && adKey(p) == adKey(q) {
				out = append(out, fmt.Sprintf("%s: identical to BGPAdvertisement %q; remove one of them", q.Name, p.Name))
				identical[j] = true
				break
			}
		}
		if identical[j] {
			continue
		}
		for i, p := range ads[:j] {
			ps := r.BGPAdvertisements[i].Spec
			if identical[i] || p.LocalPref == q.LocalPref || len(ps.ServiceSelectors) > 0 || len(qs.ServiceSelectors) > 0 ||
				!overlapPeers(ps.Peers, qs.Peers) || !overlapNodes(ps.NodeSelectors, qs.NodeSelectors) {
				continue
			}
			for _, name := range q.Pools {
				if !slices.Contains(p.Pools, name) {
					continue
				}
				if (family(name, false) && p.AggregationLength == q.AggregationLength) || (family(name, true) && p.AggregationLengthV6 == q.AggregationLengthV6) {
					out = append(out, fmt.Sprintf("%s: localPref %d differs from BGPAdvertisement %q's %d, but both announce pool %q with the same aggregation length "+
						"to the same peers from the same nodes, and a route carries one LOCAL_PREF; use the same localPref, "+
						"or separate them by peers, nodeSelectors or aggregation length", q.Name, q.LocalPref, p.Name, p.LocalPref, name))
					break
				}
			}
		}
	}
	return out
}
