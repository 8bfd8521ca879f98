package speaker

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/herald-lb/herald/internal/announce"
)

// readInterfaces lists the node's interfaces with what selection needs,
// from the kernel through netlink.
func readInterfaces() ([]announce.Iface, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	def4, def6 := defaultRouteLinks()
	out := make([]announce.Iface, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		i := announce.Iface{
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
