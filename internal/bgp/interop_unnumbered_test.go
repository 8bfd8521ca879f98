package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestFRRUnnumbered: a session over the link's IPv6 link-local addresses,
// with FRR peering by interface ("neighbor IFACE interface", which learns
// the node from its Router Advertisement) and Herald by interface too
// (learning the router from the neighbour table). Both families cross it:
// IPv6 prefixes with the node's link-local next hop, IPv4 ones with the
// node's IPv4 address on the link.
func TestFRRUnnumbered(t *testing.T) {
	l := newLab(t, frrBgpd, frrZebra, "vtysh")
	f := startFRRZebra(t, l, frrConfig(64513, fmt.Sprintf(` neighbor %[1]s interface remote-as 64512
 address-family ipv4 unicast
  neighbor %[1]s activate
 exit-address-family
 address-family ipv6 unicast
  neighbor %[1]s activate
 exit-address-family
`, l.routerIf)))
	sp := l.startSpeaker(t, speakerConfig())
	sp.setPeers(Peer{Name: "u", Interface: l.nodeIf, Dynamic: DynamicExternal, DualStack: true, OtherNextHop: nodeV4})
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
	for _, tt := range []struct{ afi, prefix, hop string }{
		{"ipv4", "198.51.100.10/32", nodeV4.String()},
		{"ipv6", "2001:db8:1::10/128", "fe80::"},
	} {
		eventually(t, 15*time.Second, tt.prefix+" at FRR", func() string {
			r, ok := f.route(t, tt.afi, tt.prefix)
			if !ok {
				return "absent"
			}
			for _, h := range r.Paths[0].Nexthops {
				if strings.HasPrefix(h.IP, tt.hop) {
					return ""
				}
			}
			return fmt.Sprintf("next hops %+v, want %s…", r.Paths[0].Nexthops, tt.hop)
		})
	}
}
