package hetzner_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
)

// TestBudgetTenFloatingIPs measures what one round of periodic checks of
// 10 floating IPs, all in place, costs at the stand-in, and what that
// makes per hour at the interval Budget.CheckInterval chooses.
func TestBudgetTenFloatingIPs(t *testing.T) {
	const ips = 10
	e := newEnv(t, hcloudsim.Options{})
	for i := range int64(ips) {
		e.sim.AddFloatingIP(10+i, fmt.Sprintf("web-%d", i), fmt.Sprintf("203.0.113.%d", 10+i), 1)
	}
	o := e.owner(t, "node-a", serverA, newArbiter(), nil)
	ctx := testContext(t)
	for i := range ips {
		if res, err := o.Reconcile(ctx, fmt.Sprint(10+i)); err != nil || res.Outcome != cloud.InPlace {
			t.Fatalf("IP %d: %+v, %v", 10+i, res, err)
		}
	}
	perRound := len(e.sim.Requests())
	if perRound != ips*cloud.RequestsPerCheck {
		t.Errorf("one round of checks sent %d requests, want %d", perRound, ips*cloud.RequestsPerCheck)
	}
	rl, ok := e.budget.Last()
	if !ok || rl.Limit != 3600 || rl.Remaining < 3600-ips-1 || rl.Remaining > 3600-ips+1 || rl.Reset.IsZero() {
		t.Errorf("budget saw %+v (%v), want limit 3600, about %d left, a reset time", rl, ok, 3600-ips)
	}
	interval := e.budget.CheckInterval(ips)
	perHour := float64(perRound) * float64(time.Hour) / float64(interval)
	if perHour > 0.10*3600 {
		t.Errorf("%d IPs checked every %v: %.0f requests/h, more than 10%% of 3,600", ips, interval, perHour)
	}
	t.Logf("%d IPs: %d requests per round, one round every %v: %.0f requests/h, %.1f%% of 3,600",
		ips, perRound, interval, perHour, perHour/36)

	// The controller manager spent most of the project's budget: checks
	// slow down.
	e.sim.SetRemaining(token, 300)
	if _, err := o.Reconcile(ctx, "10"); err != nil {
		t.Fatal(err)
	}
	slow := e.budget.CheckInterval(ips)
	if rl, _ := e.budget.Last(); rl.Remaining != 299 || slow <= interval {
		t.Errorf("with %d left, checks every %v, want slower than %v", rl.Remaining, slow, interval)
	}
	t.Logf("with 299 of 3,600 left: every %v", slow)
}

// TestBudgetExhausted: the stand-in's budget is spent; the owner waits for
// it to earn a request back (1 s at 3,600/h) instead of hammering it.
func TestBudgetExhausted(t *testing.T) {
	e := newEnv(t, hcloudsim.Options{})
	e.sim.AddFloatingIP(7, "web", "203.0.113.10", 1)
	e.sim.SetRemaining(token, 0)
	start := time.Now()
	res, err := e.owner(t, "node-a", serverA, newArbiter(), nil).Reconcile(testContext(t), "7")
	if err != nil || res.Outcome != cloud.InPlace {
		t.Fatalf("%+v, %v", res, err)
	}
	log := e.sim.Requests()
	if len(log) != 2 || log[0].Code != cloud.CodeRateLimited || log[1].Status != 200 {
		t.Fatalf("requests %+v, want a 429 then a success", log)
	}
	if gap := log[1].Time.Sub(log[0].Time); gap < time.Second {
		t.Errorf("retried %v after the 429, want at least the 1 s refill", gap)
	}
	t.Logf("in place after %v", time.Since(start))
}

func TestServerID(t *testing.T) {
	for _, tc := range []struct {
		name     string
		node     cloud.Node
		want     string
		requests int
		eligible bool
	}{
		{"providerID", cloud.Node{Name: "node-b", ProviderID: "hcloud://2"}, "2", 0, true},
		{"providerID wins over the name", cloud.Node{Name: "node-b", ProviderID: "hcloud://3"}, "3", 0, true},
		{"by name", cloud.Node{Name: "node-b"}, "2", 1, true},
		{"no server of that name", cloud.Node{Name: "node-x"}, "", 1, false},
		{"Robot dedicated server", cloud.Node{Name: "node-b", ProviderID: "hcloud://bm-2"}, "", 0, false},
		{"another cloud", cloud.Node{Name: "node-b", ProviderID: "kind://docker/kind/node-b"}, "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, hcloudsim.Options{})
			got, err := e.prov.ServerID(testContext(t), tc.node)
			if tc.eligible && (err != nil || got != tc.want) {
				t.Errorf("ServerID = %q, %v; want %q", got, err, tc.want)
			}
			if !tc.eligible && (!errors.Is(err, cloud.ErrNotEligible) || cloud.Classify(err) != cloud.Permanent) {
				t.Errorf("ServerID = %q, %v; want not eligible, permanent", got, err)
			}
			if n := len(e.sim.Requests()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}
