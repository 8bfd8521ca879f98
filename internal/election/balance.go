package election

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"math"
	"slices"
)

// Balance assigns an owner to every key, as Owner would, except that no
// node takes more than ceil(factor × keys ÷ nodes) keys: a key whose first
// choice is full goes to the next node of its Rank that is not. It is the
// optional answer to HRW's uneven spread on small counts (MetalLB #2284).
//
// It is still a pure function, of all keys and all nodes together: every
// speaker that sees the same keys and nodes computes the same owners. The
// price of that coupling, measured by bench/electionspread, is that adding
// or removing one key, or a node, can move other keys too, and that two
// speakers whose views of the key set differ for a moment (an informer
// lagging) can disagree about keys that did not change. Plain Owner has
// neither problem. All keys must share the candidate nodes; callers with
// per-key candidates balance each group of keys with equal candidates.
//
// Keys are placed in the order of SHA-256(key), a pseudo-random order that
// no key's name can bias. factor below 1 is treated as 1 (every node full
// at the ideal share). Duplicate keys and nodes count once. The result is
// nil when there are no nodes.
func Balance(keys, nodes []string, factor float64) map[string]string {
	nodes = dedupe(nodes)
	keys = dedupe(keys)
	if len(nodes) == 0 {
		return nil
	}
	factor = max(factor, 1)
	limit := int(math.Ceil(factor * float64(len(keys)) / float64(len(nodes))))
	limit = max(limit, 1)

	type ordered struct {
		key  string
		hash [sha256.Size]byte
	}
	order := make([]ordered, 0, len(keys))
	for _, k := range keys {
		order = append(order, ordered{k, sha256.Sum256([]byte(k))})
	}
	slices.SortFunc(order, func(a, b ordered) int {
		if c := bytes.Compare(a.hash[:], b.hash[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})

	load := make(map[string]int, len(nodes))
	out := make(map[string]string, len(keys))
	for _, o := range order {
		// limit × nodes ≥ keys, so some node in the ranking has room.
		for _, n := range Rank(o.key, nodes) {
			if load[n] < limit {
				load[n]++
				out[o.key] = n
				break
			}
		}
	}
	return out
}

func dedupe(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
