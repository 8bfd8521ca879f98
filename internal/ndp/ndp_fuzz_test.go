package ndp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/herald-lb/herald/internal/l2frame"
)

// fixChecksum writes the right ICMPv6 checksum into the IPv6 packet b, when
// it is long enough to carry one, so that fuzzing gets past the checksum
// check to the options and the rules after it.
func fixChecksum(b []byte) {
	if len(b) < ipv6HeaderLen {
		return
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen < checksumOffset+2 || len(b) < ipv6HeaderLen+plen {
		return
	}
	icmp := b[ipv6HeaderLen : ipv6HeaderLen+plen]
	icmp[checksumOffset], icmp[checksumOffset+1] = 0, 0
	src, dst := netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	binary.BigEndian.PutUint16(icmp[checksumOffset:], checksum(src, dst, icmp))
}

// seedFrames are captured and built frames for both fuzz targets.
func seedFrames() [][]byte {
	mcast := MulticastMAC(SolicitedNode(vip))
	_, garp := (&protocol{}).Gratuitous(nodeMAC, vip)
	return append(garp, ndisc6NS, kernelNA,
		Frame(mcast, clientMAC, Message{Type: TypeNeighborSolicitation, Src: netip.IPv6Unspecified(),
			Dst: SolicitedNode(vip), Target: vip}),
		Frame(nodeMAC, clientMAC, Message{Type: TypeNeighborSolicitation, Src: clientIP, Dst: vip, Target: vip}),
		Frame(clientMAC, otherMAC, Message{Type: TypeNeighborAdvertisement, Src: vip, Dst: clientIP, Solicited: true, Target: vip}),
	)
}

// FuzzParseIPv6 checks the neighbor message decoder: it never panics, a
// packet cut short of its payload length is an error (l2frame.ErrShort once
// the fixed header is there), and a decoded message encodes to a packet
// that decodes to the same message.
func FuzzParseIPv6(f *testing.F) {
	for _, frame := range seedFrames() {
		f.Add(frame[l2frame.HeaderLen:], false)
	}
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = slices.Clone(b)
			fixChecksum(b)
		}
		m, err := ParseIPv6(b)
		if err != nil {
			return
		}
		back, err := ParseIPv6(m.AppendIPv6(nil))
		if err != nil || !equalMessage(back, m) {
			t.Fatalf("re-encoded message decodes to %+v, %v; want %+v", back, err, m)
		}
		plen := ipv6HeaderLen + int(binary.BigEndian.Uint16(b[4:6]))
		for n := range plen {
			_, err := ParseIPv6(b[:n])
			if err == nil || (n >= ipv6HeaderLen && !errors.Is(err, l2frame.ErrShort)) {
				t.Fatalf("truncated to %d of %d bytes: err = %v", n, plen, err)
			}
		}
	})
}

// FuzzInspect feeds whole frames to the responder's NDP logic with every
// address owned. A reply must be an advertisement of the target asked for,
// to the solicitor (or to all nodes for a DAD probe), that Herald's own
// receive checks accept, built in its own memory; a truncated frame yields
// nothing.
func FuzzInspect(f *testing.F) {
	for _, frame := range seedFrames() {
		f.Add(frame, false)
	}
	ownsAll := func(netip.Addr) bool { return true }
	p := &protocol{}
	f.Fuzz(func(t *testing.T, frame []byte, fix bool) {
		frame = slices.Clone(frame) // overwritten below
		if fix && len(frame) > l2frame.HeaderLen {
			fixChecksum(frame[l2frame.HeaderLen:])
		}
		in := p.Inspect(frame, nodeMAC, ownsAll)
		for n := range min(len(frame), l2frame.HeaderLen+ipv6HeaderLen+messageLen) {
			if got := p.Inspect(frame[:n], nodeMAC, ownsAll); got.Claimed.IsValid() || got.Reply != nil {
				t.Fatalf("frame truncated to %d bytes gave %+v", n, got)
			}
		}
		if in.Reply == nil {
			return
		}
		h, _, _ := l2frame.ParseHeader(slices.Clone(frame))
		m, err := ParseIPv6(slices.Clone(frame[l2frame.HeaderLen:]))
		if err != nil || m.Type != TypeNeighborSolicitation {
			t.Fatalf("answered a frame that is no solicitation: %+v, %v", m, err)
		}
		saved := slices.Clone(in.Reply)
		for i := range frame {
			frame[i] ^= 0xff
		}
		if !bytes.Equal(saved, in.Reply) {
			t.Fatal("the reply aliases the received frame")
		}
		checkAdvertisement(t, in, h, m)
	})
}

// checkAdvertisement checks that in's reply answers solicitation m, which
// came in a frame with header h, from nodeMAC.
func checkAdvertisement(t *testing.T, in l2frame.Inspection, h l2frame.Header, m Message) {
	t.Helper()
	rh, payload, err := l2frame.ParseHeader(in.Reply)
	if err != nil || rh.EtherType != l2frame.EtherTypeIPv6 || !bytes.Equal(rh.Src, nodeMAC) {
		t.Fatalf("reply header %+v, %v", rh, err)
	}
	na, err := ParseIPv6(payload)
	if err != nil {
		t.Fatalf("our own reply fails our receive checks: %v\n%x", err, in.Reply)
	}
	want := Message{Type: TypeNeighborAdvertisement, Src: m.Target, Dst: m.Src, Solicited: true, Override: true,
		Target: m.Target, LinkAddr: nodeMAC}
	wantMAC := m.LinkAddr
	if wantMAC == nil {
		wantMAC = h.Src
	}
	if m.Src.IsUnspecified() {
		want.Dst, want.Solicited, wantMAC = AllNodes, false, MulticastMAC(AllNodes)
	}
	if in.Asked != m.Target || !equalMessage(na, want) || !bytes.Equal(rh.Dst, wantMAC) {
		t.Fatalf("reply to %s for %v: %+v; want %+v to %s", rh.Dst, in.Asked, na, want, wantMAC)
	}
}
