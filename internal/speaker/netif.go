package speaker

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// readInterfaces lists the node's interfaces with what selection needs,
// from the kernel through netlink.
func readInterfaces() ([]Iface, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	def4, def6 := defaultRouteLinks()
	out := make([]Iface, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		i := Iface{
			Name:          a.Name,
			Index:         a.Index,
			Up:            a.Flags&net.FlagUp != 0,
			Carrier:       a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown,
			Enslaved:      a.MasterIndex != 0,
			NoARP:         a.RawFlags&unix.IFF_NOARP != 0,
			DefaultRoute4: def4[a.Index],
			DefaultRoute6: def6[a.Index],
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if ad.IPNet == nil {
				continue
			}
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok {
				continue
			}
			ones, _ := ad.Mask.Size()
			ip = ip.Unmap()
			if ip.IsLinkLocalUnicast() {
				continue
			}
			out2 := netip.PrefixFrom(ip, ones).Masked()
			i.Prefixes = append(i.Prefixes, out2)
		}
		out = append(out, i)
	}
	return out, nil
}

func defaultRouteLinks() (v4, v6 map[int]bool) {
	v4, v6 = map[int]bool{}, map[int]bool{}
	for fam, m := range map[int]map[int]bool{netlink.FAMILY_V4: v4, netlink.FAMILY_V6: v6} {
		routes, err := netlink.RouteList(nil, fam)
		if err != nil {
			continue
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				if r.LinkIndex > 0 {
					m[r.LinkIndex] = true
				}
				for _, nh := range r.MultiPath {
					m[nh.LinkIndex] = true
				}
			}
		}
	}
	return v4, v6
}

// otherFamilyNextHop returns this node's address of the other family than
// peer's, on the interface the kernel reaches peer through: the next hop
// for that family's prefixes on a dual-stack session. It is invalid when
// there is none.
func otherFamilyNextHop(peer netip.Addr) (netip.Addr, error) {
	routes, err := netlink.RouteGet(peer.AsSlice())
	if err != nil || len(routes) == 0 {
		return netip.Addr{}, fmt.Errorf("route to %s: %v", peer, err)
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface toward %s: %w", peer, err)
	}
	want4 := !peer.Unmap().Is4()
	fam := netlink.FAMILY_V6
	if want4 {
		fam = netlink.FAMILY_V4
	}
	addrs, err := netlink.AddrList(link, fam)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", link.Attrs().Name, err)
	}
	var cands []ifaceAddr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			cands = append(cands, ifaceAddr{ip.Unmap(), a.Flags})
		}
	}
	return pickNextHop(cands, want4), nil
}

// ifaceAddr is an interface address and its IFA_F_* flags.
type ifaceAddr struct {
	addr  netip.Addr
	flags int
}

// pickNextHop returns the first usable global unicast address of the
// family: not link-local (it would need the interface to be meaningful),
// not tentative, failed or deprecated.
func pickNextHop(addrs []ifaceAddr, want4 bool) netip.Addr {
	const unusable = unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED | unix.IFA_F_DEPRECATED
	for _, a := range addrs {
		if a.addr.Is4() == want4 && a.addr.IsGlobalUnicast() && a.flags&unusable == 0 {
			return a.addr
		}
	}
	return netip.Addr{}
}
