package arp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/herald-lb/herald/internal/l2frame"
)

// ARP operations (RFC 826).
const (
	OpRequest uint16 = 1
	OpReply   uint16 = 2
)

const (
	hwEthernet = 1
	packetLen  = 28 // Ethernet/IPv4 ARP payload
)

var errNotEthernetIPv4 = errors.New("not an Ethernet/IPv4 ARP packet")

// Packet is an ARP payload for Ethernet hardware and IPv4 protocol addresses.
type Packet struct {
	Op        uint16
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

// ParsePacket decodes an ARP payload (the bytes after the Ethernet header).
// Trailing padding is ignored; the returned addresses alias b.
func ParsePacket(b []byte) (Packet, error) {
	if len(b) < packetLen {
		return Packet{}, fmt.Errorf("arp: %d bytes: %w", len(b), l2frame.ErrShort)
	}
	if binary.BigEndian.Uint16(b[0:2]) != hwEthernet ||
		binary.BigEndian.Uint16(b[2:4]) != l2frame.EtherTypeIPv4 ||
		b[4] != 6 || b[5] != 4 {
		return Packet{}, errNotEthernetIPv4
	}
	return Packet{
		Op:        binary.BigEndian.Uint16(b[6:8]),
		SenderMAC: net.HardwareAddr(b[8:14]),
		SenderIP:  netip.AddrFrom4([4]byte(b[14:18])),
		TargetMAC: net.HardwareAddr(b[18:24]),
		TargetIP:  netip.AddrFrom4([4]byte(b[24:28])),
	}, nil
}

// Append appends the encoded payload to b. Addresses that are not IPv4 encode
// as 0.0.0.0.
func (p Packet) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, hwEthernet)
	b = binary.BigEndian.AppendUint16(b, l2frame.EtherTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, p.Op)
	b = l2frame.AppendMAC(b, p.SenderMAC)
	b = appendIPv4(b, p.SenderIP)
	b = l2frame.AppendMAC(b, p.TargetMAC)
	return appendIPv4(b, p.TargetIP)
}

func appendIPv4(b []byte, a netip.Addr) []byte {
	if !a.Is4() {
		return append(b, 0, 0, 0, 0)
	}
	v := a.As4()
	return append(b, v[:]...)
}

// Frame encodes p in an Ethernet frame from src to dst, padded to the
// Ethernet minimum.
func Frame(dst, src net.HardwareAddr, p Packet) []byte {
	b := make([]byte, 0, l2frame.MinFrameLen)
	b = l2frame.Header{Dst: dst, Src: src, EtherType: l2frame.EtherTypeARP}.Append(b)
	return l2frame.Pad(p.Append(b))
}

// GratuitousFrames returns the two frames of one announcement of ip at mac:
// a request and a reply, both broadcast with sender = target = ip. Some
// hosts update their caches only from one kind, so both are sent. The reply's
// target MAC equals the sender MAC, which is what Linux requires to treat a
// reply as gratuitous.
func GratuitousFrames(mac net.HardwareAddr, ip netip.Addr) (request, reply []byte) {
	request = Frame(l2frame.Broadcast, mac, Packet{
		Op: OpRequest, SenderMAC: mac, SenderIP: ip, TargetMAC: make(net.HardwareAddr, 6), TargetIP: ip,
	})
	reply = Frame(l2frame.Broadcast, mac, Packet{
		Op: OpReply, SenderMAC: mac, SenderIP: ip, TargetMAC: mac, TargetIP: ip,
	})
	return request, reply
}
