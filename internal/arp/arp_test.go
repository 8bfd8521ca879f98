package arp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/l2frame"
	"github.com/herald-lb/herald/internal/l2frame/nstest"
)

// Documentation MACs (RFC 7042) and addresses.
var (
	nodeMAC   = nstest.MustMAC("00:00:5e:00:53:01")
	clientMAC = nstest.MustMAC("00:00:5e:00:53:02")
	otherMAC  = nstest.MustMAC("00:00:5e:00:53:03")
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
	arpingRequest = nstest.MustHex(`
		ffff ffff ffff 0000 5e00 5302 0806 0001
		0800 0604 0001 0000 5e00 5302 c000 0202
		ffff ffff ffff c000 0201`)
	kernelReply = nstest.MustHex(`
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
	reply, addr := r.Answer(arpingRequest, time.Now())
	want := l2frame.Pad(slices.Clone(kernelReply))
	if !bytes.Equal(reply, want) || addr != nodeIP {
		t.Errorf("reply for %v:\n got %x\nwant %x", addr, reply, want)
	}
}

func TestGratuitousFrames(t *testing.T) {
	request, reply := GratuitousFrames(nodeMAC, vip)
	pad := strings.Repeat("00", l2frame.MinFrameLen-42)
	wantRequest := nstest.MustHex(`
		ffff ffff ffff 0000 5e00 5301 0806
		0001 0800 06 04 0001
		0000 5e00 5301 c000 0264
		0000 0000 0000 c000 0264` + pad)
	// Target MAC = sender MAC: Linux treats a reply as gratuitous only then.
	wantReply := nstest.MustHex(`
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
	tests := []nstest.AnswerCase{
		{
			Name:      "broadcast request for an owned address",
			Frame:     request(l2frame.Broadcast, Packet{OpRequest, clientMAC, clientIP, zeroMAC, vip}),
			WantReply: Frame(clientMAC, nodeMAC, Packet{OpReply, nodeMAC, vip, clientMAC, clientIP}),
		},
		{
			Name:      "unicast request to our MAC (a cache refresh)",
			Frame:     request(nodeMAC, Packet{OpRequest, clientMAC, clientIP, nodeMAC, vip}),
			WantReply: Frame(clientMAC, nodeMAC, Packet{OpReply, nodeMAC, vip, clientMAC, clientIP}),
		},
		{
			Name:      "probe from 0.0.0.0 is defended",
			Frame:     request(l2frame.Broadcast, Packet{OpRequest, clientMAC, zeroIP, zeroMAC, vip}),
			WantReply: Frame(clientMAC, nodeMAC, Packet{OpReply, nodeMAC, vip, clientMAC, zeroIP}),
		},
		{
			Name:  "request for an address not owned",
			Frame: request(l2frame.Broadcast, Packet{OpRequest, clientMAC, clientIP, zeroMAC, unowned}),
		},
		{
			Name:  "unicast request to another host",
			Frame: request(otherMAC, Packet{OpRequest, clientMAC, clientIP, zeroMAC, vip}),
		},
		{
			Name:  "reply for an owned address is not answered",
			Frame: request(nodeMAC, Packet{OpReply, clientMAC, clientIP, nodeMAC, vip}),
		},
		{
			Name:  "our own frame",
			Frame: request(l2frame.Broadcast, Packet{OpRequest, nodeMAC, vip, zeroMAC, vip}),
		},
		{
			Name:         "gratuitous request from another MAC",
			Frame:        request(l2frame.Broadcast, Packet{OpRequest, otherMAC, vip, zeroMAC, vip}),
			WantConflict: "192.0.2.100 " + otherMAC.String(),
		},
		{
			Name:         "gratuitous reply from another MAC",
			Frame:        request(l2frame.Broadcast, Packet{OpReply, otherMAC, vip, otherMAC, vip}),
			WantConflict: "192.0.2.100 " + otherMAC.String(),
		},
		{
			Name:         "reply from another MAC claiming an owned address",
			Frame:        request(clientMAC, Packet{OpReply, otherMAC, vip, clientMAC, clientIP}),
			WantConflict: "192.0.2.100 " + otherMAC.String(),
		},
		{
			Name:  "gratuitous request for an address not owned",
			Frame: request(l2frame.Broadcast, Packet{OpRequest, otherMAC, unowned, zeroMAC, unowned}),
		},
		{
			Name:  "not ARP",
			Frame: l2frame.Pad(l2frame.Header{Dst: l2frame.Broadcast, Src: clientMAC, EtherType: 0x0800}.Append(nil)),
		},
		{
			Name:  "truncated",
			Frame: request(l2frame.Broadcast, Packet{OpRequest, clientMAC, clientIP, zeroMAC, vip})[:30],
		},
	}
	nstest.CheckAnswers(t, newResponder, nodeMAC, vip, tests)
}

func TestConflictRateLimit(t *testing.T) {
	garp := Frame(l2frame.Broadcast, otherMAC, Packet{OpRequest, otherMAC, vip, zeroMAC, vip})
	nstest.CheckConflictLimit(t, newResponder, nodeMAC, vip, garp)
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
	nstest.CheckOptions(t, newResponder, DefaultRefreshInterval, DefaultBurstCount, DefaultBurstInterval)
}

func testResponder(t *testing.T, opts Options) *Responder {
	t.Helper()
	return nstest.TestResponder(t, newResponder, nodeMAC, opts)
}

func equalPacket(a, b Packet) bool {
	return a.Op == b.Op && bytes.Equal(a.SenderMAC, b.SenderMAC) && a.SenderIP == b.SenderIP &&
		bytes.Equal(a.TargetMAC, b.TargetMAC) && a.TargetIP == b.TargetIP
}
