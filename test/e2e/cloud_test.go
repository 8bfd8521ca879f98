package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/seeds"
	"github.com/herald-lb/herald/internal/testcluster"
)

// The floating IP of the cloud e2e: seed 000's 116.202.177.24/32, moved
// into a documentation range.
var floatingIP = netip.MustParseAddr("203.0.113.10")

const (
	cloudToken = "lab-token"
	// fipPath is the stand-in's path of floating IP 7.
	fipPath = "/floating_ips/7"
)

// cloudSecret holds the stand-in's token, as an operator's Secret holds
// Hetzner's.
const cloudSecret = `apiVersion: v1
kind: Secret
metadata:
  name: hcloud
  namespace: metallb-system
stringData:
  token: ` + cloudToken + `
`

// cloudAdvertisement turns seed 000's pool into a floating IP: the token
// Secret and Herald's own kind, in place of the seed's L2Advertisement.
const cloudAdvertisement = cloudSecret + `---
apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata:
  name: hetzner
  namespace: metallb-system
spec:
  ipAddressPools: [ip-address-pool]
  provider: hetzner
  tokenSecretRef:
    name: hcloud
`

// TestCloudFloatingIP: Hetzner Cloud failover in a routed lab, from seed
// 000's set-up. The elected speaker assigns the IP to its server; no node
// answers ARP for it; it moves on a graceful stop and on a hard failure,
// once each, and never back and forth in a partition; an API outage or a
// rate limit during a failure moves nothing and is reported, and the move
// happens once the API is back; a wrong token is reported once.
func TestCloudFloatingIP(t *testing.T) {
	cl := startCloudLab(t, 4, map[int64]netip.Prefix{7: netip.PrefixFrom(floatingIP, 32)})
	ctx := ctxT(t, 8*time.Minute)
	// node3 has no spec.providerID: its server is found by its name.
	cl.setProviderIDs(ctx, t, 1, 2, 4)
	assigns := func() int { return cl.sim.Count("POST", fipPath+"/actions/assign") }

	// Seed 000 as written (its address moved): the Service gets the
	// floating IP from the pool, announced by Layer 2, which on Hetzner
	// reaches no one.
	dir, err := seeds.Dir(testcluster.RepoRoot())
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(dir, "000-hetzner-floating-ip.yaml"))
	if err != nil {
		t.Fatalf("seed 000: %v", err)
	}
	seed000 := strings.ReplaceAll(string(seed), "116.202.177.24", floatingIP.String())
	if err := cl.Apply(ctx, seed000); err != nil {
		t.Fatal(err)
	}
	if addrs := service(t, cl.Lab, lab.Service{Name: "fip-web"}); addrs[0] != floatingIP {
		t.Fatalf("the Service got %v, want the floating IP %s", addrs, floatingIP)
	}
	// Adding the CloudAdvertisement beside the seed's L2Advertisement is
	// refused, with the reason; the documented step replaces it.
	both := filepath.Join(t.TempDir(), "both.yaml")
	if err := os.WriteFile(both, []byte(seed000+"---\n"+cloudAdvertisement), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, herald, "validate", both).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "a floating IP is routed by the cloud") {
		t.Fatalf("herald validate accepted the pool announced by Layer 2 and by the cloud (%v):\n%s", err, out)
	}
	if _, err := cl.Kubectl(ctx, "", "delete", "l2advertisement", "l2-advertisement", "-n", lab.HeraldNamespace); err != nil {
		t.Fatal(err)
	}
	if err := cl.Apply(ctx, cloudAdvertisement); err != nil {
		t.Fatal(err)
	}

	var owner string
	var server int64
	eventually(t, "the floating IP assigned to a server", time.Minute, func() (bool, string) {
		server = cl.sim.Assignment(7)
		return server != 0, "unassigned"
	})
	owner = fmt.Sprintf("node%d", server)
	if got := remoteUntil(t, cl.Lab, floatingIP); got != owner {
		t.Fatalf("from the remote subnet %s was answered by %s, want %s (its server %d)", floatingIP, got, owner, server)
	}
	t.Logf("%s on server %d: answered by %s through the router; the Service kept its address", floatingIP, server, owner)
	eventually(t, "a FloatingIPAssigned Event on the Service", 30*time.Second, func() (bool, string) {
		ev := serviceEvent(ctx, t, cl.Lab, "fip-web", "FloatingIPAssigned")
		return strings.Contains(ev, "from no server in"), ev
	})
	cl.waitStatus(ctx, t, "fip-web", owner, server)
	eventually(t, "node3, without providerID, found by its server's name", 20*time.Second, func() (bool, string) {
		out, _ := cl.Kubectl(ctx, "", "get", "configurationstate", "speaker-node3", "-n", lab.HeraldNamespace, "-o",
			`jsonpath={.status.conditions[?(@.type=="cloudServerFound")].status}: {.status.conditions[?(@.type=="cloudServerFound")].message}`)
		return strings.HasPrefix(out, "True: server 3 can hold"), out
	})

	t.Run("no ARP answer on the LAN", func(t *testing.T) {
		// The seed's Layer 2 announcement has been withdrawn by now: the
		// cloud mode took over after the L2Advertisement was deleted.
		time.Sleep(time.Second)
		s, err := cl.SampleAnswers(ctx, floatingIP, 20*time.Millisecond)
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

	// The owner is cut off from the other speakers: they see it dead and
	// elect one of themselves, which finds the owner's Lease renewed and
	// sends the cloud nothing: the IP never moves.
	t.Run("partition: no fight over the IP", func(t *testing.T) {
		before := assigns()
		if err := cl.PartitionMemberlist(ctx, owner, true); err != nil {
			t.Fatal(err)
		}
		healed := false
		heal := func() {
			if !healed {
				healed = true
				if err := cl.PartitionMemberlist(ctx, owner, false); err != nil {
					t.Error(err)
				}
			}
		}
		defer heal()
		during := cl.watchAssignment(t, 7, server, "during the partition", 8*time.Second)
		refused := false
		for _, n := range cl.Nodes() {
			page, err := scrape(ctx, cl.Lab, n.IPv4)
			if err == nil && n.Name != owner && strings.Contains(page, `herald_cloud_floating_ip_checks_total{code="",outcome="HeldElsewhere",provider="hetzner"}`) {
				refused = true
			}
		}
		if !refused {
			t.Errorf("no node cut off from %s tried the IP: the partition proved nothing", owner)
		}
		heal()
		after := cl.watchAssignment(t, 7, server, "after it healed", 4*time.Second)
		if n := assigns(); n != before {
			t.Errorf("%d assign requests during and after the partition, want none", n-before)
		}
		t.Logf("partition of %s: %d samples during and %d after, the IP stayed on server %d", owner, during, after, server)
	})

	// SIGTERM: the owner gives its Lease up as it leaves, so the next
	// owner need not wait for it to expire.
	var stopped string
	t.Run("graceful handover on SIGTERM", func(t *testing.T) {
		before := assigns()
		stopped = owner
		stopped := time.Now()
		if err := cl.StopSpeaker(owner, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		next := cl.waitMoved(t, 7, server, 20*time.Second)
		took := time.Since(stopped)
		if n := assigns() - before; n != 1 {
			t.Errorf("%d assign requests for one handover, want 1", n)
		}
		owner, server = fmt.Sprintf("node%d", next), next
		if got := remoteUntil(t, cl.Lab, floatingIP); got != owner {
			t.Fatalf("after the handover %s was answered by %s, want %s", floatingIP, got, owner)
		}
		cl.waitStatus(ctx, t, "fip-web", owner, server)
		t.Logf("SIGTERM to the IP on server %d: %s (lease 3 s)", server, took.Round(time.Millisecond))
	})

	// The stopped node comes back. The ranking by address prefers it (it
	// was elected with all four alive), but the IP stays with the node
	// holding its Lease: a move would cost an assign and the connections
	// open through the server it is on.
	t.Run("a node that comes back takes nothing", func(t *testing.T) {
		if stopped == "" {
			t.Fatal("no node was stopped: the handover did not run")
		}
		before := assigns()
		if err := cl.StartSpeaker(stopped); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := cl.WaitMembers(wctx, 4); err != nil {
			t.Fatal(err)
		}
		// Three leases and more than the hold-down, every 20 ms.
		n := cl.watchOwner(ctx, t, 7, server, "fip-web", stopped+" back", 10*time.Second)
		if d := assigns() - before; d != 0 {
			t.Errorf("%d assign requests after %s came back, want none", d, stopped)
		}
		t.Logf("%s came back: %d samples over 10 s, the IP stayed on server %d, held by %s", stopped, n, server, owner)
	})

	// The API fails while the owner dies hard: the next owner cannot move
	// the IP, so it stays on the dead node's server; the failure is
	// reported; the move happens once the API answers again.
	t.Run("hard failure during an API outage", func(t *testing.T) {
		cl.sim.Inject(hcloudsim.Fault{Status: 503, Code: "unavailable"})
		killed := time.Now()
		if err := cl.KillSpeaker(owner); err != nil {
			t.Fatal(err)
		}
		if err := cl.CutLink(owner); err != nil {
			t.Fatal(err)
		}
		dead := server
		var ev string
		for end := time.Now().Add(90 * time.Second); ev == "" && time.Now().Before(end); {
			if a := cl.sim.Assignment(7); a != dead {
				t.Fatalf("during the outage the floating IP moved to server %d", a)
			}
			ev = serviceEvent(ctx, t, cl.Lab, "fip-web", "FloatingIPFailed")
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(ev, "unavailable") || !strings.Contains(ev, "stays where it is") {
			t.Fatalf("outage Event %q, want the 503 reported and the IP left where it is", ev)
		}
		failed := cl.sim.Count("", fipPath)
		t.Logf("outage reported %s after the kill: %q", time.Since(killed).Round(time.Millisecond), ev)
		cl.sim.ClearFaults()
		back := time.Now()
		next := cl.waitMoved(t, 7, dead, 60*time.Second)
		owner, server = fmt.Sprintf("node%d", next), next
		if got := remoteUntil(t, cl.Lab, floatingIP); got != owner {
			t.Fatalf("after the outage %s was answered by %s, want %s", floatingIP, got, owner)
		}
		cl.waitStatus(ctx, t, "fip-web", owner, server)
		if n := cl.sim.Count("POST", fipPath+"/actions/unassign"); n != 0 {
			t.Errorf("%d unassign requests: Herald never unassigns", n)
		}
		t.Logf("%d requests on the IP during the outage; moved to server %d %s after the API came back", failed, next, time.Since(back).Round(time.Millisecond))
	})

	// A wrong token is tried at once and reported once, as permanent; the
	// IP stays, and the owner does not retry in a loop. Then, with the
	// token right again, a rate limit is reported the same way.
	t.Run("wrong token, then a rate limit", func(t *testing.T) {
		setToken := func(tok string) {
			t.Helper()
			if _, err := cl.Kubectl(ctx, "", "patch", "secret", "hcloud", "-n", lab.HeraldNamespace, "--type=merge",
				"-p", fmt.Sprintf(`{"stringData":{"token":%q}}`, tok)); err != nil {
				t.Fatal(err)
			}
		}
		for _, step := range []struct {
			token, want string
			fault       *hcloudsim.Fault
		}{
			{"wrong-token", "unauthorized", nil},
			{cloudToken, "rate_limit_exceeded", &hcloudsim.Fault{Status: 429, Code: "rate_limit_exceeded"}},
		} {
			if step.fault != nil {
				cl.sim.Inject(*step.fault)
			}
			start, before := time.Now(), len(cl.sim.Requests())
			setToken(step.token)
			var ev string
			for end := time.Now().Add(90 * time.Second); !strings.Contains(ev, step.want) && time.Now().Before(end); {
				if a := cl.sim.Assignment(7); a != server {
					t.Fatalf("%s: the floating IP moved to server %d", step.want, a)
				}
				ev = serviceEvent(ctx, t, cl.Lab, "fip-web", "FloatingIPFailed")
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.Contains(ev, step.want) {
				t.Fatalf("Event %q, want %s reported", ev, step.want)
			}
			took := time.Since(start)
			cl.watchAssignment(t, 7, server, step.want, 3*time.Second)
			n := len(cl.sim.Requests()) - before
			t.Logf("%s reported %s after the Secret changed, %d requests: %q", step.want, took.Round(time.Millisecond), n, ev)
			if step.want == "unauthorized" && n > 3 {
				t.Errorf("%d requests with a wrong token, want no retry loop", n)
			}
		}
		cl.sim.ClearFaults()
	})
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
	msg, at := "", time.Time{}
	for _, e := range list.Items {
		when := e.EventTime.Time
		if e.Series != nil && e.Series.LastObservedTime.After(when) {
			when = e.Series.LastObservedTime.Time
		}
		if e.Regarding.Name == name && e.Reason == reason && !when.Before(at) {
			msg, at = e.Note, when
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
