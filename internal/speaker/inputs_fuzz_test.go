package speaker

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/ipam"
)

// FuzzPoolOf reads the metallb.io/ip-allocated-from-pool annotation and a
// status address as the speaker does: the pool it reports holds the
// address, is the annotated one whenever that pool holds it, and is empty
// only when no pool does.
func FuzzPoolOf(f *testing.F) {
	f.Add("a", "192.0.2.3")
	f.Add("b", "192.0.2.3")
	f.Add("", "::ffff:192.0.2.9")
	f.Add("gone", "2001:db8::1")
	f.Add("a", "2001:db8::1%eth0")
	var pools []*config.Pool
	for _, p := range []struct{ name, cidr string }{{"a", "192.0.2.0/29"}, {"b", "192.0.2.8/29"}, {"c", "2001:db8::/124"}} {
		r, err := ipam.ParseRange(p.cidr)
		if err != nil {
			f.Fatal(err)
		}
		pools = append(pools, &config.Pool{Pool: ipam.Pool{Name: p.name, Ranges: []ipam.Range{r}}})
	}
	cfg := &config.Config{Namespace: "metallb-system", Pools: pools}
	f.Fuzz(func(t *testing.T, annotated, ingress string) {
		a, err := netip.ParseAddr(ingress)
		if err != nil {
			return
		}
		a = a.Unmap()
		got := poolOf(cfg, annotated, a)
		holds := func(p *config.Pool) bool {
			return p != nil && slices.ContainsFunc(p.Ranges, func(r ipam.Range) bool { return r.Contains(a) })
		}
		anyHolds := slices.ContainsFunc(pools, holds)
		switch {
		case got == "" && anyHolds, got != "" && !holds(cfg.Pool(got)):
			t.Fatalf("poolOf(%q, %v) = %q", annotated, a, got)
		case holds(cfg.Pool(annotated)) && got != annotated:
			t.Fatalf("poolOf(%q, %v) = %q, but the annotated pool holds it", annotated, a, got)
		}
	})
}
