package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

// watchDuplicates samples every Service's addresses until the test ends and
// fails on the first sample in which two Services that may not share hold
// one address. The restart tests run it across every restart.
func (e *env) watchDuplicates() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			var list corev1.ServiceList
			if err := e.cl.List(ctx, &list); err == nil {
				if dups := duplicates(list.Items); len(dups) > 0 {
					e.t.Errorf("an address is held twice: %s", strings.Join(dups, "; "))
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// duplicates lists every pair of LoadBalancer Services holding one address
// that may not share it.
func duplicates(svcs []corev1.Service) []string {
	lb := map[string]*corev1.Service{}
	for i := range svcs {
		if svcs[i].Spec.Type == corev1.ServiceTypeLoadBalancer {
			lb[svcs[i].Namespace+"/"+svcs[i].Name] = &svcs[i]
		}
	}
	var out []string
	for _, v := range sharingViolations(lb) {
		out = append(out, v.String())
	}
	return out
}

func (e *env) annotate(ns, name, key, value string) {
	e.t.Helper()
	svc := e.get(ns, name)
	base := svc.DeepCopy()
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[key] = value
	if err := e.cl.Patch(context.Background(), svc, client.MergeFrom(base)); err != nil {
		e.t.Fatal(err)
	}
}

// condition returns "Status/Reason: message" of Herald's condition on a
// Service.
func (e *env) condition(ns, name string) string {
	for _, c := range e.get(ns, name).Status.Conditions {
		if c.Type == "metallb.io/AddressAllocated" {
			return fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return ""
}

// TestRestartKeepsAddressOfBadRequest: a Service whose request becomes
// unparsable keeps its address, and a restarted controller still counts the
// address as taken (it once skipped such Services in its restore and gave
// the address to the next Service).
func TestRestartKeepsAddressOfBadRequest(t *testing.T) {
	e := newEnv(t)
	e.namespaces(ns, "apps")
	e.watchDuplicates()
	e.apply(pool("p", "192.0.2.10-192.0.2.11"))
	stop := e.startController(ns)
	e.service("apps", "a")
	e.waitIngress("apps", "a", "192.0.2.10")
	e.annotate("apps", "a", "metallb.io/loadBalancerIPs", "not-an-ip")
	e.eventually("a's request reported invalid", func() (bool, string) {
		c := e.condition("apps", "a")
		return strings.Contains(c, "InvalidRequest"), c
	})
	stop()

	e.startController(ns)
	e.service("apps", "b")
	e.waitIngress("apps", "b", "192.0.2.11")
	e.service("apps", "c")
	e.eventually("c pending: the pool is full", func() (bool, string) {
		c := e.condition("apps", "c")
		return strings.HasPrefix(c, "False/"), c
	})
	if got := ingress(e.get("apps", "a")); got != "192.0.2.10" {
		t.Errorf("a holds %q, want 192.0.2.10 kept", got)
	}
	if got := ingress(e.get("apps", "c")); got != "" {
		t.Errorf("c got %q from a full pool", got)
	}
}

const peerMissingSecret = `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 192.0.2.1
  passwordSecret: {name: not-yet-created}
`

// TestRestartWithProblemObjects: objects the webhook admits with a
// transient problem (a BGPPeer naming a Secret that does not exist yet), or
// that got past no webhook at all (an overlapping pool), do not stop a
// restarted controller from serving the valid pools; each problem is
// reported against its object; a Service of a pool that has a problem keeps
// its address across the restart, and gets no other.
func TestRestartWithProblemObjects(t *testing.T) {
	e := newEnv(t)
	e.namespaces(ns, "apps")
	e.watchDuplicates()
	e.apply(pool("p", "192.0.2.0/30"))
	e.apply(pool("zz", "192.0.2.64/30"))
	stop := e.startController(ns)
	e.service("apps", "one")
	e.waitIngress("apps", "one", "192.0.2.0")
	e.service("apps", "x", func(s *corev1.Service) {
		s.Annotations = map[string]string{"metallb.io/address-pool": "zz"}
	})
	e.waitIngress("apps", "x", "192.0.2.64")

	e.apply(peerMissingSecret)
	e.apply(pool("zz", "192.0.2.64/30", "192.0.2.2/31")) // now overlaps p
	e.eventually("ConfigurationState names both problems", func() (bool, string) {
		st := e.configState()
		return strings.Contains(st.ErrorSummary, "not-yet-created") && strings.Contains(st.ErrorSummary, "overlaps"), toString(st)
	})
	e.service("apps", "two")
	e.waitIngress("apps", "two", "192.0.2.1")
	stop()

	e.startController(ns)
	e.service("apps", "three")
	e.waitIngress("apps", "three", "192.0.2.2")
	e.waitEvent(ns, "router", "not-yet-created")
	e.waitEvent(ns, "zz", "overlaps")
	st := e.configState()
	if st.Result != metallbv1beta1.ConfigurationResultInvalid {
		t.Errorf("ConfigurationState after restart: %s", toString(st))
	}
	e.eventually("x keeps its address, saying why", func() (bool, string) {
		c := e.condition("apps", "x")
		return ingress(e.get("apps", "x")) == "192.0.2.64" && strings.Contains(c, `"zz"`), c
	})
	for _, n := range []string{"one", "two"} {
		if got, want := ingress(e.get("apps", n)), map[string]string{"one": "192.0.2.0", "two": "192.0.2.1"}[n]; got != want {
			t.Errorf("%s moved from %s to %q", n, want, got)
		}
	}

	// Fixed: zz is back in force, x keeps its address, and the next
	// Service of zz gets the next one.
	e.apply(pool("zz", "192.0.2.64/30"))
	e.eventually("ConfigurationState Valid", func() (bool, string) {
		st := e.configState()
		return st.Result == metallbv1beta1.ConfigurationResultValid || strings.Contains(st.ErrorSummary, "not-yet-created") && !strings.Contains(st.ErrorSummary, "overlaps"), toString(st)
	})
	e.service("apps", "y", func(s *corev1.Service) {
		s.Annotations = map[string]string{"metallb.io/address-pool": "zz"}
	})
	e.waitIngress("apps", "y", "192.0.2.65")
	e.eventually("x allocated from zz again", func() (bool, string) {
		c := e.condition("apps", "x")
		return strings.HasPrefix(c, "True/"), c
	})
	if got := ingress(e.get("apps", "x")); got != "192.0.2.64" {
		t.Errorf("x moved to %q", got)
	}
}

func (e *env) configState() metallbv1beta1.ConfigurationStateStatus {
	var cs metallbv1beta1.ConfigurationState
	if err := e.cl.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "controller"}, &cs); err != nil {
		return metallbv1beta1.ConfigurationStateStatus{}
	}
	return cs.Status
}
