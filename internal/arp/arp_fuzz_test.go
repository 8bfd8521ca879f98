package arp

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/herald-lb/herald/internal/l2frame"
)

// FuzzParsePacket checks the ARP payload decoder: it never panics, a payload
// shorter than an Ethernet/IPv4 ARP packet is l2frame.ErrShort, and a decoded
// packet encodes back to the bytes it was read from, which decode to the
// same packet.
func FuzzParsePacket(f *testing.F) {
	for _, frame := range [][]byte{arpingRequest, kernelReply} {
		f.Add(frame[l2frame.HeaderLen:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if len(b) < packetLen && !errors.Is(err, l2frame.ErrShort) {
			t.Fatalf("%d bytes: err = %v, want ErrShort", len(b), err)
		}
		if err != nil {
			return
		}
		enc := p.Append(nil)
		if !bytes.Equal(enc, b[:packetLen]) {
			t.Fatalf("re-encoded\n%x\nfrom\n%x", enc, b[:packetLen])
		}
		back, err := ParsePacket(enc)
		if err != nil || !equalPacket(back, p) {
			t.Fatalf("re-encoded packet decodes to %+v, %v; want %+v", back, err, p)
		}
		for n := range packetLen {
			if _, err := ParsePacket(b[:n]); !errors.Is(err, l2frame.ErrShort) {
				t.Fatalf("truncated to %d bytes: err = %v, want ErrShort", n, err)
			}
		}
	})
}

// FuzzInspect feeds whole frames to the responder's ARP logic with every
// address owned, so that any request gets an answer. A reply must be a
// well-formed ARP reply to the asker for the address asked, built in its
// own memory; a claim must name the sender; a truncated frame yields
// nothing.
func FuzzInspect(f *testing.F) {
	req, reply := GratuitousFrames(clientMAC, clientIP)
	for _, frame := range [][]byte{arpingRequest, kernelReply, req, reply,
		Frame(nodeMAC, clientMAC, Packet{Op: OpRequest, SenderMAC: clientMAC, SenderIP: clientIP, TargetMAC: zeroMAC, TargetIP: vip})} {
		f.Add(frame)
	}
	ownsAll := func(netip.Addr) bool { return true }
	f.Fuzz(func(t *testing.T, frame []byte) {
		frame = slices.Clone(frame) // overwritten below
		in := protocol{}.Inspect(frame, nodeMAC, ownsAll)
		for n := range min(len(frame), l2frame.HeaderLen+packetLen) {
			if got := (protocol{}).Inspect(frame[:n], nodeMAC, ownsAll); got.Claimed.IsValid() || got.Reply != nil {
				t.Fatalf("frame truncated to %d bytes gave %+v", n, got)
			}
		}
		if !in.Claimed.IsValid() && in.Reply == nil {
			return
		}
		// Parsed from a copy: the packet aliases its bytes, and the frame
		// is overwritten below.
		p, err := ParsePacket(slices.Clone(frame[l2frame.HeaderLen:]))
		if err != nil {
			t.Fatalf("Inspect acted on a frame ParsePacket refuses: %v", err)
		}
		if in.Claimed != p.SenderIP || !bytes.Equal(in.ClaimedBy, p.SenderMAC) {
			t.Fatalf("claim %v at %v, want the sender %v at %v", in.Claimed, in.ClaimedBy, p.SenderIP, p.SenderMAC)
		}
		if in.Reply == nil {
			return
		}
		if in.Asked != p.TargetIP || p.Op != OpRequest {
			t.Fatalf("answered %v for a packet (op %d) asking for %v", in.Asked, p.Op, p.TargetIP)
		}
		saved := slices.Clone(in.Reply)
		for i := range frame {
			frame[i] ^= 0xff
		}
		if !bytes.Equal(saved, in.Reply) {
			t.Fatal("the reply aliases the received frame")
		}
		checkReply(t, in.Reply, p)
	})
}

// checkReply checks that reply answers request p from nodeMAC.
func checkReply(t *testing.T, reply []byte, p Packet) {
	t.Helper()
	if len(reply) != l2frame.MinFrameLen {
		t.Fatalf("reply of %d bytes, want %d", len(reply), l2frame.MinFrameLen)
	}
	h, payload, err := l2frame.ParseHeader(reply)
	if err != nil || h.EtherType != l2frame.EtherTypeARP || !bytes.Equal(h.Src, nodeMAC) || !bytes.Equal(h.Dst, p.SenderMAC) {
		t.Fatalf("reply header %+v, %v", h, err)
	}
	got, err := ParsePacket(payload)
	want := Packet{Op: OpReply, SenderMAC: nodeMAC, SenderIP: p.TargetIP, TargetMAC: p.SenderMAC, TargetIP: p.SenderIP}
	if err != nil || !equalPacket(got, want) {
		t.Fatalf("reply %+v, %v; want %+v", got, err, want)
	}
}
