package announce

import (
	"net/netip"
	"strings"
	"testing"
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
