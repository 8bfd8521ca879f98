package hetzner_test

import (
	"fmt"
	"slices"
	"strconv"
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

// TestServers lists every page: 120 servers take 3 requests of 50.
func TestServers(t *testing.T) {
	e := newEnv(t, hcloudsim.Options{})
	want := []cloud.Server{{ID: "1", Name: "node-a"}, {ID: "2", Name: "node-b"}, {ID: "3", Name: "node-c"}}
	for i := int64(4); i <= 120; i++ {
		name := fmt.Sprintf("node-%d", i)
		e.sim.AddServer(i, name)
		want = append(want, cloud.Server{ID: strconv.FormatInt(i, 10), Name: name})
	}
	got, err := e.prov.Servers(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Servers = %d servers, want %d: %v", len(got), len(want), got)
	}
	if n := len(e.sim.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}
