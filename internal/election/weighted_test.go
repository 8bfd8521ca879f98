package election

import (
	"fmt"
	"slices"
	"testing"
)

// Weights rank first, the hash decides among equal weights, and a node
// missing from the weights weighs 0.
func TestRankWeighted(t *testing.T) {
	nodes := names(5)
	tests := []struct {
		name   string
		weight map[string]int
		// groups of nodes, heaviest first; within a group the hash orders
		groups [][]string
	}{
		{"no weights: the hash alone", nil, [][]string{nodes}},
		{"all weights equal: the hash alone",
			map[string]int{"worker-1": 7, "worker-2": 7, "worker-3": 7, "worker-4": 7, "worker-5": 7}, [][]string{nodes}},
		{"one preferred node first",
			map[string]int{"worker-4": 10}, [][]string{{"worker-4"}, {"worker-1", "worker-2", "worker-3", "worker-5"}}},
		{"two equal preferred nodes, then the rest",
			map[string]int{"worker-2": 30, "worker-5": 30}, [][]string{{"worker-2", "worker-5"}, {"worker-1", "worker-3", "worker-4"}}},
		{"three tiers",
			map[string]int{"worker-1": 1, "worker-3": 100, "worker-4": 50, "worker-5": 50},
			[][]string{{"worker-3"}, {"worker-4", "worker-5"}, {"worker-1"}, {"worker-2"}}},
		{"weights of non-candidates are ignored",
			map[string]int{"gone": 100, "worker-2": 5}, [][]string{{"worker-2"}, {"worker-1", "worker-3", "worker-4", "worker-5"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, key := range keys(100) {
				var want []string
				for _, g := range tc.groups {
					want = append(want, Rank(key, g)...)
				}
				got := RankWeighted(key, nodes, tc.weight)
				if !slices.Equal(got, want) {
					t.Fatalf("RankWeighted(%q) = %v, want %v", key, got, want)
				}
				if o, ok := OwnerWeighted(key, nodes, tc.weight); !ok || o != want[0] {
					t.Fatalf("OwnerWeighted(%q) = %q, %v; want %q", key, o, ok, want[0])
				}
			}
		})
	}
}

// The preferred node's failure moves its keys to the next node of the
// weighted ranking, and its return brings them back; keys it did not own
// stay where they are.
func TestWeightedFailoverAndReturn(t *testing.T) {
	nodes := names(4)
	tests := []struct {
		name   string
		weight map[string]int
		gone   string
	}{
		{"preferred node dies", map[string]int{"worker-3": 50, "worker-1": 10}, "worker-3"},
		{"second choice dies", map[string]int{"worker-3": 50, "worker-1": 10}, "worker-1"},
		{"unpreferred node dies", map[string]int{"worker-3": 50}, "worker-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fewer := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == tc.gone })
			for _, key := range keys(100) {
				rank := RankWeighted(key, nodes, tc.weight)
				want := rank[0]
				if want == tc.gone {
					want = rank[1]
				}
				if got, _ := OwnerWeighted(key, fewer, tc.weight); got != want {
					t.Fatalf("key %q, %s gone: owner %q, want %q (ranking %v)", key, tc.gone, got, want, rank)
				}
				if got, _ := OwnerWeighted(key, nodes, tc.weight); got != rank[0] {
					t.Fatalf("key %q, %s back: owner %q, want %q", key, tc.gone, got, rank[0])
				}
			}
		})
	}
}

// Without weights the weighted election is the plain one, so adopting
// preferences changes nothing where none are configured.
func TestWeightedWithoutWeightsIsPlain(t *testing.T) {
	for _, n := range []int{1, 3, 10} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			nodes := names(n)
			for _, key := range keys(200) {
				want, _ := Owner(key, nodes)
				for _, w := range []map[string]int{nil, {}} {
					if got, _ := OwnerWeighted(key, nodes, w); got != want {
						t.Fatalf("OwnerWeighted(%q, %v) = %q, want %q", key, w, got, want)
					}
				}
			}
		})
	}
}
