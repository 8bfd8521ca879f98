package main

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/arp"
	"github.com/herald-lb/herald/internal/l2frame"
	"github.com/herald-lb/herald/internal/lab"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	twenty := ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want summary
	}{
		{"empty", nil, summary{}},
		{"one", ms(7), summary{1, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond}},
		{"odd", ms(3, 1, 2), summary{3, time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond}},
		{"even median is the mean of the middle two", ms(4, 1, 3, 2), summary{4, time.Millisecond, 2500 * time.Microsecond, 4 * time.Millisecond, 4 * time.Millisecond}},
		// p95 of 20 by nearest rank is the 19th.
		{"twenty", twenty, summary{20, time.Millisecond, 10500 * time.Microsecond, 19 * time.Millisecond, 20 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("summarize = %+v, want %+v", got, tc.want)
			}
		})
	}
	if twenty[0] != 20*time.Millisecond {
		t.Error("summarize sorted its input in place")
	}
}

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

func TestIsSpeaker(t *testing.T) {
	const herald, kc = "/w/bin/herald", "/run/herald-lab/abc123/kubeconfig"
	cmd := func(args ...string) []byte { return []byte(strings.Join(args, "\x00") + "\x00") }
	speaker := func(node string) []byte {
		return cmd(append([]string{herald}, append(lab.DefaultSpeakerArgs(kc, lab.Node{Name: node, IPv4: netip.MustParseAddr("192.0.2.11")}), "--ml-profile", "lan")...)...)
	}
	for _, tc := range []struct {
		name    string
		cmdline []byte
		node    string
		want    bool
	}{
		{"the speaker", speaker("node1"), "node1", true},
		{"another node", speaker("node1"), "node2", false},
		{"node10 is not node1", speaker("node10"), "node1", false},
		{"ip netns exec before its exec", cmd(append([]string{"ip", "netns", "exec", "hlabc123-node1"}, strings.Split(strings.TrimRight(string(speaker("node1")), "\x00"), "\x00")...)...), "node1", false},
		{"another lab", cmd(herald, "speaker", "--kubeconfig", "/run/herald-lab/def456/kubeconfig", "--node-name", "node1"), "node1", false},
		{"the controller", cmd(herald, "controller", "--kubeconfig", kc), "node1", false},
		{"empty", nil, "node1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isSpeaker(tc.cmdline, herald, kc, tc.node); got != tc.want {
				t.Errorf("isSpeaker = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
		ok         bool
	}{
		{"plain", "42 (herald) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1234", 3.25, true},
		{"name with spaces and parentheses", "42 (a (b) c) S 1 42 42 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1", 0.03, true},
		{"truncated", "42 (herald) S 1 42", 0, false},
		{"no name", "42 herald S", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU(tc.stat)
			if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
				t.Errorf("parseStatCPU = %v, %v; want %v, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\therald\nVmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\n"
	for _, tc := range []struct {
		field string
		want  uint64
		ok    bool
	}{{"VmRSS", 20 << 20, true}, {"VmHWM", 30 << 20, true}, {"VmSwap", 0, false}} {
		got, err := parseStatusKB(status, tc.field)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s = %d, %v; want %d, ok %v", tc.field, got, err, tc.want, tc.ok)
		}
	}
}

func TestOwnProcess(t *testing.T) {
	// The real files of this process parse.
	if _, err := cpuSeconds(os.Getpid()); err != nil {
		t.Error(err)
	}
	m, err := readMemory(os.Getpid())
	if err != nil || m.rss == 0 || m.hwm < m.rss {
		t.Errorf("readMemory = %+v, %v", m, err)
	}
}

func TestMetrics(t *testing.T) {
	text := `# HELP metallb_speaker_announced 1 for each address this node announces.
metallb_speaker_announced{ip="192.0.2.200",node="node1",protocol="layer2",service="default/web"} 1
metallb_speaker_announced{ip="2001:db8::1:5",node="node1",protocol="layer2",service="default/bulk-0004"} 1
metallb_layer2_requests_received{ip="192.0.2.200"} 10042
metallb_layer2_requests_received{ip="192.0.2.201"} 7
go_goroutines 42
`
	s, err := parseProm(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics(s)
	if got := m.value("metallb_layer2_requests_received", `ip="192.0.2.200"`); got != 10042 {
		t.Errorf("requests for .200 = %v", got)
	}
	if got := m.count("metallb_speaker_announced", nil); got != 2 {
		t.Errorf("announced = %d, want 2", got)
	}
	v6 := func(l string) bool { return strings.Contains(l, `ip="2001:db8::1:`) }
	if got := m.count("metallb_speaker_announced", v6); got != 1 {
		t.Errorf("announced IPv6 = %d, want 1", got)
	}
	if got := m.value("go_goroutines"); got != 42 {
		t.Errorf("go_goroutines = %v", got)
	}
	if _, err := parseProm(strings.NewReader("broken{a=\"b\" 1\n")); err == nil {
		t.Error("a line without its closing brace parsed")
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
