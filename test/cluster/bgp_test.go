package cluster

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/lab"
)

// TestChartBGPECMP installs the chart with no configuration, applies the
// BGP configuration afterwards with kubectl (as seeds 002 and 004 do), and
// checks that the lab's FRR router learns the Service from all three
// speaker Pods and that requests from behind the router reach backend Pods
// on all three nodes.
func TestChartBGPECMP(t *testing.T) {
	l := startCluster(t, 3, func(o *lab.Options) { o.Router = true })
	helm(t, l, "install", "{}\n")
	if err := l.Apply(ctxT(t, time.Minute), l.RouterBGPConfig()); err != nil {
		t.Fatal(err)
	}
	// Local policy: each next hop answers from its own Pod, so the spread
	// of answering nodes is the spread of the router's ECMP.
	addr := backends(t, l, "web", corev1.ServiceExternalTrafficPolicyLocal)
	hops, err := l.WaitRouterRoutes(ctxT(t, time.Minute), netip.PrefixFrom(addr, 32), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("router: %s via %v", addr, hops)
	if err := l.WaitKubeProxy(ctxT(t, time.Minute), addr); err != nil {
		t.Fatal(err)
	}
	spread, err := l.SpreadFromRemote(ctxT(t, time.Minute), addr, 80, 60)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]int{}
	for body, n := range spread {
		a, ok := parseAnswer(body)
		if !ok {
			t.Fatalf("answer %q is not a backend's", body)
		}
		nodes[a.node] += n
	}
	if len(nodes) != 3 {
		t.Fatalf("requests from the remote reached Pods on %d nodes, want 3: %v", len(nodes), nodes)
	}
	t.Logf("60 requests from the remote: %v", nodes)
}
