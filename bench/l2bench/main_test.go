package main

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/herald-lb/herald/internal/arp"
	"github.com/herald-lb/herald/internal/l2frame"
	"github.com/herald-lb/herald/internal/lab"
)

func TestRangesOverlap(t *testing.T) {
	first, last, err := parseRange(lab.Pool6)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix string
		want   bool
	}{
		{bulkPrefix, false},
		{"2001:db8::/112", true},    // ::0-::ffff holds ::200-::2ff
		{"2001:db8::280/121", true}, // inside
		{"2001:db8::300/120", false},
		{"2001:db8::100/120", false},
		{"2001:db8::2ff/128", true}, // the last address
		{"2001:db8::1ff/128", false},
	} {
		if got := rangesOverlap(netip.MustParsePrefix(tc.prefix), first, last); got != tc.want {
			t.Errorf("rangesOverlap(%s, %s) = %v, want %v", tc.prefix, lab.Pool6, got, tc.want)
		}
	}
}

func TestCheckBulkPool(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{1000, true}, {65534, true}, {65535, false}} {
		_, err := checkBulkPool(tc.n)
		if (err == nil) != tc.ok {
			t.Errorf("checkBulkPool(%d) = %v, want ok %v", tc.n, err, tc.ok)
		}
	}
}

func TestReplyFor(t *testing.T) {
	client := lab.Node{Name: "client", IPv4: netip.MustParseAddr("192.0.2.100"), MAC: net.HardwareAddr{2, 0x4c, 0x41, 0x42, 0, 0x64}}
	owner := net.HardwareAddr{2, 0x4c, 0x41, 0x42, 0, 0x12}
	target := netip.MustParseAddr("192.0.2.200")
	reply := func(dst net.HardwareAddr, p arp.Packet) []byte { return arp.Frame(dst, p.SenderMAC, p) }
	good := arp.Packet{Op: arp.OpReply, SenderMAC: owner, SenderIP: target, TargetMAC: client.MAC, TargetIP: client.IPv4}
	other := good
	other.SenderIP = netip.MustParseAddr("192.0.2.201")
	toElse := good
	toElse.TargetIP = netip.MustParseAddr("192.0.2.12")

	req := arpRequest(client, target)
	if len(req) != l2frame.MinFrameLen {
		t.Errorf("request is %d bytes, want %d", len(req), l2frame.MinFrameLen)
	}
	h, payload, err := l2frame.ParseHeader(req)
	if err != nil || !l2frame.IsBroadcast(h.Dst) || h.EtherType != l2frame.EtherTypeARP {
		t.Fatalf("request header %+v, %v", h, err)
	}
	if p, err := arp.ParsePacket(payload); err != nil || p.Op != arp.OpRequest || p.TargetIP != target || p.SenderIP != client.IPv4 {
		t.Errorf("request %+v, %v", p, err)
	}

	for _, tc := range []struct {
		name  string
		frame []byte
		ok    bool
	}{
		{"the owner's reply", reply(client.MAC, good), true},
		{"our own request", req, false},
		{"a reply for another address", reply(client.MAC, other), false},
		{"a reply to another host", reply(client.MAC, toElse), false},
		{"a broadcast (gratuitous) reply", reply(l2frame.Broadcast, good), false},
		{"short", []byte{1, 2, 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mac, ok := replyFor(tc.frame, client, target)
			if ok != tc.ok || (ok && mac.String() != owner.String()) {
				t.Errorf("replyFor = %s, %v; want ok %v", mac, ok, tc.ok)
			}
		})
	}
}

func TestLogSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(p, []byte("one\ntwo\nthree\nfour\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to int64
		max      int
		want     string
	}{
		{4, 14, 100, "two\nthree\n"},
		{0, 19, 8, "four\n"}, // cut to whole lines
		{10, 10, 100, ""},
	} {
		if got := logSection(p, tc.from, tc.to, tc.max); got != tc.want {
			t.Errorf("logSection(%d, %d, %d) = %q, want %q", tc.from, tc.to, tc.max, got, tc.want)
		}
	}
}

func TestCountARPSockets(t *testing.T) {
	for _, tc := range []struct {
		name, table string
		want        int
	}{
		{"none", "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n", 0},
		{"empty file", "", 0},
		{"one ARP, one IPv6", `sk               RefCnt Type Proto  Iface R Rmem   User   Inode
ffff8f0e0a0c1000 3      3    0806   2     1 0      0      123456
ffff8f0e0a0c2000 3      3    86dd   2     1 0      0      123457
`, 1},
	} {
		if got := countARPSockets(tc.table); got != tc.want {
			t.Errorf("%s: %d ARP sockets, want %d", tc.name, got, tc.want)
		}
	}
}

func TestReadMemory(t *testing.T) {
	// This process's own status fills every field, in the right place: the
	// peak is never below the current resident set, which is its two parts.
	m, err := readMemory(os.Getpid())
	if err != nil || m.rss == 0 || m.hwm < m.rss || m.anon == 0 || m.anon+m.file > m.rss+1<<20 {
		t.Errorf("readMemory = %+v, %v", m, err)
	}
}
