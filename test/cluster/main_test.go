// Package cluster runs Herald as users do: real Kubernetes nodes in the lab
// (kubelet, containerd, runc, CNI bridge, kube-proxy in iptables mode),
// Herald installed from its Helm chart as Pods with the image `make image`
// builds, and traffic from the lab's client to backend Pods through
// kube-proxy.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/testcluster"
)

// artifacts are built once for the package, only when the lab can run.
type artifacts struct {
	dir     string
	chart   string // hack/chart's program: Helm's install and upgrade actions
	labpod  string // test/labpod, static
	image   string // the herald image archive, as `make image` writes it
	imageID string // its name, as `make image` gives a release's
}

// env is what every test needs: the control plane and node binaries and the
// built artifacts.
type env struct {
	assets, nodeAssets string
	art                artifacts
}

var testEnv env // set once by TestMain, read-only afterwards

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime's global logger.
	ctrllog.SetLogger(logr.Discard())
	code := func() int {
		testEnv.assets = os.Getenv("KUBEBUILDER_ASSETS")
		testEnv.nodeAssets = os.Getenv("HERALD_NODE_ASSETS")
		if missing(testEnv) != "" {
			return m.Run() // each test skips or fails with the reason
		}
		dir, err := os.MkdirTemp("", "herald-cluster-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		start := time.Now()
		testEnv.art, err = build(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "cluster: built herald image, labpod and the chart tool in %s\n", time.Since(start).Round(time.Millisecond))
		return m.Run()
	}()
	os.Exit(code)
}

// missing names what the cluster lab lacks on this machine, or "".
func missing(e env) string {
	var out []string
	if os.Geteuid() != 0 {
		out = append(out, "root")
	}
	for _, tool := range []string{"ip", "curl", "arping", "ndisc6", "containerd", "runc", "ctr", "iptables", "conntrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			out = append(out, tool)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		out = append(out, "containernetworking-plugins")
	}
	if e.assets == "" {
		out = append(out, "KUBEBUILDER_ASSETS=$(hack/testenv.sh)")
	}
	if e.nodeAssets == "" {
		out = append(out, "HERALD_NODE_ASSETS=$(hack/testenv.sh nodes)")
	}
	return strings.Join(out, ", ")
}

func build(dir string) (artifacts, error) {
	root := testcluster.RepoRoot()
	a := artifacts{
		dir:    dir,
		chart:  filepath.Join(dir, "chart"),
		labpod: filepath.Join(dir, "labpod"),
		image:  filepath.Join(dir, "herald.tar"),
	}
	herald := filepath.Join(dir, "herald")
	static := append(os.Environ(), "CGO_ENABLED=0")
	if err := run(root, static, "go", "build", "-trimpath", "-o", herald, "./cmd/herald"); err != nil {
		return a, err
	}
	if err := run(root, static, "go", "build", "-trimpath", "-o", a.labpod, "./test/labpod"); err != nil {
		return a, err
	}
	if err := run(root, nil, "go", "-C", "hack/chart", "build", "-o", a.chart, "."); err != nil {
		return a, err
	}
	// The image is named as `make image` names a release's (VERSION
	// v<appVersion>), and the install leaves image.* alone, as a user's
	// would: should the chart ask for another name, its Pods find no image.
	chartYAML, err := os.ReadFile(filepath.Join(root, "charts", "herald", "Chart.yaml"))
	if err != nil {
		return a, err
	}
	app := regexp.MustCompile(`(?m)^appVersion:\s*"?([^"\s]+)"?\s*$`).FindSubmatch(chartYAML)
	if app == nil {
		return a, errors.New("charts/herald/Chart.yaml: no appVersion")
	}
	version := "v" + string(app[1])
	dry, err := output(root, "make", "-s", "-n", "image", "VERSION="+version)
	if err != nil {
		return a, err
	}
	m := regexp.MustCompile(`-image '([^']+)'`).FindStringSubmatch(dry)
	if m == nil {
		return a, fmt.Errorf("make -n image: no -image in\n%s", dry)
	}
	a.imageID = m[1]
	if err := run(root, nil, "go", "-C", "hack/image", "run", ".", "-binary", herald, "-image", a.imageID, "-version", version, "-out", a.image); err != nil {
		return a, err
	}
	return a, nil
}

func run(dir string, env []string, argv ...string) error {
	_, err := outputEnv(dir, env, argv...)
	return err
}

func output(dir string, argv ...string) (string, error) { return outputEnv(dir, nil, argv...) }

func outputEnv(dir string, env []string, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// needCluster skips the test when this machine cannot run the cluster lab,
// and fails it when `make test` requires the lab.
func needCluster(t *testing.T) {
	t.Helper()
	if why := missing(testEnv); why != "" {
		msg := "the cluster lab needs " + why + " (run `make test` as root)"
		if os.Getenv("HERALD_REQUIRE_NETNS") != "" || os.Getenv("HERALD_REQUIRE_ENVTEST") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// startCluster starts a lab of real nodes and removes it when the test ends.
func startCluster(t *testing.T, nodes int, mod ...func(*lab.Options)) *lab.Lab {
	t.Helper()
	needCluster(t)
	opts := lab.Options{
		Assets: testEnv.assets,
		CRDs:   filepath.Join(testcluster.RepoRoot(), "config", "crd", "bases"),
		Nodes:  nodes,
		LogDir: t.TempDir(),
		Cluster: &lab.ClusterOptions{
			NodeAssets: testEnv.nodeAssets,
			PodBinary:  testEnv.art.labpod,
			Images:     []string{testEnv.art.image},
		},
	}
	for _, f := range mod {
		f(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	l, err := lab.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start cluster lab: %v", err)
	}
	t.Logf("%d nodes Ready in %s", nodes, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.Nodes() {
				t.Logf("--- kubelet-%s log (tail):\n%s", n.Name, l.LogTail("kubelet-"+n.Name, 20))
			}
			if out, err := l.Kubectl(context.Background(), "", "get", "pods", "-A", "-o", "wide"); err == nil {
				t.Logf("--- pods:\n%s", out)
			}
			for _, c := range []string{"speaker", "controller"} {
				out, err := l.Kubectl(context.Background(), "", "logs", "-n", lab.HeraldNamespace, "-l", "app.kubernetes.io/component="+c, "--tail", "15", "--prefix")
				t.Logf("--- %s Pods' logs (tail): %v\n%s", c, err, out)
			}
			if out, err := l.Kubectl(context.Background(), "", "get", "events", "-A", "--sort-by=.lastTimestamp"); err == nil {
				t.Logf("--- events:\n%s", tail(out, 40))
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
