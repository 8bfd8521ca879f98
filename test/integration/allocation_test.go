package integration

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/seeds"
)

// TestSeedAllocations holds the controller to every `allocate:` expectation
// in the seed manifests, each in a fresh control plane.
func TestSeedAllocations(t *testing.T) {
	tests := []struct {
		file string
		ns   string // the configuration namespace of the file
		run  func(e *env, f seeds.File)
	}{
		{"000-hetzner-floating-ip.yaml", "metallb-system", func(e *env, f seeds.File) {
			e.namespaces("apps")
			e.service("apps", "first")
			e.waitIngress("apps", "first", "116.202.177.24")
			e.service("apps", "second")
			e.waitEvent("apps", "second", "AllocationFailed", `"ip-address-pool"`, "no available")
			if got := ingress(e.get("apps", "second")); got != "" {
				t.Errorf("second service got %q, want none", got)
			}
		}},
		{"001-goldentooth-l2-migration.yaml", "metallb", func(e *env, f seeds.File) {
			e.namespaces("apps")
			e.service("apps", "first")
			e.waitIngress("apps", "first", "10.4.11.0")
			e.service("apps", "second")
			e.waitIngress("apps", "second", "10.4.11.1")
		}},
		{"002-bgp-flux-helm.yaml", "metallb-system", func(e *env, f seeds.File) {
			e.namespaces("apps")
			e.service("apps", "first")
			svc := e.waitIngress("apps", "first", "192.168.32.0")
			if got := svc.Annotations["metallb.io/ip-allocated-from-pool"]; got != "metallb-pool" {
				t.Errorf("ip-allocated-from-pool = %q", got)
			}
		}},
		{"003-microk8s-ingress.yaml", "metallb-system", func(e *env, f seeds.File) {
			e.seedServices(f, func(d seeds.Doc) {})
			e.waitIngress("ingress", "ingress", "192.168.88.44")
		}},
		{"004-talos-complete.yaml", "metallb-system", func(e *env, f seeds.File) {
			e.seedServices(f, func(d seeds.Doc) {})
			e.waitIngress("default", "nginx-test-lb", "192.168.50.50")
		}},
		{"004-talos-multiple-pools.yaml", "metallb-system", func(e *env, f seeds.File) {
			// Pools are tried by name when none is pinned or prioritised
			// (docs/configuration.md): database-services, then
			// web-services; reserved-manual has autoAssign: false.
			want := map[string]string{
				"my-db-service":            "192.168.50.101",
				"my-web-service":           "192.168.50.100",
				"ingress-nginx-controller": "192.168.50.80",
				"postgres-external":        "",
				"my-webapp":                "192.168.50.102",
				"game-server":              "192.168.50.103",
			}
			e.seedServices(f, func(d seeds.Doc) {
				w, ok := want[d.Name]
				if !ok {
					t.Fatalf("no expectation for %s", d.Name)
				}
				if w == "" {
					e.waitEvent(d.Namespace, d.Name, "AllocationFailed", "192.168.50.100", "default/my-web-service")
					return
				}
				e.waitIngress(d.Namespace, d.Name, w)
			})
			svc := e.get("default", "my-db-service")
			if got := svc.Annotations["metallb.io/ip-allocated-from-pool"]; got != "database-services" {
				t.Errorf("my-db-service ip-allocated-from-pool = %q", got)
			}
			e.waitEvent("default", "my-db-service", "deprecatedAnnotation", "metallb.universe.tf/address-pool")
			e.eventually("pool status counts", func() (bool, string) {
				st := poolStatus(e, "metallb-system", "database-services")
				return st.AssignedIPv4 == 3 && st.AvailableIPv4 == 47, strings.TrimSpace(strings.ReplaceAll(
					strings.ReplaceAll(toString(st), "\n", " "), "  ", " "))
			})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			e := newEnv(t)
			f := seedFile(t, tc.file)
			e.namespaces(tc.ns)
			e.apply(seedConfig(f))
			e.startController(tc.ns)
			tc.run(e, f)
			// The condition says the same as the Events.
			var list corev1.ServiceList
			if err := e.cl.List(context.Background(), &list); err != nil {
				t.Fatal(err)
			}
			for _, svc := range list.Items {
				if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
					continue
				}
				checkCondition(t, &svc)
			}
		})
	}
}
