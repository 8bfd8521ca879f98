package election

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBalance(t *testing.T) {
	tests := []struct {
		name   string
		keys   int
		nodes  int
		factor float64
	}{
		{"factor 1, divisible", 100, 5, 1},
		{"factor 1, not divisible", 10, 3, 1},
		{"factor 1.25", 10, 10, 1.25},
		{"factor below 1 counts as 1", 20, 4, 0.5},
		{"more nodes than keys", 3, 10, 1},
		{"no keys", 0, 3, 1},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, ns := keys(tc.keys), names(tc.nodes)
			got := Balance(ks, ns, tc.factor)
			if len(got) != len(ks) {
				t.Fatalf("%d keys assigned, want %d", len(got), len(ks))
			}
			limit := int(math.Ceil(max(tc.factor, 1) * float64(tc.keys) / float64(tc.nodes)))
			load := map[string]int{}
			for k, n := range got {
				if !slices.Contains(ns, n) {
					t.Fatalf("key %q assigned to unknown node %q", k, n)
				}
				load[n]++
			}
			for n, l := range load {
				if l > max(limit, 1) {
					t.Errorf("node %s has %d keys, limit %d", n, l, limit)
				}
			}
			// Same result whatever the order of keys and nodes.
			for range 10 {
				pk, pn := slices.Clone(ks), slices.Clone(ns)
				rng.Shuffle(len(pk), func(i, j int) { pk[i], pk[j] = pk[j], pk[i] })
				rng.Shuffle(len(pn), func(i, j int) { pn[i], pn[j] = pn[j], pn[i] })
				if again := Balance(pk, pn, tc.factor); !maps.Equal(again, got) {
					t.Fatalf("Balance depends on input order")
				}
			}
		})
	}
}

func TestBalanceNoNodes(t *testing.T) {
	if got := Balance(keys(3), nil, 1); got != nil {
		t.Errorf("Balance with no nodes = %v, want nil", got)
	}
}

// With a factor large enough that no node fills, Balance is plain HRW.
func TestBalanceUnboundedIsOwner(t *testing.T) {
	ks, ns := keys(50), names(4)
	got := Balance(ks, ns, float64(len(ks)))
	for _, k := range ks {
		if want, _ := Owner(k, ns); got[k] != want {
			t.Errorf("key %q: Balance %q, Owner %q", k, got[k], want)
		}
	}
}

// Factor 1 with a divisible count balances exactly, which plain HRW does
// only by chance: the reason Balance exists.
func TestBalanceEvensOutHRW(t *testing.T) {
	ks, ns := keys(30), names(3)
	load := map[string]int{}
	for _, n := range Balance(ks, ns, 1) {
		load[n]++
	}
	for _, n := range ns {
		if load[n] != 10 {
			t.Errorf("%s: %d keys, want 10 (loads %v)", n, load[n], load)
		}
	}
}
