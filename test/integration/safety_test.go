package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/testcluster"
)

const ns = "metallb-system"

func pool(name string, addrs ...string) string {
	return fmt.Sprintf(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: %s, namespace: %s}
spec: {addresses: [%s]}
`, name, ns, `"`+strings.Join(addrs, `","`)+`"`)
}

// allIngress maps every LoadBalancer Service to its addresses, and lists
// every pair of Services holding one address that may not share it.
func (e *env) allIngress() (map[string]string, []string) {
	e.t.Helper()
	var list corev1.ServiceList
	if err := e.cl.List(context.Background(), &list); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, svc := range list.Items {
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			out[svc.Namespace+"/"+svc.Name] = ingress(&svc)
		}
	}
	return out, duplicates(list.Items)
}

// mayShare applies MetalLB's sharing rules: the same non-empty key, the
// same traffic policy backend, and no (protocol, port) in common.
func mayShare(a, b *corev1.Service) bool {
	ka, kb := a.Annotations["metallb.io/allow-shared-ip"], b.Annotations["metallb.io/allow-shared-ip"]
	if ka == "" || ka != kb || a.Spec.ExternalTrafficPolicy != b.Spec.ExternalTrafficPolicy {
		return false
	}
	for _, pa := range a.Spec.Ports {
		for _, pb := range b.Spec.Ports {
			if pa.Protocol == pb.Protocol && pa.Port == pb.Port {
				return false
			}
		}
	}
	return true
}

// waitAllAllocated waits until n Services have addresses and no address is
// held twice.
func (e *env) waitAllAllocated(n int) map[string]string {
	e.t.Helper()
	var got map[string]string
	e.eventually(fmt.Sprintf("%d services allocated, no duplicates", n), func() (bool, string) {
		var dups []string
		got, dups = e.allIngress()
		c := 0
		for _, v := range got {
			if v != "" {
				c++
			}
		}
		return c == n && len(dups) == 0, fmt.Sprintf("%d of %d, duplicates %q", c, n, dups)
	})
	return got
}

// TestRestartNeverMovesAnAddress stops the controller, creates Services
// while it is down (one of them claiming, in its status, an address an
// older Service holds), and starts a new controller: every old address
// stays, the older claimant keeps the contested one, and the other gets an
// Event and a fresh address.
func TestRestartNeverMovesAnAddress(t *testing.T) {
	e := newEnv(t)
	e.namespaces(ns, "apps")
	e.apply(pool("p", "192.0.2.0/28"))
	stop := e.startController(ns)
	for i := 0; i < 5; i++ {
		e.service("apps", fmt.Sprintf("s%d", i))
	}
	before := e.waitAllAllocated(5)
	stop()

	for i := 5; i < 8; i++ {
		e.service("apps", fmt.Sprintf("s%d", i))
	}
	// A Service whose status claims s0's address, as a second controller
	// or a hand edit might leave it.
	intruder := e.service("apps", "intruder")
	intruder.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: strings.Split(before["apps/s0"], ",")[0]}}
	if err := e.cl.Status().Update(context.Background(), intruder); err != nil {
		t.Fatal(err)
	}

	e.startController(ns)
	after := e.waitAllAllocated(9)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s moved from %s to %s across a restart", k, v, after[k])
		}
	}
	if after["apps/intruder"] == before["apps/s0"] {
		t.Errorf("the younger claimant kept %s", after["apps/intruder"])
	}
	e.waitEvent("apps", "intruder", "AddressConflict", "apps/s0")
}

// TestTwoReplicas runs two controllers against one API server: one leads,
// no address is ever given twice, and when the leader stops the other takes
// over.
func TestTwoReplicas(t *testing.T) {
	e := newEnv(t)
	e.namespaces(ns, "apps")
	e.apply(pool("p", "192.0.2.0/26"))
	stopA := e.startController(ns)
	e.startController(ns)
	for i := 0; i < 20; i++ {
		e.service("apps", fmt.Sprintf("s%d", i))
	}
	e.waitAllAllocated(20)
	stopA()
	for i := 20; i < 30; i++ {
		e.service("apps", fmt.Sprintf("s%d", i))
	}
	e.waitAllAllocated(30)
}

// TestPoolChanges shrinks and removes pools under allocated Services.
func TestPoolChanges(t *testing.T) {
	e := newEnv(t)
	e.namespaces(ns, "apps")
	e.apply(pool("a", "192.0.2.0/30") + "---\n" + pool("b", "198.51.100.0/30"))
	e.startController(ns)
	e.service("apps", "one", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "192.0.2.3" })
	e.service("apps", "two")
	e.waitIngress("apps", "one", "192.0.2.3")
	e.waitIngress("apps", "two", "192.0.2.0")

	// Shrink a: "one" no longer fits and, since it asked for exactly that
	// address, stays pending with an Event; "two" is untouched.
	e.apply(pool("a", "192.0.2.0/31"))
	e.waitIngress("apps", "one", "")
	e.waitEvent("apps", "one", "AllocationFailed", "192.0.2.3")
	if got := ingress(e.get("apps", "two")); got != "192.0.2.0" {
		t.Errorf("two moved to %q on an unrelated shrink", got)
	}

	// Remove a: "two" moves to b with an Event saying why.
	if _, err := e.c.Kubectl(context.Background(), "", "delete", "ipaddresspool", "a", "-n", ns); err != nil {
		t.Fatal(err)
	}
	e.waitIngress("apps", "two", "198.51.100.0")
	e.waitEvent("apps", "two", "ClearAssignment")
}

// TestSharing puts Services with one sharing key on one address when their
// ports allow, and explains a port clash.
func TestSharing(t *testing.T) {
	e := newEnv(t)
	e.namespaces(ns, "apps")
	e.apply(pool("p", "192.0.2.0/29"))
	e.startController(ns)
	shared := func(port int32, ip string) func(*corev1.Service) {
		return func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.io/allow-shared-ip": "key"}
			s.Spec.Ports[0].Port = port
			s.Spec.LoadBalancerIP = ip
		}
	}
	e.service("apps", "dns-tcp", shared(53, ""))
	e.waitIngress("apps", "dns-tcp", "192.0.2.0")
	e.service("apps", "dns-udp", shared(80, ""))
	e.waitIngress("apps", "dns-udp", "192.0.2.0")
	e.service("apps", "clash", shared(53, "192.0.2.0"))
	e.waitEvent("apps", "clash", "AllocationFailed", "TCP/53", "apps/dns-tcp")
	e.service("apps", "nokey", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "192.0.2.0" })
	e.waitEvent("apps", "nokey", "AllocationFailed", "192.0.2.0")
	e.eventually("pool counts a shared address once", func() (bool, string) {
		st := poolStatus(e, ns, "p")
		return st.AssignedIPv4 == 1 && st.AvailableIPv4 == 7, toString(st)
	})
}

// dualStackEnv is a control plane whose Services can be IPv6 or dual-stack.
func dualStackEnv(t *testing.T) *env {
	t.Helper()
	c := testcluster.Start(t, func(env *envtest.Environment) {
		env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "198.18.128.0/24,2001:db8:97::/112")
	})
	scheme, _ := controller.Scheme()
	return newEnvFrom(t, c, scheme)
}

// TestDualStack allocates one address of each family from one pool.
func TestDualStack(t *testing.T) {
	e := dualStackEnv(t)
	e.namespaces(ns, "apps")
	e.apply(pool("v4only", "198.51.100.0/30") + "---\n" + pool("dual", "192.0.2.0/30", "2001:db8::/64"))
	e.startController(ns)
	require := corev1.IPFamilyPolicyRequireDualStack
	prefer := corev1.IPFamilyPolicyPreferDualStack
	e.service("apps", "require", func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &require
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	})
	e.waitIngress("apps", "require", "192.0.2.0,2001:db8::")
	e.service("apps", "prefer-v6-first", func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &prefer
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
	})
	e.waitIngress("apps", "prefer-v6-first", "2001:db8::1,192.0.2.1")
	e.service("apps", "v6", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} })
	e.waitIngress("apps", "v6", "2001:db8::2")
	e.eventually("IPv6 availability of a /64", func() (bool, string) {
		st := poolStatus(e, ns, "dual")
		// 2^64 - 3 addresses left: exact in the string, saturated in the int64.
		return st.AssignedIPv6 == 3 && st.AvailableIPv6Exact == "18446744073709551613" && st.AvailableIPv6 == 1<<63-1, toString(st)
	})
}

// TestConfigurationState reports an invalid configuration without applying
// it, keeps the last good one in force, and recovers.
func TestConfigurationState(t *testing.T) {
	e := newEnv(t)
	e.namespaces(ns, "apps")
	e.apply(pool("p", "192.0.2.0/30"))
	e.startController(ns)
	e.service("apps", "one")
	e.waitIngress("apps", "one", "192.0.2.0")

	// No webhook here: the controller's own validation is the last line.
	e.apply(pool("bad", "192.0.2.2-192.0.2.9"))
	state := func() metallbv1beta1.ConfigurationStateStatus {
		var cs metallbv1beta1.ConfigurationState
		if err := e.cl.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "controller"}, &cs); err != nil {
			return metallbv1beta1.ConfigurationStateStatus{}
		}
		return cs.Status
	}
	e.eventually("ConfigurationState Invalid", func() (bool, string) {
		st := state()
		return st.Result == metallbv1beta1.ConfigurationResultInvalid && strings.Contains(st.ErrorSummary, "overlaps"), toString(st)
	})
	e.waitEvent(ns, "bad", "InvalidConfiguration", "overlaps")
	e.service("apps", "two")
	e.waitIngress("apps", "two", "192.0.2.1") // the last good pools still serve
	if got := ingress(e.get("apps", "one")); got != "192.0.2.0" {
		t.Errorf("one moved to %q under an invalid configuration", got)
	}
	if _, err := e.c.Kubectl(context.Background(), "", "delete", "ipaddresspool", "bad", "-n", ns); err != nil {
		t.Fatal(err)
	}
	e.eventually("ConfigurationState Valid", func() (bool, string) {
		st := state()
		return st.Result == metallbv1beta1.ConfigurationResultValid, toString(st)
	})
	_ = metav1.Now
}

// TestTakeOverFromMetalLB: Services whose status and
// metallb.io/ip-allocated-from-pool annotation MetalLB wrote keep exactly
// their addresses when Herald's controller starts, including addresses
// that are not the lowest free ones, and new Services fill the gaps.
func TestTakeOverFromMetalLB(t *testing.T) {
	e := dualStackEnv(t)
	e.namespaces(ns, "apps")
	e.apply(pool("web", "192.0.2.0/29") + "---\n" + pool("v6", "2001:db8::/64"))
	byMetalLB := map[string]string{"a": "192.0.2.5", "b": "192.0.2.0", "c": "2001:db8::42"}
	for name, ip := range byMetalLB {
		svc := e.service("apps", name, func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.io/ip-allocated-from-pool": "web"}
			if strings.Contains(ip, ":") {
				s.Annotations["metallb.io/ip-allocated-from-pool"] = "v6"
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
			}
		})
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if err := e.cl.Status().Update(context.Background(), svc); err != nil {
			t.Fatal(err)
		}
	}
	e.startController(ns)
	e.service("apps", "new")
	got := e.waitAllAllocated(4)
	for name, ip := range byMetalLB {
		if got["apps/"+name] != ip {
			t.Errorf("%s: MetalLB gave %s, Herald left %s", name, ip, got["apps/"+name])
		}
	}
	if got["apps/new"] != "192.0.2.1" {
		t.Errorf("new service got %s, want the lowest free address 192.0.2.1", got["apps/new"])
	}
	for name := range byMetalLB {
		for _, ev := range e.events("apps", name) {
			if strings.HasPrefix(ev, "IPAllocated") || strings.HasPrefix(ev, "ClearAssignment") {
				t.Errorf("%s: unexpected event %q on take-over", name, ev)
			}
		}
	}
}
