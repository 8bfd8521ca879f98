package ipam

import (
	"fmt"
	"testing"
)

// benchPools are the pool shapes benchmarked: a big IPv4 pool and a /64.
var benchPools = []struct {
	name  string
	entry string
	fam   Families
}{
	{"v4-slash8", "10.0.0.0/8", Families{}},
	{"v6-slash64", "2001:db8::/64", Families{Primary: IPv6}},
}

// filled returns an allocator whose pool already has n allocations.
func filled(b *testing.B, entry string, fam Families, n int) (*Allocator, []Candidate) {
	b.Helper()
	a := New()
	if _, err := a.SetPools([]Pool{mkPool(b, "bench", true, entry)}); err != nil {
		b.Fatal(err)
	}
	cands := []Candidate{{Pool: "bench"}}
	for i := 0; i < n; i++ {
		if _, err := a.Allocate(Service{Key: fmt.Sprintf("existing/%d", i), Families: fam}, cands); err != nil {
			b.Fatal(err)
		}
	}
	return a, cands
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench/%d", i)
	}
	return keys
}

// BenchmarkAllocate measures one automatic allocation on top of n existing
// ones.
func BenchmarkAllocate(b *testing.B) {
	for _, p := range benchPools {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/existing=%d", p.name, n), func(b *testing.B) {
				a, cands := filled(b, p.entry, p.fam, n)
				keys := benchKeys(b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := a.Allocate(Service{Key: keys[i], Families: p.fam}, cands); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRelease measures releasing one of n existing allocations.
func BenchmarkRelease(b *testing.B) {
	for _, p := range benchPools {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/existing=%d", p.name, n), func(b *testing.B) {
				a, cands := filled(b, p.entry, p.fam, n)
				keys := benchKeys(b.N)
				for i := 0; i < b.N; i++ {
					if _, err := a.Allocate(Service{Key: keys[i], Families: p.fam}, cands); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, ok := a.Release(keys[i]); !ok {
						b.Fatal("not allocated")
					}
				}
			})
		}
	}
}

// BenchmarkAllocateRelease measures an allocation and its release, the pool
// staying at n allocations: the steady state of a busy cluster.
func BenchmarkAllocateRelease(b *testing.B) {
	for _, p := range benchPools {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/existing=%d", p.name, n), func(b *testing.B) {
				a, cands := filled(b, p.entry, p.fam, n)
				svc := Service{Key: "bench/churn", Families: p.fam}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := a.Allocate(svc, cands); err != nil {
						b.Fatal(err)
					}
					a.Release(svc.Key)
				}
			})
		}
	}
}
