package hetzner_test

import (
	"net/netip"
	"testing"

	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
)

// TestFloatingIPs: the project's floating IPs, each with its address or
// /64 and its server, in one request.
func TestFloatingIPs(t *testing.T) {
	e := newEnv(t, hcloudsim.Options{})
	e.sim.AddFloatingIP(7, "web", "203.0.113.10", 1)
	e.sim.AddFloatingIP(8, "web6", "2001:db8:1::/64", 0)
	fips, err := e.prov.FloatingIPs(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ prefix, server string }{
		"7": {"203.0.113.10/32", serverA},
		"8": {"2001:db8:1::/64", ""},
	}
	if len(fips) != len(want) {
		t.Fatalf("got %d floating IPs, want %d: %+v", len(fips), len(want), fips)
	}
	for _, f := range fips {
		w, ok := want[f.ID]
		if !ok || f.Prefix != netip.MustParsePrefix(w.prefix) || f.Server != w.server {
			t.Errorf("floating IP %+v, want %+v", f, w)
		}
	}
	if n := e.sim.Count("GET", "/floating_ips"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
