package ndp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/herald-lb/herald/internal/l2frame"
)

// ICMPv6 types of the two messages handled (RFC 4861 §4.3, §4.4).
const (
	TypeNeighborSolicitation  uint8 = 135
	TypeNeighborAdvertisement uint8 = 136
)

const (
	ipv6HeaderLen   = 40
	protoICMPv6     = 58
	ndHopLimit      = 255 // RFC 4861: anything else may have crossed a router
	messageLen      = 24  // type, code, checksum, flags/reserved, target
	optSourceLL     = 1
	optTargetLL     = 2
	flagRouter      = 0x80
	flagSolicited   = 0x40
	flagOverride    = 0x20
	linkAddrOptLen  = 8
	flagsOffset     = 4
	checksumOffset  = 2
	targetOffset    = 8
	optionsOffset   = messageLen
	optionUnitBytes = 8
)

// Reasons a packet is not a valid neighbor message (RFC 4861 §7.1).
var (
	errNotIPv6        = errors.New("not an IPv6 packet")
	errNotICMPv6      = errors.New("next header is not ICMPv6")
	errNotNeighbor    = errors.New("not a neighbor solicitation or advertisement")
	errHopLimit       = errors.New("hop limit is not 255")
	errChecksum       = errors.New("bad ICMPv6 checksum")
	errCode           = errors.New("ICMPv6 code is not 0")
	errBadOption      = errors.New("malformed option")
	errTarget         = errors.New("target is a multicast address")
	errSource         = errors.New("source is a multicast address")
	errDAD            = errors.New("solicitation from the unspecified address breaks the DAD rules")
	errSolicitedMcast = errors.New("solicited advertisement sent to a multicast address")
)

// Message is a Neighbor Solicitation or Advertisement with the IPv6 addresses
// it travelled between.
type Message struct {
	Type     uint8
	Src, Dst netip.Addr
	// Flags, advertisements only.
	Router, Solicited, Override bool
	Target                      netip.Addr
	// LinkAddr is the source link-layer address option of a solicitation or
	// the target link-layer address option of an advertisement; nil when
	// absent.
	LinkAddr net.HardwareAddr
}

// ParseIPv6 decodes and validates an IPv6 packet (the bytes after the
// Ethernet header) carrying a neighbor message, applying the receive checks
// of RFC 4861 §7.1.1 and §7.1.2. Extension headers are not followed. The
// returned LinkAddr aliases b.
func ParseIPv6(b []byte) (Message, error) {
	if len(b) < ipv6HeaderLen || b[0]>>4 != 6 {
		return Message{}, errNotIPv6
	}
	if b[6] != protoICMPv6 {
		return Message{}, errNotICMPv6
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if len(b) < ipv6HeaderLen+plen {
		return Message{}, fmt.Errorf("ipv6 payload of %d bytes: %w", plen, l2frame.ErrShort)
	}
	m := Message{
		Src: netip.AddrFrom16([16]byte(b[8:24])),
		Dst: netip.AddrFrom16([16]byte(b[24:40])),
	}
	icmp := b[ipv6HeaderLen : ipv6HeaderLen+plen]
	if len(icmp) < messageLen {
		return Message{}, errNotNeighbor
	}
	m.Type = icmp[0]
	if m.Type != TypeNeighborSolicitation && m.Type != TypeNeighborAdvertisement {
		return Message{}, errNotNeighbor
	}
	if b[7] != ndHopLimit {
		return Message{}, errHopLimit
	}
	if checksum(m.Src, m.Dst, icmp) != 0 {
		return Message{}, errChecksum
	}
	if icmp[1] != 0 {
		return Message{}, errCode
	}
	// No packet comes from a group (RFC 4291 §2.7; the kernel drops such
	// packets too); answering one would send a solicited advertisement to
	// a multicast address, which receivers must ignore.
	if m.Src.IsMulticast() {
		return Message{}, errSource
	}
	m.Target = netip.AddrFrom16([16]byte(icmp[targetOffset:messageLen]))
	if m.Target.IsMulticast() {
		return Message{}, errTarget
	}
	want := uint8(optSourceLL)
	if m.Type == TypeNeighborAdvertisement {
		want = optTargetLL
		f := icmp[flagsOffset]
		m.Router, m.Solicited, m.Override = f&flagRouter != 0, f&flagSolicited != 0, f&flagOverride != 0
	}
	for opts := icmp[optionsOffset:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || len(opts) < int(opts[1])*optionUnitBytes {
			return Message{}, errBadOption
		}
		n := int(opts[1]) * optionUnitBytes
		if opts[0] == want && n == linkAddrOptLen && m.LinkAddr == nil {
			m.LinkAddr = net.HardwareAddr(opts[2:8])
		}
		opts = opts[n:]
	}
	switch m.Type {
	case TypeNeighborSolicitation:
		if m.Src.IsUnspecified() && (m.Dst != SolicitedNode(m.Target) || m.LinkAddr != nil) {
			return Message{}, errDAD
		}
	case TypeNeighborAdvertisement:
		if m.Dst.IsMulticast() && m.Solicited {
			return Message{}, errSolicitedMcast
		}
	}
	return m, nil
}

// AppendIPv6 appends m as an IPv6 packet with hop limit 255 and a correct
// ICMPv6 checksum. A LinkAddr, when set, is encoded as the option matching
// the message type.
func (m Message) AppendIPv6(b []byte) []byte {
	icmpLen := messageLen
	if m.LinkAddr != nil {
		icmpLen += linkAddrOptLen
	}
	b = append(b, 0x60, 0, 0, 0) // version 6, traffic class and flow label 0
	b = binary.BigEndian.AppendUint16(b, uint16(icmpLen))
	b = append(b, protoICMPv6, ndHopLimit)
	src, dst := m.Src.As16(), m.Dst.As16()
	b = append(b, src[:]...)
	b = append(b, dst[:]...)

	start := len(b)
	var flags byte
	if m.Router {
		flags |= flagRouter
	}
	if m.Solicited {
		flags |= flagSolicited
	}
	if m.Override {
		flags |= flagOverride
	}
	b = append(b, m.Type, 0, 0, 0, flags, 0, 0, 0)
	target := m.Target.As16()
	b = append(b, target[:]...)
	if m.LinkAddr != nil {
		opt := uint8(optSourceLL)
		if m.Type == TypeNeighborAdvertisement {
			opt = optTargetLL
		}
		b = append(b, opt, 1)
		b = l2frame.AppendMAC(b, m.LinkAddr)
	}
	binary.BigEndian.PutUint16(b[start+checksumOffset:], checksum(m.Src, m.Dst, b[start:]))
	return b
}

// Frame encodes m in an Ethernet frame from src to dst.
func Frame(dst, src net.HardwareAddr, m Message) []byte {
	b := make([]byte, 0, l2frame.HeaderLen+ipv6HeaderLen+messageLen+linkAddrOptLen)
	b = l2frame.Header{Dst: dst, Src: src, EtherType: l2frame.EtherTypeIPv6}.Append(b)
	return m.AppendIPv6(b)
}

// checksum is the ICMPv6 checksum (RFC 4443 §2.3) of msg between src and dst.
// Over a message that carries its checksum it yields 0 when that checksum is
// right.
func checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for ; len(b) >= 2; b = b[2:] {
			sum += uint32(b[0])<<8 | uint32(b[1])
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	sum += uint32(len(msg)>>16) + uint32(len(msg)&0xffff) + protoICMPv6
	add(msg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// AllNodes is the link-local all-nodes multicast group.
var AllNodes = netip.MustParseAddr("ff02::1")

// SolicitedNode returns the solicited-node multicast group of a
// (RFC 4291 §2.7.1): ff02::1:ff00:0/104 plus the low 24 bits of a.
func SolicitedNode(a netip.Addr) netip.Addr {
	v := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: v[13], 14: v[14], 15: v[15]})
}

// MulticastMAC returns the Ethernet address IPv6 multicast group g maps to
// (RFC 2464 §7): 33:33 plus the low 32 bits of g.
func MulticastMAC(g netip.Addr) net.HardwareAddr {
	v := g.As16()
	return net.HardwareAddr{0x33, 0x33, v[12], v[13], v[14], v[15]}
}
