package config

import (
	"testing"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
)

// TestAddressRules covers the addresses no pool may hand out and no session
// can reach: each row must give a problem (refused) or only a warning.
func TestAddressRules(t *testing.T) {
	pools := func(p ...v1beta1.IPAddressPool) Resources { return Resources{Pools: p} }
	peerAt := func(addr string) Resources {
		return onePeer(func(s *v1beta2.BGPPeerSpec) { s.Address = addr })
	}
	tests := []ruleCase{
		// IPv4-mapped IPv6: the allocator would hand out 192.0.2.0 and
		// ::ffff:192.0.2.0 to two Services, announced as one address.
		{name: "mapped pool beside its IPv4 twin", res: pools(pool("a", "192.0.2.0/24"), pool("b", "::ffff:192.0.2.0/120")),
			kind: KindIPAddressPool, obj: "b", field: "spec.addresses[0]", fragments: []string{"IPv4-mapped", "write 192.0.2.0/24"}},
		{name: "mapped range", res: pools(pool("a", "::ffff:192.0.2.10-::ffff:192.0.2.20")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"IPv4-mapped", "write 192.0.2.10-192.0.2.20"}},
		{name: "range reaching into the mapped block", res: pools(pool("a", "::fffe:ffff:fff0-::ffff:0.0.0.9")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"IPv4-mapped"}},

		// Whole families and addresses that are never a Service's.
		{name: "0.0.0.0/0", res: pools(pool("a", "0.0.0.0/0")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"every IPv4 address"}},
		{name: "::/0", res: pools(pool("a", "::/0")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"every IPv6 address"}},
		{name: "IPv4 unspecified", res: pools(pool("a", "0.0.0.0/30")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"0.0.0.0", "unspecified"}},
		{name: "IPv6 unspecified", res: pools(pool("a", "::-::5")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"::", "unspecified"}},
		{name: "IPv4 multicast", res: pools(pool("a", "192.0.2.0/24", "223.255.255.0-224.0.0.10")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[1]", fragments: []string{"multicast", "224.0.0.0/4"}},
		{name: "IPv6 multicast", res: pools(pool("a", "ff05::/120")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"multicast", "ff00::/8"}},
		{name: "IPv4 broadcast", res: pools(pool("a", "255.255.255.0/24")),
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"255.255.255.255", "broadcast"}},
		{name: "IPv4 loopback warns", res: pools(pool("a", "127.0.0.0/24")), warning: true,
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"loopback"}},
		{name: "IPv6 loopback warns", res: pools(pool("a", "::1/128")), warning: true,
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"loopback"}},
		{name: "IPv4 link-local warns", res: pools(pool("a", "169.254.10.0/24")), warning: true,
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"link-local"}},
		{name: "IPv6 link-local warns", res: pools(pool("a", "fe80::/120")), warning: true,
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[0]", fragments: []string{"link-local"}},

		// BGP peers.
		{name: "peer unspecified", res: peerAt("0.0.0.0"),
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"unspecified"}},
		{name: "peer IPv6 unspecified", res: peerAt("::"),
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"unspecified"}},
		{name: "peer multicast", res: peerAt("224.0.0.5"),
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"multicast"}},
		{name: "peer IPv6 multicast", res: peerAt("ff02::2"),
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"multicast"}},
		{name: "peer broadcast", res: peerAt("255.255.255.255"),
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"broadcast"}},
		{name: "peer IPv6 link-local", res: peerAt("fe80::1"),
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"link-local", "interface"}},
		{name: "peer IPv4-mapped warns", res: peerAt("::ffff:192.0.2.1"), warning: true,
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"IPv4-mapped", "192.0.2.1"}},
		{name: "source multicast", res: onePeer(func(s *v1beta2.BGPPeerSpec) { s.SrcAddress = "224.0.0.1" }),
			kind: KindBGPPeer, obj: "q", field: "spec.sourceAddress", fragments: []string{"multicast"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.check)
	}
}

// TestOrdinaryAddressesPass guards the rules above against refusing
// ordinary pools and peers next to the reserved blocks.
func TestOrdinaryAddressesPass(t *testing.T) {
	res := Validate(Resources{Namespace: testNS,
		Pools: []v1beta1.IPAddressPool{pool("a", "0.0.0.1-0.0.0.255", "223.255.255.0/24", "255.255.254.0/24", "2001:db8::/64", "::2-::fffe:ffff:ffff"),
			pool("b", "192.0.2.0/24", "fec0::/10")},
		BGPPeers: []v1beta2.BGPPeer{peer("lo", ebgp("127.0.0.1")), peer("ll4", ebgp("169.254.1.1"))},
	})
	if res.Config == nil {
		t.Fatalf("refused:\n%v", res.Problems)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("unexpected warnings:\n%v", res.Warnings)
	}
}
