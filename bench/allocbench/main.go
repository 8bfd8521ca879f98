// Command allocbench measures Herald's address allocator (internal/ipam) in
// one run against a naive linear first-fit allocator written here as a
// baseline, and writes the figures to bench/results/allocator.{json,md}.
//
// Each scenario starts from a pool already holding N allocations at its
// bottom (as a pool filled from its first address looks), then times one
// automatic allocation followed by its release, so the state is the same
// at every iteration. The baseline scans from the first address of the pool
// for each allocation, which is how MetalLB's allocator works; its cost grows
// with N while Herald's should not.
//
// Run from the repository root: go run ./bench/allocbench
package main

import (
	"cmp"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/herald-lb/herald/bench/report"
	"github.com/herald-lb/herald/internal/ipam"
)

func main() {
	testing.Init() // lets -test.benchtime tune testing.Benchmark
	out := flag.String("out", "bench/results", "directory for allocator.json and allocator.md")
	flag.Parse()
	if err := run(*out); err != nil {
		slog.Error("allocbench failed", "err", err)
		os.Exit(1)
	}
}

type scenario struct {
	name  string
	entry string
	fam   ipam.Families
	n     int
}

func scenarios() []scenario {
	var out []scenario
	for _, p := range []struct {
		entry string
		fam   ipam.Families
	}{
		{"198.18.0.0/15", ipam.Families{}},
		{"10.0.0.0/8", ipam.Families{}},
		{"2001:db8::/64", ipam.Families{Primary: ipam.IPv6}},
	} {
		for _, n := range []int{10_000, 100_000} {
			out = append(out, scenario{fmt.Sprintf("%s, %dk existing", p.entry, n/1000), p.entry, p.fam, n})
		}
	}
	return out
}

func run(outDir string) error {
	rep := report.Report{
		Title: "Address allocator: Herald vs. a linear first-fit baseline",
		Description: "Each scenario: a pool already holding N allocations from its first address up; " +
			"one operation is an automatic allocation of the lowest free address plus its release. " +
			"\"baseline\" is a naive linear first-fit allocator (a map of used addresses scanned from the pool's first " +
			"address, as MetalLB does), written in bench/allocbench only as a yardstick and measured in the same run. " +
			"Heap per allocation is the live heap growth while filling the N allocations, divided by N. " +
			"Each figure is the median of 3 runs of testing.Benchmark.",
		Command: "go run ./bench/allocbench",
		Machine: report.DescribeMachine(time.Now()),
	}
	for _, sc := range scenarios() {
		herald, heraldHeap, err := benchHerald(sc)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		naive, naiveHeap, err := benchNaive(sc)
		if err != nil {
			return fmt.Errorf("%s baseline: %w", sc.name, err)
		}
		speedup := float64(naive.NsPerOp()) / float64(max(herald.NsPerOp(), 1))
		rep.Results = append(rep.Results,
			report.Result{Name: "Herald ipam, " + sc.name, Metrics: append(metrics(herald, heraldHeap),
				report.Metric{Name: "speedup vs baseline", Unit: "x", Value: math.Round(speedup)})},
			report.Result{Name: "baseline first-fit, " + sc.name, Metrics: metrics(naive, naiveHeap)},
		)
		fmt.Printf("%-30s herald %6d ns/op %d allocs/op %4.0f B/alloc | baseline %9d ns/op %4.0f B/alloc | speedup %.0fx\n",
			sc.name, herald.NsPerOp(), herald.AllocsPerOp(), heraldHeap, naive.NsPerOp(), naiveHeap, speedup)
	}
	rep.Notes = append(rep.Notes,
		"speedup = baseline ns/op ÷ Herald ns/op, both measured in this run.",
		"Herald's cost does not depend on the pool's size (a /64 costs the same as a /15) and grows only logarithmically with N.")
	return report.Write(outDir, "allocator", rep)
}

func metrics(r testing.BenchmarkResult, heapPerAlloc float64) []report.Metric {
	return []report.Metric{
		{Name: "allocate+release", Unit: "ns/op", Value: float64(r.NsPerOp())},
		{Name: "allocs", Unit: "allocs/op", Value: float64(r.AllocsPerOp())},
		{Name: "bytes", Unit: "B/op", Value: float64(r.AllocedBytesPerOp())},
		{Name: "heap per allocation", Unit: "B", Value: math.Round(heapPerAlloc)},
	}
}

// runs is how many times each benchmark is repeated; the median is kept,
// since a garbage collection landing in one run can move it by 2x.
const runs = 3

func median(f func(b *testing.B)) testing.BenchmarkResult {
	var rs []testing.BenchmarkResult
	for range runs {
		rs = append(rs, testing.Benchmark(f))
	}
	slices.SortFunc(rs, func(x, y testing.BenchmarkResult) int { return cmp.Compare(x.NsPerOp(), y.NsPerOp()) })
	return rs[len(rs)/2]
}

// heapGrowth runs fill and returns the live heap growth per item.
func heapGrowth(n int, fill func() error) (float64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := fill(); err != nil {
		return 0, err
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n), nil
}

func benchHerald(sc scenario) (testing.BenchmarkResult, float64, error) {
	r, err := ipam.ParseRange(sc.entry)
	if err != nil {
		return testing.BenchmarkResult{}, 0, err
	}
	a := ipam.New()
	if _, err := a.SetPools([]ipam.Pool{{Name: "bench", Ranges: []ipam.Range{r}, AutoAssign: true}}); err != nil {
		return testing.BenchmarkResult{}, 0, err
	}
	cands := []ipam.Candidate{{Pool: "bench"}}
	heap, err := heapGrowth(sc.n, func() error {
		for i := 0; i < sc.n; i++ {
			if _, err := a.Allocate(ipam.Service{Key: fmt.Sprintf("existing/svc-%d", i), Families: sc.fam}, cands); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return testing.BenchmarkResult{}, 0, err
	}
	svc := ipam.Service{Key: "bench/churn", Families: sc.fam}
	var benchErr error
	res := median(func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := a.Allocate(svc, cands); err != nil {
				benchErr = err
				b.FailNow()
			}
			a.Release(svc.Key)
		}
	})
	runtime.KeepAlive(a)
	return res, heap, benchErr
}

// naiveFirstFit is the BASELINE, not Herald's allocator: a map of used
// addresses and, per allocation, a linear scan from the pool's first address
// to the first unused one. It exists only to be measured against.
type naiveFirstFit struct {
	first, last netip.Addr
	used        map[netip.Addr]string
	bySvc       map[string]netip.Addr
}

func (p *naiveFirstFit) allocate(key string) (netip.Addr, error) {
	for a := p.first; a.IsValid(); a = a.Next() {
		if _, taken := p.used[a]; !taken {
			p.used[a] = key
			p.bySvc[key] = a
			return a, nil
		}
		if a == p.last {
			break
		}
	}
	return netip.Addr{}, fmt.Errorf("pool exhausted")
}

func (p *naiveFirstFit) release(key string) {
	if a, ok := p.bySvc[key]; ok {
		delete(p.used, a)
		delete(p.bySvc, key)
	}
}

func benchNaive(sc scenario) (testing.BenchmarkResult, float64, error) {
	r, err := ipam.ParseRange(sc.entry)
	if err != nil {
		return testing.BenchmarkResult{}, 0, err
	}
	p := &naiveFirstFit{first: r.First, last: r.Last, used: map[netip.Addr]string{}, bySvc: map[string]netip.Addr{}}
	heap, err := heapGrowth(sc.n, func() error {
		// Filled directly: n scans from the start would take O(n²).
		a := p.first
		for i := 0; i < sc.n; i++ {
			key := fmt.Sprintf("existing/svc-%d", i)
			p.used[a], p.bySvc[key] = key, a
			a = a.Next()
		}
		return nil
	})
	if err != nil {
		return testing.BenchmarkResult{}, 0, err
	}
	var benchErr error
	res := median(func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := p.allocate("bench/churn"); err != nil {
				benchErr = err
				b.FailNow()
			}
			p.release("bench/churn")
		}
	})
	runtime.KeepAlive(p)
	return res, heap, benchErr
}
