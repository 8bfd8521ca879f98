package install

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/internal/testcluster"
)

func toYAML(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.String()
}

func createNamespace(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	ns := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"` + namespace + `","labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`
	if out, err := c.Kubectl(context.Background(), ns, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("create namespace: %v %s", err, out)
	}
}

// TestServerAccepts dry-runs every rendered object against a real API
// server: schemas, CRD validation and the built-in admission.
func TestServerAccepts(t *testing.T) {
	c := testcluster.Start(t)
	ctx := context.Background()
	createNamespace(t, c)
	crds, err := os.ReadFile(filepath.Join(root, "test", "install", "testdata", "monitoring-crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Kubectl(ctx, string(crds), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("monitoring CRDs: %v %s", err, out)
	}
	if out, err := c.Kubectl(ctx, "", "wait", "--for=condition=Established", "--timeout=30s",
		"crd/servicemonitors.monitoring.coreos.com", "crd/podmonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com"); err != nil {
		t.Fatalf("monitoring CRDs: %v %s", err, out)
	}
	for _, tc := range []struct{ name, values string }{
		{"defaults", ""},
		{"full values", fullValues()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []string
			if tc.values != "" {
				files = append(files, tc.values)
			}
			objs := objects(t, render(t, files...))
			if len(objs) < 20 {
				t.Fatalf("only %d objects rendered", len(objs))
			}
			out, stderr, err := c.KubectlStderr(ctx, toYAML(t, objs), "apply", "--server-side", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("server refused the chart: %v\n%s", err, out)
			}
			if n := strings.Count(out, "(server dry run)"); n != len(objs) {
				t.Errorf("%d of %d objects accepted:\n%s", n, len(objs), out)
			}
			if strings.TrimSpace(stderr) != "" {
				t.Errorf("warnings from the API server:\n%s", stderr)
			}
		})
	}
}

func buildHerald(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herald")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/herald")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build herald: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a log sink written by a process and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs herald with args until the test ends; its combined output is
// returned for inspection.
func start(t *testing.T, bin string, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start herald %s: %v", args[0], err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("herald %s output:\n%s", args[0], logs.String())
		}
	})
	return logs
}
