package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestAddressComesWithItsPool: no version of a Service that carries an
// address lacks the metallb.io/ip-allocated-from-pool annotation, so a
// watcher that sees the address also sees its pool. (The status used to be
// written first; TestSeedAllocations then failed now and then.)
func TestAddressComesWithItsPool(t *testing.T) {
	e := newEnv(t)
	e.namespaces("metallb-system", "apps")
	e.apply(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first, namespace: metallb-system}
spec: {addresses: [198.51.100.0/28]}
`)
	e.startController("metallb-system")
	cs, err := kubernetes.NewForConfig(e.c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := cs.CoreV1().Services("apps").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const n = 8
	for i := range n {
		e.service("apps", fmt.Sprintf("s%d", i))
	}
	addressed := map[string]bool{}
	for len(addressed) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d Services seen with an address", len(addressed), n)
		case ev := <-w.ResultChan():
			svc, ok := ev.Object.(*corev1.Service)
			if !ok || len(svc.Status.LoadBalancer.Ingress) == 0 {
				continue
			}
			if svc.Annotations["metallb.io/ip-allocated-from-pool"] != "first" {
				t.Errorf("%s at resourceVersion %s has address %s but pool annotation %q",
					svc.Name, svc.ResourceVersion, svc.Status.LoadBalancer.Ingress[0].IP, svc.Annotations["metallb.io/ip-allocated-from-pool"])
			}
			addressed[svc.Name] = true
		}
	}
}
