package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/testcluster"
)

// previousRelease is the last commit before the real-cluster work (issue
// 10): the chart and image an early user installed. Its speakers crash-loop
// on a real node (envtest's init on a read-only /tmp), its chart asks for
// the image tag "0.1.0", and a pool in its values is refused by its own
// webhook, so it is installed without --wait and configured afterwards, as
// such a user would have had to.
const previousRelease = "968108a"

// previousImage is the name the previous chart gives its image by default.
const previousImage = "ghcr.io/herald-lb/herald:0.1.0"

// TestChartUpgradeFromPrevious: helm upgrade from the previous release's
// chart and image to this checkout's. The address the previous controller
// gave the Service is kept through the upgrade (sampled every 100 ms), the
// upgraded speakers serve it from exactly one node, and the CRDs are
// updated the way docs/install.md says.
func TestChartUpgradeFromPrevious(t *testing.T) {
	old := previousArtifacts(t)
	l := startCluster(t, 3, func(o *lab.Options) {
		o.CRDs = filepath.Join(old.tree, "config", "crd", "bases")
		o.Cluster.Images = append(o.Cluster.Images, old.image)
	})
	ctx := ctxT(t, 8*time.Minute)
	kubectl := func(stdin string, args ...string) (string, error) { return l.Kubectl(ctx, stdin, args...) }

	// The previous release, as it could be installed.
	if _, err := l.Helm(ctx, testEnv.art.chart, "install", filepath.Join(old.tree, "charts", "herald"), "{}\n", "-wait=false"); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the previous controller takes the pool (its webhook serving)", func() (bool, string) {
		out, err := kubectl(seed004Config, "apply", "-f", "-")
		return err == nil, fmt.Sprint(out, err)
	})
	addr := mustAddr(t, waitAddress(ctx, t, l, "web"))
	old.report(ctx, t, l)

	// Sample the Service's address through the upgrade.
	watch := watchAddress(ctx, l, "web", 100*time.Millisecond)
	helm(t, l, "upgrade", "{}\n")
	if err := l.WaitKubeProxy(ctx, addr); err != nil {
		t.Fatal(err)
	}
	got := curlUntil(t, l, addr, time.Minute)
	samples, moved := watch()
	if moved != "" {
		t.Fatalf("the Service's address changed during the upgrade: %s", moved)
	}
	t.Logf("address %s kept through the upgrade (%d samples); answered by %s after it", addr, samples, got.pod)

	answers, err := l.SampleAnswers(ctx, addr, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	rounds, err := answers.Stop()
	if err != nil {
		t.Fatal(err) // two MACs answered one request
	}
	answered := map[string]bool{}
	for _, r := range rounds {
		for _, mac := range r.MACs {
			answered[l.NodeByMAC(mac)] = true
		}
	}
	if len(answered) != 1 {
		t.Fatalf("after the upgrade %s was answered by %v over %d ARP requests, want one node", addr, keys(answered), len(rounds))
	}

	// docs/install.md: Helm never upgrades crds/; the operator applies them.
	crds := filepath.Join(testcluster.RepoRoot(), "charts", "herald", "crds")
	if out, err := kubectl("", "apply", "--server-side", "-f", crds); err != nil {
		t.Fatalf("apply the new CRDs as docs/install.md says: %v\n%s", err, out)
	}
	checkCRDs(ctx, t, l, crds)
}

// previous is the previous release, exported from git and built.
type previous struct {
	tree  string // the export of previousRelease
	image string // its image archive, named previousImage
}

// report logs what the previous release's Pods do on a real node.
func (p previous) report(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	pods, err := l.Client().CoreV1().Pods(lab.HeraldNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pod := range pods.Items {
		restarts := int32(0)
		for _, c := range pod.Status.ContainerStatuses {
			restarts += c.RestartCount
		}
		t.Logf("previous release: %s ready=%v restarts=%d", pod.Name, podReady(&pod), restarts)
	}
}

// previousArtifacts exports previousRelease from this repository's history
// and builds its binary into an image named as its chart asks. A shallow
// clone has no such history: that alone skips.
func previousArtifacts(t *testing.T) previous {
	t.Helper()
	needCluster(t)
	root := testcluster.RepoRoot()
	if out, _ := output(root, "git", "rev-parse", "--is-shallow-repository"); strings.TrimSpace(out) == "true" {
		t.Skipf("a shallow clone has no commit %s to upgrade from", previousRelease)
	}
	dir := filepath.Join(testEnv.art.dir, "previous")
	p := previous{tree: filepath.Join(dir, "tree"), image: filepath.Join(dir, "herald.tar")}
	start := time.Now()
	if err := os.MkdirAll(p.tree, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("git", "-C", root, "archive", previousRelease)
	untar := exec.Command("tar", "-x", "-C", p.tree)
	var stderr bytes.Buffer
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin, archive.Stderr, untar.Stderr = pipe, &stderr, &stderr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", previousRelease, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("untar %s: %v\n%s", previousRelease, err, stderr.String())
	}
	bin := filepath.Join(dir, "herald")
	static := append(os.Environ(), "CGO_ENABLED=0")
	if err := run(p.tree, static, "go", "build", "-trimpath", "-o", bin, "./cmd/herald"); err != nil {
		t.Fatal(err)
	}
	if err := run(root, nil, "go", "-C", "hack/image", "run", ".", "-binary", bin, "-image", previousImage, "-version", "v0.1.0", "-out", p.image); err != nil {
		t.Fatal(err)
	}
	t.Logf("previous release %s exported and built in %s", previousRelease, time.Since(start).Round(time.Millisecond))
	return p
}

// waitAddress creates the lab's backends and waits for the Service's
// address, without waiting for anything to serve it.
func waitAddress(ctx context.Context, t *testing.T, l *lab.Lab, name string) string {
	t.Helper()
	if err := l.CreateBackends(ctx, name, corev1.ServiceExternalTrafficPolicyCluster); err != nil {
		t.Fatal(err)
	}
	addr, err := l.WaitBackends(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return addr.String()
}

// watchAddress samples the Service's first ingress address every interval
// until the returned stop is called; stop returns how many samples were
// taken and the first change seen, or "".
func watchAddress(ctx context.Context, l *lab.Lab, name string, every time.Duration) func() (int, string) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg      sync.WaitGroup
		n       int
		first   string
		changed string
	)
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			svc, err := l.Client().CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				n++
				var ips []string
				for _, ing := range svc.Status.LoadBalancer.Ingress {
					ips = append(ips, ing.IP)
				}
				got := strings.Join(ips, ",")
				if n == 1 {
					first = got
				} else if got != first && changed == "" {
					changed = fmt.Sprintf("%s became %s at sample %d", first, got, n)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return func() (int, string) {
		cancel()
		wg.Wait()
		return n, changed
	}
}

// checkCRDs compares every CRD in dir with the one the API server serves:
// each version's schema must be the file's.
func checkCRDs(ctx context.Context, t *testing.T, l *lab.Lab, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", dir, err)
	}
	dyn, err := dynamic.NewForConfig(l.Config())
	if err != nil {
		t.Fatal(err)
	}
	gvr := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &want); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		u, err := dyn.Resource(gvr).Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got apiextensionsv1.CustomResourceDefinition
		b, _ := json.Marshal(u.Object)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		for i, v := range want.Spec.Versions {
			if i >= len(got.Spec.Versions) || got.Spec.Versions[i].Name != v.Name {
				t.Fatalf("CRD %s: version %s not served after the apply", want.Name, v.Name)
			}
			w, _ := json.Marshal(v.Schema)
			g, _ := json.Marshal(got.Spec.Versions[i].Schema)
			if !bytes.Equal(w, g) {
				t.Fatalf("CRD %s %s: the served schema is not the chart's after the apply", want.Name, v.Name)
			}
		}
	}
	t.Logf("%d CRDs applied and served as in the chart", len(files))
}
