package hetzner_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
)

const tokenB = "token-b"

// grantAll is no arbitration at all: the control that shows the partition
// test sees ping-pong when there is some.
type grantAll struct{}

func (grantAll) Acquire(context.Context, string, string) (bool, error) { return true, nil }
func (grantAll) Release(context.Context, string, string) error         { return nil }

// assignTimes returns when each assign request of floating IP 7 arrived.
func assignTimes(sim *hcloudsim.Sim) []time.Time {
	var out []time.Time
	for _, r := range sim.Requests() {
		if r.Method == "POST" && r.Path == "/floating_ips/7/actions/assign" {
			out = append(out, r.Time)
		}
	}
	return out
}

// checkLoop reconciles IP 7 for o every 10 ms until ctx ends or stop is
// closed, and reports errors other than a failed assign it will retry.
func checkLoop(ctx context.Context, t *testing.T, o *cloud.Owner, stop <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
		}
		if _, err := o.Reconcile(ctx, "7"); err != nil && ctx.Err() == nil {
			t.Errorf("reconcile: %v", err)
		}
	}
}

// TestPartitionNoPingPong: node-a and node-b each believe they own the
// floating IP (each sees the other dead), and both reach the API. With the
// arbiter, one assigns it once and the other never writes; without, they
// take it from each other.
func TestPartitionNoPingPong(t *testing.T) {
	const run = 2 * time.Second
	for _, tc := range []struct {
		name    string
		arbiter func() cloud.Arbiter
		// assigns bounds the assign requests sent during the run.
		minAssigns, maxAssigns int
	}{
		{"arbiter: one assign, no ping-pong", func() cloud.Arbiter { return newArbiter() }, 1, 1},
		{"control, no arbiter: ping-pong", func() cloud.Arbiter { return grantAll{} }, 3, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each node has its own token, so the log tells them apart.
			e := newEnv(t, hcloudsim.Options{ActionTime: 50 * time.Millisecond, Tokens: []string{token, tokenB}})
			e.sim.AddFloatingIP(7, "web", "203.0.113.10", 3) // node-c died
			arb := tc.arbiter()
			a := e.owner(t, "node-a", serverA, arb, nil)
			b := e.owner(t, "node-b", serverB, arb, e.provider(t, tokenB))
			ctx, cancel := context.WithTimeout(context.Background(), run)
			defer cancel()
			var wg sync.WaitGroup
			for _, o := range []*cloud.Owner{a, b} {
				wg.Go(func() { checkLoop(ctx, t, o, nil) })
			}
			wg.Wait()

			times := assignTimes(e.sim)
			if len(times) < tc.minAssigns || len(times) > tc.maxAssigns {
				t.Errorf("%d assign requests in %v, want %d to %d", len(times), run, tc.minAssigns, tc.maxAssigns)
			}
			sent := map[string]int{}
			for _, r := range e.sim.Requests() {
				sent[r.Token]++
			}
			if tc.maxAssigns == 1 && sent[token] > 0 && sent[tokenB] > 0 {
				t.Errorf("both nodes sent requests (node-a %d, node-b %d): the one without the lease must send none", sent[token], sent[tokenB])
			}
			t.Logf("%d assign requests in %v; requests from node-a %d, node-b %d; IP on server %d",
				len(times), run, sent[token], sent[tokenB], e.sim.Assignment(7))
		})
	}
}

// TestArbiterFailover: the arbiter does not stop a real failover. node-a
// holds the IP and dies; node-b takes it once a's lease has expired and
// the hold-down since a's move has passed, and not before.
func TestArbiterFailover(t *testing.T) {
	e := newEnv(t, hcloudsim.Options{ActionTime: 50 * time.Millisecond})
	e.sim.AddFloatingIP(7, "web", "203.0.113.10", 3)
	arb := newArbiter()
	a := e.owner(t, "node-a", serverA, arb, nil)
	b := e.owner(t, "node-b", serverB, arb, nil)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	if res, err := a.Reconcile(ctx, "7"); err != nil || res.Outcome != cloud.Assigned {
		t.Fatalf("node-a: %+v, %v", res, err)
	}
	stopA := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { checkLoop(ctx, t, a, stopA) })
	wg.Go(func() { checkLoop(ctx, t, b, nil) })
	time.Sleep(time.Second)
	if got := e.sim.Assignment(7); got != 1 || len(assignTimes(e.sim)) != 1 {
		t.Fatalf("while node-a lives: IP on %d after %d assigns, want on 1 after 1", got, len(assignTimes(e.sim)))
	}
	close(stopA) // node-a dies
	died := time.Now()
	deadline := died.Add(5 * time.Second)
	for e.sim.Assignment(7) != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(died)
	cancel()
	wg.Wait()

	times := assignTimes(e.sim)
	if e.sim.Assignment(7) != 2 || len(times) != 2 {
		t.Fatalf("after node-a died: IP on %d after %d assigns, want on 2 after 2", e.sim.Assignment(7), len(times))
	}
	// node-a renewed at most one check (10 ms, plus the read) before it
	// stopped.
	if lease := newArbiter().Duration; took < lease-50*time.Millisecond {
		t.Errorf("node-b took the IP %v after node-a stopped, before its %v lease expired", took, lease)
	}
	t.Logf("node-b took the IP over %v after node-a stopped (lease %v, hold-down %v)", took, newArbiter().Duration, newArbiter().HoldDown)
}

// TestArbiterHandover: node-a stops owning the IP and releases its lease;
// node-b, checking every 10 ms, takes the IP over without waiting for the
// lease to expire or the hold-down to pass.
func TestArbiterHandover(t *testing.T) {
	e := newEnv(t, hcloudsim.Options{ActionTime: 50 * time.Millisecond})
	e.sim.AddFloatingIP(7, "web", "203.0.113.10", 3)
	arb := &cloud.MemoryArbiter{Duration: 10 * time.Second, HoldDown: 10 * time.Second}
	a := e.owner(t, "node-a", serverA, arb, nil)
	b := e.owner(t, "node-b", serverB, arb, nil)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	if res, err := a.Reconcile(ctx, "7"); err != nil || res.Outcome != cloud.Assigned {
		t.Fatalf("node-a: %+v, %v", res, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { checkLoop(ctx, t, b, nil) })
	defer wg.Wait()
	defer cancel()
	time.Sleep(100 * time.Millisecond)
	if e.sim.Assignment(7) != 1 {
		t.Fatalf("node-b took the IP while node-a held the lease")
	}
	released := time.Now()
	if err := a.Release(ctx, "7"); err != nil {
		t.Fatal(err)
	}
	for e.sim.Assignment(7) != 2 {
		if time.Since(released) > 2*time.Second {
			t.Fatalf("node-b has not taken the IP %v after node-a released it", time.Since(released))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("node-b took the IP %v after node-a released it (lease and hold-down 10 s)", time.Since(released))
}
