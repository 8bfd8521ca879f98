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

// aHolds starts two owners sharing arb, node-a having moved IP 7 to its
// server; ctx ends with the test or cancel.
func aHolds(t *testing.T, arb cloud.Arbiter) (e *env, a, b *cloud.Owner, ctx context.Context, cancel context.CancelFunc) {
	t.Helper()
	e = newEnv(t, hcloudsim.Options{ActionTime: 50 * time.Millisecond})
	e.sim.AddFloatingIP(7, "web", "203.0.113.10", 3)
	a = e.owner(t, "node-a", serverA, arb, nil)
	b = e.owner(t, "node-b", serverB, arb, nil)
	ctx, cancel = context.WithCancel(testContext(t))
	t.Cleanup(cancel)
	if res, err := a.Reconcile(ctx, "7"); err != nil || res.Outcome != cloud.Assigned {
		t.Fatalf("node-a: %+v, %v", res, err)
	}
	return e, a, b, ctx, cancel
}

// waitOn waits until the stand-in has IP 7 on server, and returns how
// long that took from since.
func waitOn(t *testing.T, sim *hcloudsim.Sim, server int64, since time.Time) time.Duration {
	t.Helper()
	for sim.Assignment(7) != server {
		if time.Since(since) > 5*time.Second {
			t.Fatalf("IP 7 still on server %d %v later, want on %d", sim.Assignment(7), time.Since(since), server)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(since)
}

// TestArbiterFailover: the arbiter does not stop a real failover. node-a
// holds the IP and dies; node-b takes it once a's lease has expired and
// the hold-down since a's move has passed, and not before.
func TestArbiterFailover(t *testing.T) {
	e, a, b, ctx, cancel := aHolds(t, newArbiter())
	stopA := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { checkLoop(ctx, t, a, stopA) })
	wg.Go(func() { checkLoop(ctx, t, b, nil) })
	defer wg.Wait()
	defer cancel()
	time.Sleep(time.Second)
	if got := e.sim.Assignment(7); got != 1 || len(assignTimes(e.sim)) != 1 {
		t.Fatalf("while node-a lives: IP on %d after %d assigns, want on 1 after 1", got, len(assignTimes(e.sim)))
	}
	close(stopA) // node-a dies
	took := waitOn(t, e.sim, 2, time.Now())
	if n := len(assignTimes(e.sim)); n != 2 {
		t.Fatalf("after node-a died: %d assigns, want 2", n)
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
	e, a, b, ctx, cancel := aHolds(t, &cloud.MemoryArbiter{Duration: 10 * time.Second, HoldDown: 10 * time.Second})
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
	t.Logf("node-b took the IP %v after node-a released it (lease and hold-down 10 s)", waitOn(t, e.sim, 2, released))
}
