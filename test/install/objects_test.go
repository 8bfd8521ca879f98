package install

import (
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/herald-lb/herald/internal/seeds"
	"github.com/herald-lb/herald/internal/webhookcert"
)

// TestWebhookConfigurationLeftToController: the chart renders the webhook
// configuration and its Service under the names the controller looks for,
// but no webhooks: the controller writes them (with their failure policy,
// from the chart's value) once it serves them, so that nothing the release
// itself creates can be refused for want of a webhook.
func TestWebhookConfigurationLeftToController(t *testing.T) {
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
			objs := objects(t, render(t, files...))
			o := find(objs, "ValidatingWebhookConfiguration", webhookcert.DefaultWebhookConfigName)
			if o == nil {
				t.Fatal("no ValidatingWebhookConfiguration " + webhookcert.DefaultWebhookConfigName)
			}
			if w, ok := o.Object["webhooks"]; ok {
				t.Errorf("the chart renders webhooks, which the controller writes itself: %v", w)
			}
			if find(objs, "Service", webhookcert.DefaultServiceName) == nil {
				t.Error("no Service " + webhookcert.DefaultServiceName)
			}
			c := deref[[]any](t, find(objs, "Deployment", "controller"), "spec", "template", "spec", "containers")[0].(map[string]any)
			if want := "--webhook-failure-policy=" + string(tc.policy); !slices.Contains(stringList(c["args"]), want) {
				t.Errorf("controller args %v lack %s", c["args"], want)
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
