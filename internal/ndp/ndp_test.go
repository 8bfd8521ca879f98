package ndp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
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
	nodeIP    = netip.MustParseAddr("2001:db8::1")
	clientIP  = netip.MustParseAddr("2001:db8::2")
	vip       = netip.MustParseAddr("2001:db8::100")
	unowned   = netip.MustParseAddr("2001:db8::101")
)

// Frames captured with tcpdump between two namespaces: ndisc6 soliciting
// 2001:db8::1 and the Linux kernel's advertisement in answer.
var (
	ndisc6NS = nstest.MustHex(`
		3333 ff00 0001 0000 5e00 5302 86dd 6008
		e859 0020 3aff 2001 0db8 0000 0000 0000
		0000 0000 0002 ff02 0000 0000 0000 0000
		0001 ff00 0001 8700 6d26 0000 0000 2001
		0db8 0000 0000 0000 0000 0000 0001 0101
		0000 5e00 5302`)
	kernelNA = nstest.MustHex(`
		0000 5e00 5302 0000 5e00 5301 86dd 6000
		0000 0020 3aff 2001 0db8 0000 0000 0000
		0000 0000 0001 2001 0db8 0000 0000 0000
		0000 0000 0002 8800 db72 6000 0000 2001
		0db8 0000 0000 0000 0000 0000 0001 0201
		0000 5e00 5301`)
)

func TestParseKernelFrames(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  Message
	}{
		{"ndisc6 solicitation", ndisc6NS, Message{
			Type: TypeNeighborSolicitation, Src: clientIP, Dst: SolicitedNode(nodeIP),
			Target: nodeIP, LinkAddr: clientMAC,
		}},
		{"kernel advertisement", kernelNA, Message{
			Type: TypeNeighborAdvertisement, Src: nodeIP, Dst: clientIP,
			Solicited: true, Override: true, Target: nodeIP, LinkAddr: nodeMAC,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIPv6(tt.frame[l2frame.HeaderLen:])
			if err != nil {
				t.Fatal(err)
			}
			if !equalMessage(got, tt.want) {
				t.Errorf("ParseIPv6 =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// TestReplyMatchesKernel answers the solicitation ndisc6 sent and expects the
// kernel's own advertisement, byte for byte, checksum included.
func TestReplyMatchesKernel(t *testing.T) {
	r := testResponder(t, Options{})
	r.SetAddresses([]netip.Addr{nodeIP})
	reply, addr := r.Answer(ndisc6NS, time.Now())
	if !bytes.Equal(reply, kernelNA) || addr != nodeIP {
		t.Errorf("reply for %v:\n got %x\nwant %x", addr, reply, kernelNA)
	}
}

func TestUnsolicitedAdvertisement(t *testing.T) {
	got := Frame(MulticastMAC(AllNodes), nodeMAC, Message{
		Type: TypeNeighborAdvertisement, Src: vip, Dst: AllNodes, Override: true, Target: vip, LinkAddr: nodeMAC,
	})
	want := nstest.MustHex(`
		3333 0000 0001 0000 5e00 5301 86dd
		6000 0000 0020 3a ff
		2001 0db8 0000 0000 0000 0000 0000 0100
		ff02 0000 0000 0000 0000 0000 0000 0001
		88 00 ` + checksumHex(vip, AllNodes, "8800 0000 2000 0000 2001 0db8 0000 0000 0000 0000 0000 0100 0201 0000 5e00 5301") + `
		20 00 0000
		2001 0db8 0000 0000 0000 0000 0000 0100
		02 01 0000 5e00 5301`)
	if !bytes.Equal(got, want) {
		t.Errorf("unsolicited advertisement\n got %x\nwant %x", got, want)
	}
}

// checksumHex computes the ICMPv6 checksum of msg (hex, checksum zero) the
// long way, as RFC 1071 describes it, independently of checksum().
func checksumHex(src, dst netip.Addr, msg string) string {
	m := nstest.MustHex(msg)
	pseudo := append(src.AsSlice(), dst.AsSlice()...)
	pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(m)))
	pseudo = append(pseudo, 0, 0, 0, 58)
	data := append(pseudo, m...)
	var sum uint64
	for i := 0; i+1 < len(data); i += 2 {
		sum += uint64(data[i])<<8 | uint64(data[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return fmt.Sprintf("%04x", ^uint16(sum))
}

func TestParseRejects(t *testing.T) {
	// valid builds a packet from m and lets edit change it before the
	// checksum is recomputed, so that only the intended rule is broken.
	build := func(m Message, edit func(icmp []byte), hopLimit byte) []byte {
		b := m.AppendIPv6(nil)
		b[7] = hopLimit
		icmp := b[ipv6HeaderLen:]
		if edit != nil {
			edit(icmp)
		}
		icmp[2], icmp[3] = 0, 0
		binary.BigEndian.PutUint16(icmp[2:], checksum(m.Src, m.Dst, icmp))
		return b
	}
	ns := Message{Type: TypeNeighborSolicitation, Src: clientIP, Dst: SolicitedNode(vip), Target: vip, LinkAddr: clientMAC}
	na := Message{Type: TypeNeighborAdvertisement, Src: clientIP, Dst: AllNodes, Override: true, Target: vip, LinkAddr: clientMAC}
	dad := Message{Type: TypeNeighborSolicitation, Src: netip.IPv6Unspecified(), Dst: SolicitedNode(vip), Target: vip}

	badChecksum := build(ns, nil, 255)
	badChecksum[len(badChecksum)-1] ^= 1
	notICMP := build(ns, nil, 255)
	notICMP[6] = 17
	notIPv6 := build(ns, nil, 255)
	notIPv6[0] = 0x45

	tests := []struct {
		name   string
		packet []byte
		want   error
	}{
		{"valid solicitation", build(ns, nil, 255), nil},
		{"valid advertisement", build(na, nil, 255), nil},
		{"valid DAD probe", build(dad, nil, 255), nil},
		{"hop limit 254", build(ns, nil, 254), errHopLimit},
		{"bad checksum", badChecksum, errChecksum},
		{"code 1", build(ns, func(b []byte) { b[1] = 1 }, 255), errCode},
		{"zero-length option", build(ns, func(b []byte) { b[optionsOffset+1] = 0 }, 255), errBadOption},
		{"option longer than the packet", build(ns, func(b []byte) { b[optionsOffset+1] = 2 }, 255), errBadOption},
		{"multicast target", build(ns, func(b []byte) { b[targetOffset] = 0xff }, 255), errTarget},
		// Found by FuzzInspect (testdata/fuzz/FuzzInspect/multicast-source).
		{"solicitation from a multicast source", build(Message{Type: TypeNeighborSolicitation, Src: AllNodes,
			Dst: SolicitedNode(vip), Target: vip, LinkAddr: clientMAC}, nil, 255), errSource},
		{"DAD probe with a link-layer option", build(Message{Type: TypeNeighborSolicitation, Src: netip.IPv6Unspecified(),
			Dst: SolicitedNode(vip), Target: vip, LinkAddr: clientMAC}, nil, 255), errDAD},
		{"DAD probe to the target itself", build(Message{Type: TypeNeighborSolicitation, Src: netip.IPv6Unspecified(),
			Dst: vip, Target: vip}, nil, 255), errDAD},
		{"solicited advertisement to a multicast address", build(na, func(b []byte) { b[flagsOffset] |= flagSolicited }, 255), errSolicitedMcast},
		{"echo request", build(ns, func(b []byte) { b[0] = 128 }, 255), errNotNeighbor},
		{"UDP", notICMP, errNotICMPv6},
		{"IPv4", notIPv6, errNotIPv6},
		{"truncated", build(ns, nil, 255)[:50], l2frame.ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIPv6(tt.packet)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestGroupAddresses(t *testing.T) {
	tests := []struct {
		addr, group, mac string
	}{
		{"2001:db8::100", "ff02::1:ff00:100", "33:33:ff:00:01:00"},
		{"2001:db8:1::abcd:ef12:3456", "ff02::1:ff12:3456", "33:33:ff:12:34:56"},
		{"fe80::1", "ff02::1:ff00:1", "33:33:ff:00:00:01"},
	}
	for _, tt := range tests {
		g := SolicitedNode(netip.MustParseAddr(tt.addr))
		if g.String() != tt.group || MulticastMAC(g).String() != tt.mac {
			t.Errorf("%s: group %v (%v), want %s (%s)", tt.addr, g, MulticastMAC(g), tt.group, tt.mac)
		}
	}
	if got := MulticastMAC(AllNodes).String(); got != "33:33:00:00:00:01" {
		t.Errorf("all-nodes MAC %s", got)
	}
}

func TestAnswer(t *testing.T) {
	frame := func(dst, src net.HardwareAddr, m Message) []byte { return Frame(dst, src, m) }
	mcast := MulticastMAC(SolicitedNode(vip))
	solicitedNA := func(dstMAC net.HardwareAddr, dst netip.Addr) []byte {
		return Frame(dstMAC, nodeMAC, Message{Type: TypeNeighborAdvertisement, Src: vip, Dst: dst,
			Solicited: true, Override: true, Target: vip, LinkAddr: nodeMAC})
	}
	tests := []nstest.AnswerCase{
		{
			Name: "multicast solicitation with source link-layer option",
			Frame: frame(mcast, clientMAC, Message{Type: TypeNeighborSolicitation, Src: clientIP,
				Dst: SolicitedNode(vip), Target: vip, LinkAddr: clientMAC}),
			WantReply: solicitedNA(clientMAC, clientIP),
		},
		{
			Name: "unicast NUD probe without option goes back to the frame source",
			Frame: frame(nodeMAC, clientMAC, Message{Type: TypeNeighborSolicitation, Src: clientIP,
				Dst: vip, Target: vip}),
			WantReply: solicitedNA(clientMAC, clientIP),
		},
		{
			Name: "link-layer option wins over the frame source",
			Frame: frame(mcast, otherMAC, Message{Type: TypeNeighborSolicitation, Src: clientIP,
				Dst: SolicitedNode(vip), Target: vip, LinkAddr: clientMAC}),
			WantReply: solicitedNA(clientMAC, clientIP),
		},
		{
			Name: "DAD probe is defended to all nodes, unsolicited",
			Frame: frame(mcast, clientMAC, Message{Type: TypeNeighborSolicitation, Src: netip.IPv6Unspecified(),
				Dst: SolicitedNode(vip), Target: vip}),
			WantReply: Frame(MulticastMAC(AllNodes), nodeMAC, Message{Type: TypeNeighborAdvertisement, Src: vip,
				Dst: AllNodes, Override: true, Target: vip, LinkAddr: nodeMAC}),
		},
		{
			Name: "solicitation for an address not owned",
			Frame: frame(MulticastMAC(SolicitedNode(unowned)), clientMAC, Message{Type: TypeNeighborSolicitation,
				Src: clientIP, Dst: SolicitedNode(unowned), Target: unowned, LinkAddr: clientMAC}),
		},
		{
			Name: "unicast solicitation to another host",
			Frame: frame(otherMAC, clientMAC, Message{Type: TypeNeighborSolicitation, Src: clientIP,
				Dst: vip, Target: vip}),
		},
		{
			Name: "our own frame",
			Frame: frame(mcast, nodeMAC, Message{Type: TypeNeighborSolicitation, Src: clientIP,
				Dst: SolicitedNode(vip), Target: vip, LinkAddr: nodeMAC}),
		},
		{
			Name: "advertisement from another MAC",
			Frame: frame(MulticastMAC(AllNodes), otherMAC, Message{Type: TypeNeighborAdvertisement, Src: vip,
				Dst: AllNodes, Override: true, Target: vip, LinkAddr: otherMAC}),
			WantConflict: "2001:db8::100 " + otherMAC.String(),
		},
		{
			Name: "advertisement without option from another MAC",
			Frame: frame(clientMAC, otherMAC, Message{Type: TypeNeighborAdvertisement, Src: vip,
				Dst: clientIP, Solicited: true, Target: vip}),
			WantConflict: "2001:db8::100 " + otherMAC.String(),
		},
		{
			Name: "advertisement for an address not owned",
			Frame: frame(MulticastMAC(AllNodes), otherMAC, Message{Type: TypeNeighborAdvertisement, Src: unowned,
				Dst: AllNodes, Override: true, Target: unowned, LinkAddr: otherMAC}),
		},
		{
			Name: "solicitation from an owned address by another MAC",
			Frame: frame(MulticastMAC(SolicitedNode(unowned)), otherMAC, Message{Type: TypeNeighborSolicitation,
				Src: vip, Dst: SolicitedNode(unowned), Target: unowned, LinkAddr: otherMAC}),
			WantConflict: "2001:db8::100 " + otherMAC.String(),
		},
		{
			Name: "bad checksum",
			Frame: func() []byte {
				f := frame(mcast, clientMAC, Message{Type: TypeNeighborSolicitation, Src: clientIP,
					Dst: SolicitedNode(vip), Target: vip, LinkAddr: clientMAC})
				f[l2frame.HeaderLen+ipv6HeaderLen+checksumOffset] ^= 0xff
				return f
			}(),
		},
		{
			Name:  "not IPv6",
			Frame: l2frame.Pad(l2frame.Header{Dst: nodeMAC, Src: clientMAC, EtherType: l2frame.EtherTypeARP}.Append(nil)),
		},
	}
	nstest.CheckAnswers(t, newResponder, nodeMAC, vip, tests)
}

func TestConflictRateLimit(t *testing.T) {
	na := Frame(MulticastMAC(AllNodes), otherMAC, Message{Type: TypeNeighborAdvertisement, Src: vip,
		Dst: AllNodes, Override: true, Target: vip, LinkAddr: otherMAC})
	nstest.CheckConflictLimit(t, newResponder, nodeMAC, vip, na)
}

func TestMemberships(t *testing.T) {
	var log []string
	m := &memberships{
		count: map[netip.Addr]int{},
		join:  func(g netip.Addr) error { log = append(log, "join "+g.String()); return nil },
		leave: func(g netip.Addr) error { log = append(log, "leave "+g.String()); return nil },
	}
	// 2001:db8::100 and 2001:db8:1::100 share a solicited-node group.
	a := netip.MustParseAddr("2001:db8::100")
	b := netip.MustParseAddr("2001:db8:1::100")
	c := netip.MustParseAddr("2001:db8::200")
	steps := []struct {
		added, removed []netip.Addr
		want           []string
	}{
		{[]netip.Addr{a, b}, nil, []string{"join ff02::1:ff00:100"}},
		{[]netip.Addr{c}, []netip.Addr{a}, []string{"join ff02::1:ff00:200"}},
		{nil, []netip.Addr{b, c}, []string{"leave ff02::1:ff00:100", "leave ff02::1:ff00:200"}},
		{nil, []netip.Addr{b}, nil}, // never below zero
	}
	for i, s := range steps {
		log = nil
		if errs := m.update(s.added, s.removed); errs != nil {
			t.Errorf("step %d: %v", i, errs)
		}
		if !slices.Equal(log, s.want) {
			t.Errorf("step %d: %v, want %v", i, log, s.want)
		}
	}
	m.join = func(g netip.Addr) error { return errors.New("no") }
	if errs := m.update([]netip.Addr{a}, nil); len(errs) != 1 {
		t.Errorf("join error not returned: %v", errs)
	}
}

func TestSetAddressesKeepsIPv6(t *testing.T) {
	r := testResponder(t, Options{})
	r.SetAddresses([]netip.Addr{
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("::ffff:192.0.2.7"),
		netip.MustParseAddr("ff02::1"),
		netip.IPv6Unspecified(),
		netip.MustParseAddr("fe80::1%eth0"),
		vip,
		{},
	})
	want := []netip.Addr{vip, netip.MustParseAddr("fe80::1")}
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

func equalMessage(a, b Message) bool {
	return a.Type == b.Type && a.Src == b.Src && a.Dst == b.Dst && a.Router == b.Router &&
		a.Solicited == b.Solicited && a.Override == b.Override && a.Target == b.Target &&
		bytes.Equal(a.LinkAddr, b.LinkAddr)
}
