// Package testcluster starts a real kube-apiserver and etcd (controller-runtime's
// envtest, with binaries built by hack/testenv.sh) with Herald's CRDs
// installed, and runs the kubectl that was built beside them. Tests use it;
// nothing in the shipped binary does.
package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/internal/kubeconfig"
)

// Cluster is a running control plane.
type Cluster struct {
	Config     *rest.Config
	Kubeconfig string // path to a kubeconfig file for kubectl and herald
	assets     string
	env        *envtest.Environment
}

// RepoRoot is the checkout's top folder, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Start boots the API server with Herald's CRDs and registers its shutdown
// with t.Cleanup. Without KUBEBUILDER_ASSETS the test is skipped, unless
// HERALD_REQUIRE_ENVTEST is set (as `make test` does), where it fails: the
// control plane is part of the suite, not an option.
func Start(t testing.TB, opts ...func(*envtest.Environment)) *Cluster {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		if os.Getenv("HERALD_REQUIRE_ENVTEST") != "" {
			t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/testenv.sh)")
		}
		t.Skip("KUBEBUILDER_ASSETS not set; run `make test` for the integration tests")
	}
	// controller-runtime logs through a global logger; tests that want
	// logs set their own on the manager.
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	// The API server must never dial a Service's ClusterIP (a webhook's,
	// say): nothing serves there, and envtest's default range is a private
	// one that routes off this machine. With aggregator routing it dials
	// the Service's endpoints instead, of which tests make none or local
	// ones; the range is a benchmarking one of our own.
	api := env.ControlPlane.GetAPIServer()
	api.Configure().Set("enable-aggregator-routing", "true")
	api.Configure().Set("service-cluster-ip-range", "198.18.128.0/24")
	for _, o := range opts {
		o(env)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	c := &Cluster{Config: cfg, assets: assets, env: env}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	c.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubeconfig.Write(cfg, c.Kubeconfig); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	return c
}

// Kubectl runs the kubectl built with the control plane against this
// cluster and returns its standard output; stderr is folded into the error.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	stdout, _, err := c.KubectlStderr(ctx, stdin, args...)
	return stdout, err
}

// KubectlStderr is Kubectl that also returns standard error, where kubectl
// prints the API server's warnings.
func (c *Cluster) KubectlStderr(ctx context.Context, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.assets, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), stderr.String(), nil
}
