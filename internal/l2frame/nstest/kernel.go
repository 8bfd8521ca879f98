package nstest

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/herald-lb/herald/internal/l2frame"
)

// Start builds a responder with newResponder on l inside its namespace, so
// that its socket lives there, runs it until the test ends, and fails the
// test if Run returns an error.
func Start(t *testing.T, l Link, newResponder NewFunc, opts l2frame.Options) *l2frame.Responder {
	t.Helper()
	var r *l2frame.Responder
	if err := Do(l.NS, func() error {
		ifi, err := net.InterfaceByName(l.Name)
		if err != nil {
			return err
		}
		opts.Interface = ifi
		r, err = newResponder(opts)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// Conflict is one call of Options.OnConflict.
type Conflict struct {
	Addr netip.Addr
	MAC  string
}

// Conflicts returns a channel and an OnConflict that feeds it.
func Conflicts() (<-chan Conflict, func(netip.Addr, net.HardwareAddr)) {
	c := make(chan Conflict, 16)
	return c, func(a netip.Addr, mac net.HardwareAddr) { c <- Conflict{a, mac.String()} }
}

// WantConflict waits up to 2 s for a conflict and checks that it is addr
// claimed by mac.
func WantConflict(t *testing.T, conflicts <-chan Conflict, addr netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	select {
	case c := <-conflicts:
		if c.Addr != addr || c.MAC != mac.String() {
			t.Errorf("conflict %v from %s, want %v from %s", c.Addr, c.MAC, addr, mac)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("no conflict reported for %v", addr)
	}
}

// WaitFor polls cond until it holds and fails the test after limit; cond's
// string, the last state seen, goes in the failure.
func WaitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", limit, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Listen opens a raw socket for etherType on l inside its namespace, closed
// when the test ends.
func Listen(t *testing.T, l Link, etherType uint16) *packet.Conn {
	t.Helper()
	var conn *packet.Conn
	if err := Do(l.NS, func() error {
		ifi, err := net.InterfaceByName(l.Name)
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, int(etherType), nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// ReadFor gives fn every frame conn receives for d, or until fn returns
// false, and reports whether d ran out.
func ReadFor(t *testing.T, conn *packet.Conn, d time.Duration, fn func(frame []byte) bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 1600)
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return true
		}
		if !fn(buf[:n]) {
			return false
		}
	}
}

// Pacing is the announcement pacing a kernel test gives its responder.
type Pacing struct {
	BurstCount    int
	BurstInterval time.Duration
	Refresh       time.Duration
}

// CheckBurstThenRefresh checks the gratuitous rounds for addr, which r has
// just been given, as rounds collects them for a while: a burst then a
// refresh within 900 ms; then, after r.Announce(addr), a whole burst within
// less than a refresh interval, which only a burst can yield.
func CheckBurstThenRefresh(t *testing.T, r *l2frame.Responder, addr netip.Addr, p Pacing, rounds func(d time.Duration) []time.Time) {
	t.Helper()
	got := rounds(900 * time.Millisecond)
	if len(got) < p.BurstCount+1 {
		t.Fatalf("got %d rounds for %s in 900ms, want a burst of %d and a refresh: %v", len(got), addr, p.BurstCount, got)
	}
	// Exact spacing is checked with a fake clock in package l2frame; the
	// timestamps here are taken by a reader goroutine and jitter under
	// load, so they only tell a burst from a refresh.
	for i := 1; i < p.BurstCount; i++ {
		if gap := got[i].Sub(got[i-1]); gap > p.Refresh/2 {
			t.Errorf("burst round %d came %v after the previous one, want about %v", i+1, gap, p.BurstInterval)
		}
	}
	if gap := got[p.BurstCount].Sub(got[p.BurstCount-1]); gap < p.Refresh/2 {
		t.Errorf("refresh came %v after the burst, want about %v", gap, p.Refresh)
	}

	t.Log("Announce forces a new burst")
	r.Announce(addr)
	within := p.Refresh * 3 / 4
	if got := rounds(within); len(got) < p.BurstCount {
		t.Errorf("got %d rounds within %v of Announce, want %d", len(got), within, p.BurstCount)
	}
}
