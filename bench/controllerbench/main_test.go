package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIsV6Spread(t *testing.T) {
	for _, c := range []struct{ n, total int }{{2000, 10000}, {0, 10}, {10, 10}, {3, 7}} {
		got := 0
		for i := range c.total {
			if isV6(i, c.n, c.total) {
				got++
			}
		}
		if got != c.n {
			t.Errorf("isV6 over %d picked %d, want %d", c.total, got, c.n)
		}
	}
}

func svc(name string, v6 bool, ips ...string) corev1.Service {
	s := *newService("ns", name, v6)
	s.ObjectMeta = metav1.ObjectMeta{Namespace: "ns", Name: name}
	if s.Spec.IPFamilies == nil {
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol} // as the API server defaults it
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func TestCheckAddresses(t *testing.T) {
	tests := []struct {
		name    string
		svcs    []corev1.Service
		wantErr string
	}{
		{"good", []corev1.Service{svc("a", false, "198.18.0.1"), svc("b", true, "2001:db8::1"), svc("c", false, "198.19.255.254")}, ""},
		{"duplicate", []corev1.Service{svc("a", false, "198.18.0.1"), svc("b", false, "198.18.0.1")}, "held by both"},
		{"outside pool", []corev1.Service{svc("a", false, "198.20.0.1")}, "not in its pool"},
		{"wrong family", []corev1.Service{svc("a", true, "198.18.0.1")}, "not in its pool"},
		{"v6 outside /64", []corev1.Service{svc("a", true, "2001:db8:0:1::1")}, "not in its pool"},
		{"no address", []corev1.Service{svc("a", false)}, "0 ingress"},
		{"two addresses", []corev1.Service{svc("a", false, "198.18.0.1", "198.18.0.2")}, "2 ingress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAddresses(tt.svcs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
