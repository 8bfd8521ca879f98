package cloudlease

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-lb/herald/internal/testcluster"
)

// clock is a settable clock that arbiters share, so that expiry and
// hold-down are tested at exact instants while every read and write goes
// to a real API server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestArbiter runs the arbiter against a real kube-apiserver: the rules
// (renewal, expiry, hold-down, release) at exact instants of a shared
// clock, then nodes racing for leases with the real clock.
func TestArbiter(t *testing.T) {
	c := testcluster.Start(t)
	// Each node is a speaker with a client of its own; a high rate limit
	// lets the race be a race rather than a queue behind client-go's.
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	newClient := func() kubernetes.Interface {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	cs := newClient()
	ctx := t.Context()
	ns := "herald-arbiter"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Run("rules", func(t *testing.T) { testRules(t, cs, ns) })
	t.Run("race for a new lease", func(t *testing.T) { testRace(t, newClient, ns) })
	t.Run("race for an expired lease", func(t *testing.T) { testTakeoverRace(t, newClient, ns) })
}

func testRules(t *testing.T, cs kubernetes.Interface, ns string) {
	ctx := t.Context()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	const duration, holdDown = 10 * time.Second, 30 * time.Second
	arbiter := func(t *testing.T) *Arbiter {
		a, err := New(cs.CoordinationV1(), ns, Options{Duration: duration, HoldDown: holdDown, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := arbiter(t), arbiter(t)
	lease := func(ip string) (holder string, acquired, renewed time.Time, transitions int32) {
		t.Helper()
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, LeaseName(ip), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 10 {
			t.Errorf("leaseDurationSeconds %v, want 10", l.Spec.LeaseDurationSeconds)
		}
		if l.Annotations[AnnotationFloatingIP] != ip || l.Labels[LabelComponent] != "cloud-arbiter" {
			t.Errorf("labels %v annotations %v", l.Labels, l.Annotations)
		}
		return holder, l.Spec.AcquireTime.Time, l.Spec.RenewTime.Time, *l.Spec.LeaseTransitions
	}
	type step struct {
		what    string
		advance time.Duration // the clock moves first
		arb     *Arbiter
		node    string
		release bool
		want    bool   // Acquire's answer
		holder  string // the Lease's holder after the step
	}
	// A lease of 10 s, a hold-down of 30 s. Times are since the start.
	tests := []struct {
		name  string
		ip    string
		steps []step
	}{
		{"renewal keeps the lease, its acquireTime and hold-down", "198.51.100.1", []step{
			{"0s: a takes the new lease", 0, a, "node-a", false, true, "node-a"},
			{"5s: b is refused", 5 * time.Second, b, "node-b", false, false, "node-a"},
			{"9s: a renews", 4 * time.Second, a, "node-a", false, true, "node-a"},
			{"18s: b is refused, a renewed 9 s ago", 9 * time.Second, b, "node-b", false, false, "node-a"},
			{"29s: expired, but b is refused inside a's hold-down", 11 * time.Second, b, "node-b", false, false, "node-a"},
			{"30s: expired and out of the hold-down: b takes it", time.Second, b, "node-b", false, true, "node-b"},
			{"35s: a is refused, b's hold-down started at 30 s", 5 * time.Second, a, "node-a", false, false, "node-b"},
		}},
		{"expiry once the hold-down is over", "198.51.100.2", []step{
			{"0s: a takes the new lease", 0, a, "node-a", false, true, "node-a"},
			{"30s: a renews", 30 * time.Second, a, "node-a", false, true, "node-a"},
			{"39.999s: b is refused, a's lease has 1 ms left", 9999 * time.Millisecond, b, "node-b", false, false, "node-a"},
			{"40s: a's lease expired, b takes it", time.Millisecond, b, "node-b", false, true, "node-b"},
		}},
		{"release frees the lease at once, hold-down included", "198.51.100.3", []step{
			{"0s: a takes the new lease", 0, a, "node-a", false, true, "node-a"},
			{"1s: b cannot release a's lease", time.Second, b, "node-b", true, false, "node-a"},
			{"1s: b is refused", 0, b, "node-b", false, false, "node-a"},
			{"2s: a releases", time.Second, a, "node-a", true, false, ""},
			{"2s: b takes it inside a's hold-down", 0, b, "node-b", false, true, "node-b"},
			{"3s: a is refused: b's hold-down", time.Second, a, "node-a", false, false, "node-b"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lastAcquired time.Time
			var transitions int32 = -1
			for _, s := range tc.steps {
				clk.Add(s.advance)
				if s.release {
					if err := s.arb.Release(ctx, tc.ip, s.node); err != nil {
						t.Fatalf("%s: %v", s.what, err)
					}
				} else if got, err := s.arb.Acquire(ctx, tc.ip, s.node); err != nil || got != s.want {
					t.Fatalf("%s: Acquire = %v, %v; want %v", s.what, got, err, s.want)
				}
				holder, acquired, renewed, n := lease(tc.ip)
				if holder != s.holder {
					t.Fatalf("%s: holder %q, want %q", s.what, holder, s.holder)
				}
				// acquireTime and leaseTransitions move on a change of
				// hands only; renewTime on every successful Acquire.
				changed := holder != "" && n != transitions
				if changed != (!acquired.Equal(lastAcquired)) {
					t.Errorf("%s: acquireTime %v (was %v), transitions %d (was %d): they must change together", s.what, acquired, lastAcquired, n, transitions)
				}
				if s.want && !renewed.Equal(clk.Now()) {
					t.Errorf("%s: renewTime %v, want now (%v)", s.what, renewed, clk.Now())
				}
				lastAcquired, transitions = acquired, n
			}
		})
	}
	t.Run("release of no lease", func(t *testing.T) {
		if err := a.Release(ctx, "198.51.100.99", "node-a"); err != nil {
			t.Error(err)
		}
	})
}

// attempt is one Acquire's answer.
type attempt struct {
	node string
	ok   bool
}

// race runs one goroutine per node calling Acquire on every IP in turn
// until stop, and a sampler reading each Lease's holder; it returns every
// answer and every sampled holder, per IP.
func race(t *testing.T, cs kubernetes.Interface, ns string, arbiters map[string]*Arbiter, ips []string, d time.Duration) (map[string][]attempt, map[string]map[string]int) {
	// The calls are stopped between two of them, never cancelled in
	// flight, so that every one has an answer.
	ctx := t.Context()
	var stop atomic.Bool
	time.AfterFunc(d, func() { stop.Store(true) })
	var mu sync.Mutex
	answers := map[string][]attempt{}
	sampled := map[string]map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for node, arb := range arbiters {
		wg.Go(func() {
			<-start
			for !stop.Load() {
				for _, ip := range ips {
					ok, err := arb.Acquire(ctx, ip, node)
					if err != nil {
						t.Errorf("%s on %s: %v", node, ip, err)
						return
					}
					mu.Lock()
					answers[ip] = append(answers[ip], attempt{node, ok})
					mu.Unlock()
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		for !stop.Load() {
			for _, ip := range ips {
				l, err := cs.CoordinationV1().Leases(ns).Get(ctx, LeaseName(ip), metav1.GetOptions{})
				if err != nil || l.Spec.HolderIdentity == nil {
					continue // not created yet
				}
				mu.Lock()
				if sampled[ip] == nil {
					sampled[ip] = map[string]int{}
				}
				sampled[ip][*l.Spec.HolderIdentity]++
				mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	close(start)
	wg.Wait()
	return answers, sampled
}

// checkOneWinner: for each IP exactly one node ever got true, the other
// only ever false, and the Lease never named anyone else.
func checkOneWinner(t *testing.T, ips []string, answers map[string][]attempt, sampled map[string]map[string]int) {
	t.Helper()
	for _, ip := range ips {
		won := map[string]int{}
		lost := map[string]int{}
		for _, a := range answers[ip] {
			if a.ok {
				won[a.node]++
			} else {
				lost[a.node]++
			}
		}
		if len(won) != 1 {
			t.Errorf("%s: true for %v; want one node", ip, won)
			continue
		}
		var winner string
		for n := range won {
			winner = n
		}
		if lost[winner] > 0 {
			t.Errorf("%s: the holder %s was refused %d times", ip, winner, lost[winner])
		}
		for n := range sampled[ip] {
			if n != winner {
				t.Errorf("%s: the Lease named %s, sampled %v; the winner is %s", ip, n, sampled[ip], winner)
			}
		}
		t.Logf("%s: %s won, %d renewals; refused %v; Lease sampled %v", ip, winner, won[winner], lost, sampled[ip])
	}
}

// testRace: two nodes race to create and hold the same new leases with the
// real clock. A lease of 10 s outlasts the race, so the first to write
// keeps it: the other must never be told true.
func testRace(t *testing.T, newClient func() kubernetes.Interface, ns string) {
	arbiters := nodes(t, newClient, ns, Options{Duration: 10 * time.Second, HoldDown: 10 * time.Second})
	var ips []string
	for i := range 8 {
		ips = append(ips, fmt.Sprintf("2001:db8::%x", 0x100+i))
	}
	answers, sampled := race(t, newClient(), ns, arbiters, ips, 1500*time.Millisecond)
	checkOneWinner(t, ips, answers, sampled)
}

// nodes returns an arbiter for node-a and one for node-b, each with a
// client of its own.
func nodes(t *testing.T, newClient func() kubernetes.Interface, ns string, opts Options) map[string]*Arbiter {
	arbiters := map[string]*Arbiter{}
	for _, n := range []string{"node-a", "node-b"} {
		a, err := New(newClient().CoordinationV1(), ns, opts)
		if err != nil {
			t.Fatal(err)
		}
		arbiters[n] = a
	}
	return arbiters
}

// testTakeoverRace: a dead node's expired lease, out of its hold-down, and
// two nodes that both elect themselves: both read the same version and
// write it, so one write must fail, and its node be refused from then on.
func testTakeoverRace(t *testing.T, newClient func() kubernetes.Interface, ns string) {
	clk := &clock{t: time.Now()}
	opts := Options{Duration: 10 * time.Second, HoldDown: 30 * time.Second, Now: clk.Now}
	dead, err := New(newClient().CoordinationV1(), ns, opts)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for i := range 8 {
		ip := fmt.Sprintf("203.0.113.%d", 10+i)
		if ok, err := dead.Acquire(t.Context(), ip, "node-dead"); err != nil || !ok {
			t.Fatalf("node-dead: %v %v", ok, err)
		}
		ips = append(ips, ip)
	}
	clk.Add(opts.HoldDown) // expired, and out of the hold-down
	arbiters := nodes(t, newClient, ns, opts)
	answers, sampled := race(t, newClient(), ns, arbiters, ips, 1500*time.Millisecond)
	for _, ip := range ips {
		delete(sampled[ip], "node-dead") // sampled before the takeover
	}
	checkOneWinner(t, ips, answers, sampled)
}
