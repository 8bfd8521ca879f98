package speaker

import (
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSelectInterfaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	up := func(name string, prefixes ...string) Iface {
		i := Iface{Name: name, Up: true, Carrier: true}
		for _, p := range prefixes {
			i.Prefixes = append(i.Prefixes, pfx(p))
		}
		return i
	}
	eth0 := up("eth0", "192.0.2.11/24", "2001:db8::11/64")
	wlan0 := up("wlan0", "192.0.2.12/24") // seed 001: wireless on the same LAN
	eth1 := up("eth1", "198.51.100.11/24")
	eth1.DefaultRoute4 = true
	eth1.DefaultRoute6 = true
	noCarrier := up("eth2", "203.0.113.11/24")
	noCarrier.Carrier = false
	slave := up("eno1", "203.0.113.0/24")
	slave.Enslaved = true
	ipvs := up("kube-ipvs0", "192.0.2.200/32")
	all := []Iface{eth0, wlan0, eth1, noCarrier, slave, ipvs}
	tests := []struct {
		name  string
		addr  string
		named []string
		want  string
	}{
		{"subnet match, wlan0 excluded", "192.0.2.200", nil, "eth0"},
		{"IPv6 subnet match", "2001:db8::200", nil, "eth0"},
		{"no subnet: default route", "203.0.113.50", nil, "eth1"},
		{"IPv6 no subnet: default route", "2001:db8:1::1", nil, "eth1"},
		{"named wlan0 is honoured", "192.0.2.200", []string{"wlan0"}, "wlan0"},
		{"named but missing", "192.0.2.200", []string{"eth9"}, ""},
		{"named without carrier", "192.0.2.200", []string{"eth2"}, ""},
		{"named several", "192.0.2.200", []string{"eth1", "eth0"}, "eth0,eth1"},
		{"enslaved never", "203.0.113.5", []string{"eno1"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			for _, i := range SelectInterfaces(netip.MustParseAddr(tc.addr), all, tc.named) {
				names = append(names, i.Name)
			}
			if got := strings.Join(names, ","); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExcluded(t *testing.T) {
	for name, want := range map[string]bool{
		"eth0": false, "enp3s0": false, "br0": false, "bond0": false, "ens18": false,
		"wlan0": true, "wlp2s0": true, "lo": true, "cni0": true, "flannel.1": true, "cali123": true,
		"cilium_host": true, "kube-ipvs0": true, "docker0": true, "veth1234": true, "lxc00aa": true,
	} {
		if got := Excluded(name); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestDataPlaneUp(t *testing.T) {
	pfx := netip.MustParsePrefix
	eth0 := Iface{Name: "eth0", Up: true, Carrier: true, Prefixes: []netip.Prefix{pfx("192.0.2.11/24")}}
	cut := eth0
	cut.Carrier = false
	ipvs := Iface{Name: "kube-ipvs0", Up: true, Carrier: true, Prefixes: []netip.Prefix{pfx("192.0.2.200/32")}}
	lo := Iface{Name: "lo", Up: true, Carrier: true, Prefixes: []netip.Prefix{pfx("127.0.0.1/8")}}
	bare := Iface{Name: "eth1", Up: true, Carrier: true}
	tests := []struct {
		name   string
		ifaces []Iface
		want   bool
	}{
		{"eth0 up", []Iface{lo, eth0, ipvs}, true},
		{"eth0 without carrier; only virtual ones left", []Iface{lo, cut, ipvs}, false},
		{"an up interface without address does not count", []Iface{lo, cut, bare}, false},
	}
	for _, tc := range tests {
		if got := dataPlaneUp(tc.ifaces); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPickNextHop(t *testing.T) {
	a := func(s string, flags int) ifaceAddr { return ifaceAddr{netip.MustParseAddr(s), flags} }
	tests := []struct {
		name  string
		addrs []ifaceAddr
		want4 bool
		want  string
	}{
		{"first global IPv6", []ifaceAddr{a("fe80::1", 0), a("2001:db8::5", 0), a("2001:db8::6", 0)}, false, "2001:db8::5"},
		{"tentative and deprecated skipped", []ifaceAddr{a("2001:db8::5", unix.IFA_F_TENTATIVE), a("2001:db8::6", unix.IFA_F_DEPRECATED), a("2001:db8::7", 0)}, false, "2001:db8::7"},
		{"only link-local: none", []ifaceAddr{a("fe80::1", 0)}, false, "invalid IP"},
		{"IPv4", []ifaceAddr{a("2001:db8::5", 0), a("192.0.2.11", 0)}, true, "192.0.2.11"},
		{"no IPv4", []ifaceAddr{a("2001:db8::5", 0)}, true, "invalid IP"},
	}
	for _, tt := range tests {
		if got := pickNextHop(tt.addrs, tt.want4); got.String() != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}
