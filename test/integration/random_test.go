package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// TestRandomOperations drives the controller through a seeded random
// sequence of Service creates, deletes, annotation and port changes, pool
// changes and controller restarts. After each step settles: no address is
// held twice, every address lies in a pool, and a Service that nothing
// touched (its spec, its annotations, the pool holding its address) kept
// its address.
func TestRandomOperations(t *testing.T) {
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
	rng := rand.New(rand.NewPCG(42, 7))
	live := map[string]bool{}
	touched := map[string]bool{}
	next := 0
	names := func() []string {
		var out []string
		for n := range live {
			out = append(out, n)
		}
		// map order must not leak into the random choices
		for i := range out {
			for j := i + 1; j < len(out); j++ {
				if out[j] < out[i] {
					out[i], out[j] = out[j], out[i]
				}
			}
		}
		return out
	}
	for step := 0; step < 40; step++ {
		before, _ := e.allIngress()
		clear(touched)
		var op string
		switch k := rng.IntN(10); {
		case k < 4 || len(live) == 0:
			name := fmt.Sprintf("s%d", next)
			next++
			live[name] = true
			touched["apps/"+name] = true
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
			touched["apps/"+n] = true
			if err := e.cl.Update(context.Background(), svc); err != nil {
				t.Fatal(err)
			}
		case k < 9:
			p := []string{"a", "b"}[rng.IntN(2)]
			base := map[string]string{"a": "192.0.2.", "b": "198.51.100."}[p]
			pools[p] = fmt.Sprintf("%s0-%s%d", base, base, 1+rng.IntN(7))
			op = "pool " + p + " " + pools[p]
			for k, v := range before {
				if v != "" && inRange(v, base) {
					touched[k] = true
				}
			}
			applyPools()
		default:
			op = "restart"
			stop()
			stop = e.startController(ns)
		}
		settled := e.settle(len(live))
		for k, v := range settled {
			if v != "" && !inPools(v, pools) {
				t.Fatalf("step %d (%s): %s has %s, outside every pool %v", step, op, k, v, pools)
			}
			if old := before[k]; old != "" && !touched[k] && old != v {
				t.Fatalf("step %d (%s): %s moved from %s to %q without cause", step, op, k, old, v)
			}
		}
	}
}

// settle waits until n Services each have the condition agreeing with their
// status (addresses and True, or none and False) and no address is held
// twice.
func (e *env) settle(n int) map[string]string {
	e.t.Helper()
	var got map[string]string
	e.eventually("controller to settle", func() (bool, string) {
		var list corev1.ServiceList
		if err := e.cl.List(context.Background(), &list); err != nil {
			return false, err.Error()
		}
		var dups []string
		got, dups = e.allIngress()
		if len(dups) > 0 || len(got) != n {
			return false, fmt.Sprintf("%d services, duplicates %q", len(got), dups)
		}
		for _, svc := range list.Items {
			if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
				continue
			}
			c := meta.FindStatusCondition(svc.Status.Conditions, "metallb.io/AddressAllocated")
			has := len(svc.Status.LoadBalancer.Ingress) > 0
			if c == nil || has != (c.Status == "True") {
				return false, svc.Name + " not settled"
			}
		}
		return true, ""
	})
	return got
}

func inRange(ip, prefix string) bool { return len(ip) >= len(prefix) && ip[:len(prefix)] == prefix }

func inPools(ip string, pools map[string]string) bool {
	a := netip.MustParseAddr(ip)
	for _, r := range pools {
		var first, last netip.Addr
		if p, err := netip.ParsePrefix(r); err == nil {
			if p.Contains(a) {
				return true
			}
			continue
		}
		var f, l string
		for i := range r {
			if r[i] == '-' {
				f, l = r[:i], r[i+1:]
			}
		}
		first, last = netip.MustParseAddr(f), netip.MustParseAddr(l)
		if a.Compare(first) >= 0 && a.Compare(last) <= 0 {
			return true
		}
	}
	return false
}
