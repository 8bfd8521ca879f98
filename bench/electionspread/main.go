// Command electionspread measures how evenly internal/election spreads
// addresses over nodes, and how many addresses move when a node leaves or
// joins, and writes the figures to bench/results/election.{json,md}.
//
// For every combination of node count (3, 5, 10), address count (10, 100,
// 1000) and family (addresses drawn at random from 198.18.0.0/15 or
// 2001:db8::/64), it runs many trials with fresh addresses and averages:
// the most and least loaded node, the standard deviation of the load, and
// the fraction of all addresses that change owner when one random node is
// removed, when one node is added, and when one more address is added.
// It does so for plain rendezvous hashing (election.Owner) and for the
// bounded-load refinement (election.Balance) with load factors 1.25 and 1. The random source is seeded,
// so a run is reproducible.
//
// Run from the repository root: go run ./bench/electionspread
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/herald-lb/herald/bench/report"
	"github.com/herald-lb/herald/internal/election"
)

func main() {
	testing.Init() // lets -test.benchtime tune testing.Benchmark
	out := flag.String("out", "bench/results", "directory for election.json and election.md")
	trials := flag.Int("trials", 200, "trials (fresh random addresses) per scenario")
	flag.Parse()
	if err := run(*out, *trials); err != nil {
		slog.Error("electionspread failed", "err", err)
		os.Exit(1)
	}
}

// assigner maps every key to its owner among nodes.
type assigner struct {
	name   string
	assign func(keys, nodes []string) map[string]string
}

func run(outDir string, trials int) error {
	algos := []assigner{
		{"HRW", func(keys, nodes []string) map[string]string {
			out := make(map[string]string, len(keys))
			for _, k := range keys {
				out[k], _ = election.Owner(k, nodes)
			}
			return out
		}},
	}
	// Two load factors of the bounded variant: 1.25 (the usual slack of
	// consistent hashing with bounded loads) and 1 (perfect balance).
	for _, factor := range []float64{1.25, 1} {
		algos = append(algos, assigner{fmt.Sprintf("bounded %g", factor), func(keys, nodes []string) map[string]string {
			return election.Balance(keys, nodes, factor)
		}})
	}
	families := []struct {
		name   string
		prefix netip.Prefix
	}{
		{"IPv4", netip.MustParsePrefix("198.18.0.0/15")},
		{"IPv6", netip.MustParsePrefix("2001:db8::/64")},
	}

	rep := report.Report{
		Title: "Election: spread of addresses over nodes, and movement on change",
		Description: fmt.Sprintf("Each scenario averages %d trials, each with fresh random addresses "+
			"(seeded, reproducible) and nodes named worker-1..worker-N. "+
			"Load = addresses owned by a node; ideal = addresses ÷ nodes. "+
			"\"moved\" columns are the percentage of all addresses whose owner changes when one random node is removed, "+
			"when worker-(N+1) is added, or when one more address is added (not counting it). "+
			"HRW = plain rendezvous hashing (election.Owner, what the speaker uses); "+
			"bounded = election.Balance, HRW with each node capped at ceil(factor × addresses ÷ nodes).", trials),
		Command: "go run ./bench/electionspread",
		Machine: report.DescribeMachine(time.Now()),
	}
	rng := rand.New(rand.NewPCG(2284, 1907)) // fixed seed: reproducible runs
	for _, a := range algos {
		for _, fam := range families {
			for _, n := range []int{3, 5, 10} {
				for _, k := range []int{10, 100, 1000} {
					s := measure(rng, a, fam.prefix, n, k, trials)
					name := fmt.Sprintf("%s, %s, %d nodes, %d addresses", a.name, fam.name, n, k)
					rep.Results = append(rep.Results, report.Result{Name: name, Metrics: s.metrics()})
					fmt.Printf("%-44s ideal %6.1f max %7.2f (worst %4.0f) min %7.2f sd %6.2f | moved: -node %5.1f%% +node %5.1f%% +addr %5.2f%%\n",
						name, s.ideal, s.maxMean, s.maxWorst, s.minMean, s.sdMean, s.movedRemove, s.movedAdd, s.movedKey)
				}
			}
		}
	}
	for _, n := range []int{3, 5, 10, 100} {
		rep.Results = append(rep.Results, cost(n))
	}
	rep.Notes = append(rep.Notes,
		"Minimal movement: removing a node must move at least that node's addresses (about 1/N of all: 33%, 20%, 10% for 3, 5, 10 nodes); "+
			"adding one must move at least the new node's fair share (1/(N+1): 25%, 17%, 9.1%). HRW moves exactly those and nothing else, and never moves an address when another address is added.",
		"HRW's load is multinomial: the standard deviation is about sqrt(addresses × (1/N) × (1 − 1/N)), so few addresses pile up unevenly (MetalLB #2284). No stateless per-address rule can do better; only coupling the addresses (bounded) can.",
		"bounded trades that for coupling: one more address, or a node change, also moves addresses that had nothing to do with it (the \"moved, address added\" column: worst with factor 1 and few addresses), and speakers whose views of the address set differ for a moment disagree on owners. Factor 1.25 caps the worst node but leaves the least loaded one as empty as HRW does.",
		"Cost rows: one election.Owner call (the speaker's per-address work) and one election.Rank call for N nodes.")
	return report.Write(outDir, "election", rep)
}

type spread struct {
	ideal, maxMean, maxWorst, minMean, sdMean float64
	movedRemove, movedAdd, movedKey           float64 // percent of all addresses
}

func (s spread) metrics() []report.Metric {
	r := func(v float64) float64 { return report.Round(v, 2) }
	return []report.Metric{
		{Name: "ideal", Unit: "addr/node", Value: r(s.ideal)},
		{Name: "max, mean", Unit: "addr", Value: r(s.maxMean)},
		{Name: "max, worst trial", Unit: "addr", Value: s.maxWorst},
		{Name: "min, mean", Unit: "addr", Value: r(s.minMean)},
		{Name: "stddev, mean", Unit: "addr", Value: r(s.sdMean)},
		{Name: "max ÷ ideal, mean", Unit: "", Value: r(s.maxMean / s.ideal)},
		{Name: "moved, node removed", Unit: "%", Value: r(s.movedRemove)},
		{Name: "moved, node added", Unit: "%", Value: r(s.movedAdd)},
		{Name: "moved, address added", Unit: "%", Value: r(s.movedKey)},
	}
}

func measure(rng *rand.Rand, a assigner, prefix netip.Prefix, n, k, trials int) spread {
	nodes := make([]string, n)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("worker-%d", i+1)
	}
	added := append(append([]string(nil), nodes...), fmt.Sprintf("worker-%d", n+1))

	var s spread
	s.ideal = float64(k) / float64(n)
	for range trials {
		keys := draw(rng, prefix, k+1)
		extra := keys[k]
		keys = keys[:k]

		owners := a.assign(keys, nodes)
		loads := make(map[string]int, n)
		for _, o := range owners {
			loads[o]++
		}
		hi, lo, sd := stats(loads, nodes, s.ideal)
		s.maxMean += hi
		s.maxWorst = max(s.maxWorst, hi)
		s.minMean += lo
		s.sdMean += sd

		gone := rng.IntN(n)
		fewer := append(append([]string(nil), nodes[:gone]...), nodes[gone+1:]...)
		s.movedRemove += moved(owners, a.assign(keys, fewer), keys)
		s.movedAdd += moved(owners, a.assign(keys, added), keys)
		s.movedKey += moved(owners, a.assign(append(keys, extra), nodes), keys)
	}
	t := float64(trials)
	s.maxMean /= t
	s.minMean /= t
	s.sdMean /= t
	s.movedRemove = 100 * s.movedRemove / t
	s.movedAdd = 100 * s.movedAdd / t
	s.movedKey = 100 * s.movedKey / t
	return s
}

// draw returns k distinct random addresses of prefix, as strings (the form
// the speaker passes as key).
func draw(rng *rand.Rand, prefix netip.Prefix, k int) []string {
	seen := make(map[netip.Addr]bool, k)
	out := make([]string, 0, k)
	base := prefix.Masked().Addr().As16()
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	for len(out) < k {
		b := base
		// Randomise the host bits only (at most 64 here), from the last byte up.
		r := rng.Uint64()
		if hostBits < 64 {
			r &= 1<<hostBits - 1
		}
		for i := 15; i >= 8; i-- {
			b[i] |= byte(r)
			r >>= 8
		}
		addr := netip.AddrFrom16(b)
		if prefix.Addr().Is4() {
			addr = addr.Unmap()
		}
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr.String())
		}
	}
	return out
}

func stats(loads map[string]int, nodes []string, ideal float64) (hi, lo, sd float64) {
	lo = math.Inf(1)
	for _, n := range nodes {
		l := float64(loads[n])
		hi = max(hi, l)
		lo = min(lo, l)
		sd += (l - ideal) * (l - ideal)
	}
	return hi, lo, math.Sqrt(sd / float64(len(nodes)))
}

// moved is the fraction of keys whose owner differs between before and after.
func moved(before, after map[string]string, keys []string) float64 {
	var m int
	for _, k := range keys {
		if before[k] != after[k] {
			m++
		}
	}
	return float64(m) / float64(len(keys))
}

func cost(n int) report.Result {
	nodes := make([]string, n)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("worker-%d", i+1)
	}
	const key = "198.18.7.42"
	owner := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			election.Owner(key, nodes)
		}
	})
	rank := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			election.Rank(key, nodes)
		}
	})
	fmt.Printf("cost, %3d nodes: Owner %6d ns/op %d allocs/op; Rank %6d ns/op\n", n, owner.NsPerOp(), owner.AllocsPerOp(), rank.NsPerOp())
	return report.Result{Name: fmt.Sprintf("cost, %d nodes", n), Metrics: []report.Metric{
		{Name: "Owner", Unit: "ns/op", Value: float64(owner.NsPerOp())},
		{Name: "Owner allocs", Unit: "allocs/op", Value: float64(owner.AllocsPerOp())},
		{Name: "Rank", Unit: "ns/op", Value: float64(rank.NsPerOp())},
	}}
}
