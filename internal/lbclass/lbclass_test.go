package lbclass

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestHandles(t *testing.T) {
	class := func(s string) *string { return &s }
	tests := []struct {
		name    string
		typ     corev1.ServiceType
		class   *string
		lbClass string
		want    bool
	}{
		{"no class, default", corev1.ServiceTypeLoadBalancer, nil, "", true},
		{"foreign class, default", corev1.ServiceTypeLoadBalancer, class("other"), "", false},
		{"our class", corev1.ServiceTypeLoadBalancer, class("herald"), "herald", true},
		{"no class when we have one", corev1.ServiceTypeLoadBalancer, nil, "herald", false},
		{"ClusterIP", corev1.ServiceTypeClusterIP, nil, "", false},
	}
	for _, tc := range tests {
		svc := &corev1.Service{Spec: corev1.ServiceSpec{Type: tc.typ, LoadBalancerClass: tc.class}}
		if got := Handles(svc, tc.lbClass); got != tc.want {
			t.Errorf("%s: handles = %v, want %v", tc.name, got, tc.want)
		}
	}
}
