package config

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
)

// TestRules has one row per validation rule: a configuration that breaks
// exactly that rule, and the problem it must produce.
func TestRules(t *testing.T) {
	okPool := pool("p", "192.0.2.0/24")
	withPool := func(r Resources) Resources {
		r.Pools = append(r.Pools, okPool)
		return r
	}
	many := make([]string, 64)
	for i := range many {
		many[i] = fmt.Sprintf("65000:%d", i)
	}
	exists := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "a"}}}}
	badOp := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "zone", Operator: "Like", Values: []string{"a"}}}}
	valuesWithExists := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "zone", Operator: metav1.LabelSelectorOpExists, Values: []string{"a"}}}}
	otherNS := pool("p", "192.0.2.0/24")
	otherNS.Namespace = "metallb"
	noName := pool("", "192.0.2.0/24")

	tests := []ruleCase{
		// Every kind.
		{name: "object outside the namespace", res: Resources{Pools: []v1beta1.IPAddressPool{otherNS}},
			kind: KindIPAddressPool, obj: "p", field: "metadata.namespace", fragments: []string{`resource must be created in namespace "metallb-system"`}},
		{name: "name repeated", res: Resources{Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.0/25"), pool("p", "192.0.2.128/25")}},
			kind: KindIPAddressPool, obj: "p", field: "metadata.name", fragments: []string{"more than once"}},
		{name: "name missing", res: Resources{Pools: []v1beta1.IPAddressPool{noName}},
			kind: KindIPAddressPool, obj: "", field: "metadata.name", fragments: []string{"required"}},

		// IPAddressPool.
		{name: "bad address", res: Resources{Pools: []v1beta1.IPAddressPool{pool("p", "192.168.1.300/24")}},
			kind: KindIPAddressPool, obj: "p", field: "spec.addresses[0]", fragments: []string{"192.168.1.300", "not a valid IP address"}},
		{name: "range end below start", res: Resources{Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.20-192.0.2.10")}},
			kind: KindIPAddressPool, obj: "p", field: "spec.addresses[0]", fragments: []string{"below its start", "192.0.2.10-192.0.2.20"}},
		{name: "range mixes families", res: Resources{Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.1-2001:db8::1")}},
			kind: KindIPAddressPool, obj: "p", field: "spec.addresses[0]", fragments: []string{"mixes"}},
		{name: "no addresses", res: Resources{Pools: []v1beta1.IPAddressPool{pool("p")}},
			kind: KindIPAddressPool, obj: "p", field: "spec.addresses", fragments: []string{"pool has no addresses"}},
		{name: "overlap across pools", res: Resources{Pools: []v1beta1.IPAddressPool{pool("a", "192.0.2.0/24"), pool("b", "198.51.100.0/24", "192.0.2.128/25")}},
			kind: KindIPAddressPool, obj: "b", field: "spec.addresses[1]", fragments: []string{"overlaps", `"a"`}},
		{name: "overlap within a pool", res: Resources{Pools: []v1beta1.IPAddressPool{pool("a", "192.0.2.0/24", "192.0.2.10-192.0.2.20")}},
			kind: KindIPAddressPool, obj: "a", field: "spec.addresses[1]", fragments: []string{"overlaps its entry"}},
		{name: "repeated namespace", res: Resources{Pools: []v1beta1.IPAddressPool{{ObjectMeta: meta("p"), Spec: v1beta1.IPAddressPoolSpec{
			Addresses: []string{"192.0.2.0/24"}, AllocateTo: &v1beta1.ServiceAllocation{Namespaces: []string{"a", "a"}}}}}},
			kind: KindIPAddressPool, obj: "p", field: "spec.serviceAllocation.namespaces[1]", fragments: []string{"repeats"}},
		{name: "invalid namespace name", res: Resources{Pools: []v1beta1.IPAddressPool{{ObjectMeta: meta("p"), Spec: v1beta1.IPAddressPoolSpec{
			Addresses: []string{"192.0.2.0/24"}, AllocateTo: &v1beta1.ServiceAllocation{Namespaces: []string{"Team_A"}}}}}},
			kind: KindIPAddressPool, obj: "p", field: "spec.serviceAllocation.namespaces[0]", fragments: []string{"not a valid namespace name"}},
		{name: "repeated namespace selector", res: Resources{Pools: []v1beta1.IPAddressPool{{ObjectMeta: meta("p"), Spec: v1beta1.IPAddressPoolSpec{
			Addresses: []string{"192.0.2.0/24"}, AllocateTo: &v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{sel("team", "a"), sel("team", "a")}}}}}},
			kind: KindIPAddressPool, obj: "p", field: "spec.serviceAllocation.namespaceSelectors[1]", fragments: []string{"repeats"}},
		{name: "repeated service selector", res: Resources{Pools: []v1beta1.IPAddressPool{{ObjectMeta: meta("p"), Spec: v1beta1.IPAddressPoolSpec{
			Addresses: []string{"192.0.2.0/24"}, AllocateTo: &v1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{sel("app", "web"), sel("app", "web")}}}}}},
			kind: KindIPAddressPool, obj: "p", field: "spec.serviceAllocation.serviceSelectors[1]", fragments: []string{"repeats"}},
		{name: "repeated match expression value", res: Resources{Pools: []v1beta1.IPAddressPool{{ObjectMeta: meta("p"), Spec: v1beta1.IPAddressPoolSpec{
			Addresses: []string{"192.0.2.0/24"}, AllocateTo: &v1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{exists}}}}}},
			kind: KindIPAddressPool, obj: "p", field: "spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].values[1]", fragments: []string{"repeats"}},

		// Label selectors (shared by every kind).
		{name: "wildcard label value", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			NodeSelectors: []metav1.LabelSelector{sel("kubernetes.io/hostname", "*")}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.nodeSelectors[0].matchLabels[kubernetes.io/hostname]",
			fragments: []string{"no wildcard", "Omitting nodeSelectors selects every node", "operator: Exists"}},
		{name: "invalid label value", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			NodeSelectors: []metav1.LabelSelector{sel("rack", "a b")}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.nodeSelectors[0].matchLabels[rack]", fragments: []string{`label value "a b" is not valid`}},
		{name: "invalid label key", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			NodeSelectors: []metav1.LabelSelector{sel("bad key", "x")}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.nodeSelectors[0].matchLabels[bad key]", fragments: []string{"label key"}},
		{name: "invalid operator", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			NodeSelectors: []metav1.LabelSelector{badOp}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.nodeSelectors[0].matchExpressions[0].operator", fragments: []string{"not a valid selector operator"}},
		{name: "values with Exists", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			NodeSelectors: []metav1.LabelSelector{valuesWithExists}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.nodeSelectors[0].matchExpressions[0].values", fragments: []string{"may not be specified"}},
		{name: "wildcard in a pool selector", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			IPAddressPoolSelectors: []metav1.LabelSelector{sel("tier", "*")}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.ipAddressPoolSelectors[0].matchLabels[tier]", fragments: []string{"no wildcard", "every pool"}},

		// L2Advertisement.
		{name: "l2 repeated pool", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			IPAddressPools: []string{"p", "p"}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.ipAddressPools[1]", fragments: []string{"repeats"}},
		{name: "l2 repeated interface", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			Interfaces: []string{"eth0", "eth0"}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.interfaces[1]", fragments: []string{"repeats"}},
		{name: "l2 invalid interface", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			Interfaces: []string{"a-very-long-interface-name"}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.interfaces[0]", fragments: []string{"not a valid Linux interface name"}},
		{name: "l2 preference weight", res: withPool(Resources{L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{
			PreferredNodeSelectors: []v1beta1.PreferredNodeSelector{{Weight: 0, Preference: sel("rack", "a")}}})}}),
			kind: KindL2Advertisement, obj: "l", field: "spec.preferredNodeSelectors[0].weight", fragments: []string{"from 1 to 100"}},

		// BGPAdvertisement.
		{name: "aggregationLength above 32", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			AggregationLength: i32(33)})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.aggregationLength", fragments: []string{"from 1 to 32"}},
		{name: "aggregationLength 0", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			AggregationLength: i32(0)})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.aggregationLength", fragments: []string{"from 1 to 32"}},
		{name: "aggregationLengthV6 above 128", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			AggregationLengthV6: i32(129)})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.aggregationLengthV6", fragments: []string{"from 1 to 128"}},
		{name: "aggregationLength shorter than the pool", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			AggregationLength: i32(16)})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.aggregationLength", fragments: []string{"shorter than /24", `pool "p"`, "at least 24"}},
		{name: "aggregationLength shorter than a range's widest prefix", res: Resources{
			Pools:             []v1beta1.IPAddressPool{pool("r", "192.0.2.0-192.0.2.191")},
			BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{AggregationLength: i32(24)})}},
			kind: KindBGPAdvertisement, obj: "b", field: "spec.aggregationLength", fragments: []string{"shorter than /25"}},
		{name: "aggregationLengthV6 shorter than the pool", res: Resources{
			Pools:             []v1beta1.IPAddressPool{pool("v6", "2001:db8::/64")},
			BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{AggregationLengthV6: i32(48)})}},
			kind: KindBGPAdvertisement, obj: "b", field: "spec.aggregationLengthV6", fragments: []string{"shorter than /64"}},
		{name: "serviceSelectors with aggregation", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			AggregationLength: i32(28), ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.aggregationLength", fragments: []string{"cannot be combined with serviceSelectors"}},
		{name: "localPref conflict", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{
			bgpAdv("a", v1beta1.BGPAdvertisementSpec{LocalPref: 100}),
			bgpAdv("b", v1beta1.BGPAdvertisementSpec{LocalPref: 200, Communities: []string{"65000:1"}})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.localPref", fragments: []string{"differs from BGPAdvertisement \"a\"", `pool "p"`}},
		{name: "identical advertisements", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{
			bgpAdv("a", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}}),
			bgpAdv("b", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}, AggregationLength: i32(32)})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec", fragments: []string{`identical to BGPAdvertisement "a"`}},
		{name: "repeated community", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			Communities: []string{"65000:1", "65000:1"}})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.communities[1]", fragments: []string{"repeats"}},
		{name: "too many communities", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			Communities: many})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.communities", fragments: []string{"at most 63"}},
		{name: "standard community out of range", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			Communities: []string{"65536:1"}})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.communities[0]", fragments: []string{"0 to 65535"}},
		{name: "large community out of range", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			Communities: []string{"large:4294967296:1:1"}})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.communities[0]", fragments: []string{"0 to 4294967295"}},
		{name: "malformed community", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			Communities: []string{"large:1:2"}})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.communities[0]", fragments: []string{"is not a community"}},
		{name: "missing community alias is transient", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			Communities: []string{"no-export"}})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.communities[0]", fragments: []string{`alias "no-export"`, "no Community object defines"}, transient: true},
		{name: "repeated peer", res: withPool(Resources{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			Peers: []string{"x", "x"}})}}),
			kind: KindBGPAdvertisement, obj: "b", field: "spec.peers[1]", fragments: []string{"repeats"}},

		// BGPPeer.
		{name: "myASN missing", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", v1beta2.BGPPeerSpec{ASN: 64501, Address: "192.0.2.1"})}},
			kind: KindBGPPeer, obj: "q", field: "spec.myASN", fragments: []string{"missing local ASN"}},
		{name: "peerASN and dynamicASN", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, DynamicASN: "external", Address: "192.0.2.1"})}},
			kind: KindBGPPeer, obj: "q", field: "spec.dynamicASN", fragments: []string{"exactly one"}},
		{name: "no peer ASN", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", v1beta2.BGPPeerSpec{MyASN: 64500, Address: "192.0.2.1"})}},
			kind: KindBGPPeer, obj: "q", field: "spec.peerASN", fragments: []string{"missing peer ASN"}},
		{name: "invalid dynamicASN", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", v1beta2.BGPPeerSpec{MyASN: 64500, DynamicASN: "any", Address: "192.0.2.1"})}},
			kind: KindBGPPeer, obj: "q", field: "spec.dynamicASN", fragments: []string{"internal or external"}},
		{name: "address and interface", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1", Interface: "eth0"})}},
			kind: KindBGPPeer, obj: "q", field: "spec.interface", fragments: []string{"exactly one"}},
		{name: "no address", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501})}},
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"missing peer address"}},
		{name: "bad peerAddress", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", ebgp("192.0.2.256"))}},
			kind: KindBGPPeer, obj: "q", field: "spec.peerAddress", fragments: []string{"not an IP address"}},
		{name: "bad sourceAddress", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.SrcAddress = "node-1"
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.sourceAddress", fragments: []string{"not an IP address"}},
		{name: "sourceAddress of the other family", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.SrcAddress = "2001:db8::1"
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.sourceAddress", fragments: []string{"different families"}},
		{name: "IPv6 routerID", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.RouterID = "2001:db8::1"
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.routerID", fragments: []string{"IPv4 address"}},
		{name: "password and passwordSecret", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.Password = "x"
			s.PasswordSecret = corev1.SecretReference{Name: "pw"}
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.passwordSecret", fragments: []string{"both set"}},
		{name: "password Secret missing is transient", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.PasswordSecret = corev1.SecretReference{Name: "pw"}
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.passwordSecret.name", fragments: []string{"does not exist"}, transient: true},
		{name: "password Secret that cannot be read says why", res: Resources{
			SecretErrors: map[string]string{"pw": `secrets "pw" is forbidden`},
			BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
				s := ebgp("192.0.2.1")
				s.PasswordSecret = corev1.SecretReference{Name: "pw"}
				return s
			}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.passwordSecret.name", fragments: []string{"cannot be read", "forbidden", "rbac.bgpPasswordSecrets"}, transient: true},
		{name: "password Secret of the wrong type", res: Resources{
			Secrets: []corev1.Secret{secret("pw", corev1.SecretTypeOpaque, map[string]string{"password": "x"})},
			BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
				s := ebgp("192.0.2.1")
				s.PasswordSecret = corev1.SecretReference{Name: "pw"}
				return s
			}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.passwordSecret.name", fragments: []string{"kubernetes.io/basic-auth"}},
		{name: "password Secret without the key", res: Resources{
			Secrets: []corev1.Secret{secret("pw", corev1.SecretTypeBasicAuth, map[string]string{"username": "x"})},
			BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
				s := ebgp("192.0.2.1")
				s.PasswordSecret = corev1.SecretReference{Name: "pw"}
				return s
			}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.passwordSecret.name", fragments: []string{`no key "password"`}},
		{name: "password Secret in another namespace", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.PasswordSecret = corev1.SecretReference{Name: "pw", Namespace: "default"}
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.passwordSecret.namespace", fragments: []string{`namespace "metallb-system"`}},
		{name: "holdTime under 3s", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.HoldTime = dur("2s")
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.holdTime", fragments: []string{"at least 3s"}},
		{name: "holdTime above 65535s", res: onePeer(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur("70000s") }),
			kind: KindBGPPeer, obj: "q", field: "spec.holdTime", fragments: []string{"at most 65535s", "16 bits"}},
		{name: "holdTime 65536s, sent as 0", res: onePeer(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur("65536s") }),
			kind: KindBGPPeer, obj: "q", field: "spec.holdTime", fragments: []string{"at most 65535s"}},
		{name: "keepalive alone implying a hold time above 65535s", res: onePeer(func(s *v1beta2.BGPPeerSpec) { s.KeepaliveTime = dur("30000s") }),
			kind: KindBGPPeer, obj: "q", field: "spec.keepaliveTime", fragments: []string{"3 × 30000s", "at most 21845s"}},
		{name: "keepalive above hold", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.HoldTime, s.KeepaliveTime = dur("9s"), dur("10s")
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.keepaliveTime", fragments: []string{"exceeds holdTime"}},
		{name: "ebgpMultiHop on iBGP", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", v1beta2.BGPPeerSpec{
			MyASN: 64500, ASN: 64500, Address: "192.0.2.1", EBGPMultiHop: true})}},
			kind: KindBGPPeer, obj: "q", field: "spec.ebgpMultiHop", fragments: []string{"iBGP"}},
		{name: "peerPort above the API limit", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.Port = 20000
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.peerPort", fragments: []string{"16384"}},
		{name: "connectTime not whole seconds", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.ConnectTime = dur("1500ms")
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.connectTime", fragments: []string{"whole number of seconds"}},
		{name: "connectTime too long", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.ConnectTime = dur("65536s")
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.connectTime", fragments: []string{"from 1s to 65535s"}},
		{name: "localASN equal to myASN", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.LocalASN = s.MyASN
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.localASN", fragments: []string{"equals myASN"}},
		{name: "vrf", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.VRFName = "red"
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.vrf", fragments: []string{"vrf is not supported yet"}},
		{name: "unnumbered on an impossible interface name", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("")
			s.Interface = "eth1/0"
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.interface", fragments: []string{"not a valid Linux interface name"}},
		{name: "dynamicASN internal with ebgpMultiHop", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.ASN = 0
			s.DynamicASN = "internal"
			s.EBGPMultiHop = true
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.ebgpMultiHop", fragments: []string{"only to eBGP"}},
		{name: "missing BFD profile is transient", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec {
			s := ebgp("192.0.2.1")
			s.BFDProfile = "fast"
			return s
		}())}},
			kind: KindBGPPeer, obj: "q", field: "spec.bfdProfile", fragments: []string{`BFDProfile "fast" does not exist`}, transient: true},
		{name: "two sessions to one address", res: Resources{BGPPeers: []v1beta2.BGPPeer{peer("a", ebgp("192.0.2.1")), peer("b", ebgp("192.0.2.1"))}},
			kind: KindBGPPeer, obj: "b", field: "spec.peerAddress", fragments: []string{`BGPPeer "a" already opens a session to 192.0.2.1:179`}},
		{name: "two router IDs on one node", res: Resources{BGPPeers: []v1beta2.BGPPeer{
			peer("a", func() v1beta2.BGPPeerSpec { s := ebgp("192.0.2.1"); s.RouterID = "192.0.2.100"; return s }()),
			peer("b", func() v1beta2.BGPPeerSpec { s := ebgp("192.0.2.2"); s.RouterID = "192.0.2.101"; return s }())}},
			kind: KindBGPPeer, obj: "b", field: "spec.routerID", fragments: []string{"one router ID"}},
		{name: "two local ASNs on one node", res: Resources{BGPPeers: []v1beta2.BGPPeer{
			peer("a", ebgp("192.0.2.1")),
			peer("b", func() v1beta2.BGPPeerSpec { s := ebgp("192.0.2.2"); s.MyASN = 64510; return s }())}},
			kind: KindBGPPeer, obj: "b", field: "spec.myASN", fragments: []string{"one local AS"}},

		// BFDProfile.
		{name: "BFD interval too short", res: Resources{BFDProfiles: []v1beta1.BFDProfile{bfd("f", v1beta1.BFDProfileSpec{ReceiveInterval: u32(5)})}},
			kind: KindBFDProfile, obj: "f", field: "spec.receiveInterval", fragments: []string{"from 10 to 60000"}},
		{name: "BFD multiplier too small", res: Resources{BFDProfiles: []v1beta1.BFDProfile{bfd("f", v1beta1.BFDProfileSpec{DetectMultiplier: u32(1)})}},
			kind: KindBFDProfile, obj: "f", field: "spec.detectMultiplier", fragments: []string{"from 2 to 255"}},
		{name: "BFD minimum TTL too large", res: Resources{BFDProfiles: []v1beta1.BFDProfile{bfd("f", v1beta1.BFDProfileSpec{MinimumTTL: u32(255)})}},
			kind: KindBFDProfile, obj: "f", field: "spec.minimumTtl", fragments: []string{"from 1 to 254"}},
		{name: "BFD echo mode with IPv6 pools", res: Resources{
			Pools:             []v1beta1.IPAddressPool{pool("v6", "2001:db8::/120")},
			BFDProfiles:       []v1beta1.BFDProfile{bfd("echo", v1beta1.BFDProfileSpec{EchoMode: boolp(true)})},
			BGPPeers:          []v1beta2.BGPPeer{peer("q", func() v1beta2.BGPPeerSpec { s := ebgp("192.0.2.1"); s.BFDProfile = "echo"; return s }())},
			BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{})}},
			kind: KindBFDProfile, obj: "echo", field: "spec.echoMode", fragments: []string{"IPv6", `BGPPeer "q" gets pool "v6"`}},

		// Community.
		{name: "alias defined twice", res: Resources{Communities: []v1beta1.Community{community("a", "no-export", "65535:65281"), community("b", "no-export", "65535:65281")}},
			kind: KindCommunity, obj: "b", field: "spec.communities[0].name", fragments: []string{"already defined", "unique across all Community objects"}},
		{name: "alias with a bad value", res: Resources{Communities: []v1beta1.Community{community("a", "bad", "65535:70000")}},
			kind: KindCommunity, obj: "a", field: "spec.communities[0].value", fragments: []string{"0 to 65535"}},
		{name: "alias name with a colon", res: Resources{Communities: []v1beta1.Community{community("a", "a:b", "65535:1")}},
			kind: KindCommunity, obj: "a", field: "spec.communities[0].name", fragments: []string{"colon"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.check)
	}
}
