package ndp_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/packet"

	"github.com/herald-lb/herald/internal/l2frame"
	"github.com/herald-lb/herald/internal/l2frame/nstest"
	"github.com/herald-lb/herald/internal/ndp"
)

// Addresses of the kernel test: the VIPs are never configured on the node,
// so only the responder can answer for them.
var (
	clientIP = netip.MustParseAddr("2001:db8::2")
	vip      = netip.MustParseAddr("2001:db8::100")
	vip2     = netip.MustParseAddr("2001:db8::101")
	unowned  = netip.MustParseAddr("2001:db8::102")
	// A documentation MAC (RFC 7042) for stale cache entries.
	staleMAC = "00:00:5e:00:53:99"
)

var pacing = nstest.Pacing{BurstCount: 3, BurstInterval: 50 * time.Millisecond, Refresh: 400 * time.Millisecond}

// TestKernel runs a Responder in a namespace "node" whose veth has no IP
// address, not even a link-local one (MetalLB #2685), and talks to it from a
// namespace "client" with the real ndisc6 and the real kernel neighbour
// table.
func TestKernel(t *testing.T) {
	nstest.Require(t, "ndisc6")
	node, client := nstest.NewPair(t, "hl-ndp")
	nstest.MustExec(t, client.NS, "ip", "addr", "add", clientIP.String()+"/64", "dev", client.Name, "nodad")

	conflicts, onConflict := nstest.Conflicts()
	r := nstest.Start(t, node, ndp.NewResponder, ndp.Options{
		BurstCount:      pacing.BurstCount,
		BurstInterval:   pacing.BurstInterval,
		RefreshInterval: pacing.Refresh,
		OnConflict:      onConflict,
	})

	t.Run("unsolicited advertisement overrides a stale cache entry", func(t *testing.T) {
		nstest.MustExec(t, client.NS, "ip", "-6", "neigh", "add", vip.String(), "lladdr", staleMAC, "dev", client.Name, "nud", "stale")
		r.SetAddresses([]netip.Addr{vip})
		nstest.WaitFor(t, 2*time.Second, "client cache entry for "+vip.String()+" to hold "+node.MAC.String(), func() (bool, string) {
			out := neigh(t, client, vip)
			return strings.Contains(out, node.MAC.String()), out
		})
	})

	t.Run("solicited-node group joined", func(t *testing.T) {
		// Two users of the link-layer group: the IPv6 stack's membership,
		// which sends MLD reports for snooping switches, and the packet
		// socket's, which alone opens the NIC filter on a kernel without
		// IPv6.
		out := nstest.MustExec(t, node.NS, "ip", "maddr", "show", "dev", node.Name)
		for _, want := range []string{"ff02::1:ff00:100", "33:33:ff:00:01:00 users 2"} {
			if !strings.Contains(out, want) {
				t.Errorf("node %s memberships lack %s:\n%s", node.Name, want, out)
			}
		}
	})

	t.Run("ndisc6 gets the node MAC", func(t *testing.T) {
		// A reachable entry with another MAC changes only for a solicited
		// advertisement with Override=1 (MetalLB sends Override=0).
		nstest.MustExec(t, client.NS, "ip", "-6", "neigh", "replace", vip.String(), "lladdr", staleMAC, "dev", client.Name, "nud", "reachable")
		out, err := nstest.Exec(client.NS, "ndisc6", "-1", "-r", "3", "-w", "500", vip.String(), client.Name)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !strings.Contains(strings.ToLower(out), "target link-layer address: "+node.MAC.String()) {
			t.Errorf("ndisc6 output lacks the node MAC %s:\n%s", node.MAC, out)
		}
		if out := neigh(t, client, vip); !strings.Contains(out, node.MAC.String()) {
			t.Errorf("client cache entry not overridden by the solicited advertisement: %s", out)
		}
	})

	t.Run("unicast solicitation without link-layer option", func(t *testing.T) {
		// NUD probes may omit the source link-layer option (MetalLB #2920
		// ignores them); the answer goes to the frame's source.
		c := capture(t, client)
		sendNS(t, c, client, node.MAC, vip)
		want := decodedNA{
			ethSrc: node.MAC.String(), ethDst: client.MAC.String(),
			src: vip, dst: clientIP, hopLimit: 255, checksumOK: true,
			solicited: true, override: true, target: vip, tll: node.MAC.String(),
		}
		found := false
		nstest.ReadFor(t, c.conn, time.Second, func(frame []byte) bool {
			got, ok := decodeNA(t, frame)
			if !ok || got.target != vip || got.ethSrc != node.MAC.String() {
				return true
			}
			if got != want {
				t.Errorf("solicited advertisement\n got %+v\nwant %+v", got, want)
			}
			found = true
			return false
		})
		if !found {
			t.Fatalf("no advertisement for %v", vip)
		}
	})

	t.Run("no reply for an address not owned", func(t *testing.T) {
		ndiscNoReply(t, client, unowned)
	})

	t.Run("unicast NUD probe confirms reachability", func(t *testing.T) {
		// A stale entry that is used goes to DELAY, then PROBE: a unicast
		// solicitation to the node MAC. Only a solicited advertisement
		// (Solicited=1) makes it REACHABLE.
		nstest.Sysctl(t, client.NS, "net.ipv6.neigh."+client.Name+".delay_first_probe_time", "0")
		nstest.MustExec(t, client.NS, "ip", "-6", "neigh", "replace", vip.String(), "lladdr", node.MAC.String(), "dev", client.Name, "nud", "stale")
		nstest.MustExec(t, client.NS, "ip", "-6", "neigh", "change", vip.String(), "dev", client.Name, "use")
		nstest.WaitFor(t, 2*time.Second, "client cache entry for "+vip.String()+" to be REACHABLE", func() (bool, string) {
			out := neigh(t, client, vip)
			return strings.Contains(out, "REACHABLE") && strings.Contains(out, node.MAC.String()), out
		})
	})

	t.Run("burst then refresh, decoded independently", func(t *testing.T) {
		c := capture(t, client)
		r.SetAddresses([]netip.Addr{vip, vip2})
		nstest.CheckBurstThenRefresh(t, r, vip2, pacing, func(d time.Duration) []time.Time {
			return c.advertisements(t, vip2, node.MAC, d)
		})
	})

	t.Run("duplicate address detection by another host is defended", func(t *testing.T) {
		// Run DAD on the client at once (no random delay) for the VIP: the
		// node's advertisement to all nodes must make it fail.
		nstest.Sysctl(t, client.NS, "net.ipv6.conf."+client.Name+".accept_dad", "1")
		nstest.Sysctl(t, client.NS, "net.ipv6.conf."+client.Name+".router_solicitation_delay", "0")
		nstest.MustExec(t, client.NS, "ip", "addr", "add", vip.String()+"/64", "dev", client.Name)
		t.Cleanup(func() {
			nstest.MustExec(t, client.NS, "ip", "addr", "del", vip.String()+"/64", "dev", client.Name)
		})
		nstest.WaitFor(t, 3*time.Second, "the client's DAD for "+vip.String()+" to fail", func() (bool, string) {
			out := nstest.MustExec(t, client.NS, "ip", "-6", "addr", "show", "dev", client.Name)
			return strings.Contains(out, "dadfailed"), out
		})
		select {
		case c := <-conflicts:
			t.Errorf("DAD probe reported as a conflict: %v", c)
		default:
		}
	})

	t.Run("solicitation from an owned address is a conflict", func(t *testing.T) {
		// ndisc6 may then send from the VIP without the client owning it.
		nstest.Sysctl(t, client.NS, "net.ipv6.ip_nonlocal_bind", "1")
		_, _ = nstest.Exec(client.NS, "ndisc6", "-1", "-r", "1", "-w", "100", "-s", vip.String(), unowned.String(), client.Name)
		nstest.WantConflict(t, conflicts, vip, client.MAC)
	})

	t.Run("advertisement from another MAC is a conflict", func(t *testing.T) {
		// Built and sent with gopacket, independently of our encoder.
		sendNA(t, client, vip2)
		nstest.WantConflict(t, conflicts, vip2, client.MAC)
	})

	t.Run("no reply and group left once the address is removed", func(t *testing.T) {
		r.SetAddresses([]netip.Addr{vip2})
		ndiscNoReply(t, client, vip)
		out := nstest.MustExec(t, node.NS, "ip", "maddr", "show", "dev", node.Name)
		if strings.Contains(out, "ff02::1:ff00:100") || strings.Contains(out, "33:33:ff:00:01:00") {
			t.Errorf("node still a member of %s's group:\n%s", vip, out)
		}
		if !strings.Contains(out, "ff02::1:ff00:101") {
			t.Errorf("node left the group of %s, which it still owns:\n%s", vip2, out)
		}
	})
}

func neigh(t *testing.T, l nstest.Link, addr netip.Addr) string {
	t.Helper()
	return nstest.MustExec(t, l.NS, "ip", "-6", "neigh", "show", addr.String(), "dev", l.Name)
}

func ndiscNoReply(t *testing.T, client nstest.Link, addr netip.Addr) {
	t.Helper()
	out, err := nstest.Exec(client.NS, "ndisc6", "-1", "-r", "2", "-w", "300", addr.String(), client.Name)
	if err == nil || !strings.Contains(out, "No response") {
		t.Errorf("ndisc6 %s got an answer (err %v):\n%s", addr, err, out)
	}
}

// ndpCapture reads IPv6 frames in the client namespace.
type ndpCapture struct {
	conn *packet.Conn
}

func capture(t *testing.T, l nstest.Link) *ndpCapture {
	t.Helper()
	return &ndpCapture{conn: nstest.Listen(t, l, l2frame.EtherTypeIPv6)}
}

// advertisements reads for d and returns when each unsolicited advertisement
// for addr arrived, checking every field with gopacket's decoder.
func (c *ndpCapture) advertisements(t *testing.T, addr netip.Addr, mac net.HardwareAddr, d time.Duration) []time.Time {
	t.Helper()
	var out []time.Time
	nstest.ReadFor(t, c.conn, d, func(frame []byte) bool {
		na, ok := decodeNA(t, frame)
		if !ok || na.target != addr {
			return true
		}
		want := decodedNA{
			ethSrc: mac.String(), ethDst: "33:33:00:00:00:01",
			src: addr, dst: ndp.AllNodes, hopLimit: 255, checksumOK: true,
			override: true, target: addr, tll: mac.String(),
		}
		if na != want {
			t.Fatalf("unsolicited advertisement\n got %+v\nwant %+v", na, want)
		}
		out = append(out, time.Now())
		return true
	})
	return out
}

type decodedNA struct {
	ethSrc, ethDst              string
	src, dst                    netip.Addr
	hopLimit                    uint8
	checksumOK                  bool
	router, solicited, override bool
	target                      netip.Addr
	tll                         string
}

// decodeNA decodes a Neighbor Advertisement frame with gopacket, an encoder
// independent of ours.
func decodeNA(t *testing.T, frame []byte) (decodedNA, bool) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	icmp, _ := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	na, _ := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if eth == nil || ip == nil || icmp == nil || na == nil {
		return decodedNA{}, false
	}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	err, sum := icmp.VerifyChecksum()
	if err != nil {
		t.Fatal(err)
	}
	d := decodedNA{
		ethSrc: eth.SrcMAC.String(), ethDst: eth.DstMAC.String(),
		src: netip.AddrFrom16([16]byte(ip.SrcIP)), dst: netip.AddrFrom16([16]byte(ip.DstIP)),
		hopLimit: ip.HopLimit, checksumOK: sum.Valid,
		router: na.Router(), solicited: na.Solicited(), override: na.Override(),
		target: netip.AddrFrom16([16]byte(na.TargetAddress)),
	}
	for _, o := range na.Options {
		if o.Type == layers.ICMPv6OptTargetAddress {
			d.tll = net.HardwareAddr(o.Data).String()
		}
	}
	return d, true
}

// sendNS sends on c a unicast solicitation for target from clientIP to
// target at dst, without options, encoded by gopacket.
func sendNS(t *testing.T, c *ndpCapture, l nstest.Link, dst net.HardwareAddr, target netip.Addr) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: l.MAC, DstMAC: dst, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255,
		SrcIP: clientIP.AsSlice(), DstIP: target.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: target.AsSlice()}
	write(t, c, eth, ip, icmp, ns)
}

func write(t *testing.T, c *ndpCapture, eth *layers.Ethernet, ls ...gopacket.SerializableLayer) {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, append([]gopacket.SerializableLayer{eth}, ls...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.WriteTo(buf.Bytes(), &packet.Addr{HardwareAddr: eth.DstMAC}); err != nil {
		t.Fatal(err)
	}
}

// sendNA sends, from l, an unsolicited advertisement claiming target for l's
// MAC, encoded by gopacket.
func sendNA(t *testing.T, l nstest.Link, target netip.Addr) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: l.MAC, DstMAC: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255,
		SrcIP: clientIP.AsSlice(), DstIP: ndp.AllNodes.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	na := &layers.ICMPv6NeighborAdvertisement{
		Flags:         0x20, // Override
		TargetAddress: target.AsSlice(),
		Options:       layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: l.MAC}},
	}
	write(t, capture(t, l), eth, ip, icmp, na)
}

// TestKernelIPv6Disabled runs the responder on an interface with IPv6
// disabled altogether: no addresses and no kernel multicast membership, so
// everything rests on the packet socket. With refresh off and a burst of one,
// only the answer to the client's duplicate address detection can make it
// fail.
func TestKernelIPv6Disabled(t *testing.T) {
	nstest.Require(t, "ndisc6")
	node, client := nstest.NewPair(t, "hl-ndp6")
	nstest.Sysctl(t, node.NS, "net.ipv6.conf."+node.Name+".disable_ipv6", "1")
	nstest.MustExec(t, client.NS, "ip", "addr", "add", clientIP.String()+"/64", "dev", client.Name, "nodad")

	r := nstest.Start(t, node, ndp.NewResponder, ndp.Options{BurstCount: 1, RefreshInterval: -1})
	r.SetAddresses([]netip.Addr{vip})

	if out := nstest.MustExec(t, node.NS, "ip", "maddr", "show", "dev", node.Name); !strings.Contains(out, "33:33:ff:00:01:00") {
		t.Errorf("node %s does not accept %s's solicited-node group:\n%s", node.Name, vip, out)
	}
	out, err := nstest.Exec(client.NS, "ndisc6", "-1", "-r", "3", "-w", "500", vip.String(), client.Name)
	if err != nil || !strings.Contains(strings.ToLower(out), "target link-layer address: "+node.MAC.String()) {
		t.Errorf("ndisc6 did not get the node MAC %s (err %v):\n%s", node.MAC, err, out)
	}

	nstest.Sysctl(t, client.NS, "net.ipv6.conf."+client.Name+".accept_dad", "1")
	nstest.Sysctl(t, client.NS, "net.ipv6.conf."+client.Name+".router_solicitation_delay", "0")
	nstest.MustExec(t, client.NS, "ip", "addr", "add", vip.String()+"/64", "dev", client.Name)
	nstest.WaitFor(t, 3*time.Second, "the client's DAD for "+vip.String()+" to fail", func() (bool, string) {
		out := nstest.MustExec(t, client.NS, "ip", "-6", "addr", "show", "dev", client.Name)
		return strings.Contains(out, "dadfailed"), out
	})
}
