package main

import (
	"net/netip"
	"testing"
)

// The baseline must be a correct first-fit allocator, or the speedup it
// yields means nothing.
func TestNaiveFirstFit(t *testing.T) {
	p := &naiveFirstFit{
		first: netip.MustParseAddr("198.18.0.0"), last: netip.MustParseAddr("198.18.0.2"),
		used: map[netip.Addr]string{}, bySvc: map[string]netip.Addr{},
	}
	for i, want := range []string{"198.18.0.0", "198.18.0.1", "198.18.0.2"} {
		got, err := p.allocate(string(rune('a' + i)))
		if err != nil || got != netip.MustParseAddr(want) {
			t.Fatalf("allocation %d: %v %v, want %s", i, got, err, want)
		}
	}
	if _, err := p.allocate("d"); err == nil {
		t.Fatal("allocated from a full pool")
	}
	p.release("b")
	if got, _ := p.allocate("e"); got != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("after release got %v, want 198.18.0.1", got)
	}
}
