package config

import (
	"testing"

	"github.com/herald-lb/herald/api/v1beta1"
)

// TestEveryProblemInAList checks that an empty or repeated entry does not
// hide the other problems of the same list: each entry's own problem is
// reported too, once.
func TestEveryProblemInAList(t *testing.T) {
	okPool := pool("p", "192.0.2.0/24")
	allocPool := func(namespaces ...string) v1beta1.IPAddressPool {
		p := pool("p", "192.0.2.0/24")
		p.Spec.AllocateTo = &v1beta1.ServiceAllocation{Namespaces: namespaces}
		return p
	}
	type finding struct {
		field, fragment string
		warning         bool
	}
	tests := []struct {
		name      string
		res       Resources
		kind, obj string
		want      []finding
	}{
		{name: "serviceAllocation.namespaces", res: Resources{Pools: []v1beta1.IPAddressPool{allocPool("", "Team_A", "a", "a", "b_b")}},
			kind: KindIPAddressPool, obj: "p", want: []finding{
				{field: "spec.serviceAllocation.namespaces[0]", fragment: "empty namespace"},
				{field: "spec.serviceAllocation.namespaces[1]", fragment: "not a valid namespace name"},
				{field: "spec.serviceAllocation.namespaces[3]", fragment: "repeats"},
				{field: "spec.serviceAllocation.namespaces[4]", fragment: "not a valid namespace name"},
			}},
		{name: "L2Advertisement.interfaces", res: Resources{Pools: []v1beta1.IPAddressPool{okPool},
			L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{Interfaces: []string{"eth0", "eth0", "bad/name", ""}})}},
			kind: KindL2Advertisement, obj: "l", want: []finding{
				{field: "spec.interfaces[1]", fragment: "repeats"},
				{field: "spec.interfaces[2]", fragment: "not a valid Linux interface name"},
				{field: "spec.interfaces[3]", fragment: "empty interface"},
			}},
		{name: "BGPAdvertisement.peers", res: Resources{Pools: []v1beta1.IPAddressPool{okPool},
			BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{Peers: []string{"", "gone", "gone"}})}},
			kind: KindBGPAdvertisement, obj: "b", want: []finding{
				{field: "spec.peers[0]", fragment: "empty peer name"},
				{field: "spec.peers[1]", fragment: `BGPPeer "gone" does not exist`, warning: true},
				{field: "spec.peers[2]", fragment: "repeats"},
			}},
		{name: "ipAddressPools", res: Resources{Pools: []v1beta1.IPAddressPool{okPool},
			L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"p", "p", "gone", ""}})}},
			kind: KindL2Advertisement, obj: "l", want: []finding{
				{field: "spec.ipAddressPools[1]", fragment: "repeats"},
				{field: "spec.ipAddressPools[2]", fragment: `IPAddressPool "gone" does not exist`, warning: true},
				{field: "spec.ipAddressPools[3]", fragment: "empty pool name"},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.Namespace = testNS
			res := Validate(tc.res)
			got := map[bool]Problems{false: res.Problems.About(tc.kind, tc.obj), true: res.Warnings.About(tc.kind, tc.obj)}
			for _, w := range tc.want {
				if !hasProblem(got[w.warning], tc.kind, tc.obj, w.field, w.fragment) {
					t.Errorf("missing %q at %s (warning: %v); problems:\n%v\nwarnings:\n%v", w.fragment, w.field, w.warning, res.Problems, res.Warnings)
				}
			}
			if n := len(got[false]) + len(got[true]); n != len(tc.want) {
				t.Errorf("%d findings, want %d (one per bad entry); problems:\n%v\nwarnings:\n%v", n, len(tc.want), res.Problems, res.Warnings)
			}
		})
	}
}
