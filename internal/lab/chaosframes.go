package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/packet"
)

// Frames for the bad-frames scenario: what a broken or hostile host might
// put on the LAN. Each bad frame asks, one way or another, about an address
// a node owns, in a form that deserves no answer, from a MAC of its own
// (BadFrameMAC(i) for the i-th); the good ones come from GoodFrameMAC and
// must be answered. Answers are unicast back to the asker's MAC, so
// counting what reaches each MAC tells right from wrong, frame by frame.
var (
	GoodFrameMAC = net.HardwareAddr{0x02, 0x42, 0x41, 0x44, 0x00, 0x02}
	badFrameMAC  = net.HardwareAddr{0x02, 0x42, 0x41, 0x44, 0x00, 0x01}
	// The senders' addresses: on the LAN, held by no member.
	frameSenderIPv4 = netip.MustParseAddr("192.0.2.98")
	frameSenderIPv6 = netip.MustParseAddr("2001:db8::98")
)

const (
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
	etherTypeQinQ = 0x88a8
)

// NamedFrame is a frame and what it is, for the report.
type NamedFrame struct {
	Name  string
	Frame []byte
}

// arpRequest is a well-formed ARP request from src for target.
func arpRequest(src net.HardwareAddr, from, target netip.Addr) []byte {
	f := make([]byte, arpFrameLen)
	copy(f[0:6], broadcastMAC)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], etherTypeARP)
	binary.BigEndian.PutUint16(f[14:16], 1)
	binary.BigEndian.PutUint16(f[16:18], 0x0800)
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:22], 1)
	copy(f[22:28], src)
	a, t := from.As4(), target.As4()
	copy(f[28:32], a[:])
	copy(f[38:42], t[:])
	return f
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// GoodFrames are a correct ARP request for addr4 and a correct Neighbor
// Solicitation for addr6 (skipped when not valid), from GoodFrameMAC.
func GoodFrames(addr4, addr6 netip.Addr) []NamedFrame {
	out := []NamedFrame{{"arp request", arpRequest(GoodFrameMAC, frameSenderIPv4, addr4)}}
	if addr6.IsValid() {
		out = append(out, NamedFrame{"neighbor solicitation", neighborSolicitation(GoodFrameMAC, addr6, nsOpts{})})
	}
	return out
}

// BadFrameMAC is the source MAC of the i-th of BadFrames (i < 256).
func BadFrameMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x42, 0x41, 0x44, 0x01, byte(i)}
}

// BadFrames are frames about addr4 (and addr6, when valid) that must get no
// answer: truncated, malformed, oversized, VLAN-tagged, under odd
// EtherTypes, NDP that RFC 4861 says to discard, and seeded random bytes.
func BadFrames(addr4, addr6 netip.Addr) []NamedFrame {
	out := badFrames(addr4, addr6)
	for i := range out {
		// Everywhere the MAC appears: in the Ethernet header, as the ARP
		// sender, in the NDP link-layer option; the random frames carry
		// it only in their header.
		out[i].Frame = bytes.ReplaceAll(out[i].Frame, badFrameMAC, BadFrameMAC(i))
	}
	return out
}

func badFrames(addr4, addr6 netip.Addr) []NamedFrame {
	req := func() []byte { return arpRequest(badFrameMAC, frameSenderIPv4, addr4) }
	var out []NamedFrame
	add := func(name string, f []byte) { out = append(out, NamedFrame{name, f}) }
	for _, n := range []int{14, 15, 21, 28, 38, 41} {
		add(fmt.Sprintf("arp truncated to %d bytes", n), req()[:n])
	}
	// Wrong sizes and types; the target address stays at the offset a
	// parser that trusts nothing but offsets would read.
	for _, c := range []struct {
		name string
		off  int
		val  []byte
	}{
		{"arp hardware length 0", 18, []byte{0}},
		{"arp hardware length 255", 18, []byte{255}},
		{"arp protocol length 16", 19, []byte{16}},
		{"arp hardware type 6", 14, []byte{0, 6}},
		{"arp protocol type IPv6", 16, []byte{0x86, 0xdd}},
		{"arp opcode 0", 20, []byte{0, 0}},
		{"arp opcode 3 (RARP)", 20, []byte{0, 3}},
		{"arp opcode 65535", 20, []byte{0xff, 0xff}},
	} {
		f := req()
		copy(f[c.off:], c.val)
		add(c.name, f)
	}
	// Lengths that claim 255-byte addresses, the frame long enough to hold
	// them: no 4-byte IPv4 target anywhere a correct parser looks.
	big := append(req(), make([]byte, 14+8+2*(255+255)-arpFrameLen)...)
	big[18], big[19] = 255, 255
	add("arp oversized, 255-byte addresses", big)
	jumbo := append(req()[:20], make([]byte, 1500-6)...)
	binary.BigEndian.PutUint16(jumbo[20:22], 9)
	add("arp 1514 bytes, opcode 9", jumbo)
	for _, c := range []struct {
		name string
		tags []uint16 // TPIDs, outermost first
	}{
		{"arp in 802.1Q VLAN 100", []uint16{etherTypeVLAN}},
		{"arp in 802.1ad QinQ", []uint16{etherTypeQinQ, etherTypeVLAN}},
	} {
		add(c.name, vlanTag(req(), c.tags))
	}
	for _, et := range []uint16{0x0000, 0x0805, 0x88b5, 0xffff, etherTypeIPv6} {
		f := req()
		binary.BigEndian.PutUint16(f[12:14], et)
		add(fmt.Sprintf("arp body under EtherType %#04x", et), f)
	}
	if addr6.IsValid() {
		ns := func(o nsOpts) []byte { return neighborSolicitation(badFrameMAC, addr6, o) }
		add("ns hop limit 254", ns(nsOpts{hopLimit: 254}))
		add("ns bad checksum", ns(nsOpts{badChecksum: true}))
		add("ns code 1", ns(nsOpts{code: 1}))
		add("ns option length 0", ns(nsOpts{zeroOption: true}))
		add("ns truncated to 20 bytes of ICMPv6", ns(nsOpts{truncate: 20}))
		add("ns payload length beyond the frame", ns(nsOpts{payloadExtra: 64}))
		add("ns unspecified source with a link-layer option", ns(nsOpts{unspecified: true}))
		add("ns in 802.1Q VLAN 100", vlanTag(ns(nsOpts{}), []uint16{etherTypeVLAN}))
	}
	// Seeded noise under the EtherTypes the speaker listens to.
	rng := rand.New(rand.NewPCG(14, 8))
	for i := range 32 {
		f := make([]byte, 14+rng.IntN(1500))
		for j := range f {
			f[j] = byte(rng.UintN(256))
		}
		copy(f[0:6], broadcastMAC)
		copy(f[6:12], badFrameMAC)
		et := uint16(etherTypeARP)
		if i%2 == 1 {
			et = etherTypeIPv6
		}
		binary.BigEndian.PutUint16(f[12:14], et)
		add(fmt.Sprintf("random bytes %d (EtherType %#04x)", i, et), f)
	}
	return out
}

// vlanTag inserts 802.1Q-style tags (VLAN 100) after the MAC addresses.
func vlanTag(f []byte, tpids []uint16) []byte {
	out := append([]byte{}, f[:12]...)
	for _, tpid := range tpids {
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, 100)
	}
	return append(out, f[12:]...)
}

// nsOpts spoils a Neighbor Solicitation in one way.
type nsOpts struct {
	hopLimit     byte // 0 means the required 255
	code         byte
	badChecksum  bool
	zeroOption   bool // a source link-layer option of length 0
	truncate     int  // ICMPv6 bytes kept; 0 keeps all
	payloadExtra int  // added to the IPv6 payload length, beyond the frame
	unspecified  bool // from :: (duplicate address detection), with the option
}

// neighborSolicitation builds an NS for target from src, to target's
// solicited-node multicast group, spoilt as o says.
func neighborSolicitation(src net.HardwareAddr, target netip.Addr, o nsOpts) []byte {
	t := target.As16()
	group := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]})
	from := frameSenderIPv6
	if o.unspecified {
		from = netip.IPv6Unspecified()
	}
	icmp := make([]byte, 24, 32)
	icmp[0], icmp[1] = 135, o.code
	copy(icmp[8:24], t[:])
	optLen := byte(1)
	if o.zeroOption {
		optLen = 0
	}
	icmp = append(append(icmp, 1, optLen), src...)
	sum := icmpv6Checksum(from, group, icmp)
	if o.badChecksum {
		sum ^= 0x5a5a
	}
	binary.BigEndian.PutUint16(icmp[2:4], sum)
	if o.truncate > 0 {
		icmp = icmp[:o.truncate]
	}
	hop := o.hopLimit
	if hop == 0 {
		hop = 255
	}
	g := group.As16()
	f := make([]byte, 0, 14+40+len(icmp))
	f = append(f, 0x33, 0x33, g[12], g[13], g[14], g[15])
	f = append(f, src...)
	f = binary.BigEndian.AppendUint16(f, etherTypeIPv6)
	f = append(f, 0x60, 0, 0, 0)
	f = binary.BigEndian.AppendUint16(f, uint16(len(icmp)+o.payloadExtra))
	f = append(f, 58, hop)
	fa := from.As16()
	f = append(append(f, fa[:]...), g[:]...)
	return append(f, icmp...)
}

// icmpv6Checksum is the ICMPv6 checksum over the IPv6 pseudo-header and
// msg (whose checksum field is zero).
func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var b []byte
	s, d := src.As16(), dst.As16()
	b = append(append(b, s[:]...), d[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	b = append(b, 0, 0, 0, 58)
	b = append(b, msg...)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// FloodResult is what a flood sent and what came back.
type FloodResult struct {
	Sent int
	// Answers counts the ARP replies and Neighbor Advertisements that
	// reached the client, by the MAC they were sent to.
	Answers map[string]int
}

// FloodFrames sends frames from the client's eth0, round-robin, at about
// perSecond frames a second for d, and counts the ARP replies and Neighbor
// Advertisements sent back to the MACs frames come from.
func (l *Lab) FloodFrames(ctx context.Context, frames []NamedFrame, perSecond int, d time.Duration) (FloodResult, error) {
	if len(frames) == 0 || perSecond <= 0 {
		return FloodResult{}, errors.New("flood: no frames, or no rate")
	}
	var conn *packet.Conn
	err := inNetns(l.clientM.ns, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, 0x0003, nil) // ETH_P_ALL: the answers of both families
		return err
	})
	if err != nil {
		return FloodResult{}, fmt.Errorf("flood socket in the client: %w", err)
	}
	defer conn.Close()

	res := FloodResult{Answers: map[string]int{}}
	var mu sync.Mutex
	recvCtx, stopRecv := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for recvCtx.Err() == nil {
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _, err := conn.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if err != nil {
				return
			}
			if isAnswer(buf[:n]) {
				mu.Lock()
				res.Answers[net.HardwareAddr(buf[0:6]).String()]++
				mu.Unlock()
			}
		}
	})

	// Sent in bursts every millisecond: a ticker per frame cannot keep up
	// with tens of thousands a second.
	const tick = time.Millisecond
	start := time.Now()
	t := time.NewTicker(tick)
	var sendErr error
	for time.Since(start) < d && ctx.Err() == nil {
		due := int(time.Since(start).Seconds()*float64(perSecond)) + 1
		for ; res.Sent < due; res.Sent++ {
			f := frames[res.Sent%len(frames)].Frame
			if _, err := conn.WriteTo(f, &packet.Addr{HardwareAddr: net.HardwareAddr(f[0:6])}); err != nil {
				sendErr = fmt.Errorf("flood: send %q: %w", frames[res.Sent%len(frames)].Name, err)
				break
			}
		}
		if sendErr != nil {
			break
		}
		<-t.C
	}
	t.Stop()
	time.Sleep(300 * time.Millisecond) // the last answers
	stopRecv()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return res, sendErr
}

// isAnswer: an ARP reply, or an ICMPv6 Neighbor Advertisement (untagged).
func isAnswer(f []byte) bool {
	if len(f) < 14 {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case etherTypeARP:
		return len(f) >= 22 && binary.BigEndian.Uint16(f[20:22]) == 2
	case etherTypeIPv6:
		return len(f) >= 14+40+1 && f[14+6] == 58 && f[14+40] == 136
	}
	return false
}
