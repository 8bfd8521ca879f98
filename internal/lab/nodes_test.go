package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/testcluster"
)

// requireCluster skips (or, under `make test`, fails) when real nodes
// cannot run here, and returns cluster options with a freshly built labpod.
func requireCluster(t *testing.T) (assets string, o *ClusterOptions) {
	t.Helper()
	assets = requireLab(t)
	nodes := os.Getenv("HERALD_NODE_ASSETS")
	if nodes == "" {
		unavailable(t, "real nodes need HERALD_NODE_ASSETS=$(hack/testenv.sh nodes)")
	}
	o = &ClusterOptions{NodeAssets: nodes, PodBinary: filepath.Join(t.TempDir(), "labpod")}
	if err := clusterPreflight(&ClusterOptions{NodeAssets: nodes, PodBinary: os.Args[0]}); err != nil {
		unavailable(t, "%v", err)
	}
	cmd := exec.Command("go", "build", "-o", o.PodBinary, "./test/labpod")
	cmd.Dir, cmd.Env = testcluster.RepoRoot(), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build labpod: %v\n%s", err, out)
	}
	return assets, o
}

// TestClusterNode brings up one real node and checks what Herald's Pods
// rely on: the Node goes Ready, a Pod runs and is reached at its address
// and through its Service's ClusterIP (kube-proxy), the API server reaches
// the kubelet (logs go through the lab's egress proxy), Pods reach the API
// server through the kubernetes Service; and Close leaves no cgroup,
// process, mount or changed kernel setting behind.
func TestClusterNode(t *testing.T) {
	assets, co := requireCluster(t)
	before := readTunables(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	l, err := Start(ctx, Options{Assets: assets, CRDs: crdDir(), Nodes: 1, LogDir: t.TempDir(), Cluster: co})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("node Ready in %s", time.Since(start).Round(time.Millisecond))
	dir, id := l.dir, l.id
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
	}()
	defer func() {
		if t.Failed() {
			for _, p := range []string{"kubelet-node1", "containerd-node1", "kube-proxy-node1", "kube-controller-manager"} {
				t.Logf("--- %s:\n%s", p, l.LogTail(p, 25))
			}
		}
	}()

	if err := l.CreateBackends(ctx, "web", corev1.ServiceExternalTrafficPolicyCluster); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	waitFor(ctx, t, "backend Pod Running and Ready", func() bool {
		pods, err := l.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) != 1 {
			return false
		}
		pod = pods.Items[0]
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
	if ip, err := netip.ParseAddr(pod.Status.PodIP); err != nil || !PodCIDR(1).Contains(ip) {
		t.Errorf("Pod address %s is not in node1's range %s", pod.Status.PodIP, PodCIDR(1))
	}
	svc, err := l.client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.NodeHTTPClient("node1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "node1 " + pod.Name
	if body, err := httpGet(c, "http://"+pod.Status.PodIP+":8080/"); err != nil || body != want {
		t.Errorf("GET the Pod from node1: %q, %v; want %q", body, err, want)
	}
	// kube-proxy programs the ClusterIP once the endpoint is in its slice.
	var last string
	waitFor(ctx, t, "the ClusterIP answers through kube-proxy", func() bool {
		body, err := httpGet(c, "http://"+svc.Spec.ClusterIP+"/")
		last = fmt.Sprintf("%q, %v", body, err)
		return err == nil && body == want
	})
	t.Logf("ClusterIP %s: %s", svc.Spec.ClusterIP, last)
	if _, err := l.Kubectl(ctx, "", "logs", "-n", "default", pod.Name); err != nil {
		t.Errorf("kubectl logs (API server to kubelet): %v", err)
	}

	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	checkNodesGone(t, id, dir, before)
}

func waitFor(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: timed out", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func httpGet(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// readTunables returns the kernel settings from before any cluster lab ran:
// the shared record's while other labs hold it, else the current ones.
func readTunables(t *testing.T) map[string]string {
	t.Helper()
	var rec tunables
	if b, err := os.ReadFile(filepath.Join(DefaultStateDir, tunablesFile)); err == nil {
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		return rec.Original
	}
	return currentTunables(t)
}

func currentTunables(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range kernelTunables {
		b, err := os.ReadFile(sysctlPath(k))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = strings.TrimSpace(string(b))
	}
	return out
}

// checkNodesGone fails for anything of lab id's nodes still around.
func checkNodesGone(t *testing.T, id, dir string, tunables map[string]string) {
	t.Helper()
	// Restored once no other cluster lab (another test package) holds them.
	b, err := os.ReadFile(filepath.Join(DefaultStateDir, tunablesFile))
	switch {
	case err == nil && strings.Contains(string(b), strconv.Quote(dir)):
		t.Errorf("lab %s still holds the kernel settings: %s", id, b)
	case err != nil:
		if after := currentTunables(t); fmt.Sprint(after) != fmt.Sprint(tunables) {
			t.Errorf("kernel settings not restored: %v, were %v", after, tunables)
		}
	}
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		if left, _ := filepath.Glob(filepath.Join(m, "herald-lab-"+id+"-*")); len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
	}
	if pids := processesMentioning(dir + "/"); len(pids) > 0 {
		t.Errorf("processes left: %v", pids)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), dir) {
			t.Errorf("mount left: %s", sc.Text())
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("folder %s left", dir)
	}
}

// TestClusterDownAfterKill: a cluster lab whose process is killed with
// SIGKILL, with a Pod running, is removed by Down: processes, containers,
// cgroups, mounts, namespaces, and the kernel settings are restored.
func TestClusterDownAfterKill(t *testing.T) {
	if os.Getenv("HERALD_LAB_CLUSTER_HELPER") != "" {
		clusterHelper(t)
		return
	}
	_, co := requireCluster(t)
	before := readTunables(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestClusterDownAfterKill$", "-test.timeout", "5m")
	cmd.Env = append(os.Environ(), "HERALD_LAB_CLUSTER_HELPER=1", "HERALD_LAB_PODBIN="+co.PodBinary)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id, dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "cluster-lab" {
			id, dir = f[1], f[2]
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if id == "" {
		t.Fatal("the helper never reported a running cluster lab")
	}
	// The shared state folder: Down must see every other lab running on
	// this machine to leave it alone.
	rep, err := Down(context.Background(), DefaultStateDir, false)
	if err != nil {
		t.Fatalf("down: %v", err)
	}
	t.Logf("down: labs %v, killed %d processes, namespaces %v", rep.Labs, len(rep.Killed), rep.Namespaces)
	checkNodesGone(t, id, dir, before)
}

// clusterHelper starts a one-node cluster lab with a running Pod, prints
// its id and folder, and waits to be killed.
func clusterHelper(t *testing.T) {
	ctx := context.Background()
	l, err := Start(ctx, Options{
		Assets: os.Getenv("KUBEBUILDER_ASSETS"), CRDs: crdDir(), Nodes: 1,
		Cluster: &ClusterOptions{NodeAssets: os.Getenv("HERALD_NODE_ASSETS"), PodBinary: os.Getenv("HERALD_LAB_PODBIN")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateBackends(ctx, "web", corev1.ServiceExternalTrafficPolicyCluster); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "backend Ready", func() bool {
		ds, err := l.client.AppsV1().DaemonSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && ds.Status.NumberReady == 1
	})
	fmt.Printf("cluster-lab %s %s\n", l.id, l.dir)
	select {}
}
