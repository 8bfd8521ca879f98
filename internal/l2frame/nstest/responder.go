package nstest

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/l2frame"
)

// The helpers in this file serve the unit tests of the ARP and NDP
// responders, which share l2frame.Responder; they need no namespace.

// MustMAC parses a MAC address written in a test.
func MustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// MustHex decodes hex written in a test, spaces and newlines ignored.
func MustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// NewFunc builds a responder: arp's or ndp's NewResponder, or their
// newResponder, which opens no socket.
type NewFunc func(l2frame.Options) (*l2frame.Responder, error)

// TestResponder builds a responder with newResponder on a fake interface
// whose MAC is mac.
func TestResponder(t testing.TB, newResponder NewFunc, mac net.HardwareAddr, opts l2frame.Options) *l2frame.Responder {
	t.Helper()
	opts.Interface = &net.Interface{Index: 2, Name: "test0", HardwareAddr: mac}
	r, err := newResponder(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// CheckOptions checks that newResponder refuses a missing interface and one
// without a MAC, and fills in the given defaults for zero options.
func CheckOptions(t *testing.T, newResponder NewFunc, refresh time.Duration, burstCount int, burstInterval time.Duration) {
	t.Helper()
	if _, err := newResponder(l2frame.Options{}); err == nil {
		t.Error("no interface accepted")
	}
	if _, err := newResponder(l2frame.Options{Interface: &net.Interface{Name: "tun0"}}); err == nil {
		t.Error("interface without a MAC accepted")
	}
	r := TestResponder(t, newResponder, MustMAC("00:00:5e:00:53:01"), l2frame.Options{})
	if o := r.Options(); o.RefreshInterval != refresh || o.BurstCount != burstCount || o.BurstInterval != burstInterval {
		t.Errorf("defaults not applied: %+v", o)
	}
}

// CheckConflictLimit gives a responder owning addr the frame claim, in
// which another MAC claims addr, at 0, 1, 9, 10, 15 and 21 s, and checks
// that the conflict is reported at 0, 10 and 21 s only.
func CheckConflictLimit(t *testing.T, newResponder NewFunc, mac net.HardwareAddr, addr netip.Addr, claim []byte) {
	t.Helper()
	var got []time.Duration
	t0 := time.Unix(1000, 0)
	var now time.Time
	r := TestResponder(t, newResponder, mac, l2frame.Options{
		OnConflict: func(netip.Addr, net.HardwareAddr) { got = append(got, now.Sub(t0)) },
	})
	r.SetAddresses([]netip.Addr{addr})
	for _, at := range []time.Duration{0, time.Second, 9 * time.Second, 10 * time.Second, 15 * time.Second, 21 * time.Second} {
		now = t0.Add(at)
		r.Answer(claim, now)
	}
	want := []time.Duration{0, 10 * time.Second, 21 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("conflicts reported at %v, want %v", got, want)
	}
}

// AnswerCase is one frame given to Responder.Answer by CheckAnswers.
type AnswerCase struct {
	Name  string
	Frame []byte
	// WantReply is the reply expected, nil for none.
	WantReply []byte
	// WantConflict is the conflict expected, "addr mac", "" for none.
	WantConflict string
}

// CheckAnswers gives each frame to a fresh responder owning owned and checks
// its reply and the conflicts it reports.
func CheckAnswers(t *testing.T, newResponder NewFunc, mac net.HardwareAddr, owned netip.Addr, cases []AnswerCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			var conflicts []string
			r := TestResponder(t, newResponder, mac, l2frame.Options{OnConflict: func(a netip.Addr, mac net.HardwareAddr) {
				conflicts = append(conflicts, a.String()+" "+mac.String())
			}})
			r.SetAddresses([]netip.Addr{owned})
			reply, addr := r.Answer(tt.Frame, time.Now())
			if !bytes.Equal(reply, tt.WantReply) {
				t.Errorf("reply\n got %x\nwant %x", reply, tt.WantReply)
			}
			if reply != nil && addr != owned {
				t.Errorf("reply for %v, want %v", addr, owned)
			}
			var want []string
			if tt.WantConflict != "" {
				want = []string{tt.WantConflict}
			}
			if !slices.Equal(conflicts, want) {
				t.Errorf("conflicts %v, want %v", conflicts, want)
			}
		})
	}
}
