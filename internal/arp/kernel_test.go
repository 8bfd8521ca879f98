package arp_test

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/packet"

	"github.com/herald-lb/herald/internal/arp"
	"github.com/herald-lb/herald/internal/l2frame"
	"github.com/herald-lb/herald/internal/l2frame/nstest"
)

// Addresses of the kernel test: the VIPs are never configured on any
// interface, so only the responder can answer for them.
var (
	vip     = netip.MustParseAddr("192.0.2.100")
	vip2    = netip.MustParseAddr("192.0.2.101")
	unowned = netip.MustParseAddr("192.0.2.102")
	// A documentation MAC (RFC 7042) for the stale cache entry.
	staleMAC = "00:00:5e:00:53:99"
)

var pacing = nstest.Pacing{BurstCount: 3, BurstInterval: 50 * time.Millisecond, Refresh: 400 * time.Millisecond}

// TestKernel runs a Responder in a namespace "node" whose veth has no IP
// address and talks to it from a namespace "client" with the real arping and
// the real kernel neighbour table.
func TestKernel(t *testing.T) {
	nstest.Require(t, "arping")
	node, client := nstest.NewPair(t, "hl-arp")
	nstest.MustExec(t, client.NS, "ip", "addr", "add", "192.0.2.2/24", "dev", client.Name)
	// Lets arping -U send as the VIP without the client owning it.
	nstest.Sysctl(t, client.NS, "net.ipv4.ip_nonlocal_bind", "1")

	conflicts, onConflict := nstest.Conflicts()
	r := nstest.Start(t, node, arp.NewResponder, arp.Options{
		BurstCount:      pacing.BurstCount,
		BurstInterval:   pacing.BurstInterval,
		RefreshInterval: pacing.Refresh,
		OnConflict:      onConflict,
	})

	t.Run("gratuitous burst replaces a stale cache entry", func(t *testing.T) {
		nstest.MustExec(t, client.NS, "ip", "neigh", "add", vip.String(), "lladdr", staleMAC, "dev", client.Name, "nud", "stale")
		r.SetAddresses([]netip.Addr{vip})
		nstest.WaitFor(t, 2*time.Second, "client cache entry for "+vip.String()+" to hold "+node.MAC.String(), func() (bool, string) {
			out := nstest.MustExec(t, client.NS, "ip", "neigh", "show", vip.String(), "dev", client.Name)
			return strings.Contains(out, node.MAC.String()), out
		})
	})

	t.Run("arping gets a reply with the node MAC", func(t *testing.T) {
		out, err := nstest.Exec(client.NS, "arping", "-c", "1", "-w", "2", "-I", client.Name, vip.String())
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !strings.Contains(strings.ToLower(out), "["+node.MAC.String()+"]") {
			t.Errorf("arping output lacks the node MAC %s:\n%s", node.MAC, out)
		}
	})

	t.Run("no reply for an address not owned", func(t *testing.T) {
		arpingNoReply(t, client, unowned)
	})

	t.Run("burst then refresh, decoded independently", func(t *testing.T) {
		c := capture(t, client)
		r.SetAddresses([]netip.Addr{vip, vip2})
		nstest.CheckBurstThenRefresh(t, r, vip2, pacing, func(d time.Duration) []time.Time {
			return c.rounds(t, vip2, node.MAC, d)
		})
	})

	parent := t
	t.Run("gratuitous ARP from another MAC is a conflict", func(t *testing.T) {
		// Start arping and do not wait for it: in -U mode it waits out its
		// one-second interval before exiting.
		cmd := exec.Command("ip", "netns", "exec", client.NS, "arping", "-U", "-c", "1", "-I", client.Name, vip.String())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		parent.Cleanup(func() { _ = cmd.Wait() })
		nstest.WantConflict(t, conflicts, vip, client.MAC)
	})

	t.Run("no reply once the address is removed", func(t *testing.T) {
		r.SetAddresses([]netip.Addr{vip2})
		arpingNoReply(t, client, vip)
		// The responder still answers for what it kept.
		if out, err := nstest.Exec(client.NS, "arping", "-c", "1", "-w", "2", "-I", client.Name, vip2.String()); err != nil {
			t.Errorf("%v: %s", err, out)
		}
	})
}

func arpingNoReply(t *testing.T, client nstest.Link, addr netip.Addr) {
	t.Helper()
	out, err := nstest.Exec(client.NS, "arping", "-c", "1", "-w", "1", "-I", client.Name, addr.String())
	if err == nil || !strings.Contains(out, "Received 0 response") {
		t.Errorf("arping %s got an answer (err %v):\n%s", addr, err, out)
	}
}

// arpCapture reads ARP frames in the client namespace.
type arpCapture struct {
	conn *packet.Conn
}

func capture(t *testing.T, l nstest.Link) *arpCapture {
	t.Helper()
	return &arpCapture{conn: nstest.Listen(t, l, l2frame.EtherTypeARP)}
}

// rounds reads for d and returns when each gratuitous round for addr (a
// request and a reply, decoded with gopacket) arrived. Any other frame from
// mac claiming addr fails the test. A reply that opens the window belongs
// to a round whose request the previous window read (a refresh can fall on
// the boundary: CI once failed on it), so it is skipped.
func (c *arpCapture) rounds(t *testing.T, addr netip.Addr, mac net.HardwareAddr, d time.Duration) []time.Time {
	t.Helper()
	var out []time.Time
	pendingRequest, first := false, true
	nstest.ReadFor(t, c.conn, d, func(frame []byte) bool {
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		a, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
		if eth == nil || a == nil || netip.AddrFrom4([4]byte(a.SourceProtAddress)) != addr {
			return true
		}
		if !l2frame.IsBroadcast(eth.DstMAC) || eth.SrcMAC.String() != mac.String() ||
			net.HardwareAddr(a.SourceHwAddress).String() != mac.String() ||
			netip.AddrFrom4([4]byte(a.DstProtAddress)) != addr {
			t.Fatalf("unexpected gratuitous frame: %v", pkt)
		}
		opensWindow := first
		first = false
		switch a.Operation {
		case layers.ARPRequest:
			pendingRequest = true
		case layers.ARPReply:
			if opensWindow && !pendingRequest {
				return true
			}
			if net.HardwareAddr(a.DstHwAddress).String() != mac.String() {
				t.Errorf("gratuitous reply target MAC %v, want %v (Linux ignores it otherwise)", net.HardwareAddr(a.DstHwAddress), mac)
			}
			if !pendingRequest {
				t.Errorf("gratuitous reply without a request before it")
			}
			pendingRequest = false
			out = append(out, time.Now())
		}
		return true
	})
	return out
}
