package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/lab"
)

// The floating IP of the cloud e2e: a /32 from a documentation range, as
// seed 000's 116.202.177.24/32 would be on Hetzner.
var floatingIP = netip.MustParseAddr("203.0.113.10")

const cloudToken = "lab-token"

// cloudConfig is seed 000's pool of one floating IP, announced by a
// CloudAdvertisement (Herald's own kind) with the token Secret it names.
const cloudConfig = `apiVersion: v1
kind: Secret
metadata:
  name: hcloud
  namespace: metallb-system
stringData:
  token: ` + cloudToken + `
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: floating
  namespace: metallb-system
spec:
  addresses:
  - 203.0.113.10/32
---
apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata:
  name: hetzner
  namespace: metallb-system
spec:
  ipAddressPools: [floating]
  provider: hetzner
  tokenSecretRef:
    name: hcloud
`

// TestCloudFloatingIP: Hetzner Cloud failover in a routed lab. The cloud's
// network is the lab router: it sends the floating IP to the node whose
// server the API stand-in (hcloudsim, spoken to by hcloud-go in every
// speaker) has it assigned to, and to no one before. The elected speaker
// assigns the IP to its server; no node answers ARP for it; when the owner
// dies the next node takes it over, after the dead owner's Lease expires,
// with one more assign and never an unassign.
func TestCloudFloatingIP(t *testing.T) {
	var (
		mu  sync.Mutex
		lb  *lab.Lab
		bad error
	)
	sim := hcloudsim.New(hcloudsim.Options{Tokens: []string{cloudToken}, ActionTime: 200 * time.Millisecond,
		OnAssigned: func(_, server int64) {
			mu.Lock()
			defer mu.Unlock()
			node := ""
			if server != 0 {
				node = fmt.Sprintf("node%d", server)
			}
			if err := lb.RouteVia(netip.PrefixFrom(floatingIP, 32), node); err != nil && bad == nil {
				bad = err
			}
		}})
	t.Cleanup(sim.Close)
	for i := int64(1); i <= 3; i++ {
		sim.AddServer(i, fmt.Sprintf("node%d", i))
	}
	sim.AddFloatingIP(7, "web", floatingIP.String(), 0)
	u, err := url.Parse(sim.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	l := startBareLab(t, func(o *lab.Options) {
		o.Router = true
		o.Forward = []string{u.Host}
		o.SpeakerArgs = func(kubeconfig string, n lab.Node) []string {
			return append(lab.DefaultSpeakerArgs(kubeconfig, n), "--cloud-endpoint", sim.Endpoint(),
				"--cloud-lease", "3s", "--cloud-hold-down", "5s")
		}
	})
	mu.Lock()
	lb = l
	mu.Unlock()
	ctx := ctxT(t, 4*time.Minute)

	// Hetzner's cloud controller manager sets spec.providerID.
	for i, n := range l.Nodes() {
		patch := fmt.Sprintf(`{"spec":{"providerID":"hcloud://%d"}}`, i+1)
		if _, err := l.Client().CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Apply(ctx, cloudConfig); err != nil {
		t.Fatal(err)
	}
	addrs := service(t, l, lab.Service{Name: "fip-web"})
	if addrs[0] != floatingIP {
		t.Fatalf("the Service got %v, want the floating IP %s", addrs, floatingIP)
	}

	var first int64
	killedNode := ""
	eventually(t, "the floating IP assigned to a server", time.Minute, func() (bool, string) {
		first = sim.Assignment(7)
		return first != 0, "unassigned"
	})
	owner := fmt.Sprintf("node%d", first)
	if got := remoteUntil(t, l, floatingIP); got != owner {
		t.Fatalf("from the remote subnet %s was answered by %s, want %s (its server %d)", floatingIP, got, owner, first)
	}
	t.Logf("%s on server %d: answered by %s through the router", floatingIP, first, owner)
	eventually(t, "a FloatingIPAssigned Event on the Service", 30*time.Second, func() (bool, string) {
		ev := serviceEvent(ctx, t, l, "fip-web", "FloatingIPAssigned")
		return strings.Contains(ev, "from no server in"), ev
	})

	t.Run("no ARP answer on the LAN", func(t *testing.T) {
		s, err := l.SampleAnswers(ctx, floatingIP, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		rounds, err := s.Stop()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rounds {
			if len(r.MACs) > 0 {
				t.Fatalf("%s answered ARP on the LAN (%v): a floating IP is routed by the cloud, not announced", floatingIP, r.MACs)
			}
		}
	})

	t.Run("the owner dies: the next node takes the IP", func(t *testing.T) {
		killed := time.Now()
		if err := l.KillSpeaker(owner); err != nil {
			t.Fatal(err)
		}
		var next int64
		eventually(t, "the floating IP on another server", 30*time.Second, func() (bool, string) {
			next = sim.Assignment(7)
			return next != first, fmt.Sprintf("on server %d", next)
		})
		moved := time.Since(killed)
		got := remoteUntil(t, l, floatingIP)
		if want := fmt.Sprintf("node%d", next); got != want {
			t.Fatalf("after the move %s was answered by %s, want %s", floatingIP, got, want)
		}
		if n := sim.Count("POST", "/floating_ips/7/actions/unassign"); n != 0 {
			t.Errorf("%d unassign requests: Herald never unassigns", n)
		}
		if n := sim.Count("POST", "/floating_ips/7/actions/assign"); n != 2 {
			t.Errorf("%d assign requests, want 2 (one per owner)", n)
		}
		t.Logf("owner %s killed: IP on server %d after %s (lease 3 s), answered by %s", owner, next, moved.Round(time.Millisecond), got)
		// The route moves when the action ends; the speaker learns it at
		// its next poll of the action.
		for _, want := range []string{
			`metallb_speaker_announced{ip="203.0.113.10",node="` + got + `",protocol="cloud",service="default/fip-web"} 1`,
			`herald_cloud_assign_duration_seconds_count{provider="hetzner"} 1`,
			`herald_cloud_floating_ip_assigned{floating_ip="7",server="` + fmt.Sprint(next) + `"} 1`,
		} {
			eventually(t, got+"'s metrics show "+want, 10*time.Second, func() (bool, string) {
				page, err := scrape(ctx, l, nodeAddr(t, l, got))
				return err == nil && strings.Contains(page, want), fmt.Sprint(err)
			})
		}
		killedNode = owner
		owner, first = got, next
	})

	// The owner is cut off from the other live speaker: each sees the
	// other dead and elects itself. The owner keeps renewing its Lease, so
	// the other, which reaches the API server too, gets no lease and sends
	// the cloud nothing: the IP never moves, however long it lasts.
	t.Run("partition: no fight over the IP", func(t *testing.T) {
		assigns := sim.Count("POST", "/floating_ips/7/actions/assign")
		if err := l.PartitionMemberlist(ctx, owner, true); err != nil {
			t.Fatal(err)
		}
		healed := false
		heal := func() {
			if !healed {
				healed = true
				if err := l.PartitionMemberlist(ctx, owner, false); err != nil {
					t.Error(err)
				}
			}
		}
		defer heal()
		check := func(phase string, d time.Duration) int {
			n := 0
			for end := time.Now().Add(d); time.Now().Before(end); n++ {
				if a := sim.Assignment(7); a != first {
					t.Fatalf("%s: the floating IP moved to server %d (owner %s, server %d)", phase, a, owner, first)
				}
				time.Sleep(20 * time.Millisecond)
			}
			return n
		}
		during := check("during the partition", 10*time.Second)
		// The other side did elect itself, and was refused the lease.
		other := ""
		for _, n := range l.Nodes() {
			if n.Name != owner && n.Name != killedNode {
				other = n.Name
			}
		}
		page, err := scrape(ctx, l, nodeAddr(t, l, other))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(page, `herald_cloud_floating_ip_checks_total{code="",outcome="HeldElsewhere",provider="hetzner"}`) {
			t.Errorf("%s, cut off from %s, never tried the IP: the partition proved nothing", other, owner)
		}
		heal()
		after := check("after it healed", 5*time.Second)
		if n := sim.Count("POST", "/floating_ips/7/actions/assign"); n != assigns {
			t.Errorf("%d assign requests during and after the partition, want none", n-assigns)
		}
		if got := remoteUntil(t, l, floatingIP); got != owner {
			t.Errorf("after the partition %s was answered by %s, want %s", floatingIP, got, owner)
		}
		t.Logf("partition of %s: %d samples during and %d after, the IP stayed on server %d", owner, during, after, first)
	})
	mu.Lock()
	defer mu.Unlock()
	if bad != nil {
		t.Fatalf("router: %v", bad)
	}
}

// remoteUntil curls addr from the remote subnet until it is answered, and
// returns the answering node.
func remoteUntil(t *testing.T, l *lab.Lab, addr netip.Addr) string {
	t.Helper()
	return answeredBy(t, "the remote subnet", l.CurlFromRemote, addr)
}

// serviceEvent is the message of the latest Event with reason on the
// default namespace's Service name, or "".
func serviceEvent(ctx context.Context, t *testing.T, l *lab.Lab, name, reason string) string {
	t.Helper()
	list, err := l.Client().EventsV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg := ""
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			msg = e.Note
		}
	}
	return msg
}

func nodeAddr(t *testing.T, l *lab.Lab, name string) netip.Addr {
	t.Helper()
	for _, n := range l.Nodes() {
		if n.Name == name {
			return n.IPv4
		}
	}
	t.Fatalf("no node %q", name)
	return netip.Addr{}
}
