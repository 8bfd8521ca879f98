// Package election chooses, without any coordination, the node that
// announces an address: every speaker computes the same answer from the same
// inputs, so nothing has to be stored or agreed on.
//
// The choice is rendezvous (highest-random-weight) hashing: each node gets
// the score SHA-256(node + "#" + key) and the lowest score wins. Because a
// node's score for a key depends on nothing but that node and that key:
//   - the input order of the nodes does not matter;
//   - removing a node moves only the keys it owned;
//   - adding a node moves a key only to the new node.
//
// Optional weights (an L2Advertisement's preferredNodeSelectors, summed by
// the caller) rank first: the hash decides only among nodes of equal
// weight, so the three properties hold within each weight.
//
// The score is the one MetalLB's layer 2 mode sorts by (a documented fact of
// its behaviour), so for the same candidate nodes Herald elects the same
// owner, and replacing MetalLB's speakers by Herald's moves no address.
//
// SHA-256 rather than a fast non-cryptographic hash: node names and
// addresses are short, highly regular strings (worker-1, worker-2,
// 198.18.0.1, ...), exactly where weak hashes correlate; SHA-256 has no such
// bias, runs with hardware help on amd64 and arm64 (a few hundred ns per
// node and key), and a ranking is computed only when membership or a
// Service changes. bench/electionspread measures the resulting spread.
package election

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"slices"
)

// Owner returns the node that announces key: the first node of Rank. It
// returns false when there is no candidate.
func Owner(key string, nodes []string) (string, bool) {
	return OwnerWeighted(key, nodes, nil)
}

// OwnerWeighted returns the first node of RankWeighted.
func OwnerWeighted(key string, nodes []string, weight map[string]int) (string, bool) {
	if len(nodes) == 0 {
		return "", false
	}
	// A single pass keeps the common case free of sorting and allocation
	// beyond the hash input.
	best := scored{node: nodes[0], weight: weight[nodes[0]], score: score(key, nodes[0])}
	for _, n := range nodes[1:] {
		c := scored{node: n, weight: weight[n], score: score(key, n)}
		if compare(c, best) < 0 {
			best = c
		}
	}
	return best.node, true
}

// Rank orders the candidate nodes for key, most preferred first; the first
// is the owner and the next ones are the owners it would fall back to, in
// order. key is the Service's first load-balancer IP as a string, so
// Services sharing an IP, and both families of a dual-stack Service, get one
// owner. Duplicate node names appear once. The result does not depend on
// the order of nodes; nodes is not modified.
func Rank(key string, nodes []string) []string {
	return RankWeighted(key, nodes, nil)
}

// RankWeighted is Rank with soft preferences: nodes of higher weight come
// first, and the hash orders nodes of equal weight. A node missing from
// weight weighs 0, so without weights it is Rank. Since a node's place
// still depends only on itself and the key, a preferred node that dies
// hands its keys to the next of the ranking, and wins them back when it
// returns.
func RankWeighted(key string, nodes []string, weight map[string]int) []string {
	if len(nodes) == 0 {
		return nil
	}
	ss := make([]scored, 0, len(nodes))
	for _, n := range nodes {
		ss = append(ss, scored{node: n, weight: weight[n], score: score(key, n)})
	}
	slices.SortFunc(ss, compare)
	out := make([]string, 0, len(ss))
	for i, s := range ss {
		if i > 0 && s.node == ss[i-1].node {
			continue
		}
		out = append(out, s.node)
	}
	return out
}

type scored struct {
	node   string
	weight int
	score  [sha256.Size]byte
}

// compare orders by weight (highest first), then score, then name: equal
// scores only happen for equal inputs, and the name keeps the order total
// anyway.
func compare(a, b scored) int {
	if c := cmp.Compare(b.weight, a.weight); c != 0 {
		return c
	}
	if c := bytes.Compare(a.score[:], b.score[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.node, b.node)
}

func score(key, node string) [sha256.Size]byte {
	buf := make([]byte, 0, len(node)+1+len(key))
	buf = append(buf, node...)
	buf = append(buf, '#')
	buf = append(buf, key...)
	return sha256.Sum256(buf)
}
