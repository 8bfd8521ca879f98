package arp_test

import (
	"context"
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

const (
	burstCount    = 3
	burstInterval = 50 * time.Millisecond
	refresh       = 400 * time.Millisecond
)

type conflict struct {
	addr netip.Addr
	mac  string
}

// TestKernel runs a Responder in a namespace "node" whose veth has no IP
// address and talks to it from a namespace "client" with the real arping and
// the real kernel neighbour table.
func TestKernel(t *testing.T) {
	nstest.Require(t, "arping")
	node, client := nstest.NewPair(t, "hl-arp")
	nstest.MustExec(t, client.NS, "ip", "addr", "add", "192.0.2.2/24", "dev", client.Name)
	// Lets arping -U send as the VIP without the client owning it.
	nstest.Sysctl(t, client.NS, "net.ipv4.ip_nonlocal_bind", "1")

	conflicts := make(chan conflict, 16)
	var r *arp.Responder
	if err := nstest.Do(node.NS, func() error {
		ifi, err := net.InterfaceByName(node.Name)
		if err != nil {
			return err
		}
		r, err = arp.NewResponder(arp.Options{
			Interface:       ifi,
			BurstCount:      burstCount,
			BurstInterval:   burstInterval,
			RefreshInterval: refresh,
			OnConflict: func(a netip.Addr, mac net.HardwareAddr) {
				conflicts <- conflict{a, mac.String()}
			},
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	t.Run("gratuitous burst replaces a stale cache entry", func(t *testing.T) {
		nstest.MustExec(t, client.NS, "ip", "neigh", "add", vip.String(), "lladdr", staleMAC, "dev", client.Name, "nud", "stale")
		r.SetAddresses([]netip.Addr{vip})
		waitFor(t, 2*time.Second, "client cache entry for "+vip.String()+" to hold "+node.MAC.String(), func() (bool, string) {
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
		rounds := c.rounds(t, vip2, node.MAC, 900*time.Millisecond)
		if len(rounds) < burstCount+1 {
			t.Fatalf("got %d rounds for %s in 900ms, want a burst of %d and a refresh: %v", len(rounds), vip2, burstCount, rounds)
		}
		// Exact spacing is checked with a fake clock in package l2frame; the
		// timestamps here are taken by a reader goroutine and jitter under
		// load, so they only tell a burst from a refresh.
		for i := 1; i < burstCount; i++ {
			if gap := rounds[i].Sub(rounds[i-1]); gap > refresh/2 {
				t.Errorf("burst round %d came %v after the previous one, want about %v", i+1, gap, burstInterval)
			}
		}
		if gap := rounds[burstCount].Sub(rounds[burstCount-1]); gap < refresh/2 {
			t.Errorf("refresh came %v after the burst, want about %v", gap, refresh)
		}

		// Within less than a refresh interval, only a burst yields several.
		t.Log("Announce forces a new burst")
		r.Announce(vip2)
		rounds = c.rounds(t, vip2, node.MAC, refresh*3/4)
		if len(rounds) < burstCount {
			t.Errorf("got %d rounds within %v of Announce, want %d", len(rounds), refresh*3/4, burstCount)
		}
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
		select {
		case c := <-conflicts:
			if c.addr != vip || c.mac != client.MAC.String() {
				t.Errorf("conflict %v from %s, want %v from %s", c.addr, c.mac, vip, client.MAC)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no conflict reported")
		}
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

func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", limit, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// arpCapture reads ARP frames in the client namespace.
type arpCapture struct {
	conn *packet.Conn
}

func capture(t *testing.T, l nstest.Link) *arpCapture {
	t.Helper()
	var c arpCapture
	if err := nstest.Do(l.NS, func() error {
		ifi, err := net.InterfaceByName(l.Name)
		if err != nil {
			return err
		}
		c.conn, err = packet.Listen(ifi, packet.Raw, int(l2frame.EtherTypeARP), nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.conn.Close() })
	return &c
}

// rounds reads for d and returns when each gratuitous round for addr (a
// request and a reply, decoded with gopacket) arrived. Any other frame from
// mac claiming addr fails the test.
func (c *arpCapture) rounds(t *testing.T, addr netip.Addr, mac net.HardwareAddr, d time.Duration) []time.Time {
	t.Helper()
	var out []time.Time
	pendingRequest := false
	deadline := time.Now().Add(d)
	buf := make([]byte, 1600)
	for {
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			return out
		}
		pkt := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		a, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
		if eth == nil || a == nil || netip.AddrFrom4([4]byte(a.SourceProtAddress)) != addr {
			continue
		}
		if !l2frame.IsBroadcast(eth.DstMAC) || eth.SrcMAC.String() != mac.String() ||
			net.HardwareAddr(a.SourceHwAddress).String() != mac.String() ||
			netip.AddrFrom4([4]byte(a.DstProtAddress)) != addr {
			t.Fatalf("unexpected gratuitous frame: %v", pkt)
		}
		switch a.Operation {
		case layers.ARPRequest:
			pendingRequest = true
		case layers.ARPReply:
			if net.HardwareAddr(a.DstHwAddress).String() != mac.String() {
				t.Errorf("gratuitous reply target MAC %v, want %v (Linux ignores it otherwise)", net.HardwareAddr(a.DstHwAddress), mac)
			}
			if !pendingRequest {
				t.Errorf("gratuitous reply without a request before it")
			}
			pendingRequest = false
			out = append(out, time.Now())
		}
	}
}
