package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// TestRandomOperations drives the controller through seeded random
// sequences of Service creates, deletes, port changes, pool changes and
// controller restarts. While each step settles, no two Services may ever be
// seen holding one address unless the sharing rules let every pair of them
// share it; once it has settled, every address lies in a pool, no Service is
// left pending while an address it could take is free, and a Service moved
// only with cause: it is new, its address left its pool, or its new port
// clashes with a Service it shared its address with.
func TestRandomOperations(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { randomOperations(t, seed, 30) })
	}
}

func randomOperations(t *testing.T, seed uint64, steps int) {
	start := time.Now()
	e := newEnv(t)
	e.namespaces(ns, "apps")
	pools := map[string]string{"a": "192.0.2.0/29", "b": "198.51.100.0/29"}
	applyPools := func() {
		var y string
		for _, n := range []string{"a", "b"} {
			y += pool(n, pools[n]) + "---\n"
		}
		e.apply(y)
	}
	applyPools()
	stop := e.startController(ns)
	rng := rand.New(rand.NewPCG(seed, 7))
	live := map[string]bool{}
	next := 0
	names := func() []string {
		out := make([]string, 0, len(live))
		for n := range live {
			out = append(out, n)
		}
		slices.Sort(out) // map order must not leak into the random choices
		return out
	}
	for step := range steps {
		before := e.lbServices()
		// mayMove: the Services this step gives cause to move.
		mayMove := map[string]bool{}
		clashing := map[string]bool{}
		var op string
		switch k := rng.IntN(10); {
		case k < 4 || len(live) == 0:
			name := fmt.Sprintf("s%d", next)
			next++
			live[name] = true
			key := []string{"", "", "k1", "k2"}[rng.IntN(4)]
			port := int32(80 + rng.IntN(3))
			op = fmt.Sprintf("create %s key=%q port=%d", name, key, port)
			e.service("apps", name, func(s *corev1.Service) {
				if key != "" {
					s.Annotations = map[string]string{"metallb.io/allow-shared-ip": key}
				}
				s.Spec.Ports[0].Port = port
			})
		case k < 6:
			n := names()[rng.IntN(len(live))]
			op = "delete " + n
			delete(live, n)
			if err := e.cl.Delete(context.Background(), e.get("apps", n)); err != nil {
				t.Fatal(err)
			}
		case k < 7:
			n := names()[rng.IntN(len(live))]
			svc := e.get("apps", n)
			svc.Spec.Ports[0].Port = int32(80 + rng.IntN(3))
			op = fmt.Sprintf("port %s %d", n, svc.Spec.Ports[0].Port)
			// It may move only if a Service it shares with uses that port.
			if moved := *svc; holdsWithClash(before, &moved) {
				mayMove["apps/"+n] = true
				// Until the controller moves it, the API shows the
				// clash the update made: not the controller's doing.
				clashing["apps/"+n] = true
			}
			if err := e.cl.Update(context.Background(), svc); err != nil {
				t.Fatal(err)
			}
		case k < 9:
			p := []string{"a", "b"}[rng.IntN(2)]
			base := map[string]string{"a": "192.0.2.", "b": "198.51.100."}[p]
			pools[p] = fmt.Sprintf("%s0-%s%d", base, base, 1+rng.IntN(7))
			op = "pool " + p + " " + pools[p]
			// Only the Services whose address left every pool may move.
			for k, svc := range before {
				if v := ingress(svc); v != "" && !inPools(v, pools) {
					mayMove[k] = true
				}
			}
			applyPools()
		default:
			op = "restart"
			stop()
			stop = e.startController(ns)
		}
		after := e.settleStrict(step, op, len(live), pools, clashing)
		for k, svc := range after {
			v := ingress(svc)
			if b := before[k]; b != nil && ingress(b) != "" && !mayMove[k] && ingress(b) != v {
				t.Fatalf("step %d (%s): %s moved from %s to %q without cause", step, op, k, ingress(b), v)
			}
		}
	}
	t.Logf("seed %d: %d steps, %d Services created, in %s", seed, steps, next, time.Since(start).Round(time.Millisecond))
}

// lbServices maps every LoadBalancer Service by namespace/name.
func (e *env) lbServices() map[string]*corev1.Service {
	e.t.Helper()
	var list corev1.ServiceList
	if err := e.cl.List(context.Background(), &list); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*corev1.Service{}
	for i := range list.Items {
		if svc := &list.Items[i]; svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			out[svc.Namespace+"/"+svc.Name] = svc
		}
	}
	return out
}

// holdsWithClash reports whether changed (with its new ports) holds an
// address together with another Service that uses one of those ports.
func holdsWithClash(svcs map[string]*corev1.Service, changed *corev1.Service) bool {
	key := changed.Namespace + "/" + changed.Name
	mine := svcs[key]
	if mine == nil {
		return false
	}
	for k, other := range svcs {
		if k == key || !shareAddress(mine, other) {
			continue
		}
		for _, p := range changed.Spec.Ports {
			if slices.ContainsFunc(other.Spec.Ports, func(q corev1.ServicePort) bool { return q.Protocol == p.Protocol && q.Port == p.Port }) {
				return true
			}
		}
	}
	return false
}

func shareAddress(a, b *corev1.Service) bool {
	for _, x := range a.Status.LoadBalancer.Ingress {
		for _, y := range b.Status.LoadBalancer.Ingress {
			if x.IP == y.IP {
				return true
			}
		}
	}
	return false
}

// settleStrict waits until n Services each have the condition agreeing with
// their status (addresses and True, or none and False), every address lies
// in a pool, and none is pending while an address it could take is free.
// On every look it checks every pair of holders of every address against
// the sharing rules, and fails on the first look that shows a pair that may
// not share, unless one of them is clashing: a Service whose update made
// the clash, which the controller must then resolve.
func (e *env) settleStrict(step int, op string, n int, pools map[string]string, clashing map[string]bool) map[string]*corev1.Service {
	e.t.Helper()
	var got map[string]*corev1.Service
	e.eventually("controller to settle", func() (bool, string) {
		got = e.lbServices()
		var pending []string
		for _, v := range sharingViolations(got) {
			if clashing[v.a] || clashing[v.b] {
				pending = append(pending, v.String())
				continue
			}
			e.t.Fatalf("step %d (%s): %s", step, op, v)
		}
		if len(pending) > 0 {
			return false, strings.Join(pending, "; ")
		}
		if len(got) != n {
			return false, fmt.Sprintf("%d services, want %d", len(got), n)
		}
		for k, svc := range got {
			c := meta.FindStatusCondition(svc.Status.Conditions, "metallb.io/AddressAllocated")
			has := len(svc.Status.LoadBalancer.Ingress) > 0
			if c == nil || has != (c.Status == "True") {
				return false, k + " not settled"
			}
			if v := ingress(svc); has && !inPools(v, pools) {
				return false, fmt.Sprintf("%s has %s, outside every pool %v", k, v, pools)
			}
			if ad, ok := couldTake(svc, got, pools); !has && ok {
				return false, fmt.Sprintf("%s pending while it could take %s", k, ad)
			}
		}
		return true, ""
	})
	return got
}

// violation is an address held by two Services that may not share it.
type violation struct{ ip, a, b string }

func (v violation) String() string {
	return fmt.Sprintf("%s held by %s and %s, which may not share", v.ip, v.a, v.b)
}

// sharingViolations lists every address held by two Services that may not
// share it, comparing every pair of its holders.
func sharingViolations(svcs map[string]*corev1.Service) []violation {
	holders := map[string][]string{}
	for k, svc := range svcs {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			holders[in.IP] = append(holders[in.IP], k)
		}
	}
	var bad []violation
	for ip, hs := range holders {
		slices.Sort(hs)
		for i := range hs {
			for j := i + 1; j < len(hs); j++ {
				if !mayShare(svcs[hs[i]], svcs[hs[j]]) {
					bad = append(bad, violation{ip, hs[i], hs[j]})
				}
			}
		}
	}
	slices.SortFunc(bad, func(x, y violation) int { return strings.Compare(x.String(), y.String()) })
	return bad
}

// couldTake returns an address of the pools that svc could be given: one
// nobody holds, or one whose holders may all share it with svc.
func couldTake(svc *corev1.Service, svcs map[string]*corev1.Service, pools map[string]string) (netip.Addr, bool) {
	holders := map[netip.Addr][]*corev1.Service{}
	for _, other := range svcs {
		for _, in := range other.Status.LoadBalancer.Ingress {
			ad := netip.MustParseAddr(in.IP)
			holders[ad] = append(holders[ad], other)
		}
	}
	for _, name := range []string{"a", "b"} {
		for _, ad := range poolAddrs(pools[name]) {
			if !slices.ContainsFunc(holders[ad], func(h *corev1.Service) bool { return !mayShare(h, svc) }) {
				return ad, true
			}
		}
	}
	return netip.Addr{}, false
}

// poolAddrs enumerates a pool entry, a CIDR or a range "a-b".
func poolAddrs(r string) []netip.Addr {
	var first, last netip.Addr
	if p, err := netip.ParsePrefix(r); err == nil {
		first = p.Masked().Addr()
		last = first
		for n := 1; n < 1<<(first.BitLen()-p.Bits()); n++ {
			last = last.Next()
		}
	} else {
		f, l, _ := strings.Cut(r, "-")
		first, last = netip.MustParseAddr(f), netip.MustParseAddr(l)
	}
	var out []netip.Addr
	for ad := first; ad.Compare(last) <= 0; ad = ad.Next() {
		out = append(out, ad)
	}
	return out
}

func inPools(ip string, pools map[string]string) bool {
	a := netip.MustParseAddr(ip)
	for _, r := range pools {
		if slices.Contains(poolAddrs(r), a) {
			return true
		}
	}
	return false
}

// TestSharingViolations: every pair of an address's holders is compared,
// not each holder with the one before it (which sees A-B and B-C share and
// misses A and C on one port).
func TestSharingViolations(t *testing.T) {
	holder := func(name, key string, port int32) *corev1.Service {
		s := &corev1.Service{}
		s.Namespace, s.Name = "apps", name
		s.Annotations = map[string]string{"metallb.io/allow-shared-ip": key}
		s.Spec.Ports = []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: port}}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}
		return s
	}
	tests := []struct {
		name string
		svcs []*corev1.Service
		want []string
	}{
		{"three may share", []*corev1.Service{holder("a", "k", 80), holder("b", "k", 81), holder("c", "k", 82)}, nil},
		{"first and last clash", []*corev1.Service{holder("a", "k", 80), holder("b", "k", 81), holder("c", "k", 80)},
			[]string{"192.0.2.1 held by apps/a and apps/c, which may not share"}},
		{"keys differ", []*corev1.Service{holder("a", "k", 80), holder("b", "j", 81)},
			[]string{"192.0.2.1 held by apps/a and apps/b, which may not share"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svcs := map[string]*corev1.Service{}
			for _, s := range tt.svcs {
				svcs[s.Namespace+"/"+s.Name] = s
			}
			var got []string
			for _, v := range sharingViolations(svcs) {
				got = append(got, v.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
