// Package e2e runs Herald end to end in the network-namespace lab: a real
// API server, the controller, a speaker per node namespace, a bridge, and a
// client using real curl, arping and ndisc6.
package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/seeds"
	"github.com/herald-lb/herald/internal/testcluster"
)

// herald is the binary under test, built once for the package.
var herald string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	herald = filepath.Join(dir, "herald")
	cmd := exec.Command("go", "build", "-o", herald, "./cmd/herald")
	cmd.Dir = testcluster.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build herald: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireLab skips (or, under `make test`, fails) when the lab cannot run:
// it needs root, iproute2, curl, arping, ndisc6 and the control plane.
func requireLab(t *testing.T) string {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "curl", "arping", "ndisc6"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		missing = append(missing, "KUBEBUILDER_ASSETS")
	}
	if len(missing) > 0 {
		msg := "the lab needs " + strings.Join(missing, ", ") + " (run `make test` as root)"
		if os.Getenv("HERALD_REQUIRE_NETNS") != "" || os.Getenv("HERALD_REQUIRE_ENVTEST") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return assets
}

// startLab starts a lab with the seed-style configuration applied (Layer 2,
// or BGP to the router when there is one), and removes it when the test
// ends.
func startLab(t *testing.T, mod ...func(*lab.Options)) *lab.Lab {
	t.Helper()
	l := startBareLab(t, mod...)
	config := lab.Config()
	if l.RouterNode().Name != "" {
		config = l.RouterBGPConfig()
	}
	if err := l.Apply(ctxT(t, time.Minute), config); err != nil {
		t.Fatal(err)
	}
	return l
}

// startBareLab starts a lab with no Herald configuration.
func startBareLab(t *testing.T, mod ...func(*lab.Options)) *lab.Lab {
	t.Helper()
	assets := requireLab(t)
	logDir := t.TempDir()
	opts := lab.Options{
		Herald: herald, Assets: assets,
		CRDs:   filepath.Join(testcluster.RepoRoot(), "config", "crd", "bases"),
		LogDir: logDir,
	}
	for _, m := range mod {
		m(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"controller", "speaker-node1", "speaker-node2", "speaker-node3"} {
				t.Logf("--- %s log (tail):\n%s", n, l.LogTail(n, 30))
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// service creates a Service and waits for its addresses and an announcer
// reachable from the client.
func service(t *testing.T, l *lab.Lab, s lab.Service) []netip.Addr {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	if _, err := l.CreateService(ctx, s); err != nil {
		t.Fatal(err)
	}
	ns := s.Namespace
	if ns == "" {
		ns = "default"
	}
	addrs, err := l.WaitAddresses(ctx, ns, s.Name)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// curlUntil runs curl from the client until it is answered, and returns the
// answering node.
func curlUntil(t *testing.T, l *lab.Lab, addr netip.Addr) string {
	t.Helper()
	return answeredBy(t, "the client", l.Curl, addr)
}

// answeredBy runs curl (from one of the lab's namespaces) until addr is
// answered, for up to 30 s, and returns the answering node.
func answeredBy(t *testing.T, from string, curl func(context.Context, netip.Addr, int) (string, error), addr netip.Addr) string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	var last error
	for ctx.Err() == nil {
		node, err := curl(ctx, addr, 80)
		if err == nil {
			return node
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("curl %s from %s: %v", addr, from, last)
	return ""
}

// l2Status returns the node named by the Service's ServiceL2Status objects.
func l2Statuses(t *testing.T, l *lab.Lab, svc string) []string {
	t.Helper()
	out, err := l.Kubectl(ctxT(t, 30*time.Second), "", "get", "servicel2statuses", "-n", lab.HeraldNamespace,
		"-l", "metallb.io/service-name="+svc, "-o", "jsonpath={range .items[*]}{.status.node}{\" \"}{end}")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

func eventually(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var state string
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		state = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still %s", what, state)
}

var _ = metav1.Now

func seedFile(t *testing.T, name string) seeds.File {
	t.Helper()
	for _, f := range seeds.ForTest(t, testcluster.RepoRoot()) {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("seed %s not found", name)
	return seeds.File{}
}
