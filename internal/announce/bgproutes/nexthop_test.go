package bgproutes

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

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
