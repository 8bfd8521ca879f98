package bgp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	nodeASN   = 64512
	routerASN = 64512 // iBGP, so LOCAL_PREF is carried
)

func speakerConfig() Config {
	return Config{RouterID: nodeV4, ASN: nodeASN, ListenPort: -1}
}

func waitUp(t *testing.T, sp *speakerProc, name string, timeout time.Duration) time.Duration {
	t.Helper()
	return eventually(t, timeout, "peer "+name+" established", func() string {
		p, ok := sp.peer(name)
		if !ok {
			return "unknown peer"
		}
		if !p.Up {
			return p.State + " " + p.LastError
		}
		return ""
	})
}

// TestFRRInterop covers an iBGP IPv4 session and an IPv6 session with
// FRR: attributes, withdrawal, per-peer isolation and Cease on Stop.
func TestFRRInterop(t *testing.T) {
	l := newLab(t, frrBgpd, "vtysh")
	f := startFRR(t, l, frrConfig(routerASN, frrNeighbors([]netip.Addr{nodeV4}, []netip.Addr{nodeV6})), false)

	sp := l.startSpeaker(t, speakerConfig())
	v4 := Peer{Name: "r-v4", Address: routerV4, ASN: routerASN, SourceAddress: nodeV4, HoldTime: 9 * time.Second}
	v6 := Peer{Name: "r-v6", Address: routerV6, ASN: routerASN, SourceAddress: nodeV6, HoldTime: 9 * time.Second}
	start := time.Now()
	sp.setPeers(v4, v6)
	waitUp(t, sp, "r-v4", 15*time.Second)
	t.Logf("IPv4 session established %s after SetPeers", time.Since(start).Round(time.Millisecond))
	waitUp(t, sp, "r-v6", 15*time.Second)
	t.Logf("IPv6 session established %s after SetPeers", time.Since(start).Round(time.Millisecond))

	ads := []Advertisement{
		{Prefix: netip.MustParsePrefix("198.51.100.10/32"), LocalPref: 100, Communities: []uint32{65535<<16 | 65282}},
		{Prefix: netip.MustParsePrefix("198.51.100.11/32"), LocalPref: 250, LargeCommunities: [][3]uint32{{64512, 1, 2}}},
		{Prefix: netip.MustParsePrefix("2001:db8:1::10/128"), Communities: []uint32{64512<<16 | 7}},
	}
	sp.setAds(ads...)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := f.vtysh("show bgp ipv4 unicast json")
			t.Logf("FRR ipv4 table: %s", out)
			out, _ = f.vtysh("show bgp neighbors 192.0.2.1 json")
			t.Logf("FRR neighbor: %s", tail(string(out), 3000))
			t.Logf("speaker peers: %+v", sp.peers())
		}
	})

	eventually(t, 10*time.Second, "198.51.100.10/32 at FRR", func() string {
		r, ok := f.route(t, "ipv4", "198.51.100.10/32")
		if !ok {
			return "absent"
		}
		p := r.Paths[0]
		if p.LocPrf == nil || *p.LocPrf != 100 {
			return "local pref not 100"
		}
		if p.Community == nil || !slices.Equal(p.Community.List, []string{"noAdvertise"}) {
			return "community 65535:65282 (noAdvertise) missing"
		}
		if len(p.Nexthops) == 0 || p.Nexthops[0].IP != nodeV4.String() {
			return "next hop is not the node's address"
		}
		return ""
	})
	eventually(t, 10*time.Second, "198.51.100.11/32 at FRR", func() string {
		r, ok := f.route(t, "ipv4", "198.51.100.11/32")
		if !ok {
			return "absent"
		}
		p := r.Paths[0]
		if p.LocPrf == nil || *p.LocPrf != 250 {
			return "local pref not 250"
		}
		if p.LargeCommunity == nil || p.LargeCommunity.String != "64512:1:2" {
			return "large community 64512:1:2 missing"
		}
		if p.Community != nil {
			return "unexpected community " + p.Community.String
		}
		return ""
	})
	eventually(t, 10*time.Second, "2001:db8:1::10/128 at FRR", func() string {
		r, ok := f.route(t, "ipv6", "2001:db8:1::10/128")
		if !ok {
			return "absent"
		}
		if c := r.Paths[0].Community; c == nil || c.String != "64512:7" {
			return "community 64512:7 missing"
		}
		return ""
	})
	// No IPv6 prefix on the IPv4-only session and vice versa.
	if r, ok := f.route(t, "ipv4", "198.51.100.10/32"); ok && len(r.Paths) != 1 {
		t.Errorf("198.51.100.10/32 has %d paths, want 1 (IPv4 session only)", len(r.Paths))
	}

	// Withdrawal.
	sp.setAds(ads[1:]...)
	withdraw := eventually(t, 10*time.Second, "198.51.100.10/32 withdrawn", func() string {
		if _, ok := f.route(t, "ipv4", "198.51.100.10/32"); ok {
			return "still present"
		}
		return ""
	})
	t.Logf("withdrawal seen at FRR after %s", withdraw.Round(time.Millisecond))
	if _, ok := f.route(t, "ipv4", "198.51.100.11/32"); !ok {
		t.Errorf("198.51.100.11/32 disappeared with an unrelated withdrawal")
	}

	// Changing one peer must not reset the other.
	before := f.neighbor(t, nodeV4.String())
	if before.ConnectionsEstablished != 1 {
		t.Fatalf("IPv4 session established %d times, want 1", before.ConnectionsEstablished)
	}
	v6.HoldTime = 12 * time.Second
	v4.DisableMP = true // no effect by design; must not flap the session
	sp.setPeers(v4, v6)
	waitUp(t, sp, "r-v6", 15*time.Second)
	eventually(t, 15*time.Second, "IPv6 session re-established at FRR", func() string {
		if n := f.neighbor(t, nodeV6.String()); n.ConnectionsEstablished != 2 || n.BgpState != "Established" {
			return "state " + n.BgpState
		}
		return ""
	})
	after := f.neighbor(t, nodeV4.String())
	if after.ConnectionsEstablished != 1 || after.ConnectionsDropped != 0 || after.BgpState != "Established" {
		t.Errorf("IPv4 session was disturbed by an IPv6 peer change: %+v", after)
	}
	// The re-created IPv6 session gets its routes again.
	eventually(t, 10*time.Second, "2001:db8:1::10/128 after peer update", func() string {
		if _, ok := f.route(t, "ipv6", "2001:db8:1::10/128"); !ok {
			return "absent"
		}
		return ""
	})

	// Stop sends Cease to every peer.
	sp.stop()
	cease := eventually(t, 5*time.Second, "Cease at FRR", func() string {
		for _, a := range []string{nodeV4.String(), nodeV6.String()} {
			n := f.neighbor(t, a)
			if n.BgpState == "Established" {
				return a + " still established"
			}
			if !strings.Contains(n.LastNotificationReason, "Cease") && !strings.Contains(n.LastResetDueTo, "Cease") {
				return a + ": last reset " + n.LastResetDueTo + " / " + n.LastNotificationReason
			}
		}
		return ""
	})
	t.Logf("Cease seen at FRR on both sessions %s after Stop", cease.Round(time.Millisecond))
	if _, ok := f.route(t, "ipv4", "198.51.100.11/32"); ok {
		t.Errorf("route still present at FRR after Stop")
	}
}
