package bgp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// Unnumbered sessions (Peer.Interface) run over the IPv6 link-local
// addresses of a point-to-point link, with no address configured for the
// peer. The peer's address is learned from the kernel's neighbour table,
// which has exactly one link-local entry on such a link once anything was
// exchanged; GoBGP then dials it like any numbered peer (the zone names the
// interface).
//
// The node makes itself known on the link with a Router Advertisement
// that carries its link-layer address and a router lifetime of 0: routers
// peering by interface (FRR's "neighbor IFACE interface", whose zebra
// learns peers from RAs) learn the node's link-local address from it, and
// hosts do not take the node for a default router. An echo request to
// all-nodes makes the peer resolve us, so its address lands in our
// neighbour table.

// errNoNeighbour means the link has no link-local neighbour (yet).
var errNoNeighbour = errors.New("no IPv6 link-local neighbour on the link yet")

// linkLocalNeighbour returns the only link-local neighbour on ifname, with
// ifname as its zone.
func linkLocalNeighbour(ifname string) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", ifname, err)
	}
	neighs, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: neighbours: %w", ifname, err)
	}
	own, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: addresses: %w", ifname, err)
	}
	var found []netip.Addr
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || !a.IsLinkLocalUnicast() || n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE|netlink.NUD_NOARP) != 0 {
			continue
		}
		mine := false
		for _, o := range own {
			mine = mine || o.IP.Equal(n.IP)
		}
		if !mine {
			found = append(found, a)
		}
	}
	return onlyNeighbour(ifname, found)
}

// onlyNeighbour picks the link's one neighbour.
func onlyNeighbour(ifname string, found []netip.Addr) (netip.Addr, error) {
	switch len(found) {
	case 0:
		return netip.Addr{}, fmt.Errorf("interface %s: %w", ifname, errNoNeighbour)
	case 1:
		return found[0].WithZone(ifname), nil
	default:
		return netip.Addr{}, fmt.Errorf("interface %s: %d IPv6 link-local neighbours (%v); unnumbered BGP needs a point-to-point link with the router alone on it",
			ifname, len(found), found)
	}
}

// announceOnLink sends a Router Advertisement (lifetime 0, with the
// link-layer address) and an echo request to all-nodes on ifname.
func announceOnLink(ifname string) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return fmt.Errorf("interface %s: icmpv6 socket: %w", ifname, err)
	}
	defer c.Close()
	pc := c.IPv6PacketConn()
	// RFC 4861 receivers drop RAs with any other hop limit.
	if err := pc.SetMulticastHopLimit(255); err != nil {
		return fmt.Errorf("interface %s: hop limit: %w", ifname, err)
	}
	if err := pc.SetMulticastInterface(ifi); err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	dst := &net.IPAddr{IP: net.IPv6linklocalallnodes, Zone: ifname}
	for _, m := range []icmp.Message{
		{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: routerAdvertisement(ifi.HardwareAddr)}},
		{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 0x4852, Seq: 1}},
	} {
		b, err := m.Marshal(nil) // the kernel fills in the ICMPv6 checksum
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifname, err)
		}
		if _, err := pc.WriteTo(b, nil, dst); err != nil {
			return fmt.Errorf("interface %s: send %v: %w", ifname, m.Type, err)
		}
	}
	return nil
}

// routerAdvertisement is the body of an RA after the ICMPv6 header (RFC
// 4861 §4.2): no hop limit advice, no flags, router lifetime 0 (not a
// default router), no reachable or retransmit times, and the source
// link-layer address option.
func routerAdvertisement(mac net.HardwareAddr) []byte {
	b := make([]byte, 12, 12+8)
	if len(mac) == 6 {
		b = append(b, 1, 1) // option type 1, length 1 (8 bytes)
		b = append(b, mac...)
	}
	return b
}
