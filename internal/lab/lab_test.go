package lab

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/internal/testcluster"
)

// The test binary doubles as the lab's processes: with HERALD_LAB_HELPER
// set it runs helperMain instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("HERALD_LAB_HELPER") != "" {
		os.Exit(helperMain(os.Args[1:]))
	}
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// helperMain: "serve" prints its network namespace and waits for SIGTERM;
// "fail" exits 3 at once; "lab" starts a lab, prints its id and waits to be
// killed.
func helperMain(args []string) int {
	if len(args) == 0 {
		return 2
	}
	switch args[0] {
	case "serve":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		ns, _ := os.Readlink("/proc/self/ns/net")
		fmt.Println("netns", ns, "args", strings.Join(args[1:], " "))
		<-term
		fmt.Println("terminated")
		return 0
	case "fail":
		fmt.Println("boom")
		return 3
	case "lab":
		ctrllog.SetLogger(logr.Discard())
		l, err := Start(context.Background(), Options{
			Assets: os.Getenv("KUBEBUILDER_ASSETS"), CRDs: crdDir(), Nodes: 2, NoController: true, NoSpeakers: true,
		})
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready", l.ID(), l.dir)
		select {}
	}
	return 2
}

func crdDir() string { return filepath.Join(testcluster.RepoRoot(), "config", "crd", "bases") }

// requireLab skips the test when it cannot run here (not root, tools or
// control plane missing), or fails it when HERALD_REQUIRE_NETNS is set.
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
		missing = append(missing, "KUBEBUILDER_ASSETS (hack/testenv.sh)")
	}
	if len(missing) > 0 {
		unavailable(t, "the lab needs %s", strings.Join(missing, ", "))
	}
	return assets
}

// unavailable skips a test that cannot run here, or fails it when
// HERALD_REQUIRE_NETNS is set (make test), where no lab test may be lost.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("HERALD_REQUIRE_NETNS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (HERALD_REQUIRE_NETNS=1 turns this skip into a failure)")
}

func netnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// processesMentioning lists pids whose command line contains s.
func processesMentioning(s string) []int {
	var out []int
	for _, pid := range pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, pid)
		}
	}
	return out
}

func TestLab(t *testing.T) {
	assets := requireLab(t)
	t.Setenv("HERALD_LAB_HELPER", "1") // for the processes the lab starts from this binary
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{
		Herald: self, Assets: assets, CRDs: crdDir(), LogDir: t.TempDir(),
		SpeakerArgs:    func(kc string, n Node) []string { return []string{"serve", n.Name, kc} },
		ControllerArgs: func(string) []string { return []string{"fail"} },
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	nodes := l.Nodes()

	t.Run("namespaces", func(t *testing.T) {
		have := netnsList(t)
		for _, ns := range []string{"lan", "node1", "node2", "node3", "client"} {
			if name := "hl" + l.ID() + "-" + ns; !slices.Contains(have, name) {
				t.Errorf("namespace %s missing from %v", name, have)
			}
		}
	})

	t.Run("curl reaches each node's backend", func(t *testing.T) {
		for _, n := range nodes {
			for _, a := range []string{n.IPv4.String(), n.IPv6.String()} {
				got, err := l.Curl(ctx, netip.MustParseAddr(a), 80)
				if err != nil || got != n.Name {
					t.Errorf("curl http://%s/ from the client = %q, %v; want %q", a, got, err, n.Name)
				}
			}
		}
		c := l.HTTPClient(2 * time.Second)
		if got, err := l.Get(ctx, c, nodes[1].IPv6, 80); err != nil || got != "node2" {
			t.Errorf("Go client from the client namespace to [%s]:80 = %q, %v; want node2", nodes[1].IPv6, got, err)
		}
	})

	t.Run("kubectl in a node reaches the API server through the forwarder", func(t *testing.T) {
		out, err := l.KubectlIn(ctx, "node2", "", "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.addresses[0].address} {.status.conditions[0].status}{\"\\n\"}{end}")
		if err != nil {
			t.Fatal(err)
		}
		want := "node1 192.0.2.11 True\nnode2 192.0.2.12 True\nnode3 192.0.2.13 True\n"
		if out != want {
			t.Errorf("nodes seen from node2:\n%s\nwant:\n%s", out, want)
		}
	})

	t.Run("only the node's own addresses get ARP and NDP answers from its kernel", func(t *testing.T) {
		for _, a := range []string{nodes[0].IPv4.String(), nodes[0].IPv6.String()} {
			macs, err := l.Neighbors(ctx, netip.MustParseAddr(a))
			if err != nil || len(macs) != 1 || macs[0].String() != nodes[0].MAC.String() {
				t.Errorf("who has %s: %v, %v; want node1's %s only", a, macs, err, nodes[0].MAC)
			}
		}
		// A Service with addresses but nobody announcing them: the nodes
		// hold them on kube-ipvs0, and with strict ARP stay silent.
		svc, err := l.CreateService(ctx, Service{Name: "quiet", Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}})
		if err != nil {
			t.Fatal(err)
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.201"}, {IP: "2001:db8::201"}}
		if _, err := l.Client().CoreV1().Services("default").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		addrs, err := l.WaitAddresses(wctx, "default", "quiet")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			out, err := exec.Command("ip", "-n", n.Namespace, "addr", "show", "dev", kubeIPVS).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "192.0.2.201/32") || !strings.Contains(string(out), "2001:db8::201/128") {
				t.Errorf("%s %s: %v\n%s", n.Name, kubeIPVS, err, out)
			}
		}
		for _, a := range addrs {
			if macs, err := l.Neighbors(ctx, a); err != nil || len(macs) != 0 {
				t.Errorf("who has %s: %v, %v; want no answer (strict ARP, no speaker)", a, macs, err)
			}
		}
		// Both families' slices, on every node, ready.
		es, err := l.Client().DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=quiet"})
		if err != nil || len(es.Items) != 2 || len(es.Items[0].Endpoints) != 3 {
			t.Errorf("endpoint slices of quiet: %v, %+v", err, es)
		}
		if err := l.SetEndpoints(ctx, "default", "quiet", "node2"); err != nil {
			t.Fatal(err)
		}
		es, err = l.Client().DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=quiet"})
		if err != nil || len(es.Items) != 2 || len(es.Items[1].Endpoints) != 1 || *es.Items[1].Endpoints[0].NodeName != "node2" {
			t.Errorf("endpoint slices of quiet after SetEndpoints(node2): %v, %+v", err, es)
		}
	})

	t.Run("probe sees a cut link and its repair", func(t *testing.T) {
		p := l.Probe(ctx, nodes[2].IPv4, 80, 10*time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		if err := l.CutLink("node3"); err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		time.Sleep(500 * time.Millisecond)
		if err := l.RestoreLink("node3"); err != nil {
			t.Fatal(err)
		}
		restored := time.Now()
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		if _, err := p.Wait(wctx, func(s Sample) bool { return s.Err == nil && s.Start.After(restored) }); err != nil {
			t.Fatalf("no answer after the link came back: %v", err)
		}
		samples := p.Stop()
		var failed int
		for _, s := range samples {
			if s.Err == nil && s.Node != "node3" {
				t.Errorf("answer from %q, want node3", s.Node)
			}
			if s.Err != nil {
				failed++
			}
		}
		gap := LongestOutage(samples)
		if gap < 500*time.Millisecond || gap > 3*time.Second {
			t.Errorf("longest outage %s for a 500ms cut", gap)
		}
		if _, _, ok := Failover(samples, cut, "node3"); ok {
			t.Error("Failover found another node, but only node3 has the address")
		}
		t.Logf("%d samples, %d failed, longest outage %s", len(samples), failed, gap)
	})

	t.Run("speaker processes", func(t *testing.T) {
		var st syscall.Stat_t
		if err := syscall.Stat(namespacePath(nodes[0].Namespace), &st); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("netns net:[%d] args node1 %s", st.Ino, l.Kubeconfig())
		waitLog(t, l, "speaker-node1", want)
		if err := l.StopSpeaker("node1", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		waitLog(t, l, "speaker-node1", "terminated")
		if err := l.StartSpeaker("node1"); err != nil {
			t.Fatal(err)
		}
		if err := l.StartSpeaker("node1"); err == nil {
			t.Error("a second speaker on node1 started")
		}
		if err := l.KillSpeaker("node2"); err != nil {
			t.Fatal(err)
		}
		// The controller stand-in exits 3 by itself: the only failure.
		err := l.CheckProcesses()
		if err == nil || !strings.Contains(err.Error(), "controller exited") || !strings.Contains(err.Error(), "boom") || strings.Contains(err.Error(), "speaker") {
			t.Errorf("CheckProcesses = %v; want the controller's exit only", err)
		}
	})

	dir := l.dir
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	t.Run("close removes everything", func(t *testing.T) {
		for _, ns := range netnsList(t) {
			if strings.HasPrefix(ns, "hl"+l.ID()) {
				t.Errorf("namespace %s left after Close", ns)
			}
		}
		if pids := processesMentioning(dir); len(pids) > 0 {
			t.Errorf("processes left after Close: %v", pids)
		}
		for _, p := range []string{dir, l.statePath} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s left after Close (%v)", p, err)
			}
		}
	})
}

func waitLog(t *testing.T, l *Lab, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.LogTail(name, 50), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log of %s lacks %q:\n%s", name, want, l.LogTail(name, 50))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDownAfterKill(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// A lab in a process of its own, killed the hard way.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, self, "lab")
	cmd.Env = append(os.Environ(), "HERALD_LAB_HELPER=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper lab: %q, %v", line, err)
	}
	id, dir := f[1], f[2]
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// What a killed lab leaves: its namespaces, etcd and kube-apiserver.
	var leftNS []string
	for _, ns := range netnsList(t) {
		if strings.HasPrefix(ns, "hl"+id+"-") {
			leftNS = append(leftNS, ns)
		}
	}
	if len(leftNS) != 4 {
		t.Errorf("namespaces of the killed lab: %v, want 4", leftNS)
	}
	if pids := processesMentioning(dir); len(pids) < 2 {
		t.Errorf("processes of the killed lab: %v, want etcd and kube-apiserver", pids)
	}
	// And a namespace named like a lab's, with no state file at all.
	stray := "hl" + strings.Repeat("0", 5) + "f-node1"
	if out, err := exec.Command("ip", "netns", "add", stray).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", stray, err, out)
	}
	t.Cleanup(func() { _ = deleteNamespace(stray) })

	rep, err := Down(ctx, DefaultStateDir, false)
	if err != nil {
		t.Fatalf("Down: %v", err)
	}
	if !slices.Contains(rep.Labs, id) {
		t.Errorf("Down removed labs %v, want %s among them", rep.Labs, id)
	}
	for _, ns := range netnsList(t) {
		if strings.HasPrefix(ns, "hl"+id+"-") || ns == stray {
			t.Errorf("namespace %s left after Down", ns)
		}
	}
	if pids := processesMentioning(dir); len(pids) > 0 {
		t.Errorf("processes left after Down: %v", pids)
	}
	for _, p := range []string{dir, filepath.Join(DefaultStateDir, id+".json")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after Down (%v)", p, err)
		}
	}
}

func TestDownLeavesRunningLabs(t *testing.T) {
	assets := requireLab(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{Assets: assets, CRDs: crdDir(), Nodes: 1, NoController: true, NoSpeakers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := Down(ctx, DefaultStateDir, false)
	if err != nil {
		t.Fatalf("Down: %v", err)
	}
	if !slices.Contains(rep.Live, l.ID()) || slices.Contains(rep.Labs, l.ID()) {
		t.Errorf("Down report %+v: want lab %s left alone as live", rep, l.ID())
	}
	have := netnsList(t)
	for _, ns := range l.Namespaces() {
		if !slices.Contains(have, ns) {
			t.Errorf("Down deleted %s of a running lab", ns)
		}
	}
	if got, err := l.Curl(ctx, l.Nodes()[0].IPv4, 80); err != nil || got != "node1" {
		t.Errorf("after Down, curl node1 = %q, %v", got, err)
	}
}
