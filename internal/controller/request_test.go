package controller

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/ipam"
)

func TestParseRequest(t *testing.T) {
	prefer := corev1.IPFamilyPolicyPreferDualStack
	require := corev1.IPFamilyPolicyRequireDualStack
	base := func(mod func(*corev1.Service)) *corev1.Service {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
			Spec: corev1.ServiceSpec{
				Type:       corev1.ServiceTypeLoadBalancer,
				IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
				Selector:   map[string]string{"app": "web"},
				Ports:      []corev1.ServicePort{{Port: 443}, {Port: 80, Protocol: corev1.ProtocolUDP}},
			},
		}
		if mod != nil {
			mod(svc)
		}
		return svc
	}
	tests := []struct {
		name       string
		svc        *corev1.Service
		addrs      string
		pool       string
		sharing    string
		backend    string
		families   ipam.Families
		deprecated string
		errReason  string
		// errText must appear in the error's message.
		errText string
	}{
		{name: "plain", svc: base(nil)},
		{name: "spec.loadBalancerIP", svc: base(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "192.0.2.7" }), addrs: "192.0.2.7"},
		{name: "annotation IPs dual", svc: base(func(s *corev1.Service) {
			s.Annotations = map[string]string{AnnotationLoadBalancerIPs: "192.0.2.7, 2001:db8::7"}
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
			s.Spec.IPFamilyPolicy = &require
		}), addrs: "192.0.2.7,2001:db8::7", families: ipam.Families{Policy: ipam.RequireDualStack}},
		{name: "both spec and annotation", svc: base(func(s *corev1.Service) {
			s.Spec.LoadBalancerIP = "192.0.2.7"
			s.Annotations = map[string]string{AnnotationLoadBalancerIPs: "192.0.2.8"}
		}), errReason: "LoadBalancerFailed"},
		{name: "bad IP", svc: base(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "192.0.2.300" }), errReason: "LoadBalancerFailed"},
		{name: "IPv4-mapped spec.loadBalancerIP", svc: base(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "::ffff:192.0.2.7" }),
			errReason: "LoadBalancerFailed", errText: `"::ffff:192.0.2.7" is an IPv4-mapped IPv6 address; request 192.0.2.7`},
		{name: "IPv4-mapped in the annotation", svc: base(func(s *corev1.Service) {
			s.Annotations = map[string]string{AnnotationLoadBalancerIPs: "192.0.2.8, ::ffff:c000:207"}
		}), errReason: "LoadBalancerFailed", errText: "IPv4-mapped"},
		{name: "IPv4-mapped in the legacy annotation", svc: base(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.universe.tf/loadBalancerIPs": "::ffff:192.0.2.7"}
		}), errReason: "LoadBalancerFailed", errText: "IPv4-mapped"},
		{name: "legacy pool annotation", svc: base(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.universe.tf/address-pool": "db"}
		}), pool: "db", deprecated: "metallb.universe.tf/address-pool"},
		{name: "stable key wins over legacy", svc: base(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.universe.tf/address-pool": "old", AnnotationAddressPool: "new"}
		}), pool: "new"},
		{name: "sharing key, Local", svc: base(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.universe.tf/allow-shared-ip": "k"}
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), sharing: "k", backend: "app=web", deprecated: "metallb.universe.tf/allow-shared-ip"},
		{name: "IPv6 single", svc: base(func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} }),
			families: ipam.Families{Primary: ipam.IPv6}},
		{name: "prefer dual with one family is single", svc: base(func(s *corev1.Service) { s.Spec.IPFamilyPolicy = &prefer })},
		{name: "prefer dual v6 first", svc: base(func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = &prefer
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
		}), families: ipam.Families{Policy: ipam.PreferDualStack, Primary: ipam.IPv6}},
		{name: "require dual with one family", svc: base(func(s *corev1.Service) { s.Spec.IPFamilyPolicy = &require }), errReason: "not enough clusterips"},
		{name: "no family at all", svc: base(func(s *corev1.Service) { s.Spec.IPFamilies = nil }), errReason: "noclusterIPsIPFamily"},
		{name: "family from clusterIP", svc: base(func(s *corev1.Service) {
			s.Spec.IPFamilies = nil
			s.Spec.ClusterIP = "2001:db8::10"
		}), families: ipam.Families{Primary: ipam.IPv6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRequest(tc.svc)
			if tc.errReason != "" {
				re, ok := err.(*requestError)
				if !ok || re.Reason != tc.errReason {
					t.Fatalf("err = %v, want reason %q", err, tc.errReason)
				}
				if !strings.Contains(re.Message, tc.errText) {
					t.Fatalf("err = %q, want it to say %q", re.Message, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for _, a := range r.addrs {
				addrs = append(addrs, a.String())
			}
			checks := []struct{ what, got, want string }{
				{"key", r.svc.Key, "ns/web"},
				{"addrs", strings.Join(addrs, ","), tc.addrs},
				{"pool", r.pool, tc.pool},
				{"sharing", r.svc.SharingKey, tc.sharing},
				{"backend", r.svc.BackendKey, tc.backend},
				{"families", r.svc.Families.Policy.String() + "/" + r.svc.Families.Primary.String(), tc.families.Policy.String() + "/" + tc.families.Primary.String()},
				{"deprecated", strings.Join(r.deprecated, ","), tc.deprecated},
				{"ports", ipam.Port{Protocol: "TCP", Port: 443}.String() + "," + ipam.Port{Protocol: "UDP", Port: 80}.String(),
					r.svc.Ports[0].String() + "," + r.svc.Ports[1].String()},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestCurrentIngress(t *testing.T) {
	svc := &corev1.Service{Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{
		Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}, {Hostname: "lb.example"}, {IP: "2001:db8::1"}}}}}
	got := currentIngress(svc)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	if !sameAddrs(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
