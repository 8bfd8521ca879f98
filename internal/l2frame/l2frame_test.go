package l2frame

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

func TestHeader(t *testing.T) {
	frame := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
		0x00, 0x00, 0x5e, 0x00, 0x53, 0x01, // src
		0x08, 0x06, // ARP
		0xaa, 0xbb, // payload
	}
	h, payload, err := ParseHeader(frame)
	if err != nil {
		t.Fatal(err)
	}
	if !IsBroadcast(h.Dst) || h.Src.String() != "00:00:5e:00:53:01" || h.EtherType != EtherTypeARP {
		t.Errorf("ParseHeader = %+v", h)
	}
	if !bytes.Equal(payload, []byte{0xaa, 0xbb}) {
		t.Errorf("payload = %x", payload)
	}
	if got := h.Append(nil); !bytes.Equal(got, frame[:HeaderLen]) {
		t.Errorf("Append = %x, want %x", got, frame[:HeaderLen])
	}
	if _, _, err := ParseHeader(frame[:13]); !errors.Is(err, ErrShort) {
		t.Errorf("ParseHeader(13 bytes) error = %v, want ErrShort", err)
	}
	// A malformed MAC must not shift the fields after it.
	if got := (Header{Dst: net.HardwareAddr{1}, EtherType: 0x86dd}).Append(nil); len(got) != HeaderLen || got[12] != 0x86 {
		t.Errorf("Append with a short MAC = %x", got)
	}
	if got := Pad(make([]byte, 42)); len(got) != MinFrameLen {
		t.Errorf("Pad(42 bytes) has %d bytes", len(got))
	}
	if got := Pad(make([]byte, 86)); len(got) != 86 {
		t.Errorf("Pad(86 bytes) has %d bytes", len(got))
	}
}

func TestFilterProgram(t *testing.T) {
	matches := []Match{
		{Offset: 12, Size: 2, Values: []uint32{0x0806}},
		{Offset: 14, Size: 1, Values: []uint32{1, 2}},
	}
	prog, err := program(false, matches)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	frame := func(etherType uint16, b byte) []byte {
		f := Header{Dst: Broadcast, Src: Broadcast, EtherType: etherType}.Append(nil)
		return Pad(append(f, b))
	}
	tests := []struct {
		name  string
		frame []byte
		keep  bool
	}{
		{"first value", frame(0x0806, 1), true},
		{"second value", frame(0x0806, 2), true},
		{"other value", frame(0x0806, 3), false},
		{"other ethertype", frame(0x0800, 1), false},
		{"too short to load", []byte{1, 2, 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := vm.Run(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tt.keep {
				t.Errorf("kept %d bytes, want keep=%v", n, tt.keep)
			}
		})
	}

	full, err := Filter(matches...)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != len(prog)+4 {
		t.Errorf("Filter has %d instructions, want the %d of the body plus a 4-instruction prologue", len(full), len(prog))
	}
	for _, bad := range []Match{{Offset: 12, Size: 2}, {Offset: 12, Size: 4, Values: []uint32{1}}} {
		if _, err := Filter(bad); err == nil {
			t.Errorf("Filter(%+v) accepted", bad)
		}
	}
	// Seen while writing FuzzFilter (its corpus holds the case,
	// testdata/fuzz/FuzzFilter/long-value-lists): a jump past 255
	// instructions wrapped, and an IPv4 frame passed a filter for ARP.
	long := Match{Offset: 14, Size: 2}
	for v := range 300 {
		long.Values = append(long.Values, uint32(v))
	}
	if _, err := Filter(matches[0], long); err == nil {
		t.Error("Filter accepted a program whose jumps do not fit 8 bits")
	}
	// Found by FuzzFilter in CI (testdata/fuzz/FuzzFilter/prologue-reach):
	// the packet-type prologue jumped to the final drop over the whole
	// body, so matches whose own jumps fit were refused once it was added.
	wide := []Match{{Offset: 14, Size: 2}, {Offset: 16, Size: 2}}
	for i := range wide {
		for v := range 200 {
			wide[i].Values = append(wide[i].Values, uint32(v))
		}
	}
	if _, err := program(false, wide); err != nil {
		t.Fatalf("body of two 200-value matches: %v", err)
	}
	if _, err := Filter(wide...); err != nil {
		t.Errorf("Filter refused matches whose body fits: %v", err)
	}
}

var (
	a1 = netip.MustParseAddr("192.0.2.1")
	a2 = netip.MustParseAddr("192.0.2.2")
	a3 = netip.MustParseAddr("192.0.2.3")
)

func TestTableReplace(t *testing.T) {
	tab := NewTable(Pacing{BurstCount: 1})
	now := time.Unix(1000, 0)
	added, removed := tab.Replace([]netip.Addr{a2, a1, a1}, now)
	if !slices.Equal(added, []netip.Addr{a1, a2}) || removed != nil {
		t.Errorf("first Replace = %v, %v", added, removed)
	}
	added, removed = tab.Replace([]netip.Addr{a2, a3}, now)
	if !slices.Equal(added, []netip.Addr{a3}) || !slices.Equal(removed, []netip.Addr{a1}) {
		t.Errorf("second Replace = %v, %v", added, removed)
	}
	if !slices.Equal(tab.Addrs(), []netip.Addr{a2, a3}) || tab.Owns(a1) || !tab.Owns(a2) {
		t.Errorf("Addrs = %v", tab.Addrs())
	}
	ran := tab.IfOwned(a1, func() { t.Error("IfOwned ran for a removed address") })
	if ran || !tab.IfOwned(a2, func() {}) {
		t.Error("IfOwned reports the wrong ownership")
	}
}

func TestTableSchedule(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		refresh  = 10 * time.Second
	)
	t0 := time.Unix(1000, 0)
	type step struct {
		at       time.Duration // since t0
		do       func(*Table, time.Time)
		wantDue  []netip.Addr
		wantNext time.Duration // since t0; -1 for none
	}
	tests := []struct {
		name   string
		pacing Pacing
		steps  []step
	}{
		{
			name:   "burst then refresh",
			pacing: Pacing{BurstCount: 3, BurstInterval: interval, Refresh: refresh},
			steps: []step{
				{at: 0, do: func(tab *Table, now time.Time) { tab.Replace([]netip.Addr{a1}, now) }, wantDue: []netip.Addr{a1}, wantNext: interval},
				{at: interval / 2, wantNext: interval},
				{at: interval, wantDue: []netip.Addr{a1}, wantNext: 2 * interval},
				{at: 2 * interval, wantDue: []netip.Addr{a1}, wantNext: 2*interval + refresh},
				{at: 2*interval + refresh, wantDue: []netip.Addr{a1}, wantNext: 2*interval + 2*refresh},
			},
		},
		{
			name:   "no refresh",
			pacing: Pacing{BurstCount: 2, BurstInterval: interval},
			steps: []step{
				{at: 0, do: func(tab *Table, now time.Time) { tab.Replace([]netip.Addr{a1}, now) }, wantDue: []netip.Addr{a1}, wantNext: interval},
				{at: interval, wantDue: []netip.Addr{a1}, wantNext: -1},
				{at: time.Hour, wantNext: -1},
			},
		},
		{
			name:   "announce restarts a burst, removal stops it",
			pacing: Pacing{BurstCount: 2, BurstInterval: interval, Refresh: refresh},
			steps: []step{
				{at: 0, do: func(tab *Table, now time.Time) { tab.Replace([]netip.Addr{a1, a2}, now) }, wantDue: []netip.Addr{a1, a2}, wantNext: interval},
				{at: interval, wantDue: []netip.Addr{a1, a2}, wantNext: interval + refresh},
				{at: 5 * time.Second, do: func(tab *Table, now time.Time) {
					if !tab.Announce(a2, now) || tab.Announce(a3, now) {
						t.Error("Announce reports the wrong ownership")
					}
				}, wantDue: []netip.Addr{a2}, wantNext: 5*time.Second + interval},
				{at: 5*time.Second + interval, do: func(tab *Table, now time.Time) { tab.Replace([]netip.Addr{a1}, now) }, wantNext: interval + refresh},
				{at: 6 * time.Second, do: func(tab *Table, now time.Time) { tab.AnnounceAll(now) }, wantDue: []netip.Addr{a1}, wantNext: 6*time.Second + interval},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(tt.pacing)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				if s.do != nil {
					s.do(tab, now)
				}
				due, next := tab.Due(now)
				wantNext := time.Time{}
				if s.wantNext >= 0 {
					wantNext = t0.Add(s.wantNext)
				}
				if !slices.Equal(due, s.wantDue) || !next.Equal(wantNext) {
					t.Errorf("step %d at %v: Due = %v, next %v; want %v, next %v",
						i, s.at, due, next.Sub(t0), s.wantDue, s.wantNext)
				}
			}
		})
	}
}

func TestTableConflict(t *testing.T) {
	const every = 10 * time.Second
	tab := NewTable(Pacing{})
	t0 := time.Unix(1000, 0)
	tab.Replace([]netip.Addr{a1}, t0)
	checks := []struct {
		addr netip.Addr
		at   time.Duration
		want bool
	}{
		{a1, 0, true},
		{a1, time.Second, false},
		{a2, time.Second, false}, // not owned
		{a1, every - time.Millisecond, false},
		{a1, every, true},
		{a1, every + time.Second, false},
	}
	for _, c := range checks {
		if got := tab.Conflict(c.addr, t0.Add(c.at), every); got != c.want {
			t.Errorf("Conflict(%v, +%v) = %v, want %v", c.addr, c.at, got, c.want)
		}
	}
}

// TestTableRun checks the real-time loop: a burst of rounds after Replace,
// and nothing for an address removed.
func TestTableRun(t *testing.T) {
	tab := NewTable(Pacing{BurstCount: 3, BurstInterval: 20 * time.Millisecond})
	sent := make(chan netip.Addr, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tab.Run(ctx, func(a netip.Addr) { sent <- a })
	}()
	start := time.Now()
	tab.Replace([]netip.Addr{a1}, time.Now())
	for i := range 3 {
		select {
		case a := <-sent:
			if a != a1 {
				t.Errorf("round %d for %v", i, a)
			}
		case <-time.After(time.Second):
			t.Fatalf("round %d missing", i)
		}
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("three rounds 20ms apart took %v", d)
	}
	select {
	case a := <-sent:
		t.Errorf("extra round for %v", a)
	case <-time.After(60 * time.Millisecond):
	}
	cancel()
	<-done
}
