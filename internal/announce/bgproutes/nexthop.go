package bgproutes

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

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
