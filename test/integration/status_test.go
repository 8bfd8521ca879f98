package integration

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/statusreport"
)

// TestStatusReport: `herald status`'s view, gathered from what the
// controller wrote (state, pool use, addresses, the reason a Service has
// none) and from what speakers write (ServiceL2Status, ServiceBGPStatus,
// SessionDown Events).
func TestStatusReport(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.namespaces("metallb-system")
	e.apply(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: lab
  namespace: metallb-system
spec:
  addresses:
  - 192.0.2.10-192.0.2.19
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: reserved
  namespace: metallb-system
spec:
  autoAssign: false
  addresses:
  - 2001:db8::/120
`)
	e.startController("metallb-system")
	e.service("default", "web")
	e.waitIngress("default", "web", "192.0.2.10")
	e.service("default", "bgp-web")
	e.waitIngress("default", "bgp-web", "192.0.2.11")
	e.service("default", "stuck", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "198.51.100.7" })
	e.waitEvent("default", "stuck", "AllocationFailed")

	l2 := &metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", GenerateName: "l2-"}}
	bgp := &metallbv1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", GenerateName: "bgp-"}}
	for _, o := range []client.Object{l2, bgp} {
		if err := e.cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	l2.Status = metallbv1beta1.MetalLBServiceL2Status{Node: "node1", ServiceName: "web", ServiceNamespace: "default",
		Interfaces: []metallbv1beta1.InterfaceInfo{{Name: "eth0"}}}
	bgp.Status = metallbv1beta1.MetalLBServiceBGPStatus{Node: "node2", ServiceName: "bgp-web", ServiceNamespace: "default", Peers: []string{"router"}}
	for _, o := range []client.Object{l2, bgp} {
		if err := e.cl.Status().Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "metallb-system", GenerateName: "router."},
		InvolvedObject: corev1.ObjectReference{Kind: "BGPPeer", Namespace: "metallb-system", Name: "router", APIVersion: "metallb.io/v1beta2"},
		Reason:         "SessionDown", Type: corev1.EventTypeWarning, Count: 3,
		Message:       `node "node2": session to 192.0.2.1:179 is active: connection refused: dial tcp 192.0.2.1:179: connect: connection refused`,
		LastTimestamp: metav1.NewTime(time.Now().Add(-time.Minute)),
	}
	if err := e.cl.Create(ctx, ev); err != nil {
		t.Fatal(err)
	}

	var out string
	e.eventually("the report", func() (bool, string) {
		r, err := statusreport.Gather(ctx, e.cl, "metallb-system", "", time.Now())
		if err != nil {
			return false, err.Error()
		}
		var b bytes.Buffer
		if err := r.Write(&b); err != nil {
			return false, err.Error()
		}
		out = b.String()
		for _, want := range [][]string{
			{"controller", "Valid"},
			{"lab", " 2 ", " 8 "},
			{"reserved (autoAssign: false)", "256"},
			{"default/web", "192.0.2.10", "lab", "layer2 node1 (eth0)"},
			{"default/bgp-web", "192.0.2.11", "bgp node2: router"},
			{"default/stuck", "none:", "198.51.100.7"},
			{"router", "ago", "3", "connection refused"},
		} {
			if !lineWith(out, want...) {
				return false, "no line with " + strings.Join(want, " … ") + " in:\n" + out
			}
		}
		return true, ""
	})
	t.Logf("herald status:\n%s", out)
}

func lineWith(text string, parts ...string) bool {
	for _, l := range strings.Split(text, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}
