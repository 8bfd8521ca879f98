// Package arp answers ARP requests for the IPv4 addresses this node announces
// on one interface, announces them with gratuitous ARP when taken and at a
// regular interval after, and reports other hosts claiming them.
//
// It uses an AF_PACKET socket for both directions, so it works whatever IP
// configuration the interface has (none at all included). It needs
// CAP_NET_RAW. The socket, pacing and conflict reporting are l2frame's; this
// package decides what an ARP frame asks and how to answer it.
package arp

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/herald-lb/herald/internal/l2frame"
)

// Defaults for the zero values of Options.
const (
	DefaultRefreshInterval = l2frame.DefaultRefreshInterval
	DefaultBurstCount      = l2frame.DefaultBurstCount
	DefaultBurstInterval   = l2frame.DefaultBurstInterval
)

// Options configure a Responder. A gratuitous round is an ARP request and an
// ARP reply.
type Options = l2frame.Options

// Responder answers ARP on one interface. Create it with NewResponder, start
// it with Run and give it addresses with SetAddresses, in any order.
// SetAddresses ignores addresses that are not IPv4.
type Responder = l2frame.Responder

// NewResponder opens the raw socket on opts.Interface. The socket belongs to
// the network namespace of the calling thread.
func NewResponder(opts Options) (*Responder, error) {
	return l2frame.Listen(opts, protocol{})
}

// newResponder validates opts and builds a responder without a socket.
func newResponder(opts Options) (*Responder, error) {
	return l2frame.New(opts, protocol{})
}

// protocol is ARP for l2frame.Responder.
type protocol struct{}

func (protocol) Name() string      { return "arp" }
func (protocol) EtherType() uint16 { return l2frame.EtherTypeARP }

func (protocol) Filter() []l2frame.Match {
	return []l2frame.Match{
		{Offset: 12, Size: 2, Values: []uint32{uint32(l2frame.EtherTypeARP)}},
		{Offset: 14, Size: 2, Values: []uint32{hwEthernet}},
		{Offset: 16, Size: 2, Values: []uint32{uint32(l2frame.EtherTypeIPv4)}},
		{Offset: 18, Size: 2, Values: []uint32{0x0604}}, // address lengths
	}
}

func (protocol) Accept(a netip.Addr) (netip.Addr, bool) {
	a = a.Unmap()
	return a, a.Is4()
}

func (protocol) Inspect(frame []byte, self net.HardwareAddr, owns func(netip.Addr) bool) l2frame.Inspection {
	h, payload, err := l2frame.ParseHeader(frame)
	if err != nil || h.EtherType != l2frame.EtherTypeARP {
		return l2frame.Inspection{}
	}
	p, err := ParsePacket(payload)
	if err != nil || bytes.Equal(p.SenderMAC, self) {
		return l2frame.Inspection{}
	}
	// Any ARP packet, request or reply, whose sender is an owned address
	// tells its receivers to send that address's traffic to another MAC.
	in := l2frame.Inspection{Claimed: p.SenderIP, ClaimedBy: p.SenderMAC}
	if p.Op != OpRequest || !(l2frame.IsBroadcast(h.Dst) || bytes.Equal(h.Dst, self)) {
		return in
	}
	// A request with sender = target is an announcement, not a question.
	if p.SenderIP == p.TargetIP || !owns(p.TargetIP) {
		return in
	}
	in.Asked = p.TargetIP
	in.Reply = Frame(p.SenderMAC, self, Packet{
		Op:        OpReply,
		SenderMAC: self,
		SenderIP:  p.TargetIP,
		TargetMAC: p.SenderMAC,
		TargetIP:  p.SenderIP,
	})
	return in
}

func (protocol) Gratuitous(self net.HardwareAddr, addr netip.Addr) (net.HardwareAddr, [][]byte) {
	request, reply := GratuitousFrames(self, addr)
	return l2frame.Broadcast, [][]byte{request, reply}
}
