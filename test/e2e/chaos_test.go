package e2e

import (
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/chaos"
	"github.com/herald-lb/herald/internal/lab"
)

// The chaos suite's short forms (issue 14): each fault for a few seconds,
// in strict mode, so that the first sample showing what the scenario's
// goal rules out fails the test. bench/chaosbench runs them at length and
// docs/reliability.md has the figures.

// chaosTarget starts a lab with one IPv4 Service and returns it, settled.
func chaosTarget(t *testing.T, mod ...func(*lab.Options)) (*lab.Lab, chaos.Target) {
	t.Helper()
	l := startLab(t, mod...)
	addrs := service(t, l, lab.Service{Name: "chaos", Families: []corev1.IPFamily{corev1.IPv4Protocol}})
	target := chaos.Target{Service: "chaos", Addr: addrs[0]}
	announcedBy(t, l, "chaos", target.Addr)
	return l, target
}

func chaosOptions(t *testing.T, d time.Duration) chaos.Options {
	return chaos.Options{For: d, Strict: true, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
}

// testWriter sends a scenario's progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func logResult(t *testing.T, r chaos.Result) {
	t.Helper()
	t.Logf("%s: %d requests, %d failed, longest gap %s; %d moves (%d spurious), %d ARP rounds answered twice over %s; events %v; metrics %v; %v; %v",
		r.Scenario, r.Requests, r.Failed, r.LongestGap, r.Moves, r.Spurious, r.DoubleRounds, r.DoubleSpan, r.Events, r.Metrics, r.Figures, r.Notes)
}

// TestChaosPacketLoss: 5% loss on every node's link moves nothing, and the
// owner's hard failure under that loss still fails over quickly.
func TestChaosPacketLoss(t *testing.T) {
	l, target := chaosTarget(t)
	r, err := chaos.Loss(ctxT(t, 2*time.Minute), l, target, chaos.Drop(0.05), 1, chaosOptions(t, 20*time.Second))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(r.Figures["failover max ms"] * float64(time.Millisecond)); d > hardFailoverBound {
		t.Errorf("hard failover under 5%% loss took %s, more than %s", d, hardFailoverBound)
	}
}

// TestChaosStarvedSpeaker: the owner's speaker at 5% of a core for 20 s:
// at most one clean move, no flapping.
func TestChaosStarvedSpeaker(t *testing.T) {
	l, target := chaosTarget(t)
	r, err := chaos.Starve(ctxT(t, 2*time.Minute), l, target, 0.05, chaosOptions(t, 20*time.Second))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
}

// TestChaosPartition: the owner cut off from the other speakers' memberlist
// (the client still reaches it) for 5 s. Both sides answer meanwhile (the
// rule: docs/reliability.md), and the owner raises an AddressConflict
// Event; within 2 s of the heal one owner answers alone, and the client's
// neighbour entry points at it (the owner re-announces when the members
// merge, MetalLB #584).
func TestChaosPartition(t *testing.T) {
	l, target := chaosTarget(t)
	r, err := chaos.Partition(ctxT(t, 2*time.Minute), l, target, "", chaosOptions(t, 5*time.Second))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if r.DoubleRounds > 0 && r.Events["AddressConflict"] == 0 {
		t.Errorf("two nodes answered in %d rounds and no AddressConflict Event was raised", r.DoubleRounds)
	}
	if d := r.Figures["one owner after heal ms"]; d > 2000 {
		t.Errorf("one owner %v ms after the heal, want within 2 s", d)
	}
}

// TestChaosAPIServerDown: the API server stopped for 20 s; the owner fails
// hard in the middle and the address moves; nothing moves and no Service
// changes address when the API server is back.
func TestChaosAPIServerDown(t *testing.T) {
	l, target := chaosTarget(t)
	for _, name := range []string{"other-1", "other-2"} {
		service(t, l, lab.Service{Name: name})
	}
	r, err := chaos.APIDown(ctxT(t, 3*time.Minute), l, target, 5*time.Second, chaosOptions(t, 20*time.Second))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(r.Figures["failover with the API down ms"] * float64(time.Millisecond)); d > hardFailoverBound {
		t.Errorf("hard failover with the API server down took %s, more than %s", d, hardFailoverBound)
	}
}

// TestChaosFlappingLink: the owner's link down and up every 2 s for 12 s.
// The hold-down lets the address leave once and come back once, after the
// link has stayed up, instead of following every flap; a real failure
// after it still fails over.
func TestChaosFlappingLink(t *testing.T) {
	l, target := chaosTarget(t)
	r, err := chaos.Flap(ctxT(t, 3*time.Minute), l, target, 2*time.Second, chaosOptions(t, 12*time.Second))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(r.Figures["failover after flapping ms"] * float64(time.Millisecond)); d > hardFailoverBound {
		t.Errorf("hard failover after the flapping took %s, more than %s", d, hardFailoverBound)
	}
}

// TestChaosRollingRestart: every speaker restarted in turn; no request
// fails but the one in flight at each move.
func TestChaosRollingRestart(t *testing.T) {
	l, target := chaosTarget(t)
	r, err := chaos.Rolling(ctxT(t, 3*time.Minute), l, target, chaosOptions(t, 0))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
}

// TestChaosRollingRestartBGP: every speaker restarted in turn while the
// router peers with each node with graceful restart: the router keeps
// every next hop (stale for the restarting node) and no request from the
// client behind it fails.
func TestChaosRollingRestartBGP(t *testing.T) {
	l := startBareLab(t, func(o *lab.Options) { o.Router = true })
	ctx := ctxT(t, 3*time.Minute)
	if err := l.Apply(ctx, chaos.GracefulRestartConfig(l)); err != nil {
		t.Fatal(err)
	}
	addrs := service(t, l, lab.Service{Name: "rolling-bgp", Families: []corev1.IPFamily{corev1.IPv4Protocol}})
	r, err := chaos.RollingBGP(ctx, l, chaos.Target{Service: "rolling-bgp", Addr: addrs[0]}, chaosOptions(t, 0))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed > 0 {
		t.Errorf("%d of %d requests failed during the rollout", r.Failed, r.Requests)
	}
}

// TestChaosControllerLeaderKilled: two controller replicas; the leader is
// killed while 100 Services are created. No address is ever held twice and
// every Service gets one.
func TestChaosControllerLeaderKilled(t *testing.T) {
	l := startLab(t, func(o *lab.Options) { o.ControllerArgs = chaos.LeaderElectedControllerArgs })
	r, err := chaos.LeaderKill(ctxT(t, 4*time.Minute), l, 100, chaosOptions(t, 0))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
}

// TestChaosBadFrames: malformed, truncated, oversized, VLAN-tagged ARP and
// NDP and odd EtherTypes flooded at the owner for 5 s: nothing answered
// but the good requests among them, no crash, the owner unchanged.
func TestChaosBadFrames(t *testing.T) {
	l, target := chaosTarget(t)
	addr6 := service(t, l, lab.Service{Name: "chaos6", Families: []corev1.IPFamily{corev1.IPv6Protocol}})[0]
	announcedBy(t, l, "chaos6", addr6)
	r, err := chaos.Frames(ctxT(t, 2*time.Minute), l, target, addr6, 5000, chaosOptions(t, 5*time.Second))
	logResult(t, r)
	if err != nil {
		t.Fatal(err)
	}
}
