package announce

import (
	"net/netip"
	"path"
	"sort"
)

// Iface is a network interface as interface selection sees it.
type Iface struct {
	Name     string
	Index    int
	Up       bool // administratively up
	Carrier  bool // the link is up (lower layer)
	Enslaved bool // a member of a bond or bridge: its master answers
	NoARP    bool
	Prefixes []netip.Prefix
	// DefaultRoute4/6: the interface carries the default route of that
	// family.
	DefaultRoute4, DefaultRoute6 bool
}

// excludedPatterns are interfaces never used unless an L2Advertisement names
// them: wireless (answering ARP there needs promiscuous mode and usually
// means a second path to the LAN, seed 001's wlan0), loopback, and the
// virtual interfaces of CNIs, kube-proxy and container runtimes.
var excludedPatterns = []string{
	"wl*", "lo", "cni*", "flannel*", "cali*", "cilium_*", "kube-ipvs*", "docker*", "veth*",
	"cbr*", "dummy*", "virbr*", "lxcbr*", "lxc*", "tunl*", "nodelocaldns*", "vxlan*", "genev*",
}

// Excluded reports whether name matches a pattern of interfaces that are
// never chosen by default.
func Excluded(name string) bool {
	for _, p := range excludedPatterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// SelectInterfaces chooses where to answer for addr. With named interfaces
// (L2Advertisement.interfaces), those of them that exist and are usable,
// whatever their name. Otherwise the usable, non-excluded interfaces whose
// subnet contains addr; when none does, the one carrying the default route
// of addr's family. Usable means up with carrier, not enslaved, and not
// NOARP: an interface without carrier is given up at once, so the address
// moves to a node whose data plane works.
func SelectInterfaces(addr netip.Addr, ifaces []Iface, named []string) []Iface {
	usable := func(i Iface) bool { return i.Up && i.Carrier && !i.Enslaved && !i.NoARP }
	var out []Iface
	if len(named) > 0 {
		want := map[string]bool{}
		for _, n := range named {
			want[n] = true
		}
		for _, i := range ifaces {
			if want[i.Name] && usable(i) {
				out = append(out, i)
			}
		}
		return sorted(out)
	}
	for _, i := range ifaces {
		if !usable(i) || Excluded(i.Name) {
			continue
		}
		for _, p := range i.Prefixes {
			if p.Contains(addr) {
				out = append(out, i)
				break
			}
		}
	}
	if len(out) > 0 {
		return sorted(out)
	}
	for _, i := range ifaces {
		if !usable(i) || Excluded(i.Name) {
			continue
		}
		if (addr.Is4() && i.DefaultRoute4) || (addr.Is6() && i.DefaultRoute6) {
			out = append(out, i)
		}
	}
	return sorted(out)
}

func sorted(in []Iface) []Iface {
	sort.Slice(in, func(a, b int) bool { return in[a].Name < in[b].Name })
	return in
}
