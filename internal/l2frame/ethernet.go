package l2frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
)

// EtherTypes the responders care about.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeIPv6 uint16 = 0x86DD
)

// HeaderLen is the length of an untagged Ethernet II header.
const HeaderLen = 14

// MinFrameLen is the shortest Ethernet frame without its FCS. Shorter frames
// are padded because not every driver pads what a packet socket hands it.
const MinFrameLen = 60

// Broadcast is the Ethernet broadcast address.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ErrShort reports a frame too short for the header it should carry.
var ErrShort = errors.New("frame too short")

// Header is an untagged Ethernet II header.
type Header struct {
	Dst, Src  net.HardwareAddr
	EtherType uint16
}

// ParseHeader splits a frame into its Ethernet header and payload. The
// returned addresses alias b.
func ParseHeader(b []byte) (Header, []byte, error) {
	if len(b) < HeaderLen {
		return Header{}, nil, ErrShort
	}
	return Header{
		Dst:       net.HardwareAddr(b[0:6]),
		Src:       net.HardwareAddr(b[6:12]),
		EtherType: binary.BigEndian.Uint16(b[12:14]),
	}, b[HeaderLen:], nil
}

// Append appends the encoded header to b.
func (h Header) Append(b []byte) []byte {
	b = AppendMAC(b, h.Dst)
	b = AppendMAC(b, h.Src)
	return binary.BigEndian.AppendUint16(b, h.EtherType)
}

// Pad extends a frame with zeros to MinFrameLen.
func Pad(frame []byte) []byte {
	for len(frame) < MinFrameLen {
		frame = append(frame, 0)
	}
	return frame
}

// IsBroadcast reports whether mac is the broadcast address.
func IsBroadcast(mac net.HardwareAddr) bool { return bytes.Equal(mac, Broadcast) }

// AppendMAC appends exactly six bytes so that a malformed address cannot
// shift the fields after it.
func AppendMAC(b []byte, mac net.HardwareAddr) []byte {
	var m [6]byte
	copy(m[:], mac)
	return append(b, m[:]...)
}
