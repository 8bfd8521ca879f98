package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/lab"
)

// floating64 is an IPv6 floating IP: on Hetzner a whole /64, routed to one
// server.
var floating64 = netip.MustParsePrefix("2001:db8:f1::/64")

const cloud6Config = cloudSecret + `---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: floating6
  namespace: metallb-system
spec:
  addresses:
  - 2001:db8:f1::10-2001:db8:f1::11
---
apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata:
  name: hetzner6
  namespace: metallb-system
spec:
  ipAddressPools: [floating6]
  provider: hetzner
  tokenSecretRef:
    name: hcloud
`

// TestCloudFloatingIPv6: two Services with addresses in one floating /64
// have one owner, which assigns the /64 to its server once; both are
// reached there from the remote subnet, and both move together, with one
// more assign, when the owner dies. The second Service comes without
// endpoints at first, as a new Deployment's does: it must take nothing
// from the first (CI saw the owner drop the /64 mid-assign and take it up
// again, three assign requests instead of one).
func TestCloudFloatingIPv6(t *testing.T) {
	cl := startCloudLab(t, 3, map[int64]netip.Prefix{8: floating64})
	ctx := ctxT(t, 4*time.Minute)
	cl.setProviderIDs(ctx, t, 1, 2, 3)
	if err := cl.Apply(ctx, cloud6Config); err != nil {
		t.Fatal(err)
	}
	names := []string{"v6-a", "v6-b"}
	addrs := make([]netip.Addr, 2)
	addrs[0] = floatingAddr(t, service(t, cl.Lab, lab.Service{Name: names[0], Families: []corev1.IPFamily{corev1.IPv6Protocol}}))
	var server int64
	eventually(t, "the /64 assigned to a server", time.Minute, func() (bool, string) {
		server = cl.sim.Assignment(8)
		return server != 0, "unassigned"
	})
	owner := fmt.Sprintf("node%d", server)
	cl.waitStatus(ctx, t, names[0], owner, server)

	// v6-b gets an address in the /64 and no endpoint yet.
	addrs[1] = floatingAddr(t, service(t, cl.Lab, lab.Service{Name: names[1], Families: []corev1.IPFamily{corev1.IPv6Protocol},
		EndpointNodes: []string{}}))
	n := cl.watchOwner(ctx, t, 8, server, names[0], "v6-b without endpoints", 3*time.Second)
	t.Logf("v6-b without endpoints: %d samples, the lease, the status of v6-a and the /64 kept by %s", n, owner)
	if err := cl.SetEndpoints(ctx, "default", names[1], "node1", "node2", "node3"); err != nil {
		t.Fatal(err)
	}

	check := func(phase string) {
		t.Helper()
		for i, a := range addrs {
			if got := remoteUntil(t, cl.Lab, a); got != owner {
				t.Fatalf("%s: %s was answered by %s, want %s, which holds the /64", phase, a, got, owner)
			}
			cl.waitStatus(ctx, t, names[i], owner, server)
		}
	}
	check("assigned")
	if n := cl.sim.Count("POST", "/floating_ips/8/actions/assign"); n != 1 {
		t.Errorf("%d assign requests for two Services in one /64, want 1", n)
	}

	killed := time.Now()
	if err := cl.KillSpeaker(owner); err != nil {
		t.Fatal(err)
	}
	if err := cl.CutLink(owner); err != nil {
		t.Fatal(err)
	}
	server = cl.waitMoved(t, 8, server, 30*time.Second)
	owner = fmt.Sprintf("node%d", server)
	t.Logf("the /64 moved to server %d %s after the kill", server, time.Since(killed).Round(time.Millisecond))
	check("after the move")
	if n := cl.sim.Count("POST", "/floating_ips/8/actions/assign"); n != 2 {
		t.Errorf("%d assign requests, want 2: both Services move with one", n)
	}
}

func floatingAddr(t *testing.T, got []netip.Addr) netip.Addr {
	t.Helper()
	if !floating64.Contains(got[0]) {
		t.Fatalf("got %v, outside the floating %s", got, floating64)
	}
	return got[0]
}
