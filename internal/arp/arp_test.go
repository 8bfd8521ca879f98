package arp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/l2frame"
)

// Documentation MACs (RFC 7042) and addresses.
var (
	nodeMAC   = mustMAC("00:00:5e:00:53:01")
	clientMAC = mustMAC("00:00:5e:00:53:02")
	otherMAC  = mustMAC("00:00:5e:00:53:03")
	nodeIP    = netip.MustParseAddr("192.0.2.1")
	clientIP  = netip.MustParseAddr("192.0.2.2")
	vip       = netip.MustParseAddr("192.0.2.100")
	unowned   = netip.MustParseAddr("192.0.2.101")
	zeroMAC   = make(net.HardwareAddr, 6)
	zeroIP    = netip.AddrFrom4([4]byte{})
)

// Frames captured with tcpdump between two namespaces: arping asking for
// 192.0.2.1 and the Linux kernel's reply.
var (
	arpingRequest = mustHex(`
		ffff ffff ffff 0000 5e00 5302 0806 0001
		0800 0604 0001 0000 5e00 5302 c000 0202
		ffff ffff ffff c000 0201`)
	kernelReply = mustHex(`
		0000 5e00 5302 0000 5e00 5301 0806 0001
		0800 0604 0002 0000 5e00 5301 c000 0201
		0000 5e00 5302 c000 0202`)
)

func TestParseKernelFrames(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  Packet
	}{
		{"arping request", arpingRequest, Packet{OpRequest, clientMAC, clientIP, l2frame.Broadcast, nodeIP}},
		{"kernel reply", kernelReply, Packet{OpReply, nodeMAC, nodeIP, clientMAC, clientIP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePacket(tt.frame[l2frame.HeaderLen:])
			if err != nil {
				t.Fatal(err)
			}
			if !equalPacket(got, tt.want) {
				t.Errorf("ParsePacket = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReplyMatchesKernel answers the request arping sent and expects the
// kernel's own reply, byte for byte, plus padding to the Ethernet minimum.
func TestReplyMatchesKernel(t *testing.T) {
	r := testResponder(t, Options{})
	r.SetAddresses([]netip.Addr{nodeIP})
	reply, addr := r.answer(arpingRequest, time.Now())
	want := l2frame.Pad(slices.Clone(kernelReply))
	if !bytes.Equal(reply, want) || addr != nodeIP {
		t.Errorf("reply for %v:\n got %x\nwant %x", addr, reply, want)
	}
}

func TestGratuitousFrames(t *testing.T) {
	request, reply := GratuitousFrames(nodeMAC, vip)
	pad := strings.Repeat("00", l2frame.MinFrameLen-42)
	wantRequest := mustHex(`
		ffff ffff ffff 0000 5e00 5301 0806
		0001 0800 06 04 0001
		0000 5e00 5301 c000 0264
		0000 0000 0000 c000 0264` + pad)
	// Target MAC = sender MAC: Linux treats a reply as gratuitous only then.
	wantReply := mustHex(`
		ffff ffff ffff 0000 5e00 5301 0806
		0001 0800 06 04 0002
		0000 5e00 5301 c000 0264
		0000 5e00 5301 c000 0264` + pad)
	if !bytes.Equal(request, wantRequest) {
		t.Errorf("request\n got %x\nwant %x", request, wantRequest)
	}
	if !bytes.Equal(reply, wantReply) {
		t.Errorf("reply\n got %x\nwant %x", reply, wantReply)
	}
}

func TestParsePacketRejects(t *testing.T) {
	good := arpingRequest[l2frame.HeaderLen:]
	mutate := func(i int, v byte) []byte {
		b := slices.Clone(good)
		b[i] = v
		return b
	}
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"short", good[:27], l2frame.ErrShort},
		{"not Ethernet", mutate(1, 6), errNotEthernetIPv4},
		{"not IPv4", mutate(2, 0x86), errNotEthernetIPv4},
		{"hardware length", mutate(4, 8), errNotEthernetIPv4},
		{"protocol length", mutate(5, 16), errNotEthernetIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePacket(tt.payload); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAnswer(t *testing.T) {
	request := func(dst net.HardwareAddr, p Packet) []byte { return Frame(dst, p.SenderMAC, p) }
	tests := []struct {
		name         string
		frame        []byte
		wantReply    []byte
		wantConflict string // MAC reported, "" for none
	}{
		{
			name:      "broadcast request for an owned address",
			frame:     request(l2frame.Broadcast, Packet{OpRequest, clientMAC, clientIP, zeroMAC, vip}),
			wantReply: Frame(clientMAC, nodeMAC, Packet{OpReply, nodeMAC, vip, clientMAC, clientIP}),
		},
		{
			name:      "unicast request to our MAC (a cache refresh)",
			frame:     request(nodeMAC, Packet{OpRequest, clientMAC, clientIP, nodeMAC, vip}),
			wantReply: Frame(clientMAC, nodeMAC, Packet{OpReply, nodeMAC, vip, clientMAC, clientIP}),
		},
		{
			name:      "probe from 0.0.0.0 is defended",
			frame:     request(l2frame.Broadcast, Packet{OpRequest, clientMAC, zeroIP, zeroMAC, vip}),
			wantReply: Frame(clientMAC, nodeMAC, Packet{OpReply, nodeMAC, vip, clientMAC, zeroIP}),
		},
		{
			name:  "request for an address not owned",
			frame: request(l2frame.Broadcast, Packet{OpRequest, clientMAC, clientIP, zeroMAC, unowned}),
		},
		{
			name:  "unicast request to another host",
			frame: request(otherMAC, Packet{OpRequest, clientMAC, clientIP, zeroMAC, vip}),
		},
		{
			name:  "reply for an owned address is not answered",
			frame: request(nodeMAC, Packet{OpReply, clientMAC, clientIP, nodeMAC, vip}),
		},
		{
			name:  "our own frame",
			frame: request(l2frame.Broadcast, Packet{OpRequest, nodeMAC, vip, zeroMAC, vip}),
		},
		{
			name:         "gratuitous request from another MAC",
			frame:        request(l2frame.Broadcast, Packet{OpRequest, otherMAC, vip, zeroMAC, vip}),
			wantConflict: otherMAC.String(),
		},
		{
			name:         "gratuitous reply from another MAC",
			frame:        request(l2frame.Broadcast, Packet{OpReply, otherMAC, vip, otherMAC, vip}),
			wantConflict: otherMAC.String(),
		},
		{
			name:         "reply from another MAC claiming an owned address",
			frame:        request(clientMAC, Packet{OpReply, otherMAC, vip, clientMAC, clientIP}),
			wantConflict: otherMAC.String(),
		},
		{
			name:  "gratuitous request for an address not owned",
			frame: request(l2frame.Broadcast, Packet{OpRequest, otherMAC, unowned, zeroMAC, unowned}),
		},
		{
			name:  "not ARP",
			frame: l2frame.Pad(l2frame.Header{Dst: l2frame.Broadcast, Src: clientMAC, EtherType: 0x0800}.Append(nil)),
		},
		{
			name:  "truncated",
			frame: request(l2frame.Broadcast, Packet{OpRequest, clientMAC, clientIP, zeroMAC, vip})[:30],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conflicts []string
			r := testResponder(t, Options{OnConflict: func(a netip.Addr, mac net.HardwareAddr) {
				if a != vip {
					t.Errorf("conflict for %v", a)
				}
				conflicts = append(conflicts, mac.String())
			}})
			r.SetAddresses([]netip.Addr{vip})
			reply, addr := r.answer(tt.frame, time.Now())
			if !bytes.Equal(reply, tt.wantReply) {
				t.Errorf("reply\n got %x\nwant %x", reply, tt.wantReply)
			}
			if reply != nil && addr != vip {
				t.Errorf("reply for %v, want %v", addr, vip)
			}
			var want []string
			if tt.wantConflict != "" {
				want = []string{tt.wantConflict}
			}
			if !slices.Equal(conflicts, want) {
				t.Errorf("conflicts %v, want %v", conflicts, want)
			}
		})
	}
}

func TestConflictRateLimit(t *testing.T) {
	var got []time.Duration
	t0 := time.Unix(1000, 0)
	var now time.Time
	r := testResponder(t, Options{OnConflict: func(netip.Addr, net.HardwareAddr) { got = append(got, now.Sub(t0)) }})
	r.SetAddresses([]netip.Addr{vip})
	garp := Frame(l2frame.Broadcast, otherMAC, Packet{OpRequest, otherMAC, vip, zeroMAC, vip})
	for _, at := range []time.Duration{0, time.Second, 9 * time.Second, 10 * time.Second, 15 * time.Second, 21 * time.Second} {
		now = t0.Add(at)
		r.answer(garp, now)
	}
	want := []time.Duration{0, 10 * time.Second, 21 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("conflicts reported at %v, want %v", got, want)
	}
}

func TestSetAddressesKeepsIPv4(t *testing.T) {
	r := testResponder(t, Options{})
	r.SetAddresses([]netip.Addr{
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:192.0.2.7"),
		vip,
		{},
	})
	want := []netip.Addr{netip.MustParseAddr("192.0.2.7"), vip}
	if got := r.Addresses(); !slices.Equal(got, want) {
		t.Errorf("Addresses = %v, want %v", got, want)
	}
}

func TestOptions(t *testing.T) {
	if _, err := newResponder(Options{}); err == nil {
		t.Error("no interface accepted")
	}
	if _, err := newResponder(Options{Interface: &net.Interface{Name: "tun0"}}); err == nil {
		t.Error("interface without a MAC accepted")
	}
	r := testResponder(t, Options{})
	if r.opts.RefreshInterval != DefaultRefreshInterval || r.opts.BurstCount != DefaultBurstCount || r.opts.BurstInterval != DefaultBurstInterval {
		t.Errorf("defaults not applied: %+v", r.opts)
	}
}

func testResponder(t *testing.T, opts Options) *Responder {
	t.Helper()
	opts.Interface = &net.Interface{Index: 2, Name: "test0", HardwareAddr: nodeMAC}
	r, err := newResponder(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func equalPacket(a, b Packet) bool {
	return a.Op == b.Op && bytes.Equal(a.SenderMAC, b.SenderMAC) && a.SenderIP == b.SenderIP &&
		bytes.Equal(a.TargetMAC, b.TargetMAC) && a.TargetIP == b.TargetIP
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}
