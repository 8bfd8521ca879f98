package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/manifest"
)

func TestRouterFRRConfig(t *testing.T) {
	l := &Lab{id: "abcdef", opts: Options{Nodes: 2, RouterASN: 65001, NodeASN: 65002}}
	l.planMembers()
	l.planRouter()
	tests := []struct {
		name          string
		bfd           bool
		password      string
		want, wantNot []string
	}{
		{
			name: "plain",
			want: []string{
				"router bgp 65001\n", " bgp router-id 192.0.2.1\n", " no bgp ebgp-requires-policy\n",
				" bgp bestpath as-path multipath-relax\n",
				" neighbor 192.0.2.11 remote-as 65002\n", " neighbor 192.0.2.12 remote-as 65002\n",
				" neighbor 2001:db8::11 remote-as 65002\n", " neighbor 2001:db8::12 remote-as 65002\n",
				" address-family ipv4 unicast\n  neighbor 192.0.2.11 activate\n  neighbor 192.0.2.12 activate\n  maximum-paths 8\n",
				" address-family ipv6 unicast\n  neighbor 2001:db8::11 activate\n  neighbor 2001:db8::12 activate\n  maximum-paths 8\n",
			},
			wantNot: []string{"192.0.2.13", " bfd", "password"},
		},
		{
			name: "bfd and password", bfd: true, password: "s3cret",
			want: []string{
				" neighbor 192.0.2.11 bfd\n", " neighbor 2001:db8::12 bfd\n",
				" neighbor 192.0.2.12 password s3cret\n", " neighbor 2001:db8::11 password s3cret\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l.opts.RouterBFD, l.opts.RouterPassword = tt.bfd, tt.password
			conf := l.frrConfig()
			for _, w := range tt.want {
				if !strings.Contains(conf, w) {
					t.Errorf("configuration lacks %q:\n%s", w, conf)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(conf, w) {
					t.Errorf("configuration has %q:\n%s", w, conf)
				}
			}
		})
	}
}

func TestBGPConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"defaults", BGPConfig(), []string{
			"kind: BGPPeer", "myASN: 64500", "peerASN: 64501", "peerAddress: 192.0.2.1", "peerAddress: 2001:db8::1",
			"- " + BGPPool4, "- " + BGPPool6, "aggregationLength: 32", "localPref: 100", "- 65535:65282",
		}},
		{"options", (&Lab{opts: Options{NodeASN: 65010, RouterASN: 65020, RouterBFD: true, RouterPassword: "pw"}}).RouterBGPConfig(), []string{
			"myASN: 65010", "peerASN: 65020", `password: "pw"`, "kind: BFDProfile", "bfdProfile: router",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				if !strings.Contains(tt.yaml, w) {
					t.Errorf("configuration lacks %q:\n%s", w, tt.yaml)
				}
			}
			// The same checks the controller makes, offline.
			rep := manifest.Validate([]manifest.Source{{Name: "bgp.yaml", Data: []byte(tt.yaml)}}, HeraldNamespace)
			if len(rep.Problems) > 0 || rep.Objects < 4 {
				t.Errorf("%d objects, problems %+v:\n%s", rep.Objects, rep.Problems, tt.yaml)
			}
		})
	}
}

// requireRouter is requireLab plus FRR and GoBGP (the nodes' stand-in
// BGP speakers).
func requireRouter(t *testing.T) string {
	t.Helper()
	assets := requireLab(t)
	var missing []string
	if err := routerPreflight(); err != nil {
		missing = append(missing, err.Error())
	}
	for _, tool := range []string{"gobgpd", "gobgp"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" (Debian: apt-get install gobgpd)")
		}
	}
	if len(missing) > 0 {
		unavailable(t, "the router test needs %s", strings.Join(missing, ", "))
	}
	return assets
}

// gobgp is a GoBGP speaker in a node, standing in for Herald's.
type gobgp struct {
	l    *Lab
	node Node
}

// startGoBGP runs gobgpd in the node's namespace, peering with the
// router over both families.
func startGoBGP(t *testing.T, l *Lab, node Node, password string) *gobgp {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[global.config]\n  as = %d\n  router-id = %q\n", l.opts.NodeASN, node.IPv4)
	for _, p := range []struct {
		addr netip.Addr
		afi  string
	}{{l.RouterNode().IPv4, "ipv4-unicast"}, {l.RouterNode().IPv6, "ipv6-unicast"}} {
		fmt.Fprintf(&b, "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = %d\n", p.addr, l.opts.RouterASN)
		if password != "" {
			fmt.Fprintf(&b, "    auth-password = %q\n", password)
		}
		fmt.Fprintf(&b, "  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    keepalive-interval = 3\n")
		fmt.Fprintf(&b, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", p.afi)
	}
	conf := filepath.Join(t.TempDir(), "gobgpd.toml")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "gobgpd-" + node.Name
	err := l.startProcess(name, node.Namespace, []string{"gobgpd", "-f", conf, "-t", "toml", "-p",
		"--api-hosts", "127.0.0.1:50051", "--pprof-disable"})
	if err != nil {
		t.Fatal(err)
	}
	return &gobgp{l: l, node: node}
}

// rib adds ("add") or withdraws ("del") a prefix, retrying while gobgpd
// starts.
func (g *gobgp) rib(ctx context.Context, t *testing.T, op string, p netip.Prefix) {
	t.Helper()
	afi := "ipv4"
	if p.Addr().Is6() {
		afi = "ipv6"
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", g.node.Namespace,
			"gobgp", "-u", "127.0.0.1", "-p", "50051", "global", "rib", op, "-a", afi, p.String()).CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: gobgp global rib %s %s: %v: %s\n%s", g.node.Name, op, p, err, out, g.l.LogTail("gobgpd-"+g.node.Name, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitRoutes(ctx context.Context, t *testing.T, l *Lab, p netip.Prefix, want ...netip.Addr) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hops, err := l.WaitRouterRoutes(wctx, p, len(want))
	if err != nil {
		t.Fatalf("%v\n%s", err, gobgpLogs(l))
	}
	if !slices.Equal(hops, want) {
		t.Fatalf("next hops of %s in the router: %v, want %v", p, hops, want)
	}
}

func gobgpLogs(l *Lab) string {
	var b strings.Builder
	for _, n := range l.Nodes() {
		if tail := l.LogTail("gobgpd-"+n.Name, 10); tail != "" {
			fmt.Fprintf(&b, "end of gobgpd-%s:\n%s\n", n.Name, indent(tail))
		}
	}
	return b.String()
}

func sysctlIn(t *testing.T, ns, key string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s: %v: %s", ns, key, err, out)
	}
	return strings.TrimSpace(string(out))
}

// frrInRootNamespace lists FRR daemons running in the root namespace.
func frrInRootNamespace() []int {
	root, _ := os.Readlink("/proc/1/ns/net")
	var out []int
	for _, pid := range pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err == nil && strings.HasPrefix(string(b), frrBin+"/") && ns == root {
			out = append(out, pid)
		}
	}
	return out
}

func TestRouter(t *testing.T) {
	assets := requireRouter(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const password = "herald-lab"
	l, err := Start(ctx, Options{
		Assets: assets, CRDs: crdDir(), LogDir: t.TempDir(), NoController: true, NoSpeakers: true,
		Router: true, RouterBFD: true, RouterPassword: password,
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
	router, remote := l.RouterNode(), l.RemoteNode()

	t.Run("namespaces and forwarding", func(t *testing.T) {
		have := netnsList(t)
		for _, ns := range []string{router.Namespace, remote.Namespace} {
			if !slices.Contains(have, ns) || !slices.Contains(l.Namespaces(), ns) {
				t.Errorf("namespace %s: in ip netns %v, in the lab's %v", ns, have, l.Namespaces())
			}
		}
		for _, key := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding",
			"net.ipv4.fib_multipath_hash_policy", "net.ipv6.fib_multipath_hash_policy"} {
			if got := sysctlIn(t, router.Namespace, key); got != "1" {
				t.Errorf("%s in the router = %s, want 1", key, got)
			}
			if got := sysctlIn(t, nodes[0].Namespace, key); got != "0" {
				t.Errorf("%s in node1 = %s, want 0: the router's settings leaked", key, got)
			}
		}
	})

	t.Run("FRR answers", func(t *testing.T) {
		out, err := l.Vtysh(ctx, "show bgp summary json")
		if err != nil {
			t.Fatal(err)
		}
		var sum struct {
			IPv4 struct {
				RouterID string                     `json:"routerId"`
				AS       int                        `json:"as"`
				Peers    map[string]json.RawMessage `json:"peers"`
			} `json:"ipv4Unicast"`
			IPv6 struct {
				Peers map[string]json.RawMessage `json:"peers"`
			} `json:"ipv6Unicast"`
		}
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("show bgp summary json: %v\n%s", err, out)
		}
		if sum.IPv4.RouterID != "192.0.2.1" || sum.IPv4.AS != DefaultRouterASN || len(sum.IPv4.Peers) != 3 || len(sum.IPv6.Peers) != 3 {
			t.Errorf("router id %s, AS %d, %d IPv4 and %d IPv6 peers; want 192.0.2.1, %d, 3 and 3\n%s",
				sum.IPv4.RouterID, sum.IPv4.AS, len(sum.IPv4.Peers), len(sum.IPv6.Peers), DefaultRouterASN, out)
		}
		out, err = l.Vtysh(ctx, "show bfd peers json")
		if err != nil {
			t.Fatal(err)
		}
		var peers []struct {
			Peer string `json:"peer"`
		}
		if err := json.Unmarshal([]byte(out), &peers); err != nil || len(peers) != 6 {
			t.Errorf("show bfd peers json: %v; want 6 peers (bgpd's neighbours with bfd)\n%s", err, out)
		}
		if pids := frrInRootNamespace(); len(pids) > 0 {
			t.Errorf("FRR daemons in the root namespace: %v", pids)
		}
	})

	t.Run("remote reaches a node through the router", func(t *testing.T) {
		for _, a := range []netip.Addr{nodes[0].IPv4, nodes[0].IPv6} {
			if got, err := l.CurlFromRemote(ctx, a, 80); err != nil || got != "node1" {
				t.Errorf("curl %s from the remote = %q, %v; want node1", a, got, err)
			}
		}
	})

	// Two GoBGP speakers stand in for Herald's on node1 and node2.
	p4, p6 := netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("2001:db8:203::7/128")
	speakers := []*gobgp{startGoBGP(t, l, nodes[0], password), startGoBGP(t, l, nodes[1], password)}

	t.Run("one node advertises: one next hop", func(t *testing.T) {
		speakers[0].rib(ctx, t, "add", p4)
		speakers[0].rib(ctx, t, "add", p6)
		waitRoutes(ctx, t, l, p4, nodes[0].IPv4)
		waitRoutes(ctx, t, l, p6, nodes[0].IPv6)
	})

	t.Run("two nodes advertise: multipath", func(t *testing.T) {
		speakers[1].rib(ctx, t, "add", p4)
		speakers[1].rib(ctx, t, "add", p6)
		waitRoutes(ctx, t, l, p4, nodes[0].IPv4, nodes[1].IPv4)
		waitRoutes(ctx, t, l, p6, nodes[0].IPv6, nodes[1].IPv6)
		sessions, err := l.RouterSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes[:2] {
			for _, a := range []netip.Addr{n.IPv4, n.IPv6} {
				if sessions[a] != "Established" {
					t.Errorf("session with %s: %q, want Established (all: %v)", a, sessions[a], sessions)
				}
			}
		}
		if s := sessions[nodes[2].IPv4]; s == "Established" {
			t.Errorf("session with node3, which runs no speaker: %s", s)
		}
		out, _ := l.routerIP(ctx, "route", "show", "proto", "bgp")
		t.Logf("the router's BGP routes:\n%s", out)
	})

	t.Run("a wrong password gets no session", func(t *testing.T) {
		wrong := startGoBGP(t, l, nodes[2], "not-"+password)
		wrong.rib(ctx, t, "add", p4)
		// gobgpd retries every second, FRR accepts at once: without TCP MD5
		// the session would be up well within this.
		time.Sleep(5 * time.Second)
		sessions, err := l.RouterSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s := sessions[nodes[2].IPv4]; s == "Established" {
			t.Errorf("session with node3, which has the wrong password: %s", s)
		}
		if hops, err := l.RouterRoutes(ctx, p4); err != nil || len(hops) != 2 {
			t.Errorf("next hops of %s: %v, %v; want node1 and node2 only", p4, hops, err)
		}
		if err := l.stop("gobgpd-node3", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("three nodes advertise: three next hops", func(t *testing.T) {
		speakers = append(speakers, startGoBGP(t, l, nodes[2], password))
		speakers[2].rib(ctx, t, "add", p4)
		speakers[2].rib(ctx, t, "add", p6)
		waitRoutes(ctx, t, l, p4, nodes[0].IPv4, nodes[1].IPv4, nodes[2].IPv4)
		waitRoutes(ctx, t, l, p6, nodes[0].IPv6, nodes[1].IPv6, nodes[2].IPv6)
	})

	t.Run("next hops behind a nexthop object", func(t *testing.T) {
		// Without compat mode the kernel lists such routes by group id
		// only; RouterRoutes then resolves the group.
		if _, err := os.Stat("/proc/sys/net/ipv4/nexthop_compat_mode"); err != nil {
			unavailable(t, "no nexthop compat mode to turn off: %v", err)
		}
		if err := writeSysctls(l.router.ns, "net.ipv4.nexthop_compat_mode", "0"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := writeSysctls(l.router.ns, "net.ipv4.nexthop_compat_mode", "1"); err != nil {
				t.Error(err)
			}
		}()
		out, _ := l.routerIP(ctx, "route", "show", "exact", p4.String())
		if strings.Contains(out, "nexthop via") {
			unavailable(t, "the kernel lists the next hops anyway, so group resolution goes untested:\n%s", out)
		}
		want := []netip.Addr{nodes[0].IPv4, nodes[1].IPv4, nodes[2].IPv4}
		if hops, err := l.RouterRoutes(ctx, p4); err != nil || !slices.Equal(hops, want) {
			t.Errorf("next hops of %s (%s): %v, %v; want %v", p4, strings.TrimSpace(out), hops, err, want)
		}
	})

	t.Run("requests from the remote land on every node", func(t *testing.T) {
		// The kube-proxy stand-in puts the Service's address on every
		// node's kube-ipvs0; only the router's routes decide who answers.
		svc, err := l.CreateService(ctx, Service{Name: "bgp", Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}})
		if err != nil {
			t.Fatal(err)
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: p4.Addr().String()}, {IP: p6.Addr().String()}}
		if _, err := l.Client().CoreV1().Services("default").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if _, err := l.WaitAddresses(wctx, "default", "bgp"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []netip.Prefix{p4, p6} {
			// With L4 hashing, a node gets none of 60 new connections
			// with odds of about 1e-10.
			counts, err := l.SpreadFromRemote(ctx, p.Addr(), 80, 60)
			if err != nil {
				t.Fatalf("%v (answers so far %v)", err, counts)
			}
			if counts["node1"] == 0 || counts["node2"] == 0 || counts["node3"] == 0 || len(counts) != 3 {
				t.Errorf("60 requests to %s from the remote answered by %v; want node1, node2 and node3", p.Addr(), counts)
			}
			t.Logf("%s: %v", p.Addr(), counts)
		}
	})

	t.Run("withdrawals", func(t *testing.T) {
		speakers[0].rib(ctx, t, "del", p4)
		speakers[2].rib(ctx, t, "del", p4)
		waitRoutes(ctx, t, l, p4, nodes[1].IPv4)
		if got, err := l.CurlFromRemote(ctx, p4.Addr(), 80); err != nil || got != "node2" {
			t.Errorf("curl %s from the remote = %q, %v; want node2, the only one left", p4.Addr(), got, err)
		}
		speakers[1].rib(ctx, t, "del", p4)
		waitRoutes(ctx, t, l, p4)
		// A speaker that dies takes its routes along (once the session ends).
		if err := l.stop("gobgpd-node2", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		waitRoutes(ctx, t, l, p6, nodes[0].IPv6, nodes[2].IPv6)
	})

	if err := l.CheckProcesses(); err != nil {
		t.Errorf("lab processes: %v", err)
	}
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
		for _, s := range []string{dir, "hl" + l.ID()} {
			if pids := processesMentioning(s); len(pids) > 0 {
				t.Errorf("processes mentioning %s left after Close: %v", s, pids)
			}
		}
		if pids := frrInRootNamespace(); len(pids) > 0 {
			t.Errorf("FRR daemons in the root namespace: %v", pids)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left after Close (%v)", dir, err)
		}
	})
}

// TestRouterDown checks that what Down does for a lab whose process died
// also removes the router: FRR, the two namespaces and FRR's folder.
func TestRouterDown(t *testing.T) {
	assets := requireRouter(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{Assets: assets, CRDs: crdDir(), Nodes: 1, NoController: true, NoSpeakers: true, Router: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	frrDir := l.frrDir
	if pids := processesMentioning(frrDir); len(pids) != 3 {
		t.Fatalf("FRR daemons mentioning %s: %v, want 3", frrDir, pids)
	}
	var rep DownReport
	if err := removeLab(ctx, l.state(), &rep); err != nil {
		t.Fatalf("removeLab: %v", err)
	}
	for _, ns := range []string{l.RouterNode().Namespace, l.RemoteNode().Namespace} {
		if !slices.Contains(rep.Namespaces, ns) {
			t.Errorf("Down did not delete %s: %+v", ns, rep)
		}
	}
	if pids := processesMentioning(frrDir); len(pids) > 0 {
		t.Errorf("FRR daemons left after Down: %v", pids)
	}
	if _, err := os.Stat(frrDir); !os.IsNotExist(err) {
		t.Errorf("%s left after Down (%v)", frrDir, err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after Down: %v", err)
	}
}
