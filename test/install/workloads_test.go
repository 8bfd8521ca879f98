package install

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// TestPodDisruptionBudgetsAreComputable: the disruption controller can
// compute a PodDisruptionBudget with maxUnavailable, or a percentage
// minAvailable, only for pods whose controller has the scale subresource. A
// DaemonSet has none, and such a budget fails with
// CalculateExpectedPodCountFailed ("daemonsets.apps does not implement the
// scale subresource") and protects nothing.
func TestPodDisruptionBudgetsAreComputable(t *testing.T) {
	eachValues(t, func(t *testing.T, objs []*unstructured.Unstructured) {
		for _, pdb := range objs {
			if pdb.GetKind() != "PodDisruptionBudget" {
				continue
			}
			sel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
			_, maxUnavailable, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "maxUnavailable")
			minAvailable, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable")
			_, percent := minAvailable.(string)
			for _, w := range objs {
				podLabels, found, _ := unstructured.NestedStringMap(w.Object, "spec", "template", "metadata", "labels")
				if !found || len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(podLabels)) {
					continue
				}
				if w.GetKind() == "DaemonSet" && (maxUnavailable || percent) {
					t.Errorf("PodDisruptionBudget %s selects the pods of DaemonSet %s, which has no scale subresource: the budget cannot be computed", pdb.GetName(), w.GetName())
				}
			}
		}
	})
}

// TestImageTagMatchesMake: the chart, with its default values, asks for the
// image `make image` builds and names for the chart's release. A release's
// git tag is v<appVersion> (docs/install.md), and `make image` names the
// image after VERSION, which is `git describe`: the tag itself.
func TestImageTagMatchesMake(t *testing.T) {
	data, err := os.ReadFile(root + "/charts/herald/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var chart struct{ AppVersion string }
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	release := "v" + chart.AppVersion
	// -n prints the recipe without running it: build, then hack/image with -image.
	out, err := exec.Command("make", "-n", "--no-print-directory", "-C", root, "image", "VERSION="+release, "COMMIT=0123abc").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n image: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`-image '([^']+)'`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no -image in make image's recipe:\n%s", out)
	}
	built := string(m[1])
	objs := objects(t, render(t))
	for _, w := range []struct{ kind, name string }{{"Deployment", "controller"}, {"DaemonSet", "speaker"}} {
		o := find(objs, w.kind, w.name)
		if o == nil {
			t.Fatalf("no %s %s", w.kind, w.name)
		}
		c := deref[[]any](t, o, "spec", "template", "spec", "containers")[0].(map[string]any)
		if got := fmt.Sprint(c["image"]); got != built {
			t.Errorf("%s %s asks for %s; make image builds %s for release %s", w.kind, w.name, got, built, release)
		}
	}
}
