package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestFRRUnnumbered: a session over the link's IPv6 link-local addresses,
// on a link with no IPv4 address, with FRR peering by interface ("neighbor
// IFACE interface", which learns the node from its Router Advertisement)
// and Herald by interface too (learning the router from the neighbour
// table). Both families cross it with the node's link-local next hop; the
// router's kernel routes IPv4 via that IPv6 next hop (RFC 5549).
func TestFRRUnnumbered(t *testing.T) {
	l := newLab(t, frrBgpd, frrZebra, "vtysh")
	run(t, "ip", "-n", l.node, "addr", "del", "192.0.2.1/24", "dev", l.nodeIf)
	run(t, "ip", "-n", l.router, "addr", "del", "192.0.2.2/24", "dev", l.routerIf)
	f := startFRRZebra(t, l, frrConfig(64513, fmt.Sprintf(` neighbor %[1]s interface remote-as 64512
 address-family ipv4 unicast
  neighbor %[1]s activate
 exit-address-family
 address-family ipv6 unicast
  neighbor %[1]s activate
 exit-address-family
`, l.routerIf)))
	sp := l.startSpeaker(t, speakerConfig())
	sp.setPeers(Peer{Name: "u", Interface: l.nodeIf, Dynamic: DynamicExternal, DualStack: true})
	sp.setAds(Advertisement{Prefix: netip.MustParsePrefix("198.51.100.10/32")},
		Advertisement{Prefix: netip.MustParsePrefix("2001:db8:1::10/128")})
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := f.vtysh("show bgp neighbors")
			t.Logf("FRR neighbours:\n%s", tail(string(out), 3000))
			out, _ = f.vtysh("show bgp ipv6 unicast json")
			t.Logf("FRR ipv6: %s", tail(string(out), 2000))
		}
	})
	waitUp(t, sp, "u", 30*time.Second)
	if p, _ := sp.peer("u"); !p.Address.IsLinkLocalUnicast() || p.Address.Zone() != l.nodeIf {
		t.Errorf("peer address %s, want the router's link-local address on %s", p.Address, l.nodeIf)
	}
	for _, tt := range []struct{ family, prefix string }{
		{"-4", "198.51.100.10"},
		{"-6", "2001:db8:1::10"},
	} {
		eventually(t, 15*time.Second, tt.prefix+" in the router's kernel via the node's link-local address", func() string {
			out := run(t, "ip", "-n", l.router, tt.family, "route", "show", tt.prefix)
			if !strings.Contains(out, "fe80::") || !strings.Contains(out, "dev "+l.routerIf) {
				return fmt.Sprintf("ip %s route show %s: %q", tt.family, tt.prefix, out)
			}
			return ""
		})
	}
}
