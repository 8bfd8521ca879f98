package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/cachescope"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/testcluster"
)

// cloudClash is the state the two tests below reach: pool p announced in
// Layer 2, and a CloudAdvertisement of it, created while no webhook runs.
// poke, if set, is called before each look at the ConfigurationState.
func (e *env) cloudClash(poke func()) {
	e.t.Helper()
	e.eventually("CloudAdvertisement created", func() (bool, string) {
		out, err := e.c.Kubectl(context.Background(), cloudAdvertisement("fip", "p"), "apply", "-f", "-")
		return err == nil, out
	})
	e.eventually("ConfigurationState names the clash", func() (bool, string) {
		if poke != nil {
			poke()
		}
		st := e.configState()
		return st.Result == metallbv1beta1.ConfigurationResultInvalid &&
			strings.Contains(st.ErrorSummary, `pool "p" is announced by L2Advertisement "lan" and CloudAdvertisement "fip"`), toString(st)
	})
	// The L2Advertisement was in force first: it stays, and p still serves.
	e.service("apps", "two")
	e.waitIngress("apps", "two", "192.0.2.1")
}

// TestCloudAdvertisementValidated: the controller watches
// CloudAdvertisements and validates them with the rest of the
// configuration.
func TestCloudAdvertisementValidated(t *testing.T) {
	e := newEnv(t)
	e.namespaces(ns, "apps")
	e.apply(pool("p", "192.0.2.0/30") + "---\n" + l2Advertisement("lan", "p"))
	e.startController(ns)
	e.service("apps", "one")
	e.waitIngress("apps", "one", "192.0.2.0")
	e.cloudClash(nil)
	if _, err := e.c.Kubectl(context.Background(), "", "-n", ns, "delete", "cloudadvertisement", "fip"); err != nil {
		t.Fatal(err)
	}
	e.eventually("ConfigurationState Valid", func() (bool, string) {
		st := e.configState()
		return st.Result == metallbv1beta1.ConfigurationResultValid, toString(st)
	})
}

// TestCloudAdvertisementCRDAppliedLater: Helm does not create a chart's new
// CRDs on upgrade, so the controller must start and serve without the
// CloudAdvertisement CRD, and take CloudAdvertisements into account once
// the operator applies it, without a restart.
func TestCloudAdvertisementCRDAppliedLater(t *testing.T) {
	// The control plane starts with every CRD but this one.
	bases := filepath.Join(testcluster.RepoRoot(), "config", "crd", "bases")
	metallbOnly := t.TempDir()
	files, err := filepath.Glob(filepath.Join(bases, "metallb.io_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no metallb.io CRDs in %s: %v", bases, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(metallbOnly, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := testcluster.Start(t, func(env *envtest.Environment) { env.CRDDirectoryPaths = []string{metallbOnly} })
	scheme, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvFrom(t, c, scheme)
	ctx := context.Background()
	if served, err := cachescope.CloudServed(c.Config); err != nil || served {
		t.Fatalf("CloudAdvertisements served: %v %v", served, err)
	}
	e.namespaces(ns, "apps")
	e.apply(pool("p", "192.0.2.0/30") + "---\n" + l2Advertisement("lan", "p"))
	e.startController(ns)
	e.service("apps", "one")
	e.waitIngress("apps", "one", "192.0.2.0")
	e.eventually("ConfigurationState Valid without the CRD", func() (bool, string) {
		st := e.configState()
		return st.Result == metallbv1beta1.ConfigurationResultValid, toString(st)
	})

	crd := filepath.Join(bases, "herald-lb.io_cloudadvertisements.yaml")
	if out, err := e.c.Kubectl(ctx, "", "apply", "--server-side", "-f", crd); err != nil {
		t.Fatalf("apply the CRD: %v %s", err, out)
	}
	if out, err := e.c.Kubectl(ctx, "", "wait", "--for", "condition=Established", "crd/cloudadvertisements.herald-lb.io"); err != nil {
		t.Fatalf("CRD not established: %v %s", err, out)
	}
	// Not watched until a restart: any other change reloads the
	// configuration, which reads CloudAdvertisements from the API server.
	touched := 0
	e.cloudClash(func() {
		touched++
		_, _ = e.c.Kubectl(ctx, "", "-n", ns, "label", "--overwrite", "ipaddresspool", "p", fmt.Sprintf("touched=%d", touched))
	})
}
