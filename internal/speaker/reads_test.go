package speaker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/herald-lb/herald/internal/scheme"
	"github.com/herald-lb/herald/internal/testcluster"
)

// countingClient is a client of the cluster that counts its Gets.
func countingClient(t *testing.T, c *testcluster.Cluster) (client.WithWatch, client.WithWatch, *atomic.Int32) {
	t.Helper()
	sch, err := scheme.New()
	if err != nil {
		t.Fatal(err)
	}
	real, err := client.NewWithWatch(c.Config, client.Options{Scheme: sch})
	if err != nil {
		t.Fatal(err)
	}
	gets := &atomic.Int32{}
	counted := interceptor.NewClient(real, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets.Add(1)
			return c.Get(ctx, key, obj, opts...)
		},
	})
	return real, counted, gets
}

// TestEventOnServiceOfTheSync: Events go on the Service object the sync
// listed, with no read of their own; a Service gone from the sync gets none.
func TestEventOnServiceOfTheSync(t *testing.T) {
	c := testcluster.Start(t)
	real, counted, gets := countingClient(t, c)
	ctx := context.Background()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := real.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	stop := make(chan struct{})
	defer close(stop)
	b.StartRecordingToSink(stop)
	defer b.Shutdown()
	s := &speaker{opts: Options{NodeName: "n1", Namespace: "default"}, client: counted, reader: counted,
		log: logr.Discard(), recorder: b.NewRecorder(real.Scheme(), "metallb-speaker"),
		services: map[string]*corev1.Service{"default/web": svc}}
	tests := []struct {
		name, svc, reason string
	}{
		{"listed Service", "default/web", "nodeAssigned"},
		{"Service gone from the sync", "default/gone", "nodeUnassigned"},
	}
	for _, tc := range tests {
		gets.Store(0)
		s.event(tc.svc, corev1.EventTypeNormal, tc.reason, "test")
		if n := gets.Load(); n != 0 {
			t.Errorf("%s: %d reads, want none", tc.name, n)
		}
	}
	// The recorder writes asynchronously; wait for the one Event.
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := cs.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, e := range list.Items {
			// The API server writes Events of its own here (about the
			// kubernetes Service, for one): only the speaker's count.
			if e.ReportingController == "metallb-speaker" {
				reasons = append(reasons, e.Reason+"/"+e.Regarding.Name)
			}
		}
		if len(reasons) == 1 && reasons[0] == "nodeAssigned/web" {
			return
		}
		if len(reasons) > 1 || time.Now().After(deadline) {
			t.Fatalf("the speaker's Events %v, want only nodeAssigned on web", reasons)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
