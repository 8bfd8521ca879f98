package election

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("worker-%d", i+1)
	}
	return out
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = fmt.Sprintf("198.18.%d.%d", i/256, i%256)
		} else {
			out[i] = fmt.Sprintf("2001:db8::%x", i)
		}
	}
	return out
}

func TestEmptyInputs(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		nodes []string
	}{
		{"nil nodes", "198.18.0.1", nil},
		{"empty nodes", "198.18.0.1", []string{}},
		{"empty key, nil nodes", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := Rank(tc.key, tc.nodes); r != nil {
				t.Errorf("Rank = %v, want nil", r)
			}
			if o, ok := Owner(tc.key, tc.nodes); ok || o != "" {
				t.Errorf("Owner = %q, %v; want \"\", false", o, ok)
			}
		})
	}
	// An empty key is still a key: it gets an owner like any other.
	if o, ok := Owner("", []string{"a"}); !ok || o != "a" {
		t.Errorf("Owner(\"\", [a]) = %q, %v; want a, true", o, ok)
	}
}

// The score is SHA-256(node + "#" + key), lowest first: MetalLB's documented
// order, so that both pick the same owner. Computed here independently of
// the package's code.
func TestScoreMatchesDocumentedFormula(t *testing.T) {
	nodes := names(7)
	for _, key := range keys(200) {
		want := slices.Clone(nodes)
		slices.SortFunc(want, func(a, b string) int {
			x, y := sha256.Sum256([]byte(a+"#"+key)), sha256.Sum256([]byte(b+"#"+key))
			return slices.Compare(x[:], y[:])
		})
		if got := Rank(key, nodes); !slices.Equal(got, want) {
			t.Fatalf("Rank(%q) = %v, want %v", key, got, want)
		}
	}
}

// Pinned rankings: if one of these changes, every cluster upgrading to the
// new code would move its addresses at once. Change them only on purpose.
// Computed once on the shell: printf 'node-a#198.18.0.1' | sha256sum, etc.
func TestPinnedRankings(t *testing.T) {
	nodes := []string{"node-a", "node-b", "node-c"}
	tests := []struct {
		key  string
		want []string
	}{
		{"198.18.0.1", []string{"node-a", "node-c", "node-b"}},
		{"2001:db8::1", []string{"node-b", "node-a", "node-c"}},
	}
	for _, tc := range tests {
		if got := Rank(tc.key, nodes); !slices.Equal(got, tc.want) {
			t.Errorf("Rank(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestDeterministicUnderPermutation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name  string
		nodes []string
	}{
		{"one node", []string{"solo"}},
		{"two nodes", []string{"a", "b"}},
		{"three nodes", names(3)},
		{"ten nodes", names(10)},
		{"with duplicates", []string{"a", "b", "a", "c", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, key := range keys(50) {
				want := Rank(key, tc.nodes)
				wantOwner, _ := Owner(key, tc.nodes)
				if want[0] != wantOwner {
					t.Fatalf("Owner(%q) = %q, Rank[0] = %q", key, wantOwner, want[0])
				}
				for range 20 {
					p := slices.Clone(tc.nodes)
					rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
					if got := Rank(key, p); !slices.Equal(got, want) {
						t.Fatalf("Rank(%q, %v) = %v, want %v", key, p, got, want)
					}
					if got, _ := Owner(key, p); got != wantOwner {
						t.Fatalf("Owner(%q, %v) = %q, want %q", key, p, got, wantOwner)
					}
				}
			}
		})
	}
}

func TestRankDeduplicatesAndKeepsInput(t *testing.T) {
	in := []string{"b", "a", "b", "c", "a"}
	orig := slices.Clone(in)
	got := Rank("198.18.0.7", in)
	if len(got) != 3 {
		t.Fatalf("Rank = %v, want 3 distinct nodes", got)
	}
	sorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(sorted, []string{"a", "b", "c"}) {
		t.Errorf("Rank = %v, want a permutation of a, b, c", got)
	}
	if !slices.Equal(in, orig) {
		t.Errorf("Rank modified its input: %v, was %v", in, orig)
	}
}

// Removing a node never changes the owner of a key it did not own, and a
// key it owned goes to the next node of its ranking.
func TestStableOnRemoval(t *testing.T) {
	for _, n := range []int{2, 3, 5, 10} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			nodes := names(n)
			for _, key := range keys(300) {
				rank := Rank(key, nodes)
				for i, gone := range nodes {
					fewer := slices.Delete(slices.Clone(nodes), i, i+1)
					if got := Rank(key, fewer); !slices.Equal(got, slices.DeleteFunc(slices.Clone(rank), func(s string) bool { return s == gone })) {
						t.Fatalf("key %q: removing %s reordered the others: %v -> %v", key, gone, rank, got)
					}
					got, _ := Owner(key, fewer)
					want := rank[0]
					if want == gone {
						want = rank[1]
					}
					if got != want {
						t.Fatalf("key %q: removing %s: owner %q, want %q", key, gone, got, want)
					}
				}
			}
		})
	}
}

// Adding a node moves a key only to the new node.
func TestMinimalMovementOnAddition(t *testing.T) {
	for _, n := range []int{1, 3, 5, 10} {
		t.Run(fmt.Sprintf("%d+1 nodes", n), func(t *testing.T) {
			nodes := names(n)
			added := "worker-new"
			more := append(slices.Clone(nodes), added)
			var movedToNew int
			ks := keys(1000)
			for _, key := range ks {
				before, _ := Owner(key, nodes)
				after, _ := Owner(key, more)
				switch after {
				case before:
				case added:
					movedToNew++
				default:
					t.Fatalf("key %q moved from %s to %s, not to the new node", key, before, after)
				}
			}
			// The new node must take some keys, roughly its fair share
			// (binomial; bounds at about 5 standard deviations).
			p := 1 / float64(n+1)
			mean, sd := p*float64(len(ks)), math.Sqrt(p*(1-p)*float64(len(ks)))
			if f := float64(movedToNew); f < mean-5*sd || f > mean+5*sd {
				t.Errorf("new node took %d of %d keys, expected about %.0f", movedToNew, len(ks), mean)
			}
		})
	}
}

func BenchmarkOwner(b *testing.B) {
	for _, n := range []int{3, 10, 100} {
		nodes := names(n)
		b.Run(fmt.Sprintf("%d nodes", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Owner("198.18.7.42", nodes)
			}
		})
	}
}
