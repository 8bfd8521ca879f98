package lab

// The cloud topology (Options.PointToPoint) is how a cloud's servers reach
// the outside: each node has a point-to-point link of its own to the
// provider's router, and no layer 2 is shared with it.
//
//	hl<id>-nodeN    eth1 198.19.128.(2N+1)/31, 2001:db8:ff:N::2/64, routes to
//	                the remote subnet over it (the LAN stays, for the nodes'
//	                own traffic: a cloud's private network)
//	hl<id>-router   up-nodeN 198.19.128.(2N)/31, 2001:db8:ff:N::1/64, one per
//	                node; eth1 to the remote as in router.go; no port on the
//	                LAN and no FRR: nobody peers over BGP on such a cloud
//
// An address reaches a node only through a route the router holds for it
// (RouteVia, which a cloud API's stand-in calls when it moves a floating
// IP): whatever a node answers to ARP or NDP, the router never hears it.

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// uplinkOf is the name of node's link in the router's namespace.
func uplinkOf(node string) string { return "up-" + node }

// maxUplinks is how many nodes the uplinks' /24 has /31s for.
const maxUplinks = 127

// uplinkAddrs are the node's and the router's addresses on the point-to-
// point link of the node with index i (1 to maxUplinks): a /31 and a /64
// each. The /31s lie in 198.19.128.0/24, clear of the cluster lab's Pod
// ranges (198.18.0.0/16) and Service ranges (198.18.0.0/24, 198.19.0.0/24).
func uplinkAddrs(i int) (node, router [2]netip.Prefix) {
	v4 := func(b int) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 128, byte(b)}), 31) }
	v6 := func(h int) netip.Prefix {
		return netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:ff:%x::%d", i, h)), 64)
	}
	return [2]netip.Prefix{v4(2*i + 1), v6(2)}, [2]netip.Prefix{v4(2 * i), v6(1)}
}

// linkUplinks gives every node its point-to-point link to the router and
// routes the remote subnet over it. The router's namespace must exist,
// with forwarding on and duplicate address detection off.
func (l *Lab) linkUplinks() error {
	if len(l.nodes) > maxUplinks {
		return fmt.Errorf("the point-to-point topology has uplinks for %d nodes, not %d", maxUplinks, len(l.nodes))
	}
	for i, n := range l.nodes {
		node, router := uplinkAddrs(i + 1)
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: uplinkOf(n.Name)},
			PeerName:      "eth1",
			PeerNamespace: netlink.NsFd(int(n.ns)),
		}
		if err := l.router.nl.LinkAdd(veth); err != nil {
			return fmt.Errorf("%s: uplink veth: %w", n.Name, err)
		}
		// Strict ARP as on eth0; the IPv6 addresses survive a cut link
		// (CutLink), as the IPv4 ones do.
		if err := writeSysctls(n.ns, "net.ipv4.conf.eth1.arp_ignore", "1", "net.ipv4.conf.eth1.arp_announce", "2",
			"net.ipv6.conf.eth1.keep_addr_on_down", "1"); err != nil {
			return fmt.Errorf("%s: %w", n.Namespace, err)
		}
		if err := addrsUp(l.router.nl, uplinkOf(n.Name), router[0], router[1]); err != nil {
			return fmt.Errorf("%s: %w", l.router.Namespace, err)
		}
		if err := addrsUp(n.nl, "eth1", node[0], node[1]); err != nil {
			return fmt.Errorf("%s: %w", n.Namespace, err)
		}
		n.uplink = [2]netip.Addr{node[0].Addr(), node[1].Addr()}
		n.remoteVia = [2]netip.Addr{router[0].Addr(), router[1].Addr()}
		if err := n.routeRemote(); err != nil {
			return err
		}
	}
	return nil
}

// uplinkFor is the node's address, of addr's family, on its point-to-point
// link to the router: the next hop of the router's routes to the node.
// Invalid without Options.PointToPoint.
func (n *member) uplinkFor(addr netip.Addr) netip.Addr { return ofFamily(n.uplink, addr) }

// ofFamily is the address of pair (IPv4, IPv6) of addr's family.
func ofFamily(pair [2]netip.Addr, addr netip.Addr) netip.Addr {
	if addr.Is6() {
		return pair[1]
	}
	return pair[0]
}

// setUplink takes the node's end of its uplink down, or brings it back up
// with its routes, as a cut and a mended cable would; a no-op without
// Options.PointToPoint. The router's end stays up, so the router keeps its
// routes to the node: a cloud's network routes a floating IP to its
// server, dead or alive, until the API moves it.
func (l *Lab) setUplink(n *member, up bool) error {
	if !l.opts.PointToPoint {
		return nil
	}
	link, err := n.nl.LinkByName("eth1")
	if err == nil {
		if up {
			err = n.nl.LinkSetUp(link)
		} else {
			err = n.nl.LinkSetDown(link)
		}
	}
	if err != nil {
		return fmt.Errorf("uplink of %s: %w", n.Name, err)
	}
	if !up {
		return nil
	}
	if err := n.routeRemote(); err != nil {
		return err
	}
	// The cable is mended when both ends report it operationally up, with
	// no neighbour entry left from the cut: an address still being
	// resolved from then is asked for again only at the next probe, up to
	// a second later, while a fresh one is asked for at once.
	for _, end := range []struct {
		h    *netlink.Handle
		name string
	}{{n.nl, "eth1"}, {l.router.nl, uplinkOf(n.Name)}} {
		if err := waitOperUp(end.h, end.name, 5*time.Second); err != nil {
			return fmt.Errorf("uplink of %s: %w", n.Name, err)
		}
		if err := flushNeighbors(end.h, end.name); err != nil {
			return fmt.Errorf("uplink of %s: %w", n.Name, err)
		}
	}
	return nil
}

// flushNeighbors deletes the neighbour entries of link name.
func flushNeighbors(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	neighs, err := h.NeighList(link.Attrs().Index, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("%s: neighbours: %w", name, err)
	}
	for _, nb := range neighs {
		if err := h.NeighDel(&nb); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: delete neighbour %s: %w", name, nb.IP, err)
		}
	}
	return nil
}

// waitOperUp waits until link name reports operational state up.
func waitOperUp(h *netlink.Handle, name string, d time.Duration) error {
	for end := time.Now().Add(d); ; {
		link, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		if link.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s still %s after %v", name, link.Attrs().OperState, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// routeRemote routes the remote subnet from node n via the router: over
// the LAN, or over its uplink, whose routes go when it goes down.
func (n *member) routeRemote() error {
	for _, p := range remoteSubnets {
		via := ofFamily(n.remoteVia, p.Addr())
		if err := n.nl.RouteReplace(&netlink.Route{Dst: prefixNet(p), Gw: via.AsSlice()}); err != nil {
			return fmt.Errorf("%s: route %s via %s: %w", n.Namespace, p, via, err)
		}
	}
	return nil
}
