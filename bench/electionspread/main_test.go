package main

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestDraw(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, p := range []string{"198.18.0.0/15", "2001:db8::/64", "192.0.2.0/30"} {
		prefix := netip.MustParsePrefix(p)
		k := 1000
		if prefix.Bits() == 30 {
			k = 4 // the whole /30
		}
		got := draw(rng, prefix, k)
		seen := map[string]bool{}
		for _, s := range got {
			a, err := netip.ParseAddr(s)
			if err != nil || !prefix.Contains(a) {
				t.Fatalf("%s: drew %q, not an address of the prefix", p, s)
			}
			if seen[s] {
				t.Fatalf("%s: drew %q twice", p, s)
			}
			seen[s] = true
		}
		if len(got) != k {
			t.Errorf("%s: drew %d addresses, want %d", p, len(got), k)
		}
	}
}

func TestStatsAndMoved(t *testing.T) {
	hi, lo, sd := stats(map[string]int{"a": 3, "b": 1}, []string{"a", "b", "c"}, 4.0/3)
	if hi != 3 || lo != 0 || sd < 1.24 || sd > 1.25 {
		t.Errorf("stats = %v, %v, %v; want 3, 0, about 1.247", hi, lo, sd)
	}
	before := map[string]string{"k1": "a", "k2": "b", "k3": "c", "k4": "a"}
	after := map[string]string{"k1": "a", "k2": "c", "k3": "c", "k4": "b"}
	if got := moved(before, after, []string{"k1", "k2", "k3", "k4"}); got != 0.5 {
		t.Errorf("moved = %v, want 0.5", got)
	}
}
