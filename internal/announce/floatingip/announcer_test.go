package floatingip_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/announce/floatingip"
	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/cloud/hetzner"
	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/config"
)

const token = "test-token"

// events records the Events a node's announcer raises.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(svc, typ, reason, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, reason+": "+msg)
}

func (e *events) find(reason string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.list {
		if strings.HasPrefix(s, reason+":") {
			return s
		}
	}
	return ""
}

type node struct {
	name    string
	a       *floatingip.Announcer
	events  *events
	cancel  context.CancelFunc
	sim     *hcloudsim.Sim
	arbiter cloud.Arbiter

	mu    sync.Mutex
	token string // what the token Secret holds
}

// opts are the node's options against the stand-in, with report as its
// NodeReport.
func (n *node) opts(report func(floatingip.NodeReport)) floatingip.Options {
	var holder func(string) string
	if m, ok := n.arbiter.(*cloud.MemoryArbiter); ok {
		holder = m.Holder // what the speaker reads from its cache of the Leases
	}
	return floatingip.Options{
		Holder: holder,
		Node:   n.name,
		Token: func(_ context.Context, secret, key string) (string, error) {
			if secret != "hcloud" || key != "token" {
				return "", errors.New("no such Secret")
			}
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.token, nil
		},
		NewProvider: func(provider, tok string, budget *cloud.Budget) (cloud.Provider, error) {
			return hetzner.New(hetzner.Options{Token: tok, Endpoint: n.sim.Endpoint(), PollInterval: 20 * time.Millisecond, Budget: budget})
		},
		Arbiter: n.arbiter, Event: n.events.add, Resync: func() {}, Log: logr.Discard(),
		Registry: prometheus.NewRegistry(), LeaseDuration: 300 * time.Millisecond, NodeReport: report,
	}
}

// newNode is one speaker's cloud mode against the stand-in API, sharing
// arbiter with the others (the Lease's rules, in memory).
func newNode(t *testing.T, sim *hcloudsim.Sim, name string, arbiter cloud.Arbiter) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ev := &events{}
	n := &node{name: name, events: ev, cancel: cancel, sim: sim, arbiter: arbiter, token: token}
	n.a = floatingip.New(ctx, n.opts(nil))
	t.Cleanup(func() { n.a.Shutdown(context.Background()); cancel() })
	return n
}

// newSim is the stand-in with the floating IP 203.0.113.10 (ID 7) and
// server n of node "n<n>" for each of servers.
func newSim(t *testing.T, action time.Duration, servers ...int64) *hcloudsim.Sim {
	t.Helper()
	sim := hcloudsim.New(hcloudsim.Options{ActionTime: action})
	t.Cleanup(sim.Close)
	for _, id := range servers {
		sim.AddServer(id, fmt.Sprintf("n%d", id))
	}
	sim.AddFloatingIP(7, "web", "203.0.113.10", 0)
	return sim
}

func inputs(live ...string) announce.Inputs {
	ad := &config.CloudAdvertisement{Name: "fip", Pools: []string{"fip"}, Provider: config.ProviderHetzner, TokenSecret: "hcloud", TokenKey: "token"}
	in := announce.Inputs{
		Config: &config.Config{CloudAdvertisements: []*config.CloudAdvertisement{ad}},
		Nodes: map[string]announce.Node{
			"n1": {Name: "n1", ProviderID: "hcloud://1"},
			"n2": {Name: "n2", ProviderID: "hcloud://2"},
			"n3": {Name: "n3"}, // no cloud server: never eligible
		},
		Live: map[string]bool{},
		Services: []announce.Service{{Key: "web/site", Pool: "fip", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.10")},
			EndpointNodes: map[string]bool{"n1": true, "n2": true, "n3": true}}},
	}
	for _, n := range live {
		in.Live[n] = true
	}
	return in
}

// sync runs one loop round of n's mode, owning what the election gives it.
func (n *node) sync(t *testing.T, in announce.Inputs) announce.Announced {
	t.Helper()
	got, err := n.a.Announce(context.Background(), announce.Desired{Inputs: in, Node: n.name, Owned: announce.Owned(announce.Elect(in, n.a), n.name)})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestFailover: the elected node assigns the floating IP to its server and
// says how long it took; when it dies, the next node takes the IP once the
// lease lets it; the IP is never unassigned, and a node without a cloud
// server is never elected.
func TestFailover(t *testing.T) {
	sim := newSim(t, 100*time.Millisecond, 1, 2)
	arb := &cloud.MemoryArbiter{Duration: time.Second, HoldDown: 500 * time.Millisecond}
	n1, n2 := newNode(t, sim, "n1", arb), newNode(t, sim, "n2", arb)

	in := inputs("n1", "n2", "n3")
	owner := announce.Owned(announce.Elect(in, n1.a), "n1")
	first, next := n1, n2
	if len(owner) == 0 {
		first, next = n2, n1
	}
	server := map[string]int64{"n1": 1, "n2": 2}
	waitAnnounced(t, first, in, server[first.name], sim)
	next.sync(t, in)
	if ev := first.events.find("FloatingIPAssigned"); !strings.Contains(ev, "from no server in") {
		t.Fatalf("first owner's Event %q, want an assignment with its duration", ev)
	}

	// The owner dies: it is gone from the membership, and its lease is
	// not released (a crash).
	first.cancel()
	in = inputs(next.name, "n3")
	start := time.Now()
	waitAnnounced(t, next, in, server[next.name], sim)
	took := time.Since(start)
	if took > 5*time.Second {
		t.Errorf("failover took %s", took)
	}
	if ev := next.events.find("FloatingIPAssigned"); !strings.Contains(ev, fmt.Sprintf("from server %d", server[first.name])) {
		t.Errorf("next owner's Event %q, want the move from the first owner's server", ev)
	}
	if n := sim.Count("POST", "/floating_ips/7/actions/unassign"); n != 0 {
		t.Errorf("%d unassign requests: a failover never unassigns", n)
	}
	t.Logf("failover to %s in %s (lease %s)", next.name, took.Round(time.Millisecond), arb.Duration)
}

// TestJoinMovesNothing: a node that joins, or comes back, takes no
// floating IP from the node holding it, though the hash prefers it: a move
// would cost an API call and the connections through the old server. The
// IP moves only when its holder leaves.
func TestJoinMovesNothing(t *testing.T) {
	sim := newSim(t, 20*time.Millisecond, 1, 2)
	arb := &cloud.MemoryArbiter{Duration: 300 * time.Millisecond, HoldDown: 300 * time.Millisecond}
	nodes := map[string]*node{"n1": newNode(t, sim, "n1", arb), "n2": newNode(t, sim, "n2", arb)}
	server := map[string]int64{"n1": 1, "n2": 2}
	// The node the hash prefers with both alive (no lease yet: the plain
	// election) comes second.
	both := inputs("n1", "n2")
	preferred := announce.Elect(both, nodes["n1"].a)[0].Owner
	first := map[string]string{"n1": "n2", "n2": "n1"}[preferred]
	waitAnnounced(t, nodes[first], inputs(first), server[first], sim)

	samples := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); samples++ {
		nodes["n1"].sync(t, both)
		nodes["n2"].sync(t, both)
		if a := sim.Assignment(7); a != server[first] {
			t.Fatalf("sample %d after %s joined: the floating IP moved to server %d, want it left on %s's", samples, preferred, a, first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := sim.Count("POST", "/floating_ips/7/actions/assign"); n != 1 {
		t.Errorf("%d assign requests, want 1", n)
	}
	t.Logf("%s joined: %d samples over 10 leases, the IP stayed on %s", preferred, samples, first)

	// The holder crashes: the IP moves once its lease lets it.
	nodes[first].cancel()
	waitAnnounced(t, nodes[preferred], inputs(preferred), server[preferred], sim)
}

// TestPartitionNoFight: two nodes that each see the other dead both elect
// themselves; the lease lets one move the IP, and it moves once.
func TestPartitionNoFight(t *testing.T) {
	sim := newSim(t, 50*time.Millisecond, 1, 2)
	arb := &cloud.MemoryArbiter{Duration: 2 * time.Second, HoldDown: time.Second}
	n1, n2 := newNode(t, sim, "n1", arb), newNode(t, sim, "n2", arb)
	// Each sees only itself alive.
	n1.sync(t, inputs("n1"))
	n2.sync(t, inputs("n2"))
	var moves int
	last := int64(0)
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if a := sim.Assignment(7); a != last {
			if last != 0 {
				moves++
			}
			last = a
		}
		if moves > 0 {
			t.Fatalf("the floating IP moved from one partitioned node to the other (now on server %d)", last)
		}
		n1.sync(t, inputs("n1"))
		n2.sync(t, inputs("n2"))
		time.Sleep(20 * time.Millisecond)
	}
	if last == 0 {
		t.Fatal("neither node assigned the floating IP")
	}
	if n := sim.Count("POST", "/floating_ips/7/actions/assign"); n != 1 {
		t.Errorf("%d assign requests, want 1", n)
	}
}

// waitAnnounced syncs n until it announces the Service with the IP on its
// server.
func waitAnnounced(t *testing.T, n *node, in announce.Inputs, server int64, sim *hcloudsim.Sim) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got := n.sync(t, in)
		if _, ok := got["web/site"]; ok {
			if a := sim.Assignment(7); a != server {
				t.Fatalf("%s announces web/site while the IP is on server %d", n.name, a)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never announced web/site (IP on server %d)", n.name, sim.Assignment(7))
}

// TestServerByName: a node without spec.providerID (no cloud controller
// manager) holds the IP on the server named like it, found with one list of
// the project's servers however many syncs run; a node with neither is
// never elected, and its report says why.
func TestServerByName(t *testing.T) {
	sim := newSim(t, 20*time.Millisecond, 1, 3)
	arb := &cloud.MemoryArbiter{Duration: time.Second, HoldDown: 500 * time.Millisecond}
	for _, tc := range []struct {
		node     string
		eligible bool
		why      string
	}{
		{"n3", true, "server 3 can hold"},
		{"n4", false, `no hetzner server is named "n4"`},
	} {
		t.Run(tc.node, func(t *testing.T) {
			n := newNode(t, sim, tc.node, arb)
			var reports []floatingip.NodeReport
			n.a = floatingip.New(t.Context(), n.opts(func(r floatingip.NodeReport) { reports = append(reports, r) }))
			t.Cleanup(func() { n.a.Shutdown(context.Background()) })
			in := inputs(tc.node)
			in.Nodes["n4"] = announce.Node{Name: "n4"}
			in.Services[0].EndpointNodes["n4"] = true
			lists := sim.Count("GET", "/servers")
			for range 3 {
				n.sync(t, in) // the first sync lists the servers
			}
			if tc.eligible {
				waitAnnounced(t, n, in, 3, sim)
			} else if got := n.sync(t, in); len(got) != 0 {
				t.Fatalf("%s announces %v without a cloud server", tc.node, got)
			}
			if d := sim.Count("GET", "/servers") - lists; d != 1 {
				t.Errorf("%d lists of the servers, want 1", d)
			}
			if len(reports) != 1 || reports[0].Eligible != tc.eligible || !strings.Contains(reports[0].Message, tc.why) {
				t.Errorf("reports %+v, want one, eligible %v, saying %q", reports, tc.eligible, tc.why)
			}
		})
	}
}

// TestTokenRotated: a token put into the Secret is used by the next sync's
// check at once; a wrong one is reported once, as permanent, and not
// retried in a loop: the IP stays where it is.
func TestTokenRotated(t *testing.T) {
	sim := newSim(t, 20*time.Millisecond, 1)
	n := newNode(t, sim, "n1", &cloud.MemoryArbiter{Duration: time.Second, HoldDown: 500 * time.Millisecond})
	in := inputs("n1")
	waitAnnounced(t, n, in, 1, sim)

	n.mu.Lock()
	n.token = "revoked"
	n.mu.Unlock()
	before := len(sim.Requests())
	deadline := time.Now().Add(3 * time.Second)
	for n.events.find("FloatingIPFailed") == "" && time.Now().Before(deadline) {
		n.sync(t, in)
		time.Sleep(20 * time.Millisecond)
	}
	ev := n.events.find("FloatingIPFailed")
	if !strings.Contains(ev, "unauthorized") || !strings.Contains(ev, "permanent") {
		t.Fatalf("Event %q, want the wrong token reported as permanent (unauthorized)", ev)
	}
	// Two more seconds of syncs: no request loop, and the IP stays.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		n.sync(t, in)
		if a := sim.Assignment(7); a != 1 {
			t.Fatalf("the floating IP moved to server %d with a wrong token", a)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := len(sim.Requests()) - before; d > 2 {
		t.Errorf("%d requests with the wrong token, want 1 (no retry of a permanent error)", d)
	}
}
