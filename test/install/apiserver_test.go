package install

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/internal/kubeconfig"
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

// TestRBACIsEnough runs the real controller and speaker as the chart's
// ServiceAccounts (impersonated) with only the chart's RBAC, and checks they
// do their work without a single "forbidden".
func TestRBACIsEnough(t *testing.T) {
	c := testcluster.Start(t)
	ctx := context.Background()
	createNamespace(t, c)
	var rbac []*unstructured.Unstructured
	for _, o := range objects(t, render(t)) {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			rbac = append(rbac, o)
		}
	}
	if len(rbac) != 10 {
		t.Fatalf("%d RBAC objects rendered, want 10", len(rbac))
	}
	if out, err := c.Kubectl(ctx, toYAML(t, rbac), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply RBAC: %v %s", err, out)
	}

	dir := t.TempDir()
	kubeconfigAs := func(sa string) string {
		cfg := *c.Config
		cfg.Impersonate.UserName = "system:serviceaccount:" + namespace + ":" + sa
		path := filepath.Join(dir, sa+".kubeconfig")
		if err := kubeconfig.Write(&cfg, path); err != nil {
			t.Fatal(err)
		}
		// kubeconfig.Write keeps the credentials only: add the impersonation.
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var kc map[string]any
		if err := yaml.Unmarshal(data, &kc); err != nil {
			t.Fatal(err)
		}
		for _, u := range kc["users"].([]any) {
			u.(map[string]any)["user"].(map[string]any)["as"] = cfg.Impersonate.UserName
		}
		data, err = yaml.Marshal(kc)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// The impersonation works, and is not more than the ServiceAccount.
	for _, sa := range []string{"controller", "speaker"} {
		out, err := c.Kubectl(ctx, "", "--kubeconfig", kubeconfigAs(sa), "auth", "can-i", "create", "clusterroles")
		if err == nil || strings.TrimSpace(out) != "no" {
			t.Fatalf("%s may create clusterroles (%q, %v): impersonation is not in effect", sa, out, err)
		}
	}

	const node = "herald-node-a"
	setup := `
apiVersion: v1
kind: Node
metadata:
  name: ` + node + `
  labels:
    kubernetes.io/hostname: ` + node + `
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: rbac-pool
  namespace: ` + namespace + `
spec:
  addresses:
  - 192.0.2.0/28
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: rbac-l2
  namespace: ` + namespace + `
spec:
  ipAddressPools: [rbac-pool]
  # No such interface: the speaker does its API work but sends no frame.
  interfaces: [herald-none0]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: LoadBalancer
  ports:
  - port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- port: 80
  protocol: TCP
endpoints:
- addresses: [198.51.100.10]
  nodeName: ` + node + `
  conditions: {ready: true}
`
	if out, err := c.Kubectl(ctx, setup, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("setup: %v %s", err, out)
	}
	status := `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"test","lastHeartbeatTime":"` +
		time.Now().UTC().Format(time.RFC3339) + `","lastTransitionTime":"` + time.Now().UTC().Format(time.RFC3339) +
		`"}],"addresses":[{"type":"InternalIP","address":"192.0.2.100"}]}}`
	if out, err := c.Kubectl(ctx, "", "patch", "node", node, "--subresource=status", "--type=merge", "-p", status); err != nil {
		t.Fatalf("node status: %v %s", err, out)
	}

	bin := buildHerald(t)
	ctrlLogs := start(t, bin, "controller", "--kubeconfig", kubeconfigAs("controller"), "--namespace", namespace,
		"--webhook", "off", "--leader-elect", "--metrics-addr", "0", "--health-addr", "0", "--log-level", "debug")
	spkLogs := start(t, bin, "speaker", "--kubeconfig", kubeconfigAs("speaker"), "--namespace", namespace,
		"--node-name", node, "--ml-disabled", "--metrics-addr", "0", "--handover-delay", "0s", "--log-level", "debug")

	checks := []struct {
		what string
		args []string
		ok   func(string) bool
	}{
		{"Service has an address", []string{"-n", "default", "get", "svc", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"},
			func(s string) bool { return strings.HasPrefix(s, "192.0.2.") }},
		{"IPAddressPool status written", []string{"-n", namespace, "get", "ipaddresspool", "rbac-pool", "-o", "jsonpath={.status.assignedIPv4}/{.status.availableIPv4}"},
			func(s string) bool { return s == "1/15" }},
		{"ConfigurationState controller", []string{"-n", namespace, "get", "configurationstates", "controller", "-o", "name"},
			func(s string) bool { return s != "" }},
		{"ConfigurationState speaker-" + node, []string{"-n", namespace, "get", "configurationstates", "speaker-" + node, "-o", "name"},
			func(s string) bool { return s != "" }},
		{"memberlist Secret", []string{"-n", namespace, "get", "secret", "memberlist", "-o", "jsonpath={.data.secretkey}"},
			func(s string) bool { return s != "" }},
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, ch := range checks {
		var last string
		for {
			out, err := c.Kubectl(ctx, "", ch.args...)
			last = fmt.Sprintf("%q %v", out, err)
			if err == nil && ch.ok(strings.TrimSpace(out)) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: not after 60s (last: %s)", ch.what, last)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// Give late calls (status writes, Events) a moment, then scan the logs.
	time.Sleep(2 * time.Second)
	for name, logs := range map[string]*syncBuffer{"controller": ctrlLogs, "speaker": spkLogs} {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(strings.ToLower(line), "forbidden") {
				t.Errorf("%s: %s", name, line)
			}
		}
	}
}
