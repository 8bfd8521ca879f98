package cluster

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/seeds"
	"github.com/herald-lb/herald/internal/testcluster"
)

// seed002Values is what seed 002's HelmRelease gives Helm: its ConfigMap's
// values.yaml, MetalLB's defaults with the one change the write-up makes,
// speakers tolerating the masters' taint. speaker.tolerations means the
// same in Herald's chart.
const seed002Values = `speaker:
  tolerations:
  - key: node-role.kubernetes.io/master
    effect: NoSchedule
`

// TestSeed002HelmValues follows seed 002 (MetalLB via a Flux HelmRelease,
// BGP to two firewalls): Helm's install action with the HelmRelease's
// release name and values, --wait, then the seed's configuration as
// written, its addresses moved into the lab (pool 192.168.32.0/24 to
// 203.0.113.0/24; peers 192.168.33.2 and .4 to the lab router's IPv4 and
// IPv6 addresses; the AS numbers are the lab's already). Once each state is
// reached it is sampled, never waited out: the first Service has the
// pool's first address, the router has it as a /32 from all three nodes
// with community 65535:65282, the remote subnet reaches Pods through the
// router, and, the L2Advertisement covering the same pool, exactly one
// node answers ARP for it on the LAN.
//
// The seed's nodes have the firewalls as their default gateway; the lab's
// nodes get the router as theirs, or the address, in no subnet of theirs,
// would be answered on no interface (docs/layer2.md, Interfaces).
func TestSeed002HelmValues(t *testing.T) {
	l := startCluster(t, 3, func(o *lab.Options) { o.Router = true })
	ctx := ctxT(t, 3*time.Minute)
	gateway(t, l)
	helm(t, l, "install", seed002Values, "-release", "metallb")
	tolerated(t, l, corev1.Toleration{Key: "node-role.kubernetes.io/master", Effect: corev1.TaintEffectNoSchedule})

	router := l.RouterNode()
	config := strings.NewReplacer(
		"peerAddress: 192.168.33.2", "peerAddress: "+router.IPv4.String(),
		"peerAddress: 192.168.33.4", "peerAddress: "+router.IPv6.String(),
		"192.168.32.0/24", lab.BGPPool4,
	).Replace(seed002(t).Raw)
	if err := l.Apply(ctx, config); err != nil {
		t.Fatal(err)
	}

	addr := backends(t, l, "web", corev1.ServiceExternalTrafficPolicyCluster)
	if first := netip.MustParsePrefix(lab.BGPPool4).Addr(); addr != first {
		t.Fatalf("first Service got %s, want the pool's first address %s (the seed's 192.168.32.0)", addr, first)
	}
	host := netip.PrefixFrom(addr, 32)
	hops, err := l.WaitRouterRoutes(ctxT(t, time.Minute), host, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("router: %s via %v", host, hops)
	communities(t, l, host, "no-advertise") // FRR's name for 65535:65282

	spread, err := l.SpreadFromRemote(ctx, addr, 80, 10)
	if err != nil {
		t.Fatalf("from the remote subnet: %v (answers so far %v)", err, spread)
	}
	for body := range spread {
		if _, ok := parseAnswer(body); !ok {
			t.Fatalf("answer %q from the remote is not a backend's", body)
		}
	}
	t.Logf("10 requests from the remote: %v", spread)

	onlyAnnouncer(t, l, addr)
}

// gateway gives every node the seed's default route, via the lab router.
func gateway(t *testing.T, l *lab.Lab) {
	t.Helper()
	via := l.RouterNode().IPv4.String()
	for _, n := range l.Nodes() {
		if out, err := exec.Command("ip", "-n", n.Namespace, "route", "add", "default", "via", via).CombinedOutput(); err != nil {
			t.Fatalf("%s: default route via %s: %v: %s", n.Name, via, err, out)
		}
	}
}

func seed002(t *testing.T) seeds.File {
	t.Helper()
	for _, f := range seeds.ForTest(t, testcluster.RepoRoot()) {
		if f.Name == "002-bgp-flux-helm.yaml" {
			return f
		}
	}
	t.Fatal("seed 002-bgp-flux-helm.yaml not found")
	return seeds.File{}
}

// tolerated checks that the values reached the speaker DaemonSet.
func tolerated(t *testing.T, l *lab.Lab, want corev1.Toleration) {
	t.Helper()
	ds, err := l.Client().AppsV1().DaemonSets(lab.HeraldNamespace).List(ctxT(t, 30*time.Second),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=speaker"})
	if err != nil || len(ds.Items) != 1 {
		t.Fatalf("speaker DaemonSet: %v (%d found)", err, len(ds.Items))
	}
	got := ds.Items[0].Spec.Template.Spec.Tolerations
	if !slices.ContainsFunc(got, func(x corev1.Toleration) bool { return x.MatchToleration(&want) }) {
		t.Fatalf("speaker tolerations %v lack the values' %v", got, want)
	}
}

// communities checks, in one sample of the router's BGP table, that every
// path of prefix carries community.
func communities(t *testing.T, l *lab.Lab, prefix netip.Prefix, community string) {
	t.Helper()
	paths, out, err := l.RouterPaths(ctxT(t, 10*time.Second), prefix)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(paths) != 3 {
		t.Fatalf("%d paths for %s, want one from each node:\n%s", len(paths), prefix, out)
	}
	for _, p := range paths {
		if p.Community != community {
			t.Errorf("path via %v has community %q, want %q", p.NextHops, p.Community, community)
		}
	}
}

// onlyAnnouncer waits until a node answers ARP for addr, then samples a
// second of requests: every one must be answered by that node alone.
func onlyAnnouncer(t *testing.T, l *lab.Lab, addr netip.Addr) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	node, err := l.WaitAnnouncer(ctx, addr)
	if err != nil {
		t.Fatalf("no node answers ARP for %s: %v", addr, err)
	}
	mac, err := l.NodeMAC(node)
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.SampleAnswers(ctx, addr, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	rounds, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rounds {
		if !r.AnsweredOnlyBy(mac) {
			t.Fatalf("ARP request %d of %d for %s answered by %v, want %s (%s) alone", i+1, len(rounds), addr, r.MACs, node, mac)
		}
	}
	t.Logf("%d ARP requests for %s, each answered by %s alone", len(rounds), addr, node)
}
