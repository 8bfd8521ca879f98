package config

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1alpha1"
	"github.com/herald-lb/herald/api/v1beta1"
)

// cloudAdv is a valid Hetzner CloudAdvertisement for the named pools,
// changed by mod.
func cloudAdv(name string, mod func(*v1alpha1.CloudAdvertisementSpec), pools ...string) v1alpha1.CloudAdvertisement {
	s := v1alpha1.CloudAdvertisementSpec{
		IPAddressPools: pools, Provider: v1alpha1.CloudProviderHetzner,
		TokenSecretRef: v1alpha1.TokenSecretRef{Name: "hcloud"},
	}
	if mod != nil {
		mod(&s)
	}
	return v1alpha1.CloudAdvertisement{ObjectMeta: meta(name), Spec: s}
}

func TestCloudAdvertisement(t *testing.T) {
	cfg := mustBuild(t, Resources{
		Pools:            []v1beta1.IPAddressPool{pool("fip", "198.51.100.24/32", "2001:db8:1:2::/64"), pool("lan", "192.0.2.0/24")},
		L2Advertisements: []v1beta1.L2Advertisement{l2("lan", v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"lan"}})},
		CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("hetzner", func(s *v1alpha1.CloudAdvertisementSpec) {
			s.NodeSelectors = []metav1.LabelSelector{sel("topology.kubernetes.io/region", "fsn1")}
			s.ServiceSelectors = []metav1.LabelSelector{sel("app", "web")}
		}, "fip")},
	})
	if len(cfg.CloudAdvertisements) != 1 {
		t.Fatalf("%d cloud advertisements, want 1", len(cfg.CloudAdvertisements))
	}
	a := cfg.CloudAdvertisements[0]
	if a.Name != "hetzner" || !slices.Equal(a.Pools, []string{"fip"}) || a.Provider != ProviderHetzner ||
		a.TokenSecret != "hcloud" || a.TokenKey != "token" {
		t.Errorf("got %+v; want pools [fip], provider hetzner, Secret hcloud, key token (the default)", a)
	}
	if !a.HasPool("fip") || a.HasPool("lan") {
		t.Error("HasPool: want fip only")
	}
	if !a.MatchesNode(map[string]string{"topology.kubernetes.io/region": "fsn1"}) || a.MatchesNode(map[string]string{"topology.kubernetes.io/region": "nbg1"}) {
		t.Error("MatchesNode does not follow nodeSelectors")
	}
	if !a.MatchesService(map[string]string{"app": "web"}) || a.MatchesService(nil) {
		t.Error("MatchesService does not follow serviceSelectors")
	}

	// Every pool, by selector, and an explicit key.
	cfg = mustBuild(t, Resources{
		Pools: []v1beta1.IPAddressPool{pool("a", "198.51.100.1/32"), pool("b", "198.51.100.2/32")},
		CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("all", func(s *v1alpha1.CloudAdvertisementSpec) {
			s.TokenSecretRef.Key = "hcloud-token"
		})},
	})
	if a := cfg.CloudAdvertisements[0]; !slices.Equal(a.Pools, []string{"a", "b"}) || a.TokenKey != "hcloud-token" {
		t.Errorf("got %+v; want every pool and key hcloud-token", a)
	}
}

// TestCloudRules has one row per rule about CloudAdvertisements: a
// configuration breaking it, and where the problem must be reported (on
// each object listed).
func TestCloudRules(t *testing.T) {
	fip := pool("fip", "198.51.100.24/32")
	rackA := []metav1.LabelSelector{sel("rack", "a")}
	rackB := []metav1.LabelSelector{sel("rack", "b")}
	nodes := []corev1.Node{node("n1", map[string]string{"rack": "a"}), node("n2", map[string]string{"rack": "b"})}
	l2On := func(name string, pools []string, nodeSels []metav1.LabelSelector) v1beta1.L2Advertisement {
		return l2(name, v1beta1.L2AdvertisementSpec{IPAddressPools: pools, NodeSelectors: nodeSels})
	}
	onNodes := func(sels []metav1.LabelSelector) func(*v1alpha1.CloudAdvertisementSpec) {
		return func(s *v1alpha1.CloudAdvertisementSpec) { s.NodeSelectors = sels }
	}
	const why = "a floating IP is routed by the cloud to the server it is assigned to, so ARP/NDP answers for it are never seen — announce it one way"
	type at struct{ kind, obj, field string }

	tests := []struct {
		name      string
		res       Resources
		at        []at     // where the problem is; none: accepted
		fragments []string // in every one of them
	}{
		{name: "valid", res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "fip")}}},
		{name: "unknown provider",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("c", func(s *v1alpha1.CloudAdvertisementSpec) { s.Provider = "digitalocean" }, "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.provider"}}, fragments: []string{`unknown provider "digitalocean"`, "hetzner"}},
		{name: "no provider",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("c", func(s *v1alpha1.CloudAdvertisementSpec) { s.Provider = "" }, "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.provider"}}, fragments: []string{"provider is required", "hetzner"}},
		{name: "no token Secret name",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("c", func(s *v1alpha1.CloudAdvertisementSpec) { s.TokenSecretRef.Name = "" }, "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.tokenSecretRef.name"}}, fragments: []string{"Secret holding the API token is required", "cloud.tokenSecretName"}},
		{name: "token Secret name invalid",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("c", func(s *v1alpha1.CloudAdvertisementSpec) { s.TokenSecretRef.Name = "HCloud_Token" }, "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.tokenSecretRef.name"}}, fragments: []string{`"HCloud_Token" is not a valid Secret name`}},
		{name: "token key invalid",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("c", func(s *v1alpha1.CloudAdvertisementSpec) { s.TokenSecretRef.Key = "api token" }, "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.tokenSecretRef.key"}}, fragments: []string{`"api token" is not a valid Secret key`}},
		{name: "wildcard node selector, as for every kind",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("c", onNodes([]metav1.LabelSelector{sel("kubernetes.io/hostname", "*")}), "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.nodeSelectors[0].matchLabels[kubernetes.io/hostname]"}}, fragments: []string{"no wildcard"}},

		{name: "pool announced by L2 and cloud",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip},
				L2Advertisements:    []v1beta1.L2Advertisement{l2On("l", []string{"fip"}, nil)},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "fip")}},
			at:        []at{{KindCloudAdvertisement, "c", "spec.ipAddressPools[0]"}, {KindL2Advertisement, "l", "spec.ipAddressPools[0]"}},
			fragments: []string{`pool "fip" is announced by L2Advertisement "l" and CloudAdvertisement "c": ` + why}},
		{name: "an L2Advertisement of every pool takes the cloud's too",
			res: Resources{Pools: []v1beta1.IPAddressPool{pool("lan", "192.0.2.0/24"), fip},
				L2Advertisements:    []v1beta1.L2Advertisement{l2On("all", nil, nil)},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "fip")}},
			at:        []at{{KindCloudAdvertisement, "c", "spec.ipAddressPools[0]"}, {KindL2Advertisement, "all", "spec.ipAddressPools"}},
			fragments: []string{`pool "fip" is announced by L2Advertisement "all"`}},
		{name: "pool selected by labels on both sides",
			res: Resources{Pools: []v1beta1.IPAddressPool{func() v1beta1.IPAddressPool { p := fip; p.Labels = map[string]string{"kind": "floating"}; return p }()},
				L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{IPAddressPoolSelectors: []metav1.LabelSelector{sel("kind", "floating")}})},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", func(s *v1alpha1.CloudAdvertisementSpec) {
					s.IPAddressPoolSelectors = []metav1.LabelSelector{sel("kind", "floating")}
				})}},
			at:        []at{{KindCloudAdvertisement, "c", "spec.ipAddressPoolSelectors"}, {KindL2Advertisement, "l", "spec.ipAddressPoolSelectors"}},
			fragments: []string{"announce it one way"}},
		{name: "serviceSelectors do not separate them",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip},
				L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"fip"},
					ServiceSelectors: []metav1.LabelSelector{sel("app", "a")}})},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", func(s *v1alpha1.CloudAdvertisementSpec) {
					s.ServiceSelectors = []metav1.LabelSelector{sel("tier", "b")}
				}, "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.ipAddressPools[0]"}, {KindL2Advertisement, "l", "spec.ipAddressPools[0]"}}, fragments: []string{"announce it one way"}},
		{name: "same pool on disjoint nodes: accepted",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, Nodes: nodes,
				L2Advertisements:    []v1beta1.L2Advertisement{l2On("l", []string{"fip"}, rackA)},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", onNodes(rackB), "fip")}}},
		{name: "same pool, a node in both racks",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, Nodes: append(slices.Clone(nodes), node("n3", map[string]string{"rack": "a", "zone": "z"})),
				L2Advertisements:    []v1beta1.L2Advertisement{l2On("l", []string{"fip"}, rackA)},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", onNodes([]metav1.LabelSelector{sel("zone", "z")}), "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.ipAddressPools[0]"}, {KindL2Advertisement, "l", "spec.ipAddressPools[0]"}}, fragments: []string{"announce it one way"}},
		{name: "same pool, one side on every node",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, Nodes: nodes,
				L2Advertisements:    []v1beta1.L2Advertisement{l2On("l", []string{"fip"}, rackA)},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "fip")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.ipAddressPools[0]"}, {KindL2Advertisement, "l", "spec.ipAddressPools[0]"}}, fragments: []string{"announce it one way"}},
		{name: "different pools: accepted",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip, pool("lan", "192.0.2.0/24")},
				L2Advertisements:    []v1beta1.L2Advertisement{l2On("l", []string{"lan"}, nil)},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "fip")}}},

		{name: "IPv6 range across two /64s",
			res: Resources{Pools: []v1beta1.IPAddressPool{pool("v6", "2001:db8:0:1::ff00-2001:db8:0:2::ff")},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "v6")}},
			at:        []at{{KindCloudAdvertisement, "c", "spec.ipAddressPools[0]"}},
			fragments: []string{`pool "v6"`, "2001:db8:0:1::ff00-2001:db8:0:2::ff", "spans more than one /64", "2001:db8:0:1::/64", "split the range"}},
		{name: "IPv6 /63",
			res: Resources{Pools: []v1beta1.IPAddressPool{pool("v6", "2001:db8::/63")},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "v6")}},
			at: []at{{KindCloudAdvertisement, "c", "spec.ipAddressPools[0]"}}, fragments: []string{"spans more than one /64"}},
		{name: "IPv6 /64 and a range inside one: accepted",
			res: Resources{Pools: []v1beta1.IPAddressPool{pool("v6", "2001:db8:0:1::/64", "2001:db8:0:2::10-2001:db8:0:2::20")},
				CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "v6")}}},
		{name: "IPv6 range across /64s is fine for Layer 2",
			res: Resources{Pools: []v1beta1.IPAddressPool{pool("v6", "2001:db8::/63")},
				L2Advertisements: []v1beta1.L2Advertisement{l2On("l", []string{"v6"}, nil)}}},

		{name: "two cloud advertisements, two tokens, one pool",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("a", nil, "fip"),
				cloudAdv("b", func(s *v1alpha1.CloudAdvertisementSpec) { s.TokenSecretRef.Name = "other-project" }, "fip")}},
			at: []at{{KindCloudAdvertisement, "b", "spec.ipAddressPools[0]"}}, fragments: []string{`also announced by CloudAdvertisement "a"`, "other-project", "hcloud"}},
		{name: "two cloud advertisements, one token, one pool: accepted",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("a", onNodes(rackA), "fip"), cloudAdv("b", onNodes(rackB), "fip")}}},
		{name: "two tokens on disjoint nodes: accepted",
			res: Resources{Pools: []v1beta1.IPAddressPool{fip}, Nodes: nodes, CloudAdvertisements: []v1alpha1.CloudAdvertisement{
				cloudAdv("a", onNodes(rackA), "fip"),
				cloudAdv("b", func(s *v1alpha1.CloudAdvertisementSpec) {
					s.TokenSecretRef.Name = "other-project"
					s.NodeSelectors = rackB
				}, "fip")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.Namespace = testNS
			res := Validate(tc.res)
			if len(tc.at) == 0 {
				if res.Config == nil {
					t.Fatalf("refused:\n%v", res.Problems)
				}
				return
			}
			if res.Config != nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.at {
				if !hasProblem(res.Problems, w.kind, w.obj, w.field, tc.fragments...) {
					t.Errorf("no problem at %s/%s %s containing %q; got:\n%v", w.kind, w.obj, w.field, tc.fragments, res.Problems)
				}
			}
			if len(res.Problems) != len(tc.at) {
				t.Errorf("%d problems, want %d:\n%v", len(res.Problems), len(tc.at), res.Problems)
			}
			if res.Problems.Transient() {
				t.Error("transient; these are mistakes, not waits")
			}
		})
	}
}

// TestCloudWarnings: a pool that does not exist is a warning, as for the
// other advertisements.
func TestCloudWarnings(t *testing.T) {
	res := Validate(Resources{Namespace: testNS, CloudAdvertisements: []v1alpha1.CloudAdvertisement{cloudAdv("c", nil, "later")}})
	if res.Config == nil {
		t.Fatalf("refused: %v", res.Problems)
	}
	if !hasProblem(res.Warnings, KindCloudAdvertisement, "c", "spec.ipAddressPools[0]", `IPAddressPool "later" does not exist`) {
		t.Errorf("warnings: %v", res.Warnings)
	}
}

// TestCloudUsable: a CloudAdvertisement with a problem keeps its last
// valid version, and of an L2Advertisement and a CloudAdvertisement that
// clash, the one already in force stays and the newcomer is left out,
// whichever kind it is.
func TestCloudUsable(t *testing.T) {
	fip := pool("fip", "198.51.100.24/32")
	l2fip := l2("l", v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"fip"}})
	good := cloudAdv("c", nil, "fip")
	bad := cloudAdv("c", func(s *v1alpha1.CloudAdvertisementSpec) { s.Provider = "vultr" }, "fip")
	tests := []struct {
		name               string
		in, last           Resources
		wantL2, wantCld    []string
		wantKept, wantLeft []string
	}{{
		name:    "provider changed to an unknown one: the last version stays",
		in:      Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{bad}},
		last:    Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{good}},
		wantCld: []string{"c"}, wantKept: []string{"CloudAdvertisement/c"},
	}, {
		name:     "unknown provider after a restart: left out",
		in:       Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{bad}},
		wantLeft: []string{"CloudAdvertisement/c"},
	}, {
		name:   "cloud added beside the L2Advertisement in force: the L2Advertisement stays",
		in:     Resources{Pools: []v1beta1.IPAddressPool{fip}, L2Advertisements: []v1beta1.L2Advertisement{l2fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{good}},
		last:   Resources{Pools: []v1beta1.IPAddressPool{fip}, L2Advertisements: []v1beta1.L2Advertisement{l2fip}},
		wantL2: []string{"l"}, wantKept: []string{"L2Advertisement/l"}, wantLeft: []string{"CloudAdvertisement/c"},
	}, {
		name:    "L2 added beside the CloudAdvertisement in force: the CloudAdvertisement stays",
		in:      Resources{Pools: []v1beta1.IPAddressPool{fip}, L2Advertisements: []v1beta1.L2Advertisement{l2fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{good}},
		last:    Resources{Pools: []v1beta1.IPAddressPool{fip}, CloudAdvertisements: []v1alpha1.CloudAdvertisement{good}},
		wantCld: []string{"c"}, wantKept: []string{"CloudAdvertisement/c"}, wantLeft: []string{"L2Advertisement/l"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Namespace, tc.last.Namespace = testNS, testNS
			u := BuildUsable(tc.in, tc.last)
			checkUsable(t, u, tc.wantKept, tc.wantLeft)
			var l2s, clouds []string
			for _, a := range u.Config.L2Advertisements {
				l2s = append(l2s, a.Name)
			}
			for _, a := range u.Config.CloudAdvertisements {
				clouds = append(clouds, a.Name)
			}
			if !slices.Equal(l2s, tc.wantL2) || !slices.Equal(clouds, tc.wantCld) {
				t.Errorf("in force: L2 %v cloud %v; want %v %v", l2s, clouds, tc.wantL2, tc.wantCld)
			}
		})
	}
}
