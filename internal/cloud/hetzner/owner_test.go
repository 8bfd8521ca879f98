package hetzner_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
)

func TestReconcile(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ip         string
		on         int64 // where the IP is first; 0: unassigned
		actionTime time.Duration
		want       cloud.Outcome
		wantReq    requests // polls and total: at least
		wantPrefix string
	}{
		{name: "already here: one read, no write", ip: "203.0.113.10", on: 1,
			want: cloud.InPlace, wantReq: requests{reads: 1, total: 1}, wantPrefix: "203.0.113.10/32"},
		{name: "unassigned: assigned", ip: "203.0.113.10", on: 0,
			want: cloud.Assigned, wantReq: requests{reads: 1, assigns: 1, total: 2}, wantPrefix: "203.0.113.10/32"},
		{name: "failover waits for the action", ip: "203.0.113.10", on: 3, actionTime: 300 * time.Millisecond,
			want: cloud.Assigned, wantReq: requests{reads: 1, assigns: 1, polls: 1, total: 3}, wantPrefix: "203.0.113.10/32"},
		{name: "IPv6 /64 moves as one", ip: "2001:db8:1::/64", on: 2, actionTime: 100 * time.Millisecond,
			want: cloud.Assigned, wantReq: requests{reads: 1, assigns: 1, polls: 1, total: 3}, wantPrefix: "2001:db8:1::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, hcloudsim.Options{ActionTime: tc.actionTime})
			e.sim.AddFloatingIP(7, "web", tc.ip, tc.on)
			ctx := testContext(t)
			fip, err := e.prov.FloatingIP(ctx, "web")
			if err != nil {
				t.Fatal(err)
			}
			if fip.ID != "7" || fip.Prefix != netip.MustParsePrefix(tc.wantPrefix) {
				t.Fatalf("FloatingIP(web) = %+v, want ID 7, prefix %s", fip, tc.wantPrefix)
			}
			before := len(e.sim.Requests())

			res, err := e.owner(t, "node-a", serverA, newArbiter(), nil).Reconcile(ctx, "7")
			if err != nil {
				t.Fatal(err)
			}
			// Read at once: Reconcile returns only once the action is done.
			if got := e.sim.Assignment(7); got != 1 {
				t.Errorf("after Reconcile the stand-in has the IP on server %d, want 1", got)
			}
			if res.Outcome != tc.want {
				t.Errorf("outcome %s, want %s", res.Outcome, tc.want)
			}
			if tc.want == cloud.Assigned && res.Duration < tc.actionTime {
				t.Errorf("assign took %v, less than the action's %v: it did not wait", res.Duration, tc.actionTime)
			}
			got := e.requests("7")
			// FloatingIP above, by name, is a list (GET /floating_ips?name=web).
			got.total -= before
			if got.reads != tc.wantReq.reads || got.assigns != tc.wantReq.assigns ||
				got.polls < tc.wantReq.polls || got.total < tc.wantReq.total || got.total != got.reads+got.assigns+got.polls {
				t.Errorf("requests %+v, want %+v (polls and total at least)", got, tc.wantReq)
			}
			if after, err := e.prov.FloatingIP(ctx, "7"); err != nil || after.Server != serverA {
				t.Errorf("read back through the API: %+v, %v; want on server %s", after, err, serverA)
			}
			t.Logf("%s: %+v, %+v", tc.name, res, got)
		})
	}
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		token  string
		fip    string
		server string
		fault  *hcloudsim.Fault
		code   string
		path   string // the one request sent, at most
		method string
	}{
		{name: "wrong token", token: "wrong", fip: "7", server: serverA, code: cloud.CodeUnauthorized,
			method: "GET", path: "/floating_ips/7"},
		{name: "forbidden", token: token, fip: "7", server: serverA, code: cloud.CodeForbidden,
			fault:  &hcloudsim.Fault{Method: "GET", Path: "/floating_ips/7", Status: 403, Code: "forbidden"},
			method: "GET", path: "/floating_ips/7"},
		{name: "read-only token", token: token, fip: "7", server: serverA, code: cloud.CodeTokenReadonly,
			fault:  &hcloudsim.Fault{Method: "POST", Path: "/floating_ips/7/actions/assign", Status: 403, Code: "token_readonly"},
			method: "POST", path: "/floating_ips/7/actions/assign"},
		{name: "no such floating IP", token: token, fip: "99", server: serverA, code: cloud.CodeNotFound,
			method: "GET", path: "/floating_ips/99"},
		{name: "no such server", token: token, fip: "7", server: "42", code: cloud.CodeNotFound,
			method: "POST", path: "/floating_ips/7/actions/assign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, hcloudsim.Options{})
			e.sim.AddFloatingIP(7, "web", "203.0.113.10", 3)
			if tc.fault != nil {
				e.sim.Inject(*tc.fault)
			}
			o := e.owner(t, "node-a", tc.server, newArbiter(), e.provider(t, tc.token))
			_, err := o.Reconcile(testContext(t), tc.fip)
			if err == nil || cloud.Classify(err) != cloud.Permanent || cloud.ErrorCode(err) != tc.code {
				t.Fatalf("Reconcile: %v (%s), want a permanent %s", err, cloud.ErrorCode(err), tc.code)
			}
			if n := e.sim.Count(tc.method, tc.path); n != 1 {
				t.Errorf("%d requests %s %s, want 1: a permanent error is not retried", n, tc.method, tc.path)
			}
			if got := e.sim.Assignment(7); got != 3 {
				t.Errorf("the IP moved to server %d", got)
			}
			t.Logf("reported: %v", err)
		})
	}
}

func TestRetryableErrorsBackOff(t *testing.T) {
	const assign = "/floating_ips/7/actions/assign"
	for _, tc := range []struct {
		name     string
		fault    hcloudsim.Fault
		minGap   time.Duration // between two tries, at least
		wantErr  string        // "" when the third try succeeds
		attempts int
	}{
		{name: "429 rate_limit_exceeded", fault: hcloudsim.Fault{Method: "POST", Path: assign, Status: 429, Code: "rate_limit_exceeded", Times: 2},
			minGap: time.Second, attempts: 3}, // one refill period at 3,600/h
		{name: "423 locked", fault: hcloudsim.Fault{Method: "POST", Path: assign, Status: 423, Code: "locked", Times: 2},
			minGap: 20 * time.Millisecond, attempts: 3},
		{name: "409 conflict", fault: hcloudsim.Fault{Method: "POST", Path: assign, Status: 409, Code: "conflict", Times: 2},
			minGap: 20 * time.Millisecond, attempts: 3},
		{name: "500 server_error", fault: hcloudsim.Fault{Method: "POST", Path: assign, Status: 500, Code: "server_error", Times: 2},
			minGap: 20 * time.Millisecond, attempts: 3},
		{name: "503 without a body", fault: hcloudsim.Fault{Method: "POST", Path: assign, Status: 503, Times: 2},
			minGap: 20 * time.Millisecond, attempts: 3},
		{name: "timeout", fault: hcloudsim.Fault{Method: "POST", Path: assign, Delay: time.Second, Times: 2},
			minGap: 20 * time.Millisecond, attempts: 3},
		{name: "outage: capped and reported, nothing moves", fault: hcloudsim.Fault{Method: "POST", Path: assign, Status: 503, Code: "service_error"},
			minGap: 20 * time.Millisecond, wantErr: "service_error", attempts: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, hcloudsim.Options{ActionTime: 50 * time.Millisecond})
			e.sim.AddFloatingIP(7, "web", "203.0.113.10", 3)
			e.sim.Inject(tc.fault)
			res, err := e.owner(t, "node-a", serverA, newArbiter(), nil).Reconcile(testContext(t), "7")
			if tc.wantErr != "" {
				if cloud.ErrorCode(err) != tc.wantErr || cloud.Classify(err) != cloud.Retryable {
					t.Fatalf("Reconcile: %v, want a retryable %s", err, tc.wantErr)
				}
				if got := e.sim.Assignment(7); got != 3 {
					t.Errorf("during the outage the IP moved to server %d", got)
				}
			} else if err != nil || res.Outcome != cloud.Assigned || e.sim.Assignment(7) != 1 {
				t.Fatalf("Reconcile: %+v, %v; IP on %d; want assigned to 1", res, err, e.sim.Assignment(7))
			}
			times := assignTimes(e.sim)
			if len(times) != tc.attempts || res.Attempts != tc.attempts {
				t.Logf("log: %+v", e.sim.Requests())
				t.Fatalf("%d assign requests logged, %d reported, want %d", len(times), res.Attempts, tc.attempts)
			}
			for i := 1; i < len(times); i++ {
				gap := times[i].Sub(times[i-1])
				// Equal jitter: at least half the doubling step.
				want := max(tc.minGap, fastBackoff().Base<<(i-1)/2)
				if gap < want {
					t.Errorf("try %d came %v after the one before, want at least %v", i+1, gap, want)
				}
				t.Logf("gap %d: %v", i, gap)
			}
		})
	}
}

// TestRunningActionLocks: while an assign action runs, the stand-in, like
// Hetzner, refuses another with 423 locked, which is retryable, and the IP
// moves only when the action ends.
func TestRunningActionLocks(t *testing.T) {
	e := newEnv(t, hcloudsim.Options{ActionTime: 300 * time.Millisecond})
	e.sim.AddFloatingIP(7, "web", "203.0.113.10", 3)
	ctx := testContext(t)
	done := make(chan error, 1)
	go func() { done <- e.prov.Assign(ctx, "7", serverB) }()
	for e.sim.Count("POST", "/floating_ips/7/actions/assign") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if fip, err := e.prov.FloatingIP(ctx, "7"); err != nil || fip.Server != serverC {
		t.Errorf("while the action runs: %+v, %v; want still on server %s", fip, err, serverC)
	}
	err := e.prov.Assign(ctx, "7", serverA)
	if cloud.ErrorCode(err) != cloud.CodeLocked || cloud.Classify(err) != cloud.Retryable {
		t.Errorf("second assign during the action: %v, want a retryable locked", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fip, err := e.prov.FloatingIP(ctx, "7"); err != nil || fip.Server != serverB {
		t.Errorf("after the action: %+v, %v; want on server %s", fip, err, serverB)
	}
}

// TestHoldDown: something else (a person, Terraform, another controller)
// takes the IP right after this node moved it. The owner does not fight
// back within the hold-down, and reports it; after it, the owner moves the
// IP back once.
func TestHoldDown(t *testing.T) {
	e := newEnv(t, hcloudsim.Options{})
	e.sim.AddFloatingIP(7, "web", "203.0.113.10", 3)
	ctx := testContext(t)
	o := e.owner(t, "node-a", serverA, newArbiter(), nil) // hold-down 500 ms
	if res, err := o.Reconcile(ctx, "7"); err != nil || res.Outcome != cloud.Assigned {
		t.Fatalf("first move: %+v, %v", res, err)
	}
	moved := time.Now()
	if err := e.prov.Assign(ctx, "7", serverB); err != nil { // someone else
		t.Fatal(err)
	}
	res, err := o.Reconcile(ctx, "7")
	if err != nil || res.Outcome != cloud.HoldingDown || res.Previous != serverB {
		t.Fatalf("within the hold-down: %+v, %v; want HoldingDown, IP on %s", res, err, serverB)
	}
	if n := len(assignTimes(e.sim)); n != 2 || e.sim.Assignment(7) != 2 {
		t.Fatalf("within the hold-down: %d assigns, IP on %d; want 2 (ours, theirs), on 2", n, e.sim.Assignment(7))
	}
	time.Sleep(time.Until(moved.Add(500 * time.Millisecond)))
	if res, err := o.Reconcile(ctx, "7"); err != nil || res.Outcome != cloud.Assigned || e.sim.Assignment(7) != 1 {
		t.Fatalf("after the hold-down: %+v, %v, IP on %d; want assigned back to 1", res, err, e.sim.Assignment(7))
	}
}
