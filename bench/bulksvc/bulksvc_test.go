package bulksvc

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-lb/herald/internal/lab"
)

func TestObjects(t *testing.T) {
	nodes := []lab.Node{{Name: "node1"}, {Name: "node2"}, {Name: "node3"}}
	tests := []struct {
		name      string
		spec      Spec
		wantSlice string
		wantAddrs []string
	}{
		{"IPv4, no labels", Spec{
			Pool: "bulk", Family: corev1.IPv4Protocol, ManagedBy: "bgpbench",
			PodAddress: func(i int) string { return fmt.Sprintf("198.18.100.%d", i) },
		}, "bulk-0001-ipv4", []string{"198.18.100.1", "198.18.100.2", "198.18.100.3"}},
		{"IPv6, labelled", Spec{
			Pool: "l2bench-bulk", Family: corev1.IPv6Protocol, Labels: map[string]string{"l2bench": "bulk"}, ManagedBy: "l2bench",
			PodAddress: func(i int) string { return fmt.Sprintf("2001:db8:19::%d", i) },
		}, "bulk-0001-ipv6", []string{"2001:db8:19::1", "2001:db8:19::2", "2001:db8:19::3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, es := objects("bulk-0001", tt.spec, nodes, "uid-1")
			if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Namespace != "default" {
				t.Errorf("service %s/%s of type %s", svc.Namespace, svc.Name, svc.Spec.Type)
			}
			if got := svc.Annotations["metallb.io/address-pool"]; got != tt.spec.Pool {
				t.Errorf("pool annotation %q, want %q", got, tt.spec.Pool)
			}
			if len(svc.Labels) != len(tt.spec.Labels) {
				t.Errorf("labels %v, want %v", svc.Labels, tt.spec.Labels)
			}
			if *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack || !slices.Equal(svc.Spec.IPFamilies, []corev1.IPFamily{tt.spec.Family}) {
				t.Errorf("families %v %v, want single-stack %s", *svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies, tt.spec.Family)
			}
			if es.Name != tt.wantSlice || string(es.AddressType) != string(tt.spec.Family) {
				t.Errorf("slice %s of %s, want %s of %s", es.Name, es.AddressType, tt.wantSlice, tt.spec.Family)
			}
			if es.Labels[discoveryv1.LabelServiceName] != "bulk-0001" || es.Labels[discoveryv1.LabelManagedBy] != tt.spec.ManagedBy {
				t.Errorf("slice labels %v", es.Labels)
			}
			if o := es.OwnerReferences; len(o) != 1 || o[0].Name != "bulk-0001" || o[0].UID != "uid-1" {
				t.Errorf("owner %+v", o)
			}
			if p := es.Ports; len(p) != 1 || *p[0].Name != svc.Spec.Ports[0].Name || *p[0].Port != svc.Spec.Ports[0].TargetPort.IntVal {
				t.Errorf("slice ports %+v do not match the service's %+v", p, svc.Spec.Ports)
			}
			if len(es.Endpoints) != len(nodes) {
				t.Fatalf("%d endpoints, want one per node", len(es.Endpoints))
			}
			for i, e := range es.Endpoints {
				if *e.NodeName != nodes[i].Name || !slices.Equal(e.Addresses, tt.wantAddrs[i:i+1]) || !*e.Conditions.Ready {
					t.Errorf("endpoint %d: node %s, addresses %v, ready %v", i, *e.NodeName, e.Addresses, *e.Conditions.Ready)
				}
			}
		})
	}
}
