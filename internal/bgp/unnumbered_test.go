package bgp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestOnlyNeighbour(t *testing.T) {
	a, b := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::2")
	tests := []struct {
		name    string
		found   []netip.Addr
		want    string
		wantErr string
	}{
		{"none yet", nil, "", "no IPv6 link-local neighbour"},
		{"one", []netip.Addr{a}, "fe80::1%eth1", ""},
		{"a LAN, not a point-to-point link", []netip.Addr{a, b}, "", "2 IPv6 link-local neighbours"},
	}
	for _, tt := range tests {
		got, err := onlyNeighbour("eth1", tt.found)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("%s: got %v, %v; want %s", tt.name, got, err, tt.want)
		}
	}
	if _, err := onlyNeighbour("eth1", nil); !errors.Is(err, errNoNeighbour) {
		t.Errorf("no neighbour: %v is not errNoNeighbour", err)
	}
}

func TestRouterAdvertisement(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, 0x02}
	want := []byte{
		0,    // cur hop limit: unspecified
		0,    // M and O flags off
		0, 0, // router lifetime 0: not a default router
		0, 0, 0, 0, // reachable time unspecified
		0, 0, 0, 0, // retrans timer unspecified
		1, 1, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02, // source link-layer address option
	}
	if got := routerAdvertisement(mac); !bytes.Equal(got, want) {
		t.Errorf("RA body\n got % x\nwant % x", got, want)
	}
	if got := routerAdvertisement(nil); len(got) != 12 {
		t.Errorf("RA body without a MAC has %d bytes, want 12 (no option)", len(got))
	}
}
