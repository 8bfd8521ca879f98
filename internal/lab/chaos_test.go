package lab

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/arp"
	"github.com/herald-lb/herald/internal/ndp"
)

func TestParseCgroupOf(t *testing.T) {
	for _, c := range []struct {
		name, in string
		v2       bool
		want     string
		fail     bool
	}{
		{"v1 cpu alone", "4:memory:/x\n1:cpu:/a/b\n0::/\n", false, "/a/b", false},
		{"v1 cpu,cpuacct", "3:cpu,cpuacct:/lab\n", false, "/lab", false},
		{"v1 cpuset is not cpu", "3:cpuset:/s\n", false, "", true},
		{"v2", "0::/system.slice/x.service\n", true, "/system.slice/x.service", false},
		{"v2 absent", "1:cpu:/a\n", true, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseCgroupOf(c.in, c.v2)
			if (err != nil) != c.fail || got != c.want {
				t.Errorf("parseCgroupOf(%q, %v) = %q, %v; want %q, failure %v", c.in, c.v2, got, err, c.want, c.fail)
			}
		})
	}
}

var (
	frameAddr4 = netip.MustParseAddr("192.0.2.200")
	frameAddr6 = netip.MustParseAddr("2001:db8::200")
)

// The good frames are what Herald's own decoders accept as a request for
// the address; the bad ones fit on the wire and never carry a well-formed
// request for it in the plain Ethernet position.
func TestFrames(t *testing.T) {
	good := GoodFrames(frameAddr4, frameAddr6)
	if len(good) != 2 {
		t.Fatalf("%d good frames, want 2", len(good))
	}
	p, err := arp.ParsePacket(good[0].Frame[14:])
	if err != nil || p.Op != 1 || p.TargetIP != frameAddr4 {
		t.Errorf("good ARP: %+v, %v", p, err)
	}
	m, err := ndp.ParseIPv6(good[1].Frame[14:])
	if err != nil || m.Target != frameAddr6 {
		t.Errorf("good NS: %+v, %v", m, err)
	}
	names := map[string]bool{}
	for i, f := range BadFrames(frameAddr4, frameAddr6) {
		if names[f.Name] {
			t.Errorf("two frames named %q", f.Name)
		}
		names[f.Name] = true
		if len(f.Frame) < 14 || len(f.Frame) > 1514 {
			t.Errorf("%s: %d bytes, want 14 to 1514", f.Name, len(f.Frame))
		}
		if string(f.Frame[6:12]) != string(BadFrameMAC(i)) {
			t.Errorf("%s: from %s, want %s", f.Name, net.HardwareAddr(f.Frame[6:12]), BadFrameMAC(i))
		}
		switch binary.BigEndian.Uint16(f.Frame[12:14]) {
		case etherTypeARP:
			if p, err := arp.ParsePacket(f.Frame[14:]); err == nil && p.Op == 1 && p.TargetIP == frameAddr4 {
				t.Errorf("%s is a well-formed request for %s", f.Name, frameAddr4)
			}
		case etherTypeIPv6:
			if m, err := ndp.ParseIPv6(f.Frame[14:]); err == nil && m.Target == frameAddr6 && f.Frame[14+7] == 255 {
				t.Errorf("%s is a well-formed solicitation for %s: %+v", f.Name, frameAddr6, m)
			}
		}
	}
	if len(BadFrames(frameAddr4, netip.Addr{})) >= len(names) {
		t.Error("no IPv6 address, and as many frames")
	}
}

func TestIsAnswer(t *testing.T) {
	reply := arpRequest(GoodFrameMAC, frameSenderIPv4, frameAddr4)
	binary.BigEndian.PutUint16(reply[20:22], 2)
	na := neighborSolicitation(GoodFrameMAC, frameAddr6, nsOpts{})
	na[14+40] = 136
	for _, c := range []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"arp request", arpRequest(GoodFrameMAC, frameSenderIPv4, frameAddr4), false},
		{"arp reply", reply, true},
		{"neighbor solicitation", neighborSolicitation(GoodFrameMAC, frameAddr6, nsOpts{}), false},
		{"neighbor advertisement", na, true},
		{"short", []byte{1, 2, 3}, false},
	} {
		if got := isAnswer(c.frame); got != c.want {
			t.Errorf("%s: isAnswer = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestOwned(t *testing.T) {
	a, b := labMAC(0x11), labMAC(0x12)
	t0 := time.Unix(1000, 0)
	round := func(ms int, macs ...net.HardwareAddr) Round {
		return Round{Sent: t0.Add(time.Duration(ms) * time.Millisecond), MACs: macs}
	}
	rounds := []Round{
		round(0, a), round(20), round(40, a), // a lost answer is no move
		round(60, a, b), round(80, b), round(100, a, b), // a split brain
		round(120, b), round(140, b), round(160, a), round(180, a),
	}
	o := Owned(rounds)
	if o.Rounds != 10 || o.Unanswered != 1 || o.Double != 2 || o.Moves != 2 || len(o.Owners) != 3 {
		t.Errorf("Owned = %+v, want 10 rounds, 1 unanswered, 2 double, 2 moves, 3 owners", o)
	}
	if o.DoubleSpan() != 40*time.Millisecond {
		t.Errorf("DoubleSpan = %s, want 40ms", o.DoubleSpan())
	}
	at, mac, ok := SingleSince(rounds, t0)
	if !ok || mac.String() != a.String() || !at.Equal(t0.Add(160*time.Millisecond)) {
		t.Errorf("SingleSince = %s %s %v, want a from +160ms", at, mac, ok)
	}
	if _, _, ok := SingleSince(rounds[:6], t0); ok {
		t.Error("SingleSince ok on rounds ending in a double answer")
	}
	if at, _, ok := SingleSince(rounds[:9], t0.Add(150*time.Millisecond)); !ok || !at.Equal(t0.Add(160*time.Millisecond)) {
		t.Errorf("SingleSince from +150ms = %s %v", at, ok)
	}
}

func TestPacketID(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, 0xdeadbeef)
	hdr = append(hdr, 0x08, 0x00, 3) // hw protocol, hook
	for _, c := range []struct {
		name string
		data []byte
		want uint32
		ok   bool
	}{
		{"header first", append([]byte{0, 0, 0, 14}, attr(nfqaPacketHdr, hdr)...), 0xdeadbeef, true},
		{"after another attribute", append(append([]byte{0, 0, 0, 14}, attr(9, []byte{1, 2, 3, 4, 5})...), attr(nfqaPacketHdr, hdr)...), 0xdeadbeef, true},
		{"none", append([]byte{0, 0, 0, 14}, attr(9, []byte{1})...), 0, false},
		{"length beyond the data", []byte{0, 0, 0, 14, 200, 0, 1, 0}, 0, false},
		{"empty", nil, 0, false},
	} {
		if got, ok := packetID(c.data); got != c.want || ok != c.ok {
			t.Errorf("%s: packetID = %#x %v, want %#x %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
