package speaker

import (
	"net/netip"
	"testing"

	"github.com/herald-lb/herald/internal/announce"
)

func TestDataPlaneUp(t *testing.T) {
	pfx := netip.MustParsePrefix
	eth0 := announce.Iface{Name: "eth0", Up: true, Carrier: true, Prefixes: []netip.Prefix{pfx("192.0.2.11/24")}}
	cut := eth0
	cut.Carrier = false
	ipvs := announce.Iface{Name: "kube-ipvs0", Up: true, Carrier: true, Prefixes: []netip.Prefix{pfx("192.0.2.200/32")}}
	lo := announce.Iface{Name: "lo", Up: true, Carrier: true, Prefixes: []netip.Prefix{pfx("127.0.0.1/8")}}
	bare := announce.Iface{Name: "eth1", Up: true, Carrier: true}
	tests := []struct {
		name   string
		ifaces []announce.Iface
		want   bool
	}{
		{"eth0 up", []announce.Iface{lo, eth0, ipvs}, true},
		{"eth0 without carrier; only virtual ones left", []announce.Iface{lo, cut, ipvs}, false},
		{"an up interface without address does not count", []announce.Iface{lo, cut, bare}, false},
	}
	for _, tc := range tests {
		if got := dataPlaneUp(tc.ifaces); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
