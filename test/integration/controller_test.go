package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/seeds"
	"github.com/herald-lb/herald/internal/testcluster"
)

// env is a control plane with a client and helpers for the controller tests.
type env struct {
	t  *testing.T
	c  *testcluster.Cluster
	cl client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := testcluster.Start(t)
	scheme, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	return newEnvFrom(t, c, scheme)
}

func newEnvFrom(t *testing.T, c *testcluster.Cluster, scheme *runtime.Scheme) *env {
	t.Helper()
	cl, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, c: c, cl: cl}
}

// startController runs a controller in this process until the test ends or
// the returned stop is called.
func (e *env) startController(namespace string, mod ...func(*controller.Options)) (stop func()) {
	e.t.Helper()
	opts := controller.Options{
		Namespace: namespace, MetricsAddr: "0", HealthAddr: "0",
		LeaderElection: true, Registry: prometheus.NewRegistry(), Log: testLogger(e.t),
		PoolStatusInterval: 100 * time.Millisecond,
	}
	for _, m := range mod {
		m(&opts)
	}
	mgr, err := controller.NewManager(e.c.Config, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("controller: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Errorf("controller did not stop")
		}
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) apply(yaml string) {
	e.t.Helper()
	if _, err := e.c.Kubectl(context.Background(), yaml, "apply", "-f", "-"); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) namespaces(names ...string) {
	e.t.Helper()
	createNamespaces(context.Background(), e.t, e.c, names...)
}

// service creates a LoadBalancer Service with one TCP port.
func (e *env) service(ns, name string, mod ...func(*corev1.Service)) *corev1.Service {
	e.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, m := range mod {
		m(svc)
	}
	if err := e.cl.Create(context.Background(), svc); err != nil {
		e.t.Fatalf("create service %s/%s: %v", ns, name, err)
	}
	return svc
}

func (e *env) get(ns, name string) *corev1.Service {
	e.t.Helper()
	var svc corev1.Service
	if err := e.cl.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
		e.t.Fatal(err)
	}
	return &svc
}

func ingress(svc *corev1.Service) string {
	var out []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return strings.Join(out, ",")
}

// eventually polls cond until it holds or the deadline passes. Deadlines are
// generous: they bound a hang, they do not measure speed.
func (e *env) eventually(what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("%s: still %s", what, last)
}

// waitIngress waits until the Service has exactly want as its addresses.
func (e *env) waitIngress(ns, name, want string) *corev1.Service {
	e.t.Helper()
	var svc *corev1.Service
	e.eventually(fmt.Sprintf("service %s/%s to get %q", ns, name, want), func() (bool, string) {
		svc = e.get(ns, name)
		got := ingress(svc)
		return got == want, fmt.Sprintf("%q", got)
	})
	return svc
}

// events returns "reason: message" of the Events about an object.
func (e *env) events(ns, name string) []string {
	e.t.Helper()
	var list corev1.EventList
	if err := e.cl.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name == name {
			out = append(out, ev.Reason+": "+ev.Message)
		}
	}
	return out
}

// waitEvent waits for an Event on the object whose text contains every part.
func (e *env) waitEvent(ns, name string, parts ...string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("event on %s/%s containing %q", ns, name, parts), func() (bool, string) {
		evs := e.events(ns, name)
		for _, ev := range evs {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(ev, p)
			}
			if all {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%q", evs)
	})
}

// seedConfig returns the seed file's documents except Services, Namespaces
// and the ones Herald must refuse, as one YAML stream.
func seedConfig(f seeds.File) string {
	var b strings.Builder
	for _, d := range f.Docs {
		if d.Kind == "Service" || d.Kind == "Namespace" || contains(f.Rejects, d.Name) {
			continue
		}
		b.WriteString(d.YAML)
		b.WriteString("\n---\n")
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func seedFile(t *testing.T, name string) seeds.File {
	t.Helper()
	for _, f := range loadSeeds(t) {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("seed %s not found", name)
	return seeds.File{}
}

// applySeedServices creates the file's Namespaces and Services in order,
// each after the previous one has been handled, since the expectations
// depend on the order.
func (e *env) seedServices(f seeds.File, each func(d seeds.Doc)) {
	e.t.Helper()
	for _, d := range f.Docs {
		switch d.Kind {
		case "Namespace":
			e.apply(d.YAML)
		case "Service":
			e.apply(d.YAML)
			each(d)
		}
	}
}

func poolStatus(e *env, ns, name string) metallbv1beta1.IPAddressPoolStatus {
	var p metallbv1beta1.IPAddressPool
	if err := e.cl.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		e.t.Fatal(err)
	}
	return p.Status
}

// testLogger shows the controller's log in the test output when
// HERALD_TEST_LOG is set.
func testLogger(t *testing.T) logr.Logger {
	if os.Getenv("HERALD_TEST_LOG") == "" {
		return logr.Discard()
	}
	return testr.New(t)
}

func toString(v any) string { return fmt.Sprintf("%+v", v) }

// checkCondition: a Service with addresses has the condition True, one
// without has it False with a message.
func checkCondition(t *testing.T, svc *corev1.Service) {
	t.Helper()
	var cond *metav1.Condition
	for i := range svc.Status.Conditions {
		if svc.Status.Conditions[i].Type == controller.ConditionAllocated {
			cond = &svc.Status.Conditions[i]
		}
	}
	if cond == nil {
		t.Errorf("%s/%s: no %s condition", svc.Namespace, svc.Name, controller.ConditionAllocated)
		return
	}
	has := len(svc.Status.LoadBalancer.Ingress) > 0
	if has != (cond.Status == metav1.ConditionTrue) || cond.Message == "" {
		t.Errorf("%s/%s: condition %s=%s (%s: %s) with ingress %q", svc.Namespace, svc.Name,
			cond.Type, cond.Status, cond.Reason, cond.Message, ingress(svc))
	}
}
