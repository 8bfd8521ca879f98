package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/cloudlease"
	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/speaker"
)

// The cloud test's floating IP (ID 7 at the stand-in), a /32 from a
// documentation range as seed 000's 116.202.177.24/32 would be on Hetzner.
var cloudIP = netip.MustParseAddr("203.0.113.10")

const (
	cloudIPID     = 7
	cloudTokenVal = "lab-token"
	cloudAssign   = "/floating_ips/7/actions/assign"
	cloudUnassign = "/floating_ips/7/actions/unassign"
)

// cloudServers are the stand-in's servers by ID, named like the nodes.
// node1 and node2 get spec.providerID; node3 has none and is found by its
// name; db1 is a server no node is named like.
var cloudServers = map[int64]string{101: "node1", 102: "node2", 103: "node3", 104: "db1"}

// TestChartCloudFloatingIP: Hetzner floating-IP failover with Herald
// installed from its chart on real nodes. The lab router is the cloud's
// network: it routes the floating IP to the node whose server the API
// stand-in has it assigned to. The address is on no interface; kube-proxy's
// iptables rules take it in on whichever node the router sends it to. Two
// nodes have spec.providerID, the third is found by its server's name. The
// owner node is killed hard; the IP moves once, to a live node's server.
func TestChartCloudFloatingIP(t *testing.T) {
	var (
		mu       sync.Mutex
		l        *lab.Lab
		routeErr error
	)
	sim := hcloudsim.New(hcloudsim.Options{Tokens: []string{cloudTokenVal}, ActionTime: 200 * time.Millisecond,
		OnAssigned: func(_, server int64) {
			mu.Lock()
			defer mu.Unlock()
			err := fmt.Errorf("server %d: an assignment before the lab was up", server)
			if l != nil {
				err = l.RouteVia(netip.PrefixFrom(cloudIP, 32), cloudServers[server])
			}
			if err != nil && routeErr == nil {
				routeErr = err
			}
		}})
	t.Cleanup(sim.Close) // after the lab's Close: cleanups run last first
	for id, name := range cloudServers {
		sim.AddServer(id, name)
	}
	sim.AddFloatingIP(cloudIPID, "web", cloudIP.String(), 0)
	u, err := url.Parse(sim.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	lb := startCluster(t, 3, func(o *lab.Options) {
		o.Router, o.PointToPoint = true, true
		o.Forward = []string{u.Host}
	})
	mu.Lock()
	l = lb
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if routeErr != nil {
			t.Errorf("router: %v", routeErr)
		}
	})
	ctx := ctxT(t, 12*time.Minute)
	kc := crClient(t, lb)

	// Hetzner's cloud controller manager would set spec.providerID; node3
	// is a node of a cluster without it.
	for node, id := range map[string]int{"node1": 101, "node2": 102} {
		patch := fmt.Sprintf(`{"spec":{"providerID":"hcloud://%d"}}`, id)
		if _, err := lb.Client().CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: lab.HeraldNamespace}}
	if _, err := lb.Client().CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hcloud", Namespace: lab.HeraldNamespace},
		StringData: map[string]string{"token": cloudTokenVal}}
	if _, err := lb.Client().CoreV1().Secrets(lab.HeraldNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	helm(t, lb, "install", fmt.Sprintf(`cloud:
  tokenSecretName: hcloud
speaker:
  extraArgs:
  - --cloud-endpoint=%s
  - --cloud-lease=3s
  - --cloud-hold-down=5s
`, sim.Endpoint()))
	// Local policy: the node the router sends the IP to answers from its
	// own Pod, so the answer names the node holding the IP, and a dead
	// node's Pods in the endpoints cannot fail a request. The backends are
	// ready on every node before the pool exists: a Local Service's IP is
	// held by a node with an endpoint, so endpoints coming up one by one
	// would move it (and cost assign requests) before the test begins.
	if err := lb.CreateBackends(ctx, "web", corev1.ServiceExternalTrafficPolicyLocal); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctxT(t, 3*time.Minute), "the Service's endpoints ready on every node", func() (bool, string) {
		n, err := readyEndpoints(ctx, lb, "web")
		return err == nil && n == len(lb.Nodes()), fmt.Sprintf("%d ready endpoints (%v)", n, err)
	})
	// The pool and its CloudAdvertisement of docs/hetzner.md, through the
	// controller's webhook.
	pool := &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "floating", Namespace: lab.HeraldNamespace},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{netip.PrefixFrom(cloudIP, 32).String()}}}
	ad := &heraldv1alpha1.CloudAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "hetzner", Namespace: lab.HeraldNamespace},
		Spec: heraldv1alpha1.CloudAdvertisementSpec{IPAddressPools: []string{pool.Name}, Provider: heraldv1alpha1.CloudProviderHetzner,
			TokenSecretRef: heraldv1alpha1.TokenSecretRef{Name: secret.Name}}}
	for _, o := range []client.Object{pool, ad} {
		if err := kc.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	addr, err := lb.WaitBackends(ctxT(t, 3*time.Minute), "web")
	if err != nil {
		t.Fatal(err)
	}
	if addr != cloudIP {
		t.Fatalf("the Service got %s, want the floating IP %s", addr, cloudIP)
	}
	if err := lb.WaitKubeProxy(ctxT(t, 3*time.Minute), addr); err != nil {
		t.Fatal(err)
	}

	first, _ := waitMove(ctx, t, sim, 0, 0, time.Minute)
	owner := cloudServers[first]
	got := remoteAnswer(t, lb, time.Minute)
	if got.node != owner {
		t.Fatalf("from the remote subnet %s was answered by %s, want %s (server %d holds it)", cloudIP, got.node, owner, first)
	}
	t.Logf("%s on server %d (%s): answered from the remote subnet by Pod %s through kube-proxy on %s", cloudIP, first, owner, got.pod, got.node)
	st := waitStatus(ctx, t, kc, sim, owner, first, 30*time.Second)
	if st.Status.Prefix != netip.PrefixFrom(cloudIP, 32).String() || st.Status.FloatingIP != fmt.Sprint(cloudIPID) || st.Status.ServiceName != "web" {
		t.Errorf("ServiceCloudStatus %s: %+v, want prefix %s, floating IP %d, Service web", st.Name, st.Status, cloudIP, cloudIPID)
	}

	t.Run("on no interface, no ARP answer", func(t *testing.T) {
		for _, n := range lb.Nodes() {
			out, err := exec.CommandContext(ctx, "ip", "-n", n.Namespace, "-o", "addr", "show").CombinedOutput()
			if err != nil {
				t.Fatalf("%s: ip addr: %v: %s", n.Name, err, out)
			}
			if strings.Contains(string(out), " "+cloudIP.String()+"/") {
				t.Fatalf("%s has %s on an interface: the test would not show kube-proxy taking it in\n%s", n.Name, cloudIP, out)
			}
		}
		s, err := lb.SampleAnswers(ctx, cloudIP, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		// Two seconds of requests; the first answered one fails the test.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, werr := s.WaitRound(wctx, time.Time{}, func(r lab.Round) bool { return len(r.MACs) > 0 })
		cancel()
		rounds, err := s.Stop()
		switch {
		case werr == nil:
			t.Fatalf("%s answered ARP on the LAN by %v: a floating IP is routed by the cloud, not announced", cloudIP, r.MACs)
		case !errors.Is(werr, context.DeadlineExceeded) || err != nil:
			t.Fatalf("ARP sampler: %v %v", werr, err)
		}
		t.Logf("%d ARP requests for %s on the LAN, none answered", len(rounds), cloudIP)
	})

	t.Run("every node's server, node3's by name", func(t *testing.T) {
		for id, node := range cloudServers {
			if strings.HasPrefix(node, "node") {
				checkServerFound(ctx, t, kc, node, id)
			}
		}
	})

	// A rolling update's step: the owner's speaker Pod is replaced. It
	// lets go of the IP as it stops (one move), and its new Pod, though the
	// ranking by address prefers its node, takes nothing back: a move
	// costs an assign and the connections through the other server.
	t.Run("the owner's speaker Pod replaced", func(t *testing.T) {
		ctx := ctxT(t, 3*time.Minute)
		pod := speakerPod(t, lb, owner)
		deleted := time.Now()
		if err := lb.Client().CoreV1().Pods(lab.HeraldNamespace).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		next, moved := waitMove(ctx, t, sim, first, 1, time.Minute)
		to := cloudServers[next]
		waitNewSpeakerPod(ctx, t, lb, owner, pod)
		eventually(t, ctx, "every speaker counting the new Pod a member", func() (bool, string) {
			for _, n := range lb.Nodes() {
				if body := scrape(t, lb, n.Name, n.IPv4.String()+":7472"); !strings.Contains(body, "herald_speaker_memberlist_members 3\n") {
					return false, n.Name + " counts fewer than 3 members"
				}
			}
			return true, ""
		})
		back := time.Now()
		// Two leases and more than the hold-down with the new Pod a member.
		settle(ctx, t, kc, sim, to, next, 10*time.Second, 2)
		t.Logf("speaker Pod %s deleted: the IP moved to server %d (%s) %s later; the new Pod on %s was a member %s after the deletion and took nothing in 10 s",
			pod, next, to, moved.Sub(deleted).Round(time.Millisecond), owner, back.Sub(deleted).Round(time.Millisecond))
		owner, first = to, next
	})

	t.Run("the owner node killed", func(t *testing.T) {
		assigns := sim.Count("POST", cloudAssign)
		if a := sim.Assignment(cloudIPID); a != first {
			t.Fatalf("before the kill: the floating IP on server %d, want %d", a, first)
		}
		probe, err := lb.ProbeFromRemote(ctx, cloudIP, 80, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Stop()
		time.Sleep(time.Second)
		before := lease(ctx, t, lb)
		killed := time.Now()
		if err := lb.KillNode(owner); err != nil {
			t.Fatal(err)
		}
		next, moved := waitMove(ctx, t, sim, first, assigns, time.Minute)
		after := lease(ctx, t, lb)
		to := cloudServers[next]
		if to == owner || !strings.HasPrefix(to, "node") {
			t.Fatalf("the floating IP moved to server %d (%s), want a live node's", next, to)
		}
		s, err := probe.Wait(ctxT(t, time.Minute), func(s lab.Sample) bool {
			a, ok := parseAnswer(s.Node)
			return s.Err == nil && ok && a.node == to && s.Start.After(killed)
		})
		if err != nil {
			t.Fatalf("no answer from %s within a minute of killing %s", to, owner)
		}
		answered := s.End
		// Past the lease and the hold-down: the IP must stay, and the one
		// status object must name the new holder.
		st := settle(ctx, t, kc, sim, to, next, 10*time.Second, assigns+1)
		for _, x := range probe.Stop() {
			if x.Start.After(answered) && x.Err != nil {
				t.Fatalf("request from the remote at +%s failed after the failover: %v", x.Start.Sub(killed).Round(time.Millisecond), x.Err)
			}
			if a, ok := parseAnswer(x.Node); x.Start.After(answered) && ok && a.node != to {
				t.Fatalf("request from the remote at +%s answered by %s, want %s", x.Start.Sub(killed).Round(time.Millisecond), a.node, to)
			}
		}
		if cloudlease.Holder(before) != owner || cloudlease.Holder(after) != to {
			t.Errorf("Lease %s held by %q before the kill and by %q after the move, want %s then %s", before.Name, cloudlease.Holder(before), cloudlease.Holder(after), owner, to)
		}
		if after.Spec.AcquireTime != nil && before.Spec.RenewTime != nil {
			t.Logf("Lease %s: %s renewed it %s before the kill; %s took it %s after the kill",
				after.Name, owner, killed.Sub(before.Spec.RenewTime.Time).Round(time.Millisecond), to, after.Spec.AcquireTime.Sub(killed).Round(time.Millisecond))
		}
		if st.Status.LastMove == nil || st.Status.LastMove.FromServer != fmt.Sprint(first) {
			t.Errorf("ServiceCloudStatus %s: last move %+v, want one from server %d", st.Name, st.Status.LastMove, first)
		}
		t.Logf("killed %s (server %d): floating IP on server %d (%s) after %s, answered from the remote by %s after %s; %d assign and %d unassign requests in all; last move %+v",
			owner, first, next, to, moved.Sub(killed).Round(time.Millisecond), to, answered.Sub(killed).Round(time.Millisecond),
			sim.Count("POST", cloudAssign), sim.Count("POST", cloudUnassign), st.Status.LastMove)
		if out, err := lb.Kubectl(ctx, "", "get", "servicecloudstatuses", "-n", lab.HeraldNamespace); err == nil {
			t.Logf("kubectl get servicecloudstatuses -n %s:\n%s", lab.HeraldNamespace, out)
		}
	})
}

// readyEndpoints counts the ready endpoints of the default namespace's
// Service name.
func readyEndpoints(ctx context.Context, l *lab.Lab, name string) (int, error) {
	list, err := l.Client().DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				n++
			}
		}
	}
	return n, nil
}

// lease is the floating IP's Lease, which names the node holding it.
func lease(ctx context.Context, t *testing.T, l *lab.Lab) *coordinationv1.Lease {
	t.Helper()
	ls, err := l.Client().CoordinationV1().Leases(lab.HeraldNamespace).Get(ctx, cloudlease.LeaseName(cloudIP.String()), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// crClient reads Herald's own kinds from the lab's API server.
func crClient(t *testing.T, l *lab.Lab) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := heraldv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := metallbv1beta1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(l.Config(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitMove waits until the stand-in has the floating IP on a server other
// than from and returns it and when it was seen. It fails at the first
// sample showing the IP unassigned after it was assigned, an unassign
// request, or more than the one assign request this move needs beyond the
// assigns made before.
func waitMove(ctx context.Context, t *testing.T, sim *hcloudsim.Sim, from int64, assigns int, d time.Duration) (int64, time.Time) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		a := sim.Assignment(cloudIPID)
		if n := sim.Count("POST", cloudUnassign); n != 0 {
			t.Fatalf("%d unassign requests: Herald never unassigns", n)
		}
		if n := sim.Count("POST", cloudAssign); n > assigns+1 {
			t.Fatalf("%d assign requests while the IP moved from server %d (now on %d), want 1", n-assigns, from, a)
		}
		switch {
		case a == 0 && from != 0:
			t.Fatalf("the floating IP was unassigned from server %d", from)
		case a != from:
			if n := sim.Count("POST", cloudAssign); n != assigns+1 {
				t.Fatalf("the floating IP reached server %d after %d assign requests, want 1", a, n-assigns)
			}
			return a, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the floating IP still on server %d after %s (%d assign requests)", from, d, sim.Count("POST", cloudAssign)-assigns)
	return 0, time.Time{}
}

// remoteAnswer curls the floating IP from the remote subnet until a
// backend answers, for at most d.
func remoteAnswer(t *testing.T, l *lab.Lab, d time.Duration) answer {
	t.Helper()
	ctx := ctxT(t, d)
	var a answer
	eventually(t, ctx, "an answer from the remote subnet", func() (bool, string) {
		out, err := l.CurlFromRemote(ctx, cloudIP, 80)
		var ok bool
		a, ok = parseAnswer(out)
		return err == nil && ok, fmt.Sprintf("%q: %v", out, err)
	})
	return a
}

// cloudStatuses are the ServiceCloudStatus objects in Herald's namespace.
func cloudStatuses(ctx context.Context, t *testing.T, c client.Client) []heraldv1alpha1.ServiceCloudStatus {
	t.Helper()
	var list heraldv1alpha1.ServiceCloudStatusList
	if err := c.List(ctx, &list, client.InNamespace(lab.HeraldNamespace)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// holds reports whether the statuses are one object naming node and server.
func holds(list []heraldv1alpha1.ServiceCloudStatus, node string, server int64) bool {
	return len(list) == 1 && list[0].Status.Node == node && list[0].Status.Server == fmt.Sprint(server) &&
		list[0].Labels[metallbv1beta1.LabelStatusNode] == node
}

func describeStatuses(list []heraldv1alpha1.ServiceCloudStatus) string {
	var out []string
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s (node %q, server %q)", s.Name, s.Status.Node, s.Status.Server))
	}
	return fmt.Sprintf("%d ServiceCloudStatus %v", len(list), out)
}

// waitStatus waits, for at most d, until the one ServiceCloudStatus names
// node and server, and returns it. The stand-in must keep the IP on server
// meanwhile.
func waitStatus(ctx context.Context, t *testing.T, c client.Client, sim *hcloudsim.Sim, node string, server int64, d time.Duration) heraldv1alpha1.ServiceCloudStatus {
	t.Helper()
	deadline := time.Now().Add(d)
	var list []heraldv1alpha1.ServiceCloudStatus
	for time.Now().Before(deadline) {
		if a := sim.Assignment(cloudIPID); a != server {
			t.Fatalf("the floating IP moved from server %d to %d", server, a)
		}
		list = cloudStatuses(ctx, t, c)
		if holds(list, node, server) {
			return list[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %s still %s, want one naming %s and server %d", d, describeStatuses(list), node, server)
	return heraldv1alpha1.ServiceCloudStatus{}
}

// settle waits until the one ServiceCloudStatus names node and server,
// then for d more samples the stand-in and the statuses: the first sample
// with the IP elsewhere, another assign or unassign request, or other than
// that one object fails the test. want is the assign requests in all.
func settle(ctx context.Context, t *testing.T, c client.Client, sim *hcloudsim.Sim, node string, server int64, d time.Duration, want int) heraldv1alpha1.ServiceCloudStatus {
	t.Helper()
	st := waitStatus(ctx, t, c, sim, node, server, 30*time.Second)
	settled := time.Now()
	assigns := sim.Count("POST", cloudAssign)
	for time.Since(settled) < d {
		if a := sim.Assignment(cloudIPID); a != server {
			t.Fatalf("+%s after it settled on server %d the floating IP is on %d", time.Since(settled).Round(time.Millisecond), server, a)
		}
		if n, u := sim.Count("POST", cloudAssign), sim.Count("POST", cloudUnassign); n != assigns || u != 0 {
			t.Fatalf("+%s after it settled: %d more assign and %d unassign requests", time.Since(settled).Round(time.Millisecond), n-assigns, u)
		}
		if list := cloudStatuses(ctx, t, c); !holds(list, node, server) {
			t.Fatalf("+%s after it settled on %s: %s", time.Since(settled).Round(time.Millisecond), node, describeStatuses(list))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := sim.Count("POST", cloudAssign); n != want {
		t.Errorf("%d assign requests in all, want %d (one per move)", n, want)
	}
	return st
}

// checkServerFound waits until node's speaker reports, on its
// ConfigurationState speaker-<node>, condition cloudServerFound True naming
// server.
func checkServerFound(ctx context.Context, t *testing.T, c client.Client, node string, server int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want := fmt.Sprintf("server %d ", server)
	eventually(t, ctx, "speaker-"+node+" condition "+speaker.ConditionCloudServer, func() (bool, string) {
		var cs metallbv1beta1.ConfigurationState
		if err := c.Get(ctx, client.ObjectKey{Namespace: lab.HeraldNamespace, Name: "speaker-" + node}, &cs); err != nil {
			return false, err.Error()
		}
		cond := meta.FindStatusCondition(cs.Status.Conditions, speaker.ConditionCloudServer)
		if cond == nil {
			return false, fmt.Sprintf("no such condition in %v", conditionTypes(cs.Status.Conditions))
		}
		return cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message+" ", want), fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message)
	})
	t.Logf("speaker-%s: %s True, server %d", node, speaker.ConditionCloudServer, server)
}

func conditionTypes(cs []metav1.Condition) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Type)
	}
	slices.Sort(out)
	return out
}
