package cachescope

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

func TestOptions(t *testing.T) {
	node := labels.SelectorFromSet(labels.Set{"metallb.io/node": "n1"})
	opts := Options("metallb-system", map[client.Object]labels.Selector{&metallbv1beta1.ServiceL2Status{}: node})
	tests := []struct {
		obj   client.Object
		label string
	}{
		{&metallbv1beta1.IPAddressPool{}, ""},
		{&metallbv1beta1.ServiceL2Status{}, "metallb.io/node=n1"},
	}
	for _, tt := range tests {
		found := false
		for obj, by := range opts.ByObject {
			if fmt.Sprintf("%T", obj) != fmt.Sprintf("%T", tt.obj) {
				continue
			}
			found = true
			if _, ok := by.Namespaces["metallb-system"]; !ok || len(by.Namespaces) != 1 {
				t.Errorf("%T: namespaces %v, want metallb-system only", tt.obj, by.Namespaces)
			}
			got := ""
			if by.Label != nil {
				got = by.Label.String()
			}
			if got != tt.label {
				t.Errorf("%T: label selector %q, want %q", tt.obj, got, tt.label)
			}
		}
		if !found {
			t.Errorf("%T not scoped", tt.obj)
		}
	}
	// Secrets are read by name only: caching them would list them all.
	for obj := range opts.ByObject {
		if _, ok := obj.(*corev1.Secret); ok {
			t.Error("Secrets are cached")
		}
	}
	disabled := false
	for _, obj := range ClientOptions().Cache.DisableFor {
		_, ok := obj.(*corev1.Secret)
		disabled = disabled || ok
	}
	if !disabled {
		t.Error("the client reads Secrets through the cache")
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	out, err := opts.DefaultTransform(svc)
	if err != nil || len(out.(*corev1.Service).ManagedFields) != 0 || out.(*corev1.Service).Name != "a" {
		t.Errorf("transform: %v %+v", err, out)
	}
}
