package config

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/seeds"
)

// TestSeeds validates every seed manifest file as one configuration: all
// must be accepted except the documents the header says to reject, which
// must be refused with a problem naming them.
func TestSeeds(t *testing.T) {
	files := seeds.ForTest(t, "../..")
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			r := seedResources(t, f)
			res := Validate(r)
			for _, p := range res.Problems {
				if !slices.Contains(f.Rejects, p.Name) {
					t.Errorf("unexpected problem: %s", p)
				}
			}
			for _, name := range f.Rejects {
				if len(res.Problems.About(KindL2Advertisement, name))+len(res.Problems.About(KindIPAddressPool, name))+
					len(res.Problems.About(KindBGPAdvertisement, name))+len(res.Problems.About(KindBGPPeer, name)) == 0 {
					t.Errorf("%s not refused; problems:\n%v", name, res.Problems)
				}
			}
			if len(f.Rejects) == 0 && res.Config == nil {
				t.Errorf("configuration refused")
			}
		})
	}
}

// TestSeedWildcard pins the message for seed 001's "primary-eth0": it must
// say that label selectors have no wildcard and that omitting
// nodeSelectors selects every node.
func TestSeedWildcard(t *testing.T) {
	files := seeds.ForTest(t, "../..")
	i := slices.IndexFunc(files, func(f seeds.File) bool { return strings.HasPrefix(f.Name, "001-") })
	if i < 0 {
		t.Fatal("seed 001 not found")
	}
	res := Validate(seedResources(t, files[i]))
	ps := res.Problems.About(KindL2Advertisement, "primary-eth0")
	if len(ps) != 1 {
		t.Fatalf("want one problem for primary-eth0, got:\n%v", res.Problems)
	}
	p := ps[0]
	if !strings.HasPrefix(p.Field, "spec.nodeSelectors[0].matchLabels") ||
		!strings.Contains(p.Message, "no wildcard") || !strings.Contains(p.Message, "Omitting nodeSelectors selects every node") {
		t.Errorf("problem = %s", p)
	}
	if p.Transient {
		t.Error("the wildcard problem is not transient")
	}
}

// seedResources decodes a seed file's documents. The configuration
// namespace is the one the file's metallb.io objects use.
func seedResources(t *testing.T, f seeds.File) Resources {
	t.Helper()
	var r Resources
	for _, d := range f.Docs {
		if strings.HasPrefix(d.APIVersion, "metallb.io/") && d.Namespace != "" {
			r.Namespace = d.Namespace
		}
		dec := func(into any) {
			if err := yaml.UnmarshalStrict([]byte(d.YAML), into); err != nil {
				t.Fatalf("%s %s: %v", d.Kind, d.Name, err)
			}
		}
		switch d.APIVersion + " " + d.Kind {
		case "metallb.io/v1beta1 IPAddressPool":
			var o v1beta1.IPAddressPool
			dec(&o)
			r.Pools = append(r.Pools, o)
		case "metallb.io/v1beta1 L2Advertisement":
			var o v1beta1.L2Advertisement
			dec(&o)
			r.L2Advertisements = append(r.L2Advertisements, o)
		case "metallb.io/v1beta1 BGPAdvertisement":
			var o v1beta1.BGPAdvertisement
			dec(&o)
			r.BGPAdvertisements = append(r.BGPAdvertisements, o)
		case "metallb.io/v1beta2 BGPPeer":
			var o v1beta2.BGPPeer
			dec(&o)
			r.BGPPeers = append(r.BGPPeers, o)
		case "metallb.io/v1beta1 BGPPeer":
			var o v1beta1.BGPPeer
			dec(&o)
			var hub v1beta2.BGPPeer
			if err := o.ConvertTo(&hub); err != nil {
				t.Fatal(err)
			}
			r.BGPPeers = append(r.BGPPeers, hub)
		case "metallb.io/v1beta1 BFDProfile":
			var o v1beta1.BFDProfile
			dec(&o)
			r.BFDProfiles = append(r.BFDProfiles, o)
		case "metallb.io/v1beta1 Community":
			var o v1beta1.Community
			dec(&o)
			r.Communities = append(r.Communities, o)
		case "v1 Namespace":
			var o corev1.Namespace
			dec(&o)
			r.Namespaces = append(r.Namespaces, o)
		default:
			if strings.HasPrefix(d.APIVersion, "metallb.io/") {
				t.Fatalf("seed kind %s %s not handled by this test", d.APIVersion, d.Kind)
			}
		}
	}
	if r.Namespace == "" {
		r.Namespace = testNS
	}
	return r
}
