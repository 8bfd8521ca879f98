// Package install tests the Helm chart charts/herald and the manifest
// rendered from it: no drift, a clean lint, objects the API server accepts,
// and RBAC that is enough for the real binaries.
package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/herald-lb/herald/internal/testcluster"
)

const namespace = "metallb-system"

var root = testcluster.RepoRoot()

// chartTool runs hack/chart (its own module, with Helm) and returns stdout.
// The first run builds Helm, which takes a while; later runs use the cache.
func chartTool(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"-C", filepath.Join(root, "hack", "chart"), "run", "."}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/chart %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func fullValues() string {
	return filepath.Join(root, "test", "install", "testdata", "full-values.yaml")
}

// render renders the chart for the metallb-system namespace with the given
// values files (none: defaults).
func render(t *testing.T, valuesFiles ...string) string {
	t.Helper()
	args := []string{"template", "-namespace", namespace}
	for _, f := range valuesFiles {
		args = append(args, "-f", f)
	}
	return chartTool(t, args...)
}

// eachValues runs check on the chart rendered with the default values and
// with full-values.yaml.
func eachValues(t *testing.T, check func(t *testing.T, objs []*unstructured.Unstructured)) {
	for _, tc := range []struct {
		name  string
		files []string
	}{
		{"defaults", nil},
		{"full values", []string{fullValues()}},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, objects(t, render(t, tc.files...))) })
	}
}

// objects parses a multi-document YAML stream, skipping empty documents.
func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("parse manifest: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestCRDsMatchConfig(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	chartCRDs, _ := filepath.Glob(filepath.Join(root, "charts", "herald", "crds", "*.yaml"))
	if len(chartCRDs) != len(bases) {
		t.Errorf("charts/herald/crds has %d files, config/crd/bases %d: cp config/crd/bases/*.yaml charts/herald/crds/", len(chartCRDs), len(bases))
	}
	for _, b := range bases {
		want, err := os.ReadFile(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, "charts", "herald", "crds", filepath.Base(b)))
		if err != nil {
			t.Errorf("%v (cp config/crd/bases/*.yaml charts/herald/crds/)", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/herald/crds/%s differs from config/crd/bases: cp config/crd/bases/*.yaml charts/herald/crds/", filepath.Base(b))
		}
	}
}

func TestManifestUpToDate(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join(root, "config", "manifests", "herald.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := chartTool(t, "template", "-namespace", namespace, "-namespace-object")
	// The file starts with make's two comment lines.
	body := string(committed)
	for strings.HasPrefix(body, "#") {
		_, body, _ = strings.Cut(body, "\n")
	}
	if body != fresh {
		t.Errorf("config/manifests/herald.yaml is stale: run `make manifests`")
	}
	objs := objects(t, string(committed))
	ns := find(objs, "Namespace", namespace)
	if ns == nil {
		t.Fatalf("no Namespace %s in config/manifests/herald.yaml", namespace)
	}
	for _, l := range []string{"enforce", "audit", "warn"} {
		if got := ns.GetLabels()["pod-security.kubernetes.io/"+l]; got != "privileged" {
			t.Errorf("Namespace label pod-security.kubernetes.io/%s = %q, want privileged", l, got)
		}
	}
	crds := 0
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds++
		}
	}
	// Every CRD of the chart, Herald's own kinds included.
	files, err := filepath.Glob(filepath.Join("..", "..", "charts", "herald", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("the chart's CRDs: %v", err)
	}
	if crds != len(files) {
		t.Errorf("config/manifests/herald.yaml has %d CRDs, want the chart's %d", crds, len(files))
	}
}

func TestLint(t *testing.T) {
	for _, tc := range []struct{ name, values string }{
		{"defaults", ""},
		{"full values", fullValues()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"lint"}
			if tc.values != "" {
				args = append(args, "-f", tc.values)
			}
			// chartTool fails the test on any warning or error.
			out := chartTool(t, args...)
			if !strings.Contains(out, "no warnings") {
				t.Errorf("lint output:\n%s", out)
			}
		})
	}
}

func deref[T any](t *testing.T, o *unstructured.Unstructured, path ...string) T {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s %s: no %s", o.GetKind(), o.GetName(), strings.Join(path, "."))
	}
	out, ok := v.(T)
	if !ok {
		t.Fatalf("%s %s: %s is %T", o.GetKind(), o.GetName(), strings.Join(path, "."), v)
	}
	return out
}

// TestDefaultWorkloads checks what the defaults promise: names and labels
// MetalLB users' commands rely on, and the security settings.
func TestDefaultWorkloads(t *testing.T) {
	objs := objects(t, render(t))
	for _, tc := range []struct {
		kind, name, component string
	}{
		{"Deployment", "controller", "controller"},
		{"DaemonSet", "speaker", "speaker"},
	} {
		o := find(objs, tc.kind, tc.name)
		if o == nil {
			t.Fatalf("no %s %s", tc.kind, tc.name)
		}
		podLabels := deref[map[string]any](t, o, "spec", "template", "metadata", "labels")
		for k, v := range map[string]string{"app": "metallb", "component": tc.component,
			"app.kubernetes.io/name": "herald", "app.kubernetes.io/component": tc.component} {
			if podLabels[k] != v {
				t.Errorf("%s %s: pod label %s = %v, want %s", tc.kind, tc.name, k, podLabels[k], v)
			}
		}
	}
	ctrl := find(objs, "Deployment", "controller")
	pod := deref[map[string]any](t, ctrl, "spec", "template", "spec", "securityContext")
	if pod["runAsNonRoot"] != true || fmt.Sprint(pod["runAsUser"]) != "65534" {
		t.Errorf("controller pod securityContext = %v", pod)
	}
	c := deref[[]any](t, ctrl, "spec", "template", "spec", "containers")[0].(map[string]any)
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false ||
		fmt.Sprint(sc["capabilities"]) != "map[drop:[ALL]]" {
		t.Errorf("controller securityContext = %v", sc)
	}
	sp := find(objs, "DaemonSet", "speaker")
	if deref[bool](t, sp, "spec", "template", "spec", "hostNetwork") != true {
		t.Error("speaker: hostNetwork is not true")
	}
	c = deref[[]any](t, sp, "spec", "template", "spec", "containers")[0].(map[string]any)
	sc = c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || fmt.Sprint(sc["capabilities"]) != "map[add:[NET_RAW] drop:[ALL]]" {
		t.Errorf("speaker securityContext = %v", sc)
	}
	for _, kind := range []string{"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap", "NetworkPolicy"} {
		for _, o := range objs {
			if o.GetKind() == kind {
				t.Errorf("defaults render %s %s; monitoring and network policies are off by default", kind, o.GetName())
			}
		}
	}
}
