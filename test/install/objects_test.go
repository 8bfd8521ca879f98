package install

import (
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/seeds"
)

// TestWebhookConfigurationMatchesController: the chart renders the
// configuration the controller's handlers are registered for (paths, kinds,
// operations), since the controller only injects its CA into it.
func TestWebhookConfigurationMatchesController(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		policy       admissionregistrationv1.FailurePolicyType
	}{
		{"defaults", "", admissionregistrationv1.Fail},
		{"full values", fullValues(), admissionregistrationv1.Ignore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []string
			if tc.values != "" {
				files = append(files, tc.values)
			}
			o := find(objects(t, render(t, files...)), "ValidatingWebhookConfiguration", "herald-validating-webhook-configuration")
			if o == nil {
				t.Fatal("no ValidatingWebhookConfiguration herald-validating-webhook-configuration")
			}
			var got admissionregistrationv1.ValidatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &got); err != nil {
				t.Fatal(err)
			}
			want := controller.WebhookConfiguration("herald-validating-webhook-configuration", namespace, "herald-webhook-service", "", nil, tc.policy)
			if !equality.Semantic.DeepEqual(got.Webhooks, want.Webhooks) {
				g, _ := yaml.Marshal(got.Webhooks)
				w, _ := yaml.Marshal(want.Webhooks)
				t.Errorf("chart webhooks differ from internal/controller.WebhookConfiguration:\n--- chart\n%s\n--- controller\n%s", g, w)
			}
		})
	}
}

// TestConfigMirrorsSeeds: the config.* entries of full-values.yaml render to
// the same metallb.io objects as the seed manifests they were copied from.
func TestConfigMirrorsSeeds(t *testing.T) {
	rendered := objects(t, render(t, fullValues()))
	seen := map[string]bool{}
	// ForTest fails without the seeds: a test that skipped could not fail.
	files := seeds.ForTest(t, root)
	for _, seed := range []string{"004-talos-multiple-pools.yaml", "002-bgp-flux-helm.yaml"} {
		i := slices.IndexFunc(files, func(f seeds.File) bool { return f.Name == seed })
		if i < 0 {
			t.Fatalf("seed %s not found", seed)
		}
		for _, want := range objects(t, files[i].Raw) {
			if !strings.HasPrefix(want.GetAPIVersion(), "metallb.io/") {
				continue
			}
			got := find(rendered, want.GetKind(), want.GetName())
			if got == nil {
				t.Errorf("%s: %s %s not rendered from config.*", seed, want.GetKind(), want.GetName())
				continue
			}
			seen[got.GetKind()+"/"+got.GetName()] = true
			if got.GetAPIVersion() != want.GetAPIVersion() || got.GetNamespace() != want.GetNamespace() {
				t.Errorf("%s %s: rendered %s in %s, seed %s in %s", want.GetKind(), want.GetName(),
					got.GetAPIVersion(), got.GetNamespace(), want.GetAPIVersion(), want.GetNamespace())
			}
			if !equality.Semantic.DeepEqual(got.Object["spec"], want.Object["spec"]) {
				t.Errorf("%s %s: spec\n%v\nwant (seed %s)\n%v", want.GetKind(), want.GetName(), got.Object["spec"], seed, want.Object["spec"])
			}
		}
	}
	// 4 IPAddressPools, 2 L2Advertisements, 2 BGPPeers, 1 BGPAdvertisement.
	if len(seen) != 9 {
		t.Errorf("matched %d seed objects, want 9", len(seen))
	}
}
